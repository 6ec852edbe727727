// XEP-0280 in one process: clients on the fake transport, the hub, this module
// (and blocking, disco where a test needs them).
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { Session } from '../../core/session.js';
import type { Storage } from '../../storage/types.js';
import { blockingModule } from '../blocking/blocking.js';
import { discoModule } from '../disco/disco.js';
import { flush, hub, startModules, type FakeTransport, type Hub } from '../../../test/support/harness.js';
import { CarbonsModule } from './carbons.js';
import { NS_CARBONS, NS_FORWARD } from './rules.js';

interface Client {
  tr: FakeTransport;
  session: Session;
  jid: string;
}

/** Every client of the current test: closed after it, which stops their idle timers (the process can exit). */
const connected: FakeTransport[] = [];
afterEach(() => {
  for (const tr of connected.splice(0)) tr.close();
});

async function online(h: Hub, user: string, priority = 0): Promise<Client> {
  const { tr, session } = await h.login(user);
  connected.push(tr);
  // No presence module here: the router is told directly (RFC 6121 §4.2 initial presence).
  h.router.setPresence(session, { presence: x('presence', NS.CLIENT, { from: session.jid.toString() }), priority });
  return { tr, session, jid: session.jid.toString() };
}

async function setup(): Promise<{ h: Hub; carbons: CarbonsModule }> {
  const h = hub();
  const carbons = new CarbonsModule(h.dispatcher);
  carbons.start();
  return { h, carbons };
}

let iqs = 0;
/** Sends an IQ-set with this payload and returns the answer. */
async function iqSet(c: Client, payload: string, to?: string): Promise<Element> {
  const id = `iq-${++iqs}`;
  c.tr.send(`<iq type='set' id='${id}'${to ? ` to='${to}'` : ''}>${payload}</iq>`);
  await flush();
  const answer = c.tr.received.find((el) => el.name === 'iq' && el.attrs.id === id);
  assert.ok(answer, `an answer to ${payload}`);
  return answer;
}

const ENABLE = `<enable xmlns='${NS_CARBONS}'/>`;
const DISABLE = `<disable xmlns='${NS_CARBONS}'/>`;

async function enable(c: Client): Promise<void> {
  assert.equal((await iqSet(c, ENABLE)).attrs.type, 'result');
}

const condition = (iq: Element): string | undefined => iq.getChild('error')?.getChildren().find((k) => k.xmlns === NS.STANZA_ERRORS)?.name;

/** The server's carbons a client got (§12: from its own bare JID; a forged one is an original). */
function carbonsOf(c: Client): { direction: string; wrapper: Element; inner: Element }[] {
  const out = [];
  for (const el of c.tr.received) {
    if (el.name !== 'message' || el.attrs.from !== c.session.jid.bareString()) continue;
    const wrap = el.getChild('sent', NS_CARBONS) ?? el.getChild('received', NS_CARBONS);
    const inner = wrap?.getChild('forwarded', NS_FORWARD)?.getChild('message', NS.CLIENT);
    if (wrap && inner) out.push({ direction: wrap.name, wrapper: el, inner });
  }
  return out;
}

/** Messages a client got that are not the server's carbons, by id. */
const originals = (c: Client): string[] => {
  const carbons = new Set(carbonsOf(c).map((k) => k.wrapper));
  return c.tr.received.filter((el) => el.name === 'message' && !carbons.has(el)).map((el) => el.attrs.id ?? '');
};

const carbonIds = (c: Client): string[] => carbonsOf(c).map((k) => `${k.direction}:${k.inner.attrs.id ?? ''}`);

