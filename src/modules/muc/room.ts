// One room of a multi-user chat service (XEP-0045): its occupants, affiliations,
// configuration, subject and recent history, and the occupant use cases (§7):
// entering, presence broadcast with status codes, nick changes, leaving, groupchat
// and private messages, invitations. The moderator, admin and owner requests are
// in admin.ts. Everything here is synchronous and in memory; what goes out (to
// occupants' real JIDs) and what must be kept goes through the RoomHost, so the
// state machine runs in a unit test without a server.
import { createHmac, randomBytes } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Jid, JidError } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { RoomHistory, parseHistoryRequest, type HistoryEntry } from './history.js';
import { defaultRoomConfig, isArchived, type RoomConfig } from './roomconfig.js';
import { affRank, defaultRole, type Affiliation, type AffiliationRecord, type Role } from './roles.js';
import { NS_DATA, NS_DELAY, NS_MUC, NS_MUC_REQUEST, NS_MUC_USER, NS_OCCUPANT_ID, NS_SID } from './ns.js';

/** What a room needs from the service around it. */
export interface RoomHost {
  /** Sends a stanza that carries 'from' and 'to' (an occupant's or an invitee's real JID). */
  send(stanza: Element, from: Jid, to: Jid): void;
  /** Milliseconds since the epoch. */
  now(): number;
  /** A new unique id (XEP-0359 stanza ids). */
  newId(): string;
  /** The service's limits. */
  readonly limits: { readonly maxOccupants: number; readonly maxHistory: number };
  /** The configuration or subject changed (`before`: the configuration it had, when that changed). */
  roomChanged(room: Room, before?: RoomConfig): void;
  /** An affiliation changed (undefined: back to none). */
  affiliationChanged(room: Room, jid: string, record: AffiliationRecord | undefined): void;
  /** A groupchat message with a body was broadcast. */
  messageSent(room: Room, entry: HistoryEntry, sender: Jid): void;
  /** A real JID entered (true) or left (false) the room. */
  occupancy(room: Room, real: Jid, joined: boolean): void;
  /** The room is gone: emptied (temporary) or destroyed (§10.9). */
  gone(room: Room, destroyed: boolean): void;
}

export interface Occupant {
  nick: string;
  /** room@service/nick */
  roomJid: Jid;
  /** The real full JID of its first session: what those who may see real JIDs are shown. */
  jid: Jid;
  /**
   * Every session of the user in the room under this nick, by full JID: one user may be in
   * with several clients, all under one nick (the others see one occupant).
   */
  readonly sessions: Map<string, Jid>;
  role: Role;
  /** The occupant's last presence: what the client sent, without the MUC extensions. */
  presence: Element;
  /** XEP-0421 */
  readonly occupantId: string;
}

/** What a presence broadcast about an occupant carries beyond the occupant's own presence. */
export interface PresenceExtra {
  type?: 'unavailable';
  /** Status codes for everyone (§15.6.2); 110 is added for the occupant's own copy. */
  codes?: number[];
  /** Codes only for the occupant's own copy (100, 170, 201, 210). */
  selfCodes?: number[];
  /** The new nick, with 303 (§7.6). */
  nick?: string;
  /** The moderator's nick and the reason, for kicks, bans and removals (§8.2, §9.1). */
  actor?: string;
  reason?: string;
  /** §10.9: the room is being destroyed. */
  destroy?: { jid?: string; reason?: string };
  /** The affiliation to show (an outcast just banned), when not the current one. */
  affiliation?: Affiliation;
}

/** Children of a client's presence the room never passes on: its own MUC payloads and claimed ids. */
function ownPresence(stanza: Element): Element {
  const p = x('presence', NS.CLIENT);
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (c.xmlns === NS_MUC || c.xmlns === NS_MUC_USER || c.xmlns === NS_OCCUPANT_ID) continue;
    if (c.name === 'error') continue;
    p.children.push(c.clone());
  }
  return p;
}

const MAX_INVITES = 10;
const VOICE_REQUEST_INTERVAL_MS = 60_000;

