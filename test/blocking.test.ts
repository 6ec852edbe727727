// XEP-0191 Blocking Command over raw XML: blocklist retrieval, block and unblock
// with pushes, enforcement in both directions, JID matching, and the presence
// sent on block and unblock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import { iq, stanzaErrorCondition as condition, type RawClient } from './support/raw-client.js';
import type { OfflineApi } from '../src/modules/offline/api.js';

const NS_BLOCKING = 'urn:xmpp:blocking';
const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

let srv: TestServer;
before(async () => {
  // Client-chosen resources, so full-JID blocking can be tested.
  srv = await startTestServer({ bind: { resource: 'client' } });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'romeo', 'juliet', 'erin', 'frank']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

/** A ping to the server and its answer: everything sent to this client before has arrived. */
async function roundTrip(c: RawClient): Promise<void> {
  const r = await iq(c, `type='get' to='localhost'`, `<ping xmlns='${NS.PING}'/>`);
  assert.equal(r.attrs.type, 'result');
}

function isBlockedError(reply: Element): boolean {
  const error = reply.getChild('error');
  return (
    reply.attrs.type === 'error' &&
    error?.attrs.type === 'cancel' &&
    error.getChild('not-acceptable', NS.STANZA_ERRORS) !== undefined &&
    error.getChild('blocked', NS_BLOCKING_ERRORS) !== undefined
  );
}

async function online(user: string, resource: string): Promise<LoggedIn> {
  const s = await login(srv.port, user, `${user}-pass`, { resource });
  s.client.send('<presence/>');
  await roundTrip(s.client);
  return s;
}

async function blocklist(c: RawClient): Promise<string[]> {
  const r = await iq(c, `type='get'`, `<blocklist xmlns='${NS_BLOCKING}'/>`);
  assert.equal(r.attrs.type, 'result');
  const list = r.getChild('blocklist', NS_BLOCKING);
  assert.ok(list, 'a <blocklist/> element, even when empty (§3.2)');
  return list.getChildren('item', NS_BLOCKING).map((i) => i.attrs.jid ?? '');
}

const push = (name: 'block' | 'unblock') => (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild(name, NS_BLOCKING) !== undefined;
const pushedJids = (el: Element, name: 'block' | 'unblock'): string[] =>
  el
    .getChild(name, NS_BLOCKING)!
    .getChildren('item', NS_BLOCKING)
    .map((i) => i.attrs.jid ?? '');

test('disco: urn:xmpp:blocking on the server and the account (§3.1)', async () => {
  const a = await login(srv.port, 'dave', 'dave-pass', { resource: 'disco' });
  for (const to of ['localhost', 'dave@localhost']) {
    const r = await iq(a.client, `type='get' to='${to}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
    const features = r.getChild('query', NS.DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var) ?? [];
    assert.ok(features.includes(NS_BLOCKING), to);
  }
  a.client.close();
});

test('block, pushes, enforcement both ways, unblock', async () => {
  const alice = await online('alice', 'desk');
  const alice2 = await online('alice', 'phone'); // never asks for the blocklist: gets no pushes
  const bob = await online('bob', 'home');

  assert.deepEqual(await blocklist(alice.client), []);

  // Before blocking, bob reaches alice.
  bob.client.send(`<message to='alice@localhost/desk' type='chat' id='pre'><body>before</body></message>`);
  await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'pre');

  // §3.3: block; result, then a push to the interested resource.
  const result = await iq(alice.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item jid='BOB@localhost'/></block>`);
  assert.equal(result.attrs.type, 'result');
  assert.equal(result.children.length, 0);
  const pushed = await alice.client.waitFor(push('block'), 'block push');
  assert.deepEqual(pushedJids(pushed, 'block'), ['bob@localhost'], 'the JID in canonical form');
  assert.equal(pushed.attrs.to, alice.jid);
  // The client acknowledges the push like any IQ-set; the server just takes the result.
  alice.client.send(`<iq type='result' id='${pushed.attrs.id ?? ''}'/>`);
  await roundTrip(alice2.client);
  assert.doesNotMatch(alice2.client.received, /urn:xmpp:blocking/, 'no push to a resource that did not request the list');
  assert.deepEqual(await blocklist(alice.client), ['bob@localhost']);

  // §3.3 inbound: bob's message bounces with service-unavailable and never reaches alice.
  bob.client.send(`<message to='alice@localhost' type='chat' id='m1'><body>secret-one</body></message>`);
  const bounced = await bob.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'm1');
  assert.equal(condition(bounced), 'service-unavailable');
  assert.equal(bounced.attrs.from, 'alice@localhost');
  bob.client.send(`<message to='alice@localhost/desk' type='chat' id='m2'><body>secret-two</body></message>`);
  assert.equal(condition(await bob.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'm2')), 'service-unavailable');
  // IQ get/set: service-unavailable, whether for a resource or answered by the server for the account.
  assert.equal(condition(await iq(bob.client, `type='get' to='${alice.jid}'`, `<query xmlns='jabber:iq:version'/>`)), 'service-unavailable');
  assert.equal(condition(await iq(bob.client, `type='get' to='alice@localhost'`, `<vCard xmlns='vcard-temp'/>`)), 'service-unavailable');
  // Presence: dropped without an answer.
  bob.client.send(`<presence to='alice@localhost/desk'><status>secret-three</status></presence>`);
  bob.client.send(`<presence to='alice@localhost' type='subscribe'/>`);
  await roundTrip(bob.client);
  assert.doesNotMatch(bob.client.received, /<presence[^>]*type="error"/);
  await roundTrip(alice.client);
  await roundTrip(alice2.client);
  for (const c of [alice, alice2]) {
    assert.doesNotMatch(c.client.received, /secret-/, 'nothing from the blocked JID arrived');
    assert.doesNotMatch(c.client.received, /type="subscribe"/);
  }

  // §3.3 outbound: alice's stanzas to bob are refused with not-acceptable + <blocked/>.
  alice.client.send(`<message to='bob@localhost' type='chat' id='o1'><body>secret-four</body></message>`);
  const refused = await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'o1');
  assert.ok(isBlockedError(refused), refused.toString());
  assert.equal(refused.attrs.from, 'bob@localhost');
  assert.equal(refused.getChildText('body'), 'secret-four', 'the original payload comes back (XEP-0191 example)');
  assert.ok(isBlockedError(await iq(alice.client, `type='get' to='${bob.jid}'`, `<ping xmlns='${NS.PING}'/>`)));
  alice.client.send(`<presence to='bob@localhost' id='p1'/>`);
  assert.ok(isBlockedError(await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.id === 'p1')));
  await roundTrip(bob.client);
  assert.doesNotMatch(bob.client.received, /secret-four/);

  // The user's own resources still reach each other (§5 note).
  alice2.client.send(`<message to='${alice.jid}' type='chat' id='self'><body>to myself</body></message>`);
  await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'self');

  // §3.4: unblock; push; bob gets through again.
  assert.equal((await iq(alice.client, `type='set'`, `<unblock xmlns='${NS_BLOCKING}'><item jid='bob@localhost'/></unblock>`)).attrs.type, 'result');
  assert.deepEqual(pushedJids(await alice.client.waitFor(push('unblock'), 'unblock push'), 'unblock'), ['bob@localhost']);
  assert.deepEqual(await blocklist(alice.client), []);
  bob.client.send(`<message to='alice@localhost/desk' type='chat' id='after'><body>after</body></message>`);
  await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'after');

  for (const c of [alice, alice2, bob]) c.client.close();
});

