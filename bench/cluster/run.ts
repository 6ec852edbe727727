// The cluster benchmark (issue 14): for each cluster size (1, 2, 3 node
// processes by default, each `shoal start` as an operator runs it, sharing a
// fresh PostgreSQL database and a Redis namespace: test/support/cluster.ts),
//
//   1. logs N clients in (STARTTLS, SCRAM-SHA-1, bind, roster get, initial
//      presence: bench/load's client), spread over the nodes round-robin;
//   2. measures the cluster idle (heartbeats only) for the background rate of Redis;
//   3. exchanges chat messages between pairs whose two clients are on the same
//      node, then between pairs on different nodes: once with every pair busy
//      (closed loop, one message in flight per sender: throughput) and once
//      with a few pairs (light load: the latency of the path itself);
//   4. logs everyone out.
//
// Every phase is measured in messages (or logins) per second, latency, CPU of
// the node processes (/proc), and Redis: commands, CPU and bytes out of the
// server (INFO), less the background rate, per message or login.
import { createSecureContext } from 'node:tls';
import { startCluster, type TestCluster } from '../../test/support/cluster.js';
import { LoadClient, NS } from '../load/client.js';
import { ScramCache } from '../load/scram.js';
import { escapeXml, type XmlElement } from '../load/xml.js';
import { countFailure, pairsOf, percentiles, pool, sleep, stepMedians, until, type LoadReport, type Percentiles } from '../load/run.js';
import { sampleProcess } from '../load/proc.js';
import { RedisProbe, startRedis, type RedisDelta, type RedisSample } from './redis.js';

export interface ClusterBenchOptions {
  /** Cluster sizes to run, in node processes (default 1, 2, 3). */
  sizes: number[];
  /** Clients logged in, spread over the nodes round-robin. */
  clients: number;
  /** Logins in flight at once. */
  concurrency: number;
  /** Messages of each busy phase (same-node, cross-node), between all pairs. */
  messages: number;
  /** Pairs of each light phase, and its messages. */
  lightPairs: number;
  lightMessages: number;
  /** Messages between all pairs, same-node and cross-node, before measuring (not counted). */
  warmup: number;
  /** The idle window after login that gives the background rate of Redis. */
  idleMs: number;
  /** Bound on each login step, on each phase, and on a phase where nothing arrives. */
  stepTimeoutMs: number;
  phaseTimeoutMs: number;
  stallTimeoutMs: number;
  /**
   * The Redis the nodes share: a URL, or undefined for a redis-server of the benchmark's own
   * (nothing else counted in its INFO but the cluster and its heartbeats).
   */
  redis?: string;
  /** Heartbeats of the nodes (the cluster section's defaults are 1000 and 5000). */
  heartbeatMs: number;
  deadAfterMs: number;
  progress?: (line: string) => void;
}

export const DEFAULTS: Omit<ClusterBenchOptions, 'progress'> = {
  sizes: [1, 2, 3],
  clients: 1000,
  concurrency: 100,
  messages: 20_000,
  lightPairs: 10,
  lightMessages: 2_000,
  warmup: 2_000,
  idleMs: 3_000,
  stepTimeoutMs: 30_000,
  phaseTimeoutMs: 300_000,
  stallTimeoutMs: 30_000,
  heartbeatMs: 1000,
  // Longer than the default 5 s: a loaded 2-core machine must not declare a busy node dead.
  deadAfterMs: 15_000,
};

/** Redis figures of one phase: raw, and less the background rate over the phase's duration. */
export interface RedisFigures {
  raw: RedisDelta;
  /** Commands less the background, and per unit (message, login, logout). */
  commands: number;
  commandsPerUnit: number;
  /** Redis CPU microseconds per unit: the phase's, times the share of its commands that were not the background's. */
  cpuUsPerUnit: number;
  /** Bytes Redis sent (replies and pub/sub deliveries) per unit, less the background. */
  netOutPerUnit: number;
  /** Calls per command name per unit (not corrected: the background is heartbeats and other clients). */
  callsPerUnit: Record<string, number>;
}

export interface PhaseReport {
  /** same-node: both clients of a pair on one node; cross-node: on two different nodes. */
  placement: 'same-node' | 'cross-node';
  /** busy: every pair; light: a few pairs. */
  load: 'busy' | 'light';
  pairs: number;
  requested: number;
  sent: number;
  /** Distinct messages received, receptions beyond the first, messages never received. */
  received: number;
  duplicates: number;
  lost: number;
  elapsedMs: number;
  perSecond: number;
  latencyMs: Percentiles;
  /** CPU seconds of all the node processes together per 100,000 messages. */
  nodeCpuPer100k: number;
  /** Share of one core the load generator (this process) used. */
  generatorCpuPercent: number;
  redis: RedisFigures;
}