export class Room {
  readonly occupants = new Map<string, Occupant>();
  /** By real full JID. */
  private readonly byReal = new Map<string, Occupant>();
  readonly affiliations: Map<string, AffiliationRecord>;
  readonly history: RoomHistory;
  subject = '';
  /** The nick that set the subject ('' for the room itself). */
  subjectFrom = '';
  /** §10.1.1: a new room admits no one but its owner until it is configured. */
  locked: boolean;
  private destroyed = false;
  /** When each occupant last asked for voice (§7.13). */
  private readonly voiceRequested = new WeakMap<Occupant, number>();

  constructor(
    private readonly host: RoomHost,
    /** The room's bare JID. */
    readonly jid: Jid,
    public config: RoomConfig = defaultRoomConfig(),
    affiliations: Map<string, AffiliationRecord> = new Map(),
    /** The key of its occupant ids (XEP-0421 §4: stable per real bare JID, not revealing it). */
    readonly secret: string = randomBytes(32).toString('base64url'),
    locked = false,
  ) {
    this.affiliations = affiliations;
    this.history = new RoomHistory(host.limits.maxHistory);
    this.locked = locked;
  }

  get isEmpty(): boolean {
    return this.occupants.size === 0;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  affiliation(bare: string): Affiliation {
    return this.affiliations.get(bare)?.affiliation ?? 'none';
  }

  occupantByReal(jid: string): Occupant | undefined {
    return this.byReal.get(jid);
  }

  /** The occupants a real bare JID has in the room (one per session). */
  occupantsOf(bare: string): Occupant[] {
    const out: Occupant[] = [];
    for (const o of this.occupants.values()) if (o.jid.bareString() === bare) out.push(o);
    return out;
  }

  occupantId(bare: string): string {
    return createHmac('sha256', this.secret).update(bare).digest('base64url').slice(0, 22);
  }

  /** §7.2.2 / §7.2.18: whether `to` may see the real JIDs of occupants. */
  private seesJids(to: Occupant): boolean {
    return this.config.whois === 'anyone' || to.role === 'moderator';
  }

  private maxOccupants(): number {
    const limit = this.host.limits.maxOccupants;
    return this.config.maxUsers > 0 ? Math.min(this.config.maxUsers, limit) : limit;
  }

  // --- Presence (§7.2, §7.6, §7.14) -------------------------------------------------------

  /**
   * A presence from a real JID to room/nick (nick '' for the room's bare JID). Throws a
   * StanzaError for the error presence the sender gets (§7.2.6 to §7.2.11, §7.6.3).
   */
  presence(stanza: Element, from: Jid, nick: string, created = false): void {
    const type = stanza.attrs.type;
    const occupant = this.byReal.get(from.toString());
    if (type === 'unavailable') {
      if (occupant) this.leave(occupant, stanza, from);
      return;
    }
    if (type === 'error') {
      // The occupant's client refused what the room sent: it is not there any more.
      if (occupant) this.leave(occupant, undefined, from);
      return;
    }
    if (type !== undefined) return; // subscriptions and probes mean nothing to a room
    if (!occupant) return this.join(stanza, from, nick, created);
    if (nick === '' || nick === occupant.nick) {
      // §7.7: a change of availability, broadcast to everyone.
      occupant.presence = ownPresence(stanza);
      this.broadcastPresence(occupant, {});
      return;
    }
    this.changeNick(occupant, stanza, nick);
  }

  private join(stanza: Element, from: Jid, asked: string, created: boolean): void {
    // §7.2.1: the nick is the resourcepart of the address; none is jid-malformed.
    if (asked === '') throw new StanzaError('jid-malformed', 'a nickname is needed to enter a room');
    const bare = from.bareString();
    const aff = this.affiliation(bare);
    // §7.12 / §7.2.3: a user who reserved a nick enters with it (status 210 when it asked for another).
    const reserved = this.affiliations.get(bare)?.nick;
    const reservedHolder = reserved !== undefined ? this.occupants.get(reserved) : undefined;
    const nick = reserved !== undefined && reserved !== asked && (!reservedHolder || reservedHolder.jid.bareString() === bare) ? reserved : asked;
    const muc = stanza.getChild('x', NS_MUC);
    if (this.destroyed) throw new StanzaError('item-not-found');
    // §10.1.1: a locked room does not exist for anyone but its owner.
    if (this.locked && aff !== 'owner') throw new StanzaError('item-not-found', 'the room is being configured');
    // §7.2.8
    if (aff === 'outcast') throw new StanzaError('forbidden', 'you are banned from this room');
    // §7.2.7
    if (this.config.membersOnly && affRank(aff) < affRank('member')) throw new StanzaError('registration-required', 'the room is members-only');
    // §7.2.9: the nick is someone else's, in the room or reserved (§7.10). The same user
    // entering with another client under its nick joins its occupant instead.
    const holder = this.occupants.get(nick);
    if (holder && holder.jid.bareString() !== bare) throw new StanzaError('conflict', 'that nickname is in use');
    if (this.nickReservedByOther(nick, bare)) throw new StanzaError('conflict', 'that nickname is reserved');
    // §7.2.10: admins and owners enter a full room.
    if (!holder && this.occupants.size >= this.maxOccupants() && affRank(aff) < affRank('admin')) throw new StanzaError('service-unavailable', 'the room is full');
    // §7.2.6: owners know the password they set and enter without it.
    if (this.config.password !== '' && aff !== 'owner' && muc?.getChildText('password', NS_MUC) !== this.config.password) {
      throw new StanzaError('not-authorized', 'a password is needed to enter');
    }
    const selfCodes: number[] = [];
    if (this.config.whois === 'anyone') selfCodes.push(100); // §7.2.5 non-anonymous
    if (isArchived(this.config)) selfCodes.push(170); // §7.2.12 logged
    if (created) selfCodes.push(201); // §10.1.1 created
    if (nick !== asked) selfCodes.push(210); // §7.2.3 nick modified by the service
    const history = (to: Occupant): void => {
      // §7.2.14: history, unless the client asked for none; then §7.2.15 the subject.
      const req = parseHistoryRequest(muc?.getChild('history', NS_MUC), this.host.now());
      if (muc !== undefined || req.maxStanzas !== 0) {
        for (const entry of this.history.select(req)) this.sendHistory(entry, to, from);
      }
      this.sendSubject(to, undefined, from);
    };
    if (holder) {
      // Another client of an occupant: it alone gets the entry sequence; the others see nothing new.
      for (const other of this.occupants.values()) if (other !== holder) this.sendPresence(other, holder, {}, from);
      this.addSession(holder, from);
      this.sendPresence(holder, holder, { selfCodes }, from);
      history(holder);
      return;
    }
    const occupant: Occupant = {
      nick,
      roomJid: this.occupantJid(nick),
      jid: from,
      sessions: new Map(),
      role: defaultRole(aff, this.config.moderated),
      presence: ownPresence(stanza),
      occupantId: this.occupantId(bare),
    };
    // §7.2.3: the new occupant first gets the presence of everyone already there.
    for (const other of this.occupants.values()) this.sendPresence(other, occupant, {}, from);
    this.occupants.set(nick, occupant);
    this.addSession(occupant, from);
    // Then everyone (the new occupant last, with 110) gets its presence.
    this.broadcastPresence(occupant, { selfCodes });
    history(occupant);
  }

  private addSession(occupant: Occupant, real: Jid): void {
    occupant.sessions.set(real.toString(), real);
    this.byReal.set(real.toString(), occupant);
    this.host.occupancy(this, real, true);
  }

  /** Takes one session out of the maps; true when it was the occupant's last. */
  private dropSession(occupant: Occupant, real: Jid): boolean {
    const key = real.toString();
    if (!occupant.sessions.delete(key)) return occupant.sessions.size === 0;
    this.byReal.delete(key);
    this.host.occupancy(this, real, false);
    const next = occupant.sessions.values().next();
    if (!next.done && occupant.jid.toString() === key) occupant.jid = next.value;
    return occupant.sessions.size === 0;
  }

  private dropAllSessions(occupant: Occupant): void {
    for (const real of [...occupant.sessions.values()]) this.dropSession(occupant, real);
  }

  private nickReservedByOther(nick: string, bare: string): boolean {
    for (const [jid, rec] of this.affiliations) if (rec.nick === nick && jid !== bare) return true;
    return false;
  }

  /** §7.6: a nick change: unavailable from the old nick with 303, then available from the new. */
  private changeNick(occupant: Occupant, stanza: Element, nick: string): void {
    if (this.occupants.has(nick)) throw new StanzaError('conflict', 'that nickname is in use');
    if (this.nickReservedByOther(nick, occupant.jid.bareString())) throw new StanzaError('conflict', 'that nickname is reserved');
    this.broadcastPresence(occupant, { type: 'unavailable', codes: [303], nick });
    this.occupants.delete(occupant.nick);
    occupant.nick = nick;
    occupant.roomJid = this.occupantJid(nick);
    occupant.presence = ownPresence(stanza);
    this.occupants.set(nick, occupant);
    this.broadcastPresence(occupant, {});
  }

  /**
   * §7.14: a session of the occupant leaves (its unavailable presence, if it sent one, carries
   * its status). When the occupant has other sessions in the room, only the leaving one hears
   * it; otherwise everyone does.
   */
  leave(occupant: Occupant, stanza: Element | undefined, real: Jid): void {
    if (occupant.sessions.size > 1 && occupant.sessions.has(real.toString())) {
      const p = this.presenceFor(occupant, occupant, { type: 'unavailable' });
      p.removeChildren('status', NS.CLIENT);
      p.getChild('x', NS_MUC_USER)?.getChild('item', NS_MUC_USER)?.setAttr('role', 'none');
      this.dropSession(occupant, real);
      this.deliver(p, occupant.roomJid, occupant, real);
      return;
    }
    if (stanza) occupant.presence = ownPresence(stanza);
    else occupant.presence = x('presence', NS.CLIENT);
    this.remove(occupant, {});
  }

  /**
   * Takes an occupant out without telling anyone: the server is shutting down and every
   * connection is closing, so a broadcast per leaver would only cost O(n²) stanzas nobody reads.
   */
  forget(occupant: Occupant, real: Jid): void {
    if (this.occupants.get(occupant.nick) !== occupant) return;
    if (this.dropSession(occupant, real)) this.occupants.delete(occupant.nick);
  }

  /** Takes an occupant out and tells everyone (the occupant last) with `extra`. */
  remove(occupant: Occupant, extra: PresenceExtra): void {
    if (this.occupants.get(occupant.nick) !== occupant) return;
    occupant.role = 'none';
    this.broadcastPresence(occupant, { ...extra, type: 'unavailable' });
    this.occupants.delete(occupant.nick);
    this.dropAllSessions(occupant);
    // §10.1.1 / §10.2: a temporary room goes with its last occupant; a never configured one too.
    if (this.occupants.size === 0 && (!this.config.persistent || this.locked)) this.finish(false);
  }

  private finish(destroyed: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.host.gone(this, destroyed);
  }

  /** §10.9: everyone leaves with the destroy notice; the room is gone. */
  destroy(alternate: string | undefined, reason: string | undefined): void {
    for (const o of [...this.occupants.values()]) {
      o.presence = x('presence', NS.CLIENT);
      o.role = 'none';
      this.sendPresence(o, o, { type: 'unavailable', affiliation: 'none', destroy: { jid: alternate, reason } });
      this.occupants.delete(o.nick);
      this.dropAllSessions(o);
    }
    this.finish(true);
  }

  /** The service shuts down: everyone leaves with 332 (§15.6.2), nothing else changes. */
  shutdown(): void {
    for (const o of [...this.occupants.values()]) {
      o.presence = x('presence', NS.CLIENT);
      o.role = 'none';
      this.sendPresence(o, o, { type: 'unavailable', codes: [332] });
    }
    this.occupants.clear();
    this.byReal.clear();
  }

  /** The presence of `about` as `to` sees it. */
  presenceFor(about: Occupant, to: Occupant, extra: PresenceExtra): Element {
    const p = about.presence.clone();
    p.attrs.from = about.roomJid.toString();
    if (extra.type) p.attrs.type = extra.type;
    const item = x('item', NS_MUC_USER, {
      affiliation: extra.affiliation ?? this.affiliation(about.jid.bareString()),
      role: about.role,
      jid: to === about || this.seesJids(to) ? about.jid.toString() : undefined,
      nick: extra.nick,
    });
    if (extra.actor !== undefined) item.append(x('actor', NS_MUC_USER, { nick: extra.actor }));
    if (extra.reason !== undefined) item.append(x('reason', NS_MUC_USER, {}, extra.reason));
    const mucUser = x('x', NS_MUC_USER, {}, item);
    if (extra.destroy) {
      const d = x('destroy', NS_MUC_USER, { jid: extra.destroy.jid });
      if (extra.destroy.reason !== undefined) d.append(x('reason', NS_MUC_USER, {}, extra.destroy.reason));
      mucUser.append(d);
    }
    const codes = [...(extra.codes ?? [])];
    if (to === about) codes.push(110, ...(extra.selfCodes ?? []));
    for (const code of codes.sort((a, b) => a - b)) mucUser.append(x('status', NS_MUC_USER, { code: String(code) }));
    p.append(mucUser, x('occupant-id', NS_OCCUPANT_ID, { id: about.occupantId }));
    return p;
  }

  private sendPresence(about: Occupant, to: Occupant, extra: PresenceExtra, only?: Jid): void {
    this.deliver(this.presenceFor(about, to, extra), about.roomJid, to, only);
  }

  /**
   * Sends to every session of an occupant (or only to `only`), setting 'to' on each copy.
   * The stanza itself goes out as the first copy.
   */
  deliver(stanza: Element, from: Jid, to: Occupant, only?: Jid): void {
    if (only) {
      stanza.attrs.to = only.toString();
      this.host.send(stanza, from, only);
      return;
    }
    let first = true;
    for (const real of to.sessions.values()) {
      const copy = first ? stanza : stanza.clone();
      first = false;
      copy.attrs.to = real.toString();
      this.host.send(copy, from, real);
    }
  }

  /** To every occupant, the one it is about last (§7.2.3: its own presence closes the list). */
  broadcastPresence(about: Occupant, extra: PresenceExtra): void {
    for (const o of this.occupants.values()) if (o !== about) this.sendPresence(about, o, extra);
    if (this.occupants.get(about.nick) === about) this.sendPresence(about, about, extra);
  }

  /** The owner changed the configuration (§10.2); a temporary room with nobody left goes. */
  configChanged(before: RoomConfig): void {
    this.host.roomChanged(this, before);
    if (this.occupants.size === 0 && !this.config.persistent) this.finish(false);
  }

  /** Sends a stanza from the room's own JID to an occupant. */
  sendFromRoom(stanza: Element, to: Occupant): void {
    this.deliver(stanza, this.jid, to);
  }

  /**
   * A new role, told to everyone. An occupant who becomes a moderator of a semi-anonymous room
   * gets everyone's presence again, now with their real JIDs (§7.2.2: moderators see them).
   */
  setRole(occupant: Occupant, role: Role, extra: PresenceExtra): void {
    if (this.occupants.get(occupant.nick) !== occupant) return; // removed meanwhile (an earlier item of the same request)
    const wasModerator = occupant.role === 'moderator';
    occupant.role = role;
    this.broadcastPresence(occupant, extra);
    if (role === 'moderator' && !wasModerator && this.config.whois === 'moderators') {
      for (const o of this.occupants.values()) if (o !== occupant) this.sendPresence(o, occupant, {});
    }
  }

  /** Every occupant gets a status message from the room (§10.2.1: 104, configuration changed). */
  broadcastStatus(codes: number[]): void {
    for (const o of this.occupants.values()) {
      const mucUser = x('x', NS_MUC_USER, {}, ...codes.map((c) => x('status', NS_MUC_USER, { code: String(c) })));
      this.deliver(x('message', NS.CLIENT, { type: 'groupchat', from: this.jid.toString(), id: this.host.newId() }, mucUser), this.jid, o);
    }
  }

  private subjectJidCache: { nick: string; jid: Jid } | undefined;

  /** Who the subject comes from: the room, or the occupant JID of the nick that set it. */
  private subjectJid(): Jid {
    if (this.subjectFrom === '') return this.jid;
    if (this.subjectJidCache?.nick !== this.subjectFrom) this.subjectJidCache = { nick: this.subjectFrom, jid: this.occupantJid(this.subjectFrom) };
    return this.subjectJidCache.jid;
  }

  occupantJid(nick: string): Jid {
    return Jid.parse(`${this.jid.bareString()}/${nick}`);
  }

  // --- Messages (§7.4, §7.5, §7.8, §8.1) -------------------------------------------------

  /** A message from a real JID to the room (nick '') or to an occupant. Throws the error to bounce. */
  message(stanza: Element, from: Jid, nick: string): void {
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'error') {
      // An occupant's client refused a message: nothing to answer (an error is never answered).
      return;
    }
    const sender = this.byReal.get(from.toString());
    if (nick !== '') return this.privateMessage(stanza, sender, nick, type);
    if (type === 'groupchat') return this.groupchat(stanza, sender, from);
    const mucUser = stanza.getChild('x', NS_MUC_USER);
    if (mucUser?.getChild('invite', NS_MUC_USER)) return this.invite(mucUser, from, sender);
    if (mucUser?.getChild('decline', NS_MUC_USER)) return this.decline(mucUser, from);
    const form = stanza.getChild('x', NS_DATA);
    if (form && formField(form, 'FORM_TYPE') === NS_MUC_REQUEST) return this.voiceRequest(form, sender);
    throw new StanzaError('bad-request', 'a message to the room is groupchat, an invitation, a decline or a voice request');
  }