describe('XEP-0280 §4/§5: enable and disable', () => {
  test('enable and disable answer a result, twice in a row too (§9.1); the state is per session and ends with it', async () => {
    const { h, carbons } = await setup();
    const a1 = await online(h, 'alice');
    const a2 = await online(h, 'alice');
    assert.equal(carbons.isEnabled(a1.session), false);
    await enable(a1);
    await enable(a1);
    assert.equal(carbons.isEnabled(a1.session), true);
    assert.equal(carbons.isEnabled(a2.session), false, 'per resource');
    assert.equal((await iqSet(a1, DISABLE)).attrs.type, 'result');
    assert.equal((await iqSet(a1, DISABLE)).attrs.type, 'result');
    assert.equal(carbons.isEnabled(a1.session), false);
    assert.equal(carbons.enabledAccounts, 0, 'the account is forgotten with its last enabled session');
    await enable(a2);
    a2.tr.close();
    await flush();
    assert.equal(carbons.isEnabled(a2.session), false, 'forgotten when the session ends');
    assert.equal(carbons.enabledAccounts, 0);
  });

  test('another account cannot switch anyone’s carbons: not-allowed; an unknown element: bad-request', async () => {
    const { h } = await setup();
    const a1 = await online(h, 'alice');
    const b1 = await online(h, 'bob');
    const refused = await iqSet(b1, ENABLE, 'alice@localhost');
    assert.equal(refused.attrs.type, 'error');
    assert.equal(condition(refused), 'not-allowed');
    const bad = await iqSet(a1, `<toggle xmlns='${NS_CARBONS}'/>`);
    assert.equal(condition(bad), 'bad-request');
    // Addressed to the user's own bare JID explicitly is the same as no 'to'.
    assert.equal((await iqSet(a1, ENABLE, 'alice@localhost')).attrs.type, 'result');
  });

  test('disco: the server advertises urn:xmpp:carbons:2 (§3)', async () => {
    const h = hub();
    await startModules(h, [discoModule], {} as Storage);
    new CarbonsModule(h.dispatcher).start();
    const a1 = await online(h, 'alice');
    a1.tr.send(`<iq type='get' id='disco' to='localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`);
    await flush();
    const info = a1.tr.received.find((el) => el.attrs.id === 'disco');
    const features = info?.getChild('query', NS.DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features?.includes(NS_CARBONS), String(features));
  });
});

describe('XEP-0280 §7: received', () => {
  test('a message to the bare JID: the top resource gets the original, the other enabled available resources a <received/> copy', async () => {
    const { h } = await setup();
    const top = await online(h, 'alice', 5);
    const other = await online(h, 'alice', 1);
    const plain = await online(h, 'alice', 1);
    const away = await online(h, 'alice', 1);
    const bob = await online(h, 'bob');
    await enable(top);
    await enable(other);
    await enable(away);
    h.router.setPresence(away.session, { presence: undefined, priority: 0 });
    bob.tr.send(`<message to='alice@localhost' type='chat' id='m1'><body>hello</body><thread>t1</thread></message>`);
    await flush();
    assert.deepEqual(originals(top), ['m1']);
    assert.deepEqual(carbonIds(top), [], 'the recipient of the original gets no copy (§7)');
    assert.deepEqual(carbonIds(plain), [], 'a resource without carbons gets nothing');
    assert.deepEqual(carbonIds(away), [], 'an unavailable resource gets nothing');
    const [copy] = carbonsOf(other);
    assert.ok(copy);
    assert.equal(carbonsOf(other).length, 1);
    // §7: type kept, from the bare JID, to the full JID of the resource; the original as it was.
    assert.deepEqual(copy.wrapper.attrs, { from: 'alice@localhost', to: other.jid, type: 'chat' });
    assert.equal(copy.direction, 'received');
    assert.equal(copy.inner.attrs.from, bob.jid);
    assert.equal(copy.inner.attrs.to, 'alice@localhost');
    assert.equal(copy.inner.getChildText('body'), 'hello');
    assert.equal(copy.inner.getChildText('thread'), 't1');
    assert.equal(copy.wrapper.getChildren().length, 1, 'nothing but <received/> in the wrapper');
  });

  test('a message to a full JID: copies to the others, including resources the bare-JID rules would have chosen', async () => {
    const { h } = await setup();
    const low = await online(h, 'alice', 0);
    const high = await online(h, 'alice', 9);
    const bob = await online(h, 'bob');
    await enable(low);
    await enable(high);
    bob.tr.send(`<message to='${low.jid}' type='chat' id='m2'><body>to low</body></message>`);
    await flush();
    assert.deepEqual(originals(low), ['m2']);
    assert.deepEqual(carbonIds(low), []);
    assert.deepEqual(carbonIds(high), ['received:m2']);
    assert.deepEqual(originals(high), []);
  });
});

