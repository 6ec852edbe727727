import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentDisposition, parseRange, sanitiseFilename, UrlSigner, validContentType } from './files.js';

test('sanitiseFilename keeps the name and its ending, drops paths and controls', () => {
  assert.equal(sanitiseFilename('très cool.jpg'), 'très cool.jpg');
  assert.equal(sanitiseFilename('../../etc/passwd'), 'passwd');
  assert.equal(sanitiseFilename('C:\\x\\y.txt'), 'y.txt');
  assert.equal(sanitiseFilename('a\u0000b\u202ec.exe'), 'abc.exe');
  assert.equal(sanitiseFilename('..'), 'file');
  assert.equal(sanitiseFilename('  '), 'file');
  const long = sanitiseFilename('x'.repeat(500) + '.jpeg');
  assert.equal(long.length, 200);
  assert.ok(long.endsWith('.jpeg'));
});

test('validContentType: media types with parameters, nothing else', () => {
  assert.ok(validContentType('image/jpeg'));
  assert.ok(validContentType('text/plain; charset=utf-8'));
  assert.ok(!validContentType('image'));
  assert.ok(!validContentType('text/plain\r\nX: y'));
  assert.ok(!validContentType('a/b c'));
});

test('contentDisposition: inline for media (not SVG), attachment otherwise, RFC 8187 name', () => {
  assert.equal(contentDisposition('image/png', 'a.png'), `inline; filename="a.png"; filename*=UTF-8''a.png`);
  assert.match(contentDisposition('IMAGE/SVG+XML', 'a.svg'), /^attachment;/);
  assert.match(contentDisposition('text/html', 'a"b.html'), /^attachment; filename="a_b.html"; filename\*=UTF-8''a%22b.html$/);
  assert.match(contentDisposition('video/mp4', 'é.mp4'), /^inline; filename="_.mp4"; filename\*=UTF-8''%C3%A9.mp4$/);
});

test('parseRange (RFC 9110 §14.1.2)', () => {
  assert.equal(parseRange(undefined, 10), undefined);
  assert.deepEqual(parseRange('bytes=0-4', 10), { start: 0, end: 4 });
  assert.deepEqual(parseRange('bytes=5-', 10), { start: 5, end: 9 });
  assert.deepEqual(parseRange('bytes=5-100', 10), { start: 5, end: 9 });
  assert.deepEqual(parseRange('bytes=-3', 10), { start: 7, end: 9 });
  assert.deepEqual(parseRange('bytes=-30', 10), { start: 0, end: 9 });
  assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-1,3-4', 10), undefined, 'several ranges: the whole file');
  assert.equal(parseRange('bytes=5-2', 10), undefined);
  assert.equal(parseRange('items=0-1', 10), undefined);
});

test('UrlSigner: signatures depend on every part and on the key', () => {
  const a = new UrlSigner(Buffer.alloc(32, 1));
  const b = new UrlSigner(Buffer.alloc(32, 2));
  assert.equal(a.getSignature('id', 'n'), a.getSignature('id', 'n'));
  assert.notEqual(a.getSignature('id', 'n'), b.getSignature('id', 'n'));
  assert.notEqual(a.getSignature('id', 'n'), a.getSignature('id', 'm'));
  assert.notEqual(a.putSignature('id', 1, 'a/b', 5), a.putSignature('id', 1, 'a/b', 6));
  assert.notEqual(a.putSignature('id', 1, 'a/b', 5), a.putSignature('id', 2, 'a/b', 5));
  assert.notEqual(a.putSignature('id', 1, 'a/b', 5), a.putSignature('id', 1, undefined, 5));
  assert.ok(UrlSigner.same('abc', 'abc'));
  assert.ok(!UrlSigner.same('abc', 'abd'));
  assert.ok(!UrlSigner.same('abc', 'ab'));
});
