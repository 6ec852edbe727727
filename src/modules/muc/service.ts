// One multi-user chat service (XEP-0045) on its own domain: it creates rooms on
// first entry (§10.1), routes each stanza to its room, answers disco for itself
// (§6.1 to §6.3), keeps persistent rooms in storage, and knows which rooms each
// real JID is in, so that a session's end takes it out of all of them in one go
// (the seed's clean-up) without looking at every room.
import { randomBytes } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import { Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import type { AddressedStanza, ServerApi } from '../../core/api.js';
import type { HistoryEntry } from './history.js';
import { Room, type RoomHost } from './room.js';
import { roomIq, type RoomIqContext } from './admin.js';
import { isArchived, parseStoredConfig, type RoomConfig } from './roomconfig.js';
import { affRank, type AffiliationRecord } from './roles.js';
import type { MucStore, RoomArchive, StoredRoom } from './store.js';
import type { MamApi } from '../mam/api.js';
import { NS_CONFERENCE, NS_MAM, NS_MUC, NS_OCCUPANT_ID, NS_PING, NS_SELF_PING, NS_SID } from './ns.js';

/** IQs forwarded between occupants (XEP-0045 §17.3) and waiting for their answer, per service. */
const MAX_FORWARDED_IQS = 10_000;
/** How long a forwarded IQ waits for its answer before the sender gets remote-server-timeout. */
const FORWARDED_IQ_TIMEOUT_MS = 60_000;
const NS_VCARD = 'vcard-temp';

interface ForwardedIq {
  /** The sender's own id. */
  id: string;
  /** The sender's real JID and occupant JID. */
  requester: Jid;
  requesterRoomJid: Jid;
  /** The target's occupant JID, and the real bare JID the answer must come from. */
  targetRoomJid: Jid;
  targetBare: string;
  timer: NodeJS.Timeout;
}

export interface MucLimits {
  readonly maxOccupants: number;
  readonly maxHistory: number;
  readonly maxRoomsPerUser: number;
}

export class MucService implements RoomHost, RoomIqContext {
  readonly rooms = new Map<string, Room>();
  /** Real full JID -> the rooms it is in. */
  private readonly presentIn = new Map<string, Set<Room>>();
  /** Storage writes, one after another, in the order the rooms made them. */
  private writes: Promise<void> = Promise.resolve();
  private readonly jid: Jid;
  /** Forwarded IQs by the id the service gave them. */
  private readonly forwarded = new Map<string, ForwardedIq>();

  constructor(
    private readonly server: ServerApi,
    readonly domain: string,
    private readonly store: MucStore,
    readonly limits: MucLimits,
    /** The archive query code (XEP-0313), when the mam module runs. */
    private readonly mam?: MamApi,
  ) {
    this.jid = Jid.parse(domain);
  }

  get maxOccupants(): number {
    return this.limits.maxOccupants;
  }

  get archiveQueries(): boolean {
    return this.mam !== undefined;
  }

  /**
   * Restores the persistent rooms (§10.2: they exist with nobody in them) that this node hosts:
   * all of them, outside a cluster.
   */
  async load(): Promise<void> {
    for (const stored of await this.store.rooms(this.domain)) {
      if (this.hostsHere(stored.name)) await this.restore(stored);
    }
  }

  /** Whether the room `name` lives on this node (in a cluster each room lives on one node). */
  private hostsHere(name: string): boolean {
    return this.server.router.hostOf(`${name}@${this.domain}`) === undefined;
  }

  private async restore(stored: StoredRoom): Promise<void> {
    const room = new Room(this, Jid.parse(`${stored.name}@${this.domain}`), parseStoredConfig(stored.config), stored.affiliations, stored.secret);
    room.subject = stored.subject;
    room.subjectFrom = stored.subjectFrom;
    for (const m of await this.store.recent(this.domain, stored.name, this.limits.maxHistory)) {
      try {
        const stanza = loadXml(m.xml);
        room.history.push({ id: m.id, stamp: m.stamp, stanza, chars: m.xml.length });
      } catch (err) {
        this.server.log.error({ err, room: room.jid.toString(), id: m.id }, 'an archived room message is unreadable');
      }
    }
    this.rooms.set(stored.name, room);
  }

  /**
   * The cluster's live nodes changed: rooms that now live on another node let their occupants
   * go (332, as at a shutdown: clients join again, and reach the room where it lives now), and
   * the persistent rooms that now live here are read from storage, as their last host left them.
   */
  async rebalance(): Promise<void> {
    for (const [name, room] of [...this.rooms]) {
      if (this.hostsHere(name)) continue;
      room.shutdown();
      for (const [real, set] of this.presentIn) {
        set.delete(room);
        if (set.size === 0) this.presentIn.delete(real);
      }
      this.rooms.delete(name);
    }
    await this.writes;
    for (const stored of await this.store.rooms(this.domain)) {
      if (!this.rooms.has(stored.name) && this.hostsHere(stored.name)) await this.restore(stored);
    }
  }

  /** Every stanza for this domain. */
  async handle(ev: AddressedStanza): Promise<void> {
    const { stanza, to } = ev;
    try {
      if (to.local === '') return this.forService(ev);
      await this.forRoom(ev);
    } catch (err) {
      if (!(err instanceof StanzaError)) this.server.log.error({ err, room: to.bareString() }, 'a room failed to handle a stanza');
      this.server.bounce(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    }
  }

  private async forRoom(ev: AddressedStanza): Promise<void> {
    const { stanza, kind, from, to } = ev;
    const nick = to.resource;
    let room = this.rooms.get(to.local);
    if (kind === 'presence') {
      if (room) return room.presence(stanza, from, nick);
      // §10.1.1: an available presence to a room that does not exist creates it.
      if (stanza.attrs.type !== undefined) return;
      if (nick === '') throw new StanzaError('jid-malformed', 'a nickname is needed to enter a room');
      room = this.create(to.bare, from, stanza.getChild('x', NS_MUC) !== undefined);
      try {
        room.presence(stanza, from, nick, true);
      } finally {
        if (room.isEmpty && !room.isDestroyed) this.rooms.delete(to.local);
      }
      return;
    }
    if (kind === 'message') {
      if (stanza.attrs.type === 'error') return;
      if (!room || (room.locked && room.affiliation(from.bareString()) !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
      return room.message(stanza, from, nick);
    }
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') {
      if (nick !== '') this.forwardedAnswer(stanza, from, to);
      return;
    }
    if (!room || (room.locked && room.affiliation(from.bareString()) !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
    if (nick !== '' && this.forwardIq(room, stanza, from, nick)) return;
    const payload = stanza.firstElement();
    if (nick === '' && payload?.xmlns === NS_MAM && this.mam) return this.archiveQuery(this.mam, room, stanza, payload, from, to);
    const result = await roomIq(this, room, stanza, from, nick);
    this.reply(stanza, from, to, result);
  }

  private reply(iq: Element, from: Jid, to: Jid, payload: Element | void): void {
    const reply = x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id, from: to.toString(), to: from.toString() });
    if (payload) reply.append(payload);
    this.send(reply, to, from);
  }

  /**
   * XEP-0045 §17.3 (bizrules-iq): an IQ from an occupant to another occupant's JID goes to that
   * occupant's real JID (a vCard request to its bare JID, where the server answers for it),
   * with the sender's occupant JID as 'from', so that neither learns the other's real JID.
   * False when the room answers it itself (a self-ping, a sender who is not in the room, a nick
   * nobody has).
   */
  private forwardIq(room: Room, iq: Element, from: Jid, nick: string): boolean {
    const sender = room.occupantByReal(from.toString());
    const target = room.occupants.get(nick);
    const payload = iq.firstElement();
    if (!sender || !target || !payload || (target === sender && payload.xmlns === NS_PING)) return false;
    if (this.forwarded.size >= MAX_FORWARDED_IQS) throw new StanzaError('resource-constraint', 'too many requests between occupants are waiting');
    const id = this.newId();
    const toReal = payload.xmlns === NS_VCARD ? target.jid.bare : target.jid;
    const out = iq.clone();
    out.attrs.id = id;
    out.attrs.from = sender.roomJid.toString();
    out.attrs.to = toReal.toString();
    const timer = setTimeout(() => {
      const pending = this.forwarded.get(id);
      if (!pending) return;
      this.forwarded.delete(id);
      const error = x('iq', NS.CLIENT, { type: 'error', id: pending.id, from: pending.targetRoomJid.toString(), to: pending.requester.toString() }, new StanzaError('remote-server-timeout').toElement());
      this.send(error, pending.targetRoomJid, pending.requester);
    }, FORWARDED_IQ_TIMEOUT_MS);
    timer.unref();
    this.forwarded.set(id, { id: iq.attrs.id ?? '', requester: from, requesterRoomJid: sender.roomJid, targetRoomJid: target.roomJid, targetBare: target.jid.bareString(), timer });
    this.send(out, sender.roomJid, toReal);
    return true;
  }

  /** The answer to a forwarded IQ, back to the sender from the target's occupant JID. */
  private forwardedAnswer(answer: Element, from: Jid, to: Jid): void {
    const pending = this.forwarded.get(answer.attrs.id ?? '');
    if (!pending || !pending.requesterRoomJid.equals(to) || from.bareString() !== pending.targetBare) return;
    this.forwarded.delete(answer.attrs.id!);
    clearTimeout(pending.timer);
    const reply = answer.clone();
    reply.attrs.id = pending.id;
    reply.attrs.from = pending.targetRoomJid.toString();
    reply.attrs.to = pending.requester.toString();
    this.send(reply, pending.targetRoomJid, pending.requester);
  }

  /**
   * XEP-0313 at the room JID (§5.1.2 of its MUC section): the form, the metadata, or a query
   * whose results go to the querying occupant's real JID before the IQ result.
   */
  private async archiveQuery(mam: MamApi, room: Room, iq: Element, payload: Element, from: Jid, to: Jid): Promise<void> {
    const archive = this.archiveFor(room.jid, from);
    // The room's writes are queued behind each other (write()): a message the querier has
    // already received must be in what it reads, so the query waits for those writes first.
    await this.writes;
    if (iq.attrs.type === 'get') {
      if (payload.name === 'query') return this.reply(iq, from, to, mam.queryForm());
      if (payload.name === 'metadata') return this.reply(iq, from, to, await mam.metadata(archive));
      throw new StanzaError('bad-request', 'expected query or metadata');
    }
    if (payload.name !== 'query') throw new StanzaError('bad-request', 'expected query');
    const fin = await mam.query(archive, payload, room.jid.toString(), from.toString(), (result) => this.server.routeTo(result, room.jid, from));
    this.reply(iq, from, to, fin);
  }

  /** §10.1.1: a new room, owned by its creator, locked until configured when the creator speaks MUC. */
  private create(jid: Jid, creator: Jid, speaksMuc: boolean): Room {
    const bare = creator.bareString();
    const max = this.limits.maxRoomsPerUser;
    let owned = 0;
    for (const r of this.rooms.values()) if (r.affiliation(bare) === 'owner') owned++;
    if (owned >= max) throw new StanzaError('not-allowed', `you already own ${owned} rooms, the most this service allows (muc.max_rooms_per_user)`);
    const room = new Room(this, jid, undefined, new Map([[bare, { affiliation: 'owner' }]]), undefined, speaksMuc);
    this.rooms.set(jid.local, room);
    return room;
  }

  /** IQs to the service itself (§6.1 to §6.3); other stanzas to it mean nothing. */
  private forService(ev: AddressedStanza): void {
    const { stanza, from, to, kind } = ev;
    const type = stanza.attrs.type;
    if (kind === 'message' && type !== 'error') throw new StanzaError('service-unavailable');
    if (kind !== 'iq' || (type !== 'get' && type !== 'set')) return;
    const payload = stanza.firstElement();
    if (type === 'get' && payload?.xmlns === NS.DISCO_INFO && payload.attrs.node === undefined) {
      const features = [NS_MUC, NS.DISCO_INFO, NS.DISCO_ITEMS, NS_PING, NS_SID, NS_OCCUPANT_ID, NS_SELF_PING, NS_CONFERENCE];
      return this.reply(
        stanza,
        from,
        to,
        x(
          'query',
          NS.DISCO_INFO,
          {},
          x('identity', NS.DISCO_INFO, { category: 'conference', type: 'text', name: 'Chatrooms' }),
          ...features.sort().map((f) => x('feature', NS.DISCO_INFO, { var: f })),
        ),
      );
    }
    if (type === 'get' && payload?.xmlns === NS.DISCO_ITEMS && payload.attrs.node === undefined) {
      // §6.3: the public rooms (a locked one does not exist yet for anyone else).
      const items: Element[] = [];
      for (const room of this.rooms.values()) {
        if (!room.config.public || room.locked) continue;
        items.push(x('item', NS.DISCO_ITEMS, { jid: room.jid.toString(), name: room.config.name !== '' ? room.config.name : room.jid.local }));
      }
      return this.reply(stanza, from, to, x('query', NS.DISCO_ITEMS, {}, ...items));
    }
    if (type === 'get' && payload?.xmlns === NS_PING) return this.reply(stanza, from, to, undefined);
    throw new StanzaError('service-unavailable');
  }

  /**
   * The seed's clean-up: a real JID (a session that ended, or sent unavailable presence to
   * the server) leaves every room it is in; its last presence, if given, says why.
   */
  leaveAll(real: Jid, unavailable?: Element, shutdown = false): void {
    const rooms = this.presentIn.get(real.toString());
    if (!rooms) return;
    for (const room of [...rooms]) {
      const occupant = room.occupantByReal(real.toString());
      if (!occupant) continue;
      if (shutdown) room.forget(occupant, real);
      else room.leave(occupant, unavailable, real);
    }
  }

  /**
   * A room's archive for an XEP-0313 query at the room JID by `from`: item-not-found for no
   * such room, forbidden for an outcast, or for a non-member of a members-only room (issue:
   * "only for members where the room is members-only"). Only persistent rooms archive.
   */
  archiveFor(room: Jid, from: Jid): RoomArchive {
    const r = this.rooms.get(room.local);
    if (!r || !room.bare.equals(r.jid) || (r.locked && r.affiliation(from.bareString()) !== 'owner')) throw new StanzaError('item-not-found', 'no such room');
    const aff = r.affiliation(from.bareString());
    if (aff === 'outcast' || (r.config.membersOnly && affRank(aff) < affRank('member'))) throw new StanzaError('forbidden', "only members read this room's archive");
    return this.store.archive(this.domain, r.jid.local);
  }

  /** The service stops: everyone is told (332) and the pending writes finish. */
  async shutdown(): Promise<void> {
    for (const room of this.rooms.values()) room.shutdown();
    this.presentIn.clear();
    for (const f of this.forwarded.values()) clearTimeout(f.timer);
    this.forwarded.clear();
    await this.writes;
  }

  // --- RoomHost ---------------------------------------------------------------------------

  send(stanza: Element, from: Jid, to: Jid): void {
    void this.server.routeTo(stanza, from, to);
  }

  now(): number {
    return Date.now();
  }

  newId(): string {
    return randomBytes(12).toString('base64url');
  }

  occupancy(room: Room, real: Jid, joined: boolean): void {
    const key = real.toString();
    let set = this.presentIn.get(key);
    if (joined) {
      if (!set) this.presentIn.set(key, (set = new Set()));
      set.add(room);
    } else if (set) {
      set.delete(room);
      if (set.size === 0) this.presentIn.delete(key);
    }
  }

  gone(room: Room, destroyed: boolean): void {
    if (this.rooms.get(room.jid.local) === room) this.rooms.delete(room.jid.local);
    if (destroyed || room.config.persistent) this.write('deleting a room', () => this.store.deleteRoom(this.domain, room.jid.local));
  }

  roomChanged(room: Room, before?: RoomConfig): void {
    const name = room.jid.local;
    if (!room.config.persistent) {
      if (before?.persistent) this.write('deleting a room', () => this.store.deleteRoom(this.domain, name));
      return;
    }
    const row = { name, config: JSON.stringify(room.config), subject: room.subject, subjectFrom: room.subjectFrom, secret: room.secret };
    // A room that just became persistent is written whole, affiliations included.
    const affiliations = before !== undefined && !before.persistent ? new Map(room.affiliations) : undefined;
    this.write('saving a room', () => this.store.saveRoom(this.domain, row, affiliations, this.server.hosts));
  }

  affiliationChanged(room: Room, jid: string, record: AffiliationRecord | undefined): void {
    if (!room.config.persistent) return;
    this.write('saving an affiliation', () => this.store.setAffiliation(this.domain, room.jid.local, jid, record, this.server.hosts));
  }

  messageSent(room: Room, entry: HistoryEntry, sender: Jid): void {
    if (!isArchived(room.config)) return;
    const from = entry.stanza.attrs.from ?? '';
    const nick = from.slice(from.indexOf('/') + 1);
    const m = { id: entry.id, stamp: entry.stamp, nick, sender: sender.toString(), xml: storeXml(entry.stanza) };
    this.write('archiving a room message', () => this.store.addMessage(this.domain, room.jid.local, m));
  }

  async retractArchived(room: Room, id: string, tombstone: (original: Element) => Element): Promise<boolean> {
    await this.writes;
    const found = await this.store.message(this.domain, room.jid.local, id);
    if (!found) {
      const kept = room.history.find(id);
      return kept !== undefined;
    }
    if (found.retracted) return true;
    await this.store.retract(this.domain, room.jid.local, id, storeXml(tombstone(loadXml(found.xml))));
    return true;
  }

  private write(what: string, op: () => Promise<void>): void {
    const next = this.writes.then(op).catch((err: unknown) => this.server.log.error({ err, service: this.domain }, `${what} failed`));
    this.writes = next;
    this.server.track(next, what);
  }
}
