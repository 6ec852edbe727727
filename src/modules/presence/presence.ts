// RFC 6121 §3 (subscriptions) and §4 (presence): the subscription state machine
// kept in the roster, initial presence with local probes, broadcasts, directed
// presence, and the unavailable broadcast when a session ends however it ends.
//
// Every contact here is local (no server-to-server yet), so "routing to the
// contact's server" is a direct call of the inbound handler, and a probe is
// answered from the router's registry without any stanza round trip.
import { Element, x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Jid } from '../../jid/jid.js';
import type { RosterItem } from '../../storage/types.js';
import type { Session } from '../../router/router.js';
import type { Module, ServerApi } from '../api.js';
import { isPendingOnly, onRosterItemRemoved, pushRosterChange } from '../roster/roster.js';

type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

function newItem(jid: string): RosterItem {
  return { jid, subscription: 'none', ask: false, pendingIn: false, approved: false, groups: [] };
}

/** An item with no subscription, request, pre-approval, name or group carries no information. */
const isEmpty = (i: RosterItem): boolean =>
  i.subscription === 'none' && !i.ask && !i.pendingIn && !i.approved && i.name === undefined && i.groups.length === 0;

/** The user's contacts entitled to see their presence (RFC 6121 §4.2.2: 'from' or 'both'). */
const subscribedFrom = (i: RosterItem): boolean => i.subscription === 'from' || i.subscription === 'both';
/** The contacts whose presence the user receives (RFC 6121 §4.2.3: 'to' or 'both'). */
const subscribedTo = (i: RosterItem): boolean => i.subscription === 'to' || i.subscription === 'both';

export class PresenceModule {
  /** RFC 6121 §4.6: full JIDs a session sent directed available presence to (outside its subscribers). */
  private readonly directed = new WeakMap<Session, Set<string>>();
  /** Sessions whose end already produced an unavailable broadcast. */
  private readonly announcedGone = new WeakSet<Session>();

  constructor(private readonly server: ServerApi) {}

  register(): void {
    const server = this.server;
    server.addFeature('account', NS.PRE_APPROVAL);
    // RFC 6121 §3.4.1: pre-approval is a stream feature.
    server.addStreamFeature(x('sub', NS.PRE_APPROVAL));
    server.hookPresence((stanza, from) => (from ? this.fromClient(stanza, from) : false));
    onRosterItemRemoved(server, (user, item) => this.itemRemoved(user, item));
    // RFC 6121 §4.5.2 and the seed: an abrupt disconnect is treated as unavailable presence.
    server.on('session-ended', (session) => (session.available ? this.goUnavailable(session, undefined) : undefined));
  }

