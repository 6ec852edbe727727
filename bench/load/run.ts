// The load generator's programmatic API: log N clients in with bounded
// concurrency, optionally wait for presence fan-out, hold them idle, exchange
// chat messages between pairs, drop and resume stream-managed sessions
// (XEP-0198), and report rates, latencies, and the server's memory and CPU
// read from /proc by pid. Everything is bounded in count and
// time: a phase that runs past its bound ends and reports what it got.
import { createSecureContext } from 'node:tls';
import { ScramCache } from './scram.js';
import { LoadClient, LoginError } from './client.js';
import type { XmlElement } from './xml.js';
import { quiet, sampleProcess, type ProcSample } from './proc.js';

export interface LoadOptions {
  host: string;
  port: number;
  /** XMPP domain of the accounts. */
  domain: string;
  /** Username pattern; %d is replaced by the client's index (first, first+1, ...). */
  users: string;
  /** Password pattern; %d as in `users`. */
  passwordPattern: string;
  /** Index of the first account (default 1). */
  first?: number;
  clients: number;
  /** Logins in flight at once. */
  concurrency: number;
  /** Chat messages to exchange in all (0: none). Clients are paired in order: (1,2), (3,4), ... */
  messages?: number;
  /** Closed loop: messages each sender keeps in flight (default 1). */
  window?: number;
  /** Open loop: messages per second in all, spread over the senders (0: closed loop, as fast as the server goes). */
  rate?: number;
  /** The server's pid, for memory and CPU from /proc. */
  serverPid?: number;
  /** Wait this long once everyone is online before sampling memory (default 1000 ms). */
  settleMs?: number;
  /** Hold the clients idle this long and measure the server's CPU meanwhile (default 0). */
  idleMs?: number;
  /** After login, wait until every client has had available presence from this many others. */
  awaitPresence?: number;
  /**
   * Connect from 127.0.0.1..N in turn (default 1: the system's choice). Each source address has
   * only the ephemeral port range to connect from (about 28,000 ports), so 100,000 clients need 4.
   */
  sourceAddresses?: number;
  /** Bound on each login step (default 30 s). */
  stepTimeoutMs?: number;
  /** Bound on each phase (default 300 s). */
  phaseTimeoutMs?: number;
  /** The message phase ends when nothing has arrived for this long (default 30 s). */
  stallTimeoutMs?: number;
  /** CA certificate(s) to verify the server with; without, any certificate is accepted. */
  ca?: string;
  /** Cached SCRAM keys (RFC 5802 §5.1); a fresh cache derives keys at first use. */
  scramCache?: ScramCache;
  /** Resource requested at bind. */
  resource?: string;
  /** XEP-0198: every client enables stream management with resumption after bind. */
  sm?: boolean;
  /**
   * Needs `sm`. After the other phases, the first client of each pair (1,2), (3,4), ... loses its
   * connection, its partner sends it `resumeMessages` messages, then all of them resume.
   */
  resume?: boolean;
  /** Messages each dropped client gets while it is gone (default 5). */
  resumeMessages?: number;
  /**
   * Log this many other accounts in (from `warmupFirst`) and out again before the measured
   * logins, unmeasured: the server's first logins after start also pay for compiling its hot
   * code (V8's optimizing compiler, a server's caches), which a server that has been up for
   * a while no longer does. Their server CPU is reported apart (`warmup`). Default 0.
   */
  warmupClients?: number;
  /** Index of the first warm-up account (default: first + clients, the accounts after the measured ones). */
  warmupFirst?: number;
  /**
   * How many times the warm-up accounts log in and out (default 1). V8 is still compiling a
   * server's hot code after its first few thousand logins; later rounds let it settle, so that
   * the measured logins are those of a server in its steady state. `warmup` reports the first
   * round (a server's first logins after start) and the last one's CPU apart.
   */
  warmupRounds?: number;
  /** Progress lines (e.g. to stderr). */
  progress?: (line: string) => void;
}