  private groupchat(stanza: Element, sender: Occupant | undefined, from: Jid): void {
    // §7.4: only occupants speak; §8.4 / §7.4: a visitor has no voice.
    if (!sender) throw new StanzaError('not-acceptable', 'only occupants may send messages to the room');
    if (sender.role === 'visitor' || sender.role === 'none') throw new StanzaError('forbidden', 'you have no voice in this room');
    const subject = stanza.getChild('subject', stanza.xmlns);
    const body = stanza.getChild('body', stanza.xmlns);
    if (subject !== undefined && body === undefined) return this.changeSubject(stanza, sender, subject.text());
    const out = x('message', NS.CLIENT, { type: 'groupchat', from: sender.roomJid.toString(), id: stanza.attrs.id });
    for (const c of stanza.children) {
      if (typeof c === 'string') continue;
      // XEP-0359 §3.1 / XEP-0421 §4: ids a client claims for the room are not passed on; nor
      // muc#user data, which only the room itself may state (§17.2).
      if ((c.name === 'stanza-id' && c.xmlns === NS_SID) || c.xmlns === NS_OCCUPANT_ID || c.xmlns === NS_MUC_USER) continue;
      out.children.push(c.clone());
    }
    const id = this.host.newId();
    out.append(x('occupant-id', NS_OCCUPANT_ID, { id: sender.occupantId }), x('stanza-id', NS_SID, { id, by: this.jid.toString() }));
    // §7.4: to every occupant, the sender included.
    for (const o of this.occupants.values()) this.deliver(out.clone(), sender.roomJid, o);
    if (body === undefined) return; // chat states and the like are not history
    const entry: HistoryEntry = { id, stamp: this.host.now(), stanza: out, chars: out.toString().length };
    this.history.push(entry);
    this.host.messageSent(this, entry, from);
  }

