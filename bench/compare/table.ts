// The side-by-side table: one row per figure, one column per server, then the
// ratios Shoal/Prosody and Shoal/ejabberd; and where Shoal stands against the
// targets of issue 5.
import type { LoadReport } from '../load/run.js';

export const SCENARIOS = ['login', 'idle', 'chat', 'roster', 'resume'] as const;
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

export interface Results {
  scenarios: ScenarioName[];
  servers: Partial<
    Record<ServerKey, { name: string; version: string; reports: Partial<Record<ScenarioName, LoadReport>>; cpu: Partial<Record<ScenarioName, CpuShare>> }>
  >;
  errors: Record<string, string>;
}

export interface Metric {
  scenario: ScenarioName;
  label: (r: LoadReport) => string;
  /** 'up': more is better; 'down': less is better; 'none': a count to check, not compare. */
  better: 'up' | 'down' | 'none';
  value: (r: LoadReport) => number | undefined;
  /** Shown in the chart. */
  chart?: string;
  digits?: number;
  /** A correctness count: anything but 0 is flagged in the table and listed by failedChecks(). */
  mustBeZero?: boolean;
}

const rosterCpu = (r: LoadReport): number | undefined =>
  r.server && r.login.succeeded > 0 ? ((r.server.cpuLoginS + r.server.cpuPresenceS) / r.login.succeeded) * 1000 : undefined;

export const METRICS: Metric[] = [
  { scenario: 'login', label: () => 'logins/s (sustained)', better: 'up', value: (r) => r.login.sustainedPerSecond, chart: 'logins/s', digits: 0 },
  { scenario: 'login', label: (r) => `time until all ${r.clients} online (s)`, better: 'down', value: (r) => r.login.elapsedMs / 1000, digits: 2 },
  { scenario: 'login', label: () => 'login latency p50 (ms)', better: 'down', value: (r) => r.login.latencyMs.p50, digits: 1 },
  { scenario: 'login', label: () => 'login latency p99 (ms)', better: 'down', value: (r) => r.login.latencyMs.p99, digits: 1 },
  { scenario: 'login', label: () => 'server CPU s per 1,000 logins', better: 'down', value: (r) => r.server?.cpuPer1000Logins, chart: 'CPU/login', digits: 2 },
  { scenario: 'login', label: () => 'failed logins', better: 'none', value: (r) => r.login.failed, digits: 0, mustBeZero: true },
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

function report(results: Results, server: ServerKey, scenario: ScenarioName): LoadReport | undefined {
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
      const r = s.reports[m.scenario];
      const v = r ? m.value(r) : undefined;
      if (r && v !== undefined && v !== 0) out.push(`${s.name} / ${m.scenario}: ${m.label(r)} = ${v}`);
    }
  }
  return out;
}

/** Issue 5's targets: logins/s ≥ 1.5× Prosody, messages/s ≥ 2× Prosody, memory per idle connection ≤ 0.5× Prosody, all ≥ ejabberd. */
export function targets(results: Results): string {
  const get = (s: ServerKey, sc: ScenarioName, f: (r: LoadReport) => number | undefined): number | undefined => {
    const r = report(results, s, sc);
    return r ? f(r) : undefined;
  };
  const items: [string, ScenarioName, (r: LoadReport) => number | undefined, 'up' | 'down', number][] = [
    ['logins/s', 'login', (r) => r.login.sustainedPerSecond, 'up', 1.5],
    ['messages/s', 'chat', (r) => r.messages?.perSecond, 'up', 2],
    ['memory per idle TLS connection', 'idle', (r) => r.server?.rssPerClientKiB, 'down', 0.5],
  ];
  const lines = ['| target | Shoal/Prosody | goal | met | Shoal/ejabberd | goal | met |', '|---|---:|---:|:-:|---:|---:|:-:|'];
  for (const [what, sc, f, dir, goal] of items) {
    const shoal = get('shoal', sc, f);
    const vsP = ratio(shoal, get('prosody', sc, f));
    const vsE = ratio(shoal, get('ejabberd', sc, f));
    const met = (r: number | undefined, g: number): string => (r === undefined ? '—' : (dir === 'up' ? r >= g : r <= g) ? 'yes' : 'no');
    const op = dir === 'up' ? '≥' : '≤';
    lines.push(`| ${what} | ${fmt(vsP)} | ${op} ${goal} | ${met(vsP, goal)} | ${fmt(vsE)} | ${op} 1 | ${met(vsE, 1)} |`);
  }
  return lines.join('\n');
}
