// IQ requests to a room (XEP-0045 §8 moderator, §9 admin, §10 owner use cases),
// its disco#info (§6.4), XEP-0425 message moderation and XEP-0410 self-pings.
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { applyConfigForm, configForm, isArchived } from './roomconfig.js';
import { affRank, defaultRole, isAffiliation, isRole, type Affiliation, type AffiliationRecord } from './roles.js';
import { parseJid, type Occupant, type Room } from './room.js';
import {
  NS_CONFERENCE,
  NS_DATA,
  NS_FASTEN,
  NS_MODERATE,
  NS_MODERATE_0,
  NS_MUC,
  NS_MUC_ADMIN,
  NS_MAM,
  NS_MUC_OWNER,
  NS_OCCUPANT_ID,
  NS_PING,
  NS_RETRACT,
  NS_RETRACT_0,
  NS_ROOMINFO,
  NS_SELF_PING,
  NS_SID,
} from './ns.js';

/** What an IQ to a room sees of the service around it. */
export interface RoomIqContext {
  readonly maxOccupants: number;
  /** Whether XEP-0313 queries at room JIDs are answered (the mam module runs). */
  readonly archiveQueries: boolean;
  /** A new id for a message the room sends. */
  newId(): string;
  now(): number;
  /**
   * XEP-0425 §5: replaces an archived message with its tombstone (made from the archived
   * message); false when the archive has no message with that id.
   */
  retractArchived(room: Room, id: string, tombstone: (original: Element) => Element): Promise<boolean>;
}

/** An IQ request to the room's bare JID (nick '') or to an occupant; the result payload, or throws. */
export async function roomIq(ctx: RoomIqContext, room: Room, iq: Element, from: Jid, nick: string): Promise<Element | void> {
  const payload = iq.firstElement();
  const type = iq.attrs.type;
  if (!payload) throw new StanzaError('bad-request');
  if (nick !== '') return occupantIq(room, payload, from, nick);
  // The service forwards requests between occupants; what reaches here is for the room.
  const ns = payload.xmlns;
  if (type === 'get' && ns === NS.DISCO_INFO) return payload.attrs.node === NODE_ROOMUSER ? reservedNick(room, payload, from) : discoInfo(room, payload, ctx.archiveQueries);
  if (ns === NS_REGISTER) return type === 'get' ? registrationForm(room, from) : register(room, payload, from);
  if (type === 'get' && ns === NS.DISCO_ITEMS) {
    if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
    // §6.5: the occupant list is left out, so that disco does not reveal who is in a room.
    return x('query', NS.DISCO_ITEMS);
  }
  if (type === 'get' && ns === NS_PING) return undefined;
  if (ns === NS_MUC_ADMIN) return type === 'get' ? adminGet(room, payload, from) : adminSet(room, payload, from);
  if (ns === NS_MUC_OWNER) return type === 'get' ? ownerGet(ctx, room, payload, from) : ownerSet(ctx, room, payload, from);
  if (type === 'set' && ns === NS_MODERATE && payload.name === 'moderate') return moderate(ctx, room, moderation(payload), from);
  if (type === 'set' && ns === NS_FASTEN && payload.name === 'apply-to') return moderate(ctx, room, moderation(payload), from);
  throw new StanzaError('service-unavailable');
}

const NS_REGISTER = 'jabber:iq:register';
/** XEP-0045 §15.5.2 */
const NS_MUC_REGISTER = 'http://jabber.org/protocol/muc#register';
/** XEP-0045 §7.11: the disco node that answers with one's reserved nick. */
const NODE_ROOMUSER = 'x-roomuser-item';

/** §7.11: the user's reserved nick as the name of an identity, or an empty answer. */
function reservedNick(room: Room, payload: Element, from: Jid): Element {
  const nick = room.affiliations.get(from.bareString())?.nick;
  const q = x('query', NS.DISCO_INFO, { node: payload.attrs.node });
  if (nick !== undefined) q.append(x('identity', NS.DISCO_INFO, { category: 'conference', type: 'text', name: nick }));
  return q;
}

