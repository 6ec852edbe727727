// RFC 6121 §3 subscription state machine, both sides, against the RFC's rules.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_SUBSCRIPTION, inbound, outbound, type SubscriptionState } from './subscription.js';

const S = (subscription: SubscriptionState['subscription'], extra: Partial<SubscriptionState> = {}): SubscriptionState => ({
  ...NO_SUBSCRIPTION,
  subscription,
  ...extra,
});

describe('outbound (the user sends)', () => {
  test('subscribe marks a pending request (§3.1.2) and is routed, also when nothing changes', () => {
    assert.deepEqual(outbound(S('none'), 'subscribe'), { state: S('none', { ask: true }), changed: true, route: true });
    assert.deepEqual(outbound(S('from'), 'subscribe'), { state: S('from', { ask: true }), changed: true, route: true });
    assert.deepEqual(outbound(S('none', { ask: true }), 'subscribe'), { state: S('none', { ask: true }), changed: false, route: true });
    assert.deepEqual(outbound(S('to'), 'subscribe'), { state: S('to'), changed: false, route: true });
    assert.deepEqual(outbound(S('both'), 'subscribe'), { state: S('both'), changed: false, route: true });
  });

  test('subscribed approves a pending request (§3.1.5), pre-approves otherwise (§3.4.2, not routed), or does nothing', () => {
    assert.deepEqual(outbound(S('none', { pendingIn: true }), 'subscribed'), { state: S('from'), changed: true, route: true, thenSend: 'presence' });
    assert.deepEqual(outbound(S('to', { pendingIn: true }), 'subscribed'), { state: S('both'), changed: true, route: true, thenSend: 'presence' });
    assert.deepEqual(outbound(S('none'), 'subscribed'), { state: S('none', { approved: true }), changed: true, route: false });
    assert.deepEqual(outbound(S('to'), 'subscribed'), { state: S('to', { approved: true }), changed: true, route: false });
    assert.deepEqual(outbound(S('none', { approved: true }), 'subscribed'), { state: S('none', { approved: true }), changed: false, route: false });
    assert.deepEqual(outbound(S('from'), 'subscribed'), { state: S('from'), changed: false, route: false });
    assert.deepEqual(outbound(S('both'), 'subscribed'), { state: S('both'), changed: false, route: false });
  });

  test('unsubscribe drops our subscription or request (§3.3.2) and is routed either way', () => {
    assert.deepEqual(outbound(S('to'), 'unsubscribe'), { state: S('none'), changed: true, route: true });
    assert.deepEqual(outbound(S('both'), 'unsubscribe'), { state: S('from'), changed: true, route: true });
    assert.deepEqual(outbound(S('none', { ask: true }), 'unsubscribe'), { state: S('none'), changed: true, route: true });
    assert.deepEqual(outbound(S('from'), 'unsubscribe'), { state: S('from'), changed: false, route: true });
  });

  test('unsubscribed cancels, denies or withdraws (§3.2.2), routed only when something changed', () => {
    assert.deepEqual(outbound(S('from'), 'unsubscribed'), { state: S('none'), changed: true, route: true, thenSend: 'unavailable' });
    assert.deepEqual(outbound(S('both'), 'unsubscribed'), { state: S('to'), changed: true, route: true, thenSend: 'unavailable' });
    assert.deepEqual(outbound(S('none', { pendingIn: true }), 'unsubscribed'), { state: S('none'), changed: true, route: true, thenSend: 'unavailable' });
    assert.deepEqual(outbound(S('to', { approved: true }), 'unsubscribed'), { state: S('to'), changed: true, route: true, thenSend: 'unavailable' });
    assert.deepEqual(outbound(S('to'), 'unsubscribed'), { state: S('to'), changed: false, route: false });
    assert.deepEqual(outbound(S('none'), 'unsubscribed'), { state: S('none'), changed: false, route: false });
  });
});

