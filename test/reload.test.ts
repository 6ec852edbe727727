// Hardening item 10: the TLS certificate is reloaded when its files change and on
// SIGHUP, and SIGHUP applies changed limits, without a restart; a configuration
// that does not validate changes nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type tls from 'node:tls';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { XmppServer } from '../src/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { LogCapture } from './support/xmppjs.js';
import { spawnShoal } from './support/cli.js';
import { dropTestServerStorage, testServerStorage } from './support/server.js';
import { until } from './support/until.js';

/** A fresh self-signed P-256 certificate for localhost, written to cert.pem/key.pem in `dir`. */
function newCertificate(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(dir, `${name}.crt.tmp`);
  const key = join(dir, `${name}.key.tmp`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '30', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const pem = readFileSync(cert, 'utf8');
  return { cert: pem, key: readFileSync(key, 'utf8'), fingerprint: new X509Certificate(pem).fingerprint256 };
}

/** Installs a certificate where the configuration points (as a renewal would replace the files). */
function install(dir: string, c: { cert: string; key: string }): void {
  writeFileSync(join(dir, 'key.pem'), c.key);
  writeFileSync(join(dir, 'cert.pem'), c.cert);
}

/** The fingerprint of the certificate a new connection gets after STARTTLS. */
async function servedFingerprint(port: number): Promise<string> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.element('features');
  await c.startTls();
  const cert = (c.socket as tls.TLSSocket).getPeerX509Certificate();
  c.close();
  assert.ok(cert);
  return cert.fingerprint256;
}

describe('reload in one process', () => {
  let dir: string;
  let server: XmppServer;
  let log: LogCapture;
  let first: ReturnType<typeof newCertificate>;
  let storage: Record<string, unknown>;
  const config = (limits: Record<string, unknown> = {}): void =>
    writeFileSync(
      join(dir, 'shoal.yaml'),
      stringify({ hosts: ['localhost'], c2s: { host: '127.0.0.1', port: 0 }, data_dir: './data', storage, tls: { cert: './cert.pem', key: './key.pem' }, limits }),
    );
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-reload-'));
    storage = await testServerStorage(dir);
    first = newCertificate(dir, 'first');
    install(dir, first);
    config();
    log = new LogCapture();
    const file = join(dir, 'shoal.yaml');
    server = await XmppServer.create({ config: loadConfig({ file }), log: log.logger, reloadConfig: () => loadConfig({ file }) });
    await server.listen();
  });
  after(async () => {
    await server.stop();
    await dropTestServerStorage(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a renewed certificate is served to new connections as soon as its files change; open ones keep theirs', async () => {
    assert.equal(await servedFingerprint(server.port), first.fingerprint);
    const open = await RawClient.connect(server.port);
    open.send(STREAM_OPEN());
    await open.element('features');
    await open.startTls();
    const second = newCertificate(dir, 'second');
    install(dir, second);
    await log.waitFor((r) => r.event === 'tls-reloaded', 'the reload after the files changed');
    assert.equal(await servedFingerprint(server.port), second.fingerprint);
    open.send(STREAM_OPEN());
    await open.element('features');
    assert.equal((open.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256, first.fingerprint);
    open.close();
  });

  test('a broken pair does not replace a working certificate', async () => {
    const before = await servedFingerprint(server.port);
    writeFileSync(join(dir, 'cert.pem'), newCertificate(dir, 'third').cert); // the key does not match it
    assert.equal(await server.reloadTls(), false);
    await log.waitFor((r) => r.event === 'tls-reload-failed', 'the refusal');
    assert.equal(await servedFingerprint(server.port), before);
  });

  test('reload() applies changed limits; a configuration that does not validate changes nothing', async () => {
    install(dir, first);
    config({ max_connections_per_ip: 1 });
    assert.deepEqual(await server.reload(), ['limits', 'tls']);
    assert.equal(server.config.limits.max_connections_per_ip, 1);
    const held = await RawClient.connect(server.port);
    held.send(STREAM_OPEN());
    await held.element('features');
    const refused = await RawClient.connect(server.port);
    assert.equal(await refused.streamError(), 'policy-violation');
    held.close();
    writeFileSync(join(dir, 'shoal.yaml'), 'limits: { max_connections_per_ip: lots }\n');
    assert.deepEqual(await server.reload(), []);
    assert.equal(server.config.limits.max_connections_per_ip, 1, 'unchanged');
    await log.waitFor((r) => r.event === 'reload-failed', 'the refusal');
  });
});

describe('SIGHUP to shoal start', () => {
  test('reloads the certificate and the limits without dropping anyone', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-sighup-'));
    t.after(async () => {
      await dropTestServerStorage(dir);
      rmSync(dir, { recursive: true, force: true });
    });
    const first = newCertificate(dir, 'first');
    install(dir, first);
    const storage = await testServerStorage(dir);
    const write = (limits: Record<string, unknown>): void =>
      writeFileSync(join(dir, 'shoal.yaml'), stringify({ hosts: ['localhost'], c2s: { host: '127.0.0.1', port: 0 }, storage, tls: { cert: './cert.pem', key: './key.pem' }, limits }));
    write({});
    const child = spawnShoal(['start'], { cwd: dir });
    child.stdin.end();
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const logs: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        return;
      }
      for (const w of waiters.splice(0)) w();
    });
    const logged = async (event: string): Promise<Record<string, unknown>> => {
      await until(() => logs.some((l) => l.event === event), `the '${event}' log line`, 30_000);
      return logs.find((l) => l.event === event)!;
    };
    const port = (await logged('listen')).port as number;
    const open = await RawClient.connect(port);
    open.send(STREAM_OPEN());
    await open.element('features');

    const second = newCertificate(dir, 'second');
    install(dir, second);
    write({ max_connections_per_ip: 1 });
    child.kill('SIGHUP');
    // The certificate may be picked up by the file watcher just before the signal's reload: either way it is served.
    const reloaded = await logged('reloaded');
    assert.ok((reloaded.applied as string[]).includes('limits'), JSON.stringify(reloaded));
    // The open connection is still there; a second one from the same address is over the new cap.
    const refused = await RawClient.connect(port);
    assert.equal(await refused.streamError(), 'policy-violation');
    open.close();
    await until(async () => {
      try {
        return (await servedFingerprint(port)) === second.fingerprint;
      } catch {
        return false;
      }
    }, 'the new certificate on a new connection');
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
  });
});
