// XEP-0191 Blocking Command: the user's blocklist (get, block, unblock, unblock
// all) with pushes to the resources that asked for it, and enforcement on what
// clients send: nothing from a blocked JID reaches the user, and nothing the user
// sends reaches a JID they blocked.
//
// Both sides of the route: what a user sends to a JID they blocked is refused on
// the sender's side; what a blocked JID sends to a user (from a client, a module
// or a component) is stopped on the recipient's side. Presence the server sends
// on a user's behalf (broadcasts, probe answers) asks mayExchange first, which
// this module answers for both directions.
import { randomBytes } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Jid, JidError, tryParseJid } from '../../jid/jid.js';
import { StanzaError, errorReply } from '../../core/errors.js';
import { blocklistKeysFor, type RosterItem, type Storage } from '../../storage/types.js';
import type { Session } from '../../core/session.js';
import type { AddressedStanza, IqRequest, RoutedStanza, ServerApi } from '../../core/api.js';
import type { KeyedCache } from '../../core/cache.js';
import { Priority } from '../../core/hooks.js';
import type { Module } from '../api.js';

/** XEP-0191 §9 (XMPP Registrar). */
export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

/** XEP-0191 §3.3: the error for a stanza the user sent to a JID they blocked. */
export function blockedError(stanza: Element): Element {
  // The XEP's example carries type 'cancel': resending will not help.
  const reply = errorReply(stanza, new StanzaError('not-acceptable', undefined, 'cancel'));
  reply.getChild('error', stanza.xmlns)?.append(x('blocked', NS_BLOCKING_ERRORS));
  return reply;
}

const subscribedFrom = (i: RosterItem): boolean => i.subscription === 'from' || i.subscription === 'both';
const subscribedTo = (i: RosterItem): boolean => i.subscription === 'to' || i.subscription === 'both';