test('JID matching (§6), unblock all (§3.5), and the block survives a new session', async () => {
  const juliet = await online('juliet', 'balcony');
  const romeoOrchard = await online('romeo', 'orchard');
  const romeoHall = await online('romeo', 'hall');

  await blocklist(juliet.client);
  await iq(juliet.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item jid='romeo@localhost/orchard'/><item jid='nurse@example.net'/></block>`);
  const pushed = await juliet.client.waitFor(push('block'));
  assert.deepEqual(pushedJids(pushed, 'block'), ['romeo@localhost/orchard', 'nurse@example.net']);

  // Only that resource is blocked.
  romeoOrchard.client.send(`<message to='juliet@localhost/balcony' id='o'><body>orchard</body></message>`);
  assert.equal(condition(await romeoOrchard.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'o')), 'service-unavailable');
  romeoHall.client.send(`<message to='juliet@localhost/balcony' id='h'><body>hall</body></message>`);
  assert.equal((await juliet.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'h')).getChildText('body'), 'hall');
  // A domain rule blocks everyone there: juliet cannot write to anyone at example.net... nor at localhost after this.
  await iq(juliet.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item jid='localhost'/></block>`);
  await juliet.client.waitFor(push('block'));
  romeoHall.client.send(`<message to='juliet@localhost' id='h2'><body>hall again</body></message>`);
  assert.equal(condition(await romeoHall.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'h2')), 'service-unavailable');
  // ... but the server itself still answers her (an IQ to the server is not "to the JID").
  await roundTrip(juliet.client);

  // The blocklist is kept across sessions.
  juliet.client.close();
  const juliet2 = await online('juliet', 'bedroom');
  assert.deepEqual((await blocklist(juliet2.client)).sort(), ['localhost', 'nurse@example.net', 'romeo@localhost/orchard']);
  romeoHall.client.send(`<message to='juliet@localhost' id='h3'><body>hall three</body></message>`);
  assert.equal(condition(await romeoHall.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'h3')), 'service-unavailable');
  // Even with her own domain blocked, her resources reach each other (§5 note).
  const attic = await online('juliet', 'attic');
  attic.client.send(`<message to='${juliet2.jid}' type='chat' id='own'><body>note to self</body></message>`);
  await juliet2.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'own');
  attic.client.send(`<iq type='get' id='own-iq' to='${juliet2.jid}'><ping xmlns='${NS.PING}'/></iq>`);
  const routed = await juliet2.client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'own-iq');
  assert.equal(routed.attrs.from, attic.jid);
  attic.client.close();

  // §3.5: an empty <unblock/> clears everything, with an empty unblock push.
  assert.equal((await iq(juliet2.client, `type='set'`, `<unblock xmlns='${NS_BLOCKING}'/>`)).attrs.type, 'result');
  const all = await juliet2.client.waitFor(push('unblock'));
  assert.equal(all.getChild('unblock', NS_BLOCKING)?.children.length, 0);
  assert.deepEqual(await blocklist(juliet2.client), []);
  romeoOrchard.client.send(`<message to='juliet@localhost' id='o2'><body>orchard again</body></message>`);
  await juliet2.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'o2');

  for (const c of [juliet2, romeoOrchard, romeoHall]) c.client.close();
});

