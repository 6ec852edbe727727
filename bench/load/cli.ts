// `npm run bench:load -- --port 5222 --domain localhost --clients 100 ...`:
// drives any XMPP server over real sockets and prints what it measured.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { int, parseOrUsage } from '../shared/cli.js';
import { runLoad, type LoadOptions } from './run.js';
import { formatReport } from './format.js';
import { ScramCache } from './scram.js';

const USAGE = `Usage: npm run bench:load -- [options]

Logs N clients in over STARTTLS + SCRAM-SHA-1 (bind, session, roster get,
initial presence), optionally exchanges chat messages between pairs, and
reports logins/s, message throughput and latency, and the server's memory and
CPU (with --server-pid, read from /proc).

  --host H              server address (default 127.0.0.1)
  --port P              client port (default 5222)
  --domain D            XMPP domain (default localhost)
  --users PATTERN       usernames, %d = index (default user%d)
  --password-pattern P  passwords, %d = index (default pass%d)
  --first N             first index (default 1)
  --warmup N            first log N other accounts in and out, unmeasured (default 0): the
                        server's first logins after start also pay for JIT compilation and
                        cold caches; their server CPU is reported apart
  --warmup-first K      index of the first warm-up account (default: first + clients)
  --warmup-rounds R     log the warm-up accounts in and out R times (default 1): V8 is still
                        compiling after a server's first few thousand logins; the first
                        round's figures are reported, and the last round's CPU apart
  --clients N           clients to log in (default 100)
  --concurrency C       logins in flight at once (default 50)
  --messages M          chat messages in all between pairs (1,2), (3,4), ... (default 0)
  --window W            closed loop: messages in flight per sender (default 1)
  --rate R              open loop: messages/s in all instead of the closed loop
  --sm                  enable stream management (XEP-0198) with resumption after bind
  --resume              (with --sm) the first client of each pair loses its connection at
                        once, its partner sends it messages, then they all reconnect and
                        resume: resumes/s, messages lost and duplicated, CPU per resume
  --resume-messages K   messages each dropped client gets while gone (default 5)
  --server-pid PID      measure this process's RSS and CPU
  --settle-ms MS        wait before sampling memory once all are online (default 1000)
  --idle-ms MS          hold the clients idle this long, measuring server CPU (default 0)
  --await-presence K    wait until every client has had presence from K others
  --source-addresses N  spread the clients over N loopback source addresses 127.0.0.1..N
                        (default 1): one address has only the ephemeral port range
                        (/proc/sys/net/ipv4/ip_local_port_range, about 28,000) to connect from
  --step-timeout-ms MS  bound on each login step (default 30000)
  --phase-timeout-ms MS bound on each phase (default 300000)
  --ca FILE             verify the server certificate with this CA (default: accept any)
  --scram-cache FILE    cached SCRAM keys (JSON lines, see bench/README.md); loaded and saved back
  --json                print the report as JSON on stdout (progress goes to stderr)
  --help
`;

export function parseCli(argv: string[]): (LoadOptions & { json: boolean; scramCacheFile?: string }) | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      domain: { type: 'string' },
      users: { type: 'string' },
      'password-pattern': { type: 'string' },
      first: { type: 'string' },
      warmup: { type: 'string' },
      'warmup-first': { type: 'string' },
      'warmup-rounds': { type: 'string' },
      clients: { type: 'string' },
      concurrency: { type: 'string' },
      messages: { type: 'string' },
      window: { type: 'string' },
      rate: { type: 'string' },
      sm: { type: 'boolean', default: false },
      resume: { type: 'boolean', default: false },
      'resume-messages': { type: 'string' },
      'server-pid': { type: 'string' },
      'settle-ms': { type: 'string' },
      'idle-ms': { type: 'string' },
      'await-presence': { type: 'string' },
      'source-addresses': { type: 'string' },
      'step-timeout-ms': { type: 'string' },
      'phase-timeout-ms': { type: 'string' },
      ca: { type: 'string' },
      'scram-cache': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  if (values.resume && !values.sm) throw new Error('--resume needs --sm');
  const pid = values['server-pid'];
  return {
    host: values.host ?? '127.0.0.1',
    port: int(values.port, 'port', 5222),
    domain: values.domain ?? 'localhost',
    users: values.users ?? 'user%d',
    passwordPattern: values['password-pattern'] ?? 'pass%d',
    first: int(values.first, 'first', 1),
    warmupClients: int(values.warmup, 'warmup', 0),
    warmupFirst: values['warmup-first'] === undefined ? undefined : int(values['warmup-first'], 'warmup-first', 1),
    warmupRounds: Math.max(1, int(values['warmup-rounds'], 'warmup-rounds', 1)),
    clients: int(values.clients, 'clients', 100),
    concurrency: Math.max(1, int(values.concurrency, 'concurrency', 50)),
    messages: int(values.messages, 'messages', 0),
    window: Math.max(1, int(values.window, 'window', 1)),
    rate: int(values.rate, 'rate', 0),
    sm: values.sm,
    resume: values.resume,
    resumeMessages: int(values['resume-messages'], 'resume-messages', 5),
    serverPid: pid === undefined ? undefined : int(pid, 'server-pid', 0),
    settleMs: int(values['settle-ms'], 'settle-ms', 1000),
    idleMs: int(values['idle-ms'], 'idle-ms', 0),
    awaitPresence: int(values['await-presence'], 'await-presence', 0),
    sourceAddresses: Math.min(254, Math.max(1, int(values['source-addresses'], 'source-addresses', 1))),
    stepTimeoutMs: int(values['step-timeout-ms'], 'step-timeout-ms', 30_000),
    phaseTimeoutMs: int(values['phase-timeout-ms'], 'phase-timeout-ms', 300_000),
    ca: values.ca === undefined ? undefined : readFileSync(values.ca, 'utf8'),
    json: values.json,
    scramCacheFile: values['scram-cache'],
  };
}

async function main(): Promise<number> {
  const opts = parseOrUsage(parseCli, USAGE);
  if (typeof opts === 'number') return opts;
  let cache: ScramCache | undefined;
  if (opts.scramCacheFile) {
    try {
      cache = ScramCache.load(opts.scramCacheFile);
    } catch {
      cache = new ScramCache();
    }
  }
  const report = await runLoad({ ...opts, scramCache: cache, progress: (line) => process.stderr.write(`${line}\n`) });
  if (cache && opts.scramCacheFile && cache.misses > 0) cache.save(opts.scramCacheFile);
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  const resumeBad = report.resume !== undefined && (report.resume.failed > 0 || report.resume.lost > 0 || report.resume.duplicates > 0);
  return report.login.failed > 0 || report.login.succeeded === 0 || resumeBad ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
