import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessError, mayRead, seesPresence } from './access.js';
import type { AccessModel } from './node-config.js';

const node = (accessModel: AccessModel, rosterGroups: string[] = []) => ({ accessModel, rosterGroups });
const item = (subscription: 'none' | 'to' | 'from' | 'both', groups: string[] = []) => ({ owner: false as const, item: { subscription, groups } });
const stranger = { owner: false as const, item: undefined };
const owner = { owner: true as const };

test('the owner reads every node', () => {
  for (const m of ['open', 'presence', 'roster', 'whitelist'] as const) assert.ok(mayRead(node(m), owner), m);
});

test('open: anyone, strangers included', () => {
  assert.ok(mayRead(node('open'), stranger));
  assert.ok(mayRead(node('open'), item('none')));
});

test("presence: only contacts that receive the owner's presence (from/both on the owner's side)", () => {
  assert.ok(seesPresence({ subscription: 'from' }) && seesPresence({ subscription: 'both' }));
  assert.ok(!seesPresence({ subscription: 'to' }) && !seesPresence({ subscription: 'none' }) && !seesPresence(undefined));
  assert.ok(mayRead(node('presence'), item('from')));
  assert.ok(mayRead(node('presence'), item('both')));
  for (const rel of [stranger, item('none'), item('to')]) {
    const err = accessError(node('presence'), rel);
    assert.equal(err?.condition, 'not-authorized');
    assert.equal(err?.pubsub, 'presence-subscription-required');
  }
});

test('roster: contacts in one of the allowed groups, and only with a presence subscription', () => {
  const n = node('roster', ['friends', 'work']);
  assert.ok(mayRead(n, item('both', ['work'])));
  assert.ok(!mayRead(n, item('both', ['family'])));
  assert.ok(!mayRead(n, item('to', ['friends'])), 'a group alone is not enough without the subscription');
  assert.equal(accessError(n, stranger)?.pubsub, 'not-in-roster-group');
  assert.equal(accessError(n, stranger)?.condition, 'not-authorized');
});

test('whitelist: the owner only; everyone else not-allowed + closed-node', () => {
  for (const rel of [stranger, item('both', ['friends'])]) {
    const err = accessError(node('whitelist'), rel);
    assert.equal(err?.condition, 'not-allowed');
    assert.equal(err?.pubsub, 'closed-node');
  }
});
