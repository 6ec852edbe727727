// The cluster benchmark's report as Markdown tables: one column per cluster
// size, and the Redis commands behind each figure.
import type { ClusterBenchReport, PhaseReport, SizeReport } from './run.js';
import type { BenchmarkLine } from './redis.js';

const num = (v: number, digits = 0): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pair = (a: number, b: number, digits = 1): string => `${num(a, digits)} / ${num(b, digits)}`;

function phase(s: SizeReport, placement: PhaseReport['placement'], load: PhaseReport['load']): PhaseReport | undefined {
  return s.phases.find((p) => p.placement === placement && p.load === load);
}

type Row = [string, (s: SizeReport) => string];

function phaseRows(placement: PhaseReport['placement']): Row[] {
  const busy = (f: (p: PhaseReport) => string) => (s: SizeReport) => {
    const p = phase(s, placement, 'busy');
    return p ? f(p) : '—';
  };
  const light = (f: (p: PhaseReport) => string) => (s: SizeReport) => {
    const p = phase(s, placement, 'light');
    return p ? f(p) : '—';
  };
  return [
    [`${placement}: messages/s (every pair busy)`, busy((p) => num(p.perSecond))],
    [`${placement}: latency p50 / p99, busy (ms)`, busy((p) => pair(p.latencyMs.p50, p.latencyMs.p99))],
    [`${placement}: latency p50 / p99, light load (ms)`, light((p) => pair(p.latencyMs.p50, p.latencyMs.p99, 2))],
    [`${placement}: node CPU s per 100,000 messages (all nodes, busy)`, busy((p) => num(p.nodeCpuPer100k, 1))],
    [`${placement}: Redis commands per message, busy / light`, (s) => `${busy((p) => num(p.redis.commandsPerUnit, 2))(s)} / ${light((p) => num(p.redis.commandsPerUnit, 2))(s)}`],
    [`${placement}: Redis CPU µs per message, busy / light`, (s) => `${busy((p) => num(p.redis.cpuUsPerUnit, 1))(s)} / ${light((p) => num(p.redis.cpuUsPerUnit, 1))(s)}`],
    [`${placement}: Redis bytes out per message, busy`, busy((p) => num(p.redis.netOutPerUnit))],
  ];
}

const ROWS: Row[] = [
  ['logins/s', (s) => num(s.login.perSecond)],
  ['login latency p50 / p99 (ms)', (s) => pair(s.login.latencyMs.p50, s.login.latencyMs.p99)],
  ['login: median ms per step', (s) => Object.entries(s.login.stepP50Ms).map(([k, v]) => `${k} ${num(v)}`).join(', ')],
  ['node CPU s per 1,000 logins (all nodes)', (s) => num(s.login.nodeCpuPer1000, 2)],
  ['Redis commands per login / per logout', (s) => pair(s.login.redis.commandsPerUnit, s.logout.redis.commandsPerUnit, 2)],
  ['logout of everyone at once: until the registry is empty (s)', (s) => num(s.logout.elapsedMs / 1000, 1)],
  ['logout: closes the server left unanswered for 10 s', (s) => num(s.logout.unanswered)],
  ['Redis CPU µs per login', (s) => num(s.login.redis.cpuUsPerUnit, 1)],
  ['Redis bytes out per login (replies + pub/sub deliveries)', (s) => num(s.login.redis.netOutPerUnit)],
  ['Redis bytes per online session (record + resource claim)', (s) => num(s.registry.bytesPerSession)],
  ...phaseRows('same-node'),
  ...phaseRows('cross-node'),
  ['Redis while idle: commands/s (heartbeats), subtracted above', (s) => num(s.background.commandsPerS, 1)],
  ['node RSS with everyone online (MiB, each node)', (s) => s.nodeRssMiB.map((v) => num(v)).join(', ')],
  ['load generator CPU, busy phases (% of a core)', (s) => s.phases.filter((p) => p.load === 'busy').map((p) => num(p.generatorCpuPercent)).join(', ')],
  ['failed logins (must be 0)', (s) => num(s.login.failed)],
  ['messages lost / duplicated (must be 0)', (s) => `${s.phases.reduce((n, p) => n + p.lost, 0)} / ${s.phases.reduce((n, p) => n + p.duplicates, 0)}`],
];

/** The main table: one row per figure, one column per cluster size. */
export function mainTable(r: ClusterBenchReport): string {
  const head = `| figure | ${r.sizes.map((s) => `${s.nodes} node${s.nodes > 1 ? 's' : ''}`).join(' | ')} |`;
  const sep = `|---|${r.sizes.map(() => '---:').join('|')}|`;
  return [head, sep, ...ROWS.map(([label, f]) => `| ${label} | ${r.sizes.map(f).join(' | ')} |`)].join('\n');
}

/** Redis calls per unit by command: what a login, a logout and a message cost, command by command. */
export function commandTable(r: ClusterBenchReport): string {
  const cols: [string, (s: SizeReport) => Record<string, number> | undefined][] = [
    ['login', (s) => s.login.redis.callsPerUnit],
    ['logout', (s) => s.logout.redis.callsPerUnit],
    ['cross-node msg, busy', (s) => phase(s, 'cross-node', 'busy')?.redis.callsPerUnit],
    ['cross-node msg, light', (s) => phase(s, 'cross-node', 'light')?.redis.callsPerUnit],
  ];
  const out: string[] = [];
  for (const s of r.sizes) {
    const maps = cols.map(([, f]) => f(s));
    const names = [...new Set(maps.flatMap((m) => Object.keys(m ?? {})))].sort();
    out.push(`${s.nodes} node${s.nodes > 1 ? 's' : ''} (raw calls per unit, heartbeats included):`, '');
    out.push(`| command | ${cols.map(([c]) => c).join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`);
    for (const name of names) out.push(`| ${name} | ${maps.map((m) => (m === undefined ? '—' : num(m[name] ?? 0, 3))).join(' | ')} |`);
    out.push('');
  }
  return out.join('\n');
}

export function benchmarkTable(lines: BenchmarkLine[]): string {
  const out = ['| command | one at a time: ops/s | p50 ms | pipelined 16 deep: ops/s | p50 ms |', '|---|---:|---:|---:|---:|'];
  for (const cmd of [...new Set(lines.map((l) => l.command))]) {
    const one = lines.find((l) => l.command === cmd && l.pipeline === 1);
    const many = lines.find((l) => l.command === cmd && l.pipeline > 1);
    out.push(`| ${cmd} | ${one ? num(one.perSecond) : '—'} | ${one ? num(one.p50Ms, 3) : '—'} | ${many ? num(many.perSecond) : '—'} | ${many ? num(many.p50Ms, 3) : '—'} |`);
  }
  return out.join('\n');
}

/** Login failures, lost messages and what the nodes logged at warn or above: empty when the run was clean. */
export function problems(r: ClusterBenchReport): string[] {
  const out: string[] = [];
  for (const s of r.sizes) {
    for (const [k, n] of Object.entries(s.login.failures)) out.push(`${s.nodes} nodes: login failed ${n}x: ${k}`);
    for (const p of s.phases) if (p.lost > 0 || p.duplicates > 0) out.push(`${s.nodes} nodes, ${p.placement} ${p.load}: ${p.lost} lost, ${p.duplicates} duplicated`);
    for (const [k, n] of Object.entries(s.nodeProblems)) out.push(`${s.nodes} nodes: node log ${k} (${n}x), the first: ${s.nodeProblemExamples[k] ?? ''}`);
  }
  return out;
}
