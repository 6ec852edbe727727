import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { cramMd5Secret, deriveLegacySecrets, hmacMd5FromSecret, legacyMechanismsIn, rfc2831Encode } from './legacy-credentials.js';

test('only the enabled mechanisms get secrets', () => {
  assert.deepEqual(deriveLegacySecrets('example.com', 'tim', 'pw', ['SCRAM-SHA-256', 'PLAIN']), []);
  assert.deepEqual(deriveLegacySecrets('example.com', 'tim', 'pw', ['CRAM-MD5']).map((s) => s.mechanism), ['CRAM-MD5']);
  assert.deepEqual(
    deriveLegacySecrets('example.com', 'tim', 'pw', ['DIGEST-MD5', 'CRAM-MD5']).map((s) => `${s.mechanism}/${s.realm}/${s.variant}`),
    ['CRAM-MD5//hmac-md5-states', 'DIGEST-MD5/example.com/utf-8'],
  );
  assert.deepEqual(legacyMechanismsIn(['DIGEST-MD5', 'PLAIN']), ['DIGEST-MD5']);
});

test('the DIGEST-MD5 secret is H(username:realm:password) of RFC 2831 §2.1.2.1, for the account domain', () => {
  const [digest] = deriveLegacySecrets('example.com', 'tim', 'tanstaaftanstaaf', ['DIGEST-MD5']);
  assert.deepEqual(digest?.secret, createHash('md5').update('tim:example.com:tanstaaftanstaaf').digest());
});

test('neither secret contains the password, and both follow SASLprep (RFC 4013)', () => {
  const password = 'correct horse battery staple';
  for (const s of deriveLegacySecrets('example.com', 'tim', password, ['DIGEST-MD5', 'CRAM-MD5'])) {
    assert.equal(s.secret.includes(Buffer.from(password)), false);
    assert.ok(s.secret.length === 16 || s.secret.length === 32);
  }
  // U+00AD SOFT HYPHEN is mapped to nothing by SASLprep: "I\u00ADX" and "IX" are the same password.
  assert.deepEqual(cramMd5Secret('I\u00ADX'), cramMd5Secret('IX'));
  assert.deepEqual(hmacMd5FromSecret(cramMd5Secret('IX'), Buffer.from('<c>')), createHmac('md5', 'IX').update('<c>').digest());
  assert.throws(() => cramMd5Secret('bad\u0007'));
});

test('RFC 2831 §2.1.2.1 conversion: ISO 8859-1 when every character fits, else UTF-8', () => {
  assert.deepEqual(rfc2831Encode('pässwörd'), Buffer.from([0x70, 0xe4, 0x73, 0x73, 0x77, 0xf6, 0x72, 0x64]));
  assert.deepEqual(rfc2831Encode('snow☃'), Buffer.from('snow☃', 'utf8'));
});
