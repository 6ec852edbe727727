// RFC 6121 subscriptions and presence over raw XML: mutual subscription, initial
// presence broadcast and probes, logout and abrupt-disconnect notifications.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
  for (const u of ['alice', 'bob', 'carol', 'dave', 'eve', 'frank']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

async function online(user: string): Promise<LoggedIn> {
  const s = await login(srv.port, user, `${user}-pass`);
  s.client.send(`<iq type='get' id='roster'><query xmlns='${NS.ROSTER}'/></iq>`);
  await s.client.waitFor((el) => el.attrs.id === 'roster');
  s.client.send('<presence/>');
  return s;
}

const presenceFrom = (from: string, type?: string) => (el: Element) =>
  el.name === 'presence' && (el.attrs.from ?? '').startsWith(from) && el.attrs.type === type;

const push = (jid: string, subscription: string) => (el: Element) =>
  el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.jid === jid &&
  el.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.subscription === subscription;

test('mutual subscription, initial presence, logout and abrupt disconnect', async () => {
  const alice = await online('alice');
  const bob = await online('bob');

  // alice asks bob; bob approves; bob asks back; alice approves => both.
  alice.client.send(`<presence to='bob@localhost' type='subscribe'/>`);
  const req = await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
  assert.equal(req.attrs.from, 'alice@localhost', 'bare JID stamped on subscription requests');
  const ask = await alice.client.waitFor((el) => el.name === 'iq' && el.getChild('query', NS.ROSTER) !== undefined);
  assert.equal(ask.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.ask, 'subscribe');

  bob.client.send(`<presence to='alice@localhost' type='subscribed'/>`);
  await alice.client.waitFor(push('bob@localhost', 'to'), 'push subscription=to');
  await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribed');
  await alice.client.waitFor(presenceFrom('bob@localhost/'), "bob's presence after approval");

  bob.client.send(`<presence to='alice@localhost' type='subscribe'/>`);
  await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
  alice.client.send(`<presence to='bob@localhost' type='subscribed'/>`);
  await bob.client.waitFor(push('alice@localhost', 'both'), 'push subscription=both');
  await alice.client.waitFor(push('bob@localhost', 'both'), 'push subscription=both');

  // Logout: bob hears alice's unavailable.
  alice.client.send(`<presence type='unavailable'/></stream:stream>`);
  await bob.client.waitFor(presenceFrom(alice.jid, 'unavailable'), 'unavailable on logout');

  // Login again: initial presence reaches bob, and alice gets bob's presence (probe answered locally).
  const alice2 = await online('alice');
  await bob.client.waitFor(presenceFrom(alice2.jid), "alice's initial presence");
  await alice2.client.waitFor(presenceFrom(bob.jid), "bob's presence in answer to the probe");

  // Abrupt disconnect: bob still hears that alice is gone.
  alice2.client.close();
  await bob.client.waitFor(presenceFrom(alice2.jid, 'unavailable'), 'unavailable after a socket drop');
  bob.client.close();
});

test('pending subscription request is delivered at next login; denial', async () => {
  const carol = await online('carol');
  carol.client.send(`<presence to='dave@localhost' type='subscribe'/>`);
  await carol.client.waitFor(push('dave@localhost', 'none'));
  const dave = await online('dave');
  const req = await dave.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
  assert.equal(req.attrs.from, 'carol@localhost');
  dave.client.send(`<presence to='carol@localhost' type='unsubscribed'/>`);
  await carol.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unsubscribed' && el.attrs.from === 'dave@localhost');
  const denied = await carol.client.waitFor(push('dave@localhost', 'none'));
  assert.equal(denied.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.ask, undefined, 'ask cleared after denial');
  carol.client.close();
  dave.client.close();
});

test('roster set, push and remove; errors', async () => {
  const a = await online('alice');
  a.client.send(`<iq type='set' id='s1'><query xmlns='${NS.ROSTER}'><item jid='carol@localhost' name='Carol'><group>Friends</group></item></query></iq>`);
  const pushed = await a.client.waitFor(push('carol@localhost', 'none'));
  assert.equal(pushed.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.name, 'Carol');
  assert.equal((await a.client.waitFor((el) => el.attrs.id === 's1')).attrs.type, 'result');
  a.client.send(`<iq type='set' id='s2'><query xmlns='${NS.ROSTER}'><item jid='x@localhost'/><item jid='y@localhost'/></query></iq>`);
  const e2 = await a.client.waitFor((el) => el.attrs.id === 's2');
  assert.ok(e2.getChild('error')?.getChild('bad-request', NS.STANZA_ERRORS));
  a.client.send(`<iq type='set' id='s3'><query xmlns='${NS.ROSTER}'><item jid='z@localhost'><group></group></item></query></iq>`);
  const e3 = await a.client.waitFor((el) => el.attrs.id === 's3');
  assert.ok(e3.getChild('error')?.getChild('not-acceptable', NS.STANZA_ERRORS));
  a.client.send(`<iq type='set' id='s4'><query xmlns='${NS.ROSTER}'><item jid='carol@localhost' subscription='remove'/></query></iq>`);
  await a.client.waitFor(push('carol@localhost', 'remove'));
  a.client.close();
});

test('a blocked contact sees the user offline: no broadcast, no probe answer (XEP-0191)', async () => {
  const eve = await online('eve');
  const frank = await online('frank');
  // Mutual subscription first.
  eve.client.send(`<presence to='frank@localhost' type='subscribe'/>`);
  await frank.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
  frank.client.send(`<presence to='eve@localhost' type='subscribed'/><presence to='eve@localhost' type='subscribe'/>`);
  await eve.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
  eve.client.send(`<presence to='frank@localhost' type='subscribed'/>`);
  await frank.client.waitFor(push('eve@localhost', 'both'));
  // frank blocks eve; then eve logs in again.
  frank.client.send(`<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='eve@localhost'/></block></iq>`);
  await frank.client.waitFor((el) => el.attrs.id === 'b1');
  eve.client.send(`<presence type='unavailable'/></stream:stream>`);
  await eve.client.closedEvent();
  const eve2 = await online('eve');
  // A ping round trip on each side: everything the server sent before it has arrived.
  for (const c of [eve2.client, frank.client]) {
    c.send(`<iq type='get' id='sync'><ping xmlns='${NS.PING}'/></iq>`);
    await c.waitFor((el) => el.attrs.id === 'sync');
  }
  await assert.rejects(frank.client.waitFor(presenceFrom(eve2.jid), "eve's presence", 200), /timed out/);
  await assert.rejects(eve2.client.waitFor(presenceFrom(frank.jid), "frank's presence", 200), /timed out/);
  eve2.client.close();
  frank.client.close();
});

test('the resource that sent presence gets it back, as do the other resources (RFC 6121 §4.2.2, §4.4.2)', async () => {
  const a1 = await online('alice');
  const own = await a1.client.waitFor(presenceFrom(a1.jid), 'own initial presence');
  assert.equal(own.attrs.to, a1.jid);
  const a2 = await online('alice');
  await a1.client.waitFor(presenceFrom(a2.jid), "the second resource's presence");
  await a2.client.waitFor(presenceFrom(a1.jid), "the first resource's presence");
  a2.client.send('<presence><show>away</show></presence>');
  const update = await a2.client.waitFor((el) => presenceFrom(a2.jid)(el) && el.getChildText('show') === 'away', 'own update');
  assert.equal(update.attrs.to, a2.jid);
  await a1.client.waitFor((el) => presenceFrom(a2.jid)(el) && el.getChildText('show') === 'away', 'update at the other resource');
  a1.client.close();
  a2.client.close();
});
