// `node --import tsx bench/login/tls-floor.ts`: what a bare Node TLS server spends per
// connection, before any XMPP: accept, the TLS handshake (the same ECDSA P-256 certificate
// as bench:compare), one small record out, close. That is the floor under every login a
// Node server handles; the server's CPU (user + system, all threads, and the main thread
// alone) is divided by the connections. The client runs in its own process (pinned to the
// other core when there is one, the server on the first), so its work is not counted.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, createSecureContext } from 'node:tls';
import { parseArgs } from 'node:util';
import { int, parseOrUsage } from '../shared/cli.js';
import { makeCertificate } from '../shared/system.js';
import { statCpuSeconds } from '../load/proc.js';

const USAGE = `Usage: node --import tsx bench/login/tls-floor.ts [--connections N] [--concurrency C] [--warmup W]

  --connections N  measured TLS connections (default 10000)
  --concurrency C  connections in flight at once (default 10)
  --warmup W       connections made first, unmeasured (default 2000)

Prints the server's CPU per connection. Run with LD_PRELOAD=... to try another malloc.
`;

interface Options {
  connections: number;
  concurrency: number;
  warmup: number;
}

function parse(argv: string[]): Options | undefined {
  const { values } = parseArgs({ args: argv, options: { connections: { type: 'string' }, concurrency: { type: 'string' }, warmup: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help === true) return undefined;
  return { connections: int(values.connections, 'connections', 10_000), concurrency: Math.max(1, int(values.concurrency, 'concurrency', 10)), warmup: int(values.warmup, 'warmup', 2_000) };
}

/** The client process: `count` connections, `concurrency` at a time, each read to its end. */
function client(port: number, count: number, concurrency: number): void {
  const context = createSecureContext();
  let started = 0;
  let finished = 0;
  const next = (): void => {
    if (started >= count) return;
    started++;
    const socket = connect({ port, host: '127.0.0.1', secureContext: context, rejectUnauthorized: false });
    socket.on('data', () => undefined);
    socket.on('error', (err) => {
      process.stderr.write(`tls-floor client: ${err.message}\n`);
      process.exit(1);
    });
    socket.on('end', () => {
      socket.destroy();
      if (++finished === count) process.exit(0);
      next();
    });
  };
  for (let i = 0; i < concurrency; i++) next();
}

/** Whether the server and the client can each have a core of their own (taskset, two cores or more). */
const pinned = availableParallelism() > 1 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

function runClient(port: number, count: number, concurrency: number): Promise<void> {
  const argv = [...process.execArgv, new URL(import.meta.url).pathname, 'client', String(port), String(count), String(concurrency)];
  // The client on core 1, as bench:compare pins its generator away from the server (core 0).
  const child = pinned ? spawn('taskset', ['-c', '1', process.execPath, ...argv], { stdio: 'inherit' }) : spawn(process.execPath, argv, { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited with ${code}`))));
  });
}

async function main(opts: Options): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-tls-floor-'));
  try {
    const files = makeCertificate(dir);
    const server = createServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (socket) => {
      socket.on('error', () => undefined);
      socket.end('<proceed/>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    if (pinned) spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });
    if (opts.warmup > 0) await runClient(port, opts.warmup, opts.concurrency);
    const before = process.cpuUsage();
    const mainBefore = statCpuSeconds('/proc/thread-self/stat');
    const started = performance.now();
    await runClient(port, opts.connections, opts.concurrency);
    const wall = (performance.now() - started) / 1000;
    const used = process.cpuUsage(before);
    const mainUsed = statCpuSeconds('/proc/thread-self/stat') - mainBefore;
    server.close();
    const per = (us: number): string => `${(us / opts.connections).toFixed(0)} µs`;
    process.stdout.write(
      `${opts.connections} TLS connections (${opts.concurrency} at a time, after ${opts.warmup} unmeasured) in ${wall.toFixed(1)} s\n` +
        `server CPU per connection: ${per(used.user + used.system)} (user ${per(used.user)}, system ${per(used.system)}); main thread ${per(mainUsed * 1e6)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'client') {
  client(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else {
  const opts = parseOrUsage(parse, USAGE);
  if (typeof opts === 'number') process.exit(opts);
  main(opts).catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