  /** §8.1: a message with a subject and no body sets the subject. */
  private changeSubject(stanza: Element, sender: Occupant, subject: string): void {
    if (sender.role !== 'moderator' && !(this.config.changeSubject && sender.role === 'participant')) {
      throw new StanzaError('forbidden', 'you may not change the subject');
    }
    this.subject = subject;
    this.subjectFrom = sender.nick;
    this.host.roomChanged(this);
    for (const o of this.occupants.values()) this.sendSubject(o, stanza.attrs.id);
  }

  private sendSubject(to: Occupant, id?: string, only?: Jid): void {
    const from = this.subjectJid();
    // §7.2.15: an empty <subject/> when there is none, which also ends the join.
    const m = x('message', NS.CLIENT, { type: 'groupchat', from: from.toString(), id: id ?? this.host.newId() }, x('subject', NS.CLIENT, {}, this.subject));
    this.deliver(m, from, to, only);
  }

  private sendHistory(entry: HistoryEntry, to: Occupant, only?: Jid): void {
    const copy = entry.stanza.clone();
    // §7.2.14: each with a delay from the room, when the room received it (XEP-0203).
    copy.append(x('delay', NS_DELAY, { from: this.jid.toString(), stamp: new Date(entry.stamp).toISOString() }));
    this.deliver(copy, Jid.parse(copy.attrs.from!), to, only);
  }