test('a blocked sender cannot fill the offline store', async () => {
  const carol = await login(srv.port, 'carol', 'carol-pass', { resource: 'r' });
  await iq(carol.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item jid='dave@localhost'/></block>`);
  carol.client.close();
  await carol.client.closedEvent();
  const dave = await login(srv.port, 'dave', 'dave-pass', { resource: 'r' });
  dave.client.send(`<message to='carol@localhost' type='chat' id='x'><body>hi</body></message>`);
  assert.equal(condition(await dave.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'x')), 'service-unavailable');
  assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'carol'), 0);
  // Blocking is checked against the store when the user has no session.
  assert.equal(await srv.server.storage.blocking.isBlocked('localhost', 'carol', dave.jid), true);
  dave.client.close();
});

test('errors: empty block, missing or malformed jid, someone else\'s list, wrong element', async () => {
  const a = await login(srv.port, 'dave', 'dave-pass', { resource: 'errors' });
  assert.equal(condition(await iq(a.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'/>`)), 'bad-request');
  assert.equal(condition(await iq(a.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item/></block>`)), 'bad-request');
  assert.equal(condition(await iq(a.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item jid='a@b@c'/></block>`)), 'jid-malformed');
  assert.equal(condition(await iq(a.client, `type='get' to='bob@localhost'`, `<blocklist xmlns='${NS_BLOCKING}'/>`)), 'forbidden');
  assert.equal(condition(await iq(a.client, `type='set' to='bob@localhost'`, `<block xmlns='${NS_BLOCKING}'><item jid='x@y'/></block>`)), 'forbidden');
  assert.equal(condition(await iq(a.client, `type='set'`, `<blocklist xmlns='${NS_BLOCKING}'/>`)), 'bad-request');
  assert.equal(condition(await iq(a.client, `type='get'`, `<block xmlns='${NS_BLOCKING}'/>`)), 'bad-request');
  assert.deepEqual(await blocklist(a.client), [], 'nothing was stored by the failed commands');
  a.client.close();
});