export class BlockingModule {
  /** XEP-0191 §3.3/§3.4: pushes go to the resources that requested the blocklist. */
  private readonly interested = new WeakSet<Session>();
  /**
   * The blocklist per bare JID, kept only while the user has a session (dropped with the last),
   * since every stanza to or from the user is checked against it.
   */
  private readonly lists: KeyedCache<ReadonlySet<string>>;

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
  ) {
    this.lists = server.caches.define<ReadonlySet<string>>('blocklist');
  }

  start(): void {
    const server = this.server;
    // XEP-0191 §3.1: the server advertises it; the account answers for it too.
    server.addFeature('server', NS_BLOCKING);
    server.addFeature('account', NS_BLOCKING);
    server.handleIq('account', NS_BLOCKING, 'get', (req) => this.getList(req));
    server.handleIq('account', NS_BLOCKING, 'set', (req) => this.command(req));
    for (const kind of ['message', 'presence', 'iq'] as const) {
      server.hookOutbound(kind, (ev) => this.refuseToBlocked(ev), Priority.POLICY);
      server.hookInbound(kind, (ev) => this.stopFromBlocked(ev), Priority.POLICY);
    }
    // XEP-0191 §3.3 / §3.4: neither side of a block sees the other's presence, whichever side blocked.
    server.addDeliveryFilter((from, to) => {
      if (from.bare.equals(to.bare)) return true;
      const theyBlock = server.isLocalDomain(to.domain) && to.local !== '' ? this.isBlocked(to.bare, from.toString()) : false;
      const weBlock = server.isLocalDomain(from.domain) && from.local !== '' ? this.isBlocked(from.bare, to.toString()) : false;
      if (theyBlock === true || weBlock === true) return false;
      if (theyBlock === false && weBlock === false) return true;
      return Promise.all([theyBlock, weBlock]).then(([a, b]) => !a && !b);
    });
    // Presence the server sends to a contact's bare JID reaches all of the contact's resources; a
    // block of one of them (a full-JID entry, §6) is enforced as each copy leaves for a client.
    server.addOutgoingFilter((session, stanza) => (stanza.name === 'presence' ? this.presenceFilter(session, stanza) : stanza), Priority.POLICY);
    // Loaded at login, so the synchronous filter has the lists of everyone online.
    server.on('session-bound', (session) => {
      const user = session.jid.bare;
      void this.lists.get(user.bareString(), () => this.load(user)).catch(() => undefined);
    });
    server.on('session-ended', (session) => {
      const bare = session.jid.bareString();
      if (server.router.getSessions(bare).length === 0) this.lists.forget(bare);
    });
  }

  private async load(user: Jid): Promise<ReadonlySet<string>> {
    const items = await this.storage.blocking.list(user.domain, user.local);
    // Most users block no one: they share one empty list (changes copy it, updateCache()).
    return items.length === 0 ? NOBODY : new Set(items);
  }

  /** §3.3: presence between a user and a JID either of them blocked is not delivered, whoever sent it. */
  private presenceFilter(session: Session, stanza: Element): Element | null {
    const from = stanza.attrs.from;
    // Unavailable tells nothing, and §3.3 itself sends it to the blocked side when a block starts;
    // an error answers the user's own stanza (the <blocked/> refusal among them).
    const type = stanza.attrs.type;
    if (from === undefined || type === 'unavailable' || type === 'error') return stanza;
    const own = session.jid.bareString();
    const slash = from.indexOf('/');
    const senderBare = slash < 0 ? from : from.slice(0, slash);
    if (senderBare === own) return stanza;
    const theirs = this.lists.settled(senderBare);
    if (theirs !== undefined && matches(theirs, session.jid.toString())) return null;
    const mine = this.lists.settled(own);
    if (mine !== undefined && matches(mine, from)) return null;
    return stanza;
  }

  /**
   * Whether `user` (a local bare JID) blocks `jid` (canonical string), per XEP-0191 §6: at once
   * when the user's list is loaded here (everyone online), else from storage.
   */
  isBlocked(user: Jid, jid: string): boolean | Promise<boolean> {
    const key = user.bareString();
    const loaded = this.lists.settled(key);
    if (loaded !== undefined) return matches(loaded, jid);
    if (!this.lists.has(key) && this.server.router.getSessions(key).length === 0) {
      return this.storage.blocking.isBlocked(user.domain, user.local, jid);
    }
    return this.lists.get(key, () => this.load(user)).then((list) => matches(list, jid));
  }

  // --- The protocol (XEP-0191 §3) ------------------------------------------------------

  private async getList({ from, to, payload, session }: IqRequest): Promise<Element> {
    // §3.2: a user's own blocklist, requested with no 'to'.
    if (!from.bare.equals(to)) throw new StanzaError('forbidden');
    if (payload.name !== 'blocklist') throw new StanzaError('bad-request', 'expected <blocklist/>');
    const jids = await this.storage.blocking.list(to.domain, to.local);
    if (session) this.interested.add(session);
    return x('blocklist', NS_BLOCKING, {}, ...jids.map((jid) => x('item', NS_BLOCKING, { jid })));
  }

  private async command({ from, to, payload, afterReply }: IqRequest): Promise<void> {
    if (!from.bare.equals(to)) throw new StanzaError('forbidden');
    const user = to;
    const store = this.storage.blocking;
    if (payload.name === 'block') {
      const jids = itemJids(payload);
      // §3.3: a block without any item is a bad request.
      if (jids.length === 0) throw new StanzaError('bad-request', 'block needs at least one item');
      const added = await store.block(user.domain, user.local, jids);
      await this.updateCache(user, (list) => added.forEach((j) => list.add(j)));
      // §3.3: after the IQ result, the pushes, then presence.
      afterReply(() => {
        this.push(user, x('block', NS_BLOCKING, {}, ...jids.map((jid) => x('item', NS_BLOCKING, { jid }))));
        return added.length > 0 ? this.afterBlock(user, new Set(added)) : undefined;
      });
      return;
    }
    if (payload.name === 'unblock') {
      const jids = itemJids(payload);
      // §3.5: an empty unblock clears the whole list.
      const removed = jids.length === 0 ? await store.unblockAll(user.domain, user.local) : await store.unblock(user.domain, user.local, jids);
      await this.updateCache(user, (list) => removed.forEach((j) => list.delete(j)));
      afterReply(() => {
        this.push(user, x('unblock', NS_BLOCKING, {}, ...jids.map((jid) => x('item', NS_BLOCKING, { jid }))));
        return removed.length > 0 ? this.afterUnblock(user, new Set(removed)) : undefined;
      });
      return;
    }
    throw new StanzaError('bad-request', 'expected <block/> or <unblock/>');
  }

  private async updateCache(user: Jid, change: (list: Set<string>) => void): Promise<void> {
    const key = user.bareString();
    const cached = this.lists.peek(key);
    // Not cached here: other nodes (a cluster) may hold the old list all the same.
    if (!cached) return this.lists.drop(key);
    let list: Set<string>;
    try {
      list = new Set(await cached);
    } catch {
      // The load failed and was dropped; the next check reads the store, which is current.
      return this.lists.drop(key);
    }
    change(list);
    this.lists.set(key, list);
  }

  /** §3.3 / §3.4: an IQ-set to every resource of the user that requested the blocklist. */
  private push(user: Jid, payload: Element): void {
    for (const s of this.server.router.getSessions(user.bareString())) {
      if (!this.interested.has(s)) continue;
      s.send(x('iq', NS.CLIENT, { type: 'set', id: `block-${randomBytes(6).toString('hex')}`, to: s.jid.toString() }, payload.clone()));
    }
  }

  // --- Presence on block and unblock ------------------------------------------------

  /**
   * §3.3: the newly blocked JIDs that may see the user's presence get unavailable presence
   * from each of the user's available resources; and (SHOULD) the user's resources get
   * unavailable presence for the blocked contacts whose presence they were receiving.
   */
  private afterBlock(user: Jid, blocked: Set<string>): Promise<void> {
    return this.eachChangedContact(user, blocked, async (contact, item, contactBare, mine) => {
      if (subscribedFrom(item)) {
        // A contact who blocked the user gets nothing from them, this included.
        for (const s of mine) {
          if (await this.isBlocked(contactBare, s.jid.toString())) continue;
          contact.send(x('presence', NS.CLIENT, { type: 'unavailable', from: s.jid.toString(), to: contactBare.toString() }));
        }
      }
      if (subscribedTo(item)) {
        for (const s of mine) s.send(x('presence', NS.CLIENT, { type: 'unavailable', from: contact.jid.toString(), to: user.bareString() }));
      }
    });
  }

  /**
   * §3.4: the unblocked JIDs that may see the user's presence get the current presence of each
   * of the user's available resources; and the user's resources get the current presence of
   * the unblocked contacts they are subscribed to, as a probe would (RFC 6121 §4.3).
   */
  private afterUnblock(user: Jid, unblocked: Set<string>): Promise<void> {
    return this.eachChangedContact(user, unblocked, async (contact, item, contactBare, mine) => {
      // Another entry (e.g. the whole domain) may still block it, or the contact may block the user.
      if (await this.isBlocked(user, contact.jid.toString())) return;
      if (subscribedFrom(item)) {
        for (const s of mine) {
          if (s.presence && !(await this.isBlocked(contactBare, s.jid.toString()))) contact.send(addressed(s.presence, contactBare));
        }
      }
      if (subscribedTo(item) && contact.presence) {
        for (const s of mine) if (!(await this.isBlocked(contactBare, s.jid.toString()))) s.send(addressed(contact.presence, user));
      }
    });
  }

  /**
   * What a block or unblock affects: each available session of a roster contact of `user`
   * whose JID the `changed` entries cover, visited one after the other with the contact's
   * roster item and bare JID and the user's available sessions. Nothing while the user has no
   * available session. Only local contacts can be online here (no server-to-server links).
   */
  private async eachChangedContact(
    user: Jid,
    changed: Set<string>,
    visit: (contact: Session, item: RosterItem, contactBare: Jid, mine: Session[]) => Promise<void>,
  ): Promise<void> {
    const mine = this.server.router.getSessions(user.bareString()).filter((s) => s.available);
    if (mine.length === 0) return;
    const { items } = await this.storage.roster.get(user.domain, user.local);
    for (const item of items) {
      const contactBare = tryParseJid(item.jid);
      if (!contactBare) continue;
      for (const contact of this.server.router.getSessions(item.jid)) {
        if (!contact.available || !blocklistKeysFor(contact.jid.toString()).some((k) => changed.has(k))) continue;
        await visit(contact, item, contactBare, mine);
      }
    }
  }

  // --- Enforcement ----------------------------------------------------------------------

  /** Sender's side, §3.3: the user sends to a JID they blocked: not routed, not-acceptable with <blocked/>. */
  private refuseToBlocked(ev: RoutedStanza): boolean | Promise<boolean> {
    const { to, session } = ev;
    // XEP-0191 §5 note: never between the user's own resources.
    if (!session || !to || to.bare.equals(ev.from.bare)) return false;
    // The user's own server answering an IQ is not an exchange with the blocked domain.
    if (ev.kind === 'iq' && to.local === '' && to.resource === '' && this.server.isLocalDomain(to.domain)) return false;
    return then(this.isBlocked(ev.from.bare, to.toString()), (blocked) => blocked && this.refuse(ev, session));
  }

  private refuse(ev: RoutedStanza, session: Session): true {
    const { stanza } = ev;
    const type = stanza.attrs.type;
    // No error answers an error (RFC 6120 §8.3.1), and an IQ result is not a request to refuse.
    if (type !== 'error' && !(ev.kind === 'iq' && type === 'result')) session.send(blockedError(stanza));
    return true;
  }

  /**
   * Recipient's side, §3.3: a blocked JID sends to the user: presence silently dropped, a
   * message or an IQ get/set answered with service-unavailable (so the user appears offline),
   * other IQs dropped.
   */
  private stopFromBlocked(ev: AddressedStanza): boolean | Promise<boolean> {
    const { to, from } = ev;
    if (to.bare.equals(from.bare)) return false;
    return then(this.isBlocked(to.bare, from.toString()), (blocked) => blocked && this.stop(ev));
  }

  private stop(ev: AddressedStanza): true {
    const { stanza } = ev;
    const type = stanza.attrs.type;
    const answer = (ev.kind === 'message' && type !== 'error') || (ev.kind === 'iq' && (type === 'get' || type === 'set'));
    if (answer) this.server.bounce(stanza, new StanzaError('service-unavailable'));
    return true;
  }
}

