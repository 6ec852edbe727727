// The soak's programmatic API: runSoak() provisions accounts and rosters, starts
// Shoal in a child process (bench/soak/server.ts) that samples itself, ramps
// every account in, runs the traffic for the duration, then settles, logs
// everyone out, logs everyone in once more to drain offline storage, and
// reports what was lost, duplicated and how memory, event-loop lag and CPU went.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { makeBenchData, scramCacheFor } from '../compare/accounts.js';
import { provisionShoal } from '../compare/provision.js';
import { repoRoot, shoalConfig } from '../compare/servers.js';
import { has, machine, makeCertificate } from '../shared/system.js';
import { machineBusySeconds } from '../load/proc.js';
import { sleep } from '../load/run.js';
import { SoakGenerator, type AccountSpec, type TrafficPlan } from './generator.js';
import type { ServerSample, SoakCommand, SoakReply, SoakRequest } from './protocol.js';
import { analyze, chart, markdown, type GcPoint, type HeapDiff, type Markers, type Point, type SoakReport } from './results.js';
import { perConnection, summarize } from '../memory/heap.js';

export interface SoakOptions {
  connections: number;
  /** Contacts per account (subscription both), neighbours on a ring: i±1, i±2, ... */
  contacts: number;
  /** Traffic time in all, warm-up included, s. */
  durationS: number;
  /** The first part of the traffic time, not judged, s. */
  warmupS: number;
  traffic: TrafficPlan;
  loginRate: number;
  loginConcurrency: number;
  /** The server samples itself this often, ms. */
  sampleMs: number;
  /** A progress line this often, ms. */
  progressMs: number;
  stepTimeoutMs: number;
  ackTimeoutMs: number;
  quiesceTimeoutMs: number;
  /** After the traffic: bound on waiting for cycles and in-flight messages, ms. */
  settleMs: number;
  /** The drain ends when nothing outstanding has arrived for this long, ms. */
  stallMs: number;
  /**
   * Wait after the last logout before the final forced-GC sample, ms: past the grace period a
   * closed connection's socket is kept for (TcpTransport.end() waits 5 s for a peer that never
   * closes its side), so that the figure shows what stays for good.
   */
  lingerMs: number;
  /** Server on CPU 0, this process on CPU 1 (taskset), on a machine with two cores or more. */
  pin: boolean;
  /** Where RESULTS.md and RESULTS.png go; none written without. */
  outDir?: string;
  /** The command line shown in RESULTS.md. */
  cmdline?: string;
  /** Keep the temp dir (config, database, server log). */
  keep: boolean;
  /**
   * A heap snapshot of the server at each forced-GC point, diffed by constructor at the end
   * (bench/memory/heap.ts): what the soak left behind. Snapshots of a large heap are slow and
   * big (V8 cannot read one much over 500 MB back as a string): a few thousand connections.
   */
  heapSnapshots: boolean;
  /** Extra Node.js flags for the server process (e.g. --trace-gc, --cpu-prof). */
  serverFlags: string[];
  /** Extra environment for the server process (e.g. LD_PRELOAD of another malloc, MALLOC_ARENA_MAX). */
  serverEnv: Record<string, string>;
  progress: (line: string) => void;
}

export const DEFAULTS: SoakOptions = {
  connections: 10_000,
  contacts: 4,
  durationS: 600,
  warmupS: 120,
  traffic: { msgRate: 200, presenceRate: 50, dropRate: 4, logoutRate: 1, offlinePauseMs: [2000, 10_000] },
  loginRate: 200,
  loginConcurrency: 100,
  sampleMs: 2000,
  progressMs: 10_000,
  stepTimeoutMs: 60_000,
  ackTimeoutMs: 60_000,
  quiesceTimeoutMs: 10_000,
  settleMs: 60_000,
  stallMs: 30_000,
  lingerMs: 6000,
  pin: true,
  keep: false,
  heapSnapshots: false,
  serverFlags: [],
  serverEnv: {},
  progress: (line) => void process.stderr.write(`[soak] ${line}\n`),
};

