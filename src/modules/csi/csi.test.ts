// XEP-0352 in process: the module on a hub of the in-process harness, a client logged in on
// a fake transport; stanzas are handed to its session as the hub hands them (Session.send),
// and what the client gets is what the transport received.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { NS_CHATSTATES } from '../../xml/chatstates.js';
import { Priority } from '../../core/hooks.js';
import type { Session } from '../../core/session.js';
import { flush, hubOnMockedClock } from '../../../test/support/harness.js';
import { CsiModule, NS_CSI, type CsiLimits } from './csi.js';

const NS_RECEIPTS = 'urn:xmpp:receipts';
const NS_DELAY = 'urn:xmpp:delay';

/** On a mocked clock: the connections' timers (idle pings) neither fire nor keep the process alive. */
async function setup(t: TestContext, limits?: CsiLimits) {
  const h = hubOnMockedClock(t);
  const csi = new CsiModule(h.dispatcher, limits);
  csi.start();
  // Stream management's place (Priority.LAST): what it sees and what was written, as it would count them.
  const smSaw: Element[] = [];
  h.dispatcher.addOutgoingFilter((_s, el) => {
    smSaw.push(el);
    return el;
  }, Priority.LAST);
  const written: Element[] = [];
  h.dispatcher.observeWritten((_s, el) => written.push(el));
  const { tr, session } = await h.login('alice');
  const me = session.jid.toString();
  /** What the client got after login, as stanzas (the bind result left out). */
  const got = (): Element[] => tr.received.filter((el) => el.xmlns === NS.CLIENT && el.attrs.id !== 'bind');
  const nonza = async (name: string): Promise<void> => {
    tr.send(`<${name} xmlns='${NS_CSI}'/>`);
    await flush();
  };
  return { h, csi, tr, session, me, got, nonza, smSaw, written };
}

const presence = (from: string, status?: string, type?: string): Element =>
  x('presence', NS.CLIENT, { from, to: 'alice@localhost', type }, status === undefined ? undefined : x('status', NS.CLIENT, {}, status));
const chat = (from: string, body: string): Element => x('message', NS.CLIENT, { from, to: 'alice@localhost', type: 'chat', id: body }, x('body', NS.CLIENT, {}, body));
const state = (from: string, name: string): Element => x('message', NS.CLIENT, { from, to: 'alice@localhost', type: 'chat' }, x(name, NS_CHATSTATES));
const receipt = (from: string, id: string): Element => x('message', NS.CLIENT, { from, to: 'alice@localhost', id: `r-${id}` }, x('received', NS_RECEIPTS, { id }));

/** A short, readable name for each stanza, to compare orders. */
function label(el: Element): string {
  const from = el.attrs.from ?? '';
  if (el.name === 'presence') return `presence ${from} ${el.attrs.type ?? el.getChildText('status') ?? ''}`.trim();
  if (el.name === 'iq') return `iq ${from} ${el.attrs.type ?? ''}`;
  const body = el.getChildText('body');
  if (body !== undefined) return `message ${from} ${body}`;
  const st = el.getChildren().find((c) => c.xmlns === NS_CHATSTATES);
  if (st) return `state ${from} ${st.name}`;
  const r = el.getChild('received', NS_RECEIPTS);
  if (r) return `receipt ${from} ${r.attrs.id ?? ''}`;
  return `message ${from}`;
}
const labels = (els: Element[]): string[] => els.map(label);

function send(session: Session, ...stanzas: Element[]): void {
  for (const s of stanzas) assert.equal(session.send(s), true);
}