/** The blocklist of everyone who blocks no one (never changed in place). */
const NOBODY: ReadonlySet<string> = new Set<string>();

/** Whether a blocklist has an entry matching `jid` (XEP-0191 §6). */
function matches(list: ReadonlySet<string>, jid: string): boolean {
  return list.size > 0 && blocklistKeysFor(jid).some((k) => list.has(k));
}

/** `fn(value)`, at once for a value, after it resolves for a promise (the hot path stays synchronous). */
function then<T, R>(value: T | Promise<T>, fn: (v: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

/** The canonical JIDs of a block/unblock command's items (XEP-0191 §3.3/§3.4). */
function itemJids(payload: Element): string[] {
  const out: string[] = [];
  for (const item of payload.getChildren('item', NS_BLOCKING)) {
    const jid = item.attrs.jid;
    // §10 schema: 'jid' is required on <item/>.
    if (jid === undefined) throw new StanzaError('bad-request', 'item without jid');
    try {
      out.push(Jid.parse(jid).toString());
    } catch (err) {
      if (err instanceof JidError) throw new StanzaError('jid-malformed', `invalid JID ${jid}`);
      throw err;
    }
  }
  return [...new Set(out)];
}

function addressed(presence: Element, to: Jid): Element {
  const copy = presence.clone();
  copy.attrs.to = to.toString();
  return copy;
}

export const blockingModule: Module = {
  name: 'blocking',
  start({ server, storage }) {
    new BlockingModule(server, storage).start();
  },
};