  /** §7.5: a private message to one occupant, from an occupant. */
  private privateMessage(stanza: Element, sender: Occupant | undefined, nick: string, type: string): void {
    if (!sender) throw new StanzaError('not-acceptable', 'only occupants may send private messages');
    // §7.5: groupchat to one occupant is a mistake.
    if (type === 'groupchat') throw new StanzaError('bad-request', 'a private message is not of type groupchat');
    const target = this.occupants.get(nick);
    if (!target) throw new StanzaError('item-not-found', 'no occupant with that nickname');
    const policy = this.config.allowPm;
    if (policy === 'none' || (policy === 'moderators' && sender.role !== 'moderator') || (policy === 'participants' && sender.role === 'visitor')) {
      throw new StanzaError('forbidden', 'private messages are not allowed here');
    }
    const out = x('message', NS.CLIENT, { type: stanza.attrs.type, from: sender.roomJid.toString(), id: stanza.attrs.id });
    for (const c of stanza.children) {
      if (typeof c === 'string' || c.xmlns === NS_OCCUPANT_ID || c.xmlns === NS_MUC_USER) continue;
      out.children.push(c.clone());
    }
    // §7.5: marked as coming through the room (clients and carbons tell it from a direct chat).
    out.append(x('x', NS_MUC_USER), x('occupant-id', NS_OCCUPANT_ID, { id: sender.occupantId }));
    this.deliver(out, sender.roomJid, target);
  }