/**
 * §7.10: who may register: anyone not banned in an open room (becoming a member), only those
 * already on the member list in a members-only room (so registration does not open it).
 */
function mayRegister(room: Room, aff: Affiliation): boolean {
  if (aff === 'outcast') return false;
  return !room.config.membersOnly || affRank(aff) >= affRank('member');
}

/** §7.10: the registration form, or what the user registered. */
function registrationForm(room: Room, from: Jid): Element {
  const bare = from.bareString();
  const rec = room.affiliations.get(bare);
  if (rec?.nick !== undefined) {
    return x('query', NS_REGISTER, {}, x('registered', NS_REGISTER), x('username', NS_REGISTER, {}, rec.nick));
  }
  if (!mayRegister(room, room.affiliation(bare))) throw new StanzaError('not-allowed', 'you may not register with this room');
  return x(
    'query',
    NS_REGISTER,
    {},
    x('instructions', NS_REGISTER, {}, 'Choose the nickname to reserve in this room.'),
    x(
      'x',
      NS_DATA,
      { type: 'form' },
      x('title', NS_DATA, {}, 'Registration'),
      x('field', NS_DATA, { var: 'FORM_TYPE', type: 'hidden' }, x('value', NS_DATA, {}, NS_MUC_REGISTER)),
      x('field', NS_DATA, { var: 'muc#register_roomnick', type: 'text-single', label: 'Nickname' }, x('required', NS_DATA)),
    ),
  );
}

/** §7.10: registering (a member with a reserved nick) or, with <remove/>, unregistering (XEP-0077 §3.2). */
function register(room: Room, payload: Element, from: Jid): void {
  const bare = from.bareString();
  const aff = room.affiliation(bare);
  const rec = room.affiliations.get(bare);
  if (payload.getChild('remove', NS_REGISTER)) {
    if (!rec) throw new StanzaError('item-not-found', 'you are not registered');
    if (rec.affiliation === 'outcast') throw new StanzaError('forbidden');
    // A member goes back to none; an admin or owner keeps the affiliation, without the nick.
    changeAffiliation(room, bare, rec.affiliation === 'member' ? undefined : { ...rec, nick: undefined });
    return;
  }
  if (!mayRegister(room, aff)) throw new StanzaError('not-allowed', 'you may not register with this room');
  const form = payload.getChild('x', NS_DATA);
  if (form?.attrs.type === 'cancel') return;
  const nick = form?.getChildren('field', NS_DATA).find((f) => f.attrs.var === 'muc#register_roomnick')?.getChildText('value', NS_DATA)?.trim() ?? '';
  // XEP-0077 §3.1: a missing required field is not-acceptable.
  if (form?.attrs.type !== 'submit' || nick === '') throw new StanzaError('not-acceptable', 'muc#register_roomnick is required');
  let valid: string;
  try {
    valid = room.occupantJid(nick).resource;
  } catch {
    throw new StanzaError('not-acceptable', 'not a valid nickname');
  }
  // §7.10: a nick reserved by, or in use by, someone else.
  for (const [jid, r] of room.affiliations) if (jid !== bare && r.nick === valid) throw new StanzaError('conflict', 'that nickname is reserved');
  const holder = room.occupants.get(valid);
  if (holder && holder.jid.bareString() !== bare) throw new StanzaError('conflict', 'that nickname is in use');
  changeAffiliation(room, bare, { affiliation: rec?.affiliation ?? 'member', nick: valid, reason: rec?.reason });
}

/** Records an affiliation and tells the room when its holder is in (a new member is shown as one). */
function changeAffiliation(room: Room, bare: string, record: AffiliationRecord | undefined): void {
  const before = room.affiliation(bare);
  room.setAffiliation(bare, record);
  const after = record?.affiliation ?? 'none';
  if (before === after) return;
  for (const o of room.occupantsOf(bare)) {
    if (after === 'none' && room.config.membersOnly) room.remove(o, { codes: [321] });
    else room.setRole(o, defaultRole(after, room.config.moderated), {});
  }
}

