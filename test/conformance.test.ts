// RFC 6121 details that real clients trip over (hardening issue, items 12-15),
// over raw XML: subscription requests stored with their extensions, presence to
// a bare JID delivered with 'to' as addressed, the roster result before its
// push, chat states and no-store hints to offline users dropped without an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { iq } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';

const NS_PARS = 'urn:xmpp:pars:0';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

async function online(user: string, resource?: string): Promise<LoggedIn> {
  const s = await login(srv.port, user, `${user}-pass`, resource ? { resource } : {});
  await iq(s.client, `type='get'`, `<query xmlns='${NS.ROSTER}'/>`);
  s.client.send('<presence/>');
  await s.client.waitFor((el) => el.name === 'presence' && el.attrs.from === s.jid, 'own presence');
  return s;
}

const isSubscribe = (from: string) => (el: Element) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === from;

test('12: a subscription request stored for an offline contact is delivered with its extensions, at each login until answered', async () => {
  const alice = await online('alice');
  alice.client.send(
    `<presence to='bob@localhost' type='subscribe' id='req1'><status>It is Alice, from the conference</status><preauth xmlns='${NS_PARS}' token='a1b2c3'/><nick xmlns='http://jabber.org/protocol/nick'>Alice</nick></presence>`,
  );
  await alice.client.waitFor((el) => el.name === 'iq' && el.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.ask === 'subscribe', 'ask push');

  for (const round of [1, 2]) {
    const bob = await online('bob');
    const req = await bob.client.waitFor(isSubscribe('alice@localhost'), `the stored request (login ${round})`);
    assert.equal(req.attrs.to, 'bob@localhost');
    assert.equal(req.attrs.id, 'req1');
    assert.equal(req.getChildText('status'), 'It is Alice, from the conference');
    assert.equal(req.getChild('preauth', NS_PARS)?.attrs.token, 'a1b2c3', 'XEP-0379 token kept');
    assert.equal(req.getChildText('nick', 'http://jabber.org/protocol/nick'), 'Alice');
    bob.client.close();
  }
  // Answered: not delivered any more.
  const bob = await online('bob');
  await bob.client.waitFor(isSubscribe('alice@localhost'), 'the request once more');
  bob.client.send(`<presence to='alice@localhost' type='subscribed'/>`);
  await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribed', 'approval');
  bob.client.close();
  const bob2 = await online('bob');
  await iq(bob2.client, `type='get' to='localhost'`, `<ping xmlns='${NS.PING}'/>`);
  assert.equal(bob2.client.received.includes("type='subscribe'") || bob2.client.received.includes('type="subscribe"'), false, 'no request after the answer');
  bob2.client.close();
  alice.client.close();
});

test('13: presence addressed to a bare JID reaches every resource with that bare JID in to', async () => {
  const carol1 = await online('carol', 'phone');
  const carol2 = await online('carol', 'laptop');
  const dave = await online('dave');
  dave.client.send(`<presence to='carol@localhost' type='subscribe'/>`);
  for (const c of [carol1, carol2]) assert.equal((await c.client.waitFor(isSubscribe('dave@localhost'))).attrs.to, 'carol@localhost');
  carol1.client.send(`<presence to='dave@localhost' type='subscribed'/>`);
  const subscribed = await dave.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribed');
  assert.equal(subscribed.attrs.to, 'dave@localhost');
  // Broadcast (§4.2.2): dave's updates go to carol's bare JID; each resource gets them so addressed.
  carol2.client.send(`<presence to='dave@localhost' type='subscribe'/>`);
  await dave.client.waitFor(isSubscribe('carol@localhost'));
  dave.client.send(`<presence to='carol@localhost' type='subscribed'/>`);
  dave.client.send('<presence><status>dave is in</status></presence>');
  for (const c of [carol1, carol2]) {
    const p = await c.client.waitFor((el) => el.name === 'presence' && el.attrs.from === dave.jid && el.getChildText('status') === 'dave is in', 'dave update');
    assert.equal(p.attrs.to, 'carol@localhost');
  }
  // Directed presence to the bare JID, and the broadcast unavailable at logout.
  dave.client.send(`<presence to='carol@localhost' id='directed'><status>just for carol</status></presence>`);
  for (const c of [carol1, carol2]) assert.equal((await c.client.waitFor((el) => el.attrs.id === 'directed')).attrs.to, 'carol@localhost');
  dave.client.send('<presence type="unavailable"/>');
  for (const c of [carol1, carol2]) {
    const gone = await c.client.waitFor((el) => el.name === 'presence' && el.attrs.from === dave.jid && el.attrs.type === 'unavailable', 'dave unavailable');
    assert.equal(gone.attrs.to, 'carol@localhost');
  }
  // Unavailable on block (XEP-0191 §3.3) too.
  const dave2 = await online('dave');
  await carol1.client.waitFor((el) => el.name === 'presence' && el.attrs.from === dave2.jid && el.attrs.type === undefined, 'dave back');
  await iq(dave2.client, `type='set'`, `<block xmlns='urn:xmpp:blocking'><item jid='carol@localhost'/></block>`);
  for (const c of [carol1, carol2]) {
    const gone = await c.client.waitFor((el) => el.name === 'presence' && el.attrs.from === dave2.jid && el.attrs.type === 'unavailable', 'dave unavailable on block');
    assert.equal(gone.attrs.to, 'carol@localhost');
  }
  for (const c of [carol1, carol2, dave, dave2]) c.client.close();
});

test('14: a roster set is answered with its result first, then the push', async () => {
  const erin = await online('erin');
  // What arrives after each request, in order (serialised with double quotes by the server).
  let mark = erin.client.received.length;
  erin.client.send(`<iq type='set' id='set1'><query xmlns='${NS.ROSTER}'><item jid='frank@localhost' name='Frank'/></query></iq>`);
  await erin.client.waitFor((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS.ROSTER) !== undefined, 'the push');
  let after = erin.client.received.slice(mark);
  assert.ok(after.indexOf('id="set1"') >= 0 && after.indexOf('id="set1"') < after.indexOf('<query xmlns="jabber:iq:roster"'), after);
  // The same for a removal.
  mark = erin.client.received.length;
  erin.client.send(`<iq type='set' id='rm1'><query xmlns='${NS.ROSTER}'><item jid='frank@localhost' subscription='remove'/></query></iq>`);
  await erin.client.waitFor((el) => el.name === 'iq' && el.getChild('query', NS.ROSTER)?.getChild('item')?.attrs.subscription === 'remove', 'the removal push');
  after = erin.client.received.slice(mark);
  assert.ok(after.indexOf('id="rm1"') >= 0 && after.indexOf('id="rm1"') < after.indexOf('subscription="remove"'), after);
  erin.client.close();
});