export interface SizeReport {
  nodes: number;
  /** As bench/load reports a login phase, and what it cost the nodes and Redis. */
  login: Pick<LoadReport['login'], 'attempted' | 'succeeded' | 'failed' | 'failures' | 'elapsedMs' | 'perSecond' | 'latencyMs' | 'stepP50Ms'> & {
    nodeCpuPer1000: number;
    generatorCpuPercent: number;
    redis: RedisFigures;
  };
  /** Everyone logs out at once; elapsed: until the registry is empty; unanswered: closes the server did not answer within 10 s. */
  logout: { count: number; elapsedMs: number; unanswered: number; redis: RedisFigures };
  /** Commands/s and share of a core Redis used while the cluster was idle (heartbeats, and anything else using this Redis). */
  background: { commandsPerS: number; cpuPercent: number; netOutPerS: number };
  /** The cluster's keys in Redis with everyone online, by kind; per session: its record and its resource claim. */
  registry: { keys: number; bytes: number; bytesPerSession: number; byKind: Record<string, { keys: number; bytes: number }> };
  /** VmRSS of each node process with everyone online (MiB). */
  nodeRssMiB: number[];
  phases: PhaseReport[];
  /** Warnings and errors the nodes logged (events), e.g. a node declared dead: a run with any is suspect. */
  nodeProblems: Record<string, number>;
  /** The first log line of each of those (JSON, cut at 2,000 characters). */
  nodeProblemExamples: Record<string, string>;
}

export interface ClusterBenchReport {
  startedAt: string;
  options: Omit<ClusterBenchOptions, 'progress'>;
  /** Which Redis: private (started for the run) or the given URL; its version. */
  redis: { kind: 'private' | 'shared'; version: string };
  sizes: SizeReport[];
}

const PASSWORD = 'bench-pass';
/** How long a client waits for the server's </stream:stream> before dropping the connection. */
const CLOSE_WAIT_MS = 10_000;
const round = (v: number, digits = 2): number => Number(v.toFixed(digits));
const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

function roundAll(p: Percentiles): Percentiles {
  return { count: p.count, min: round(p.min), p50: round(p.p50), p95: round(p.p95), p99: round(p.p99), max: round(p.max), mean: round(p.mean) };
}

/** CPU seconds of all the cluster's node processes so far. */
function nodeCpu(cluster: TestCluster): number {
  return cluster.nodes.reduce((sum, n) => sum + sampleProcess(n.proc.pid!).cpuSeconds, 0);
}

interface Background {
  commandsPerMs: number;
  cpuSPerMs: number;
  netOutPerMs: number;
}

function figures(raw: RedisDelta, units: number, bg: Background): RedisFigures {
  const per = (v: number): number => (units > 0 ? v / units : 0);
  const commands = Math.max(0, raw.commands - bg.commandsPerMs * raw.ms);
  const callsPerUnit: Record<string, number> = {};
  for (const [name, n] of Object.entries(raw.calls)) callsPerUnit[name] = round(per(n), 3);
  return {
    raw,
    commands: Math.round(commands),
    commandsPerUnit: round(per(commands), 3),
    // Redis's CPU over a long phase is mostly heartbeats on a slow machine, and the idle rate of
    // a few seconds is too coarse to subtract: the phase's CPU is shared out by commands instead.
    cpuUsPerUnit: round(per(raw.commands > 0 ? (raw.cpuS * commands) / raw.commands : 0) * 1e6, 1),
    netOutPerUnit: Math.round(per(Math.max(0, raw.netOut - bg.netOutPerMs * raw.ms))),
    callsPerUnit,
  };
}

/**
 * The clients of a cluster and the message phases between them. A message's body is
 * "phase send-time seq": the receiver checks the phase, the latency and whether it is a duplicate.
 */
class Exchange {
  private phase = 0;
  private onMessage: ((to: LoadClient, el: XmlElement) => void) | undefined;

  readonly events = { message: (to: LoadClient, el: XmlElement): void => this.onMessage?.(to, el) };

