// The room state machine in process, without a server: what each stanza makes the
// room send, to whom, in what order, and what it keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { Room, type RoomHost } from './room.js';
import { roomIq, type RoomIqContext } from './admin.js';
import { RoomHistory, parseHistoryRequest } from './history.js';
import { applyConfigForm, configForm, defaultRoomConfig, parseStoredConfig } from './roomconfig.js';
import type { AffiliationRecord } from './roles.js';
import { NS_DATA, NS_MUC, NS_MUC_ADMIN, NS_MUC_OWNER, NS_MUC_USER, NS_ROOMCONFIG } from './ns.js';

interface Sent {
  stanza: Element;
  from: string;
  to: string;
}

class TestHost implements RoomHost, RoomIqContext {
  sent: Sent[] = [];
  goneWith: boolean | undefined;
  affChanges: [string, AffiliationRecord | undefined][] = [];
  clock = 1_000_000;
  private ids = 0;
  readonly limits = { maxOccupants: 3, maxHistory: 4 };
  readonly maxOccupants = 3;
  readonly archiveQueries = false;
  send(stanza: Element, from: Jid, to: Jid): void {
    assert.equal(stanza.attrs.to, to.toString(), 'to is set on what is sent');
    this.sent.push({ stanza, from: from.toString(), to: to.toString() });
  }
  now(): number {
    return this.clock;
  }
  newId(): string {
    return `id${++this.ids}`;
  }
  roomChanged(): void {}
  affiliationChanged(_room: Room, jid: string, record: AffiliationRecord | undefined): void {
    this.affChanges.push([jid, record]);
  }
  messageSent(): void {}
  occupancy(): void {}
  gone(_room: Room, destroyed: boolean): void {
    this.goneWith = destroyed;
  }
  retractArchived(room: Room, id: string): Promise<boolean> {
    return Promise.resolve(room.history.find(id) !== undefined);
  }
  take(): Sent[] {
    return this.sent.splice(0);
  }
}

const ROOM = Jid.parse('room@conference.example');
const A = Jid.parse('alice@example/a');
const B = Jid.parse('bob@example/b');
const C = Jid.parse('carol@example/c');

const codes = (el: Element): number[] => (el.getChild('x', NS_MUC_USER)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code));
const itemOf = (el: Element): Record<string, string> => el.getChild('x', NS_MUC_USER)!.getChild('item')!.attrs;
const enter = (nick: string, inner: Element[] = []): Element => x('presence', NS.CLIENT, { to: `${ROOM.toString()}/${nick}` }, x('x', NS_MUC, {}, ...inner));
const groupchat = (body: string): Element => x('message', NS.CLIENT, { type: 'groupchat', id: body }, x('body', NS.CLIENT, {}, body));

function newRoom(host: TestHost, locked = false): Room {
  return new Room(host, ROOM, defaultRoomConfig(), new Map([['alice@example', { affiliation: 'owner' as const }]]), 'key', locked);
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof StanzaError) return err.condition;
    throw err;
  }
  return 'no error';
}

test('entering: existing occupants first, own presence last with 110 (+201 when created), then the subject; JIDs by role', () => {
  const host = new TestHost();
  const room = newRoom(host, true);
  room.presence(enter('A'), A, 'A', true);
  let out = host.take();
  assert.deepEqual(out.map((s) => [s.stanza.name, s.from, s.to]), [
    ['presence', 'room@conference.example/A', A.toString()],
    ['message', 'room@conference.example', A.toString()],
  ]);
  assert.deepEqual(codes(out[0]!.stanza).sort(), [110, 201]);
  assert.equal(out[1]!.stanza.getChildText('subject'), '');

  // Locked (§10.1.1): bob cannot enter until alice configures it.
  assert.equal(errorOf(() => room.presence(enter('B'), B, 'B')), 'item-not-found');
  room.locked = false;
  room.presence(enter('B'), B, 'B');
  out = host.take();
  assert.deepEqual(out.map((s) => [s.from, s.to]), [
    ['room@conference.example/A', B.toString()], // alice, to bob
    ['room@conference.example/B', A.toString()], // bob, to alice
    ['room@conference.example/B', B.toString()], // bob, to himself
    ['room@conference.example', B.toString()], // subject
  ]);
  assert.equal(itemOf(out[0]!.stanza).jid, undefined, 'a participant does not see real JIDs (semi-anonymous)');
  assert.equal(itemOf(out[1]!.stanza).jid, B.toString(), 'a moderator does');
  assert.equal(itemOf(out[2]!.stanza).jid, B.toString(), 'one sees oneself');
  assert.deepEqual(codes(out[2]!.stanza), [110]);
  assert.equal(out[0]!.stanza.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id, room.occupantId('alice@example'));
  assert.notEqual(room.occupantId('alice@example'), room.occupantId('bob@example'));
});

