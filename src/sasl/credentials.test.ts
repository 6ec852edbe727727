import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SCRAM_ITERATIONS,
  SCRAM_SALT_LENGTH,
  deriveAllScramCredentials,
  deriveScramCredentials,
  deriveScramCredentialsAsync,
  digest,
  hmac,
  preparePassword,
  saltedPassword,
} from './credentials.js';

const RFC7677_SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');

test('RFC 4013 §3 examples through preparePassword', () => {
  assert.equal(preparePassword('I\u00ADX'), 'IX'); // 1: SOFT HYPHEN mapped to nothing
  assert.equal(preparePassword('user'), 'user'); // 2: no transformation
  assert.equal(preparePassword('USER'), 'USER'); // 3: case preserved
  assert.equal(preparePassword('\u00AA'), 'a'); // 4: output is NFKC
  assert.equal(preparePassword('\u2168'), 'IX'); // 5: output is NFKC, matches #1
  assert.throws(() => preparePassword('\u0007')); // 6: prohibited character
  assert.throws(() => preparePassword('\u0627\u0031')); // 7: bidirectional check
});

test('preparePassword maps non-ASCII spaces to SPACE and refuses an empty result', () => {
  assert.equal(preparePassword('a\u00A0b'), 'a b');
  assert.throws(() => preparePassword(''));
  assert.throws(() => preparePassword('\u00AD'));
});

test('RFC 5802 §2.2 Hi() equals PBKDF2: SaltedPassword of the RFC 7677 example', () => {
  // Independent check of Hi(): the first block of PBKDF2 computed by hand with HMAC.
  const salted = saltedPassword('SHA-256', 'pencil', RFC7677_SALT, 3);
  const u1 = hmac('SHA-256', Buffer.from('pencil'), Buffer.concat([RFC7677_SALT, Buffer.from([0, 0, 0, 1])]));
  const u2 = hmac('SHA-256', Buffer.from('pencil'), u1);
  const u3 = hmac('SHA-256', Buffer.from('pencil'), u2);
  const expected = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) expected[i] = (u1[i] ?? 0) ^ (u2[i] ?? 0) ^ (u3[i] ?? 0);
  assert.deepEqual(salted, expected);
});

test('deriveScramCredentials reproduces the keys of the RFC 7677 §3 example', () => {
  const c = deriveScramCredentials('pencil', 'SHA-256', { salt: RFC7677_SALT, iterations: 4096 });
  assert.equal(c.hash, 'SHA-256');
  assert.equal(c.iterations, 4096);
  assert.deepEqual(c.salt, RFC7677_SALT);
  assert.equal(c.storedKey.toString('base64'), 'WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=');
  assert.equal(c.serverKey.toString('base64'), 'wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=');
  // RFC 5802 §3: StoredKey = H(HMAC(SaltedPassword, "Client Key")).
  const salted = saltedPassword('SHA-256', 'pencil', RFC7677_SALT, 4096);
  assert.deepEqual(c.storedKey, digest('SHA-256', hmac('SHA-256', salted, 'Client Key')));
});

test('defaults: random 16-byte salt and the iteration constant', () => {
  const a = deriveScramCredentials('pencil', 'SHA-1');
  const b = deriveScramCredentials('pencil', 'SHA-1');
  assert.equal(a.salt.length, SCRAM_SALT_LENGTH);
  assert.equal(SCRAM_SALT_LENGTH, 16);
  assert.equal(a.iterations, SCRAM_ITERATIONS);
  assert.ok(SCRAM_ITERATIONS >= 4096);
  assert.notDeepEqual(a.salt, b.salt);
  assert.notDeepEqual(a.storedKey, b.storedKey);
});

test('key lengths follow the hash', () => {
  const all = deriveAllScramCredentials('pencil');
  assert.deepEqual(
    all.map((c) => [c.hash, c.storedKey.length, c.serverKey.length]),
    [
      ['SHA-1', 20, 20],
      ['SHA-256', 32, 32],
      ['SHA-512', 64, 64],
    ],
  );
  assert.equal(new Set(all.map((c) => c.salt.toString('hex'))).size, 3);
});

test('SASLprep-equivalent passwords give the same credentials; prohibited ones throw', async () => {
  const salt = Buffer.from('0123456789abcdef');
  const a = deriveScramCredentials('I\u00ADX', 'SHA-512', { salt, iterations: 16 });
  const b = deriveScramCredentials('\u2168', 'SHA-512', { salt, iterations: 16 });
  assert.deepEqual(a, b);
  const c = await deriveScramCredentialsAsync('IX', 'SHA-512', { salt, iterations: 16 });
  assert.deepEqual(a, c);
  assert.throws(() => deriveScramCredentials('bad\u0007', 'SHA-1'));
  await assert.rejects(deriveScramCredentialsAsync('bad\u0007', 'SHA-1'));
});

test('invalid derivation options are refused', () => {
  assert.throws(() => deriveScramCredentials('pencil', 'SHA-1', { iterations: 0 }), RangeError);
  assert.throws(() => deriveScramCredentials('pencil', 'SHA-1', { iterations: 1.5 }), RangeError);
  assert.throws(() => deriveScramCredentials('pencil', 'SHA-1', { salt: Buffer.alloc(0) }), RangeError);
});
