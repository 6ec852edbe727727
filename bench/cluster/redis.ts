// What the cluster benchmark reads from Redis: the server's own counters (INFO
// stats, cpu and commandstats) before and after a phase, and the memory the
// cluster's keys take. One connection of its own, opened once, so that reading
// costs exactly one command (INFO) per sample and nothing else.
//
// INFO counts the whole server: on a Redis that other work shares, what that
// work does during a phase is counted too. So the benchmark starts a Redis of
// its own by default (startRedis), where the only other traffic is the nodes'
// heartbeats; the runner measures those while the cluster is idle and
// subtracts them.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface RedisSample {
  /** total_commands_processed (INFO stats). */
  commands: number;
  /** used_cpu_user + used_cpu_sys of the server process, seconds (INFO cpu). */
  cpuS: number;
  /** total_net_input_bytes, total_net_output_bytes (pub/sub deliveries and replies included). */
  netIn: number;
  netOut: number;
  /** Calls per command name (INFO commandstats: cmdstat_xadd:calls=N,...). */
  calls: Record<string, number>;
  /** performance.now() when taken. */
  at: number;
  /** untilGone()'s EXISTS commands so far. */
  polls: number;
}

export interface RedisDelta {
  commands: number;
  cpuS: number;
  netIn: number;
  netOut: number;
  calls: Record<string, number>;
  ms: number;
}

function field(info: string, name: string): number {
  return Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
}

export class RedisProbe {
  private readonly redis: Redis;
  /** EXISTS commands sent by untilGone(), so that delta() leaves them out. */
  private polls = 0;

  private constructor(url: string) {
    this.redis = new Redis(url, { lazyConnect: true, connectionName: 'shoal-bench-probe', maxRetriesPerRequest: 1 });
  }

  static async open(url: string): Promise<RedisProbe> {
    const p = new RedisProbe(url);
    await p.redis.connect();
    return p;
  }

  async sample(): Promise<RedisSample> {
    // Several sections in one INFO (Redis 7): one command per sample.
    const info = await this.redis.info('stats', 'cpu', 'commandstats');
    const calls: Record<string, number> = {};
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
    return {
      commands: field(info, 'total_commands_processed'),
      cpuS: field(info, 'used_cpu_user') + field(info, 'used_cpu_sys'),
      netIn: field(info, 'total_net_input_bytes'),
      netOut: field(info, 'total_net_output_bytes'),
      calls,
      at: performance.now(),
      polls: this.polls,
    };
  }

  /**
   * What happened between two samples, less the INFO that took the first (the second's own is
   * not counted yet) and the EXISTS this probe sent meanwhile (until()).
   */
  static delta(a: RedisSample, b: RedisSample): RedisDelta {
    const own: Record<string, number> = { info: 1, exists: b.polls - a.polls };
    const calls: Record<string, number> = {};
    for (const [name, n] of Object.entries(b.calls)) {
      const d = n - (a.calls[name] ?? 0) - (own[name] ?? 0);
      if (d > 0) calls[name] = d;
    }
    const commands = b.commands - a.commands - 1 - own.exists!;
    return { commands: Math.max(0, commands), cpuS: b.cpuS - a.cpuS, netIn: b.netIn - a.netIn, netOut: b.netOut - a.netOut, calls, ms: b.at - a.at };
  }