test('limits and refusals: conflict, full room, password, members-only, banned', () => {
  const host = new TestHost();
  const room = newRoom(host);
  room.presence(enter('A'), A, 'A');
  assert.equal(errorOf(() => room.presence(enter('A'), B, 'A')), 'conflict');
  assert.equal(errorOf(() => room.presence(enter(''), B, '')), 'jid-malformed');
  room.presence(enter('B'), B, 'B');
  room.presence(enter('C'), C, 'C');
  assert.equal(errorOf(() => room.presence(enter('D'), Jid.parse('dave@example/d'), 'D')), 'service-unavailable', 'max_occupants 3');
  room.config = { ...room.config, password: 'pw' };
  room.presence(x('presence', NS.CLIENT, { type: 'unavailable' }), C, 'C');
  assert.equal(errorOf(() => room.presence(enter('C'), C, 'C')), 'not-authorized');
  room.presence(enter('C', [x('password', NS_MUC, {}, 'pw')]), C, 'C');
  room.presence(x('presence', NS.CLIENT, { type: 'unavailable' }), C, 'C');
  room.config = { ...room.config, password: '', membersOnly: true };
  assert.equal(errorOf(() => room.presence(enter('C'), C, 'C')), 'registration-required');
  room.setAffiliation('carol@example', { affiliation: 'outcast' });
  assert.equal(errorOf(() => room.presence(enter('C'), C, 'C')), 'forbidden');
});

test('groupchat: one copy per occupant with stanza id and occupant id; history bounded and selected', () => {
  const host = new TestHost();
  const room = newRoom(host);
  room.presence(enter('A'), A, 'A');
  room.presence(enter('B'), B, 'B');
  host.take();
  for (let i = 1; i <= 6; i++) {
    host.clock += 1000;
    room.message(groupchat(`m${i}`), A, '');
  }
  const out = host.take();
  assert.equal(out.length, 12, 'fan-out: one stanza per occupant per message, nothing else');
  assert.equal(out[0]!.stanza.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by, ROOM.toString());
  assert.equal(room.history.size, 4, 'max_history');
  assert.equal(errorOf(() => room.message(groupchat('x'), C, '')), 'not-acceptable');
  assert.equal(errorOf(() => room.message(x('message', NS.CLIENT, { type: 'groupchat' }, x('body', NS.CLIENT, {}, 'x')), A, 'B')), 'bad-request');
  assert.equal(errorOf(() => room.message(x('message', NS.CLIENT, { type: 'chat' }, x('body', NS.CLIENT, {}, 'x')), A, 'Nobody')), 'item-not-found');

  // Entering with history limits (§7.2.14).
  const bodies = (inner: Element[]): string[] => {
    room.presence(enter('C', inner), C, 'C');
    const got = host.take().filter((s) => s.to === C.toString() && s.stanza.getChild('delay', 'urn:xmpp:delay'));
    room.presence(x('presence', NS.CLIENT, { type: 'unavailable' }), C, 'C');
    host.take();
    return got.map((s) => s.stanza.getChildText('body')!);
  };
  assert.deepEqual(bodies([]), ['m3', 'm4', 'm5', 'm6']);
  assert.deepEqual(bodies([x('history', NS_MUC, { maxstanzas: '2' })]), ['m5', 'm6']);
  assert.deepEqual(bodies([x('history', NS_MUC, { seconds: '2' })]), ['m5', 'm6'], 'newer than 2 s: the last two (one second apart)');
  assert.deepEqual(bodies([x('history', NS_MUC, { since: new Date(host.clock - 500).toISOString() })]), ['m6']);
  // What a client may not claim is not passed on (XEP-0359, XEP-0421, XEP-0045 §17.2).
  const forged = groupchat('forged');
  forged.append(x('stanza-id', 'urn:xmpp:sid:0', { id: 'mine', by: ROOM.toString() }), x('occupant-id', 'urn:xmpp:occupant-id:0', { id: 'fake' }), x('x', NS_MUC_USER, {}, x('status', NS_MUC_USER, { code: '104' })));
  room.message(forged, B, '');
  const copy = host.take()[0]!.stanza;
  assert.equal(copy.getChild('x', NS_MUC_USER), undefined);
  assert.deepEqual(copy.getChildren('stanza-id').map((e) => e.attrs.id), [copy.getChild('stanza-id')!.attrs.id]);
  assert.notEqual(copy.getChild('stanza-id')!.attrs.id, 'mine');
  assert.equal(copy.getChild('occupant-id')!.attrs.id, room.occupantId('bob@example'));
});

