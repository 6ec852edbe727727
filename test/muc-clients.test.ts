// XEP-0045 with real client libraries on a real server: slixmpp's own xep_0045,
// xep_0249, xep_0425, xep_0199 and xep_0313 plugins (test/slixmpp/muc_client.py) and
// xmpp.js (@xmpp/client, stanzas built with its xml()). Three users in a room:
// creation, entry, semi-anonymity as each library sees it, reflection, nick
// conflict, kick and ban, self-ping, moderation, a direct invitation, and the
// seed's clean-up: one user logs out, one drops its socket; the one left sees
// each leave once, and the temporary room goes when it is empty.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate, xml } from './support/xmppjs.js';
import { IqFailure, SlixClient, XjsClient, slixmppMissing, type StanzaView } from './support/im-clients.js';
import { NS } from '../src/xml/namespaces.js';

const MUC_SCRIPT = join(import.meta.dirname, 'slixmpp', 'muc_client.py');
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };
const SERVICE = 'conference.localhost';
const ROOM = `trio@${SERVICE}`;
const noSlix = slixmppMissing();

let srv: TestServer;
let caFile: string;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({ sasl: NO_PLUS });
  for (const u of ['alice', 'bob', 'carol']) await srv.addUser(u, `${u}-pass`);
  caFile = join(srv.dir, 'data', 'tls', 'self-signed.crt');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

const slix = (user: string): Promise<SlixClient> =>
  SlixClient.connect({ port: srv.port, user, password: `${user}-pass`, caFile, mech: 'SCRAM-SHA-256', script: MUC_SCRIPT });

/** The status codes in a reported stanza's XML. */
const codesIn = (s: StanzaView): number[] => [...s.xml.matchAll(/<status[^>]*code="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
const presence = (from: string, type: string | null = null) => (s: StanzaView): boolean => s.kind === 'presence' && s.from === from && s.type === type;
const groupchat = (body: string) => (s: StanzaView): boolean => s.kind === 'message' && s.type === 'groupchat' && s.body === body;

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof IqFailure) return err.condition;
    throw err;
  }
  return 'no error';
}

