// Persistent rooms across a restart (configuration, affiliations, subject,
// history), reserved nicks (210), XEP-0425 moderation with its tombstone in the
// room archive, mediated invitations (XEP-0045 §7.8.2), room destruction with an
// alternate venue (§10.9).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { iq, stanzaErrorCondition } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';
import { loadXml } from '../src/xml/stored.js';
import { Jid } from '../src/jid/jid.js';
import { StanzaError } from '../src/core/errors.js';
import type { MucApi } from '../src/modules/muc/muc.js';
import { MUC_ADMIN, MUC_OWNER, MUC_USER, SERVICE, codes, configure, enter, isGroupchat, isPresenceFrom, isSelfPresence, item, join, listedRooms, online } from './support/muc.js';

let srv: TestServer | undefined;
after(() => srv?.stop());

const RETRACT = 'urn:xmpp:message-retract:1';
const MODERATE = 'urn:xmpp:message-moderate:1';
const SID = 'urn:xmpp:sid:0';

interface MessageRow {
  id: string;
  xml: string;
  retracted: number;
}

test('a persistent room survives a restart with its configuration, affiliations, subject and history; moderation leaves a tombstone', async () => {
  srv = await startTestServer({});
  for (const u of ['alice', 'bob', 'carol', 'dave']) await srv.addUser(u, `${u}-pass`);
  const room = `forever@${SERVICE}`;
  let spamId: string;
  {
    const alice = await online(srv.port, 'alice');
    const bob = await online(srv.port, 'bob');
    const carol = await online(srv.port, 'carol');
    await enter(alice.client, room, 'A');
    const r = await configure(alice.client, room, { 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_roomname': 'Forever', 'muc#roomconfig_membersonly': '1' });
    assert.equal(r.attrs.type, 'result', r.toString());
    // §10.2.1: the configuration changed (104) and the room is now archived (170).
    const changed = await alice.client.waitFor((el) => el.name === 'message' && el.attrs.from === room && codes(el).includes(104), 'status message');
    assert.deepEqual(codes(changed), [104, 170]);
    await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='bob@localhost' nick='Bobby'/></query>`);
    alice.client.send(`<message to='${room}' type='groupchat'><subject>Kept</subject></message>`);
    await alice.client.waitFor((el) => el.getChildText('subject') === 'Kept');

    // bob reserved 'Bobby': entering as 'bob' gives him his nick, with 210 (§7.2.3).
    bob.client.send(`<presence to='${room}/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const self = await bob.client.waitFor(isSelfPresence(`${room}/Bobby`), 'entered with the reserved nick');
    assert.deepEqual(codes(self), [110, 170, 210], 'a persistent room is archived (170)');

    // Mediated invitation (§7.8.2): the owner invites carol, who becomes a member and can enter.
    alice.client.send(`<message to='${room}'><x xmlns='${MUC_USER}'><invite to='carol@localhost'><reason>join us</reason></invite></x></message>`);
    const invitation = await carol.client.waitFor((el) => el.name === 'message' && el.getChild('x', MUC_USER)?.getChild('invite') !== undefined, 'invitation');
    assert.equal(invitation.attrs.from, room);
    assert.equal(invitation.getChild('x', MUC_USER)?.getChild('invite')?.attrs.from, alice.jid);
    assert.equal(invitation.getChild('x', MUC_USER)?.getChild('invite')?.getChildText('reason'), 'join us');
    await join(carol.client, room, 'C');
    // A member may not invite in a members-only room that does not allow it.
    carol.client.send(`<message to='${room}' id='inv2'><x xmlns='${MUC_USER}'><invite to='dave@localhost'/></x></message>`);
    const noInvite = await carol.client.waitFor((el) => el.attrs.id === 'inv2' && el.attrs.type === 'error');
    assert.equal(noInvite.getChild('error')?.getChild('forbidden', NS.STANZA_ERRORS) !== undefined, true);
    // carol declines on bob's behalf would be odd; bob declines an invitation from alice instead.
    bob.client.send(`<message to='${room}'><x xmlns='${MUC_USER}'><decline to='${alice.jid}'><reason>busy</reason></decline></x></message>`);
    const decline = await alice.client.waitFor((el) => el.getChild('x', MUC_USER)?.getChild('decline') !== undefined, 'decline');
    assert.equal(decline.getChild('x', MUC_USER)?.getChild('decline')?.attrs.from, bob.jid);

    for (const body of ['first', 'buy cheap pills', 'third']) {
      bob.client.send(`<message to='${room}' type='groupchat'><body>${body}</body></message>`);
      await bob.client.waitFor(isGroupchat(body));
    }
    const spam = await alice.client.waitFor(isGroupchat('buy cheap pills'));
    spamId = spam.getChild('stanza-id', SID)!.attrs.id!;

    // XEP-0425: a participant may not moderate; the owner (moderator) may.
    const denied = await iq(bob.client, `type='set' to='${room}'`, `<moderate xmlns='${MODERATE}' id='${spamId}'><retract xmlns='${RETRACT}'/></moderate>`);
    assert.equal(stanzaErrorCondition(denied), 'forbidden');
    const unknown = await iq(alice.client, `type='set' to='${room}'`, `<moderate xmlns='${MODERATE}' id='no-such-id'><retract xmlns='${RETRACT}'/></moderate>`);
    assert.equal(stanzaErrorCondition(unknown), 'item-not-found');
    const done = await iq(alice.client, `type='set' to='${room}'`, `<moderate xmlns='${MODERATE}' id='${spamId}'><retract xmlns='${RETRACT}'/><reason>spam</reason></moderate>`);
    assert.equal(done.attrs.type, 'result', done.toString());
    for (const c of [alice, bob, carol]) {
      const m = await c.client.waitFor((el) => el.getChild('retract', RETRACT)?.attrs.id === spamId, 'retraction');
      assert.equal(m.attrs.from, room);
      assert.equal(m.attrs.type, 'groupchat');
      const moderated = m.getChild('retract', RETRACT)?.getChild('moderated', MODERATE);
      assert.equal(moderated?.attrs.by, `${room}/A`);
      assert.equal(m.getChild('retract', RETRACT)?.getChildText('reason'), 'spam');
    }
    // The archive keeps a tombstone in place of the message.
    const row = await srv.server.storage.sql
      .db<{ muc_messages: MessageRow }>()
      .selectFrom('muc_messages')
      .selectAll()
      .where('id', '=', spamId)
      .executeTakeFirstOrThrow();
    assert.equal(row.retracted, 1);
    const tomb = loadXml(row.xml);
    assert.equal(tomb.getChild('body'), undefined, 'the content is gone');
    assert.equal(tomb.getChild('retracted', RETRACT)?.getChild('moderated', MODERATE)?.attrs.by, `${room}/A`);
    assert.ok(tomb.getChild('occupant-id', 'urn:xmpp:occupant-id:0'), "the author's occupant id stays");
    for (const c of [alice, bob, carol]) c.client.close();
  }

  await srv.stop({ keep: true });
  srv = await startTestServer({}, { dir: srv.dir });
  const alice = await online(srv.port, 'alice');
  const bob = await online(srv.port, 'bob');
  assert.ok((await listedRooms(alice.client)).includes(room), 'the empty persistent room is still there');
  const info = await iq(alice.client, `type='get' to='${room}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
  const features = info.getChild('query', NS.DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var) ?? [];
  assert.ok(features.includes('muc_persistent') && features.includes('muc_membersonly'), info.toString());
  assert.equal(info.getChild('query', NS.DISCO_INFO)?.getChild('identity')?.attrs.name, 'Forever');

  // The room archive, as an XEP-0313 query at the room JID will read it (the mam module's reader shape).
  const muc = srv.server.module<MucApi>('muc');
  const archive = muc.roomArchive(Jid.parse(room), Jid.parse('bob@localhost/x'));
  const page = await archive.page({}, 10, false);
  assert.deepEqual(page.map((m) => loadXml(m.stanza).getChildText('body') ?? 'tombstone'), ['first', 'tombstone', 'third']);
  assert.equal(page[1]!.id, spamId);
  assert.deepEqual(page.map((m) => m.withResource), ['Bobby', 'Bobby', 'Bobby']);
  // Members-only: only members read it; no such room is item-not-found.
  assert.throws(() => muc.roomArchive(Jid.parse(room), Jid.parse('eve@localhost/x')), (e: unknown) => e instanceof StanzaError && e.condition === 'forbidden');
  assert.throws(() => muc.roomArchive(Jid.parse(`nope@${SERVICE}`), Jid.parse('bob@localhost/x')), (e: unknown) => e instanceof StanzaError && e.condition === 'item-not-found');

  // XEP-0313 at the room JID, through the mam module's query code: a member reads it, in order,
  // with the tombstone in place of the moderated message; the room advertises it.
  assert.ok(features.includes('urn:xmpp:mam:2'), 'the archived room advertises MAM');
  bob.client.send(`<iq type='set' id='mam1' to='${room}'><query xmlns='urn:xmpp:mam:2' queryid='q1'/></iq>`);
  const fin = await bob.client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'mam1', 'the end of the query');
  assert.equal(fin.attrs.type, 'result', fin.toString());
  assert.equal(fin.getChild('fin', 'urn:xmpp:mam:2')?.attrs.complete, 'true');
  const results = bob.client.elements.filter((el) => el.name === 'message' && el.getChild('result', 'urn:xmpp:mam:2')?.attrs.queryid === 'q1');
  assert.equal(bob.client.elements.indexOf(results.at(-1)!) < bob.client.elements.indexOf(fin), true, 'results before the IQ result');
  const forwarded = results.map((r) => r.getChild('result', 'urn:xmpp:mam:2')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!);
  assert.deepEqual(forwarded.map((m) => m.getChildText('body') ?? (m.getChild('retracted', RETRACT) ? 'tombstone' : '?')), ['first', 'tombstone', 'third']);
  assert.deepEqual(forwarded.map((m) => m.attrs.from), [`${room}/Bobby`, `${room}/Bobby`, `${room}/Bobby`]);
  assert.equal(results[0]!.attrs.from, room);
  assert.equal(results[1]!.getChild('result', 'urn:xmpp:mam:2')!.attrs.id, spamId, 'archive ids are the room stanza ids');
  // A non-member of a members-only room may not read it.
  const dave = await online(srv.port, 'dave');
  const refused = await iq(dave.client, `type='set' to='${room}'`, `<query xmlns='urn:xmpp:mam:2'/>`);
  assert.equal(stanzaErrorCondition(refused), 'forbidden');
  dave.client.close();

  // The owner is still owner (no 201: the room exists); bob is still a member with his nick; the subject is kept.
  const own = await enter(alice.client, room, 'A');
  assert.equal(item(own).affiliation, 'owner');
  assert.ok(!codes(own).includes(201));
  bob.client.send(`<presence to='${room}/Bobby'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
  const bobSelf = await bob.client.waitFor(isSelfPresence(`${room}/Bobby`));
  assert.equal(item(bobSelf).affiliation, 'member');
  const subject = await bob.client.waitFor((el) => el.name === 'message' && el.getChild('subject') !== undefined && el.getChild('body') === undefined);
  assert.equal(subject.getChildText('subject'), 'Kept');
  const history = bob.client.elements.filter((el) => el.name === 'message' && el.getChild('delay', 'urn:xmpp:delay'));
  assert.deepEqual(history.map((m) => m.getChildText('body')), ['first', 'third'], 'history restored, the moderated message left out');
  const members = await iq(alice.client, `type='get' to='${room}'`, `<query xmlns='${MUC_ADMIN}'><item affiliation='member'/></query>`);
  assert.deepEqual(members.getChild('query', MUC_ADMIN)?.getChildren('item').map((i) => i.attrs.jid).sort(), ['bob@localhost', 'carol@localhost']);

  // §10.9: the owner destroys the room with an alternate venue; it is gone, also after a restart.
  const destroyed = await iq(alice.client, `type='set' to='${room}'`, `<query xmlns='${MUC_OWNER}'><destroy jid='elsewhere@${SERVICE}'><reason>moved</reason></destroy></query>`);
  assert.equal(destroyed.attrs.type, 'result');
  const notice = await bob.client.waitFor(isPresenceFrom(`${room}/Bobby`, 'unavailable'));
  const d = notice.getChild('x', MUC_USER)?.getChild('destroy');
  assert.equal(d?.attrs.jid, `elsewhere@${SERVICE}`);
  assert.equal(d?.getChildText('reason'), 'moved');
  assert.ok(!(await listedRooms(alice.client)).includes(room));

  // A second persistent room, with people in it when the server stops.
  const other = `other@${SERVICE}`;
  await enter(alice.client, other, 'A');
  await configure(alice.client, other, { 'muc#roomconfig_persistentroom': '1' });
  await join(bob.client, other, 'B');
  await srv.stop({ keep: true });
  srv = await startTestServer({}, { dir: srv.dir });
  const again = await online(srv.port, 'alice');
  const rooms = await listedRooms(again.client);
  assert.ok(!rooms.includes(room), 'the destroyed room stays destroyed');
  assert.ok(rooms.includes(other));
  again.client.close();
});

test("the room archive reads its own writes: a message an occupant received is in the archive it queries next", async (t) => {
  const { MucStore } = await import('../src/modules/muc/store.js');
  const server = await startTestServer({});
  t.after(() => server.stop());
  await server.addUser('erin', 'erin-pass');
  const erin = await online(server.port, 'erin');
  t.after(() => erin.client.close());
  const room = `slowlog@${SERVICE}`;
  await enter(erin.client, room, 'E');
  assert.equal((await configure(erin.client, room, { 'muc#roomconfig_persistentroom': '1' })).attrs.type, 'result');

  // The database is slow to write (PostgreSQL under load): the message goes out at once, its
  // archive row follows later.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const original = MucStore.prototype.addMessage;
  MucStore.prototype.addMessage = async function (this: typeof MucStore.prototype, ...args: Parameters<typeof original>) {
    await gate;
    return original.apply(this, args);
  };
  t.after(() => (MucStore.prototype.addMessage = original));
  erin.client.send(`<message to='${room}' type='groupchat'><body>kept</body></message>`);
  await erin.client.waitFor(isGroupchat('kept'), 'the reflected message');

  erin.client.send(`<iq type='set' id='rw1' to='${room}'><query xmlns='urn:xmpp:mam:2' queryid='rw'/></iq>`);
  // The write stays held while the server takes the query; an answer read before it would miss the message.
  setTimeout(release, 300);
  const fin = await erin.client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'rw1', 'the end of the query');
  assert.equal(fin.attrs.type, 'result', fin.toString());
  const bodies = erin.client.elements
    .filter((el) => el.name === 'message' && el.getChild('result', 'urn:xmpp:mam:2')?.attrs.queryid === 'rw')
    .map((r) => r.getChild('result', 'urn:xmpp:mam:2')!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!.getChildText('body'));
  assert.deepEqual(bodies, ['kept']);
});