/** XEP-0410 §3: a ping to one's own occupant JID says whether one is still in the room. */
function occupantIq(room: Room, payload: Element, from: Jid, nick: string): Element | void {
  const sender = room.occupantByReal(from.toString());
  // XEP-0410 §3 / XEP-0045 §7.5: a non-occupant is not-acceptable.
  if (!sender) throw new StanzaError('not-acceptable', 'you are not in this room');
  const target = room.occupants.get(nick);
  if (!target) throw new StanzaError('item-not-found', 'no occupant with that nickname');
  if (payload.xmlns === NS_PING && target === sender) return undefined;
  throw new StanzaError('service-unavailable');
}

/** §6.4: identity, features and the muc#roominfo form. */
export function discoInfo(room: Room, payload: Element, archiveQueries = false): Element {
  if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
  const c = room.config;
  const features = [
    NS_MUC,
    NS.DISCO_INFO,
    NS.DISCO_ITEMS,
    NS_SID,
    NS_OCCUPANT_ID,
    NS_FASTEN,
  NS_MODERATE,
  NS_MODERATE_0,
    NS_SELF_PING,
    NS_CONFERENCE,
    NS_REGISTER,
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.public ? 'muc_public' : 'muc_hidden',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.password !== '' ? 'muc_passwordprotected' : 'muc_unsecured',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
  ];
  // XEP-0313 §7: the room's archive answers queries (persistent rooms that archive).
  if (archiveQueries && isArchived(c)) features.push(NS_MAM);
  const field = (v: string, value: string, label?: string): Element => x('field', NS_DATA, { var: v, label }, x('value', NS_DATA, {}, value));
  const form = x(
    'x',
    NS_DATA,
    { type: 'result' },
    x('field', NS_DATA, { var: 'FORM_TYPE', type: 'hidden' }, x('value', NS_DATA, {}, NS_ROOMINFO)),
    field('muc#roominfo_description', c.description, 'Description'),
    field('muc#roominfo_occupants', String(room.occupants.size), 'Number of occupants'),
    field('muc#roominfo_subject', room.subject, 'Subject'),
    field('muc#roomconfig_roomname', c.name, 'Name'),
    field('muc#roomconfig_changesubject', c.changeSubject ? '1' : '0'),
    field('muc#roomconfig_allowinvites', c.allowInvites ? '1' : '0'),
    field('muc#roomconfig_allowpm', c.allowPm),
  );
  return x(
    'query',
    NS.DISCO_INFO,
    {},
    x('identity', NS.DISCO_INFO, { category: 'conference', type: 'text', name: c.name !== '' ? c.name : room.jid.local }),
    ...features.sort().map((f) => x('feature', NS.DISCO_INFO, { var: f })),
    form,
  );
}

// --- Admin and moderator lists and changes (§8, §9) -------------------------------------

function actorOf(room: Room, from: Jid): { aff: Affiliation; occupant: Occupant | undefined } {
  return { aff: room.affiliation(from.bareString()), occupant: room.occupantByReal(from.toString()) };
}

/** §8.5 / §9.5 / §10.5: the list of one affiliation or role. */
function adminGet(room: Room, payload: Element, from: Jid): Element {
  const items = payload.getChildren('item', NS_MUC_ADMIN);
  if (payload.name !== 'query' || items.length !== 1) throw new StanzaError('bad-request', 'ask for one affiliation or role');
  const item = items[0]!;
  const { aff, occupant } = actorOf(room, from);
  const out = x('query', NS_MUC_ADMIN);
  if (item.attrs.affiliation !== undefined) {
    const wanted = item.attrs.affiliation;
    if (!isAffiliation(wanted) || wanted === 'none') throw new StanzaError('bad-request', 'unknown affiliation');
    // §9.5 / §10.5: admins and owners see the lists (they name real JIDs, which a semi-anonymous
    // room shows to no one else).
    if (affRank(aff) < affRank('admin')) throw new StanzaError('forbidden');
    for (const [jid, rec] of room.affiliations) {
      if (rec.affiliation !== wanted) continue;
      const i = x('item', NS_MUC_ADMIN, { affiliation: wanted, jid, nick: rec.nick });
      if (rec.reason !== undefined) i.append(x('reason', NS_MUC_ADMIN, {}, rec.reason));
      out.append(i);
    }
    return out;
  }
  const role = item.attrs.role;
  if (!isRole(role) || role === 'none') throw new StanzaError('bad-request', 'ask for one affiliation or role');
  // §8.5: moderators see the lists of roles.
  if (occupant?.role !== 'moderator') throw new StanzaError('forbidden');
  for (const o of room.occupants.values()) {
    if (o.role !== role) continue;
    out.append(x('item', NS_MUC_ADMIN, { role, nick: o.nick, affiliation: room.affiliation(o.jid.bareString()), jid: o.jid.toString() }));
  }
  return out;
}

