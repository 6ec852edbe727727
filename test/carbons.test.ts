// XEP-0280 Message Carbons with real clients on a real server: xmpp.js
// (@xmpp/client, stanzas built by hand) and slixmpp's own xep_0280 plugin, which
// reports only carbons it accepted (from the account's bare JID, §12). Whatever
// must not arrive is checked with a marker sent after it on the same path: once
// the marker is there, the copy would have been too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate, waitUntil, xml, type XmlElement, type XmppJsClient } from './support/xmppjs.js';
import { SlixClient, XjsClient, slixmppMissing, type StanzaView } from './support/im-clients.js';
import { NS_CARBONS, carbon, type Carbon } from './support/carbons.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
/** Without -PLUS, so that slixmpp 1.8 can use SCRAM (see test/slixmpp.test.ts). */
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };
const CARBONS_SCRIPT = join(import.meta.dirname, 'slixmpp', 'carbons_client.py');
const WAIT = 10_000;

let srv: TestServer;
let caFile: string;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({ sasl: NO_PLUS });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  caFile = join(srv.dir, 'data', 'tls', 'self-signed.crt');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

/** The stanzas an xmpp.js client received, as elements, to wait for and to inspect. */
class Received {
  readonly all: XmlElement[] = [];
  private waiters: (() => void)[] = [];

