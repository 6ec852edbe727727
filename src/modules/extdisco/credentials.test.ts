import { test } from 'node:test';
import assert from 'node:assert/strict';
import { turnCredentials } from './credentials.js';

test('credentials are what coturn use-auth-secret computes', () => {
  // Expected password from: printf '1700086400:alice@localhost' | openssl dgst -sha1 -hmac a-shared-secret-for-coturn -binary | base64
  const c = turnCredentials('a-shared-secret-for-coturn', 'alice@localhost', 86400, 1_700_000_000_500);
  assert.equal(c.username, '1700086400:alice@localhost');
  assert.equal(c.password, 'sr/BYHIdEEewl6XAGuw3UHzjChQ=');
  assert.equal(c.expires.toISOString(), '2023-11-15T22:13:20.000Z');
});