interface Change {
  kind: 'role' | 'affiliation';
  value: string;
  /** The occupant (role changes; affiliation changes of someone in the room). */
  target: Occupant | undefined;
  /** The bare JID (affiliation changes). */
  bare: string;
  nick: string | undefined;
  reason: string | undefined;
}

/** §8.2 to §8.7, §9.1 to §9.8, §10.3 to §10.8: role and affiliation changes, all checked before any is made. */
function adminSet(room: Room, payload: Element, from: Jid): void {
  const items = payload.getChildren('item', NS_MUC_ADMIN);
  if (payload.name !== 'query' || items.length === 0) throw new StanzaError('bad-request', 'no items');
  const actor = actorOf(room, from);
  const changes = items.map((item) => checkChange(room, item, actor));
  // §10.6 / §10.8: the room keeps at least one owner.
  const owners = new Set([...room.affiliations].filter(([, r]) => r.affiliation === 'owner').map(([j]) => j));
  for (const c of changes) {
    if (c.kind !== 'affiliation') continue;
    if (c.value === 'owner') owners.add(c.bare);
    else owners.delete(c.bare);
  }
  if (owners.size === 0) throw new StanzaError('conflict', 'a room needs an owner');
  for (const c of changes) applyChange(room, c, actor.occupant?.nick);
}

function checkChange(room: Room, item: Element, actor: { aff: Affiliation; occupant: Occupant | undefined }): Change {
  const reason = item.getChildText('reason', NS_MUC_ADMIN);
  const role = item.attrs.role;
  const affiliation = item.attrs.affiliation;
  // §17.3 (bizrules-iq): an item changes a role or an affiliation, not both.
  if (role !== undefined && affiliation !== undefined) throw new StanzaError('bad-request', 'an item changes a role or an affiliation, not both');
  if (role !== undefined) {
    if (!isRole(role)) throw new StanzaError('bad-request', 'unknown role');
    const nick = item.attrs.nick;
    if (nick === undefined) throw new StanzaError('bad-request', 'a role change names an occupant by nick');
    const target = room.occupants.get(nick);
    if (!target) throw new StanzaError('item-not-found', 'no occupant with that nickname');
    if (actor.occupant?.role !== 'moderator') throw new StanzaError('forbidden', 'only moderators change roles');
    const targetAff = room.affiliation(target.jid.bareString());
    // §9.6 / §9.7: granting or revoking moderator is for admins and owners.
    if ((role === 'moderator' || target.role === 'moderator') && affRank(actor.aff) < affRank('admin')) {
      throw new StanzaError('not-allowed', 'only admins and owners grant or revoke moderator');
    }
    // §8.2 / §8.4: admins and owners cannot be kicked or silenced, nor anyone above the actor.
    if (role !== 'moderator' && (affRank(targetAff) >= affRank('admin') || affRank(targetAff) > affRank(actor.aff))) {
      throw new StanzaError('not-allowed', 'that occupant is above you');
    }
    return { kind: 'role', value: role, target, bare: target.jid.bareString(), nick, reason };
  }
  if (!isAffiliation(affiliation)) throw new StanzaError('bad-request', 'an item changes a role or an affiliation');
  let bare: string;
  if (item.attrs.jid !== undefined) bare = parseJid(item.attrs.jid).bareString();
  else if (item.attrs.nick !== undefined) {
    const o = room.occupants.get(item.attrs.nick);
    if (!o) throw new StanzaError('item-not-found', 'no occupant with that nickname');
    bare = o.jid.bareString();
  } else throw new StanzaError('bad-request', 'an affiliation change names a JID');
  const current = room.affiliation(bare);
  // §9 / §10: admins manage members and outcasts below admin; owners manage everything.
  if (actor.aff !== 'owner') {
    if (actor.aff !== 'admin') throw new StanzaError('forbidden', 'only admins and owners change affiliations');
    if (affRank(current) >= affRank('admin') || affiliation === 'admin' || affiliation === 'owner') {
      throw new StanzaError('not-allowed', 'only owners change admins and owners');
    }
  }
  const target = room.occupantsOf(bare)[0];
  return { kind: 'affiliation', value: affiliation, target, bare, nick: item.attrs.nick, reason };
}