/** Mutual presence subscription between two online users (RFC 6121 §3.1). */
async function subscribeBoth(a: LoggedIn, aUser: string, b: LoggedIn, bUser: string): Promise<void> {
  for (const [x, xUser, y, yUser] of [
    [a, aUser, b, bUser],
    [b, bUser, a, aUser],
  ] as const) {
    x.client.send(`<presence to='${yUser}@localhost' type='subscribe'/>`);
    await y.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === `${xUser}@localhost`);
    y.client.send(`<presence to='${xUser}@localhost' type='subscribed'/>`);
    await x.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribed' && el.attrs.from === `${yUser}@localhost`);
  }
  await roundTrip(a.client);
  await roundTrip(b.client);
}

test('presence on block and unblock (§3.3, §3.4)', async () => {
  const erin = await online('erin', 'e');
  const frank = await online('frank', 'f');
  await subscribeBoth(erin, 'erin', frank, 'frank');
  erin.client.send('<presence><status>erin here</status></presence>');
  await frank.client.waitFor((el) => el.name === 'presence' && el.attrs.from === erin.jid && el.getChildText('status') === 'erin here');
  frank.client.send('<presence><status>frank here</status></presence>');
  await erin.client.waitFor((el) => el.name === 'presence' && el.attrs.from === frank.jid && el.getChildText('status') === 'frank here');

  await iq(erin.client, `type='set'`, `<block xmlns='${NS_BLOCKING}'><item jid='frank@localhost'/></block>`);
  // The blocked contact sees the user go offline, and the user sees the contact go offline.
  await frank.client.waitFor((el) => el.name === 'presence' && el.attrs.from === erin.jid && el.attrs.type === 'unavailable', 'erin unavailable for frank');
  await erin.client.waitFor((el) => el.name === 'presence' && el.attrs.from === frank.jid && el.attrs.type === 'unavailable', 'frank unavailable for erin');

  await iq(erin.client, `type='set'`, `<unblock xmlns='${NS_BLOCKING}'><item jid='frank@localhost'/></unblock>`);
  // The user's current presence goes to the contact, and the contact's to the user.
  const again = await frank.client.waitFor((el) => el.name === 'presence' && el.attrs.from === erin.jid && el.getChildText('status') === 'erin here', 'erin back for frank');
  assert.equal(again.attrs.type, undefined);
  assert.equal(again.attrs.to, 'frank@localhost', 'addressed to the bare JID, as a broadcast is');
  const back = await erin.client.waitFor((el) => el.name === 'presence' && el.attrs.from === frank.jid && el.getChildText('status') === 'frank here', 'frank back for erin');
  assert.equal(back.attrs.to, 'erin@localhost');
  erin.client.close();
  frank.client.close();
});