/** Symmetric contact lists: account i's contacts are i±1 .. i±k/2 around a ring. */
export function ringContacts(n: number, contacts: number): number[][] {
  const half = Math.ceil(Math.min(contacts, n - 1) / 2);
  return Array.from({ length: n }, (_, i) => {
    const set = new Set<number>();
    for (let d = 1; d <= half; d++) {
      set.add((i + d) % n);
      set.add((i - d + n) % n);
    }
    set.delete(i);
    return [...set];
  });
}

/** The server child: periodic samples in, requests out, answers matched by id. */
class ServerChild {
  readonly proc: ChildProcess;
  readonly ready: Promise<number>;
  private readonly waiting = new Map<number, { resolve: (r: SoakReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  exited: string | undefined;

  constructor(configFile: string, sampleMs: number, logFd: number, flags: string[], env: Record<string, string>, onSample: (s: ServerSample) => void) {
    const script = fileURLToPath(new URL('./server.ts', import.meta.url));
    this.proc = fork(script, [configFile, String(sampleMs)], { cwd: repoRoot, execArgv: ['--expose-gc', ...flags, '--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', logFd, logFd, 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.proc.on('message', (r: SoakReply) => {
        if (r.kind === 'ready') resolve(r.port);
        else if (r.kind === 'sample') onSample(r.sample);
        else {
          const w = this.waiting.get(r.id);
          this.waiting.delete(r.id);
          if (r.kind === 'error') w?.reject(new Error(`server: ${r.message}`));
          else w?.resolve(r);
        }
      });
      this.proc.once('exit', (code, signal) => {
        this.exited = `the server process exited (${code ?? signal})`;
        reject(new Error(this.exited));
        for (const w of this.waiting.values()) w.reject(new Error(this.exited));
        this.waiting.clear();
      });
    });
  }

  request<K extends SoakReply['kind']>(req: SoakCommand, kind: K): Promise<Extract<SoakReply, { kind: K }>> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: (r) => (r.kind === kind ? resolve(r as Extract<SoakReply, { kind: K }>) : reject(new Error(`expected ${kind}, got ${r.kind}`))), reject });
      this.proc.send({ ...req, id } as SoakRequest);
    });
  }

  /** Asks the server to stop; SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.request({ cmd: 'stop' }, 'stopped').catch(() => undefined);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Seconds after the warm-up's forced GC before the judged window begins. */
const RECOVERY_S = 20;

/** The server's timeouts.ping_after in the soak (the default is 300). */
const PING_AFTER_S = 60;

/** pino's JSON lines at warn (40) or above, counted, with the first few kept. */
function readServerLog(file: string): SoakReport['serverLog'] {
  let warnings = 0;
  let errors = 0;
  const examples: string[] = [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { warnings, errors, examples };
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 60); // not JSON: a crash trace, counted as an error
    if (level < 40) continue;
    if (level >= 50) errors++;
    else warnings++;
    if (examples.length < 10) examples.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
  }
  return { warnings, errors, examples };
}