test('nick change (303), leaving, the temporary room going with its last occupant; a persistent one stays', () => {
  const host = new TestHost();
  const room = newRoom(host);
  room.presence(enter('A'), A, 'A');
  room.presence(enter('B'), B, 'B');
  host.take();
  room.presence(x('presence', NS.CLIENT), B, 'Bobby');
  const out = host.take();
  assert.deepEqual(out.map((s) => [s.from, s.to, s.stanza.attrs.type ?? 'available', codes(s.stanza).join(',')]), [
    [`${ROOM.toString()}/B`, A.toString(), 'unavailable', '303'],
    [`${ROOM.toString()}/B`, B.toString(), 'unavailable', '110,303'],
    [`${ROOM.toString()}/Bobby`, A.toString(), 'available', ''],
    [`${ROOM.toString()}/Bobby`, B.toString(), 'available', '110'],
  ]);
  assert.equal(itemOf(out[0]!.stanza).nick, 'Bobby');
  assert.equal(errorOf(() => room.presence(x('presence', NS.CLIENT), B, 'A')), 'conflict');

  room.leave(room.occupantByReal(B.toString())!, undefined, B);
  assert.equal(host.goneWith, undefined);
  room.leave(room.occupantByReal(A.toString())!, undefined, A);
  assert.equal(host.goneWith, false, 'the empty temporary room is gone');

  const host2 = new TestHost();
  const kept = newRoom(host2);
  kept.config = { ...kept.config, persistent: true };
  kept.presence(enter('A'), A, 'A');
  kept.leave(kept.occupantByReal(A.toString())!, undefined, A);
  assert.equal(host2.goneWith, undefined, 'a persistent room stays empty');
});

test('admin and owner requests: instant room, kick, ban, last owner, destroy, shutdown (332)', async () => {
  const host = new TestHost();
  const room = newRoom(host, true);
  const iq = (from: Jid, type: 'get' | 'set', payload: Element, nick = ''): Promise<Element | void> =>
    roomIq(host, room, x('iq', NS.CLIENT, { type, id: '1' }, payload), from, nick);
  const fails = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      if (err instanceof StanzaError) return err.condition;
      throw err;
    }
    return 'no error';
  };
  room.presence(enter('A'), A, 'A', true);
  // §10.1.2: an empty submitted form makes an instant room.
  await iq(A, 'set', x('query', NS_MUC_OWNER, {}, x('x', NS_DATA, { type: 'submit' })));
  assert.equal(room.locked, false);
  room.presence(enter('B'), B, 'B');
  room.presence(enter('C'), C, 'C');
  assert.equal(await fails(iq(B, 'get', x('query', NS_MUC_OWNER))), 'forbidden');
  const form = (await iq(A, 'get', x('query', NS_MUC_OWNER))) as Element;
  assert.ok(form.getChild('x', NS_DATA)?.getChildren('field').some((f) => f.attrs.var === 'muc#roomconfig_whois'));
  host.take();

  assert.equal(await fails(iq(B, 'set', x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { role: 'none', nick: 'C' })))), 'forbidden');
  await iq(A, 'set', x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { role: 'none', nick: 'C' }, x('reason', NS_MUC_ADMIN, {}, 'out'))));
  const kicked = host.take();
  assert.equal(kicked.length, 3, 'everyone who was there hears it');
  assert.deepEqual(codes(kicked.find((s) => s.to === C.toString())!.stanza).sort(), [110, 307]);
  assert.equal(room.occupantByReal(C.toString()), undefined);

  await iq(A, 'set', x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { affiliation: 'outcast', jid: 'bob@example' })));
  assert.deepEqual(codes(host.take().find((s) => s.to === B.toString())!.stanza).sort(), [110, 301]);
  assert.deepEqual(host.affChanges.at(-1), ['bob@example', { affiliation: 'outcast', nick: undefined, reason: undefined }]);
  assert.equal(await fails(iq(A, 'set', x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { affiliation: 'admin', jid: 'alice@example' })))), 'conflict');
  assert.equal(await fails(iq(A, 'set', x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { affiliation: 'member', jid: 'not a jid@@' })))), 'jid-malformed');

  // XEP-0410: self-ping.
  assert.equal(await iq(A, 'get', x('ping', 'urn:xmpp:ping'), 'A'), undefined);
  assert.equal(await fails(iq(B, 'get', x('ping', 'urn:xmpp:ping'), 'A')), 'not-acceptable');

  room.presence(enter('C'), C, 'C');
  host.take();
  room.shutdown();
  assert.deepEqual(host.take().map((s) => codes(s.stanza).sort().join(',')), ['110,332', '110,332']);

  const host2 = new TestHost();
  const doomed = newRoom(host2);
  doomed.presence(enter('A'), A, 'A');
  host2.take();
  await roomIq(host2, doomed, x('iq', NS.CLIENT, { type: 'set' }, x('query', NS_MUC_OWNER, {}, x('destroy', NS_MUC_OWNER, { jid: 'new@conference.example' }))), A, '');
  const notice = host2.take()[0]!.stanza;
  assert.equal(notice.getChild('x', NS_MUC_USER)?.getChild('destroy')?.attrs.jid, 'new@conference.example');
  assert.equal(host2.goneWith, true);
});