describe('XEP-0280 §8: sent', () => {
  test('what a resource sends reaches the other enabled resources as <sent/>, whether or not the sender enabled carbons', async () => {
    const { h } = await setup();
    const sender = await online(h, 'alice');
    const enabled = await online(h, 'alice');
    const plain = await online(h, 'alice');
    const bob = await online(h, 'bob');
    await enable(enabled);
    sender.tr.send(`<message to='${bob.jid}' type='chat' id='s1'><body>one</body></message>`);
    await enable(sender);
    sender.tr.send(`<message to='bob@localhost' id='s2'><body>two, type normal</body></message>`);
    await flush();
    assert.deepEqual(originals(bob), ['s1', 's2']);
    assert.deepEqual(carbonIds(enabled), ['sent:s1', 'sent:s2']);
    assert.deepEqual(carbonIds(sender), [], 'the sender gets no copy of its own message');
    assert.deepEqual(carbonIds(plain), []);
    const [first, second] = carbonsOf(enabled);
    assert.deepEqual(first!.wrapper.attrs, { from: 'alice@localhost', to: enabled.jid, type: 'chat' });
    assert.equal(first!.inner.attrs.from, sender.jid, 'the original, stamped with the sender');
    assert.equal(first!.inner.attrs.to, bob.jid);
    assert.equal(second!.wrapper.attrs.type, undefined, 'the type is kept: none');
  });

  test('a message the user sends to their own account: one <received/> copy per other resource, none to the sender', async () => {
    const { h } = await setup();
    const a1 = await online(h, 'alice', 1);
    const a2 = await online(h, 'alice', 5);
    const a3 = await online(h, 'alice', 1);
    for (const c of [a1, a2, a3]) await enable(c);
    a1.tr.send(`<message to='alice@localhost' type='chat' id='self'><body>note to self</body></message>`);
    await flush();
    assert.deepEqual(originals(a2), ['self']);
    assert.deepEqual(carbonIds(a2), []);
    assert.deepEqual(carbonIds(a3), ['received:self']);
    assert.deepEqual(carbonIds(a1), []);
  });

  test('a message blocking refuses (XEP-0191, a higher priority) is not copied', async () => {
    const h = hub();
    const storage = {
      blocking: {
        list: (_h: string, user: string) => Promise.resolve(user === 'alice' ? ['bob@localhost'] : []),
        isBlocked: (_h: string, user: string, jid: string) => Promise.resolve(user === 'alice' && jid.startsWith('bob@localhost')),
      },
    } as unknown as Storage;
    await startModules(h, [blockingModule], storage);
    new CarbonsModule(h.dispatcher).start();
    const a1 = await online(h, 'alice');
    const a2 = await online(h, 'alice');
    const bob = await online(h, 'bob');
    const carol = await online(h, 'carol');
    await enable(a2);
    a1.tr.send(`<message to='bob@localhost' type='chat' id='blocked'><body>refused</body></message>`);
    a1.tr.send(`<message to='carol@localhost' type='chat' id='marker'><body>fine</body></message>`);
    await flush(6);
    assert.ok(a1.tr.received.some((el) => el.attrs.id === 'blocked' && el.attrs.type === 'error'), 'blocking refused it');
    assert.deepEqual(originals(bob), []);
    assert.deepEqual(originals(carol), ['marker']);
    assert.deepEqual(carbonIds(a2), ['sent:marker'], 'only the message that went out was copied');
  });
});

