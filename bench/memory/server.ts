// The measured process of bench/memory/run.ts, started as a child with
// `node --expose-gc --import tsx` and driven over IPC. Two modes:
// - `shoal`: a real XmppServer (STARTTLS required, SCRAM-SHA-1, logs at warn,
//   SQLite), with user1..N provisioned sharing one credential so that neither
//   side spends time on PBKDF2 beyond a single derivation;
// - `floor`: a bare Node TLS server holding the same number of idle sockets,
//   upgraded in place the way TcpTransport does it (net socket wrapped by a
//   TLSSocket), i.e. what any Node server pays per TLS connection at least.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import { writeHeapSnapshot } from 'node:v8';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { XmppServer } from '../../src/server.js';
import { createLogger } from '../../src/log/logger.js';
import { deriveScramCredentials } from '../../src/sasl/credentials.js';
import { loadOrCreateTlsMaterial } from '../../src/config/tls.js';
import type { Config } from '../../src/config/schema.js';

import { ANSWER_BYTES, ITERATIONS, PASSWORD, SALT, type Measurement, type Reply, type Request } from './shared.js';

const mode = process.argv[2] ?? 'shoal';
const users = Number(process.argv[3] ?? '2000');
/** With 'trim': RSS is also measured after glibc's malloc_trim (the addon in release-buffers/). */
const mallocTrim =
  process.argv[4] === 'trim' ? (createRequire(import.meta.url)('./release-buffers/build/Release/release_buffers.node') as { mallocTrim(): number }).mallocTrim : undefined;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const dir = mkdtempSync(join(tmpdir(), 'shoal-mem-'));
const ANSWER = 'a'.repeat(ANSWER_BYTES);
let stop: () => Promise<void>;
let count: () => number;

function send(r: Reply): void {
  process.send!(r);
}

function writeConfig(): Config {
  const file = join(dir, 'shoal.yaml');
  writeFileSync(
    file,
    stringify({
      hosts: ['localhost'],
      c2s: { host: '127.0.0.1', port: 0 },
      data_dir: join(dir, 'data'),
      storage: { driver: 'sqlite', path: join(dir, 'data', 'shoal.sqlite') },
      tls: {},
      sasl: { mechanisms: ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'PLAIN'] },
      // Every client connects from 127.0.0.1.
      limits: { max_connections_per_ip: 0 },
      // What is measured is memory, not speed: on a loaded machine a login may wait its turn for long.
      timeouts: { pre_auth: 600 },
      log: { level: 'warn', format: 'json' },
    }),
  );
  return loadConfig({ file });
}

// As in production: a real pino logger at warn, writing to stderr.
const log = createLogger({ level: 'warn', format: 'json', destination: 2 });

async function startShoal(): Promise<number> {
  const config = writeConfig();
  const server = await XmppServer.create({ config, log });
  const cred = deriveScramCredentials(PASSWORD, 'SHA-1', { salt: SALT, iterations: ITERATIONS });
  // One more than measured: the warm-up login's account.
  for (let i = 1; i <= users + 1; i++) await server.storage.accounts.create('localhost', `user${i}`, [cred]);
  await server.listen();
  stop = () => server.stop();
  count = () => server.connectionCount;
  return server.port;
}

async function startFloor(): Promise<number> {
  const config = writeConfig();
  const material = await loadOrCreateTlsMaterial(config.tls!, config.data_dir, config.hosts, log);
  // The same context options as Shoal's (src/server.ts makeTlsSettings).
  const context = createSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
  const sockets = new Set<TLSSocket>();
  const server = net.createServer((raw) => {
    raw.setNoDelay(true);
    const s = new TLSSocket(raw, { isServer: true, secureContext: context });
    sockets.add(s);
    // floor-login: each request gets a login step's answer (features, challenge, roster...).
    s.on('data', mode === 'floor-login' ? () => s.write(ANSWER) : () => undefined);
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  count = () => sockets.size;
  return (server.address() as net.AddressInfo).port;
}

function measure(): Measurement {
  const cpu = process.cpuUsage();
  // Several passes: weak maps, finalizers and the old generation settle over more than one.
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  mallocTrim?.();
  const rssTrimmed = mallocTrim ? process.memoryUsage.rss() : m.rss;
  return { rss: m.rss, rssTrimmed, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, connections: count(), cpuMicros: cpu.user + cpu.system };
}

// The parent died or is done: do not linger.
process.on('disconnect', () => process.exit(0));

process.on('message', (req: Request) => {
  void (async () => {
    try {
      if (req.cmd === 'measure') send({ kind: 'measured', m: measure() });
      else if (req.cmd === 'snapshot') {
        for (let i = 0; i < 2; i++) gc!();
        send({ kind: 'snapshot', file: writeHeapSnapshot(req.file) });
      } else {
        await stop();
        rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      }
    } catch (err) {
      send({ kind: 'error', message: (err as Error).stack ?? String(err) });
    }
  })();
});

const port = mode === 'shoal' ? await startShoal() : await startFloor();
send({ kind: 'ready', port });
