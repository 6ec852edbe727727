// RFC 6121 §3 (subscriptions) and §4 (presence) on both sides of the route:
// what a user's client sends (outbound: the user's roster changes, then the
// stanza is routed) and what reaches a user (inbound: the contact's roster
// changes, then the contact's resources get it). The state machine itself is
// in subscription.ts. Also: initial presence with local probes, broadcasts,
// directed presence, and the unavailable broadcast when a session ends however
// it ends.
//
// Every contact is local for now (no server-to-server yet), so the probes of
// initial presence are answered from the router's registry without a stanza
// round trip; everything sent goes through the router, so the recipient's side
// policy (blocking) applies to it as to any stanza.
import { Element, x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Jid } from '../../jid/jid.js';
import type { RosterItem, Storage } from '../../storage/types.js';
import type { AddressedStanza, RoutedStanza, ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import { Priority } from '../../core/hooks.js';
import { StanzaError } from '../../core/errors.js';
import { TokenBuckets } from '../../core/buckets.js';
import type { Module } from '../api.js';
import type { RosterApi } from '../roster/api.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import { MAX_STORED_REQUEST_BYTES, PendingRequestStore } from './store.js';
import {
  NO_SUBSCRIPTION,
  SUBSCRIPTION_TYPES,
  inbound,
  outbound,
  subscribedFrom,
  subscribedTo,
  type SubscriptionState,
  type SubscriptionType,
} from './subscription.js';

/** An item with no subscription, request, pre-approval, name or group carries no information. */
const isEmpty = (i: RosterItem): boolean =>
  i.subscription === 'none' && !i.ask && !i.pendingIn && !i.approved && i.name === undefined && i.groups.length === 0;

function stateOf(item: RosterItem | undefined): SubscriptionState {
  return item ?? NO_SUBSCRIPTION;
}

function withState(current: RosterItem | undefined, jid: string, state: SubscriptionState): RosterItem {
  const base: RosterItem = current ?? { jid, subscription: 'none', ask: false, pendingIn: false, approved: false, groups: [] };
  return { ...base, subscription: state.subscription, ask: state.ask, pendingIn: state.pendingIn, approved: state.approved };
}

export class PresenceModule {
  /** RFC 6121 §4.6: full JIDs a session sent directed available presence to (outside its subscribers). */
  private readonly directed = new WeakMap<Session, Set<string>>();
  /** Sessions whose end already produced an unavailable broadcast. */
  private readonly announcedGone = new WeakSet<Session>();
  /** Requests each user may send to JIDs it has no subscription with (limits.subscription_requests). */
  private readonly requestsSent: TokenBuckets;
  /** Live deliveries of requests from one JID to one user who has not answered (limits.subscription_repeats). */
  private readonly requestsShown: TokenBuckets;
  /** Pairs (user|requester) whose pending request was shown live (so its withdrawal is shown too). */
  private readonly shown = new Map<string, true>();

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    private readonly roster: RosterApi,
    private readonly pending: PendingRequestStore,
  ) {
    this.requestsSent = new TokenBuckets(server.config.limits.subscription_requests);
    this.requestsShown = new TokenBuckets(server.config.limits.subscription_repeats);
  }

  start(): void {
    const server = this.server;
    server.addFeature('account', NS.PRE_APPROVAL);
    // RFC 6121 §3.4.1: pre-approval is a stream feature.
    server.addStreamFeature(x('sub', NS.PRE_APPROVAL));
    server.hookOutbound('presence', (ev) => this.fromClient(ev), Priority.HANDLER);
    server.hookInbound('presence', (ev) => this.toAccount(ev), Priority.HANDLER);
    this.roster.onItemRemoved((user, item) => this.itemRemoved(user, item));
    // RFC 6121 §4.5.2 and the seed: an abrupt disconnect is treated as unavailable presence.
    server.on('session-ended', (session) => (session.available ? this.goUnavailable(session, undefined) : undefined));
  }

  /** Sender's side: presence from one of our clients. */
  private async fromClient(ev: RoutedStanza): Promise<boolean> {
    const { stanza, session, to } = ev;
    if (!session) return false;
    const type = stanza.attrs.type;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      if (to !== undefined) await this.outboundSubscription(session.jid.bare, to.bare, type as SubscriptionType, stanza);
      return true;
    }
    if (type === 'probe') {
      // RFC 6121 §4.3: answered by the contact's side like any probe (a client should not send one).
      return false;
    }
    if (to !== undefined) return this.directedPresence(stanza, session, to, type);
    if (type === undefined) await this.available(stanza, session);
    else if (type === 'unavailable') await this.goUnavailable(session, stanza);
    return true;
  }

  /** Recipient's side: presence for one of our accounts, from anyone. */
  private toAccount(ev: AddressedStanza): boolean | Promise<boolean> {
    const type = ev.stanza.attrs.type;
    // Available, unavailable and errors go on to the resources (the common case, answered at once).
    if (type === undefined || type === 'unavailable' || type === 'error') return false;
    if (SUBSCRIPTION_TYPES.has(type)) return this.inboundSubscription(ev.to.bare, ev.from.bare, type as SubscriptionType, ev.stanza).then(() => true);
    if (type === 'probe') return this.answerProbe(ev.to.bare, ev.from).then(() => true);
    return false;
  }

  // --- Presence broadcast (RFC 6121 §4) ---------------------------------------

  private async available(stanza: Element, session: Session): Promise<void> {
    const initial = !session.available;
    const p = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
    const priority = Number.isFinite(p) && p >= -128 && p <= 127 ? p : 0;
    const user = session.jid.bare;
    const broadcast = stanza.clone();
    delete broadcast.attrs.to;
    broadcast.attrs.from = session.jid.toString();
    this.server.router.setPresence(session, { presence: broadcast, priority });
    const items = (await this.storage.roster.get(user.domain, user.local)).items;
    // §4.2.2 / §4.4.2: to every available resource of contacts subscribed to the user, and the user's other resources.
    await this.broadcast(broadcast, session, items);
    if (!initial) return;
    // §4.2.3: the server probes the contacts the user is subscribed to; for local contacts the
    // answer is their sessions' last presence, sent at once to the new session.
    for (const item of items) {
      if (!subscribedTo(item)) continue;
      for (const s of this.server.router.getSessions(item.jid)) {
        if (s.available && s.presence && (await this.server.mayExchange(s.jid, session.jid))) session.send(addressed(s.presence, session.jid));
      }
    }
    for (const other of this.server.router.getSessions(user.bareString())) {
      if (other !== session && other.available && other.presence) session.send(addressed(other.presence, session.jid));
    }
    // §3.1.3: subscription requests that arrived while the user was offline are delivered now,
    // as they were sent (XEP-0191: not those from a blocked JID).
    if (items.some((i) => i.pendingIn)) {
      const stored = await this.pending.all(user.domain, user.local);
      for (const item of items) {
        if (item.pendingIn && (await this.server.mayExchange(Jid.parse(item.jid), session.jid))) {
          session.send(this.storedRequest(stored.get(item.jid), item.jid, user));
        }
      }
    }
    this.server.emit('initial-presence', session);
  }

  /** A request as it was stored, or (none stored, or unreadable) one made from the roster. */
  private storedRequest(xml: string | undefined, from: string, to: Jid): Element {
    if (xml !== undefined) {
      try {
        return loadXml(xml);
      } catch (err) {
        this.server.log.error({ err, user: to.toString(), from }, 'a stored subscription request is unreadable');
      }
    }
    return x('presence', NS.CLIENT, { type: 'subscribe', from, to: to.bareString() });
  }

  /**
   * §4.2.2 / §4.4.2: to the bare JID of every contact subscribed to the user, which delivers it to
   * each of the contact's available resources with 'to' as addressed (§4.2.3). Only contacts that
   * have a session can receive anything now (all contacts are local).
   */
  private async broadcast(presence: Element, from: Session, items: readonly RosterItem[]): Promise<void> {
    for (const item of items) {
      if (!subscribedFrom(item) || !this.server.router.getSessions(item.jid).some((s) => s.available)) continue;
      const contact = Jid.parse(item.jid);
      if (await this.server.mayExchange(from.jid, contact)) await this.send(presence, from.jid, contact);
    }
    // §4.2.2 / §4.4.2 / §4.5.2: every available resource of the user, including the one that
    // sent it (a session going unavailable still hears its own unavailable while connected).
    for (const s of this.server.router.getSessions(from.jid.bareString())) {
      if (s.available || s === from) s.send(addressed(presence, s.jid));
    }
  }

  /** §4.5: unavailable from the client (stanza given) or because the session ended (undefined). */
  private async goUnavailable(session: Session, stanza: Element | undefined): Promise<void> {
    const wasAvailable = session.available;
    this.server.router.setPresence(session, { presence: undefined, priority: 0 });
    if (!stanza && this.announcedGone.has(session)) return;
    this.announcedGone.add(session);
    const user = session.jid.bare;
    const unavailable = stanza ? stanza.clone() : x('presence', NS.CLIENT, { type: 'unavailable' });
    delete unavailable.attrs.to;
    unavailable.attrs.from = session.jid.toString();
    unavailable.attrs.type = 'unavailable';
    if (wasAvailable) {
      const items = (await this.storage.roster.get(user.domain, user.local)).items;
      await this.broadcast(unavailable, session, items);
    }
    // §4.6.3: everyone who got directed presence hears that we left.
    const directed = this.directed.get(session);
    if (directed) {
      for (const full of directed) this.sendLater(unavailable, session.jid, full);
      this.directed.delete(session);
    }
    if (stanza) this.announcedGone.delete(session);
  }

  /** §4.6: presence addressed to a specific JID; the default routing delivers it. */
  private async directedPresence(stanza: Element, session: Session, to: Jid, type: string | undefined): Promise<boolean> {
    if (type !== undefined && type !== 'unavailable') return false; // errors etc.
    const user = session.jid.bare;
    const item = await this.storage.roster.getItem(user.domain, user.local, to.bareString());
    const covered = item !== undefined && subscribedFrom(item) && session.available;
    let set = this.directed.get(session);
    if (type === undefined && !covered) {
      if (!set) this.directed.set(session, (set = new Set()));
      const max = this.server.config.limits.max_directed_presence;
      if (set.size >= max && !set.has(to.toString())) {
        // Each entry is owed an unavailable when the session ends (§4.6.3): the list is bounded.
        throw new StanzaError('policy-violation', `directed presence to more than ${max} entities at once`);
      }
      set.add(to.toString());
    } else if (type === 'unavailable') set?.delete(to.toString());
    return false;
  }

  /** §4.3.2: a probe for one of our users (`contact`) from `prober`; only a subscriber learns anything. */
  private async answerProbe(contact: Jid, prober: Jid): Promise<void> {
    const item = await this.storage.roster.getItem(contact.domain, contact.local, prober.bareString());
    if (!item || !subscribedFrom(item)) return;
    if (!(await this.sendPresencesOf(contact.bareString(), prober))) {
      await this.server.routeTo(x('presence', NS.CLIENT, { type: 'unavailable', from: contact.bareString(), to: prober.toString() }), contact, prober);
    }
  }

  /** Sends `to` the current presence of every available resource of `bare`; false when none is. */
  private async sendPresencesOf(bare: string, to: Jid): Promise<boolean> {
    let any = false;
    for (const s of this.server.router.getSessions(bare)) {
      if (s.available && s.presence && (await this.server.mayExchange(s.jid, to))) {
        await this.send(s.presence, s.jid, to);
        any = true;
      }
    }
    return any;
  }

  /** Routes a copy of `presence` from `from` to `to`. */
  private send(presence: Element, from: Jid, to: Jid): Promise<void> {
    return this.server.routeTo(addressed(presence, to), from, to);
  }

  /** Routes a copy of `presence` from `from` to `to` (a JID string), without waiting. */
  private sendLater(presence: Element, from: Jid, to: string): void {
    const copy = presence.clone();
    copy.attrs.from = from.toString();
    copy.attrs.to = to;
    this.server.track(this.server.route(copy), 'presence delivery');
  }

  /** The current presence of each of `user`'s available resources, or unavailable from each, to `to`. */
  private sendEachResource(user: Jid, to: Jid, what: 'presence' | 'unavailable'): void {
    for (const s of this.server.router.getSessions(user.toString())) {
      if (!s.available) continue;
      const p = what === 'presence' ? s.presence : x('presence', NS.CLIENT, { type: 'unavailable', from: s.jid.toString() });
      if (p) this.sendLater(p, s.jid, to.toString());
    }
  }

  // --- Subscriptions (RFC 6121 §3) ---------------------------------------------

  /** The user's side: `user` sends a subscription stanza to `contact`. */
  private async outboundSubscription(user: Jid, contact: Jid, type: SubscriptionType, stanza: Element): Promise<void> {
    if (contact.equals(user)) return;
    const current = await this.storage.roster.getItem(user.domain, user.local, contact.toString());
    const outcome = outbound(stateOf(current), type);
    if (outcome.changed && current === undefined && (await this.rosterFull(user))) {
      throw new StanzaError('not-allowed', `the roster is full (${this.server.config.roster.max_items} items)`);
    }
    // A request to someone with no subscription either way is what spam looks like: rate-limited per sender.
    if (type === 'subscribe' && (current === undefined || current.subscription === 'none') && !this.requestsSent.tryTake(user.toString())) {
      throw new StanzaError('policy-violation', 'too many subscription requests; try again later');
    }
    if (current?.pendingIn && !outcome.state.pendingIn) await this.pending.remove(user.domain, user.local, contact.toString());
    if (outcome.changed) {
      const item = withState(current, contact.toString(), outcome.state);
      if (current && this.roster.isPendingOnly(current) && isEmpty(item)) {
        // A denied request leaves nothing in the roster.
        await this.storage.roster.removeItem(user.domain, user.local, item.jid);
      } else if (current || !this.roster.isPendingOnly(item)) await this.save(user, item);
    }
    if (!outcome.route) return;
    // §3.1.2 etc.: the user's server stamps the bare JID and routes to the contact.
    const out = x('presence', NS.CLIENT, { type, from: user.toString(), to: contact.toString() });
    if (stanza.attrs.id !== undefined) out.attrs.id = stanza.attrs.id;
    for (const c of stanza.children) if (typeof c !== 'string') out.append(c.clone());
    await this.server.routeTo(out, user, contact);
    // §3.1.5: the new subscriber receives the user's current presence; §3.2.2: a former one, unavailable.
    if (outcome.thenSend) this.sendEachResource(user, contact, outcome.thenSend);
  }

  /** The contact's side: `contact`, one of our accounts, receives a subscription stanza from `user`. */
  private async inboundSubscription(contact: Jid, user: Jid, type: SubscriptionType, stanza: Element): Promise<void> {
    const exists = await this.storage.accounts.exists(contact.domain, contact.local);
    if (!exists) {
      // §3.1.3: no such contact: the request is answered with unsubscribed on its behalf.
      if (type === 'subscribe') await this.answerFor(contact, user, 'unsubscribed');
      return;
    }
    const current = await this.storage.roster.getItem(contact.domain, contact.local, user.toString());
    const outcome = inbound(stateOf(current), type);
    // A full roster takes no new pending request: it is dropped, as a duplicate would be (§3.1.3).
    if (outcome.changed && current === undefined && (await this.rosterFull(contact))) return;
    if (outcome.changed) await this.save(contact, withState(current, user.toString(), outcome.state));
    if (type === 'subscribe' && outcome.deliver) await this.keepRequest(contact, user, stanza);
    else if (current?.pendingIn && !outcome.state.pendingIn) await this.pending.remove(contact.domain, contact.local, user.toString());
    let deliver = outcome.deliver;
    // §3.1.3: the server need not push a request again and again. A new request from the same JID
    // is shown live only as often as limits.subscription_repeats allows (it is kept, and delivered
    // at the next login, either way); its withdrawal is shown only if the request was.
    const pair = `${contact.toString()}|${user.toString()}`;
    if (type === 'subscribe' && deliver) {
      deliver = this.requestsShown.tryTake(pair);
      if (deliver) this.shown.set(pair, true);
      else this.shown.delete(pair);
    } else if (deliver && current?.pendingIn && !outcome.state.pendingIn && current.subscription === outcome.state.subscription) {
      deliver = this.shown.delete(pair);
    }
    if (this.shown.size > 100_000) this.shown.delete(this.shown.keys().next().value as string);
    if (outcome.reply) await this.answerFor(contact, user, outcome.reply);
    if (outcome.thenSend) this.sendEachResource(contact, user, outcome.thenSend);
    if (!deliver) return;
    // §3.1.3 / §3.1.6 / §3.2.3 / §3.3.3: every available resource of the contact gets it, addressed as sent.
    for (const s of this.server.router.getSessions(contact.toString())) if (s.available) s.send(stanza);
  }

  /** §3.1.3: a new request is kept as sent until the contact answers it (delivered at each login meanwhile). */
  private async keepRequest(contact: Jid, user: Jid, stanza: Element): Promise<void> {
    let xml = storeXml(stanza);
    if (Buffer.byteLength(xml, 'utf8') > MAX_STORED_REQUEST_BYTES) {
      xml = storeXml(x('presence', NS.CLIENT, { type: 'subscribe', from: user.toString(), to: contact.toString() }));
    }
    await this.pending.put(contact.domain, contact.local, user.toString(), xml);
  }

  /** A subscription answer generated by the server on the contact's behalf, routed to the user. */
  private answerFor(contact: Jid, user: Jid, type: 'subscribed' | 'unsubscribed'): Promise<void> {
    return this.server.routeTo(x('presence', NS.CLIENT, { type, from: contact.toString(), to: user.toString() }), contact, user);
  }

  /** RFC 6121 §2.3.3: whether the roster already holds roster.max_items items. */
  private async rosterFull(user: Jid): Promise<boolean> {
    return (await this.storage.roster.count(user.domain, user.local)) >= this.server.config.roster.max_items;
  }

  private async save(user: Jid, item: RosterItem): Promise<void> {
    const version = await this.storage.roster.setItem(user.domain, user.local, item);
    if (!this.roster.isPendingOnly(item)) this.roster.push(user, item, version);
  }

  /** RFC 6121 §2.5.2: removing an item cancels the subscriptions in both directions. */
  private async itemRemoved(user: Jid, removed: RosterItem): Promise<void> {
    const contact = Jid.parse(removed.jid);
    if (removed.pendingIn) await this.pending.remove(user.domain, user.local, removed.jid);
    if (removed.subscription === 'to' || removed.subscription === 'both' || removed.ask) {
      await this.server.routeTo(x('presence', NS.CLIENT, { type: 'unsubscribe', from: user.toString(), to: contact.toString() }), user, contact);
    }
    if (removed.subscription === 'from' || removed.subscription === 'both' || removed.pendingIn) {
      await this.server.routeTo(x('presence', NS.CLIENT, { type: 'unsubscribed', from: user.toString(), to: contact.toString() }), user, contact);
      this.sendEachResource(user, contact, 'unavailable');
    }
  }
}

function addressed(presence: Element, to: Jid): Element {
  const copy = presence.clone();
  copy.attrs.to = to.toString();
  return copy;
}

export const presenceModule: Module = {
  name: 'presence',
  depends: ['roster'],
  async start({ server, storage, use }) {
    const pending = await PendingRequestStore.open(storage.sql);
    new PresenceModule(server, storage, use<RosterApi>('roster'), pending).start();
  },
};