describe('XEP-0352 client state indication', () => {
  test('§4.1: offered in the stream features after authentication, not before', async (t) => {
    const { tr } = await setup(t);
    const features = tr.named('features', NS.STREAM);
    assert.equal(features.length, 2, 'before and after SASL');
    assert.equal(features[0]!.getChild('csi', NS_CSI), undefined);
    assert.ok(features[1]!.getChild('csi', NS_CSI), features[1]!.toString());
    assert.ok(features[1]!.getChild('bind', NS.BIND));
  });

  test('§5: a session is active until it says otherwise: everything passes untouched', async (t) => {
    const { session, got, csi, written } = await setup(t);
    const p = presence('bob@localhost/phone', 'hi');
    send(session, p, state('bob@localhost/phone', 'composing'));
    assert.equal(csi.isInactive(session), false);
    assert.equal(written.at(-2), p, 'the very same element was written, not a copy');
    assert.deepEqual(labels(got()), ['presence bob@localhost/phone hi', 'state bob@localhost/phone composing']);
  });

  test('inactive: presence is held, only the latest per contact, and <active/> sends it in order with a delay', async (t) => {
    const { session, got, nonza, csi, h } = await setup(t);
    await nonza('inactive');
    assert.equal(csi.isInactive(session), true);
    send(
      session,
      presence('bob@localhost/phone', 'one'),
      presence('carol@localhost/pc', 'carol'),
      presence('bob@localhost/phone', 'two'),
      presence('bob@localhost/laptop', 'laptop'),
      presence('bob@localhost/phone', 'three'),
    );
    assert.deepEqual(got(), [], 'nothing written while inactive');
    const heldAt = new Date(Date.now()).toISOString();
    h.tick(5000);
    // No reply to the nonza itself (§4.2).
    await nonza('active');
    assert.equal(csi.isInactive(session), false);
    // The latest of each sender, where it came: carol, then bob's laptop, then bob's phone's third.
    assert.deepEqual(labels(got()), ['presence carol@localhost/pc carol', 'presence bob@localhost/laptop laptop', 'presence bob@localhost/phone three']);
    for (const p of got()) {
      // XEP-0203: when the server got it, not when it was released.
      assert.deepEqual(p.getChild('delay', NS_DELAY)?.attrs, { from: h.config.hosts[0], stamp: heldAt });
    }
    // Active again: nothing is held any more.
    send(session, presence('bob@localhost/phone', 'four'));
    assert.equal(label(got().at(-1)!), 'presence bob@localhost/phone four');
    assert.equal(got().at(-1)!.getChild('delay', NS_DELAY), undefined);
  });

  test('an unavailable presence replaces the held available one of the same resource', async (t) => {
    const { session, got, nonza } = await setup(t);
    await nonza('inactive');
    send(session, presence('bob@localhost/phone', 'here'), presence('bob@localhost/phone', undefined, 'unavailable'));
    await nonza('active');
    assert.deepEqual(labels(got()), ['presence bob@localhost/phone unavailable']);
  });

  test('chat states are held (the latest per sender), receipts are held in order', async (t) => {
    const { session, got, nonza } = await setup(t);
    await nonza('inactive');
    send(
      session,
      state('bob@localhost/phone', 'composing'),
      receipt('bob@localhost/phone', '1'),
      state('carol@localhost/pc', 'composing'),
      state('bob@localhost/phone', 'paused'),
      receipt('bob@localhost/phone', '2'),
    );
    assert.deepEqual(got(), []);
    await nonza('active');
    assert.deepEqual(labels(got()), ['receipt bob@localhost/phone 1', 'state carol@localhost/pc composing', 'state bob@localhost/phone paused', 'receipt bob@localhost/phone 2']);
  });

  test('a message with a body goes out at once, after everything held before it, in order', async (t) => {
    const { session, got, nonza, csi } = await setup(t);
    await nonza('inactive');
    send(session, presence('carol@localhost/pc', 'away'), state('bob@localhost/phone', 'composing'), receipt('dave@localhost/x', '7'));
    assert.deepEqual(got(), []);
    send(session, chat('bob@localhost/phone', 'hello'));
    assert.deepEqual(labels(got()), ['presence carol@localhost/pc away', 'state bob@localhost/phone composing', 'receipt dave@localhost/x 7', 'message bob@localhost/phone hello']);
    assert.equal(got().at(-1)!.getChild('delay', NS_DELAY), undefined, 'the message itself was never held');
    // Still inactive: holding goes on.
    assert.equal(csi.isInactive(session), true);
    send(session, presence('carol@localhost/pc', 'back'));
    assert.equal(got().length, 4);
    await nonza('active');
    assert.equal(label(got().at(-1)!), 'presence carol@localhost/pc back');
  });

  test('urgent without a body: subscription requests, message errors; the client\'s own things pass at once', async (t) => {
    const { session, got, nonza, me } = await setup(t);
    await nonza('inactive');
    send(session, presence('carol@localhost/pc', 'away'));
    // Its own presence echo (RFC 6121 §4.2.2) passes without releasing anybody else's.
    send(session, presence(me, 'my status'));
    assert.deepEqual(labels(got()), [`presence ${me} my status`]);
    // A subscription request releases what was held before it.
    send(session, presence('eve@localhost', undefined, 'subscribe'));
    assert.deepEqual(labels(got()).slice(1), ['presence carol@localhost/pc away', 'presence eve@localhost subscribe']);
    send(session, presence('carol@localhost/pc', 'busy'));
    const error = x('message', NS.CLIENT, { from: 'nobody@localhost', to: me, type: 'error' }, x('error', NS.CLIENT, { type: 'cancel' }));
    send(session, error);
    assert.deepEqual(labels(got()).slice(3), ['presence carol@localhost/pc busy', 'message nobody@localhost']);
  });

  test('IQs pass at once; only what their own sender sent before goes first', async (t) => {
    const { session, got, nonza, me } = await setup(t);
    await nonza('inactive');
    send(session, presence('bob@localhost/phone', 'bob'), presence('carol@localhost/pc', 'carol'));
    send(session, x('iq', NS.CLIENT, { from: 'localhost', to: me, type: 'result', id: 'q1' }));
    assert.deepEqual(labels(got()), ['iq localhost result']);
    send(session, x('iq', NS.CLIENT, { from: 'carol@localhost/pc', to: me, type: 'get', id: 'q2' }, x('query', 'http://jabber.org/protocol/disco#info')));
    assert.deepEqual(labels(got()), ['iq localhost result', 'presence carol@localhost/pc carol', 'iq carol@localhost/pc get']);
    await nonza('active');
    assert.deepEqual(labels(got()).slice(3), ['presence bob@localhost/phone bob']);
  });

  test('bounded: past either limit everything held is sent in order, nothing dropped', async (t) => {
    const { session, got, nonza } = await setup(t, { maxLatest: 3, maxOther: 2 });
    await nonza('inactive');
    send(session, presence('a@localhost/1', 'a'), presence('b@localhost/1', 'b'), presence('c@localhost/1', 'c'));
    // Replacing a held one is not more.
    send(session, presence('a@localhost/1', 'a2'));
    assert.deepEqual(got(), []);
    send(session, presence('d@localhost/1', 'd'));
    assert.deepEqual(labels(got()), ['presence b@localhost/1 b', 'presence c@localhost/1 c', 'presence a@localhost/1 a2', 'presence d@localhost/1 d']);
    send(session, receipt('a@localhost/1', '1'), receipt('a@localhost/1', '2'));
    assert.equal(got().length, 4);
    send(session, receipt('a@localhost/1', '3'));
    assert.deepEqual(labels(got()).slice(4), ['receipt a@localhost/1 1', 'receipt a@localhost/1 2', 'receipt a@localhost/1 3']);
    // Holding starts afresh.
    send(session, presence('e@localhost/1', 'e'));
    assert.equal(got().length, 7);
  });

  test('stream management (Priority.LAST) sees and counts a held stanza only when it is written, once', async (t) => {
    const { session, nonza, smSaw, written } = await setup(t);
    await nonza('inactive');
    const before = { saw: smSaw.length, written: written.length };
    send(session, presence('bob@localhost/phone', 'one'), presence('bob@localhost/phone', 'two'), receipt('bob@localhost/phone', '1'));
    assert.deepEqual({ saw: smSaw.length, written: written.length }, before, 'nothing counted while held');
    await nonza('active');
    assert.deepEqual(labels(smSaw.slice(before.saw)), ['presence bob@localhost/phone two', 'receipt bob@localhost/phone 1']);
    assert.deepEqual(labels(written.slice(before.written)), ['presence bob@localhost/phone two', 'receipt bob@localhost/phone 1']);
  });

  test('a session that ends while inactive: held messages go where a message for a gone resource goes, presence nowhere', async (t) => {
    const { h, session, tr, nonza } = await setup(t);
    const undeliverable: Element[] = [];
    h.dispatcher.hookUndeliverable((ev) => {
      undeliverable.push(ev.stanza);
      return true;
    }, Priority.DEFAULT);
    await nonza('inactive');
    send(session, presence('bob@localhost/phone', 'one'), receipt('bob@localhost/phone', '1'));
    tr.close();
    await flush(6);
    await h.dispatcher.drain();
    assert.deepEqual(labels(undeliverable), ['receipt bob@localhost/phone 1']);
  });

  test('an unknown element in the namespace is a stream error (unsupported-stanza-type)', async (t) => {
    const { tr, nonza } = await setup(t);
    await nonza('sleepy');
    const err = tr.streamErrors()[0];
    assert.ok(err?.getChild('unsupported-stanza-type', NS.STREAM_ERRORS), tr.text);
  });

  test('<inactive/> twice keeps what is held; activate() (for a resumed stream, §5.2) sends it', async (t) => {
    const { session, got, nonza, csi } = await setup(t);
    await nonza('inactive');
    send(session, presence('bob@localhost/phone', 'one'));
    await nonza('inactive');
    assert.deepEqual(got(), []);
    csi.activate(session);
    assert.deepEqual(labels(got()), ['presence bob@localhost/phone one']);
    assert.equal(csi.isInactive(session), false);
  });
});
