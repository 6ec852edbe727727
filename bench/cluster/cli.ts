// `npm run bench:cluster`: Shoal as a cluster of 1, 2 and 3 node processes on
// this machine (issue 14): logins/s, messages/s and latency for pairs on the
// same node and on different nodes, and what each costs Redis. Prints the
// table and writes a results file (bench/cluster/RESULTS.md by default).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseOrUsage } from '../shared/cli.js';
import { machine } from '../shared/system.js';
import { DEFAULTS, runClusterBench, type ClusterBenchOptions, type ClusterBenchReport } from './run.js';
import { benchmarkTable, commandTable, mainTable, problems } from './format.js';
import { redisBenchmark, startRedis, type BenchmarkLine } from './redis.js';

const USAGE = `Usage: npm run bench:cluster -- [options]

Starts 1, then 2, then 3 Shoal node processes (shoal start, cluster mode) sharing a
fresh PostgreSQL database (the test server at 127.0.0.1:5432) and a Redis, logs
clients in round-robin over the nodes, exchanges messages between pairs on the same
node and on different nodes, and counts what Redis did for it (INFO).

  --sizes 1,2,3          cluster sizes to run (node processes)
  --clients N            clients logged in (default ${DEFAULTS.clients})
  --concurrency C        logins in flight at once (default ${DEFAULTS.concurrency})
  --messages M           messages of each busy phase (default ${DEFAULTS.messages})
  --light-pairs P        pairs of each light phase (default ${DEFAULTS.lightPairs})
  --light-messages M     messages of each light phase (default ${DEFAULTS.lightMessages})
  --warmup M             unmeasured messages first, same-node and cross-node (default ${DEFAULTS.warmup})
  --idle-ms MS           idle window for the heartbeats' rate (default ${DEFAULTS.idleMs})
  --redis URL            use this Redis (default: a redis-server of the benchmark's own
                         on a free loopback port, so that INFO counts nothing else)
  --redis-benchmark N    requests per redis-benchmark reference run (default 100000; 0: none)
  --out FILE             results file (default bench/cluster/RESULTS.md; '-': none)
  --json FILE            the whole report as JSON
  --help
`;

interface CliOptions {
  bench: Partial<ClusterBenchOptions>;
  redisBenchmark: number;
  out: string;
  json: string | undefined;
}

function int(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
  return n;
}

function parseCli(argv: string[]): CliOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string' },
      clients: { type: 'string' },
      concurrency: { type: 'string' },
      messages: { type: 'string' },
      'light-pairs': { type: 'string' },
      'light-messages': { type: 'string' },
      warmup: { type: 'string' },
      'idle-ms': { type: 'string' },
      redis: { type: 'string' },
      'redis-benchmark': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const sizes = values.sizes === undefined ? DEFAULTS.sizes : values.sizes.split(',').map((v) => int(v, 'sizes', 0));
  if (sizes.length === 0 || sizes.some((n) => n < 1 || n > 9)) throw new Error('--sizes: node counts from 1 to 9');
  if (values.redis !== undefined && !/^rediss?:\/\//.test(values.redis)) throw new Error('--redis: expected a redis:// URL');
  return {
    bench: {
      sizes,
      clients: int(values.clients, 'clients', DEFAULTS.clients),
      concurrency: Math.max(1, int(values.concurrency, 'concurrency', DEFAULTS.concurrency)),
      messages: int(values.messages, 'messages', DEFAULTS.messages),
      lightPairs: Math.max(1, int(values['light-pairs'], 'light-pairs', DEFAULTS.lightPairs)),
      lightMessages: int(values['light-messages'], 'light-messages', DEFAULTS.lightMessages),
      warmup: int(values.warmup, 'warmup', DEFAULTS.warmup),
      idleMs: int(values['idle-ms'], 'idle-ms', DEFAULTS.idleMs),
      redis: values.redis,
    },
    redisBenchmark: int(values['redis-benchmark'], 'redis-benchmark', 100_000),
    out: values.out ?? 'bench/cluster/RESULTS.md',
    json: values.json,
  };
}