  /** §7.8.2: a mediated invitation, sent on by the room. */
  private invite(mucUser: Element, from: Jid, sender: Occupant | undefined): void {
    if (!sender) throw new StanzaError('not-acceptable', 'only occupants may invite');
    const aff = this.affiliation(from.bareString());
    const privileged = affRank(aff) >= affRank('admin');
    // §7.8.2: in a members-only room only admins and owners invite, unless the room lets occupants.
    if (this.config.membersOnly && !privileged && !this.config.allowInvites) throw new StanzaError('forbidden', 'you may not invite anyone to this room');
    const invites = mucUser.getChildren('invite', NS_MUC_USER).slice(0, MAX_INVITES);
    const targets: Jid[] = [];
    for (const inv of invites) targets.push(parseJid(inv.attrs.to));
    invites.forEach((inv, i) => {
      const to = targets[i]!;
      if (this.config.membersOnly && this.affiliation(to.bareString()) === 'none') {
        // §7.8.2: the invitee becomes a member, so it can enter.
        this.setAffiliation(to.bareString(), { affiliation: 'member' });
      }
      const invite = x('invite', NS_MUC_USER, { from: from.toString() });
      const reason = inv.getChildText('reason', NS_MUC_USER);
      if (reason !== undefined) invite.append(x('reason', NS_MUC_USER, {}, reason));
      const out = x('x', NS_MUC_USER, {}, invite);
      if (this.config.password !== '') out.append(x('password', NS_MUC_USER, {}, this.config.password));
      this.host.send(x('message', NS.CLIENT, { from: this.jid.toString(), to: to.toString(), id: this.host.newId() }, out), this.jid, to);
    });
  }

