// XEP-0045 multi-user chat over raw XML on a real server: creating and entering
// rooms with their status codes, reflection, nick changes and conflicts, private
// messages, history, passwords, members-only rooms, semi-anonymity, kicks and
// bans, and the seed's clean-up when a user logs out or drops its connection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { iq, stanzaErrorCondition } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';
import {
  MUC_ADMIN,
  MUC_USER,
  SERVICE,
  codes,
  configure,
  createInstant,
  enter,
  isGroupchat,
  isPresenceFrom,
  isSelfPresence,
  isSubject,
  item,
  join,
  listedRooms,
  online,
} from './support/muc.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ muc: { max_history: 5, max_rooms_per_user: 2 } });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

const errorOf = (el: { getChild(n: string): { getChildren(): { xmlns: string; name: string }[] } | undefined }): string | undefined =>
  el.getChild('error')?.getChildren().find((c) => c.xmlns === NS.STANZA_ERRORS && c.name !== 'text')?.name;

test('create a room: 201 and owner, locked until configured, then others enter and see each other', async () => {
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  const carol = await online(srv.port, 'carol');
  const room = `lobby@${SERVICE}`;

  const self = await enter(alice.client, room, 'Alice');
  assert.deepEqual(codes(self), [110, 201]);
  assert.equal(item(self).affiliation, 'owner');
  assert.equal(item(self).role, 'moderator');
  assert.equal(item(self).jid, alice.jid, 'the occupant sees its own real JID');
  assert.ok(self.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id, 'XEP-0421 occupant id');
  await alice.client.waitFor(isSubject(room), 'empty subject ends the entry');

  // XEP-0045 §10.1.1: nobody else enters before the owner configures it, and it is not listed.
  const refused = await enter(bob.client, room, 'Bob');
  assert.equal(refused.attrs.type, 'error');
  assert.equal(errorOf(refused), 'item-not-found');
  assert.ok(!(await listedRooms(bob.client)).includes(room));

  // Instant room (§10.1.2).
  const r = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>`);
  assert.equal(r.attrs.type, 'result');
  assert.ok((await listedRooms(bob.client)).includes(room));

  // bob enters: first alice's presence, then his own (110), then the subject (§7.2.3, §7.2.15).
  bob.client.send(`<presence to='${room}/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
  const aliceSeen = await bob.client.waitFor(isPresenceFrom(`${room}/Alice`), "alice's presence");
  const bobSelf = await bob.client.waitFor(isSelfPresence(`${room}/Bob`), 'own presence');
  const subject = await bob.client.waitFor(isSubject(room), 'subject');
  const order = bob.client.elements;
  assert.ok(order.indexOf(aliceSeen) < order.indexOf(bobSelf) && order.indexOf(bobSelf) < order.indexOf(subject), 'others, then self, then subject');
  assert.equal(subject.getChildText('subject'), '');
  assert.deepEqual(codes(bobSelf), [110], 'semi-anonymous by default: no 100');
  assert.equal(item(aliceSeen).affiliation, 'owner');
  // Semi-anonymous (§7.2.2): a participant does not see real JIDs; a moderator does.
  assert.equal(item(aliceSeen).jid, undefined, 'bob (participant) does not see alice\'s real JID');
  const bobAtAlice = await alice.client.waitFor(isPresenceFrom(`${room}/Bob`), "bob's presence at alice");
  assert.equal(item(bobAtAlice).jid, bob.jid, 'alice (moderator) sees bob\'s real JID');
  assert.equal(item(bobAtAlice).role, 'participant');

  await join(carol.client, room, 'Carol');
  const carolAtBob = await bob.client.waitFor(isPresenceFrom(`${room}/Carol`), "carol's presence at bob");
  assert.equal(item(carolAtBob).jid, undefined);

  // disco#info of the room (§6.4).
  const info = await iq(bob.client, `type='get' to='${room}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
  const features = (info.getChild('query', NS.DISCO_INFO)?.getChildren('feature') ?? []).map((f) => f.attrs.var);
  for (const f of ['http://jabber.org/protocol/muc', 'muc_temporary', 'muc_open', 'muc_unmoderated', 'muc_unsecured', 'muc_semianonymous', 'muc_public', 'urn:xmpp:occupant-id:0', 'urn:xmpp:sid:0']) {
    assert.ok(features.includes(f), `${f} in ${info.toString()}`);
  }
  const form = info.getChild('query', NS.DISCO_INFO)?.getChild('x', 'jabber:x:data');
  const occupants = form?.getChildren('field').find((f) => f.attrs.var === 'muc#roominfo_occupants')?.getChildText('value');
  assert.equal(occupants, '3');

  // Message reflection (§7.4): everyone, the sender too, with the room's stanza id and the occupant id.
  bob.client.send(`<message to='${room}' type='groupchat' id='m1'><body>hello room</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='${room}'/></message>`);
  for (const c of [alice, bob, carol]) {
    const m = await c.client.waitFor(isGroupchat('hello room'), 'reflected message');
    assert.equal(m.attrs.from, `${room}/Bob`);
    assert.equal(m.attrs.id, 'm1');
    const sids = m.getChildren('stanza-id', 'urn:xmpp:sid:0');
    assert.equal(sids.length, 1, 'the forged stanza id is stripped');
    assert.equal(sids[0]!.attrs.by, room);
    assert.notEqual(sids[0]!.attrs.id, 'forged');
    assert.equal(m.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id, bobSelf.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id);
  }

  // Private message (§7.5).
  carol.client.send(`<message to='${room}/Bob' type='chat' id='pm1'><body>psst</body></message>`);
  const pm = await bob.client.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'psst', 'private message');
  assert.equal(pm.attrs.from, `${room}/Carol`);
  assert.ok(pm.getChild('x', MUC_USER));
  const noSuch = await iq(carol.client, `type='get' to='${room}/Nobody'`, `<ping xmlns='urn:xmpp:ping'/>`);
  assert.equal(stanzaErrorCondition(noSuch), 'item-not-found');

  // Nick conflict (§7.2.9) and change (§7.6).
  const conflict = await enter(carol.client, room, 'Bob');
  assert.equal(errorOf(conflict), 'conflict');
  carol.client.send(`<presence to='${room}/Caroline'/>`);
  const gone = await bob.client.waitFor(isPresenceFrom(`${room}/Carol`, 'unavailable'), 'old nick unavailable');
  assert.deepEqual(codes(gone), [303]);
  assert.equal(item(gone).nick, 'Caroline');
  await bob.client.waitFor(isPresenceFrom(`${room}/Caroline`), 'new nick available');
  const ownGone = await carol.client.waitFor(isPresenceFrom(`${room}/Carol`, 'unavailable'), 'own 303');
  assert.deepEqual(codes(ownGone), [110, 303]);

  // Subject (§8.1): a participant may not change it by default; the moderator may.
  carol.client.send(`<message to='${room}' type='groupchat' id='s1'><subject>mine</subject></message>`);
  const denied = await carol.client.waitFor((el) => el.name === 'message' && el.attrs.id === 's1' && el.attrs.type === 'error', 'subject refused');
  assert.equal(errorOf(denied), 'forbidden');
  alice.client.send(`<message to='${room}' type='groupchat' id='s2'><subject>Welcome</subject></message>`);
  const subj = await carol.client.waitFor((el) => el.name === 'message' && el.getChildText('subject') === 'Welcome', 'new subject');
  assert.equal(subj.attrs.from, `${room}/Alice`);

  // XEP-0410 self-ping: answered while joined, not-acceptable otherwise.
  const pong = await iq(carol.client, `type='get' to='${room}/Caroline'`, `<ping xmlns='urn:xmpp:ping'/>`);
  assert.equal(pong.attrs.type, 'result');
  const dave = await online(srv.port, 'dave');
  const notIn = await iq(dave.client, `type='get' to='${room}/Caroline'`, `<ping xmlns='urn:xmpp:ping'/>`);
  assert.equal(stanzaErrorCondition(notIn), 'not-acceptable');
  // A non-occupant cannot speak in the room (§7.4).
  dave.client.send(`<message to='${room}' type='groupchat' id='x1'><body>hi</body></message>`);
  const outsider = await dave.client.waitFor((el) => el.attrs.id === 'x1' && el.attrs.type === 'error', 'refused');
  assert.equal(errorOf(outsider), 'not-acceptable');

  // Leaving (§7.14): everyone, the leaver too, gets the unavailable with its status.
  carol.client.send(`<presence to='${room}/Caroline' type='unavailable'><status>bye</status></presence>`);
  const left = await bob.client.waitFor(isPresenceFrom(`${room}/Caroline`, 'unavailable'), 'carol left');
  assert.equal(left.getChildText('status'), 'bye');
  assert.equal(item(left).role, 'none');
  await carol.client.waitFor(isSelfPresence(`${room}/Caroline`, 'unavailable'), 'own unavailable');

  for (const c of [alice, bob, carol, dave]) c.client.close();
});

test('history on entry: maxstanzas, maxchars, seconds, since, and the room keeps only max_history', async () => {
  const alice = await online(srv.port, 'alice');
  const room = `history@${SERVICE}`;
  await createInstant(alice.client, room, 'A');
  for (let i = 1; i <= 7; i++) {
    alice.client.send(`<message to='${room}' type='groupchat'><body>m${i}</body></message>`);
    await alice.client.waitFor(isGroupchat(`m${i}`));
  }
  const bob = await online(srv.port, 'bob');
  const bodies = async (history: string, nick: string): Promise<string[]> => {
    await join(bob.client, room, nick, history);
    const got = bob.client.elements.filter((el) => el.name === 'message' && el.getChild('delay', 'urn:xmpp:delay') && el.attrs.to === bob.jid && !('seen' in el.attrs));
    for (const el of got) el.attrs.seen = '1';
    bob.client.send(`<presence to='${room}/${nick}' type='unavailable'/>`);
    await bob.client.waitFor(isSelfPresence(`${room}/${nick}`, 'unavailable'));
    return got.map((el) => el.getChildText('body') ?? '');
  };
  assert.deepEqual(await bodies('', 'b1'), ['m3', 'm4', 'm5', 'm6', 'm7'], 'max_history: 5');
  assert.deepEqual(await bodies(`<history maxstanzas='2'/>`, 'b2'), ['m6', 'm7']);
  assert.deepEqual(await bodies(`<history maxstanzas='0'/>`, 'b3'), []);
  const one = bob.client.elements.find((el) => el.getChildText('body') === 'm7')!;
  const delay = one.getChild('delay', 'urn:xmpp:delay')!;
  assert.equal(delay.attrs.from, room);
  // maxchars counts whole stanzas: room for one or two, not all five.
  const n = (await bodies(`<history maxchars='${one.toString().length + 60}'/>`, 'b4')).length;
  assert.ok(n >= 1 && n <= 2, `maxchars gave ${n}`);
  assert.deepEqual(await bodies(`<history since='${new Date(Date.now() + 60_000).toISOString()}'/>`, 'b5'), []);
  assert.equal((await bodies(`<history seconds='3600'/>`, 'b6')).length, 5);
  alice.client.close();
  bob.client.close();
});

test('password (not-authorized), members-only (registration-required), non-anonymous (100)', async () => {
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  const room = `secret@${SERVICE}`;
  await enter(alice.client, room, 'A');
  const r = await configure(alice.client, room, { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 's3cret', 'muc#roomconfig_whois': 'anyone' });
  assert.equal(r.attrs.type, 'result', r.toString());
  assert.equal(errorOf(await enter(bob.client, room, 'B')), 'not-authorized');
  assert.equal(errorOf(await enter(bob.client, room, 'B', '<password>wrong</password>')), 'not-authorized');
  const ok = await enter(bob.client, room, 'B', '<password>s3cret</password>');
  assert.deepEqual(codes(ok), [100, 110], 'non-anonymous room says so (100)');
  const aliceAtBob = bob.client.elements.find((el) => isPresenceFrom(`${room}/A`)(el))!;
  assert.equal(item(aliceAtBob).jid, alice.jid, 'non-anonymous: everyone sees real JIDs');

  const members = `club@${SERVICE}`;
  await enter(alice.client, members, 'A');
  assert.equal((await configure(alice.client, members, { 'muc#roomconfig_membersonly': '1' })).attrs.type, 'result');
  assert.equal(errorOf(await enter(bob.client, members, 'B')), 'registration-required');
  const grant = await iq(alice.client, `type='set' to='${members}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='bob@localhost'/></query>`);
  assert.equal(grant.attrs.type, 'result');
  const inside = await enter(bob.client, members, 'B');
  assert.equal(item(inside).affiliation, 'member');
  const list = await iq(alice.client, `type='get' to='${members}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='member'/></query>`);
  assert.deepEqual(list.getChild('query', MUC_ADMIN)?.getChildren('item').map((i) => i.attrs.jid), ['bob@localhost']);
  // A participant cannot read the owner list.
  const denied = await iq(bob.client, `type='get' to='${members}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='owner'/></query>`);
  assert.equal(stanzaErrorCondition(denied), 'forbidden');
  // Removing the membership removes bob (§9.4: 321).
  await iq(alice.client, `type='set' to='${members}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='none' jid='bob@localhost'/></query>`);
  const out = await bob.client.waitFor(isSelfPresence(`${members}/B`, 'unavailable'), 'removed');
  assert.deepEqual(codes(out), [110, 321]);
  alice.client.close();
  bob.client.close();
});

test('kick (307) and ban (301); a banned user cannot come back; admins cannot be kicked', async () => {
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  const carol = await online(srv.port, 'carol');
  const room = `strict@${SERVICE}`;
  await createInstant(alice.client, room, 'A');
  await join(bob.client, room, 'B');
  await join(carol.client, room, 'C');

  // A participant cannot kick.
  const notMod = await iq(bob.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item role='none' nick='C'/></query>`);
  assert.equal(stanzaErrorCondition(notMod), 'forbidden');

  const kick = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item role='none' nick='C'><reason>spam</reason></item></query>`);
  assert.equal(kick.attrs.type, 'result');
  const kicked = await carol.client.waitFor(isSelfPresence(`${room}/C`, 'unavailable'), 'kicked');
  assert.deepEqual(codes(kicked), [110, 307]);
  assert.equal(kicked.getChild('x', MUC_USER)?.getChild('item')?.getChildText('reason'), 'spam');
  const seen = await bob.client.waitFor(isPresenceFrom(`${room}/C`, 'unavailable'), 'bob sees the kick');
  assert.deepEqual(codes(seen), [307]);
  // A kicked user may come back.
  await join(carol.client, room, 'C');

  const ban = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='outcast' jid='carol@localhost'/></query>`);
  assert.equal(ban.attrs.type, 'result');
  const banned = await carol.client.waitFor((el) => isSelfPresence(`${room}/C`, 'unavailable')(el) && codes(el).includes(301), 'banned');
  assert.equal(item(banned).affiliation, 'outcast');
  assert.equal(errorOf(await enter(carol.client, room, 'C')), 'forbidden');
  const outcasts = await iq(alice.client, `type='get' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='outcast'/></query>`);
  assert.deepEqual(outcasts.getChild('query', MUC_ADMIN)?.getChildren('item').map((i) => i.attrs.jid), ['carol@localhost']);

  // Make bob admin; alice (owner, moderator) cannot kick an admin (§8.2).
  await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='admin' jid='bob@localhost'/></query>`);
  const promoted = await bob.client.waitFor((el) => isSelfPresence(`${room}/B`)(el) && item(el).affiliation === 'admin', 'admin');
  assert.equal(item(promoted).role, 'moderator');
  const noKick = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item role='none' nick='B'/></query>`);
  assert.equal(stanzaErrorCondition(noKick), 'not-allowed');
  // The last owner cannot step down (§10.6).
  const last = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='alice@localhost'/></query>`);
  assert.equal(stanzaErrorCondition(last), 'conflict');
  for (const c of [alice, bob, carol]) c.client.close();
});

