import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthRateLimiter, type RateLimitSettings } from './rate-limit.js';
import { TokenBuckets } from '../core/buckets.js';
import { addressKey } from '../core/address.js';

const SETTINGS: RateLimitSettings = { enabled: true, account: { burst: 3, per_minute: 2 }, address: { burst: 5, per_minute: 6 } };

test('a bucket allows `burst` failures, then is empty until it refills at per_minute', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const limiter = new AuthRateLimiter(SETTINGS);
  for (let i = 0; i < 3; i++) {
    assert.equal(limiter.isLimited(undefined, 'juliet@example.com'), false, `failure ${i}`);
    limiter.recordFailure(undefined, 'juliet@example.com');
  }
  assert.equal(limiter.isLimited(undefined, 'juliet@example.com'), true);
  // Other accounts are not affected.
  assert.equal(limiter.isLimited(undefined, 'romeo@example.com'), false);
  // 2 per minute: one token every 30 s.
  t.mock.timers.tick(29_999);
  assert.equal(limiter.isLimited(undefined, 'juliet@example.com'), true);
  t.mock.timers.tick(1);
  assert.equal(limiter.isLimited(undefined, 'juliet@example.com'), false);
  limiter.recordFailure(undefined, 'juliet@example.com');
  assert.equal(limiter.isLimited(undefined, 'juliet@example.com'), true);
  // Never more than `burst` after a long pause.
  t.mock.timers.tick(3_600_000);
  for (let i = 0; i < 3; i++) limiter.recordFailure(undefined, 'juliet@example.com');
  assert.equal(limiter.isLimited(undefined, 'juliet@example.com'), true);
});

test('per address, whatever the accounts tried; either limit is enough to refuse', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 0 });
  const limiter = new AuthRateLimiter(SETTINGS);
  for (let i = 0; i < 5; i++) limiter.recordFailure('192.0.2.7', `user${i}@example.com`);
  assert.equal(limiter.isLimited('192.0.2.7'), true);
  assert.equal(limiter.isLimited('192.0.2.8'), false);
  assert.equal(limiter.isLimited('192.0.2.8', 'user0@example.com'), false);
  // 6 per minute: one every 10 s.
  t.mock.timers.tick(10_000);
  assert.equal(limiter.isLimited('192.0.2.7'), false);
  for (let i = 0; i < 3; i++) limiter.recordFailure('192.0.2.9', 'target@example.com');
  assert.equal(limiter.isLimited('198.51.100.1', 'target@example.com'), true);
});

test('successes cost nothing: only recordFailure takes tokens', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 0 });
  const limiter = new AuthRateLimiter(SETTINGS);
  for (let i = 0; i < 100; i++) assert.equal(limiter.isLimited('192.0.2.1', 'juliet@example.com'), false);
});

test('disabled: never limited', () => {
  const limiter = new AuthRateLimiter({ ...SETTINGS, enabled: false });
  for (let i = 0; i < 50; i++) limiter.recordFailure('192.0.2.1', 'juliet@example.com');
  assert.equal(limiter.isLimited('192.0.2.1', 'juliet@example.com'), false);
});

test('a clock going back refills nothing', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 100_000 });
  let now = 100_000;
  const buckets = new TokenBuckets({ burst: 1, per_minute: 60 }, () => now);
  buckets.take('k');
  now = 50_000;
  assert.equal(buckets.isEmpty('k'), true);
  now = 51_000;
  assert.equal(buckets.isEmpty('k'), false);
});

test('memory follows failures: refilled buckets are dropped, and the count is capped', () => {
  let now = 0;
  const buckets = new TokenBuckets({ burst: 2, per_minute: 60 }, () => now, 3);
  for (const k of ['a', 'b', 'c', 'd', 'e']) buckets.take(k);
  assert.equal(buckets.size, 3);
  // The least recently charged ('a', 'b') were dropped: one more failure does not empty them...
  buckets.take('a');
  assert.equal(buckets.isEmpty('a'), false);
  // ...while 'e' was kept and is now empty.
  buckets.take('e');
  assert.equal(buckets.isEmpty('e'), true);
  // One token per second: after 2 s every bucket is full again, and full buckets are not kept.
  now = 2_000;
  for (const k of ['a', 'b', 'c', 'd', 'e']) assert.equal(buckets.isEmpty(k), false);
  assert.equal(buckets.size, 0);
});

test('address keys: IPv4-mapped IPv6 as IPv4, IPv6 by /64', () => {
  assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
  assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2::99'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:DB8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
});