  /**
   * §7.13 / §8.6: a visitor asks for voice: each moderator gets the approval form; a moderator
   * who submits it with muc#request_allow true grants voice (§8.3).
   */
  private voiceRequest(form: Element, sender: Occupant | undefined): void {
    if (!sender) throw new StanzaError('not-acceptable', 'only occupants may ask for voice');
    if (form.attrs.type !== 'submit') throw new StanzaError('bad-request', 'the form is not submitted');
    if (sender.role === 'moderator') {
      const allow = formField(form, 'muc#request_allow');
      if (allow !== 'true' && allow !== '1') return;
      const target = this.occupants.get(formField(form, 'muc#roomnick') ?? '');
      if (target?.role === 'visitor') this.setRole(target, 'participant', { actor: sender.nick });
      return;
    }
    if (sender.role !== 'visitor' || formField(form, 'muc#role') !== 'participant') return;
    // One request a minute per occupant reaches the moderators; the rest would only be noise.
    const now = this.host.now();
    const last = this.voiceRequested.get(sender);
    if (last !== undefined && now - last < VOICE_REQUEST_INTERVAL_MS) return;
    this.voiceRequested.set(sender, now);
    const field = (v: string, type: string, label: string, value: string): Element => x('field', NS_DATA, { var: v, type, label }, x('value', NS_DATA, {}, value));
    const approval = x(
      'x',
      NS_DATA,
      { type: 'form' },
      x('title', NS_DATA, {}, 'Voice request'),
      x('instructions', NS_DATA, {}, 'To grant voice, set "Grant voice" and submit this form.'),
      field('FORM_TYPE', 'hidden', '', NS_MUC_REQUEST),
      field('muc#role', 'list-single', 'Requested role', 'participant'),
      field('muc#jid', 'jid-single', 'User ID', sender.jid.toString()),
      field('muc#roomnick', 'text-single', 'Room nickname', sender.nick),
      field('muc#request_allow', 'boolean', 'Grant voice', 'false'),
    );
    for (const o of this.occupants.values()) {
      if (o.role === 'moderator') this.deliver(x('message', NS.CLIENT, { from: this.jid.toString(), id: this.host.newId() }, approval.clone()), this.jid, o);
    }
  }