function applyChange(room: Room, c: Change, actorNick: string | undefined): void {
  if (c.kind === 'role') {
    const target = c.target!;
    if (c.value === 'none') {
      // §8.2: kicked, status 307.
      room.remove(target, { codes: [307], actor: actorNick, reason: c.reason });
      return;
    }
    room.setRole(target, c.value as Occupant['role'], { actor: actorNick, reason: c.reason });
    return;
  }
  const aff = c.value as Affiliation;
  const previous = room.affiliations.get(c.bare);
  const record: AffiliationRecord | undefined =
    aff === 'none' ? undefined : { affiliation: aff, nick: aff === 'outcast' ? undefined : (c.nick ?? previous?.nick), reason: c.reason };
  room.setAffiliation(c.bare, record);
  for (const o of room.occupantsOf(c.bare)) {
    if (aff === 'outcast') room.remove(o, { codes: [301], actor: actorNick, reason: c.reason, affiliation: 'outcast' }); // §9.1 banned
    else if (aff === 'none' && room.config.membersOnly) room.remove(o, { codes: [321], actor: actorNick, reason: c.reason }); // §9.4
    else {
      room.setRole(o, defaultRole(aff, room.config.moderated), { actor: actorNick, reason: c.reason });
    }
  }
}

// --- Owner (§10) -------------------------------------------------------------------------

function ownerOnly(room: Room, from: Jid): void {
  if (room.affiliation(from.bareString()) !== 'owner') throw new StanzaError('forbidden', 'only owners configure the room');
}

/** §10.2: the configuration form. */
function ownerGet(ctx: RoomIqContext, room: Room, payload: Element, from: Jid): Element {
  ownerOnly(room, from);
  if (payload.name !== 'query' || payload.firstElement() !== undefined) throw new StanzaError('bad-request');
  return x('query', NS_MUC_OWNER, {}, configForm(room.config, ctx.maxOccupants));
}

/** §10.1.2 instant room, §10.1.3 / §10.2 configuration, §10.9 destruction. */
function ownerSet(ctx: RoomIqContext, room: Room, payload: Element, from: Jid): void {
  ownerOnly(room, from);
  const destroy = payload.getChild('destroy', NS_MUC_OWNER);
  if (destroy) {
    room.destroy(destroy.attrs.jid, destroy.getChildText('reason', NS_MUC_OWNER));
    return;
  }
  const form = payload.getChild('x', NS_DATA);
  if (!form) throw new StanzaError('bad-request', 'a form or destroy is expected');
  if (form.attrs.type === 'cancel') {
    // §10.1.3: cancelling the first configuration destroys the new room.
    if (room.locked) room.destroy(undefined, undefined);
    return;
  }
  if (form.attrs.type !== 'submit') throw new StanzaError('bad-request', 'the form is not submitted');
  const before = room.config;
  const hasFields = form.getChildren('field', NS_DATA).length > 0;
  const after = hasFields ? applyConfigForm(before, form, ctx.maxOccupants) : before;
  const wasLocked = room.locked;
  room.config = after;
  room.locked = false;
  room.configChanged(before);
  if (!hasFields && wasLocked) return;
  // §10.2.1: occupants learn what changed.
  const codes = [104];
  if (before.whois !== after.whois) codes.push(after.whois === 'anyone' ? 172 : 173);
  if (isArchived(before) !== isArchived(after)) codes.push(isArchived(after) ? 170 : 171); // §10.2.1
  room.broadcastStatus(codes);
  // §9.4 / §10.2: a room that becomes members-only loses its occupants who are not members (322).
  if (after.membersOnly && !before.membersOnly) {
    for (const o of [...room.occupants.values()]) {
      if (affRank(room.affiliation(o.jid.bareString())) < affRank('member')) room.remove(o, { codes: [322] });
    }
  }
}