test('configuration form: values, errors, stored configuration read back', () => {
  const c = defaultRoomConfig();
  const submit = (fields: Record<string, string>): Element =>
    x('x', NS_DATA, { type: 'submit' }, x('field', NS_DATA, { var: 'FORM_TYPE' }, x('value', NS_DATA, {}, NS_ROOMCONFIG)), ...Object.entries(fields).map(([k, v]) => x('field', NS_DATA, { var: k }, x('value', NS_DATA, {}, v))));
  const next = applyConfigForm(c, submit({ 'muc#roomconfig_persistentroom': 'true', 'muc#roomconfig_maxusers': '5000', 'muc#roomconfig_whois': 'anyone' }), 100);
  assert.equal(next.persistent, true);
  assert.equal(next.maxUsers, 100, 'capped at the service limit');
  assert.equal(next.whois, 'anyone');
  assert.throws(() => applyConfigForm(c, submit({ 'muc#roomconfig_membersonly': 'maybe' }), 100), StanzaError);
  assert.throws(() => applyConfigForm(c, submit({ 'muc#roomconfig_passwordprotectedroom': '1' }), 100), /needs a password/);
  assert.throws(() => applyConfigForm(c, x('x', NS_DATA, {}, x('field', NS_DATA, { var: 'FORM_TYPE' }, x('value', NS_DATA, {}, 'other'))), 100), StanzaError);
  assert.deepEqual(parseStoredConfig(JSON.stringify(next)), next);
  assert.deepEqual(parseStoredConfig('not json'), c);
  assert.deepEqual(parseStoredConfig('{"persistent":"yes","whois":"everyone"}'), c, 'wrong types fall back to defaults');
  assert.ok(configForm(next, 100).getChildren('field').length > 10);
});

test('history request parsing and selection', () => {
  const h = new RoomHistory(10);
  for (let i = 0; i < 5; i++) h.push({ id: String(i), stamp: i * 1000, stanza: x('message', NS.CLIENT), chars: 100 });
  assert.deepEqual(h.select({}).map((e) => e.id), ['0', '1', '2', '3', '4']);
  assert.deepEqual(h.select({ maxChars: 250 }).map((e) => e.id), ['3', '4']);
  assert.deepEqual(h.select({ after: 2500 }).map((e) => e.id), ['3', '4']);
  assert.deepEqual(parseHistoryRequest(x('history', NS_MUC, { maxstanzas: '-1', seconds: '10' }), 20_000), { maxStanzas: undefined, maxChars: undefined, after: 10_000 });
  h.setMax(2);
  assert.equal(h.size, 2);
  h.remove('4');
  assert.deepEqual(h.select({}).map((e) => e.id), ['3']);
});

