// Memory per idle, authenticated, bound STARTTLS connection, measured from inside
// the server process: `node --import tsx bench/memory/run.ts [--clients N]
// [--mode shoal|floor|floor-login|both] [--snapshot] [--concurrency C]
// [--release-buffers] [--malloc LIB] [--trim]`.
//
// The server runs as a child (bench/memory/server.ts) under `node --expose-gc`.
// It is measured after forced GCs with 0 connections, then with N clients that
// have done the full login of bench:compare (STARTTLS, SCRAM-SHA-1, bind,
// session, roster get, initial presence, ping). The difference divided by N is
// reported for RSS, V8 heap, external memory and ArrayBuffers. With --snapshot,
// heap snapshots at both points are diffed by constructor (self sizes per
// connection). `floor` runs a bare Node TLS server (same certificate, same
// in-place upgrade of a net socket) holding N idle TLS connections: the part
// of the per-connection cost that Node and OpenSSL take before any XMPP code.
// `floor-login` is the floor with the traffic of a login instead of one record
// each way: 9 round trips of a 300-byte request and a 900-byte answer in as many
// records, as the XMPP login has (the bytes, not the XML). `--release-buffers`
// sets SSL_MODE_RELEASE_BUFFERS on the server's TLS contexts, `--malloc` preloads
// another malloc in the server (jemalloc), `--trim` also measures RSS after
// glibc's malloc_trim (both through the addon in release-buffers/).
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { LoadClient } from '../load/client.js';
import { ScramCache, keysFromSaltedPassword, saltedPassword } from '../load/scram.js';
import { perConnection, summarize } from './heap.js';
import { ANSWER_BYTES, ITERATIONS, PASSWORD, SALT, type Measurement, type Reply, type Request } from './shared.js';

type Mode = 'shoal' | 'floor' | 'floor-login';

interface Args {
  clients: number;
  concurrency: number;
  modes: Mode[];
  snapshot: boolean;
  /** Keep the snapshot files (for a closer look in DevTools). */
  keep: boolean;
  nodeFlags: string[];
  /** SSL_MODE_RELEASE_BUFFERS on the server's TLS contexts (release-buffers/, an addon built from source). */
  releaseBuffers: boolean;
  /** A malloc to preload in the server process (LD_PRELOAD), e.g. jemalloc's libjemalloc.so.2. */
  malloc: string | undefined;
  /** Also measure RSS after glibc's malloc_trim (memory malloc holds free vs memory in use). */
  trim: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { clients: 2000, concurrency: 200, modes: ['shoal', 'floor'], snapshot: false, keep: false, nodeFlags: [], releaseBuffers: false, malloc: undefined, trim: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--clients') a.clients = Number(argv[++i]);
    else if (v === '--concurrency') a.concurrency = Number(argv[++i]);
    else if (v === '--mode') {
      const m = argv[++i];
      a.modes = m === 'both' ? ['shoal', 'floor'] : [m as Mode];
    } else if (v === '--snapshot') a.snapshot = true;
    else if (v === '--keep') a.keep = a.snapshot = true;
    else if (v === '--node-flag') a.nodeFlags.push(argv[++i]!);
    else if (v === '--release-buffers') a.releaseBuffers = true;
    else if (v === '--malloc') a.malloc = argv[++i];
    else if (v === '--trim') a.trim = true;
    else throw new Error(`unknown argument ${v}`);
  }
  return a;
}

class Child {
  private readonly proc: ChildProcess;
  private waiting: ((r: Reply) => void) | undefined;
  readonly ready: Promise<number>;

  constructor(mode: string, clients: number, args: Args) {
    const script = fileURLToPath(new URL('./server.ts', import.meta.url));
    const flags = ['--expose-gc', ...args.nodeFlags, '--import', 'tsx'];
    if ((args.releaseBuffers || args.trim) && !existsSync(ADDON)) {
      throw new Error('build the addon first: cd bench/memory/release-buffers && node-gyp rebuild (see bench/memory/README.md)');
    }
    if (args.releaseBuffers) {
      flags.push('--import', fileURLToPath(new URL('./release-buffers/preload.ts', import.meta.url)));
    }
    const env = args.malloc ? { ...process.env, LD_PRELOAD: args.malloc } : process.env;
    this.proc = fork(script, [mode, String(clients), ...(args.trim ? ['trim'] : [])], { execArgv: flags, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.waiting = (r) => (r.kind === 'ready' ? resolve(r.port) : reject(new Error(JSON.stringify(r))));
      this.proc.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    this.proc.on('message', (r: Reply) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(r);
    });
  }

  request(req: Request): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.waiting = (r) => (r.kind === 'error' ? reject(new Error(r.message)) : resolve(r));
      this.proc.send(req);
    });
  }

  async measure(): Promise<Measurement> {
    const r = await this.request({ cmd: 'measure' });
    if (r.kind !== 'measured') throw new Error(`unexpected ${r.kind}`);
    return r.m;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.proc.once('exit', () => resolve());
      this.proc.send({ cmd: 'stop' } satisfies Request);
    });
  }
}

interface Holder {
  open(i: number): Promise<void>;
  closeAll(): void;
}