test('three users, slixmpp and xmpp.js: a room from creation to its end', { skip: noSlix || undefined }, async (t) => {
  const alice = await slix('alice');
  const carol = await slix('carol');
  const bob = await XjsClient.connect({ port: srv.port, user: 'bob', password: 'bob-pass', caFile });
  t.after(async () => {
    for (const c of [alice, carol, bob]) await c.dispose().catch(() => undefined);
  });
  await bob.xmpp.send(xml('presence'));

  // Creation (§10.1): slixmpp's join_muc_wait sees 110 and 201, owner and moderator; then an instant room.
  const created = (await alice.command('muc_join', { room: ROOM, nick: 'Alice' })) as unknown as { self: { codes: number[]; affiliation: string; role: string }; subject: string };
  assert.deepEqual(created.self.codes, [110, 201]);
  assert.equal(created.self.affiliation, 'owner');
  assert.equal(created.self.role, 'moderator');
  await alice.command('muc_instant', { room: ROOM });

  // bob (xmpp.js) enters.
  await bob.xmpp.send(xml('presence', { to: `${ROOM}/Bob` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
  const bobSelf = await bob.next((s) => presence(`${ROOM}/Bob`)(s) && codesIn(s).includes(110), "bob's self-presence");
  assert.deepEqual(codesIn(bobSelf), [110]);
  await bob.next((s) => s.kind === 'message' && s.from === ROOM && s.xml.includes('<subject'), 'the subject');

  // carol (slixmpp) enters, and sees alice and bob.
  const joined = (await carol.command('muc_join', { room: ROOM, nick: 'Carol' })) as unknown as { occupants: string[]; self: { codes: number[]; role: string } };
  assert.deepEqual(joined.occupants.sort(), ['Alice', 'Bob', 'Carol'], 'slixmpp counts itself among the occupants');
  assert.equal(joined.self.role, 'participant');
  // Semi-anonymous: slixmpp learnt bob's real JID at alice (moderator), not at carol (participant).
  await alice.next(presence(`${ROOM}/Carol`), "carol's presence at alice");
  assert.equal(((await alice.command('muc_jid', { room: ROOM, nick: 'Bob' })) as unknown as { jid: string }).jid, bob.jid);
  assert.equal(((await carol.command('muc_jid', { room: ROOM, nick: 'Bob' })) as unknown as { jid: string }).jid, '');
  assert.deepEqual(((await carol.command('muc_roster', { room: ROOM })) as unknown as { nicks: string[] }).nicks, ['Alice', 'Bob', 'Carol']);

  // Nick conflict (§7.2.9) as slixmpp reports it: a presence error.
  const carol2 = await slix('carol');
  t.after(() => carol2.dispose());
  assert.equal(await failure(carol2.command('muc_join', { room: ROOM, nick: 'Bob' })), 'conflict');

  // Reflection (§7.4): bob writes; everyone gets it, bob too, with the room's stanza id.
  await bob.xmpp.send(xml('message', { to: ROOM, type: 'groupchat', id: 'b1' }, xml('body', {}, 'hello from xmpp.js')));
  const atAlice = await alice.next(groupchat('hello from xmpp.js'), 'at alice');
  await carol.next(groupchat('hello from xmpp.js'), 'at carol');
  const own = await bob.next(groupchat('hello from xmpp.js'), 'own copy at bob');
  assert.equal(own.from, `${ROOM}/Bob`);
  assert.equal(own.id, 'b1');
  const stanzaId = /<stanza-id[^>]*id="([^"]+)"[^>]*by="trio@conference\.localhost"|<stanza-id[^>]*by="trio@conference\.localhost"[^>]*id="([^"]+)"/.exec(atAlice.xml);
  assert.ok(stanzaId, atAlice.xml);
  const sid = stanzaId[1] ?? stanzaId[2]!;

  // XEP-0425 (version 0, slixmpp's plugin): alice retracts bob's message for everyone.
  await alice.command('muc_moderate', { room: ROOM, stanza_id: sid, reason: 'test' });
  const retracted = await bob.next((s) => s.kind === 'message' && s.from === ROOM && s.xml.includes('urn:xmpp:fasten:0') && s.xml.includes(sid), 'moderation notice at bob');
  assert.ok(retracted.xml.includes('urn:xmpp:message-retract:1'), 'both versions of the notice');
  assert.equal(await failure(carol.command('muc_moderate', { room: ROOM, stanza_id: sid })), 'forbidden');

  // XEP-0410 self-ping.
  await carol.command('muc_self_ping', { jid: `${ROOM}/Carol` });

  // XEP-0249 direct invitation: a message from alice to carol, passed through as is.
  await alice.command('muc_invite', { to: carol.jid, room: ROOM, reason: 'come' });
  await carol.next((s) => s.kind === 'message' && s.xml.includes('jabber:x:conference'), 'direct invitation');

  // Kick (§8.2) with slixmpp's set_role; carol sees 307 and her self-ping now fails.
  await alice.command('muc_role', { room: ROOM, nick: 'Carol', role: 'none', reason: 'bye' });
  const kicked = await carol.next((s) => presence(`${ROOM}/Carol`, 'unavailable')(s) && codesIn(s).includes(307), 'kicked');
  assert.deepEqual(codesIn(kicked), [110, 307]);
  await bob.next((s) => presence(`${ROOM}/Carol`, 'unavailable')(s) && codesIn(s).includes(307), 'bob sees the kick');
  assert.equal(await failure(carol.command('muc_self_ping', { jid: `${ROOM}/Carol` })), 'not-acceptable');

  // Ban (§9.1) with set_affiliation; the list has carol; she cannot come back.
  await alice.command('muc_affiliation', { room: ROOM, jid: 'carol@localhost', affiliation: 'outcast' });
  assert.deepEqual(((await alice.command('muc_list', { room: ROOM, affiliation: 'outcast' })) as unknown as { jids: string[] }).jids, ['carol@localhost']);
  assert.equal(await failure(carol.command('muc_join', { room: ROOM, nick: 'Carol' })), 'forbidden');
  await alice.command('muc_affiliation', { room: ROOM, jid: 'carol@localhost', affiliation: 'none' });
  await carol.command('muc_join', { room: ROOM, nick: 'Carol' });
  await alice.next(presence(`${ROOM}/Carol`), 'carol back');

  // The seed's clean-up: bob (xmpp.js) logs out; carol's socket is reset. alice sees each leave once.
  await bob.logout({ unavailable: true });
  await alice.next(presence(`${ROOM}/Bob`, 'unavailable'), 'bob left on logout');
  await carol.kill('reset');
  await alice.next(presence(`${ROOM}/Carol`, 'unavailable'), 'carol left on a dropped socket');
  await alice.command('muc_send', { room: ROOM, body: 'marker' });
  await alice.next(groupchat('marker'), 'marker');
  assert.equal(alice.count(presence(`${ROOM}/Bob`, 'unavailable')), 1);
  assert.equal(alice.count((s) => presence(`${ROOM}/Carol`, 'unavailable')(s) && !codesIn(s).includes(307)), 1);
  assert.ok(alice.history.every((s) => !codesIn(s).includes(332)), 'no 332: the service is not shutting down');
  assert.deepEqual(((await alice.command('muc_roster', { room: ROOM })) as unknown as { nicks: string[] }).nicks, ['Alice']);

  // alice leaves: the temporary room is gone from the service's disco#items.
  await alice.command('muc_leave', { room: ROOM, nick: 'Alice' });
  await alice.next(presence(`${ROOM}/Alice`, 'unavailable'), 'own unavailable');
  const xjs = await XjsClient.connect({ port: srv.port, user: 'bob', password: 'bob-pass', caFile });
  t.after(() => xjs.dispose());
  const items = await xjs.xmpp.iqCaller.request(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: NS.DISCO_ITEMS })), 5000);
  assert.deepEqual(items.getChild('query', NS.DISCO_ITEMS)?.getChildren('item') ?? [], []);
});