function pin(pid: number, cpu: number): boolean {
  try {
    // -a: every thread of the process (V8's and libuv's workers too); threads started later inherit it.
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o: SoakOptions = { ...DEFAULTS, ...options, traffic: { ...DEFAULTS.traffic, ...options.traffic } };
  const say = o.progress;
  const startedAt = new Date().toISOString();
  const setupStart = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'shoal-soak-'));
  const logFile = join(dir, 'server.log');
  const logFd = openSync(logFile, 'a');
  let server: ServerChild | undefined;
  let gen: SoakGenerator | undefined;
  const notes: string[] = [];
  // A run ended by a signal (the CLI exits on SIGINT and SIGTERM) still leaves nothing behind.
  const onExit = (): void => {
    server?.proc.kill('SIGKILL');
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    // --- Accounts and rosters, written before the server starts ---
    say(`deriving SCRAM-SHA-1 credentials for ${o.connections} accounts (4096 iterations)`);
    const data = await makeBenchData('localhost', { plainUsers: o.connections, rosterUsers: 0, contactsPerUser: 0 });
    const ring = ringContacts(o.connections, o.contacts);
    const specs: AccountSpec[] = data.accounts.map((a, i) => ({ user: a.user, password: a.password, contacts: ring[i]! }));
    for (const s of specs) data.rosters.set(s.user, s.contacts.map((c) => specs[c]!.user));
    const cfg = shoalConfig(dir, 0, makeCertificate(dir));
    // A soak from one address must not trip what protects a real server from one address, and
    // offline storage must take whatever the soak leaves there (all its senders are contacts).
    cfg.sasl.rate_limit = { enabled: false };
    cfg.offline = { max_per_user: 100_000, max_bytes_per_user: 100 * 1024 * 1024 };
    // The server's idle ping (XEP-0199) every minute instead of every five: it is exercised
    // several times per connection, and its timers reach their steady state (Node keeps a list
    // per distinct delay, and each re-armed idle timer has its own) within the warm-up.
    cfg.timeouts = { ping_after: PING_AFTER_S };
    const configFile = join(dir, 'shoal.yaml');
    writeFileSync(configFile, stringify(cfg));
    say(`writing ${data.accounts.length} accounts and ${specs.reduce((n, s) => n + s.contacts.length, 0)} roster items`);
    await provisionShoal(data, join(dir, 'data', 'shoal.sqlite'));

    // --- The server, sampling itself ---
    const points: Point[] = [];
    let t0Wall = Date.now();
    let genCpu = process.cpuUsage();
    let genAt = performance.now();
    let busyMark = machineBusySeconds().busy;
    const cores = cpus().length;
    server = new ServerChild(configFile, o.sampleMs, logFd, o.serverFlags, o.serverEnv, (s) => {
      const now = performance.now();
      const used = process.cpuUsage(genCpu);
      const genCpuPercent = ((used.user + used.system) / 1000 / Math.max(1, now - genAt)) * 100;
      const busy = machineBusySeconds().busy;
      const machineCpuPercent = ((busy - busyMark) / cores / (Math.max(1, now - genAt) / 1000)) * 100;
      busyMark = busy;
      genCpu = process.cpuUsage();
      genAt = now;
      const c = gen?.counts;
      points.push({ ...s, t: (s.at - t0Wall) / 1000, delivered: c ? c.deliveredLive + c.deliveredOffline : 0, genCpuPercent, machineCpuPercent });
    });
    const port = await server.ready;
    const pinned = o.pin && cpus().length >= 2 && has('taskset') && pin(server.proc.pid!, 0) && pin(process.pid, 1);
    say(`server pid ${server.proc.pid} on port ${port}${pinned ? ' (server on CPU 0, generator on CPU 1)' : ''}`);
    gen = new SoakGenerator(
      {
        host: '127.0.0.1',
        port,
        domain: 'localhost',
        loginRate: o.loginRate,
        loginConcurrency: o.loginConcurrency,
        stepTimeoutMs: o.stepTimeoutMs,
        ackTimeoutMs: o.ackTimeoutMs,
        quiesceTimeoutMs: o.quiesceTimeoutMs,
        cache: scramCacheFor(data),
      },
      specs,
    );
    const g = gen;
    const srv = server;
    const snapshotFile = (label: string): string => join(dir, `${label.replace(/\W+/g, '-')}.heapsnapshot`);
    const gcPoints: GcPoint[] = [];
    const forceGc = async (label: string): Promise<void> => {
      const r = await srv.request({ cmd: 'gc' }, 'gc');
      gcPoints.push({ label, t: (r.sample.at - t0Wall) / 1000, sample: r.sample, gcMs: r.gcMs });
      if (o.heapSnapshots) await srv.request({ cmd: 'snapshot', file: snapshotFile(label) }, 'snapshot');
      say(`${label}: after forced GC RSS ${(r.sample.rss / 1048576).toFixed(1)} MB, heap ${(r.sample.heapUsed / 1048576).toFixed(1)} MB, ${r.sample.connections} connections (GC ${r.gcMs.toFixed(0)} ms)`);
    };
    await forceGc('baseline');
    const setupS = (performance.now() - setupStart) / 1000;

    // --- Progress ---
    let phase = 'ramp';
    const t0 = performance.now();
    g.epoch = t0;
    t0Wall = Date.now();
    for (const p of points) p.t = (p.at - t0Wall) / 1000;
    const genLag = monitorEventLoopDelay({ resolution: 20 });
    genLag.enable();
    const progress = setInterval(() => {
      const c = g.counts;
      const p = points[points.length - 1];
      const server = p ? `server: RSS ${(p.rss / 1048576).toFixed(0)} MB, heap ${(p.heapUsed / 1048576).toFixed(0)} MB, lag p99 ${p.lagP99Ms.toFixed(1)} ms max ${p.lagMaxMs.toFixed(0)} ms, CPU ${p.cpuPercent.toFixed(0)}%, ${p.connections} conns` : 'server: no sample yet';
      say(
        `${((performance.now() - t0) / 1000).toFixed(0)}s ${phase}: ${g.online} online; msgs ${c.sent} sent, ${c.acked} acked, ${c.deliveredLive}+${c.deliveredOffline} delivered (live+offline), ${g.pending} outstanding, ${c.duplicates} dup; ` +
          `${c.logins} logins (${c.loginFailures} failed), ${c.drops} drops, ${c.logouts} logouts, ${c.unexpectedCloses} unexpected closes; ${server}; generator CPU ${p?.genCpuPercent.toFixed(0) ?? '?'}%, lag p99 ${Math.max(0, genLag.percentile(99) / 1e6 - 20).toFixed(0)} ms`,
      );
      genLag.reset();
    }, o.progressMs);
    const since = (): number => (performance.now() - t0) / 1000;
    try {
      // --- Ramp ---
      say(`ramp: ${o.connections} logins at ${o.loginRate}/s, ${o.loginConcurrency} at once at most`);
      await g.loginAll();
      const rampEnd = since();
      if (g.online < o.connections) notes.push(`${o.connections - g.online} accounts were not online at the end of the ramp (see login failures)`);
      say(`ramp done: ${g.online}/${o.connections} online in ${rampEnd.toFixed(1)} s`);

      // --- Traffic; the warm-up's end is marked by a forced GC while traffic goes on ---
      phase = 'warm-up';
      let warmupEnd = rampEnd + o.warmupS;
      let judgedFrom = warmupEnd;
      const warm = sleep(o.warmupS * 1000).then(async () => {
        phase = 'soak';
        warmupEnd = since();
        await forceGc('warm-up end');
        // The forced GC stops the server for a second or more and the traffic piles up meanwhile:
        // the backlog it leaves is the measurement's doing, not the soak's, and is not judged.
        judgedFrom = since() + Math.min(RECOVERY_S, (o.durationS - o.warmupS) / 4);
      });
      await g.traffic(o.traffic, o.durationS);
      await warm;
      const soakEnd = since();

      // --- Settle, log out, drain ---
      phase = 'settle';
      say('traffic stopped: waiting for reconnects and in-flight messages');
      await g.settle(o.settleMs);
      await forceGc('soak end');
      phase = 'logout';
      await g.logoutAll();
      phase = 'drain';
      const drainStart = since();
      say('drain: every account logs in once more for its offline messages');
      await g.loginAll();
      await g.awaitDelivery(o.stallMs);
      const drainEnd = since();
      const offlineLeft = (await srv.request({ cmd: 'offline-count', users: g.usernames() }, 'offline-count')).stored;
      phase = 'end';
      await g.logoutAll();
      await sleep(o.lingerMs);
      await forceGc('after drain');
      const markers: Markers = { rampEnd, warmupEnd, judgedFrom, soakEnd, drainStart, drainEnd };
      const report: SoakReport = {
        startedAt,
        params: {
          connections: o.connections,
          'contacts per account': Math.min(o.contacts, o.connections - 1),
          'duration (s, warm-up included)': o.durationS,
          'warm-up (s)': o.warmupS,
          'messages/s': o.traffic.msgRate,
          'presence changes/s': o.traffic.presenceRate,
          'drops/s': o.traffic.dropRate,
          'clean logouts/s': o.traffic.logoutRate,
          'offline pause after a drop or logout (s)': `${o.traffic.offlinePauseMs[0] / 1000}–${o.traffic.offlinePauseMs[1] / 1000}`,
          'login rate (/s) and concurrency': `${o.loginRate}, ${o.loginConcurrency}`,
          transport: `STARTTLS required (${g.tls || 'not negotiated'}), an ECDSA P-256 certificate`,
          storage: 'SQLite (WAL) in a temp dir',
          'server idle ping (timeouts.ping_after, s)': PING_AFTER_S,
          'sample interval (s)': o.sampleMs / 1000,
          pinning: pinned ? 'server on CPU 0, generator on CPU 1 (taskset)' : 'none',
        },
        markers,
        setupS,
        totalS: (performance.now() - setupStart) / 1000,
        generator: g.report([t0, t0 + rampEnd * 1000], [t0 + judgedFrom * 1000, t0 + soakEnd * 1000], [t0 + drainStart * 1000, t0 + drainEnd * 1000]),
        offlineLeft,
        gcPoints,
        analysis: analyze(points, markers),
        points,
        serverLog: { warnings: 0, errors: 0, examples: [] },
        heapDiffs: [],
        notes,
      };
      await srv.stop();
      report.serverLog = readServerLog(logFile);
      if (o.heapSnapshots) {
        const diff = (from: string, to: string, per: number, what: string): HeapDiff => {
          const rows = perConnection(summarize(snapshotFile(from)), summarize(snapshotFile(to)), per);
          return { title: `${from} → ${to}, ${what}`, rows: rows.slice(0, 25) };
        };
        say('diffing heap snapshots');
        report.heapDiffs.push(diff('warm-up end', 'soak end', 1, 'bytes and objects in all'));
        report.heapDiffs.push(diff('baseline', 'after drain', o.connections, 'per account (everyone has logged out)'));
        for (const d of report.heapDiffs) {
          say(`heap growth ${d.title}:`);
          for (const r of d.rows.slice(0, 12)) say(`  ${r.size.toFixed(0).padStart(9)} B ${r.count.toFixed(2).padStart(9)}x  ${r.key}`);
        }
      }
      if (o.outDir) {
        mkdirSync(o.outDir, { recursive: true });
        const png = join(o.outDir, 'RESULTS.png');
        const drawn = has('gnuplot') && chart(report, png, dir);
        writeFileSync(join(o.outDir, 'RESULTS.md'), markdown(report, o.cmdline ?? 'npm run bench:soak', machine(), drawn ? 'RESULTS.png' : undefined));
        say(`wrote ${join(o.outDir, 'RESULTS.md')}${drawn ? ` and ${png}` : ' (no chart: gnuplot missing or failed)'}`);
      }
      return report;
    } finally {
      clearInterval(progress);
      genLag.disable();
    }
  } catch (err) {
    // A server that died takes its last words with it into the error.
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
    throw new Error(`${(err as Error).message}${server?.exited ? `\nserver log (last lines):\n${tail}` : ''}`, { cause: err });
  } finally {
    process.off('exit', onExit);
    gen?.destroyAll();
    await server?.stop(5000);
    closeSync(logFd);
    if (o.keep) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