  constructor(xmpp: XmppJsClient) {
    xmpp.on('stanza', (el: XmlElement) => {
      this.all.push(el);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async next(pred: (el: XmlElement) => boolean, what: string): Promise<XmlElement> {
    const deadline = Date.now() + WAIT;
    for (;;) {
      const hit = this.all.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${WAIT} ms waiting for ${what}; got:\n  ${this.all.map(String).join('\n  ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

const carbonsIn = (r: Received): Carbon[] => r.all.map(carbon).filter((c): c is Carbon => c !== undefined);
const isOriginal = (id: string) => (el: XmlElement) => el.is('message') && el.attrs.id === id && carbon(el) === undefined;
const isCarbonOf = (id: string, direction?: string) => (el: XmlElement) => {
  const c = carbon(el);
  return c !== undefined && c.inner.attrs.id === id && (direction === undefined || c.direction === direction);
};

interface Xjs {
  c: XjsClient;
  got: Received;
  jid: string;
}

/** What each test connected; the cleanup closes them all, then waits for their sessions to end. */
const open: { dispose(): Promise<void> }[] = [];

/**
 * After each test: every client closed and every session of the users gone, so the next
 * test's bare-JID routing is its own.
 */
async function cleanup(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.dispose()));
  await waitUntil(() => srv.server.router.getSessions('alice@localhost').length + srv.server.router.getSessions('bob@localhost').length === 0, 'every session to end', WAIT);
}

/** An xmpp.js client, online with this priority, with carbons enabled when asked. */
async function xjs(user: string, priority: number, carbons: boolean): Promise<Xjs> {
  const c = await XjsClient.connect({ port: srv.port, user, password: `${user}-pass`, caFile });
  open.push(c);
  const got = new Received(c.xmpp);
  await c.presence({ priority });
  if (carbons) await setCarbons(c.xmpp, true);
  // One connection's stanzas are handled in order: after this answer, presence and enable are in effect.
  await c.ping();
  return { c, got, jid: c.jid };
}

async function setCarbons(xmpp: XmppJsClient, on: boolean): Promise<void> {
  const res = await xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml(on ? 'enable' : 'disable', { xmlns: NS_CARBONS })), WAIT);
  assert.equal(res.attrs.type, 'result');
}

function send(from: Xjs, to: string, id: string, body: string, ...extra: XmlElement[]): Promise<void> {
  return from.c.xmpp.send(xml('message', { to, type: 'chat', id }, xml('body', {}, body), ...extra));
}

describe('carbons with xmpp.js', () => {
  test('disco, received and sent copies, a resource without carbons, <private/>, disable', async (t) => {
    t.after(cleanup);
    const a1 = await xjs('alice', 5, true);
    const a2 = await xjs('alice', 0, true);
    const a3 = await xjs('alice', 0, false);
    const bob = await xjs('bob', 0, false);

    // §3: the server advertises the feature.
    const info = await a1.c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: NS_DISCO_INFO })), WAIT);
    const features = info.getChild('query', NS_DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features?.includes(NS_CARBONS), String(features));

    // §7: to the bare JID: a1 (top priority) gets the original, a2 a <received/> copy.
    await send(bob, 'alice@localhost', 'r1', 'hello alice');
    await a1.got.next(isOriginal('r1'), 'the original at a1');
    const received = carbon(await a2.got.next(isCarbonOf('r1'), 'the received carbon at a2'))!;
    assert.deepEqual(
      { direction: received.direction, from: received.from, to: received.to, type: received.type },
      { direction: 'received', from: 'alice@localhost', to: a2.jid, type: 'chat' },
    );
    assert.equal(received.inner.attrs.from, bob.jid);
    assert.equal(received.inner.attrs.to, 'alice@localhost');
    assert.equal(received.inner.getChildText('body'), 'hello alice');

    // §8: what a1 sends: bob gets it, a2 a <sent/> copy.
    await send(a1, bob.jid, 's1', 'hello bob');
    await bob.got.next(isOriginal('s1'), 'the original at bob');
    const sent = carbon(await a2.got.next(isCarbonOf('s1'), 'the sent carbon at a2'))!;
    assert.deepEqual(
      { direction: sent.direction, from: sent.from, to: sent.to, type: sent.type },
      { direction: 'sent', from: 'alice@localhost', to: a2.jid, type: 'chat' },
    );
    assert.equal(sent.inner.attrs.from, a1.jid);
    assert.equal(sent.inner.attrs.to, bob.jid);

    // Markers from bob, after everything above: a3 (no carbons) and a1 (got both originals) got no copy.
    await send(bob, a3.jid, 'mark-a3', 'marker');
    await send(bob, a1.jid, 'mark-a1', 'marker');
    await a3.got.next(isOriginal('mark-a3'), 'the marker at a3');
    await a1.got.next(isOriginal('mark-a1'), 'the marker at a1');
    assert.deepEqual(carbonsIn(a3.got), [], 'a resource without carbons gets none');
    // a1 got the originals of r1 and s1, so no copy of them; the marker to a3 reached it as a copy.
    assert.deepEqual(
      carbonsIn(a1.got).map((k) => `${k.direction}:${k.inner.attrs.id}`),
      ['received:mark-a3'],
    );

    // §8: <private/> is not copied, either way, alone or with the XEP-0334 no-copy hint the XEP
    // tells clients to add; the next message is.
    await send(a1, bob.jid, 'p1', 'private out', xml('private', { xmlns: NS_CARBONS }));
    await send(a1, bob.jid, 'p2', 'after private out');
    await send(bob, 'alice@localhost', 'p3', 'private in', xml('private', { xmlns: NS_CARBONS }), xml('no-copy', { xmlns: 'urn:xmpp:hints' }));
    await send(bob, 'alice@localhost', 'p4', 'after private in');
    await a2.got.next(isCarbonOf('p2', 'sent'), 'the sent carbon of the message after the private one');
    await a2.got.next(isCarbonOf('p4', 'received'), 'the received carbon of the message after the private one');
    assert.equal(a2.got.all.filter((el) => isCarbonOf('p1')(el) || isCarbonOf('p3')(el)).length, 0, 'no copy of a private message');
    // Delivered as sent: the server does not strip <private/> (§8 interoperability note).
    const p1 = await bob.got.next(isOriginal('p1'), 'the private message at bob');
    assert.ok(p1.getChild('private', NS_CARBONS));
    await a1.got.next(isOriginal('p3'), 'the private message at a1');

    // §5: a2 disables; nothing more is copied to it, either way.
    await setCarbons(a2.c.xmpp, false);
    await send(bob, 'alice@localhost', 'd1', 'after disable, in');
    await send(a1, bob.jid, 'd2', 'after disable, out');
    await a1.got.next(isOriginal('d1'), 'd1 at a1');
    await bob.got.next(isOriginal('d2'), 'd2 at bob');
    await send(bob, a2.jid, 'mark-d1', 'marker');
    await send(a1, a2.jid, 'mark-d2', 'marker');
    await a2.got.next(isOriginal('mark-d1'), 'the marker from bob at a2');
    await a2.got.next(isOriginal('mark-d2'), 'the marker from a1 at a2');
    assert.deepEqual(
      carbonsIn(a2.got)
        .map((k) => k.inner.attrs.id)
        .sort(),
      ['mark-a1', 'mark-a3', 'p2', 'p4', 'r1', 's1'],
      'after disable, nothing more',
    );
  });
});