  /** §7.8.2: the invitee declines; the room tells the inviter. */
  private decline(mucUser: Element, from: Jid): void {
    const d = mucUser.getChild('decline', NS_MUC_USER)!;
    const to = parseJid(d.attrs.to);
    const out = x('decline', NS_MUC_USER, { from: from.toString() });
    const reason = d.getChildText('reason', NS_MUC_USER);
    if (reason !== undefined) out.append(x('reason', NS_MUC_USER, {}, reason));
    this.host.send(x('message', NS.CLIENT, { from: this.jid.toString(), to: to.toString(), id: this.host.newId() }, x('x', NS_MUC_USER, {}, out)), this.jid, to);
  }

  /** Records an affiliation (undefined or 'none' removes it) and tells the host. */
  setAffiliation(bare: string, record: AffiliationRecord | undefined): void {
    if (record === undefined) this.affiliations.delete(bare);
    else this.affiliations.set(bare, record);
    this.host.affiliationChanged(this, bare, record);
  }
}

/** The first value of a data form field (XEP-0004). */
function formField(form: Element, name: string): string | undefined {
  return form
    .getChildren('field', NS_DATA)
    .find((f) => f.attrs.var === name)
    ?.getChildText('value', NS_DATA);
}

export function parseJid(s: string | undefined): Jid {
  if (s === undefined || s === '') throw new StanzaError('bad-request', 'a JID is needed');
  try {
    return Jid.parse(s);
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError('jid-malformed', 'not a valid JID');
    throw err;
  }
}