test('a participant made moderator of a semi-anonymous room is sent everyone again, with real JIDs', async () => {
  const host = new TestHost();
  const room = newRoom(host);
  room.presence(enter('A'), A, 'A');
  room.presence(enter('B'), B, 'B');
  room.presence(enter('C'), C, 'C');
  host.take();
  await roomIq(host, room, x('iq', NS.CLIENT, { type: 'set' }, x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { role: 'moderator', nick: 'B' }))), A, '');
  const toB = host.take().filter((s) => s.to === B.toString());
  assert.deepEqual(toB.map((s) => [s.from, itemOf(s.stanza).role, itemOf(s.stanza).jid]), [
    [`${ROOM.toString()}/B`, 'moderator', B.toString()],
    [`${ROOM.toString()}/A`, 'moderator', A.toString()],
    [`${ROOM.toString()}/C`, 'participant', C.toString()],
  ]);
  // Only admins and owners make moderators (§9.6).
  await assert.rejects(
    roomIq(host, room, x('iq', NS.CLIENT, { type: 'set' }, x('query', NS_MUC_ADMIN, {}, x('item', NS_MUC_ADMIN, { role: 'moderator', nick: 'C' }))), B, ''),
    (err: unknown) => err instanceof StanzaError && err.condition === 'not-allowed',
  );
});

test('one user with two clients under one nick: one occupant for the others, both sessions get everything', () => {
  const host = new TestHost();
  const room = newRoom(host);
  const A2 = Jid.parse('alice@example/phone');
  room.presence(enter('A'), A, 'A');
  room.presence(enter('B'), B, 'B');
  host.take();
  // alice's phone enters as A too: only the phone gets the entry sequence.
  room.presence(enter('A'), A2, 'A');
  let out = host.take();
  assert.ok(out.every((s) => s.to === A2.toString()), 'bob sees nothing new');
  assert.deepEqual(out.map((s) => s.from), [`${ROOM.toString()}/B`, `${ROOM.toString()}/A`, ROOM.toString()]);
  assert.deepEqual(codes(out[1]!.stanza), [110]);
  assert.equal(room.occupants.size, 2);
  // Another user cannot take the nick.
  assert.equal(errorOf(() => room.presence(enter('A'), C, 'A')), 'conflict');

  // A message to the room reaches both of alice's sessions; a private message to A too.
  room.message(groupchat('hi'), B, '');
  out = host.take();
  assert.deepEqual(out.map((s) => s.to).sort(), [A.toString(), A2.toString(), B.toString()].sort());
  room.message(x('message', NS.CLIENT, { type: 'chat' }, x('body', NS.CLIENT, {}, 'psst')), B, 'A');
  assert.deepEqual(host.take().map((s) => s.to).sort(), [A.toString(), A2.toString()].sort());

  // The desktop leaves: only it hears its unavailable; alice is still in, through the phone.
  room.leave(room.occupantByReal(A.toString())!, undefined, A);
  out = host.take();
  assert.deepEqual(out.map((s) => [s.to, s.stanza.attrs.type, itemOf(s.stanza).role]), [[A.toString(), 'unavailable', 'none']]);
  assert.deepEqual(codes(out[0]!.stanza), [110]);
  assert.equal(room.occupantByReal(A2.toString())?.nick, 'A');
  assert.equal(room.occupantByReal(A2.toString())?.jid.toString(), A2.toString(), 'the remaining session is the one shown');
  // The phone leaves too: now bob sees alice go.
  room.leave(room.occupantByReal(A2.toString())!, undefined, A2);
  assert.deepEqual(host.take().map((s) => [s.to, s.stanza.attrs.type]), [[B.toString(), 'unavailable'], [A2.toString(), 'unavailable']]);
});