test('moderated room: visitors have no voice until granted', async () => {
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  const room = `quiet@${SERVICE}`;
  await enter(alice.client, room, 'A');
  assert.equal((await configure(alice.client, room, { 'muc#roomconfig_moderatedroom': '1' })).attrs.type, 'result');
  const self = await enter(bob.client, room, 'B');
  assert.equal(item(self).role, 'visitor');
  bob.client.send(`<message to='${room}' type='groupchat' id='v1'><body>can I?</body></message>`);
  const refused = await bob.client.waitFor((el) => el.attrs.id === 'v1' && el.attrs.type === 'error');
  assert.equal(errorOf(refused), 'forbidden');
  await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item role='participant' nick='B'/></query>`);
  const voiced = await bob.client.waitFor((el) => isSelfPresence(`${room}/B`)(el) && item(el).role === 'participant', 'voice');
  assert.ok(voiced);
  bob.client.send(`<message to='${room}' type='groupchat' id='v2'><body>now I can</body></message>`);
  await alice.client.waitFor(isGroupchat('now I can'));
  const roles = await iq(alice.client, `type='get' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item role='participant'/></query>`);
  assert.deepEqual(roles.getChild('query', MUC_ADMIN)?.getChildren('item').map((i) => i.attrs.nick), ['B']);
  alice.client.close();
  bob.client.close();
});

test("the seed's clean-up: logout, a dropped socket and unavailable to the server each leave every room once", async () => {
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  const carol = await online(srv.port, 'carol');
  const dave = await online(srv.port, 'dave');
  const room = `cleanup@${SERVICE}`;
  const other = `cleanup2@${SERVICE}`;
  await createInstant(alice.client, room, 'A');
  await join(bob.client, room, 'B');
  await join(carol.client, room, 'C');
  await join(dave.client, room, 'D');
  await createInstant(bob.client, other, 'B');
  await join(alice.client, other, 'A');

  // bob logs out properly: alice sees him leave both rooms, without 332.
  bob.client.send(`<presence type='unavailable'><status>off to bed</status></presence></stream:stream>`);
  const bobLeft = await alice.client.waitFor(isPresenceFrom(`${room}/B`, 'unavailable'), 'bob left on logout');
  assert.deepEqual(codes(bobLeft), []);
  assert.equal(bobLeft.getChildText('status'), 'off to bed');
  await alice.client.waitFor(isPresenceFrom(`${other}/B`, 'unavailable'), 'bob left the other room too');

  // carol's connection drops without </stream:stream>.
  carol.client.socket.destroy();
  const carolLeft = await alice.client.waitFor(isPresenceFrom(`${room}/C`, 'unavailable'), 'carol left on disconnect');
  assert.deepEqual(codes(carolLeft), []);

  // dave sends unavailable to the server and stays connected.
  dave.client.send(`<presence type='unavailable'/>`);
  await alice.client.waitFor(isPresenceFrom(`${room}/D`, 'unavailable'), 'dave left on unavailable');
  const pingDave = await iq(dave.client, `type='get' to='${room}/D'`, `<ping xmlns='urn:xmpp:ping'/>`);
  assert.equal(stanzaErrorCondition(pingDave), 'not-acceptable', 'dave is no longer an occupant');

  // A marker after all of it: each unavailable came once.
  alice.client.send(`<message to='${room}' type='groupchat'><body>marker</body></message>`);
  await alice.client.waitFor(isGroupchat('marker'));
  for (const nick of ['B', 'C', 'D']) {
    assert.equal(alice.client.elements.filter(isPresenceFrom(`${room}/${nick}`, 'unavailable')).length, 1, `one unavailable for ${nick}`);
  }

  // The temporary room bob created: alice leaves it, it is empty, it is gone.
  assert.ok((await listedRooms(alice.client)).includes(other));
  alice.client.send(`<presence to='${other}/A' type='unavailable'/>`);
  await alice.client.waitFor(isSelfPresence(`${other}/A`, 'unavailable'));
  assert.ok(!(await listedRooms(alice.client)).includes(other), 'an empty temporary room is destroyed');
  alice.client.close();
  dave.client.close();
});

test('errors: no nick, unknown room, bad requests', async () => {
  const alice = await online(srv.port, 'alice');
  alice.client.send(`<presence to='nonick@${SERVICE}'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
  const noNick = await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error');
  assert.equal(errorOf(noNick), 'jid-malformed');
  alice.client.send(`<message to='nowhere@${SERVICE}' type='groupchat' id='n1'><body>x</body></message>`);
  const nowhere = await alice.client.waitFor((el) => el.attrs.id === 'n1' && el.attrs.type === 'error');
  assert.equal(errorOf(nowhere), 'item-not-found');
  const info = await iq(alice.client, `type='get' to='${SERVICE}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
  assert.ok(info.getChild('query', NS.DISCO_INFO)?.getChildren('identity').some((i) => i.attrs.category === 'conference'));
  // The host lists its MUC service (XEP-0030 §4).
  const items = await iq(alice.client, `type='get' to='localhost'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
  assert.ok(items.getChild('query', NS.DISCO_ITEMS)?.getChildren('item').some((i) => i.attrs.jid === SERVICE));
  alice.client.close();

  // muc.max_rooms_per_user: 2 (a new, still locked room counts).
  const dave = await online(srv.port, 'dave');
  await enter(dave.client, `d1@${SERVICE}`, 'D');
  await enter(dave.client, `d2@${SERVICE}`, 'D');
  const third = await enter(dave.client, `d3@${SERVICE}`, 'D');
  assert.equal(errorOf(third), 'not-allowed');
  assert.match(third.getChild('error')?.getChildText('text', NS.STANZA_ERRORS) ?? '', /max_rooms_per_user/);
  dave.client.close();
});

test('muc: false: no service, nothing listed', async () => {
  const off = await startTestServer({ muc: false });
  try {
    await off.addUser('alice', 'alice-pass');
    const alice = await online(off.port, 'alice');
    const items = await iq(alice.client, `type='get' to='localhost'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
    assert.deepEqual(items.getChild('query', NS.DISCO_ITEMS)?.getChildren('item'), []);
    const info = await iq(alice.client, `type='get' to='${SERVICE}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
    assert.equal(stanzaErrorCondition(info), 'remote-server-not-found');
    alice.client.close();
  } finally {
    await off.stop();
  }
});

test('IQs between occupants go through the room without revealing real JIDs (vCards to the bare JID)', async () => {
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  const carol = await online(srv.port, 'carol');
  const room = `iqs@${SERVICE}`;
  await createInstant(alice.client, room, 'A');
  await join(bob.client, room, 'B');
  await join(carol.client, room, 'C');
  const set = await iq(bob.client, `type='set'`, `<vCard xmlns='vcard-temp'><FN>Bob the Builder</FN></vCard>`);
  assert.equal(set.attrs.type, 'result');

  // A vCard request to bob's occupant JID is answered by the server for bob's account.
  const card = await iq(carol.client, `type='get' to='${room}/B'`, `<vCard xmlns='vcard-temp'/>`);
  assert.equal(card.attrs.type, 'result', card.toString());
  assert.equal(card.attrs.from, `${room}/B`);
  assert.equal(card.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Bob the Builder');

  // Any other request reaches bob's client from carol's occupant JID; his answer comes back.
  carol.client.send(`<iq type='get' id='ver1' to='${room}/B'><query xmlns='jabber:iq:version'/></iq>`);
  const request = await bob.client.waitFor((el) => el.name === 'iq' && el.attrs.type === 'get' && el.getChild('query', 'jabber:iq:version') !== undefined, 'forwarded request');
  assert.equal(request.attrs.from, `${room}/C`, 'bob does not learn carol\'s real JID');
  assert.notEqual(request.attrs.id, 'ver1');
  bob.client.send(`<iq type='result' id='${request.attrs.id}' to='${room}/C'><query xmlns='jabber:iq:version'><name>raw</name></query></iq>`);
  const answer = await carol.client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'ver1', 'forwarded answer');
  assert.equal(answer.attrs.type, 'result');
  assert.equal(answer.attrs.from, `${room}/B`);
  assert.equal(answer.getChild('query', 'jabber:iq:version')?.getChildText('name'), 'raw');
  // A made-up answer from someone else is dropped: alice cannot answer for bob.
  carol.client.send(`<iq type='get' id='ver2' to='${room}/B'><query xmlns='jabber:iq:version'/></iq>`);
  const second = await bob.client.waitFor((el) => el.name === 'iq' && el.attrs.type === 'get' && el.attrs.from === `${room}/C` && el.attrs.id !== request.attrs.id);
  alice.client.send(`<iq type='result' id='${second.attrs.id}' to='${room}/C'><query xmlns='jabber:iq:version'><name>forged</name></query></iq>`);
  bob.client.send(`<iq type='error' id='${second.attrs.id}' to='${room}/C'><query xmlns='jabber:iq:version'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
  const answer2 = await carol.client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'ver2');
  assert.equal(stanzaErrorCondition(answer2), 'service-unavailable', 'the real answer, not the forged one');
  // Outsiders cannot use the room to reach occupants (§7.5 / XEP-0410).
  const dave = await online(srv.port, 'dave');
  const outsider = await iq(dave.client, `type='get' to='${room}/B'`, `<query xmlns='jabber:iq:version'/>`);
  assert.equal(stanzaErrorCondition(outsider), 'not-acceptable');
  // One item may not change both role and affiliation (§17.3).
  const both = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item nick='B' role='none' affiliation='member'/></query>`);
  assert.equal(stanzaErrorCondition(both), 'bad-request');
  for (const c of [alice, bob, carol, dave]) c.client.close();
});