  /**
   * Closed loop: each client of each pair sends its partner its share of `total`, one message
   * in flight (the next once its previous has arrived). Ends when all arrived, or nothing has
   * arrived for `stallMs`.
   */
  async run(pairs: [LoadClient, LoadClient][], total: number, stallMs: number, timeoutMs: number, progress: (line: string) => void) {
    const phase = ++this.phase;
    const partner = new Map<LoadClient, LoadClient>();
    const quota = new Map<LoadClient, number>();
    const senders: LoadClient[] = [];
    for (const [a, b] of pairs) {
      partner.set(a, b).set(b, a);
      senders.push(a, b);
    }
    senders.forEach((s, k) => quota.set(s, Math.floor(total / senders.length) + (k < total % senders.length ? 1 : 0)));
    const seen = new Uint8Array(total);
    const latencies: number[] = [];
    let sent = 0;
    let received = 0;
    let duplicates = 0;
    const send = (from: LoadClient): void => {
      const left = quota.get(from) ?? 0;
      if (left <= 0) return;
      quota.set(from, left - 1);
      from.sendMessage(partner.get(from)!.bare, `${phase} ${performance.now().toFixed(3)} ${sent++}`);
    };
    this.onMessage = (to, el) => {
      const body = el.children.find((c) => c.name === 'body')?.text;
      if (body === undefined || el.attrs.type === 'error') return;
      const [p, t, seq] = body.split(' ').map(Number);
      if (p !== phase || t === undefined || seq === undefined || !(seq < total)) return;
      if (seen[seq]) {
        duplicates++;
        return;
      }
      seen[seq] = 1;
      received++;
      latencies.push(performance.now() - t);
      const from = partner.get(to);
      if (from) send(from);
    };
    const t0 = performance.now();
    let last = 0;
    let lastAt = t0;
    let reported = t0;
    for (const s of senders) send(s);
    await until(
      () => {
        const now = performance.now();
        if (received !== last) {
          last = received;
          lastAt = now;
        }
        if (now - reported > 2000) {
          reported = now;
          progress(`  ${received}/${total} received, ${((now - t0) / 1000).toFixed(1)} s`);
        }
        return received >= total || now - lastAt > stallMs;
      },
      timeoutMs,
      5,
    );
    const elapsedMs = performance.now() - t0;
    this.onMessage = undefined;
    return { sent, received, duplicates, lost: sent - received, elapsedMs, latencies };
  }
}

/**
 * Waits until each client of each pair gets an answer from its partner's full JID (an XEP-0199
 * ping routed through the cluster): by then the sender's node knows the partner's session, so
 * a message cannot go to offline storage for want of a replica that has not heard yet.
 */
async function reachable(pairs: [LoadClient, LoadClient][], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const reach = async (from: LoadClient, to: LoadClient): Promise<void> => {
    while (performance.now() < deadline) {
      const r = await from.request(`<iq type='get' id='%ID%' to='${escapeXml(to.jid)}'><ping xmlns='${NS.PING}'/></iq>`).catch(() => undefined);
      if (r?.attrs.type === 'result') return;
      await sleep(100);
    }
    throw new Error(`${from.jid} could not reach ${to.jid} through the cluster within ${timeoutMs} ms`);
  };
  await Promise.all(pairs.flatMap(([a, b]) => [reach(a, b), reach(b, a)]));
}

/** Runs the benchmark at every size in `opts.sizes`, one fresh cluster each. */
export async function runClusterBench(input: Partial<ClusterBenchOptions> = {}): Promise<ClusterBenchReport> {
  const opts: ClusterBenchOptions = { ...DEFAULTS, ...input };
  const { progress = () => undefined, ...options } = opts;
  const own = opts.redis === undefined ? await startRedis() : undefined;
  try {
    const url = own?.url ?? opts.redis!;
    const probe = await RedisProbe.open(url);
    const version = await probe.version().finally(() => probe.close());
    const report: ClusterBenchReport = { startedAt: new Date().toISOString(), options, redis: { kind: own ? 'private' : 'shared', version }, sizes: [] };
    const cache = new ScramCache();
    for (const n of opts.sizes) report.sizes.push(await runSize(n, url, opts, cache, progress));
    return report;
  } finally {
    await own?.stop();
  }
}

