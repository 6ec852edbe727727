// Reads a V8 .cpuprofile (node --cpu-prof) and names where the time went: self
// time per function and per source file, as markdown tables.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

function shortUrl(url: string, repo: string): string {
  if (url === '') return '(native)';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(repo)) u = u.slice(repo.length + 1);
  u = u.replace(/^.*\/node_modules\//, 'node_modules/');
  return u;
}

export function profileTop(file: string, repo: string, top = 15): { functions: ProfileEntry[]; files: ProfileEntry[]; totalMs: number; idleMs: number } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // timeDeltas[i] is the time between sample i-1 and i; it is charged to sample i's node.
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fn = new Map<string, ProfileEntry>();
  const files = new Map<string, ProfileEntry>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url, repo)}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const e = fn.get(key) ?? { name, where, selfMs: 0, share: 0 };
    e.selfMs += us / 1000;
    fn.set(key, e);
    const f = n.callFrame.url ? shortUrl(n.callFrame.url, repo) : name;
    const fe = files.get(f) ?? { name: f, where: '', selfMs: 0, share: 0 };
    fe.selfMs += us / 1000;
    files.set(f, fe);
  }
  const finish = (m: Map<string, ProfileEntry>): ProfileEntry[] =>
    [...m.values()]
      .map((e) => ({ ...e, share: total > 0 ? (e.selfMs * 1000) / total : 0 }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top);
  return { functions: finish(fn), files: finish(files), totalMs: total / 1000, idleMs: idle / 1000 };
}

export function summarizeProfile(file: string, repo: string): string {
  const t = profileTop(file, repo);
  const pct = (s: number): string => `${(s * 100).toFixed(1)}%`;
  const lines = [
    `Busy ${(t.totalMs / 1000).toFixed(2)} s, idle ${(t.idleMs / 1000).toFixed(2)} s (main thread; native work such as TLS record encryption and handshakes is charged to \`(program)\` or to the JavaScript frame that called it).`,
    '',
    '| self time | share | function | where |',
    '|---:|---:|---|---|',
    ...t.functions.map((e) => `| ${e.selfMs.toFixed(0)} ms | ${pct(e.share)} | \`${e.name}\` | ${e.where} |`),
    '',
    '| self time | share | file |',
    '|---:|---:|---|',
    ...t.files.map((e) => `| ${e.selfMs.toFixed(0)} ms | ${pct(e.share)} | ${e.name} |`),
  ];
  return lines.join('\n');
}
