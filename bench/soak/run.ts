// `npm run bench:soak -- [options]`: Shoal under 10,000 connections for 10 minutes
// (logins, messages, presence, abrupt drops); writes bench/soak/RESULTS.md and
// RESULTS.png. See bench/soak/README.md.
import { parseArgs } from 'node:util';
import { parseOrUsage } from '../shared/cli.js';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePackages, nofileLimit } from '../shared/system.js';
import { DEFAULTS, runSoak, type SoakOptions } from './soak.js';
import { verdict } from './results.js';

const d = DEFAULTS;
const USAGE = `Usage: npm run bench:soak -- [options]

  --connections N        accounts, all connected at once (default ${d.connections})
  --contacts K           contacts per account, mutual (default ${d.contacts})
  --duration S           traffic time in seconds, warm-up included (default ${d.durationS})
  --warmup S             the first part of it, not judged (default ${d.warmupS})
  --msg-rate R           chat messages per second, all senders (default ${d.traffic.msgRate})
  --presence-rate R      presence changes per second (default ${d.traffic.presenceRate})
  --drop-rate R          abrupt drops per second, each followed by a reconnect (default ${d.traffic.dropRate})
  --logout-rate R        clean logouts per second, each followed by a login (default ${d.traffic.logoutRate})
  --offline-pause A-B    seconds a dropped or logged-out account stays away (default ${d.traffic.offlinePauseMs[0] / 1000}-${d.traffic.offlinePauseMs[1] / 1000})
  --login-rate R         logins started per second at most (default ${d.loginRate})
  --login-concurrency C  logins in flight at most (default ${d.loginConcurrency})
  --sample-ms MS         server sample interval (default ${d.sampleMs})
  --progress-s S         progress line interval (default ${d.progressMs / 1000})
  --out-dir DIR          where RESULTS.md and RESULTS.png go (default bench/soak)
  --no-out               write no result files
  --no-pin               do not pin the server and the generator to separate CPUs
  --keep                 keep the temp dir (config, database, server log)
  --server-flag FLAG     a Node.js flag for the server process (repeatable), e.g. --server-flag=--trace-gc
  --server-env K=V      an environment variable for the server process only (repeatable), e.g.
                         --server-env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
  --heap-snapshots       snapshot the server's heap at each forced GC and diff them
                         (slow and big: use with a few thousand connections)
  --help
`;

function num(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
}

function parse(argv: string[]): Partial<SoakOptions> | undefined {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' },
      contacts: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'msg-rate': { type: 'string' },
      'presence-rate': { type: 'string' },
      'drop-rate': { type: 'string' },
      'logout-rate': { type: 'string' },
      'offline-pause': { type: 'string' },
      'login-rate': { type: 'string' },
      'login-concurrency': { type: 'string' },
      'sample-ms': { type: 'string' },
      'progress-s': { type: 'string' },
      'out-dir': { type: 'string' },
      'no-out': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'heap-snapshots': { type: 'boolean', default: false },
      'server-flag': { type: 'string', multiple: true },
      'server-env': { type: 'string', multiple: true },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (v.help) return undefined;
  const pause = (v['offline-pause'] ?? '').split('-').map(Number);
  const durationS = num(v.duration, 'duration', d.durationS);
  const warmupS = num(v.warmup, 'warmup', Math.min(d.warmupS, durationS / 5));
  if (warmupS >= durationS) throw new Error('--warmup must be shorter than --duration');
  const connections = Math.max(2, Math.round(num(v.connections, 'connections', d.connections)));
  return {
    connections,
    contacts: Math.max(1, Math.round(num(v.contacts, 'contacts', d.contacts))),
    durationS,
    warmupS,
    traffic: {
      msgRate: num(v['msg-rate'], 'msg-rate', d.traffic.msgRate),
      presenceRate: num(v['presence-rate'], 'presence-rate', d.traffic.presenceRate),
      dropRate: num(v['drop-rate'], 'drop-rate', d.traffic.dropRate),
      logoutRate: num(v['logout-rate'], 'logout-rate', d.traffic.logoutRate),
      offlinePauseMs: pause.length === 2 && pause.every((p) => Number.isFinite(p) && p >= 0) && pause[0]! <= pause[1]! ? [pause[0]! * 1000, pause[1]! * 1000] : d.traffic.offlinePauseMs,
    },
    loginRate: Math.max(1, num(v['login-rate'], 'login-rate', d.loginRate)),
    loginConcurrency: Math.max(1, Math.round(num(v['login-concurrency'], 'login-concurrency', d.loginConcurrency))),
    sampleMs: Math.max(100, num(v['sample-ms'], 'sample-ms', d.sampleMs)),
    progressMs: Math.max(1, num(v['progress-s'], 'progress-s', d.progressMs / 1000)) * 1000,
    outDir: v['no-out'] ? undefined : (v['out-dir'] ?? dirname(fileURLToPath(import.meta.url))),
    pin: !v['no-pin'],
    keep: v.keep,
    heapSnapshots: v['heap-snapshots'],
    serverFlags: v['server-flag'] ?? [],
    serverEnv: Object.fromEntries(
      (v['server-env'] ?? []).map((kv) => {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new Error(`--server-env takes NAME=VALUE, not ${kv}`);
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    ),
  };
}

async function main(): Promise<number> {
  const opts = parseOrUsage(parse, USAGE);
  if (typeof opts === 'number') return opts;
  const log = DEFAULTS.progress;
  ensurePackages(['gnuplot-nox'], true, log);
  // Both ends hold a socket per connection: the server child inherits this process's limit.
  const nofile = nofileLimit();
  if (nofile < opts.connections! + 200) log(`warning: the open-file limit is ${nofile}; ${opts.connections} connections need more on each side (ulimit -n)`);
  const cmdline = `npm run bench:soak${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
  const report = await runSoak({ ...opts, cmdline });
  const c = report.generator.counts;
  process.stdout.write(
    [
      '',
      `sent ${c.sent}, acknowledged ${c.acked}, delivered live ${c.deliveredLive}, from offline ${c.deliveredOffline}, lost ${c.lost}, duplicated ${c.duplicates}, bounced ${c.bounced}`,
      `logins ${c.logins} (failed ${c.loginFailures}), drops ${c.drops}, clean logouts ${c.logouts}, unexpected disconnects ${c.unexpectedCloses}, presence changes ${c.presenceSent}`,
      `offline messages left after the drain: ${report.offlineLeft}; server log: ${report.serverLog.warnings} warnings, ${report.serverLog.errors} errors`,
      ...report.generator.lostDetails.map((d) => `lost: ${d}`),
      verdict(report),
      '',
    ].join('\n'),
  );
  return c.lost > 0 || c.duplicates > 0 || c.misrouted > 0 ? 1 : 0;
}

// Exiting runs runSoak's exit handler: the server is killed and the temp dir removed.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