describe('inbound (the contact receives)', () => {
  test('subscribe: answered at once when already subscribed or pre-approved, a duplicate dropped, else stored and delivered (§3.1.3, §3.4)', () => {
    assert.deepEqual(inbound(S('from'), 'subscribe'), { state: S('from'), changed: false, deliver: false, reply: 'subscribed' });
    assert.deepEqual(inbound(S('both'), 'subscribe'), { state: S('both'), changed: false, deliver: false, reply: 'subscribed' });
    assert.deepEqual(inbound(S('none', { approved: true }), 'subscribe'), {
      state: S('from'),
      changed: true,
      deliver: false,
      reply: 'subscribed',
      thenSend: 'presence',
    });
    assert.deepEqual(inbound(S('to', { approved: true }), 'subscribe'), { state: S('both'), changed: true, deliver: false, reply: 'subscribed', thenSend: 'presence' });
    assert.deepEqual(inbound(S('none', { pendingIn: true }), 'subscribe'), { state: S('none', { pendingIn: true }), changed: false, deliver: false });
    assert.deepEqual(inbound(S('none'), 'subscribe'), { state: S('none', { pendingIn: true }), changed: true, deliver: true });
    assert.deepEqual(inbound(S('to'), 'subscribe'), { state: S('to', { pendingIn: true }), changed: true, deliver: true });
  });

  test('subscribed completes only a request we made (§3.1.6)', () => {
    assert.deepEqual(inbound(S('none', { ask: true }), 'subscribed'), { state: S('to'), changed: true, deliver: true });
    assert.deepEqual(inbound(S('from', { ask: true }), 'subscribed'), { state: S('both'), changed: true, deliver: true });
    assert.deepEqual(inbound(S('none'), 'subscribed'), { state: S('none'), changed: false, deliver: false });
    assert.deepEqual(inbound(S('to'), 'subscribed'), { state: S('to'), changed: false, deliver: false });
  });

  test('unsubscribe ends the sender\'s subscription to us or its request (§3.3.3)', () => {
    assert.deepEqual(inbound(S('from'), 'unsubscribe'), { state: S('none'), changed: true, deliver: true, thenSend: 'unavailable' });
    assert.deepEqual(inbound(S('both'), 'unsubscribe'), { state: S('to'), changed: true, deliver: true, thenSend: 'unavailable' });
    assert.deepEqual(inbound(S('none', { pendingIn: true }), 'unsubscribe'), { state: S('none'), changed: true, deliver: true, thenSend: 'unavailable' });
    assert.deepEqual(inbound(S('to'), 'unsubscribe'), { state: S('to'), changed: false, deliver: false });
  });

  test('unsubscribed ends our subscription to the sender or our request (§3.2.3)', () => {
    assert.deepEqual(inbound(S('to'), 'unsubscribed'), { state: S('none'), changed: true, deliver: true });
    assert.deepEqual(inbound(S('both'), 'unsubscribed'), { state: S('from'), changed: true, deliver: true });
    assert.deepEqual(inbound(S('none', { ask: true }), 'unsubscribed'), { state: S('none'), changed: true, deliver: true });
    assert.deepEqual(inbound(S('from'), 'unsubscribed'), { state: S('from'), changed: false, deliver: false });
  });

  test('a full round trip: request, approval, both ways, cancellation', () => {
    // user and contact each keep an item for the other.
    let user = NO_SUBSCRIPTION;
    let contact = NO_SUBSCRIPTION;
    user = outbound(user, 'subscribe').state;
    contact = inbound(contact, 'subscribe').state;
    assert.deepEqual([user, contact], [S('none', { ask: true }), S('none', { pendingIn: true })]);
    contact = outbound(contact, 'subscribed').state;
    user = inbound(user, 'subscribed').state;
    assert.deepEqual([user, contact], [S('to'), S('from')]);
    contact = outbound(contact, 'subscribe').state;
    const auto = inbound(user, 'subscribe');
    assert.equal(auto.reply, undefined, 'the user has not approved yet: the request is delivered');
    user = auto.state;
    user = outbound(user, 'subscribed').state;
    contact = inbound(contact, 'subscribed').state;
    assert.deepEqual([user, contact], [S('both'), S('both')]);
    user = outbound(user, 'unsubscribed').state;
    contact = inbound(contact, 'unsubscribed').state;
    assert.deepEqual([user, contact], [S('to'), S('from')]);
  });
});