// --- XEP-0425 message moderation ---------------------------------------------------------

interface Moderation {
  id: string | undefined;
  retract: boolean;
  reason: string | undefined;
}

/**
 * A moderation request: XEP-0425 version 1 (<moderate id><retract/><reason/></moderate>) or
 * version 0 (<apply-to id><moderate><retract/><reason/></moderate></apply-to>, XEP-0422).
 */
function moderation(payload: Element): Moderation {
  if (payload.xmlns === NS_MODERATE) {
    return { id: payload.attrs.id, retract: payload.getChild('retract', NS_RETRACT) !== undefined, reason: payload.getChildText('reason', NS_MODERATE) };
  }
  const m = payload.getChild('moderate', NS_MODERATE_0);
  return { id: payload.attrs.id, retract: m?.getChild('retract', NS_RETRACT_0) !== undefined, reason: m?.getChildText('reason', NS_MODERATE_0) };
}

async function moderate(ctx: RoomIqContext, room: Room, req: Moderation, from: Jid): Promise<void> {
  const moderator = room.occupantByReal(from.toString());
  // XEP-0425 §4: only moderators.
  if (moderator?.role !== 'moderator') throw new StanzaError('forbidden', 'only moderators moderate messages');
  const { id, reason } = req;
  if (id === undefined || id === '') throw new StanzaError('bad-request', 'the stanza id to moderate is missing');
  if (!req.retract) throw new StanzaError('bad-request', 'only retraction is supported');
  const moderated = (): Element => x('moderated', NS_MODERATE, { by: moderator.roomJid.toString() }, x('occupant-id', NS_OCCUPANT_ID, { id: moderator.occupantId }));
  const entry = room.history.find(id);
  const stamp = new Date(ctx.now()).toISOString();
  // The tombstone (XEP-0425 §5): the message without its content, with who retracted it.
  const tombstone = (original: Element): Element => {
    const t = x('message', NS.CLIENT, { type: 'groupchat', from: original.attrs.from, id: original.attrs.id });
    for (const c of original.getChildren()) if (c.xmlns === NS_OCCUPANT_ID || (c.name === 'stanza-id' && c.xmlns === NS_SID)) t.append(c.clone());
    const retracted = x('retracted', NS_RETRACT, { stamp }, moderated());
    if (reason !== undefined) retracted.append(x('reason', NS_RETRACT, {}, reason));
    return t.append(retracted);
  };
  const found = await ctx.retractArchived(room, id, tombstone);
  if (!entry && !found) throw new StanzaError('item-not-found', 'no message with that id');
  // XEP-0425 §5: the message is not handed out again: it leaves the join history.
  if (entry) room.history.remove(id);
  const retract = x('retract', NS_RETRACT, { id }, moderated());
  if (reason !== undefined) retract.append(x('reason', NS_RETRACT, {}, reason));
  // The same notice in version 0's form, for clients that only know that one.
  const moderated0 = x('moderated', NS_MODERATE_0, { by: moderator.roomJid.toString() }, x('retract', NS_RETRACT_0));
  if (reason !== undefined) moderated0.append(x('reason', NS_MODERATE_0, {}, reason));
  const applyTo = x('apply-to', NS_FASTEN, { id }, moderated0);
  for (const o of room.occupants.values()) {
    const m = x('message', NS.CLIENT, { type: 'groupchat', from: room.jid.toString(), id: ctx.newId() }, retract.clone(), applyTo.clone());
    room.sendFromRoom(m, o);
  }
}