  /** Polls (one EXISTS each, deducted by delta()) until none of `keys` exists; false after `timeoutMs`. */
  async untilGone(keys: string[], timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.polls++;
      if ((await this.redis.exists(...keys)) === 0) return true;
      if (performance.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Keys under `namespace:` and the bytes Redis reports for them (MEMORY USAGE, every field counted). */
  async namespaceMemory(namespace: string): Promise<{ keys: number; bytes: number; byKind: Record<string, { keys: number; bytes: number }> }> {
    let cursor = '0';
    let keys = 0;
    let bytes = 0;
    const byKind: Record<string, { keys: number; bytes: number }> = {};
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      cursor = next;
      if (batch.length === 0) continue;
      const p = this.redis.pipeline();
      for (const k of batch) p.memory('USAGE', k, 'SAMPLES', 0);
      const results = (await p.exec()) ?? [];
      batch.forEach((k, i) => {
        const n = Number(results[i]?.[1] ?? 0);
        // {ns}:sess:{node}, {ns}:jid:{full JID}, ...: the second part names the kind.
        const kind = k.slice(namespace.length + 1).split(':')[0] ?? '';
        const entry = (byKind[kind] ??= { keys: 0, bytes: 0 });
        entry.keys++;
        entry.bytes += n;
        keys++;
        bytes += n;
      });
    } while (cursor !== '0');
    return { keys, bytes, byKind };
  }

  async version(): Promise<string> {
    return /^redis_version:(\S+)/m.exec(await this.redis.info('server'))?.[1] ?? 'unknown';
  }

  close(): void {
    this.redis.disconnect();
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server of the benchmark's own on a free loopback port: nothing persisted, default
 * settings otherwise (one thread for commands, as a deployment's would be). Resolves once it
 * accepts connections.
 */
export async function startRedis(): Promise<PrivateRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      proc.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
      proc.once('error', () => resolve(false));
    });
    if (!ready) {
      proc.kill('SIGKILL');
      // Another process took the port between freePort() and redis-server's bind: once more.
      if (attempt < 3) continue;
      throw new Error(`redis-server did not start: ${out.slice(-1000)}`);
    }
    proc.stdout.resume();
    proc.stderr.resume();
    return {
      url: `redis://127.0.0.1:${port}/0`,
      port,
      pid: proc.pid!,
      stop: () =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
        }),
    };
  }
}

export interface BenchmarkLine {
  command: string;
  pipeline: number;
  perSecond: number;
  p50Ms: number;
}

/**
 * redis-benchmark on the commands the cluster router sends per stanza and per registry change
 * (in database 15, emptied after), one at a time and pipelined 16 deep: what this Redis
 * carries on this machine, as a reference for the estimate in bench/README.md.
 */
export function redisBenchmark(port: number, requests: number): BenchmarkLine[] {
  const key = `bench-ref-${process.pid}`;
  const commands: string[][] = [
    ['SET', `${key}:claim:__rand_int__`, 'n1 s1', 'NX'],
    ['HSET', `${key}:sess`, 'user__rand_int__@localhost/r', '{"id":"s1","a":true,"p":0,"i":true}'],
    ['PUBLISH', `${key}:events`, '{"t":"s","r":{"id":"s1","jid":"user@localhost/r","v":2}}'],
    ['XADD', `${key}:inbox`, 'MAXLEN', '~', '10000', '*', 'b', `[["s","s1","user@localhost/r","<message to='user@localhost' type='chat'><body>hello</body></message>"]]`],
  ];
  const lines: BenchmarkLine[] = [];
  for (const pipeline of [1, 16]) {
    for (const cmd of commands) {
      const r = spawnSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '--dbnum', '15', '-n', String(requests), '-r', '100000', '-P', String(pipeline), '--csv', ...cmd], { encoding: 'utf8', timeout: 120_000 });
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95..","p99..","max..": the
      // test (the command line) may hold commas and quotes, the last seven fields are numbers.
      const row = (r.stdout.trim().split('\n').at(-1) ?? '').split(',').slice(-7).map((f) => Number(f.replace(/"/g, '')));
      const perSecond = row[0] ?? NaN;
      if (r.status !== 0 || !Number.isFinite(perSecond)) throw new Error(`redis-benchmark ${cmd[0]} failed: ${r.stderr || r.stdout}`);
      lines.push({ command: cmd[0]!, pipeline, perSecond, p50Ms: row[3] ?? NaN });
    }
  }
  spawnSync('redis-cli', ['-p', String(port), '-n', '15', 'FLUSHDB']);
  return lines;
}
