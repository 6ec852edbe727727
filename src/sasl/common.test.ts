import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBase64, decodeUtf8, fakeSalt, sameBytes, splitPlainMessage } from './common.js';
import { authzidMatches, prepareUsername } from '../core/identity.js';

test('prepareUsername applies the localpart preparation', () => {
  assert.equal(prepareUsername('juliet'), 'juliet');
  assert.equal(prepareUsername('JuLiEt'), 'juliet');
  // Fullwidth letters: RFC 8265 §3.3.2 width mapping.
  assert.equal(prepareUsername('\uFF4A\uFF55\uFF4C\uFF49\uFF45\uFF54'), 'juliet');
  assert.equal(prepareUsername('ÉLODIE'), 'élodie');
  for (const bad of ['', 'ju@liet', 'ju liet', 'a/b', 'us\u0007er', 'x'.repeat(1024)]) {
    assert.equal(prepareUsername(bad), undefined, JSON.stringify(bad));
  }
});

test('authzidMatches: the bare JID or the localpart of the account, nothing else', () => {
  for (const ok of ['juliet', 'JULIET', 'juliet@example.com', 'Juliet@EXAMPLE.com', 'juliet@example.com.']) {
    assert.equal(authzidMatches(ok, 'juliet', 'example.com'), true, ok);
  }
  const bad = ['romeo', 'romeo@example.com', 'juliet@example.net', 'juliet@example.com/balcony', 'example.com', ''];
  for (const authzid of [...bad, '@example.com']) {
    assert.equal(authzidMatches(authzid, 'juliet', 'example.com'), false, authzid);
  }
});

test('decodeBase64 is strict', () => {
  assert.deepEqual(decodeBase64('biws'), Buffer.from('n,,'));
  assert.deepEqual(decodeBase64(''), Buffer.alloc(0));
  for (const bad of ['biw', 'bi ws', 'bi!s', 'YQ', 'YR==', 'YQ==YQ==', 'Y===']) {
    assert.equal(decodeBase64(bad), undefined, bad);
  }
});

test('decodeUtf8 refuses ill-formed UTF-8 and keeps a BOM', () => {
  assert.equal(decodeUtf8(Buffer.from('é,\u0000')), 'é,\u0000');
  assert.equal(decodeUtf8(Buffer.from([0xc3])), undefined);
  assert.equal(decodeUtf8(Buffer.from([0xed, 0xa0, 0x80])), undefined); // a surrogate
  assert.equal(decodeUtf8(Buffer.from([0xef, 0xbb, 0xbf, 0x61])), '\uFEFFa');
});

test('fakeSalt is stable per input and differs between inputs', () => {
  const a = fakeSalt('SCRAM-SHA-1', 'example.com', 'nobody', 16);
  assert.equal(a.length, 16);
  assert.deepEqual(fakeSalt('SCRAM-SHA-1', 'example.com', 'nobody', 16), a);
  assert.notDeepEqual(fakeSalt('SCRAM-SHA-1', 'example.com', 'somebody', 16), a);
  assert.notDeepEqual(fakeSalt('SCRAM-SHA-256', 'example.com', 'nobody', 16), a);
  assert.notDeepEqual(fakeSalt('SCRAM-SHA-1', 'example.net', 'nobody', 16), a);
});

test('sameBytes handles different lengths', () => {
  assert.equal(sameBytes(Buffer.from('ab'), Buffer.from('ab')), true);
  assert.equal(sameBytes(Buffer.from('ab'), Buffer.from('abc')), false);
  assert.equal(sameBytes(Buffer.from('ab'), Buffer.from('ac')), false);
});

test('splitPlainMessage: exactly three fields, authcid and secret not empty (RFC 4616 §2)', () => {
  assert.deepEqual(splitPlainMessage('\0tim\0tanstaaf'), { authzid: '', authcid: 'tim', secret: 'tanstaaf' });
  assert.deepEqual(splitPlainMessage('Ursel\0Kurt\0xipj3plmq'), { authzid: 'Ursel', authcid: 'Kurt', secret: 'xipj3plmq' });
  for (const bad of ['', 'tim\0tanstaaf', '\0tim\0tans\0taaf', '\0\0tanstaaf', '\0tim\0', 'a\0\0']) {
    assert.equal(splitPlainMessage(bad), undefined, JSON.stringify(bad));
  }
});