/** Full XMPP logins through the load generator's client. */
async function xmppHolder(port: number): Promise<Holder> {
  const cache = new ScramCache();
  cache.set(PASSWORD, SALT, ITERATIONS, keysFromSaltedPassword(await saltedPassword(PASSWORD, SALT, ITERATIONS)));
  const secureContext = tls.createSecureContext({});
  const clients: LoadClient[] = [];
  return {
    async open(i) {
      const c = new LoadClient(
        { host: '127.0.0.1', port, domain: 'localhost', user: `user${i + 1}`, password: PASSWORD, cache, secureContext, verify: false, stepTimeoutMs: 300_000 },
        { message: () => undefined },
      );
      clients.push(c);
      await c.login();
      if (c.problem) throw new Error(c.problem);
    },
    closeAll() {
      for (const c of clients) c.destroy();
    },
  };
}

/** The request and answer sizes of a login's round trips after TLS (floor-login), in bytes. */
const LOGIN_ROUND_TRIPS = 9;
const REQUEST = 'q'.repeat(300);

/** Bare TLS connections that do nothing once the handshake is over (or, `login`, a login's traffic first). */
function tlsHolder(port: number, login: boolean): Holder {
  const secureContext = tls.createSecureContext({});
  const sockets: tls.TLSSocket[] = [];
  return {
    open() {
      return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext, rejectUnauthorized: false });
        sockets.push(s);
        s.once('secureConnect', () => {
          if (!login) {
            // One application record each way, as an XMPP session has had.
            s.write('x');
            resolve();
            return;
          }
          let trips = 0;
          let got = 0;
          s.on('data', (d: Buffer) => {
            got += d.length;
            if (got < ANSWER_BYTES) return;
            got = 0;
            if (++trips === LOGIN_ROUND_TRIPS) resolve();
            else s.write(REQUEST);
          });
          s.write(REQUEST);
        });
        s.once('error', reject);
      });
    },
    closeAll() {
      for (const s of sockets) s.destroy();
    },
  };
}

const ADDON = fileURLToPath(new URL('./release-buffers/build/Release/release_buffers.node', import.meta.url));

const kib = (bytes: number): string => (bytes / 1024).toFixed(1);

async function runMode(mode: Mode, args: Args): Promise<Record<string, number>> {
  const child = new Child(mode, args.clients, args);
  const port = await child.ready;
  const holder = mode === 'shoal' ? await xmppHolder(port) : tlsHolder(port, mode === 'floor-login');
  // Warm-up: one login first so that lazily loaded code and caches are in the baseline.
  await holder.open(args.clients);
  const snapA = join(tmpdir(), `shoal-mem-${mode}-${process.pid}-a.heapsnapshot`);
  const snapB = join(tmpdir(), `shoal-mem-${mode}-${process.pid}-b.heapsnapshot`);
  const before = await child.measure();
  if (args.snapshot) await child.request({ cmd: 'snapshot', file: snapA });
  // CPU from here: the logins, and the 3 s of settling (idle connections cost next to nothing).
  const cpuFrom = (await child.measure()).cpuMicros;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: args.concurrency }, async () => {
      while (next < args.clients) await holder.open(next++);
    }),
  );
  const loginS = (performance.now() - t0) / 1000;
  // Let TLS session tickets, pings and write buffers settle as in bench:compare's idle scenario.
  await new Promise((r) => setTimeout(r, 3000));
  const after = await child.measure();
  const n = after.connections - before.connections;
  const per = (k: keyof Measurement): number => (after[k] - before[k]) / n;
  const row = { rss: per('rss'), rssTrimmed: per('rssTrimmed'), heapUsed: per('heapUsed'), heapTotal: per('heapTotal'), external: per('external'), arrayBuffers: per('arrayBuffers') };
  console.log(
    `${mode}: ${n} connections (${(args.clients / loginS).toFixed(0)} logins/s) per connection: ` +
      `RSS ${kib(row.rss)} KiB${args.trim ? ` (${kib(row.rssTrimmed)} KiB after malloc_trim)` : ''}, heapUsed ${kib(row.heapUsed)} KiB, heapTotal ${kib(row.heapTotal)} KiB, ` +
      `external ${kib(row.external)} KiB, arrayBuffers ${kib(row.arrayBuffers)} KiB ` +
      `(RSS ${(before.rss / 1048576).toFixed(1)} -> ${(after.rss / 1048576).toFixed(1)} MiB); ` +
      `server CPU per login ${((after.cpuMicros - cpuFrom) / n / 1000).toFixed(2)} ms`,
  );
  if (args.snapshot) {
    await child.request({ cmd: 'snapshot', file: snapB });
    const rows = perConnection(summarize(snapA), summarize(snapB), n);
    const total = rows.reduce((s, r) => s + r.size, 0);
    console.log(`  heap growth per connection by constructor (self sizes, total ${total.toFixed(0)} B):`);
    for (const r of rows.slice(0, 40)) console.log(`  ${r.size.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(6)}x  ${r.key}`);
    if (args.keep) console.log(`  snapshots kept: ${snapA} ${snapB}`);
    else {
      rmSync(snapA, { force: true });
      rmSync(snapB, { force: true });
    }
  }
  holder.closeAll();
  await child.stop();
  return row;
}

const args = parseArgs(process.argv.slice(2));
for (const mode of args.modes) await runMode(mode, args);
