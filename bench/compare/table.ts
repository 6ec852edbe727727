// The side-by-side table: one row per figure, one column per server, then the
// ratios Shoal/Prosody and Shoal/ejabberd; and where Shoal stands against the
// targets of issue 5.
import type { LoadReport } from '../load/run.js';

export const SCENARIOS = ['login', 'idle', 'chat', 'chat-mam', 'roster', 'resume'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
export type ServerKey = 'shoal' | 'prosody' | 'ejabberd';

/** Where the machine's CPU went while a scenario ran (seconds). */
export interface CpuShare {
  wallS: number;
  serverS: number;
  generatorS: number;
  /** Interrupts and softirqs (mostly the kernel's loopback TCP work, charged to no process). */
  kernelS: number;
  /** Everything else on the machine: other processes. */
  otherS: number;
}

/** What the server's archives gained during a chat scenario, counted in its storage before start and after stop. */
export interface ArchiveCheck {
  /** Archived copies added during the run. */
  archived: number;
  /** With archiving on: 2 × messages sent (the sender's and the recipient's archive); off: 0. */
  expected: number;
}

/** The load generator's report, and for the chat scenarios what the server archived meanwhile. */
export type ScenarioReport = LoadReport & { archive?: ArchiveCheck };

export interface Results {
  scenarios: ScenarioName[];
  servers: Partial<
    Record<
      ServerKey,
      {
        name: string;
        version: string;
        /** One report per scenario: where a scenario ran several times, its median run (medianRun()). */
        reports: Partial<Record<ScenarioName, ScenarioReport>>;
        cpu: Partial<Record<ScenarioName, CpuShare>>;
        /** Every run of a scenario that ran more than once (--login-repeat), in the order they ran. */
        repeats?: Partial<Record<ScenarioName, ScenarioReport[]>>;
      }
    >
  >;
  errors: Record<string, string>;
}

export interface Metric {
  scenario: ScenarioName;
  label: (r: ScenarioReport) => string;
  /** 'up': more is better; 'down': less is better; 'none': a count to check, not compare. */
  better: 'up' | 'down' | 'none';
  value: (r: ScenarioReport) => number | undefined;
  /** Shown in the chart. */
  chart?: string;
  digits?: number;
  /** A correctness count: anything but 0 is flagged in the table and listed by failedChecks(). */
  mustBeZero?: boolean;
}

const rosterCpu = (r: LoadReport): number | undefined =>
  r.server && r.login.succeeded > 0 ? ((r.server.cpuLoginS + r.server.cpuPresenceS) / r.login.succeeded) * 1000 : undefined;

export const METRICS: Metric[] = [
  { scenario: 'login', label: (r) => `logins/s (sustained)${r.warmup ? ', after the warm-up' : ''}`, better: 'up', value: (r) => r.login.sustainedPerSecond, chart: 'logins/s', digits: 0 },
  { scenario: 'login', label: (r) => `logins/s (sustained), the ${r.warmup?.clients ?? 'first'} first after start (warm-up)`, better: 'up', value: (r) => r.warmup?.sustainedPerSecond, digits: 0 },
  { scenario: 'login', label: (r) => `time until all ${r.clients} online (s)`, better: 'down', value: (r) => r.login.elapsedMs / 1000, digits: 2 },
  { scenario: 'login', label: () => 'login latency p50 (ms)', better: 'down', value: (r) => r.login.latencyMs.p50, digits: 1 },
  { scenario: 'login', label: () => 'login latency p99 (ms)', better: 'down', value: (r) => r.login.latencyMs.p99, digits: 1 },
  { scenario: 'login', label: (r) => `server CPU s per 1,000 logins${r.warmup ? ', after the warm-up' : ''}`, better: 'down', value: (r) => r.server?.cpuPer1000Logins, chart: 'CPU/login', digits: 2 },
  { scenario: 'login', label: () => 'server CPU s per 1,000 logins, first logins after start (warm-up)', better: 'down', value: (r) => r.warmup?.cpuPer1000Logins, digits: 2 },
  { scenario: 'login', label: () => 'server CPU s per 1,000 logins, last warm-up round', better: 'down', value: (r) => r.warmup?.lastRoundCpuPer1000Logins, digits: 2 },
  { scenario: 'login', label: () => 'failed logins', better: 'none', value: (r) => r.login.failed, digits: 0, mustBeZero: true },
  { scenario: 'login', label: () => 'failed warm-up logins', better: 'none', value: (r) => r.warmup?.failed, digits: 0, mustBeZero: true },
  { scenario: 'idle', label: () => 'memory per idle TLS connection (KiB)', better: 'down', value: (r) => r.server?.rssPerClientKiB, chart: 'memory/conn', digits: 1 },
  { scenario: 'idle', label: (r) => `server RSS with ${r.clients} online (MiB)`, better: 'down', value: (r) => (r.server ? r.server.rssOnlineKiB / 1024 : undefined), digits: 1 },
  { scenario: 'idle', label: (r) => `time until all ${r.clients} online (s)`, better: 'down', value: (r) => r.login.elapsedMs / 1000, digits: 2 },
  { scenario: 'idle', label: () => 'server CPU while idle (% of a core)', better: 'down', value: (r) => r.server?.idleCpuPercent, digits: 2 },
  { scenario: 'idle', label: () => 'failed logins', better: 'none', value: (r) => r.login.failed, digits: 0, mustBeZero: true },
  { scenario: 'chat', label: () => 'messages/s', better: 'up', value: (r) => r.messages?.perSecond, chart: 'messages/s', digits: 0 },
  { scenario: 'chat', label: () => 'message latency p50 (ms)', better: 'down', value: (r) => r.messages?.latencyMs.p50, digits: 2 },
  { scenario: 'chat', label: () => 'message latency p95 (ms)', better: 'down', value: (r) => r.messages?.latencyMs.p95, digits: 2 },
  { scenario: 'chat', label: () => 'message latency p99 (ms)', better: 'down', value: (r) => r.messages?.latencyMs.p99, chart: 'msg p99', digits: 2 },
  { scenario: 'chat', label: () => 'server CPU s per 100,000 messages', better: 'down', value: (r) => r.server?.cpuPer100kMessages, chart: 'CPU/msg', digits: 2 },
  { scenario: 'chat', label: () => 'messages lost', better: 'none', value: (r) => r.messages?.lost, digits: 0, mustBeZero: true },
  { scenario: 'chat', label: () => 'messages archived (archiving off)', better: 'none', value: (r) => r.archive?.archived, digits: 0, mustBeZero: true },
  // The same load with every message archived (XEP-0313): Shoal's mam, Prosody's and ejabberd's mod_mam.
  { scenario: 'chat-mam', label: () => 'messages/s', better: 'up', value: (r) => r.messages?.perSecond, chart: 'messages/s', digits: 0 },
  { scenario: 'chat-mam', label: () => 'message latency p50 (ms)', better: 'down', value: (r) => r.messages?.latencyMs.p50, digits: 2 },
  { scenario: 'chat-mam', label: () => 'message latency p99 (ms)', better: 'down', value: (r) => r.messages?.latencyMs.p99, chart: 'msg p99', digits: 2 },
  { scenario: 'chat-mam', label: () => 'server CPU s per 100,000 messages', better: 'down', value: (r) => r.server?.cpuPer100kMessages, chart: 'CPU/msg', digits: 2 },
  { scenario: 'chat-mam', label: () => 'messages lost', better: 'none', value: (r) => r.messages?.lost, digits: 0, mustBeZero: true },
  { scenario: 'chat-mam', label: () => 'archived copies (sender + recipient)', better: 'none', value: (r) => r.archive?.archived, digits: 0 },
  { scenario: 'chat-mam', label: () => 'archive copies missing (2 × sent − archived)', better: 'none', value: (r) => (r.archive ? r.archive.expected - r.archive.archived : undefined), digits: 0, mustBeZero: true },
  { scenario: 'roster', label: () => 'logins/s', better: 'up', value: (r) => r.login.perSecond, digits: 0 },
  {
    scenario: 'roster',
    label: (r) => `time until all ${r.clients} online with presence fan-out done (s)`,
    better: 'down',
    value: (r) => (r.presence.complete ? (r.login.elapsedMs + r.presence.elapsedMs) / 1000 : undefined),
    chart: 'roster login',
    digits: 2,
  },
  { scenario: 'roster', label: () => 'server CPU s per 1,000 roster logins (with fan-out)', better: 'down', value: rosterCpu, chart: 'CPU/roster login', digits: 2 },
  { scenario: 'roster', label: () => 'roster items per client', better: 'none', value: (r) => r.roster.minItems, digits: 0 },
  { scenario: 'roster', label: () => 'available presences received in all', better: 'none', value: (r) => r.presence.received, digits: 0 },
  // A server that resumed no session has no rate or cost to show: '—', not 0.
  { scenario: 'resume', label: () => 'resumes/s', better: 'up', value: (r) => resumed(r)?.perSecond, chart: 'resumes/s', digits: 0 },
  { scenario: 'resume', label: (r) => `time until all ${r.resume?.dropped ?? 0} resumed (s)`, better: 'down', value: (r) => (resumed(r) ? resumed(r)!.elapsedMs / 1000 : undefined), digits: 2 },
  { scenario: 'resume', label: () => 'resume latency p50 (ms)', better: 'down', value: (r) => resumed(r)?.latencyMs.p50, digits: 1 },
  { scenario: 'resume', label: () => 'resume latency p99 (ms)', better: 'down', value: (r) => resumed(r)?.latencyMs.p99, digits: 1 },
  { scenario: 'resume', label: () => 'server CPU s per 1,000 resumes', better: 'down', value: (r) => (resumed(r) ? r.server?.cpuPer1000Resumes : undefined), chart: 'CPU/resume', digits: 2 },
  { scenario: 'resume', label: () => 'failed resumes', better: 'none', value: (r) => r.resume?.failed, digits: 0, mustBeZero: true },
  { scenario: 'resume', label: (r) => `messages sent while gone, received after resuming (of ${r.resume?.expected ?? 0})`, better: 'none', value: (r) => r.resume?.received, digits: 0 },
  { scenario: 'resume', label: () => 'messages lost', better: 'none', value: (r) => r.resume?.lost, digits: 0, mustBeZero: true },
  { scenario: 'resume', label: () => 'messages duplicated', better: 'none', value: (r) => r.resume?.duplicates, digits: 0, mustBeZero: true },
];

/** The resume report when at least one session was resumed. */
function resumed(r: LoadReport): LoadReport['resume'] {
  return r.resume && r.resume.resumed > 0 ? r.resume : undefined;
}

function fmt(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return undefined;
  return a / b;
}

/** How many times better Shoal is (>1) or worse (<1), whatever the metric's direction. */
export function advantage(m: Metric, shoal: number | undefined, other: number | undefined): number | undefined {
  const r = ratio(shoal, other);
  if (r === undefined || r === 0) return undefined;
  return m.better === 'up' ? r : 1 / r;
}

function report(results: Results, server: ServerKey, scenario: ScenarioName): ScenarioReport | undefined {
  return results.servers[server]?.reports[scenario];
}

export function buildTable(results: Results): string {
  const cols: ServerKey[] = ['shoal', 'prosody', 'ejabberd'];
  const present = cols.filter((c) => results.servers[c]);
  const names = present.map((c) => results.servers[c]!.name);
  const ratioCols = present.includes('shoal') ? present.filter((c) => c !== 'shoal') : [];
  const head = `| scenario | figure | ${names.join(' | ')} |${ratioCols.map((c) => ` Shoal/${results.servers[c]!.name} |`).join('')} better |`;
  const sep = `|---|---|${present.map(() => '---:|').join('')}${ratioCols.map(() => '---:|').join('')}:-:|`;
  const rows = [head, sep];
  for (const m of METRICS) {
    if (!results.scenarios.includes(m.scenario)) continue;
    const any = present.map((c) => report(results, c, m.scenario)).find((r) => r !== undefined);
    if (!any) continue;
    const vals = present.map((c) => {
      const r = report(results, c, m.scenario);
      return r ? m.value(r) : undefined;
    });
    const shoal = present.includes('shoal') ? vals[present.indexOf('shoal')] : undefined;
    const ratios = ratioCols.map((c) => (m.better === 'none' ? '' : fmt(ratio(shoal, vals[present.indexOf(c)]), 2)));
    const arrow = m.better === 'up' ? '↑' : m.better === 'down' ? '↓' : m.mustBeZero ? 'must be 0' : '';
    const cells = vals.map((v) => (m.mustBeZero && v !== undefined && v !== 0 ? `**${fmt(v, m.digits)}** ⚠` : fmt(v, m.digits)));
    rows.push(`| ${m.scenario} | ${m.label(any)} | ${cells.join(' | ')} |${ratios.map((r) => ` ${r} |`).join('')} ${arrow} |`);
  }
  return rows.join('\n');
}

/** Every correctness count that is not 0, as "server / scenario: figure = value". */
export function failedChecks(results: Results): string[] {
  const out: string[] = [];
  for (const m of METRICS) {
    if (!m.mustBeZero || !results.scenarios.includes(m.scenario)) continue;
    for (const s of Object.values(results.servers)) {
      // Every run counts, not only the median one shown in the table.
      const runs = runsOf(s, m.scenario);
      runs.forEach((r, i) => {
        const v = m.value(r);
        if (v !== undefined && v !== 0) out.push(`${s.name} / ${m.scenario}${runs.length > 1 ? ` (run ${i + 1})` : ''}: ${m.label(r)} = ${v}`);
      });
    }
  }
  return out;
}

type Target = [what: string, scenario: ScenarioName, value: (r: LoadReport) => number | undefined, better: 'up' | 'down', vsProsody: number, vsEjabberd: number];

/** Issue 5's targets: logins/s ≥ 1.5× Prosody, messages/s ≥ 2× Prosody, memory per idle connection ≤ 0.5× Prosody, all ≥ ejabberd. */
export function targets(results: Results): string {
  return targetTable(results, [
    ['logins/s', 'login', (r) => r.login.sustainedPerSecond, 'up', 1.5, 1],
    ['messages/s', 'chat', (r) => r.messages?.perSecond, 'up', 2, 1],
    ['memory per idle TLS connection', 'idle', (r) => r.server?.rssPerClientKiB, 'down', 0.5, 1],
  ]);
}

/**
 * Issue 15's targets: logins/s ≥ 2× Prosody and ≥ 1.5× ejabberd, memory per idle TLS
 * connection ≤ 1.0× Prosody and ≤ 0.85× ejabberd; messages/s and roster logins no lower than
 * before (read against the earlier runs, not a ratio).
 */
export function capacityTargets(results: Results): string {
  return targetTable(results, [
    ['logins/s (after the warm-up, if any)', 'login', (r) => r.login.sustainedPerSecond, 'up', 2, 1.5],
    ['logins/s, the first after start (warm-up)', 'login', (r) => r.warmup?.sustainedPerSecond, 'up', 2, 1.5],
    // Each server at its best: a server whose logins get dearer with uptime is not judged by its worst.
    ['server CPU per login, the lower of first and later', 'login', (r) => bestLoginCpu(r), 'down', 0.5, 1 / 1.5],
    ['memory per idle TLS connection', 'idle', (r) => r.server?.rssPerClientKiB, 'down', 1, 0.85],
  ]);
}

/** The lowest of a server's CPU per 1,000 logins right after start (warm-up), in the last warm-up round, and after the warm-up. */
function bestLoginCpu(r: LoadReport): number | undefined {
  const values = [r.server?.cpuPer1000Logins, r.warmup?.cpuPer1000Logins, r.warmup?.lastRoundCpuPer1000Logins].filter((v): v is number => v !== undefined && v > 0);
  return values.length > 0 ? Math.min(...values) : undefined;
}

/** The median (the mean of the middle two for an even count); undefined for no values. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * Of several runs of one scenario on one server, the run whose server CPU per 1,000 logins is
 * the median (the lower middle for an even count): a real run, whose figures belong together,
 * for the side-by-side table. Runs without a CPU figure come last.
 */
export function medianRun<R extends LoadReport>(runs: readonly R[]): R {
  if (runs.length === 0) throw new Error('medianRun: no runs');
  const cpu = (r: R): number => r.server?.cpuPer1000Logins ?? Infinity;
  const sorted = [...runs].sort((a, b) => cpu(a) - cpu(b));
  const measured = sorted.filter((r) => Number.isFinite(cpu(r)));
  return measured.length > 0 ? measured[(measured.length - 1) >> 1]! : sorted[0]!;
}

type ServerResults = NonNullable<Results['servers'][ServerKey]>;

/** Every run of a scenario on a server: its repeats, or the one report (none if it did not run). */
function runsOf(server: ServerResults | undefined, sc: ScenarioName): ScenarioReport[] {
  const repeats = server?.repeats?.[sc];
  if (repeats && repeats.length > 1) return repeats;
  const only = server?.reports[sc];
  return only ? [only] : [];
}

/** A figure of a server in a scenario: the median over its runs (the figure itself for one run). */
function figure(results: Results, s: ServerKey, sc: ScenarioName, f: (r: LoadReport) => number | undefined): number | undefined {
  return median(runsOf(results.servers[s], sc).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
}

/**
 * Every run of the scenarios that ran several times, server by server, with the median of each
 * figure: what the targets tables are computed from, and how far apart the runs were.
 * Empty when nothing was repeated.
 */
export function repeatsTable(results: Results): string {
  const cols: [string, (r: LoadReport) => number | undefined, number][] = [
    ['logins/s after the warm-up', (r) => r.login.sustainedPerSecond, 0],
    ['logins/s, first after start', (r) => r.warmup?.sustainedPerSecond, 0],
    ['server CPU s / 1,000 logins after the warm-up', (r) => r.server?.cpuPer1000Logins, 2],
    ['first after start', (r) => r.warmup?.cpuPer1000Logins, 2],
    ['last warm-up round', (r) => r.warmup?.lastRoundCpuPer1000Logins, 2],
    ['failed logins', (r) => r.login.failed + (r.warmup?.failed ?? 0), 0],
  ];
  const out: string[] = [];
  for (const sc of results.scenarios) {
    const servers = (Object.keys(results.servers) as ServerKey[]).filter((k) => runsOf(results.servers[k], sc).length > 1);
    if (servers.length === 0) continue;
    out.push(`| server | ${sc} run | ${cols.map((c) => c[0]).join(' | ')} |`, `|---|---:|${cols.map(() => '---:|').join('')}`);
    for (const k of servers) {
      const s = results.servers[k]!;
      runsOf(s, sc).forEach((r, i) => out.push(`| ${s.name} | ${i + 1}${r === s.reports[sc] ? ' (median)' : ''} | ${cols.map(([, f, d]) => fmt(f(r), d)).join(' | ')} |`));
      out.push(`| ${s.name} | median | ${cols.map(([, f, d]) => fmt(figure(results, k, sc, f), d)).join(' | ')} |`);
    }
  }
  return out.join('\n');
}

function targetTable(results: Results, items: Target[]): string {
  const get = (s: ServerKey, sc: ScenarioName, f: (r: LoadReport) => number | undefined): number | undefined => figure(results, s, sc, f);
  const lines = ['| target | Shoal/Prosody | goal | met | Shoal/ejabberd | goal | met |', '|---|---:|---:|:-:|---:|---:|:-:|'];
  for (const [what, sc, f, dir, goalP, goalE] of items) {
    const shoal = get('shoal', sc, f);
    const vsP = ratio(shoal, get('prosody', sc, f));
    const vsE = ratio(shoal, get('ejabberd', sc, f));
    const met = (r: number | undefined, g: number): string => (r === undefined ? '—' : (dir === 'up' ? r >= g : r <= g) ? 'yes' : 'no');
    const op = dir === 'up' ? '≥' : '≤';
    lines.push(`| ${what} | ${fmt(vsP)} | ${op} ${+goalP.toFixed(2)} | ${met(vsP, goalP)} | ${fmt(vsE)} | ${op} ${+goalE.toFixed(2)} | ${met(vsE, goalE)} |`);
  }
  return lines.join('\n');
}

/**
 * The cost of archiving (issue 11): the chat load with archiving off (`chat`) and on
 * (`chat-mam`), Shoal's two runs beside Prosody's and ejabberd's with mod_mam, then each
 * server's own off/on change. Empty when chat-mam did not run.
 */
export function archivingTable(results: Results): string {
  if (!results.scenarios.includes('chat-mam')) return '';
  const cols: { key: ServerKey; sc: ScenarioName; head: string }[] = [
    { key: 'shoal', sc: 'chat', head: 'Shoal, MAM off' },
    { key: 'shoal', sc: 'chat-mam', head: 'Shoal, MAM on' },
    { key: 'prosody', sc: 'chat-mam', head: 'Prosody, mod_mam' },
    { key: 'ejabberd', sc: 'chat-mam', head: 'ejabberd, mod_mam' },
  ];
  const present = cols.filter((c) => results.servers[c.key] && results.scenarios.includes(c.sc));
  const cpu1000 = (r: ScenarioReport): number | undefined => (r.server && r.messages?.received ? r.server.cpuPer100kMessages / 100 : undefined);
  const archived = (r: ScenarioReport): string => (r.archive ? `${fmt(r.archive.archived, 0)} of ${fmt(r.archive.expected, 0)}` : '—');
  const rows: [string, (r: ScenarioReport) => string][] = [
    ['messages/s', (r) => fmt(r.messages?.perSecond, 0)],
    ['server CPU s per 1,000 messages', (r) => fmt(cpu1000(r), 3)],
    ['message latency p50 / p99 (ms)', (r) => (r.messages ? `${fmt(r.messages.latencyMs.p50, 2)} / ${fmt(r.messages.latencyMs.p99, 2)}` : '—')],
    ['messages received of sent', (r) => (r.messages ? `${fmt(r.messages.received, 0)} of ${fmt(r.messages.sent, 0)}` : '—')],
    ['archived copies during the run (of 2 × sent when on)', archived],
  ];
  const out = [`| figure | ${present.map((c) => c.head).join(' | ')} |`, `|---|${present.map(() => '---:|').join('')}`];
  for (const [label, f] of rows) {
    out.push(`| ${label} | ${present.map((c) => { const r = report(results, c.key, c.sc); return r ? f(r) : '—'; }).join(' | ')} |`);
  }
  // Each server against itself: what turning archiving on costs it.
  const own = (['shoal', 'prosody', 'ejabberd'] as ServerKey[]).filter((k) => report(results, k, 'chat') && report(results, k, 'chat-mam'));
  if (own.length > 0) {
    out.push('', '| server | messages/s off | on | change | CPU s / 1,000 messages off | on | change |', '|---|---:|---:|---:|---:|---:|---:|');
    const pct = (on: number | undefined, off: number | undefined): string => {
      const r = ratio(on, off);
      return r === undefined ? '—' : `${r >= 1 ? '+' : ''}${((r - 1) * 100).toFixed(0)}%`;
    };
    for (const k of own) {
      const off = report(results, k, 'chat')!;
      const on = report(results, k, 'chat-mam')!;
      out.push(
        `| ${results.servers[k]!.name} | ${fmt(off.messages?.perSecond, 0)} | ${fmt(on.messages?.perSecond, 0)} | ${pct(on.messages?.perSecond, off.messages?.perSecond)} | ` +
          `${fmt(cpu1000(off), 3)} | ${fmt(cpu1000(on), 3)} | ${pct(cpu1000(on), cpu1000(off))} |`,
      );
    }
  }
  return out.join('\n');
}
