// The scenarios of bench:compare and one measured run of a scenario against one
// server: a fresh server process, the load generator as its own process, the
// server's CPU by pid and the machine's around it, and for the chat scenarios
// the messages the server archived meanwhile, counted in its storage.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LoadReport } from '../load/run.js';
import { machineBusySeconds, sampleProcess } from '../load/proc.js';
import { PASSWORD_PATTERN, ROSTER_PASSWORD_PATTERN, ROSTER_USER_PATTERN, SM_PASSWORD_PATTERN, SM_USER_PATTERN, USER_PATTERN } from './accounts.js';
import { children, repoRoot, wrap, type Launch, type ServerKind } from './servers.js';
import type { CpuShare, ScenarioName, ScenarioReport } from './table.js';
import { ephemeralPorts } from '../shared/system.js';

export interface Scenario {
  name: ScenarioName;
  args: string[];
  /** Bound on the generator process. */
  timeoutMs: number;
  /** The servers run with stream management (XEP-0198) on. */
  sm?: boolean;
  /** Accounts of its own, not user1..N (provisioned separately). */
  ownAccounts?: boolean;
  /** The servers archive every message (XEP-0313): Shoal's mam, Prosody's and ejabberd's mod_mam. */
  mam?: boolean;
  /** Count the archived messages in the server's storage before and after (a chat scenario). */
  archiveCheck?: boolean;
}

/** Bound on logging in `clients`: the generator's default 300 s, or 10 logins/s (a loaded machine) when more. */
function loginPhaseMs(clients: number): number {
  return Math.max(300_000, clients * 100);
}

/**
 * Generator arguments for more clients than one loopback source address has ports for
 * (100,000 idle connections): several source addresses (127.0.0.1..N, each with the whole
 * ephemeral port range, filled to at most 80%), and a login phase bounded by loginPhaseMs.
 */
function manyClients(clients: number): string[] {
  const addresses = Math.ceil(clients / Math.floor(ephemeralPorts() * 0.8));
  const phase = loginPhaseMs(clients);
  return [...(addresses > 1 ? ['--source-addresses', String(addresses)] : []), ...(phase > 300_000 ? ['--phase-timeout-ms', String(phase)] : [])];
}

/** Rounds of the login scenario's warm-up (`--login-warmup-rounds`, default 3). */
export function warmupRounds(v: Record<string, string | boolean | undefined>): number {
  return Math.max(1, Math.round(Number(v['login-warmup-rounds'] ?? 3)));
}

/** The scenarios asked for on the command line (parseArgs values), with their generator arguments. */
export function scenarios(v: Record<string, string | boolean | undefined>): Scenario[] {
  const scale = Number(v.scale ?? 1);
  const n = (key: string, def: number): number => Math.max(1, Math.round(Number(v[key] ?? def) * (v[key] === undefined ? scale : 1)));
  const loginClients = n('login-clients', 2000);
  const loginWarmup = v['login-warmup'] === undefined ? loginClients : Math.max(0, Number(v['login-warmup']));
  const loginWarmupRounds = warmupRounds(v);
  const idleClients = n('idle-clients', 10000);
  const chatClients = Math.max(2, n('chat-clients', 1000));
  const rosterUsers = Math.max(2, n('roster-users', 200));
  const resumeClients = n('resume-clients', 1000);
  const user = ['--users', USER_PATTERN, '--password-pattern', PASSWORD_PATTERN];
  const chatArgs = [...user, '--clients', String(chatClients), '--concurrency', '200', '--messages', String(n('chat-messages', 20000)), '--window', '1', '--settle-ms', '500'];
  const all: Scenario[] = [
    {
      name: 'login',
      // The same number of other accounts logged in and out first, unmeasured (see bench/README.md, "Warm-up").
      args: [
        ...user,
        '--clients',
        String(loginClients),
        '--concurrency',
        String(Number(v['login-concurrency'] ?? 200)),
        '--settle-ms',
        '500',
        '--warmup',
        String(loginWarmup),
        '--warmup-rounds',
        String(loginWarmupRounds),
      ],
      timeoutMs: 300_000,
    },
    {
      name: 'idle',
      args: [...user, '--clients', String(idleClients), '--concurrency', String(Number(v['idle-concurrency'] ?? 200)), '--settle-ms', '3000', '--idle-ms', '5000', ...manyClients(idleClients)],
      timeoutMs: Math.max(400_000, loginPhaseMs(idleClients) + 120_000),
    },
    { name: 'chat', args: chatArgs, timeoutMs: 300_000, archiveCheck: true },
    // The same load, same accounts, with every message archived in the sender's and the recipient's archive.
    { name: 'chat-mam', args: chatArgs, timeoutMs: 300_000, mam: true, archiveCheck: true },
    {
      name: 'roster',
      args: [
        '--users',
        ROSTER_USER_PATTERN,
        '--password-pattern',
        ROSTER_PASSWORD_PATTERN,
        '--clients',
        String(rosterUsers),
        '--concurrency',
        String(rosterUsers),
        '--await-presence',
        String(Math.min(rosterUsers - 1, Number(v['roster-contacts'] ?? 500))),
        '--settle-ms',
        '500',
      ],
      timeoutMs: 300_000,
      ownAccounts: true,
    },
    {
      // Each of the N clients that lose their connection has a contact (the other half of 2N
      // clients) that writes to it meanwhile; reconnects and logins are 200 at a time alike.
      name: 'resume',
      args: [
        '--users',
        SM_USER_PATTERN,
        '--password-pattern',
        SM_PASSWORD_PATTERN,
        '--clients',
        String(2 * resumeClients),
        '--concurrency',
        '200',
        '--sm',
        '--resume',
        '--resume-messages',
        String(Math.max(1, Number(v['resume-messages'] ?? 5))),
        '--settle-ms',
        '500',
      ],
      timeoutMs: 300_000,
      sm: true,
      ownAccounts: true,
    },
  ];
  const only = typeof v.scenarios === 'string' ? v.scenarios.split(',') : undefined;
  return all.filter((s) => !only || only.includes(s.name));
}