test('registration (§7.10) and the reserved nick (§7.11): a member with a nick; conflicts; members-only rooms stay closed', async () => {
  const host = new TestHost();
  const room = newRoom(host);
  const REG = 'jabber:iq:register';
  const iq = (from: Jid, type: 'get' | 'set', payload: Element): Promise<Element | void> => roomIq(host, room, x('iq', NS.CLIENT, { type, id: '1' }, payload), from, '');
  const submit = (nick: string): Element =>
    x('query', REG, {}, x('x', NS_DATA, { type: 'submit' }, x('field', NS_DATA, { var: 'FORM_TYPE' }, x('value', NS_DATA, {}, 'http://jabber.org/protocol/muc#register')), x('field', NS_DATA, { var: 'muc#register_roomnick' }, x('value', NS_DATA, {}, nick))));
  const fails = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      if (err instanceof StanzaError) return err.condition;
      throw err;
    }
    return 'no error';
  };
  const roomUser = (from: Jid): Promise<Element | void> => iq(from, 'get', x('query', NS.DISCO_INFO, { node: 'x-roomuser-item' }));

  const form = (await iq(B, 'get', x('query', REG))) as Element;
  assert.ok(form.getChild('x', NS_DATA)?.getChildren('field').some((f) => f.attrs.var === 'muc#register_roomnick'));
  assert.equal(((await roomUser(B)) as Element).getChild('identity'), undefined, 'no reserved nick yet: an empty answer');
  assert.equal(await fails(iq(B, 'set', x('query', REG, {}, x('x', NS_DATA, { type: 'submit' })))), 'not-acceptable');

  room.presence(enter('Bee'), B, 'Bee');
  host.take();
  await iq(B, 'set', submit('Bobby'));
  assert.deepEqual(room.affiliations.get('bob@example'), { affiliation: 'member', nick: 'Bobby', reason: undefined });
  const shown = host.take().find((s) => s.to === B.toString())!.stanza;
  assert.equal(itemOf(shown).affiliation, 'member', 'the room shows the new member');
  assert.equal(((await roomUser(B)) as Element).getChild('identity')?.attrs.name, 'Bobby');
  const registered = (await iq(B, 'get', x('query', REG))) as Element;
  assert.ok(registered.getChild('registered'));
  assert.equal(registered.getChildText('username'), 'Bobby');

  // Someone else cannot reserve bob's nick, nor one in use in the room.
  assert.equal(await fails(iq(C, 'set', submit('Bobby'))), 'conflict');
  assert.equal(await fails(iq(C, 'set', submit('Bee'))), 'conflict');

  // Unregistering (XEP-0077 <remove/>): bob is no longer a member.
  await iq(B, 'set', x('query', REG, {}, x('remove', REG)));
  assert.equal(room.affiliation('bob@example'), 'none');

  // A members-only room does not let outsiders in through registration.
  room.config = { ...room.config, membersOnly: true };
  assert.equal(await fails(iq(C, 'get', x('query', REG))), 'not-allowed');
  assert.equal(await fails(iq(C, 'set', submit('Carol'))), 'not-allowed');
  room.setAffiliation('carol@example', { affiliation: 'member' });
  await iq(C, 'set', submit('Carol'));
  assert.equal(room.affiliations.get('carol@example')?.nick, 'Carol');
});

test('voice requests (§7.13, §8.6): moderators get the approval form; submitting it grants voice', () => {
  const host = new TestHost();
  const room = newRoom(host);
  room.config = { ...room.config, moderated: true };
  room.presence(enter('A'), A, 'A');
  room.presence(enter('B'), B, 'B');
  assert.equal(room.occupantByReal(B.toString())?.role, 'visitor');
  host.take();
  const request = (fields: Record<string, string>, type = 'submit'): Element =>
    x('message', NS.CLIENT, {}, x('x', NS_DATA, { type }, ...Object.entries({ FORM_TYPE: 'http://jabber.org/protocol/muc#request', ...fields }).map(([k, v]) => x('field', NS_DATA, { var: k }, x('value', NS_DATA, {}, v)))));
  room.message(request({ 'muc#role': 'participant' }), B, '');
  const out = host.take();
  assert.deepEqual(out.map((s) => s.to), [A.toString()], 'only the moderator');
  const form = out[0]!.stanza.getChild('x', NS_DATA)!;
  const value = (v: string): string | undefined => form.getChildren('field').find((f) => f.attrs.var === v)?.getChildText('value');
  assert.equal(value('muc#roomnick'), 'B');
  assert.equal(value('muc#jid'), B.toString());
  room.message(request({ 'muc#role': 'participant' }), B, '');
  assert.deepEqual(host.take(), [], 'a second request within a minute is not passed on');
  assert.equal(errorOf(() => room.message(request({ 'muc#role': 'participant' }), C, '')), 'not-acceptable');
  // Not approved: nothing changes. Approved: voice.
  room.message(request({ 'muc#roomnick': 'B', 'muc#request_allow': 'false' }), A, '');
  assert.equal(room.occupantByReal(B.toString())?.role, 'visitor');
  room.message(request({ 'muc#roomnick': 'B', 'muc#request_allow': 'true' }), A, '');
  assert.equal(room.occupantByReal(B.toString())?.role, 'participant');
  const voiced = host.take().find((s) => s.to === B.toString())!.stanza;
  assert.equal(itemOf(voiced).role, 'participant');
});
