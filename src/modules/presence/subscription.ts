// The RFC 6121 §3 subscription state machine as pure functions: given the state
// of one roster item and a subscription stanza, the new state and what the
// server must do. The presence module reads and writes the roster around them;
// these decide, and are unit-tested against the RFC's tables.
//
// The user's side ("outbound", §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.2) is the
// item the sender keeps for the contact; the contact's side ("inbound", §3.1.3,
// §3.1.6, §3.2.3, §3.3.3, §3.4) is the item the recipient keeps for the sender.

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';
export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set<SubscriptionType>(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

/** The subscription part of a roster item (RFC 6121 §2.1.2). */
export interface SubscriptionState {
  readonly subscription: 'none' | 'to' | 'from' | 'both';
  /** A request of ours the contact has not answered (ask='subscribe'). */
  readonly ask: boolean;
  /** A request of the contact's we have not answered. */
  readonly pendingIn: boolean;
  /** We approved the contact's subscription before they asked (§3.4). */
  readonly approved: boolean;
}

export const NO_SUBSCRIPTION: SubscriptionState = { subscription: 'none', ask: false, pendingIn: false, approved: false };

/** The contact may see our presence (§4.2.2: 'from' or 'both'). */
export const subscribedFrom = (s: SubscriptionState): boolean => s.subscription === 'from' || s.subscription === 'both';
/** We receive the contact's presence (§4.2.3: 'to' or 'both'). */
export const subscribedTo = (s: SubscriptionState): boolean => s.subscription === 'to' || s.subscription === 'both';

const addTo = (s: SubscriptionState['subscription']): SubscriptionState['subscription'] => (s === 'from' || s === 'both' ? 'both' : 'to');
const addFrom = (s: SubscriptionState['subscription']): SubscriptionState['subscription'] => (s === 'to' || s === 'both' ? 'both' : 'from');
const dropTo = (s: SubscriptionState['subscription']): SubscriptionState['subscription'] => (s === 'both' ? 'from' : s === 'to' ? 'none' : s);
const dropFrom = (s: SubscriptionState['subscription']): SubscriptionState['subscription'] => (s === 'both' ? 'to' : s === 'from' ? 'none' : s);

export interface OutboundOutcome {
  state: SubscriptionState;
  /** The item changed and must be stored (and pushed). */
  changed: boolean;
  /** The stanza goes on to the contact. */
  route: boolean;
  /**
   * What the contact must then get from each of the user's available resources: their current
   * presence (after approving, §3.1.5) or unavailable (after cancelling, §3.2.2).
   */
  thenSend?: 'presence' | 'unavailable';
}

/** The user sends a subscription stanza of `type` to the contact. */
export function outbound(state: SubscriptionState, type: SubscriptionType): OutboundOutcome {
  switch (type) {
    case 'subscribe':
      // §3.1.2: remember the request unless already subscribed; the request is routed either way.
      if (!subscribedTo(state) && !state.ask) return { state: { ...state, ask: true }, changed: true, route: true };
      return { state, changed: false, route: true };
    case 'subscribed':
      // §3.1.5: approving a pending request.
      if (state.pendingIn) {
        return { state: { ...state, pendingIn: false, subscription: addFrom(state.subscription) }, changed: true, route: true, thenSend: 'presence' };
      }
      // §3.4.2: with no request, a pre-approval, which is not routed.
      if (!subscribedFrom(state)) return { state: { ...state, approved: true }, changed: !state.approved, route: false };
      // §3.1.5: already subscribed: nothing to do, nothing routed.
      return { state, changed: false, route: false };
    case 'unsubscribe':
      // §3.3.2: the user no longer wants the contact's presence (or withdraws a request); routed either way.
      if (subscribedTo(state) || state.ask) return { state: { ...state, subscription: dropTo(state.subscription), ask: false }, changed: true, route: true };
      return { state, changed: false, route: true };
    case 'unsubscribed':
      // §3.2.2: cancel the contact's subscription, deny a request or withdraw a pre-approval; routed only if something changed.
      if (subscribedFrom(state) || state.pendingIn || state.approved) {
        return {
          state: { ...state, subscription: dropFrom(state.subscription), pendingIn: false, approved: false },
          changed: true,
          route: true,
          thenSend: 'unavailable',
        };
      }
      return { state, changed: false, route: false };
  }
}

export interface InboundOutcome {
  state: SubscriptionState;
  changed: boolean;
  /** The stanza goes on to the contact's available resources. */
  deliver: boolean;
  /** The server answers the sender on the contact's behalf (§3.1.3 already approved, §3.4 pre-approved). */
  reply?: 'subscribed';
  /**
   * What the sender must then get from each of the contact's available resources: their
   * presence (a pre-approved subscription was completed) or unavailable (the sender gave up its
   * subscription, §3.3.3).
   */
  thenSend?: 'presence' | 'unavailable';
}

/** The contact receives a subscription stanza of `type` from the user. */
export function inbound(state: SubscriptionState, type: SubscriptionType): InboundOutcome {
  switch (type) {
    case 'subscribe':
      // §3.1.3: already subscribed: answer at once, do not bother the contact.
      if (subscribedFrom(state)) return { state, changed: false, deliver: false, reply: 'subscribed' };
      // §3.4: pre-approved: complete the subscription without asking.
      if (state.approved) {
        return {
          state: { ...state, approved: false, subscription: addFrom(state.subscription) },
          changed: true,
          deliver: false,
          reply: 'subscribed',
          thenSend: 'presence',
        };
      }
      // §3.1.3: a duplicate of a pending request is not delivered again.
      if (state.pendingIn) return { state, changed: false, deliver: false };
      return { state: { ...state, pendingIn: true }, changed: true, deliver: true };
    case 'subscribed':
      // §3.1.6: only meaningful when we asked.
      if (!state.ask) return { state, changed: false, deliver: false };
      return { state: { ...state, ask: false, subscription: addTo(state.subscription) }, changed: true, deliver: true };
    case 'unsubscribe':
      // §3.3.3
      if (!subscribedFrom(state) && !state.pendingIn) return { state, changed: false, deliver: false };
      return { state: { ...state, subscription: dropFrom(state.subscription), pendingIn: false }, changed: true, deliver: true, thenSend: 'unavailable' };
    case 'unsubscribed':
      // §3.2.3
      if (!subscribedTo(state) && !state.ask) return { state, changed: false, deliver: false };
      return { state: { ...state, subscription: dropTo(state.subscription), ask: false }, changed: true, deliver: true };
  }
}