export interface Percentiles {
  count: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadReport {
  target: { host: string; port: number; domain: string };
  startedAt: string;
  clients: number;
  concurrency: number;
  login: {
    attempted: number;
    succeeded: number;
    failed: number;
    /** Failure counts by "step: reason". */
    failures: Record<string, number>;
    /** From the first connect to the last client online. */
    elapsedMs: number;
    /** succeeded / elapsed. */
    perSecond: number;
    /** Between the 10% and 90% completions, i.e. without ramp-up and tail. */
    sustainedPerSecond: number;
    latencyMs: Percentiles;
    /** Median time spent in each login step (connect, stream, starttls, tls, sasl, bind, session, roster, presence). */
    stepP50Ms: Record<string, number>;
    tls: { protocol: string; cipher: string };
  };
  /** The unmeasured logins before the measured ones (warmupClients), and what they cost the server. */
  warmup?: {
    clients: number;
    succeeded: number;
    failed: number;
    elapsedMs: number;
    /** As login.sustainedPerSecond: the rate of a server's first logins after start. */
    sustainedPerSecond: number;
    /** Server CPU (utime + stime) from the first warm-up connect to the last warm-up client online, per 1,000 logins. */
    cpuPer1000Logins: number;
    /** Rounds of the warm-up (warmupRounds); the figures above are the first round's, but `failed` counts every round's. */
    rounds: number;
    /** The last round's server CPU per 1,000 logins, when there was more than one round. */
    lastRoundCpuPer1000Logins?: number;
  };
  roster: { minItems: number; maxItems: number };
  presence: { awaited: number; complete: boolean; elapsedMs: number; received: number };
  messages?: {
    requested: number;
    sent: number;
    received: number;
    lost: number;
    elapsedMs: number;
    perSecond: number;
    latencyMs: Percentiles;
    mode: string;
  };
  resume?: {
    /** Clients that lost their connection (the first of each pair). */
    dropped: number;
    resumed: number;
    failed: number;
    /** Failure counts by "step: reason". */
    failures: Record<string, number>;
    /** From the first reconnect to the last resume done (retransmissions received). */
    elapsedMs: number;
    /** resumed / elapsed. */
    perSecond: number;
    /** Per client: reconnect, TLS, SASL, <resume/>, retransmissions, a ping round trip. */
    latencyMs: Percentiles;
    /** Median time spent in each step of a resume. */
    stepP50Ms: Record<string, number>;
    /** Messages sent to the dropped clients while they were gone. */
    expected: number;
    /** Distinct ones of those received after resuming. */
    received: number;
    lost: number;
    /** Receptions beyond the first of the same message. */
    duplicates: number;
  };
  server?: {
    pid: number;
    rssBeforeKiB: number;
    rssOnlineKiB: number;
    rssPerClientKiB: number;
    rssEndKiB: number;
    cpuLoginS: number;
    cpuPer1000Logins: number;
    cpuPresenceS: number;
    cpuIdleS: number;
    idleCpuPercent: number;
    cpuMessagesS: number;
    cpuPer100kMessages: number;
    cpuResumeS: number;
    cpuPer1000Resumes: number;
  };
  generator: {
    cpuS: number;
    /** CPU seconds of the whole generator process since it started (start-up included). */
    processCpuS: number;
    /** Share of one core the generator used while logging in / exchanging messages. */
    loginCpuPercent: number;
    messagesCpuPercent: number;
    resumeCpuPercent: number;
    maxRssMiB: number;
    scramCacheHits: number;
    scramCacheMisses: number;
  };
  /** Clients that saw a stream error, bad XML or a closed connection while online. */
  problems: { count: number; examples: string[] };
}

export function percentiles(values: ArrayLike<number>): Percentiles {
  const n = values.length;
  if (n === 0) return { count: 0, min: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };
  const sorted = Float64Array.from(values).sort();
  // Nearest-rank percentile.
  const at = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: n, min: sorted[0]!, p50: at(50), p95: at(95), p99: at(99), max: sorted[n - 1]!, mean: sum / n };
}

/** Bodies of the messages sent to dropped clients start with this (then pair:number, unique in a run). */
const RESUME_MARK = 'resume:';

