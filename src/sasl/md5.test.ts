import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { MD5_INITIAL_STATE, encodeMd5State, md5, md5Continue, md5StateAfterBlock } from './md5.js';
import { cramMd5Secret, hmacMd5FromSecret } from './legacy-credentials.js';

test('RFC 1321 §A.5 test suite', () => {
  const suite: [string, string][] = [
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
    ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', '57edf4a22be3c955ac49da2e2107b67a'],
  ];
  for (const [input, digest] of suite) assert.equal(md5(Buffer.from(input)).toString('hex'), digest, JSON.stringify(input));
});

test('every length around the padding boundaries matches node:crypto', () => {
  for (let length = 0; length <= 200; length++) {
    const data = randomBytes(length);
    assert.equal(md5(data).toString('hex'), createHash('md5').update(data).digest('hex'), `length ${length}`);
  }
});

test('continuing from the state after one block equals hashing the whole message', () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const block = randomBytes(64);
    const rest = randomBytes(length);
    const expected = createHash('md5').update(Buffer.concat([block, rest])).digest();
    assert.deepEqual(md5Continue(md5StateAfterBlock(block), 64, rest), expected, `rest ${length}`);
  }
  assert.throws(() => md5Continue(encodeMd5State(MD5_INITIAL_STATE), 10, Buffer.alloc(0)), RangeError);
  assert.throws(() => md5StateAfterBlock(Buffer.alloc(63)), RangeError);
});

test('HMAC-MD5 from the stored states equals RFC 2104 HMAC-MD5, for short and long keys', () => {
  for (const password of ['tanstaaftanstaaf', 'x', 'a'.repeat(64), 'b'.repeat(65), 'pässwörd ☃', 'c'.repeat(300)]) {
    const secret = cramMd5Secret(password);
    assert.equal(secret.length, 32);
    for (const length of [0, 1, 42, 64, 100]) {
      const text = randomBytes(length);
      assert.deepEqual(hmacMd5FromSecret(secret, text), createHmac('md5', Buffer.from(password, 'utf8')).update(text).digest(), `${password.length}/${length}`);
    }
  }
});

test('RFC 2104 Appendix test vector 2 ("Jefe")', () => {
  const secret = cramMd5Secret('Jefe');
  assert.equal(hmacMd5FromSecret(secret, Buffer.from('what do ya want for nothing?')).toString('hex'), '750c783e6ab0b503eaa86e310a5db738');
});