function uptime(): string {
  try {
    return execFileSync('uptime', [], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function results(r: ClusterBenchReport, ref: BenchmarkLine[], before: string, after: string, minutes: number): string {
  const m = machine();
  const o = r.options;
  const rev = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  const issues = problems(r);
  const sizes = r.sizes.map((s) => s.nodes).join(', ').replace(/, (\d+)$/, ' and $1');
  return `# Shoal as a cluster of ${sizes} nodes on one machine

Generated by \`npm run bench:cluster\` on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC in ${minutes.toFixed(1)} minutes (Shoal ${rev}). Regenerate it with the same command (see bench/README.md).

**Read this first.** The machine has ${m.cpu.replace(/.*, /, '')} and other people's work runs on it: \`uptime\` before the run said
\`${before}\`, after it \`${after}\`. With ${Math.max(...o.sizes)} node processes, the load generator, PostgreSQL and Redis
sharing those cores, the columns for 2 and 3 nodes measure what clustering *costs* (CPU per message,
Redis commands, latency of the extra hop), not how it scales: more nodes here means the same cores
split more ways. Throughput across a real cluster grows with its machines; what limits it is in the
Redis figures (see "A 10-node deployment" in bench/README.md).

## Machine and settings

- Machine: ${m.cpu}, ${m.memory}; ${m.os}; Node.js ${m.node}
- Redis ${r.redis.version}, ${r.redis.kind === 'private' ? 'a redis-server of the benchmark\'s own on a free loopback port (no persistence), so that its INFO counts only the cluster' : 'a shared server: its INFO counts whatever else used it too'}; PostgreSQL at 127.0.0.1:5432, a fresh database per cluster size.
- Nodes: \`shoal start\` processes (test/support/cluster.ts), STARTTLS required (one self-signed certificate), SCRAM, no MAM, no rate limits, logs at info; heartbeats every ${o.heartbeatMs} ms, dead after ${o.deadAfterMs} ms.
- Logins: ${o.clients} clients (STARTTLS, SCRAM-SHA-1 with cached keys, bind, roster get, initial presence, a ping answered = online), ${o.concurrency} at a time, client *i* on node *i mod N*.
- Messages: chat to the partner's bare JID, closed loop with one message in flight per sender (both clients of a pair send). Same-node pairs: two clients of one node; cross-node pairs: clients 2k and 2k+1, always on two different nodes. Busy: every pair (${o.clients / 2} pairs), ${o.messages} messages; light: ${o.lightPairs} pairs, ${o.lightMessages} messages, so that latency is the path's, not a queue's. ${o.warmup} unmeasured messages each way first.
- Redis: INFO (stats, cpu, commandstats) before and after each phase; the rate measured while the cluster sat idle for ${o.idleMs / 1000} s after login (heartbeats: MULTI/EXISTS/SET/EXEC, HGETALL, MGET, and XREAD BLOCK timing out) is subtracted from the commands, CPU and bytes of each phase. "Bytes out" counts replies and pub/sub deliveries to the nodes.
- CPU of the nodes: utime + stime of the node processes (/proc), all nodes together.

## Results

${mainTable(r)}

## Redis calls by command

${commandTable(r)}
${ref.length > 0 ? `## What this Redis carries on this machine (redis-benchmark)

\`redis-benchmark\` against a fresh redis-server of the benchmark's own (default settings, no persistence), 50 connections, random keys, with the commands the cluster sends: a resource claim (SET NX), a session record (HSET), a registry change (PUBLISH, no subscriber), a batch of stanzas (XADD with a 100-byte stanza). The benchmark's own client shares the two cores, so these are lower bounds of what one Redis thread does.

${benchmarkTable(ref)}
` : ''}
## Problems

${issues.length === 0 ? 'None: every login succeeded, every message arrived once, and no node logged a warning or an error.' : issues.map((l) => `- ${l}`).join('\n')}
`;
}

async function main(): Promise<number> {
  const opts = parseOrUsage(parseCli, USAGE);
  if (typeof opts === 'number') return opts;
  const before = uptime();
  const t0 = performance.now();
  const report = await runClusterBench({ ...opts.bench, progress: (l) => process.stderr.write(`${l}\n`) });
  const after = uptime();
  const minutes = (performance.now() - t0) / 60_000;
  let ref: BenchmarkLine[] = [];
  if (opts.redisBenchmark > 0) {
    process.stderr.write('redis-benchmark reference\n');
    const redis = await startRedis();
    try {
      ref = redisBenchmark(redis.port, opts.redisBenchmark);
    } finally {
      await redis.stop();
    }
  }
  process.stdout.write(`\n${mainTable(report)}\n\n`);
  if (ref.length > 0) process.stdout.write(`${benchmarkTable(ref)}\n\n`);
  const issues = problems(report);
  for (const l of issues) process.stdout.write(`PROBLEM: ${l}\n`);
  if (opts.out !== '-') {
    writeFileSync(opts.out, results(report, ref, before, after, minutes));
    process.stderr.write(`wrote ${opts.out}\n`);
  }
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ report, redisBenchmark: ref }, null, 2)}\n`);
  const failed = report.sizes.some((s) => s.login.failed > 0 || s.phases.some((p) => p.lost > 0 || p.duplicates > 0));
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