const noSlix = slixmppMissing();

describe('carbons with slixmpp (xep_0280 plugin)', { skip: noSlix || undefined }, () => {
  const isCarbonEvent =
    (id: string, direction: string) =>
    (s: StanzaView): boolean => {
      const e = s as unknown as { kind: string; direction?: string; inner?: { id: string | null } };
      return e.kind === 'carbon' && e.direction === direction && e.inner?.id === id;
    };
  const slixCarbons = (s: SlixClient): { direction: string; from: string; to: string; inner: { id: string; from: string; to: string; body: string } }[] =>
    s.history.filter((v) => (v.kind as string) === 'carbon') as never;

  test('slixmpp enables carbons and gets both kinds; what it sends is copied; <private/> is not; disable; disco', async (t) => {
    t.after(cleanup);
    const slix = await SlixClient.connect({ port: srv.port, user: 'alice', password: 'alice-pass', caFile, mech: 'SCRAM-SHA-256', script: CARBONS_SCRIPT });
    open.push(slix);
    await slix.presence({ priority: 0 });
    await slix.command('carbons_enable');
    await slix.ping();
    const a1 = await xjs('alice', 5, true);
    const bob = await xjs('bob', 0, false);

    const { features } = (await slix.command('server_features')) as unknown as { features: string[] };
    assert.ok(features.includes(NS_CARBONS), String(features));

    // Received: bob to the bare JID; a1 has the higher priority, slixmpp gets the copy.
    await send(bob, 'alice@localhost', 'r1', 'hello alice');
    await a1.got.next(isOriginal('r1'), 'the original at a1');
    const r1 = (await slix.next(isCarbonEvent('r1', 'received'), 'slixmpp: received carbon', WAIT)) as unknown as ReturnType<typeof slixCarbons>[number];
    assert.equal(r1.from, 'alice@localhost');
    assert.equal(r1.to, slix.jid);
    assert.equal(r1.inner.from, bob.jid);
    assert.equal(r1.inner.body, 'hello alice');

    // Sent by the xmpp.js resource: slixmpp gets a <sent/> copy.
    await send(a1, bob.jid, 's1', 'from a1');
    const s1 = (await slix.next(isCarbonEvent('s1', 'sent'), 'slixmpp: sent carbon', WAIT)) as unknown as ReturnType<typeof slixCarbons>[number];
    assert.equal(s1.inner.from, a1.jid);
    assert.equal(s1.inner.to, bob.jid);

    // Sent by slixmpp: the xmpp.js resource gets the copy; then a private one is not copied.
    await slix.message(bob.jid, 'from slixmpp', { id: 's2' });
    await bob.got.next(isOriginal('s2'), 'slixmpp’s message at bob');
    const s2 = carbon(await a1.got.next(isCarbonOf('s2', 'sent'), 'the sent carbon of slixmpp’s message at a1'))!;
    assert.equal(s2.inner.attrs.from, slix.jid);
    await slix.command('send_private', { to: bob.jid, body: 'private', msg_id: 's3' });
    await slix.message(bob.jid, 'after private', { id: 's4' });
    await a1.got.next(isCarbonOf('s4', 'sent'), 'the carbon of the message after the private one');
    await bob.got.next(isOriginal('s3'), 'the private message at bob');
    assert.deepEqual(
      carbonsIn(a1.got).map((k) => k.inner.attrs.id),
      ['s2', 's4'],
      'no copy of the private message',
    );

    // slixmpp disables: nothing more, while a1 still gets its own copies.
    await slix.command('carbons_disable');
    await send(bob, 'alice@localhost', 'd1', 'after disable');
    await a1.got.next(isOriginal('d1'), 'd1 at a1');
    await send(bob, slix.jid, 'mark', 'marker');
    await slix.next((s) => s.kind === 'message' && s.id === 'mark', 'slixmpp: the marker', WAIT);
    assert.deepEqual(
      slixCarbons(slix).map((k) => `${k.direction}:${k.inner.id}`),
      ['received:r1', 'sent:s1'],
      'after disable, nothing more',
    );
  });
});
