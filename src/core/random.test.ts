import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomToken } from './random.js';

test('tokens have the length asked for, in the encoding asked for, and never repeat across pool refills', () => {
  assert.match(randomToken(4, 'hex'), /^[0-9a-f]{8}$/);
  assert.match(randomToken(16, 'base64url'), /^[A-Za-z0-9_-]{22}$/);
  assert.match(randomToken(24, 'base64'), /^[A-Za-z0-9+/]{32}$/);
  assert.equal(Buffer.from(randomToken(2000, 'base64'), 'base64').length, 2000, 'larger than the pool allows: drawn apart');
  const seen = new Set<string>();
  // Well past several refills of the 4 KiB pool.
  for (let i = 0; i < 5000; i++) seen.add(randomToken(16, 'hex'));
  assert.equal(seen.size, 5000);
});
