import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScramClient } from './scram-client.js';

test('the client reproduces RFC 5802 §5 (SCRAM-SHA-1)', () => {
  const client = new ScramClient('SHA-1', 'user', 'pencil', { nonce: 'fyko+d2lbbFgONRv9qkxdawL' });
  assert.equal(client.first(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
  assert.equal(
    client.final('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'),
    'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  );
  assert.equal(client.verify('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='), true);
  assert.equal(client.verify('v=rmF9pqV8S7suAoZWja4dJRkFsKA='), false);
  assert.equal(client.verify('e=invalid-proof'), false);
});

test('the client reproduces RFC 7677 §3 (SCRAM-SHA-256)', () => {
  const client = new ScramClient('SHA-256', 'user', 'pencil', { nonce: 'rOprNGfwEbeRWgbNEkqO' });
  assert.equal(client.first(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  assert.equal(
    client.final('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'),
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  );
  assert.equal(client.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='), true);
});

test('gs2 header and channel binding attribute', () => {
  const cbData = Buffer.from([1, 2, 3]);
  const plus = new ScramClient('SHA-256', 'user', 'pencil', { nonce: 'abc', cbType: 'tls-exporter', cbData });
  assert.equal(plus.first(), 'p=tls-exporter,,n=user,r=abc');
  const final = plus.final('r=abcdef,s=QSXCR+Q6sek8bf92,i=16');
  const c = /^c=([^,]+),/.exec(final)?.[1] ?? '';
  assert.deepEqual(Buffer.from(c, 'base64'), Buffer.concat([Buffer.from('p=tls-exporter,,'), cbData]));

  const y = new ScramClient('SHA-1', 'user', 'pencil', { nonce: 'abc', gs2: 'y', authzid: 'user@example.com' });
  assert.equal(y.first(), 'y,a=user@example.com,n=user,r=abc');
  const yHeader = Buffer.from('y,a=user@example.com,').toString('base64');
  assert.ok(y.final('r=abcdef,s=QSXCR+Q6sek8bf92,i=16').startsWith(`c=${yHeader},`));
  assert.throws(() => new ScramClient('SHA-1', 'user', 'pencil', { gs2: 'p' }));
});

test('the client refuses a bad server-first-message', () => {
  const bad = [
    'r=xyz123,s=QSXCR+Q6sek8bf92,i=4096', // nonce does not extend ours
    'r=abc,s=QSXCR+Q6sek8bf92,i=4096', // server added nothing
    'r=abcdef,s=!!!,i=4096',
    'r=abcdef,s=QSXCR+Q6sek8bf92,i=0',
    'r=abcdef,s=QSXCR+Q6sek8bf92',
    'm=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096',
  ];
  for (const serverFirst of bad) {
    const client = new ScramClient('SHA-1', 'user', 'pencil', { nonce: 'abc' });
    assert.throws(() => client.final(serverFirst), serverFirst);
  }
  assert.equal(new ScramClient('SHA-1', 'user', 'pencil').verify('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='), false);
});