const fill = (pattern: string, i: number): string => pattern.replace(/%d/g, String(i));
const round = (v: number, digits = 2): number => Number(v.toFixed(digits));
const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `task(0..count-1)` with at most `concurrency` in flight, starting none after `deadline`
 * (performance.now() ms).
 */
export async function pool(count: number, concurrency: number, deadline: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, () => worker()));
}

/** Clients (1,2), (3,4), ... where both are online, in order. */
export function pairsOf(clients: (LoadClient | undefined)[]): [LoadClient, LoadClient][] {
  const pairs: [LoadClient, LoadClient][] = [];
  for (let k = 0; k + 1 < clients.length; k += 2) {
    const a = clients[k];
    const b = clients[k + 1];
    if (a && b) pairs.push([a, b]);
  }
  return pairs;
}

/** Counts a failed login or resume under "step: reason". */
export function countFailure(failures: Record<string, number>, err: unknown): void {
  const key = err instanceof LoginError ? err.message : `error: ${(err as Error).message}`;
  failures[key] = (failures[key] ?? 0) + 1;
}

/** Polls `done` every few ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function until(done: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await sleep(everyMs);
  }
  return true;
}

/**
 * Logins per second between the 10% and the 90% completion (ms since the phase began), i.e.
 * without ramp-up and tail; the plain rate when there are too few. Sorts `completions`.
 */
function sustainedRate(completions: number[], elapsedMs: number): number {
  completions.sort((a, b) => a - b);
  const n = completions.length;
  const c10 = completions[Math.floor(n * 0.1)] ?? 0;
  const c90 = completions[Math.max(0, Math.ceil(n * 0.9) - 1)] ?? 0;
  return n >= 10 && c90 > c10 ? (Math.ceil(n * 0.9) - 1 - Math.floor(n * 0.1)) / ((c90 - c10) / 1000) : n / (elapsedMs / 1000);
}

/** Client i's loopback source address when the clients are spread over `n` (undefined for 1: the system picks). */
function sourceAddress(i: number, n: number): string | undefined {
  return n > 1 ? `127.0.0.${(i % n) + 1}` : undefined;
}