  private async fromClient(stanza: Element, session: Session): Promise<boolean> {
    const type = stanza.attrs.type;
    const toAttr = stanza.attrs.to;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      if (toAttr === undefined) return true;
      await this.outboundSubscription(session.jid.bare, Jid.parse(toAttr).bare, type as SubscriptionType, stanza);
      return true;
    }
    if (type === 'probe') {
      if (toAttr !== undefined) await this.answerProbe(session, Jid.parse(toAttr).bare);
      return true;
    }
    if (toAttr !== undefined) return this.directedPresence(stanza, session, type);
    if (type === undefined) await this.available(stanza, session);
    else if (type === 'unavailable') await this.goUnavailable(session, stanza);
    return true;
  }

  // --- Presence broadcast (RFC 6121 §4) ---------------------------------------

  private async available(stanza: Element, session: Session): Promise<void> {
    const initial = !session.available;
    const p = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
    session.priority = Number.isFinite(p) && p >= -128 && p <= 127 ? p : 0;
    session.available = true;
    const user = session.jid.bare;
    const broadcast = stanza.clone();
    delete broadcast.attrs.to;
    broadcast.attrs.from = session.jid.toString();
    session.presence = broadcast;
    const items = (await this.server.storage.roster.get(user.domain, user.local)).items;
    // §4.2.2 / §4.4.2: to every available resource of contacts subscribed to the user, and the user's other resources.
    await this.broadcast(broadcast, session, items);
    if (!initial) return;
    // §4.2.3: the server probes the contacts the user is subscribed to; for local contacts the
    // answer is their sessions' last presence, sent at once.
    for (const item of items) if (subscribedTo(item)) await this.sendPresencesOf(item.jid, session);
    for (const other of this.server.router.getSessions(user.bareString())) {
      if (other !== session && other.available && other.presence) session.send(this.addressed(other.presence, session.jid));
    }
    // §3.1.3: subscription requests that arrived while the user was offline are delivered now
    // (XEP-0191: not those from a blocked JID).
    for (const item of items) {
      if (item.pendingIn && (await this.server.mayExchange(Jid.parse(item.jid), session.jid))) {
        session.send(x('presence', NS.CLIENT, { type: 'subscribe', from: item.jid, to: user.bareString() }));
      }
    }
    this.server.emit('initial-presence', session);
  }

  private async broadcast(presence: Element, from: Session, items: readonly RosterItem[]): Promise<void> {
    for (const item of items) {
      if (!subscribedFrom(item)) continue;
      for (const s of this.server.router.getSessions(item.jid)) {
        if (s.available && (await this.server.mayExchange(from.jid, s.jid))) s.send(this.addressed(presence, s.jid));
      }
    }
    // §4.2.2 / §4.4.2 / §4.5.2: every available resource of the user, including the one that
    // sent it (a session going unavailable still hears its own unavailable while connected).
    for (const s of this.server.router.getSessions(from.jid.bareString())) {
      if (s.available || s === from) s.send(this.addressed(presence, s.jid));
    }
  }

  /** §4.5: unavailable from the client (stanza given) or because the session ended (undefined). */
  private async goUnavailable(session: Session, stanza: Element | undefined): Promise<void> {
    const wasAvailable = session.available;
    session.available = false;
    session.presence = undefined;
    if (!stanza && this.announcedGone.has(session)) return;
    this.announcedGone.add(session);
    const user = session.jid.bare;
    const unavailable = stanza ? stanza.clone() : x('presence', NS.CLIENT, { type: 'unavailable' });
    delete unavailable.attrs.to;
    unavailable.attrs.from = session.jid.toString();
    unavailable.attrs.type = 'unavailable';
    if (wasAvailable) {
      const items = (await this.server.storage.roster.get(user.domain, user.local)).items;
      await this.broadcast(unavailable, session, items);
    }
    // §4.6.3: everyone who got directed presence hears that we left.
    const directed = this.directed.get(session);
    if (directed) {
      for (const full of directed) this.deliverTo(full, unavailable);
      this.directed.delete(session);
    }
    if (stanza) this.announcedGone.delete(session);
  }

  /** §4.6: presence addressed to a specific JID. */
  private async directedPresence(stanza: Element, session: Session, type: string | undefined): Promise<boolean> {
    const to = Jid.parse(stanza.attrs.to!);
    if (type !== undefined && type !== 'unavailable') return false; // errors etc.: default routing
    const user = session.jid.bare;
    const item = await this.server.storage.roster.getItem(user.domain, user.local, to.bareString());
    const covered = item !== undefined && subscribedFrom(item) && session.available;
    let set = this.directed.get(session);
    if (type === undefined && !covered) {
      if (!set) this.directed.set(session, (set = new Set()));
      set.add(to.toString());
    } else if (type === 'unavailable') set?.delete(to.toString());
    return false; // delivered by the default routing
  }

  /** §4.3: a probe from one of our users about a contact. */
  private async answerProbe(session: Session, contact: Jid): Promise<void> {
    const user = session.jid.bare;
    const item = await this.server.storage.roster.getItem(user.domain, user.local, contact.bareString());
    // §4.3.2: only a subscriber learns the contact's presence.
    if (!item || !subscribedTo(item)) return;
    if (!(await this.sendPresencesOf(contact.bareString(), session))) {
      session.send(x('presence', NS.CLIENT, { type: 'unavailable', from: contact.bareString(), to: session.jid.toString() }));
    }
  }

  /** Sends `to` the current presence of every available resource of `bare`; false when none is. */
  private async sendPresencesOf(bare: string, to: Session): Promise<boolean> {
    let any = false;
    for (const s of this.server.router.getSessions(bare)) {
      if (s.available && s.presence && (await this.server.mayExchange(s.jid, to.jid))) {
        to.send(this.addressed(s.presence, to.jid));
        any = true;
      }
    }
    return any;
  }

  private addressed(presence: Element, to: Jid): Element {
    const copy = presence.clone();
    copy.attrs.to = to.toString();
    return copy;
  }

  private deliverTo(fullOrBare: string, stanza: Element): void {
    const copy = stanza.clone();
    copy.attrs.to = fullOrBare;
    this.server.route(copy).catch((err: unknown) => this.server.log.error({ err }, 'presence delivery failed'));
  }

  // --- Subscriptions (RFC 6121 §3) ---------------------------------------------

  private async outboundSubscription(user: Jid, contact: Jid, type: SubscriptionType, stanza: Element): Promise<void> {
    const roster = this.server.storage.roster;
    if (contact.equals(user)) return;
    const current = await roster.getItem(user.domain, user.local, contact.toString());
    const item = current ? { ...current } : newItem(contact.toString());
    let changed = false;
    switch (type) {
      case 'subscribe':
        // §3.1.2: mark the pending outbound request unless already subscribed.
        if (!subscribedTo(item) && !item.ask) {
          item.ask = true;
          changed = true;
        }
        break;
      case 'subscribed':
        // §3.1.5 approve a pending request, or §3.4 pre-approve.
        if (item.pendingIn) {
          item.pendingIn = false;
          item.subscription = item.subscription === 'to' ? 'both' : 'from';
          changed = true;
        } else if (!subscribedFrom(item)) {
          if (!item.approved) {
            item.approved = true;
            await this.save(user, item);
          }
          return; // a pre-approval is not routed (§3.4.2)
        } else return; // already subscribed: nothing to do (§3.1.5)
        break;
      case 'unsubscribe':
        // §3.3.2
        if (item.subscription === 'to' || item.subscription === 'both' || item.ask) {
          item.subscription = item.subscription === 'both' ? 'from' : item.subscription === 'to' ? 'none' : item.subscription;
          item.ask = false;
          changed = true;
        }
        break;
      case 'unsubscribed':
        // §3.2.2: cancel the contact's subscription or deny a pending request.
        if (subscribedFrom(item) || item.pendingIn || item.approved) {
          item.subscription = item.subscription === 'both' ? 'to' : item.subscription === 'from' ? 'none' : item.subscription;
          item.pendingIn = false;
          item.approved = false;
          changed = true;
        }
        break;
    }
    if (changed) {
      if (current && isPendingOnly(current) && isEmpty(item)) {
        // A denied request leaves nothing in the roster.
        await roster.removeItem(user.domain, user.local, item.jid);
      } else if (current || !isPendingOnly(item)) await this.save(user, item);
    }
    // §3.1.2 etc.: the user's server stamps the bare JID and routes to the contact.
    const out = x('presence', NS.CLIENT, { type, from: user.toString(), to: contact.toString() });
    if (stanza.attrs.id !== undefined) out.attrs.id = stanza.attrs.id;
    for (const c of stanza.children) if (typeof c !== 'string') out.append(c.clone());
    if (type === 'subscribed' || type === 'unsubscribed') {
      if (!changed) return; // §3.1.5 / §3.2.2: nothing to report, do not route
      await this.inboundSubscription(contact, user, type, out);
      if (type === 'subscribed') {
        // §3.1.5: the new subscriber receives the user's current presence.
        for (const s of this.server.router.getSessions(user.toString())) {
          if (s.available && s.presence) this.deliverTo(contact.toString(), s.presence);
        }
      } else {
        for (const s of this.server.router.getSessions(user.toString())) {
          if (s.available) this.deliverTo(contact.toString(), x('presence', NS.CLIENT, { type: 'unavailable', from: s.jid.toString() }));
        }
      }
      return;
    }
    await this.inboundSubscription(contact, user, type, out);
  }

  /** The contact's side: `contact` receives a subscription stanza from `user`. */
  private async inboundSubscription(contact: Jid, user: Jid, type: SubscriptionType, stanza: Element): Promise<void> {
    if (!this.server.isLocalDomain(contact.domain)) return;
    const roster = this.server.storage.roster;
    const exists = await this.server.storage.accounts.exists(contact.domain, contact.local);
    if (!exists) {
      // §3.1.3: no such contact: the request is answered with unsubscribed on its behalf.
      if (type === 'subscribe') await this.inboundSubscription(user, contact, 'unsubscribed', x('presence', NS.CLIENT, { type: 'unsubscribed', from: contact.toString(), to: user.toString() }));
      return;
    }
    const current = await roster.getItem(contact.domain, contact.local, user.toString());
    const item = current ? { ...current } : newItem(user.toString());
    switch (type) {
      case 'subscribe':
        if (subscribedFrom(item)) {
          // §3.1.3: already approved: answer subscribed at once, do not bother the contact.
          await this.answerFor(contact, user, 'subscribed');
          return;
        }
        if (item.approved) {
          // §3.4: pre-approved: complete the subscription without asking.
          item.approved = false;
          item.subscription = item.subscription === 'to' ? 'both' : 'from';
          await this.save(contact, item);
          await this.answerFor(contact, user, 'subscribed');
          for (const s of this.server.router.getSessions(contact.toString())) {
            if (s.available && s.presence) this.deliverTo(user.toString(), s.presence);
          }
          return;
        }
        if (item.pendingIn) return; // §3.1.3: a duplicate request is not delivered again
        item.pendingIn = true;
        await this.save(contact, item);
        break;
      case 'subscribed':
        // §3.1.6: only meaningful when we asked.
        if (!item.ask) return;
        item.ask = false;
        item.subscription = item.subscription === 'from' ? 'both' : 'to';
        await this.save(contact, item);
        break;
      case 'unsubscribe':
        // §3.3.3
        if (!subscribedFrom(item) && !item.pendingIn) return;
        item.subscription = item.subscription === 'both' ? 'to' : item.subscription === 'from' ? 'none' : item.subscription;
        item.pendingIn = false;
        await this.save(contact, item);
        // The former subscriber no longer sees the contact online.
        for (const s of this.server.router.getSessions(contact.toString())) {
          if (s.available) this.deliverTo(user.toString(), x('presence', NS.CLIENT, { type: 'unavailable', from: s.jid.toString() }));
        }
        break;
      case 'unsubscribed':
        // §3.2.3
        if (!subscribedTo(item) && !item.ask) return;
        item.subscription = item.subscription === 'both' ? 'from' : item.subscription === 'to' ? 'none' : item.subscription;
        item.ask = false;
        await this.save(contact, item);
        break;
    }
    // §3.1.3 / §3.1.6 / §3.2.3 / §3.3.3: every available resource of the contact gets it.
    for (const s of this.server.router.getSessions(contact.toString())) if (s.available) s.send(this.addressed(stanza, s.jid));
  }

  /** A subscription answer generated by the server on the contact's behalf. */
  private async answerFor(contact: Jid, user: Jid, type: 'subscribed' | 'unsubscribed'): Promise<void> {
    await this.inboundSubscription(user, contact, type, x('presence', NS.CLIENT, { type, from: contact.toString(), to: user.toString() }));
  }

  private async save(user: Jid, item: RosterItem): Promise<void> {
    const version = await this.server.storage.roster.setItem(user.domain, user.local, item);
    if (!isPendingOnly(item)) pushRosterChange(this.server, user, item, version);
  }

  /** RFC 6121 §2.5.2: removing an item cancels the subscriptions in both directions. */
  private async itemRemoved(user: Jid, removed: RosterItem): Promise<void> {
    const contact = Jid.parse(removed.jid);
    if (removed.subscription === 'to' || removed.subscription === 'both' || removed.ask) {
      await this.inboundSubscription(contact, user, 'unsubscribe', x('presence', NS.CLIENT, { type: 'unsubscribe', from: user.toString(), to: contact.toString() }));
    }
    if (removed.subscription === 'from' || removed.subscription === 'both' || removed.pendingIn) {
      await this.inboundSubscription(contact, user, 'unsubscribed', x('presence', NS.CLIENT, { type: 'unsubscribed', from: user.toString(), to: contact.toString() }));
      for (const s of this.server.router.getSessions(user.toString())) {
        if (s.available) this.deliverTo(contact.toString(), x('presence', NS.CLIENT, { type: 'unavailable', from: s.jid.toString() }));
      }
    }
  }
}

export const presenceModule: Module = {
  name: 'presence',
  register(server) {
    new PresenceModule(server).register();
  },
};
