import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generate } from 'selfsigned';
import { checkCertificate, loadOrCreateTlsMaterial, type TlsLogger } from './tls.js';

const DAY = 24 * 60 * 60 * 1000;

async function makeCert(opts: { hosts: string[]; notBefore: Date; notAfter: Date; cn?: string }) {
  const pems = await generate([{ name: 'commonName', value: opts.cn ?? opts.hosts[0] ?? 'unused' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: opts.notBefore,
    notAfterDate: opts.notAfter,
    extensions:
      opts.hosts.length === 0 ? [] : [{ name: 'subjectAltName', altNames: opts.hosts.map((value) => ({ type: 2 as const, value })) }],
  });
  return { cert: pems.cert, key: pems.private };
}

function recordingLogger(): TlsLogger & { lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
  };
}

describe('checkCertificate', () => {
  const now = new Date();

  test('a current certificate covering every host has no problems', async () => {
    const { cert } = await makeCert({ hosts: ['example.org', '*.example.net'], notBefore: new Date(+now - DAY), notAfter: new Date(+now + 90 * DAY) });
    assert.deepEqual(checkCertificate(cert, ['example.org', 'chat.example.net'], now), []);
  });

  test('an expired certificate', async () => {
    const { cert } = await makeCert({ hosts: ['example.org'], notBefore: new Date(+now - 400 * DAY), notAfter: new Date(+now - 35 * DAY) });
    const problems = checkCertificate(cert, ['example.org'], now);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /expired/);
  });

  test('a certificate not yet valid, or expiring within 14 days', async () => {
    const future = await makeCert({ hosts: ['example.org'], notBefore: new Date(+now + 2 * DAY), notAfter: new Date(+now + 300 * DAY) });
    assert.match(checkCertificate(future.cert, ['example.org'], now).join('\n'), /not valid before/);
    const soon = await makeCert({ hosts: ['example.org'], notBefore: new Date(+now - 30 * DAY), notAfter: new Date(+now + 10 * DAY) });
    assert.match(checkCertificate(soon.cert, ['example.org'], now).join('\n'), /within 14 days/);
    // The same certificate 20 days before expiry is fine.
    assert.deepEqual(checkCertificate(soon.cert, ['example.org'], new Date(+now - 10 * DAY)), []);
  });

  test('a certificate for another host', async () => {
    const { cert } = await makeCert({ hosts: ['other.example'], notBefore: new Date(+now - DAY), notAfter: new Date(+now + 90 * DAY) });
    const problems = checkCertificate(cert, ['example.org', 'other.example', 'sub.other.example'], now);
    assert.deepEqual(problems, [
      'certificate does not cover host example.org (subjectAltName/CN)',
      'certificate does not cover host sub.other.example (subjectAltName/CN)',
    ]);
  });

  test('without DNS names the CN is used', async () => {
    const { cert } = await makeCert({ hosts: [], cn: 'cn.example', notBefore: new Date(+now - DAY), notAfter: new Date(+now + 90 * DAY) });
    assert.deepEqual(checkCertificate(cert, ['cn.example'], now), []);
    assert.equal(checkCertificate(cert, ['example.org'], now).length, 1);
  });

  test('garbage is not a certificate', () => {
    assert.throws(() => checkCertificate('not a pem', ['example.org']));
  });
});

describe('loadOrCreateTlsMaterial', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-tls-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('generates a self-signed certificate on first start, then reuses it', async () => {
    const dataDir = join(root, 'data');
    const hosts = ['example.org', 'chat.example.org'];
    const log = recordingLogger();
    const first = await loadOrCreateTlsMaterial({}, dataDir, hosts, log);
    assert.equal(first.generated, true);
    assert.equal(log.lines.length, 1);

    const certFile = join(dataDir, 'tls', 'self-signed.crt');
    const keyFile = join(dataDir, 'tls', 'self-signed.key');
    assert.equal(await readFile(certFile, 'utf8'), first.cert);
    assert.equal(await readFile(keyFile, 'utf8'), first.key);
    assert.equal((await stat(keyFile)).mode & 0o077, 0, 'the key is readable by its owner only');

    const x509 = new X509Certificate(first.cert);
    assert.equal(x509.subjectAltName, 'DNS:example.org, DNS:chat.example.org');
    const validDays = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / DAY;
    assert.ok(validDays >= 365 && validDays < 367, `valid for ${validDays} days`);
    assert.deepEqual(checkCertificate(first.cert, hosts), []);

    const second = await loadOrCreateTlsMaterial({}, dataDir, hosts);
    assert.deepEqual(second, { cert: first.cert, key: first.key, generated: false });
  });

  test('regenerates when the kept certificate no longer fits the hosts or has expired', async () => {
    const dataDir = join(root, 'data2');
    const first = await loadOrCreateTlsMaterial({}, dataDir, ['example.org']);
    const moreHosts = await loadOrCreateTlsMaterial({}, dataDir, ['example.org', 'new.example']);
    assert.equal(moreHosts.generated, true);
    assert.notEqual(moreHosts.cert, first.cert);
    assert.deepEqual(checkCertificate(moreHosts.cert, ['example.org', 'new.example']), []);

    const expired = await makeCert({ hosts: ['example.org'], notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - DAY) });
    await writeFile(join(dataDir, 'tls', 'self-signed.crt'), expired.cert);
    await writeFile(join(dataDir, 'tls', 'self-signed.key'), expired.key);
    const log = recordingLogger();
    const renewed = await loadOrCreateTlsMaterial({}, dataDir, ['example.org'], log);
    assert.equal(renewed.generated, true);
    assert.deepEqual(checkCertificate(renewed.cert, ['example.org']), []);
    assert.ok(log.lines.some((l) => l.msg.includes('replacing')));
  });

  test('reads the configured files, warning about their problems', async () => {
    const { cert, key } = await makeCert({ hosts: ['other.example'], notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 90 * DAY) });
    const certPath = join(root, 'cert.pem');
    const keyPath = join(root, 'key.pem');
    await writeFile(certPath, cert);
    await writeFile(keyPath, key);
    const log = recordingLogger();
    const material = await loadOrCreateTlsMaterial({ cert: certPath, key: keyPath }, join(root, 'unused'), ['example.org'], log);
    assert.deepEqual(material, { cert, key, generated: false });
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.msg]),
      [['warn', 'certificate does not cover host example.org (subjectAltName/CN)']],
    );
  });

  test('a configured key that does not match the certificate, or a missing file, is an error', async () => {
    const a = await makeCert({ hosts: ['example.org'], notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 90 * DAY) });
    const b = await makeCert({ hosts: ['example.org'], notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 90 * DAY) });
    const certPath = join(root, 'a.crt');
    const keyPath = join(root, 'b.key');
    await writeFile(certPath, a.cert);
    await writeFile(keyPath, b.key);
    await assert.rejects(loadOrCreateTlsMaterial({ cert: certPath, key: keyPath }, root, ['example.org']), /does not match/);
    await assert.rejects(loadOrCreateTlsMaterial({ cert: join(root, 'missing.crt'), key: keyPath }, root, ['example.org']), /ENOENT/);
  });
});
