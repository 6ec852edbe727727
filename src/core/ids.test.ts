import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sessionUuid } from './ids.js';

test('sessionUuid is a random version 4 UUID (RFC 9562 §5.4)', () => {
  const a = sessionUuid();
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(sessionUuid(), a);
});