/** Runs the load generator as its own process (pinned apart from the server) and returns its report. */
export function runGenerator(args: string[], launch: Launch, timeoutMs: number, log: (line: string) => void): Promise<LoadReport> {
  // SHOAL_BENCH_GENERATOR_PROFILE=DIR: a CPU profile of each generator run (is the generator what sets the pace?).
  const prof = process.env.SHOAL_BENCH_GENERATOR_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.SHOAL_BENCH_GENERATOR_PROFILE] : [];
  const [cmd, argv] = wrap(process.execPath, [...prof, '--import', 'tsx', join(repoRoot, 'bench', 'load', 'cli.ts'), '--json', ...args], launch);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim()) log(`  ${line.trim()}`);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      try {
        resolve(JSON.parse(out) as LoadReport);
      } catch {
        reject(new Error(`load generator ended (${code ?? signal}) without a report: ${err.split('\n').slice(-5).join(' | ')}`));
      }
    });
  });
}

export interface Measured {
  report: ScenarioReport;
  cpu: CpuShare;
}

/**
 * One scenario against one server: starts it with the scenario's config, runs the generator
 * (`generate` gets the server's pid), samples CPU around it, stops the server. For a chat
 * scenario, the server's archives are counted before the start and after the stop (its storage
 * quiet both times): with archiving on they must have gained 2 × messages sent (the sender's and
 * the recipient's copy), with it off nothing.
 */
export async function measure(
  kind: ServerKind,
  sc: Scenario,
  launch: Launch,
  generate: (serverPid: number) => Promise<LoadReport>,
  log: (line: string) => void,
): Promise<Measured> {
  const archivedBefore = sc.archiveCheck ? await kind.archived() : 0;
  const server = await kind.start({ ...launch, streamManagement: sc.sm, mam: sc.mam });
  let stopped = false;
  try {
    log(`${kind.name} / ${sc.name}: server pid ${server.pid}`);
    const busy0 = machineBusySeconds();
    const srv0 = sampleProcess(server.pid);
    const report: ScenarioReport = await generate(server.pid);
    const srv1 = sampleProcess(server.pid);
    const busy1 = machineBusySeconds();
    const serverS = srv1.cpuSeconds - srv0.cpuSeconds;
    const kernelS = busy1.interrupts - busy0.interrupts;
    const cpu: CpuShare = {
      wallS: round3((srv1.at - srv0.at) / 1000),
      serverS: round3(serverS),
      generatorS: report.generator.processCpuS,
      kernelS: round3(kernelS),
      otherS: round3(Math.max(0, busy1.busy - busy0.busy - kernelS - serverS - report.generator.processCpuS)),
    };
    if (!sc.archiveCheck) return { report, cpu };
    // Counted once the server has stopped, so everything it archived is in its storage.
    await server.stop();
    stopped = true;
    const archived = (await kind.archived()) - archivedBefore;
    const expected = sc.mam ? 2 * (report.messages?.sent ?? 0) : 0;
    if (archived !== expected) log(`${kind.name} / ${sc.name}: ARCHIVE CHECK FAILED: ${archived} copies archived, ${expected} expected`);
    return { report: { ...report, archive: { archived, expected } }, cpu };
  } finally {
    if (!stopped) await server.stop();
  }
}

const round3 = (v: number): number => Number(v.toFixed(3));