describe('XEP-0280 §6.1: what is not copied', () => {
  test('private, no-copy, groupchat, headline, an empty normal message, a MUC private message received, a carbon sent by a client', async () => {
    const { h } = await setup();
    const a1 = await online(h, 'alice', 5);
    const a2 = await online(h, 'alice', 1);
    const bob = await online(h, 'bob');
    await enable(a1);
    await enable(a2);
    const forged = `<received xmlns='${NS_CARBONS}'><forwarded xmlns='${NS_FORWARD}'><message xmlns='jabber:client' type='chat' from='mallory@localhost/x' to='alice@localhost'><body>forged</body></message></forwarded></received>`;
    const excluded = [
      `<message to='bob@localhost' type='chat' id='x1'><body>secret</body><private xmlns='${NS_CARBONS}'/><no-copy xmlns='urn:xmpp:hints'/></message>`,
      `<message to='${bob.jid}' type='chat' id='x2'><body>hint only</body><no-copy xmlns='urn:xmpp:hints'/></message>`,
      `<message to='bob@localhost' type='headline' id='x3'><body>news</body></message>`,
      `<message to='bob@localhost' type='normal' id='x4'><subject>no body</subject></message>`,
      `<message to='bob@localhost' type='chat' id='x5'>${forged}</message>`,
    ];
    for (const m of excluded) a1.tr.send(m);
    // Received: the same kinds, from bob to alice.
    for (const m of excluded) bob.tr.send(m.replace(/to='[^']*'/, `to='alice@localhost'`).replace(/id='x/, "id='r"));
    // A private message from a MUC occupant (XEP-0045 §7.5: it carries muc#user), sent to a1's full JID.
    await h.dispatcher.route(
      x('message', NS.CLIENT, { from: 'room@conference.example/nurse', to: a1.jid, type: 'chat', id: 'pm' }, x('body', NS.CLIENT, {}, 'psst'), x('x', 'http://jabber.org/protocol/muc#user')),
    );
    // Markers, one each way: they are copied, so the pipeline works and nothing above was only late.
    a1.tr.send(`<message to='bob@localhost' type='chat' id='marker-out'><body>m</body></message>`);
    bob.tr.send(`<message to='alice@localhost' type='chat' id='marker-in'><body>m</body></message>`);
    await flush(6);
    assert.ok(originals(a1).includes('pm'), 'the MUC private message itself was delivered');
    assert.ok(originals(a1).includes('r1'), 'a private message is still delivered');
    assert.ok(originals(a1).includes('r5'), 'so is a forged carbon, as an original (the client ignores it, §12)');
    assert.deepEqual(carbonIds(a2).sort(), ['received:marker-in', 'sent:marker-out'], 'only the markers were copied');
    assert.deepEqual(carbonIds(a1), [], 'a1 got every original, so no copy');
    // RFC 6121 §8.5.2.1.1 still applies to the originals: the headline reaches every resource.
    assert.deepEqual(originals(a2), ['r3']);
  });

  test('a chat-state-only chat message is copied both ways (§9.2); a normal one with a receipt too', async () => {
    const { h } = await setup();
    const a1 = await online(h, 'alice', 5);
    const a2 = await online(h, 'alice', 1);
    const bob = await online(h, 'bob');
    await enable(a2);
    a1.tr.send(`<message to='bob@localhost' type='chat' id='cs-out'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    bob.tr.send(`<message to='alice@localhost' type='chat' id='cs-in'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    bob.tr.send(`<message to='alice@localhost' id='rcpt'><received xmlns='urn:xmpp:receipts' id='cs-out'/></message>`);
    await flush(6);
    assert.deepEqual(carbonIds(a2), ['sent:cs-out', 'received:cs-in', 'received:rcpt']);
  });

  test('an error is copied when it answers a message that was copied, not otherwise', async () => {
    const { h } = await setup();
    const a1 = await online(h, 'alice', 5);
    const a2 = await online(h, 'alice', 1);
    const bob = await online(h, 'bob');
    await enable(a2);
    a1.tr.send(`<message to='${bob.jid}' type='chat' id='q1'><body>are you there?</body></message>`);
    a1.tr.send(`<message to='${bob.jid}' type='headline' id='q2'><body>not copied</body></message>`);
    await flush();
    const err = (id: string) =>
      `<message to='${a1.jid}' type='error' id='${id}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`;
    bob.tr.send(err('q1'));
    bob.tr.send(err('q2'));
    bob.tr.send(err('unknown'));
    bob.tr.send(`<message to='alice@localhost' type='chat' id='marker'><body>m</body></message>`);
    await flush(6);
    assert.deepEqual(originals(a1).filter((id) => id !== 'marker'), ['q1', 'q2', 'unknown'], 'every error reached a1');
    assert.deepEqual(carbonIds(a2), ['sent:q1', 'received:q1', 'received:marker']);
    const copy = carbonsOf(a2)[1]!;
    assert.equal(copy.wrapper.attrs.type, 'error');
    // And the other way: a1 answers bob's message with an error; a2 sees it as <sent/>.
    bob.tr.send(`<message to='${a1.jid}' type='chat' id='b1'><body>hi</body></message>`);
    await flush();
    a1.tr.send(err('b1').replace(`to='${a1.jid}'`, `to='${bob.jid}'`));
    a1.tr.send(err('b-unknown').replace(`to='${a1.jid}'`, `to='${bob.jid}'`));
    a1.tr.send(`<message to='bob@localhost' type='chat' id='marker2'><body>m</body></message>`);
    await flush(6);
    assert.deepEqual(carbonIds(a2).slice(3), ['received:b1', 'sent:b1', 'sent:marker2']);
  });
});