export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  if (opts.resume && !opts.sm) throw new Error('resuming needs stream management (sm)');
  const first = opts.first ?? 1;
  const stepTimeoutMs = opts.stepTimeoutMs ?? 30_000;
  const phaseTimeoutMs = opts.phaseTimeoutMs ?? 300_000;
  const cache = opts.scramCache ?? new ScramCache();
  const progress = opts.progress ?? (() => undefined);
  const pid = opts.serverPid;
  const sample = (): ProcSample | undefined => (pid === undefined ? undefined : sampleProcess(pid));
  let maxRss = process.memoryUsage().rss;
  const noteRss = (): void => {
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  };
  const genStart = process.cpuUsage();
  const secureContext = createSecureContext(opts.ca !== undefined ? { ca: opts.ca } : {});
  const startedAt = new Date().toISOString();

  // --- Messages are matched back to their pair through this hook. ---
  const latencies: number[] = [];
  let received = 0;
  const partner = new Map<LoadClient, LoadClient>();
  const quota = new Map<LoadClient, number>();
  let sent = 0;
  let closedLoop = true;
  const sendOne = (from: LoadClient): void => {
    const left = quota.get(from) ?? 0;
    if (left <= 0) return;
    quota.set(from, left - 1);
    sent++;
    // The body carries the send time; sender and receiver share this process's clock.
    from.sendMessage(partner.get(from)!.bare, `${performance.now().toFixed(3)} ${sent}`);
  };
  // Messages sent to dropped clients, by receiver: how often each arrived.
  const resumeSeen = new Map<LoadClient, Map<string, number>>();
  const onMessage = (to: LoadClient, el: XmlElement): void => {
    const body = el.children.find((c) => c.name === 'body')?.text;
    if (body === undefined || el.attrs.type === 'error') return;
    if (body.startsWith(RESUME_MARK)) {
      const seen = resumeSeen.get(to);
      seen?.set(body, (seen.get(body) ?? 0) + 1);
      return;
    }
    const t = Number.parseFloat(body);
    if (!Number.isFinite(t)) return;
    latencies.push(performance.now() - t);
    received++;
    // Closed loop: the message's arrival lets its sender send the next one.
    if (closedLoop) {
      const sender = partner.get(to);
      if (sender) sendOne(sender);
    }
  };

  const newClient = (i: number, account: number): LoadClient =>
    new LoadClient(
      {
        host: opts.host,
        port: opts.port,
        domain: opts.domain,
        user: fill(opts.users, account),
        password: fill(opts.passwordPattern, account),
        cache,
        secureContext,
        verify: opts.ca !== undefined,
        stepTimeoutMs,
        resource: opts.resource,
        sm: opts.sm,
        localAddress: sourceAddress(i, opts.sourceAddresses ?? 1),
      },
      { message: onMessage },
    );

  // --- Warm-up (not measured): the same logins, other accounts, then their logouts ---
  let warmup: LoadReport['warmup'];
  const warmupClients = opts.warmupClients ?? 0;
  const rounds = Math.max(1, opts.warmupRounds ?? 1);
  if (warmupClients > 0) {
    const warmFirst = opts.warmupFirst ?? first + opts.clients;
    for (let n = 1; n <= rounds; n++) {
      const warm: LoadClient[] = [];
      const warmDone: number[] = [];
      let warmFailed = 0;
      const s0 = sample();
      const t0 = performance.now();
      await pool(warmupClients, opts.concurrency, t0 + phaseTimeoutMs, async (i) => {
        const c = newClient(i, warmFirst + i);
        try {
          await c.login();
          warmDone.push(performance.now() - t0);
          warm.push(c);
        } catch {
          warmFailed++;
          c.destroy();
        }
      });
      const elapsed = performance.now() - t0;
      const s1 = sample();
      await Promise.all(warm.map((c) => c.close(5000)));
      // The logouts' work (and whatever a server does after them) ends before the next phase starts.
      if (pid !== undefined) await quiet(pid, 500, 0.05, phaseTimeoutMs);
      const cpu = s0 && s1 && warm.length > 0 ? round(((s1.cpuSeconds - s0.cpuSeconds) / warm.length) * 1000, 3) : 0;
      const of = rounds > 1 ? ` (round ${n}/${rounds})` : '';
      progress(`warm-up${of}: ${warm.length}/${warmupClients} logged in and out, ${warmFailed} failed, ${(elapsed / 1000).toFixed(2)}s`);
      if (n === 1) {
        warmup = {
          clients: warmupClients,
          succeeded: warm.length,
          failed: warmFailed,
          elapsedMs: round(elapsed),
          sustainedPerSecond: round(sustainedRate(warmDone, elapsed)),
          cpuPer1000Logins: cpu,
          rounds,
        };
      } else if (warmup) {
        warmup.failed += warmFailed;
        if (n === rounds) warmup.lastRoundCpuPer1000Logins = cpu;
      }
    }
  }

  // --- Login ---
  const before = sample();
  const clients: LoadClient[] = [];
  const loginTimes: number[] = [];
  const completions: number[] = [];
  const failures: Record<string, number> = {};
  let failed = 0;
  const loginStart = performance.now();
  const loginCpu = process.cpuUsage();
  let lastReport = loginStart;
  await pool(opts.clients, opts.concurrency, loginStart + phaseTimeoutMs, async (i) => {
    const c = newClient(i, first + i);
    const t0 = performance.now();
    try {
      await c.login();
      const t1 = performance.now();
      loginTimes.push(t1 - t0);
      completions.push(t1 - loginStart);
      clients[i] = c;
    } catch (err) {
      failed++;
      countFailure(failures, err);
      c.destroy();
    }
    const now = performance.now();
    if (now - lastReport > 2000) {
      lastReport = now;
      noteRss();
      progress(`login: ${loginTimes.length} online, ${failed} failed, ${(now - loginStart) / 1000}s`);
    }
  });
  const loginEnd = performance.now();
  const loginCpuUsed = cpuSeconds(process.cpuUsage(loginCpu));
  const afterLogin = sample();
  noteRss();
  const online = clients.filter((c): c is LoadClient => c !== undefined);
  const succeeded = online.length;
  const loginElapsed = loginEnd - loginStart;
  const sustained = sustainedRate(completions, loginElapsed);
  progress(`login done: ${succeeded}/${opts.clients} in ${(loginElapsed / 1000).toFixed(2)}s, ${failed} failed`);

  // --- Presence fan-out ---
  const awaited = opts.awaitPresence ?? 0;
  let presenceComplete = true;
  const presenceStart = performance.now();
  if (awaited > 0) {
    presenceComplete = await until(() => online.every((c) => c.presenceFrom.size >= awaited), phaseTimeoutMs);
    if (!presenceComplete) progress(`presence: not every client got ${awaited} presences in time`);
  }
  const presenceElapsed = awaited > 0 ? performance.now() - presenceStart : 0;
  const afterPresence = sample();

  // --- Settle, memory, idle ---
  await sleep(opts.settleMs ?? 1000);
  const settled = sample();
  const idleMs = opts.idleMs ?? 0;
  if (idleMs > 0) await sleep(idleMs);
  const afterIdle = sample();
  noteRss();

  // --- Messages ---
  let messages: LoadReport['messages'];
  let messagesCpuPercent = 0;
  const requested = opts.messages ?? 0;
  let msgStartSample: ProcSample | undefined;
  let msgEndSample: ProcSample | undefined;
  if (requested > 0) {
    const senders: LoadClient[] = [];
    for (const [a, b] of pairsOf(clients)) {
      partner.set(a, b).set(b, a);
      senders.push(a, b);
    }
    if (senders.length === 0) throw new Error('no pair of clients is online to exchange messages');
    const each = Math.floor(requested / senders.length);
    senders.forEach((s, k) => quota.set(s, each + (k < requested % senders.length ? 1 : 0)));
    const window = Math.max(1, opts.window ?? 1);
    const rate = opts.rate ?? 0;
    closedLoop = rate <= 0;
    msgStartSample = sample();
    const msgCpu = process.cpuUsage();
    const t0 = performance.now();
    let lastMsgReport = t0;
    // A phase whose messages stop arriving (lost by the server) ends after stallMs rather than at its bound.
    const stallMs = opts.stallTimeoutMs ?? 30_000;
    let lastReceived = 0;
    let lastProgressAt = t0;
    const stalled = (): boolean => {
      const now = performance.now();
      if (received !== lastReceived) {
        lastReceived = received;
        lastProgressAt = now;
      }
      return now - lastProgressAt > stallMs;
    };
    const report = (): void => {
      const now = performance.now();
      if (now - lastMsgReport > 2000) {
        lastMsgReport = now;
        noteRss();
        progress(`messages: ${received}/${requested} received, ${((now - t0) / 1000).toFixed(1)}s`);
      }
    };
    if (closedLoop) {
      for (let w = 0; w < window; w++) for (const s of senders) sendOne(s);
      await until(() => (report(), received >= requested || stalled()), phaseTimeoutMs, 5);
    } else {
      // Open loop: keep to the schedule whatever the server does, so latency is measured at a known load.
      let k = 0;
      const deadline = t0 + phaseTimeoutMs;
      while (sent < requested && performance.now() < deadline) {
        const due = Math.min(requested, Math.floor(((performance.now() - t0) / 1000) * rate));
        while (sent < due) {
          const s = senders[k++ % senders.length]!;
          if ((quota.get(s) ?? 0) > 0) sendOne(s);
        }
        report();
        await sleep(2);
      }
      await until(() => (report(), received >= sent || stalled()), Math.max(0, deadline - performance.now()), 5);
    }
    const elapsed = performance.now() - t0;
    messagesCpuPercent = (cpuSeconds(process.cpuUsage(msgCpu)) / (elapsed / 1000)) * 100;
    msgEndSample = sample();
    messages = {
      requested,
      sent,
      received,
      lost: sent - received,
      elapsedMs: round(elapsed),
      perSecond: round(received / (elapsed / 1000)),
      latencyMs: roundAll(percentiles(latencies)),
      mode: closedLoop ? `closed loop, ${window} in flight per sender, ${senders.length} senders` : `open loop at ${rate}/s`,
    };
    progress(`messages done: ${received}/${requested} in ${(elapsed / 1000).toFixed(2)}s`);
  }

  // --- Resume (XEP-0198 §5) ---
  let resume: LoadReport['resume'];
  let resumeCpuPercent = 0;
  let resumeStartSample: ProcSample | undefined;
  let resumeEndSample: ProcSample | undefined;
  if (opts.resume) {
    const pairs = pairsOf(clients);
    const dropped = pairs.map(([a]) => a);
    const each = opts.resumeMessages ?? 5;
    // Acknowledge everything received so far (presences, pushes, the login's results), so that
    // what is retransmitted is what arrived while the client was gone; the ping's answer means
    // the server has taken the <a/> into account.
    for (const a of dropped) a.ack();
    await Promise.all(dropped.map((a) => a.roundTrip()));
    for (const a of dropped) resumeSeen.set(a, new Map());
    // All at once, with no </stream:stream>: the server finds out from the TCP reset.
    for (const a of dropped) a.drop();
    progress(`resume: ${dropped.length} connections dropped`);
    // Each partner writes to its dropped client; the answer to a ping sent after the messages
    // means the server has handled them (RFC 6120 §10.1): queued them for the gone session, or
    // written them to a connection it has not yet seen die (then they are unacknowledged).
    pairs.forEach(([a, b], k) => {
      for (let m = 1; m <= each; m++) b.sendMessage(a.bare, `${RESUME_MARK}${k + 1}:${m}`);
    });
    await Promise.all(pairs.map(([, b]) => b.roundTrip()));

    const times: number[] = [];
    const resumeFailures: Record<string, number> = {};
    let resumeFailed = 0;
    resumeStartSample = sample();
    const resumeCpu = process.cpuUsage();
    const t0 = performance.now();
    let lastResumeReport = t0;
    await pool(dropped.length, opts.concurrency, t0 + phaseTimeoutMs, async (i) => {
      const a = dropped[i]!;
      const s0 = performance.now();
      try {
        await a.resume();
        times.push(performance.now() - s0);
      } catch (err) {
        resumeFailed++;
        countFailure(resumeFailures, err);
        a.destroy();
      }
      const now = performance.now();
      if (now - lastResumeReport > 2000) {
        lastResumeReport = now;
        progress(`resume: ${times.length} resumed, ${resumeFailed} failed, ${((now - t0) / 1000).toFixed(1)}s`);
      }
    });
    const elapsed = performance.now() - t0;
    resumeEndSample = sample();
    resumeCpuPercent = (cpuSeconds(process.cpuUsage(resumeCpu)) / (elapsed / 1000)) * 100;
    noteRss();
    let received = 0;
    let duplicates = 0;
    for (const seen of resumeSeen.values()) {
      received += seen.size;
      for (const n of seen.values()) duplicates += n - 1;
    }
    const expected = pairs.length * each;
    resume = {
      dropped: dropped.length,
      resumed: times.length,
      failed: resumeFailed,
      failures: resumeFailures,
      elapsedMs: round(elapsed),
      perSecond: round(times.length / (elapsed / 1000)),
      latencyMs: roundAll(percentiles(times)),
      stepP50Ms: stepMedians(dropped.filter((a) => a.online), 'resumeStepMs'),
      expected,
      received,
      lost: expected - received,
      duplicates,
    };
    progress(`resume done: ${times.length}/${dropped.length} in ${(elapsed / 1000).toFixed(2)}s, ${received}/${expected} messages, ${duplicates} duplicates`);
  }

  const problemsSeen = online.filter((c) => c.problem !== undefined);
  const examples = [...new Set(problemsSeen.map((c) => c.problem!))].slice(0, 10);
  const end = sample();
  noteRss();

  // --- Logout (bounded) ---
  await Promise.all(online.map((c) => c.close(5000)));

  let server: LoadReport['server'];
  if (pid !== undefined && before && afterLogin && afterPresence && settled && afterIdle && end) {
    const cpuLogin = afterLogin.cpuSeconds - before.cpuSeconds;
    const cpuMsg = msgStartSample && msgEndSample ? msgEndSample.cpuSeconds - msgStartSample.cpuSeconds : 0;
    const cpuResume = resumeStartSample && resumeEndSample ? resumeEndSample.cpuSeconds - resumeStartSample.cpuSeconds : 0;
    const idleS = afterIdle.cpuSeconds - settled.cpuSeconds;
    server = {
      pid,
      rssBeforeKiB: before.rssKiB,
      rssOnlineKiB: settled.rssKiB,
      rssPerClientKiB: succeeded > 0 ? round((settled.rssKiB - before.rssKiB) / succeeded) : 0,
      rssEndKiB: end.rssKiB,
      cpuLoginS: round(cpuLogin, 3),
      cpuPer1000Logins: succeeded > 0 ? round((cpuLogin / succeeded) * 1000, 3) : 0,
      cpuPresenceS: round(afterPresence.cpuSeconds - afterLogin.cpuSeconds, 3),
      cpuIdleS: round(idleS, 3),
      idleCpuPercent: idleMs > 0 ? round((idleS / ((afterIdle.at - settled.at) / 1000)) * 100) : 0,
      cpuMessagesS: round(cpuMsg, 3),
      cpuPer100kMessages: messages && messages.received > 0 ? round((cpuMsg / messages.received) * 100_000, 3) : 0,
      cpuResumeS: round(cpuResume, 3),
      cpuPer1000Resumes: resume && resume.resumed > 0 ? round((cpuResume / resume.resumed) * 1000, 3) : 0,
    };
  }

  const roster = online.map((c) => c.rosterItems);
  return {
    target: { host: opts.host, port: opts.port, domain: opts.domain },
    startedAt,
    clients: opts.clients,
    concurrency: opts.concurrency,
    login: {
      attempted: succeeded + failed,
      succeeded,
      failed,
      failures,
      elapsedMs: round(loginElapsed),
      perSecond: round(succeeded / (loginElapsed / 1000)),
      sustainedPerSecond: round(sustained),
      latencyMs: roundAll(percentiles(loginTimes)),
      stepP50Ms: stepMedians(online),
      tls: { protocol: online[0]?.tlsProtocol ?? '', cipher: online[0]?.tlsCipher ?? '' },
    },
    warmup,
    roster: { minItems: roster.length ? Math.min(...roster) : 0, maxItems: roster.length ? Math.max(...roster) : 0 },
    presence: { awaited, complete: presenceComplete, elapsedMs: round(presenceElapsed), received: online.reduce((n, c) => n + c.presences, 0) },
    messages,
    resume,
    server,
    generator: {
      cpuS: round(cpuSeconds(process.cpuUsage(genStart)), 3),
      processCpuS: round(cpuSeconds(process.cpuUsage()), 3),
      loginCpuPercent: round((loginCpuUsed / (loginElapsed / 1000)) * 100, 1),
      messagesCpuPercent: round(messagesCpuPercent, 1),
      resumeCpuPercent: round(resumeCpuPercent, 1),
      maxRssMiB: round(maxRss / 1048576, 1),
      scramCacheHits: cache.hits,
      scramCacheMisses: cache.misses,
    },
    problems: { count: problemsSeen.length, examples },
  };
}

export function stepMedians(clients: LoadClient[], which: 'stepMs' | 'resumeStepMs' = 'stepMs'): Record<string, number> {
  const out: Record<string, number> = {};
  const steps = ['connect', 'stream', 'starttls', 'tls', 'sasl', 'bind', 'session', 'sm', 'roster', 'presence', 'resume'] as const;
  for (const step of steps) {
    const values = clients.map((c) => c[which][step]).filter((v): v is number => v !== undefined);
    if (values.length > 0) out[step] = round(percentiles(values).p50);
  }
  return out;
}

function roundAll(p: Percentiles): Percentiles {
  return { count: p.count, min: round(p.min), p50: round(p.p50), p95: round(p.p95), p99: round(p.p99), max: round(p.max), mean: round(p.mean) };
}