test('xmpp.js: an owner configures a members-only, password-protected room with the form', async (t) => {
  const alice = await XjsClient.connect({ port: srv.port, user: 'alice', password: 'alice-pass', caFile });
  const bob = await XjsClient.connect({ port: srv.port, user: 'bob', password: 'bob-pass', caFile });
  t.after(async () => {
    for (const c of [alice, bob]) await c.dispose().catch(() => undefined);
  });
  const room = `private@${SERVICE}`;
  await alice.xmpp.send(xml('presence', { to: `${room}/A` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
  await alice.next((s) => presence(`${room}/A`)(s) && codesIn(s).includes(201), 'created');
  const owner = 'http://jabber.org/protocol/muc#owner';
  const form = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: owner })), 5000);
  const fields = form.getChild('query', owner)?.getChild('x', 'jabber:x:data')?.getChildren('field').map((f) => f.attrs.var) ?? [];
  for (const f of ['muc#roomconfig_membersonly', 'muc#roomconfig_roomsecret', 'muc#roomconfig_whois', 'muc#roomconfig_persistentroom']) assert.ok(fields.includes(f), f);
  const field = (v: string, value: string) => xml('field', { var: v }, xml('value', {}, value));
  await alice.xmpp.iqCaller.request(
    xml(
      'iq',
      { type: 'set', to: room },
      xml(
        'query',
        { xmlns: owner },
        xml(
          'x',
          { xmlns: 'jabber:x:data', type: 'submit' },
          field('FORM_TYPE', 'http://jabber.org/protocol/muc#roomconfig'),
          field('muc#roomconfig_membersonly', '1'),
          field('muc#roomconfig_passwordprotectedroom', '1'),
          field('muc#roomconfig_roomsecret', 'pw'),
        ),
      ),
    ),
    5000,
  );
  const info = await bob.xmpp.iqCaller.request(xml('iq', { type: 'get', to: room }, xml('query', { xmlns: NS.DISCO_INFO })), 5000);
  const features = info.getChild('query', NS.DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var) ?? [];
  assert.ok(features.includes('muc_membersonly') && features.includes('muc_passwordprotected'), String(features));
  await bob.xmpp.send(xml('presence', { to: `${room}/B` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' }, xml('password', {}, 'pw'))));
  const refused = await bob.next((s) => presence(`${room}/B`, 'error')(s), 'refused');
  assert.equal(refused.error?.condition, 'registration-required');
});

test('slixmpp xep_0313: the archive of a persistent room, queried at the room JID', { skip: noSlix || undefined }, async (t) => {
  const alice = await slix('alice');
  t.after(() => alice.dispose());
  const room = `archived@${SERVICE}`;
  await alice.command('muc_join', { room, nick: 'Alice' });
  await alice.command('muc_configure', { room, fields: { 'muc#roomconfig_persistentroom': '1' } });
  for (const body of ['one', 'two']) {
    await alice.command('muc_send', { room, body });
    await alice.next(groupchat(body), body);
  }
  const got = (await alice.command('mam_room', { room })) as unknown as { messages: { id: string; from: string; body: string | null }[] };
  assert.deepEqual(got.messages.map((m) => [m.from, m.body]), [
    [`${room}/Alice`, 'one'],
    [`${room}/Alice`, 'two'],
  ]);
  assert.ok(got.messages.every((m) => m.id.length > 0));
});