async function runSize(n: number, redisUrl: string, opts: ClusterBenchOptions, cache: ScramCache, progress: (line: string) => void): Promise<SizeReport> {
  progress(`--- ${n} node${n > 1 ? 's' : ''}: starting`);
  const names = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const cluster = await startCluster({
    nodes: names,
    redisUrl,
    heartbeat_ms: opts.heartbeatMs,
    dead_after_ms: opts.deadAfterMs,
    settings: {
      // Every client comes from 127.0.0.1; no traffic shaping; no archive (bench/compare does the same).
      limits: {
        max_connections_per_ip: 0,
        rate: { client: { bytes_per_second: 0, stanzas_per_second: 0 }, account: { bytes_per_second: 0, stanzas_per_second: 0 } },
      },
      mam: { enabled: false },
    },
  });
  const probe = await RedisProbe.open(cluster.redisUrl);
  const exchange = new Exchange();
  const clients: LoadClient[] = [];
  try {
    await cluster.addUsers(
      Array.from({ length: opts.clients }, (_, i) => `cb${i + 1}`),
      PASSWORD,
    );
    const secureContext = createSecureContext({});

    // --- Login, round-robin over the nodes ---
    const slots: (LoadClient | undefined)[] = new Array<LoadClient | undefined>(opts.clients);
    const times: number[] = [];
    const failures: Record<string, number> = {};
    let failed = 0;
    const r0 = await probe.sample();
    const c0 = nodeCpu(cluster);
    const g0 = process.cpuUsage();
    const t0 = performance.now();
    let reported = t0;
    await pool(opts.clients, opts.concurrency, t0 + opts.phaseTimeoutMs, async (i) => {
      const c = new LoadClient(
        {
          host: '127.0.0.1',
          port: cluster.nodes[i % n]!.port,
          domain: 'localhost',
          user: `cb${i + 1}`,
          password: PASSWORD,
          cache,
          secureContext,
          verify: false,
          stepTimeoutMs: opts.stepTimeoutMs,
        },
        exchange.events,
      );
      const s = performance.now();
      try {
        await c.login();
        times.push(performance.now() - s);
        slots[i] = c;
      } catch (err) {
        failed++;
        countFailure(failures, err);
        c.destroy();
      }
      if (performance.now() - reported > 2000) {
        reported = performance.now();
        progress(`  login: ${times.length} online, ${failed} failed`);
      }
    });
    const loginMs = performance.now() - t0;
    const loginGen = cpuSeconds(process.cpuUsage(g0));
    const loginCpu = nodeCpu(cluster) - c0;
    // The last logins' registry writes leave at the end of their event-loop turn, after the answer to their ping.
    await sleep(300);
    const r1 = await probe.sample();
    for (const c of slots) if (c) clients.push(c);
    const stepP50Ms = stepMedians(clients);
    progress(`  login: ${clients.length}/${opts.clients} in ${(loginMs / 1000).toFixed(2)} s, ${failed} failed`);

    const memory = await probe.namespaceMemory(cluster.namespace);
    // A session's share: its record in its node's hash and its resource claim.
    const sessionBytes = (memory.byKind.sess?.bytes ?? 0) + (memory.byKind.jid?.bytes ?? 0);
    const nodeRssMiB = cluster.nodes.map((node) => round(sampleProcess(node.proc.pid!).rssKiB / 1024, 1));

    // --- Background: the cluster idle, every replica up to date by the end ---
    const b0 = await probe.sample();
    await sleep(opts.idleMs);
    const b1 = await probe.sample();
    const idle = RedisProbe.delta(b0, b1);
    const bg: Background = { commandsPerMs: idle.commands / idle.ms, cpuSPerMs: idle.cpuS / idle.ms, netOutPerMs: idle.netOut / idle.ms };

    // --- Pairs: same node (consecutive clients of one node), different nodes (clients 2k and 2k+1) ---
    const onNode = (k: number): (LoadClient | undefined)[] => slots.filter((_, i) => i % n === k);
    const same = names.flatMap((_, k) => pairsOf(onNode(k)));
    const cross = n > 1 ? pairsOf(slots) : [];
    // A light phase takes its pairs from every node alike.
    const spread = (pairs: [LoadClient, LoadClient][], count: number): [LoadClient, LoadClient][] => {
      const step = Math.max(1, Math.floor(pairs.length / count));
      return pairs.filter((_, i) => i % step === 0).slice(0, count);
    };

    await reachable(cross, opts.phaseTimeoutMs);
    if (opts.warmup > 0) {
      progress(`  warm-up: ${opts.warmup} messages`);
      // A client is in one same-node and one cross-node pair: one run for each.
      for (const pairs of [same, cross]) if (pairs.length > 0) await exchange.run(pairs, opts.warmup, opts.stallTimeoutMs, opts.phaseTimeoutMs, progress);
    }

    const phases: PhaseReport[] = [];
    const plan: [PhaseReport['placement'], PhaseReport['load'], [LoadClient, LoadClient][], number][] = [];
    for (const [placement, pairs] of [
      ['same-node', same],
      ['cross-node', cross],
    ] as const) {
      if (pairs.length === 0) continue;
      plan.push([placement, 'busy', pairs, opts.messages]);
      plan.push([placement, 'light', spread(pairs, opts.lightPairs), opts.lightMessages]);
    }
    for (const [placement, load, pairs, total] of plan) {
      if (total <= 0) continue;
      progress(`  ${placement}, ${load}: ${pairs.length} pairs, ${total} messages`);
      const s0 = await probe.sample();
      const cpu0 = nodeCpu(cluster);
      const gen0 = process.cpuUsage();
      const r = await exchange.run(pairs, total, opts.stallTimeoutMs, opts.phaseTimeoutMs, progress);
      const gen = cpuSeconds(process.cpuUsage(gen0));
      const cpu = nodeCpu(cluster) - cpu0;
      // The receiving node deletes what it read at the end of that turn: let it.
      await sleep(300);
      const s1 = await probe.sample();
      phases.push({
        placement,
        load,
        pairs: pairs.length,
        requested: total,
        sent: r.sent,
        received: r.received,
        duplicates: r.duplicates,
        lost: r.lost,
        elapsedMs: round(r.elapsedMs),
        perSecond: round(r.received / (r.elapsedMs / 1000)),
        latencyMs: roundAll(percentiles(r.latencies)),
        nodeCpuPer100k: r.received > 0 ? round((cpu / r.received) * 100_000, 3) : 0,
        generatorCpuPercent: round((gen / (r.elapsedMs / 1000)) * 100, 1),
        redis: figures(RedisProbe.delta(s0, s1), r.received, bg),
      });
      progress(`  ${r.received}/${total} in ${(r.elapsedMs / 1000).toFixed(2)} s, lost ${r.lost}, duplicates ${r.duplicates}`);
    }

    // --- Logout ---
    const nodeProblems: Record<string, number> = {};
    const nodeProblemExamples: Record<string, string> = {};
    const o0: RedisSample = await probe.sample();
    const lt0 = performance.now();
    let unanswered = 0;
    await Promise.all(
      clients.map(async (c) => {
        const t = performance.now();
        await c.close(CLOSE_WAIT_MS);
        // RFC 6120 §4.4: the server answers </stream:stream> with its own; the client gave up waiting.
        if (performance.now() - t >= CLOSE_WAIT_MS - 5) unanswered++;
      }),
    );
    // Each node removes a session from the registry when it ends it (its own record: HDEL), which
    // may be after the client saw its stream closed: until every node's hash is gone (empty).
    const emptied = await probe.untilGone(
      names.map((name) => `${cluster.namespace}:sess:${name}`),
      opts.phaseTimeoutMs,
    );
    const logoutMs = performance.now() - lt0;
    if (!emptied) nodeProblems['registry not emptied after logout'] = 1;
    const o1 = await probe.sample();
    const logins = clients.length;
    clients.length = 0;

    for (const node of cluster.nodes) {
      for (const l of node.logs) {
        // pino levels: 40 warn, 50 error. The certificate the first node makes for all is expected.
        if (typeof l.level === 'number' && l.level >= 40 && !String(l.msg).startsWith('generated a self-signed TLS certificate')) {
          const key = `${node.name}: ${l.event ?? l.msg ?? 'warning'}`;
          nodeProblems[key] = (nodeProblems[key] ?? 0) + 1;
          nodeProblemExamples[key] ??= JSON.stringify(l).slice(0, 2000);
        }
      }
    }

    return {
      nodes: n,
      login: {
        attempted: opts.clients,
        succeeded: logins,
        failed,
        failures,
        elapsedMs: round(loginMs),
        perSecond: round(logins / (loginMs / 1000)),
        latencyMs: roundAll(percentiles(times)),
        stepP50Ms,
        nodeCpuPer1000: logins > 0 ? round((loginCpu / logins) * 1000, 3) : 0,
        generatorCpuPercent: round((loginGen / (loginMs / 1000)) * 100, 1),
        redis: figures(RedisProbe.delta(r0, r1), logins, bg),
      },
      logout: { count: logins, elapsedMs: round(logoutMs), unanswered, redis: figures(RedisProbe.delta(o0, o1), logins, bg) },
      background: { commandsPerS: round(bg.commandsPerMs * 1000, 1), cpuPercent: round(bg.cpuSPerMs * 1000 * 100, 2), netOutPerS: Math.round(bg.netOutPerMs * 1000) },
      registry: { keys: memory.keys, bytes: memory.bytes, bytesPerSession: logins > 0 ? Math.round(sessionBytes / logins) : 0, byKind: memory.byKind },
      nodeRssMiB,
      phases,
      nodeProblems,
      nodeProblemExamples,
    };
  } finally {
    for (const c of clients) c.destroy();
    probe.close();
    await cluster.stop();
  }
}
