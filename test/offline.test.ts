// XEP-0160 offline messages over raw XML: storage while the user has no available
// resource, the XEP-0203 delay, delivery in order on non-negative initial presence,
// the per-user limit, and what is not stored (RFC 6121 §8.5.2.2.1, XEP-0085).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { RawClient } from './support/raw-client.js';
import type { OfflineApi } from '../src/modules/offline/api.js';

const NS_DELAY = 'urn:xmpp:delay';
const LIMIT = 5;

let srv: TestServer;
before(async () => {
  // Every sender here is a stranger to the recipient: the strangers' share is lifted, so that
  // these tests see the per-user limit alone (test/hardening-offline.test.ts tests the shares).
  srv = await startTestServer({ offline: { max_per_user: LIMIT, strangers_share: 1 } });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

let seq = 0;
/** A ping to the server and its answer: everything the client sent before has been processed. */
async function roundTrip(c: RawClient): Promise<void> {
  const id = `rt-${++seq}`;
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  await c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 'ping result');
}

const count = (user: string): Promise<number> => srv.server.module<OfflineApi>('offline').count('localhost', user);
/**
 * Delivered messages leave storage after they were written to the client, so the client can
 * see them a moment before the store's delete completes (a round trip on PostgreSQL): wait for it.
 */
async function countBecomes(user: string, expected: number, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  let n = await count(user);
  while (n !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    n = await count(user);
  }
  assert.equal(n, expected, what);
}
const messageWithBody = (body: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === body;

test('the server advertises msgoffline (XEP-0160 §4)', async () => {
  const a = await login(srv.port, 'erin', 'erin-pass');
  a.client.send(`<iq type='get' id='d1' to='localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`);
  const r = await a.client.waitFor((el) => el.attrs.id === 'd1');
  const features = r.getChild('query', NS.DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var) ?? [];
  assert.ok(features.includes('msgoffline'));
  a.client.close();
});

test('stored while offline, delivered in order with a delay on initial presence, then gone', async () => {
  const bob = await login(srv.port, 'bob', 'bob-pass');
  const before = Date.now();
  bob.client.send(`<message to='alice@localhost' type='chat' id='m1'><body>one</body></message>`);
  bob.client.send(`<message to='alice@localhost' type='normal' id='m2'><body>two</body></message>`);
  bob.client.send(`<message to='alice@localhost' id='m3'><body>three &amp; &lt;more&gt;</body><x xmlns='jabber:x:oob'><url>https://example.org/</url></x></message>`);
  // RFC 6121 §8.5.3.2.1: to a resource that does not exist, treated as sent to the bare JID.
  bob.client.send(`<message to='alice@localhost/nowhere' type='chat' id='m4' xml:lang='fr'><body>four</body></message>`);
  // Not stored: headlines (XEP-0160 §3), standalone chat states (XEP-0085), neither bounced.
  bob.client.send(`<message to='alice@localhost' type='headline' id='h1'><body>news</body></message>`);
  bob.client.send(`<message to='alice@localhost' type='chat' id='cs1'><composing xmlns='http://jabber.org/protocol/chatstates'/><thread>t1</thread></message>`);
  await roundTrip(bob.client);
  assert.equal(await count('alice'), 4);
  assert.doesNotMatch(bob.client.received, /type="error"/, 'nothing was bounced');

  const alice = await login(srv.port, 'alice', 'alice-pass');
  assert.equal(await count('alice'), 4, 'binding a resource does not deliver (XEP-0160 §2: presence does)');
  alice.client.send('<presence/>');
  const got: Element[] = [];
  for (let i = 0; i < 4; i++) got.push(await alice.client.element('message'));
  assert.deepEqual(
    got.map((m) => m.getChildText('body')),
    ['one', 'two', 'three & <more>', 'four'],
  );
  assert.deepEqual(
    got.map((m) => m.attrs.id),
    ['m1', 'm2', 'm3', 'm4'],
  );
  for (const m of got) {
    assert.equal(m.attrs.from, bob.jid, 'the original sender');
    const delay = m.getChild('delay', NS_DELAY);
    assert.ok(delay, 'XEP-0203 delay added');
    assert.equal(delay.attrs.from, 'localhost');
    const stamp = Date.parse(delay.attrs.stamp ?? '');
    assert.match(delay.attrs.stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'XEP-0082 DateTime in UTC');
    assert.ok(stamp >= before - 1000 && stamp <= Date.now() + 1000);
  }
  assert.equal(got[2]?.getChild('x', 'jabber:x:oob')?.getChildText('url', 'jabber:x:oob'), 'https://example.org/', 'extensions kept');
  assert.equal(got[3]?.attrs['xml:lang'], 'fr');
  assert.equal(got[3]?.attrs.to, 'alice@localhost/nowhere');
  assert.equal(got[0]?.attrs.type, 'chat');
  await countBecomes('alice', 0, 'delivered messages are removed');
  assert.doesNotMatch(alice.client.received, /news|composing/);

  // Now available: messages go straight through, nothing is stored.
  bob.client.send(`<message to='alice@localhost' type='chat' id='m5'><body>live</body></message>`);
  const live = await alice.client.waitFor(messageWithBody('live'));
  assert.equal(live.getChild('delay', NS_DELAY), undefined);
  assert.equal(await count('alice'), 0);
  alice.client.close();
  bob.client.close();
});

test('beyond offline.max_per_user the sender gets service-unavailable (XEP-0160 §2)', async () => {
  const bob = await login(srv.port, 'bob', 'bob-pass');
  for (let i = 1; i <= LIMIT; i++) bob.client.send(`<message to='carol@localhost' type='chat' id='c${i}'><body>c${i}</body></message>`);
  bob.client.send(`<message to='carol@localhost' type='chat' id='over'><body>over</body></message>`);
  const bounce = await bob.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'over');
  assert.equal(bounce.attrs.type, 'error');
  assert.equal(bounce.attrs.from, 'carol@localhost');
  assert.equal(bounce.attrs.to, bob.jid);
  assert.ok(bounce.getChild('error')?.getChild('service-unavailable', NS.STANZA_ERRORS));
  assert.equal(await count('carol'), LIMIT);

  const carol = await login(srv.port, 'carol', 'carol-pass');
  carol.client.send('<presence/>');
  for (let i = 1; i <= LIMIT; i++) assert.equal((await carol.client.element('message')).getChildText('body'), `c${i}`);
  await countBecomes('carol', 0, 'delivered messages are removed');
  carol.client.close();
  bob.client.close();
});

test('negative priority: nothing delivered until the priority becomes non-negative (XEP-0160 §2)', async () => {
  const bob = await login(srv.port, 'bob', 'bob-pass');
  bob.client.send(`<message to='dave@localhost' type='chat' id='d1'><body>d1</body></message>`);
  bob.client.send(`<message to='dave@localhost' type='chat' id='d2'><body>d2</body></message>`);
  await roundTrip(bob.client);
  assert.equal(await count('dave'), 2);

  const dave = await login(srv.port, 'dave', 'dave-pass');
  dave.client.send('<presence><priority>-1</priority></presence>');
  await roundTrip(dave.client);
  assert.equal(await count('dave'), 2, 'a negative-priority resource does not take them');
  // RFC 6121 §8.5.2.2.1: with only negative-priority resources, a new message is stored too.
  bob.client.send(`<message to='dave@localhost' type='chat' id='d3'><body>d3</body></message>`);
  await roundTrip(bob.client);
  assert.equal(await count('dave'), 3);

  dave.client.send('<presence><priority>1</priority></presence>');
  for (const body of ['d1', 'd2', 'd3']) assert.equal((await dave.client.element('message')).getChildText('body'), body);
  await countBecomes('dave', 0, 'delivered messages are removed');
  dave.client.close();
  bob.client.close();
});

test('messages from a JID blocked since they were stored are not delivered (XEP-0191 §3.3)', async () => {
  const bob = await login(srv.port, 'bob', 'bob-pass');
  const carol = await login(srv.port, 'carol', 'carol-pass');
  bob.client.send(`<message to='erin@localhost' type='chat' id='b1'><body>from bob 1</body></message>`);
  await roundTrip(bob.client);
  carol.client.send(`<message to='erin@localhost' type='chat' id='c1'><body>from carol</body></message>`);
  await roundTrip(carol.client);
  bob.client.send(`<message to='erin@localhost' type='chat' id='b2'><body>from bob 2</body></message>`);
  await roundTrip(bob.client);
  assert.equal(await count('erin'), 3);

  // erin blocks carol before becoming available (no presence yet: nothing is delivered).
  const erin = await login(srv.port, 'erin', 'erin-pass');
  erin.client.send(`<iq type='set' id='blk'><block xmlns='urn:xmpp:blocking'><item jid='carol@localhost'/></block></iq>`);
  assert.equal((await erin.client.waitFor((el) => el.attrs.id === 'blk')).attrs.type, 'result');
  erin.client.send('<presence/>');
  assert.equal((await erin.client.element('message')).attrs.id, 'b1');
  assert.equal((await erin.client.element('message')).attrs.id, 'b2');
  assert.doesNotMatch(erin.client.received, /from carol/, "carol's message, stored between bob's, is not delivered");
  await countBecomes('erin', 0, 'and not kept either');
  for (const c of [bob, carol, erin]) c.client.close();
});

test('a <no-store/> hint (XEP-0334 §4.2) or a chat state alone (XEP-0085) is neither stored nor bounced', async () => {
  const bob = await login(srv.port, 'bob', 'bob-pass');
  bob.client.send(`<message to='carol@localhost' type='chat' id='ns'><body>ephemeral</body><no-store xmlns='urn:xmpp:hints'/></message>`);
  bob.client.send(`<message to='carol@localhost' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
  bob.client.send(
    `<message to='carol@localhost' type='chat' id='cs2'><paused xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>`,
  );
  // A round trip after them: had any been bounced, the error would have come first.
  await roundTrip(bob.client);
  assert.doesNotMatch(bob.client.received, /type=["']error["']/, 'no error for a message the server chose not to keep');
  assert.equal(await count('carol'), 0);
  // A plain message to the same offline user is still kept.
  bob.client.send(`<message to='carol@localhost' type='chat' id='kept'><body>kept</body></message>`);
  await roundTrip(bob.client);
  assert.equal(await count('carol'), 1);
  bob.client.close();
});
