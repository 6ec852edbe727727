// What the soak's samples say: linear fits of memory over time (is it flat
// after warm-up?), event-loop lag and CPU after warm-up, and the two result
// files: RESULTS.md (tables) and RESULTS.png (gnuplot: memory, lag, connections
// and delivery rate over time).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gnuplot } from '../shared/gnuplot.js';
import type { Percentiles } from '../load/run.js';
import type { GeneratorReport } from './generator.js';
import type { ServerSample } from './protocol.js';
import type { HeapRow } from '../memory/heap.js';

/** A server sample placed on the run's time axis, with what the generator saw by then. */
export interface Point extends ServerSample {
  /** Seconds since the ramp began. */
  t: number;
  /** Messages received by their recipients so far (live and from offline storage). */
  delivered: number;
  /** The generator's CPU in the interval, % of one core. */
  genCpuPercent: number;
  /**
   * The whole machine's busy CPU in the interval, % of all its cores (/proc/stat). A virtual
   * machine whose host is busy may not report steal time: lag while the server, the generator
   * and the machine are all far from busy means the CPU was taken from outside.
   */
  machineCpuPercent: number;
}

/** Seconds since the ramp began. */
export interface Markers {
  rampEnd: number;
  /** The forced GC that ends the warm-up. */
  warmupEnd: number;
  /** The judged window begins once the backlog of that GC's pause is worked off. */
  judgedFrom: number;
  soakEnd: number;
  drainStart: number;
  drainEnd: number;
}

export interface Fit {
  /** MB per minute. */
  slope: number;
  /**
   * Its standard error, MB per minute (from the residuals; they are not independent, a sawtooth
   * least of all, so take it as a floor on the uncertainty).
   */
  se: number;
  /** Mean of the fitted values, MB. */
  mean: number;
  points: number;
}

export interface MemoryFits {
  rss: Fit;
  heapUsed: Fit;
  /** Over the heap right after each major GC (the live heap): the clearest leak signal. */
  heapAfterMajorGc: Fit;
}

export interface Analysis {
  /** The judged window: from shortly after the warm-up's end to the end of the soak. */
  postWarmup: MemoryFits;
  /** The second half of the soak (the verdict's window). */
  secondHalf: MemoryFits;
  /** A fit is flat when it would add less than this share of its level in an hour. */
  flatThreshold: number;
  flat: { rss: boolean; heap: boolean };
  /** In the judged window: the mean and the worst of the intervals' p99s, and the largest delay. */
  lag: { p99Mean: number; p99Worst: number; max: number };
  serverCpu: { mean: number; max: number };
  generatorCpu: { mean: number; max: number };
  machineCpu: { mean: number; max: number };
  connections: { min: number; max: number };
}

/** The memory the forced-GC samples found, and their pauses. */
export interface GcPoint {
  label: string;
  t: number;
  sample: ServerSample;
  gcMs: number;
}

/** Heap growth between two forced-GC points, by constructor (self sizes), largest first. */
export interface HeapDiff {
  title: string;
  rows: HeapRow[];
}

export interface SoakReport {
  startedAt: string;
  params: Record<string, string | number | boolean>;
  markers: Markers;
  /** Seconds spent before the ramp (accounts derived and written, server started). */
  setupS: number;
  totalS: number;
  generator: GeneratorReport;
  /** Offline messages still stored after the final drain (should be 0). */
  offlineLeft: number;
  gcPoints: GcPoint[];
  analysis: Analysis;
  points: Point[];
  serverLog: { warnings: number; errors: number; examples: string[] };
  /** With heap snapshots (--heap-snapshots). */
  heapDiffs: HeapDiff[];
  /** Where the soak could not do what it meant to (e.g. the ramp ended with accounts out). */
  notes: string[];
}

const MB = 1024 * 1024;

/** Least-squares slope of y (bytes) over t (seconds), in MB per minute; NaN without two points. */
export function fit(points: { t: number; y: number }[]): Fit {
  const n = points.length;
  if (n < 2) return { slope: Number.NaN, se: Number.NaN, mean: n === 1 ? points[0]!.y / MB : Number.NaN, points: n };
  let st = 0;
  let sy = 0;
  for (const p of points) {
    st += p.t;
    sy += p.y;
  }
  const mt = st / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.y - my);
    den += (p.t - mt) ** 2;
  }
  if (den === 0) return { slope: Number.NaN, se: Number.NaN, mean: my / MB, points: n };
  const b = num / den;
  let rss = 0;
  for (const p of points) rss += (p.y - my - b * (p.t - mt)) ** 2;
  const se = n > 2 ? Math.sqrt(rss / (n - 2) / den) : Number.NaN;
  return { slope: (b / MB) * 60, se: (se / MB) * 60, mean: my / MB, points: n };
}

function fits(points: Point[]): MemoryFits {
  const usable = points.filter((p) => !p.forcedGc);
  return {
    rss: fit(usable.map((p) => ({ t: p.t, y: p.rss }))),
    heapUsed: fit(usable.map((p) => ({ t: p.t, y: p.heapUsed }))),
    heapAfterMajorGc: fit(usable.filter((p) => p.heapAfterMajorGc !== undefined).map((p) => ({ t: p.t, y: p.heapAfterMajorGc! }))),
  };
}

/**
 * Flat: the slope would change the level by less than `threshold` of it in an hour, or it is
 * within two standard errors of zero (no trend the samples can tell). NaN slopes are not flat.
 */
function isFlat(f: Fit, threshold: number): boolean {
  return Number.isFinite(f.slope) && (Math.abs(f.slope) * 60 < threshold * f.mean || Math.abs(f.slope) < 2 * f.se);
}

const trend = (flat: boolean, f: Fit): string => (flat ? 'flat' : f.slope > 0 ? 'rising' : 'falling');

const stats = (xs: number[]): { mean: number; max: number } =>
  xs.length === 0 ? { mean: 0, max: 0 } : { mean: xs.reduce((a, b) => a + b, 0) / xs.length, max: Math.max(...xs) };

export function analyze(points: Point[], m: Markers, flatThreshold = 0.05): Analysis {
  const soak = points.filter((p) => p.t > m.judgedFrom && p.t <= m.soakEnd);
  const half = points.filter((p) => p.t > Math.max(m.judgedFrom, m.rampEnd + (m.soakEnd - m.rampEnd) / 2) && p.t <= m.soakEnd);
  const secondHalf = fits(half);
  // The live heap is the verdict's heap figure when major GCs happened in the window; else heapUsed.
  const heapFit = secondHalf.heapAfterMajorGc.points >= 3 ? secondHalf.heapAfterMajorGc : secondHalf.heapUsed;
  const calm = soak.filter((p) => !p.forcedGc);
  const p99s = calm.map((p) => p.lagP99Ms);
  return {
    postWarmup: fits(soak),
    secondHalf,
    flatThreshold,
    flat: { rss: isFlat(secondHalf.rss, flatThreshold), heap: isFlat(heapFit, flatThreshold) },
    lag: { p99Mean: stats(p99s).mean, p99Worst: stats(p99s).max, max: stats(calm.map((p) => p.lagMaxMs)).max },
    serverCpu: stats(soak.map((p) => p.cpuPercent)),
    generatorCpu: stats(soak.map((p) => p.genCpuPercent)),
    machineCpu: stats(soak.map((p) => p.machineCpuPercent)),
    connections: { min: soak.length ? Math.min(...soak.map((p) => p.connections)) : 0, max: soak.length ? Math.max(...soak.map((p) => p.connections)) : 0 },
  };
}

// --- Output ----------------------------------------------------------------------------------

const n0 = (v: number): string => Math.round(v).toLocaleString('en-US');
const f1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '—');
const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '—');
const mb = (bytes: number | undefined): string => (bytes === undefined ? '—' : (bytes / MB).toFixed(1));
const signed = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(2)}` : '—');

function pct(p: Percentiles): string {
  return p.count === 0 ? '—' : `${f1(p.p50)} / ${f1(p.p99)} / ${f1(p.max)}`;
}

/** The verdict line, also printed at the end of a run. */
export function verdict(r: SoakReport): string {
  const c = r.generator.counts;
  const a = r.analysis;
  const memory = a.flat.rss && a.flat.heap ? 'memory flat after warm-up' : `memory NOT flat after warm-up (RSS ${trend(a.flat.rss, a.secondHalf.rss)}, live heap ${trend(a.flat.heap, liveHeap(a))})`;
  const warm = r.gcPoints.find((g) => g.label === 'warm-up end')?.sample;
  const end = r.gcPoints.find((g) => g.label === 'soak end')?.sample;
  // The fits see garbage and V8's heap growing between major GCs; forced GCs at both ends do not.
  const forced = warm && end ? `; after forced GCs, warm-up end → soak end: RSS ${mb(warm.rss)} → ${mb(end.rss)} MB, heap ${mb(warm.heapUsed)} → ${mb(end.heapUsed)} MB` : '';
  return `${c.lost === 0 && c.duplicates === 0 ? 'nothing lost' : `${c.lost} LOST, ${c.duplicates} duplicated`} (${n0(c.acked)} acknowledged messages); ${memory}: RSS ${signed(a.secondHalf.rss.slope)} MB/min, live heap ${signed(liveHeap(a).slope)} MB/min over the second half${forced}`;
}

/** Rows of the resident-memory breakdown table (forced-GC points). */
function breakdownRows(r: SoakReport): string[] {
  const labels = ['baseline', 'warm-up end', 'soak end', 'after drain'];
  const at = labels.map((l) => r.gcPoints.find((g) => g.label === l)?.sample);
  const row = (label: string, f: (s: NonNullable<ServerSample['breakdown']>, heapTotal: number) => number): string =>
    `| ${label} | ${at.map((s) => (s?.breakdown ? mb(f(s.breakdown, s.heapTotal)) : '—')).join(' | ')} |`;
  const spaces = [...new Set(at.flatMap((s) => Object.keys(s?.breakdown?.spaces ?? {})))];
  return [
    row('RSS, file-backed (node, libraries)', (b) => b.rssFile),
    row('RSS, anonymous', (b) => b.rssAnon),
    row('... outside the V8 heap (anonymous − heap total)', (b, total) => b.rssAnon - total),
    ...spaces.map((sp) => row(`V8 ${sp.replace(/_/g, ' ')}`, (b) => b.spaces[sp] ?? Number.NaN)),
  ];
}

function liveHeap(a: Analysis): Fit {
  return a.secondHalf.heapAfterMajorGc.points >= 3 ? a.secondHalf.heapAfterMajorGc : a.secondHalf.heapUsed;
}

export function markdown(r: SoakReport, cmdline: string, machine: Record<string, string>, png: string | undefined): string {
  const c = r.generator.counts;
  const a = r.analysis;
  const m = r.markers;
  const gc = (label: string): GcPoint | undefined => r.gcPoints.find((g) => g.label === label);
  const memRow = (label: string, key: 'rss' | 'heapUsed' | 'heapTotal' | 'external' | 'arrayBuffers'): string =>
    `| ${label} | ${['baseline', 'warm-up end', 'soak end', 'after drain'].map((l) => mb(gc(l)?.sample[key])).join(' | ')} |`;
  const slope = (f: Fit): string => `${signed(f.slope)}${Number.isFinite(f.se) ? ` ± ${f2(2 * f.se)}` : ''}`;
  const fitRow = (label: string, pw: Fit, sh: Fit): string => `| ${label} | ${f1(pw.mean)} | ${slope(pw)} | ${f1(sh.mean)} | ${slope(sh)} | ${f1((sh.slope * 60 * 100) / sh.mean)}% |`;
  const failures = Object.entries(r.generator.failures).sort((x, y) => y[1] - x[1]);
  const params = Object.entries(r.params).map(([k, v]) => `| ${k} | ${v} |`);
  return [
    '# Soak: Shoal under 10,000 connections for 10 minutes',
    '',
    `Generated by \`${cmdline}\` on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${(r.totalS / 60).toFixed(1)} minutes in all. What it does and how to read it: [README.md](README.md).`,
    '',
    `**Verdict: ${verdict(r)}.**`,
    '',
    png ? `![RSS, heap, event-loop lag, connections and deliveries over time](${png})\n` : '',
    '## Parameters',
    '',
    '| parameter | value |',
    '|---|---|',
    ...params,
    `| machine | ${machine.cpu}, ${machine.memory}; ${machine.os} |`,
    `| software | Node.js ${machine.node}, ${machine.openssl} |`,
    '',
    '## Timeline',
    '',
    '| phase | from (s) | to (s) |',
    '|---|---:|---:|',
    `| setup (accounts derived and written, server started) | ${f1(-r.setupS)} | 0 |`,
    `| ramp (every account logs in) | 0 | ${f1(m.rampEnd)} |`,
    `| warm-up (traffic, not judged) | ${f1(m.rampEnd)} | ${f1(m.warmupEnd)} |`,
    `| forced GC and its backlog (traffic, not judged) | ${f1(m.warmupEnd)} | ${f1(m.judgedFrom)} |`,
    `| soak (traffic, judged) | ${f1(m.judgedFrom)} | ${f1(m.soakEnd)} |`,
    `| settle and log out | ${f1(m.soakEnd)} | ${f1(m.drainStart)} |`,
    `| drain (every account logs in once more for its offline messages) | ${f1(m.drainStart)} | ${f1(m.drainEnd)} |`,
    '',
    '## Totals',
    '',
    '| figure | count |',
    '|---|---:|',
    `| messages sent | ${n0(c.sent)} |`,
    `| acknowledged (ping result after the message) | ${n0(c.acked)} |`,
    `| not acknowledged (sender's connection ended first) | ${n0(c.unacked)} |`,
    `| delivered live | ${n0(c.deliveredLive)} |`,
    `| delivered from offline storage | ${n0(c.deliveredOffline)} |`,
    `| **lost** (acknowledged, never received, not bounced) | **${n0(c.lost)}** |`,
    `| **duplicated** (extra copies received) | **${n0(c.duplicates)}** |`,
    `| bounced with an error | ${n0(c.bounced)} |`,
    `| misrouted (received by someone else) | ${n0(c.misrouted)} |`,
    `| offline messages left in storage after the drain | ${n0(r.offlineLeft)} |`,
    `| not sent (no sender or recipient in a state to take part) | ${n0(c.skipped)} |`,
    `| logins (ramp, reconnects, drain) | ${n0(c.logins)} |`,
    `| login failures | ${n0(c.loginFailures)} |`,
    `| abrupt drops (socket destroyed) | ${n0(c.drops)} |`,
    `| ... reconnected before the server was seen to end the dropped session | ${n0(c.dropsUnconfirmed)} |`,
    `| drops called off (the server had not delivered to the victim within the quiesce timeout) | ${n0(c.dropsCalledOff)} |`,
    `| clean logouts (during the soak and at its end) | ${n0(c.logouts)} |`,
    `| ... not closed by the server in time | ${n0(c.logoutTimeouts)} |`,
    `| unexpected disconnects | ${n0(c.unexpectedCloses)} |`,
    `| presence changes sent | ${n0(c.presenceSent)} |`,
    `| presence stanzas received | ${n0(c.presenceReceived)} |`,
    `| server log lines at warn / error | ${n0(r.serverLog.warnings)} / ${n0(r.serverLog.errors)} |`,
    '',
    '| latency (ms) | p50 / p99 / max |',
    '|---|---:|',
    `| live delivery, send to receipt (judged window) | ${pct(r.generator.latencyMs)} |`,
    `| login: STARTTLS, SCRAM-SHA-1, bind, session, roster, presence, ping (ramp) | ${pct(r.generator.rampLoginMs)} |`,
    `| login (reconnects in the judged window) | ${pct(r.generator.loginMs)} |`,
    `| login (the drain: everyone at once after a mass logout) | ${pct(r.generator.drainLoginMs)} |`,
    '',
    ...(failures.length > 0 ? ['Errors by kind:', '', ...failures.slice(0, 20).map(([k, v]) => `- ${k}: ${v}`), ''] : []),
    ...(r.generator.lostDetails.length > 0 ? ['Lost messages (the first ten; times in seconds since the ramp began):', '', ...r.generator.lostDetails.map((d) => `- ${d}`), ''] : []),
    ...(r.serverLog.examples.length > 0 ? ['Server log (first lines at warn or above):', '', '```', ...r.serverLog.examples, '```', ''] : []),
    ...(r.notes.length > 0 ? ['Notes:', '', ...r.notes.map((n) => `- ${n}`), ''] : []),
    '## Memory',
    '',
    'After forced GCs (`gc()` four times in the server process), MB:',
    '',
    '| | baseline (0 connections, before the ramp) | warm-up end | soak end | after the drain (0 connections) |',
    '|---|---:|---:|---:|---:|',
    memRow('RSS', 'rss'),
    memRow('heap used', 'heapUsed'),
    memRow('heap total', 'heapTotal'),
    memRow('external', 'external'),
    memRow('array buffers', 'arrayBuffers'),
    `| connections | ${['baseline', 'warm-up end', 'soak end', 'after drain'].map((l) => n0(gc(l)?.sample.connections ?? 0)).join(' | ')} |`,
    `| GC pause (ms) | ${['baseline', 'warm-up end', 'soak end', 'after drain'].map((l) => f1(gc(l)?.gcMs ?? Number.NaN)).join(' | ')} |`,
    '',
    'Where the resident memory is at the same points, MB: anonymous RSS outside the V8 heap is what malloc holds (OpenSSL per connection, socket buffers, SQLite, and freed memory the allocator has not given back); the V8 spaces are committed sizes.',
    '',
    '| | baseline | warm-up end | soak end | after the drain |',
    '|---|---:|---:|---:|---:|',
    ...breakdownRows(r),
    '',
    `Linear fits of the samples in the judged window (forced-GC intervals left out), MB and MB/min; "second half" is the second half of the traffic time; slopes ± two standard errors; "per hour" is the second half's slope over an hour as a share of its level. Flat means under ${a.flatThreshold * 100}% per hour, or a slope within two standard errors of zero.`,
    '',
    '| series | judged window mean | slope | second half mean | slope | per hour |',
    '|---|---:|---:|---:|---:|---:|',
    fitRow('RSS', a.postWarmup.rss, a.secondHalf.rss),
    fitRow('heap used', a.postWarmup.heapUsed, a.secondHalf.heapUsed),
    fitRow('heap after each major GC (live heap)', a.postWarmup.heapAfterMajorGc, a.secondHalf.heapAfterMajorGc),
    '',
    `RSS: **${trend(a.flat.rss, a.secondHalf.rss)}**; live heap: **${trend(a.flat.heap, liveHeap(a))}** (${liveHeap(a).points} points).`,
    '',
    ...r.heapDiffs.flatMap((d) => [
      `Heap growth ${d.title} (heap snapshots after forced GCs, self sizes by constructor):`,
      '',
      '| bytes | objects | constructor |',
      '|---:|---:|---|',
      ...d.rows.map((row) => `| ${n0(row.size)} | ${f2(row.count)} | ${row.key.replace(/\|/g, '\\|')} |`),
      '',
    ]),
    '## Event loop and CPU in the judged window',
    '',
    '| figure | value |',
    '|---|---:|',
    `| event-loop lag p99, mean of the 2-s intervals (ms) | ${f1(a.lag.p99Mean)} |`,
    `| event-loop lag p99, worst 2-s interval (ms) | ${f1(a.lag.p99Worst)} |`,
    `| event-loop lag max (ms) | ${f1(a.lag.max)} |`,
    `| server CPU, mean / max of the intervals (% of a core) | ${f1(a.serverCpu.mean)} / ${f1(a.serverCpu.max)} |`,
    `| load generator CPU, mean / max (% of a core) | ${f1(a.generatorCpu.mean)} / ${f1(a.generatorCpu.max)} |`,
    `| the whole machine's CPU, mean / max (% of all cores) | ${f1(a.machineCpu.mean)} / ${f1(a.machineCpu.max)} |`,
    `| server connections, min / max | ${n0(a.connections.min)} / ${n0(a.connections.max)} |`,
    '',
    '<details><summary>Samples (CSV: t s, RSS MB, heap used MB, live heap MB, heap total MB, lag p99 ms, lag max ms, server CPU %, machine CPU %, connections, delivered)</summary>',
    '',
    '```',
    ...r.points.map((p) => [f1(p.t), mb(p.rss), mb(p.heapUsed), mb(p.heapAfterMajorGc), mb(p.heapTotal), f2(p.lagP99Ms), f2(p.lagMaxMs), f1(p.cpuPercent), f1(p.machineCpuPercent), p.connections, p.delivered].join(',')),
    '```',
    '',
    '</details>',
    '',
  ].join('\n');
}

/** RESULTS.png: memory, lag and CPU, connections and delivery rate, against minutes. */
export function chart(r: SoakReport, png: string, workDir: string): boolean {
  const data = join(workDir, 'soak.dat');
  const rows: string[] = [];
  let prev: Point | undefined;
  for (const p of r.points) {
    const rate = prev && p.t > prev.t ? (p.delivered - prev.delivered) / (p.t - prev.t) : 0;
    const live = p.heapAfterMajorGc === undefined ? 'NaN' : (p.heapAfterMajorGc / MB).toFixed(2);
    rows.push([(p.t / 60).toFixed(4), (p.rss / MB).toFixed(2), (p.heapUsed / MB).toFixed(2), live, p.lagP99Ms.toFixed(2), p.lagMaxMs.toFixed(2), p.cpuPercent.toFixed(1), p.connections, rate.toFixed(1), p.machineCpuPercent.toFixed(1)].join(' '));
    prev = p;
  }
  writeFileSync(data, rows.join('\n') + '\n');
  const m = r.markers;
  const lines = [
    ['ramp end', m.rampEnd],
    ['warm-up end', m.warmupEnd],
    ['soak end', m.soakEnd],
    ['drain', m.drainStart],
  ] as const;
  const arrows = lines.map(([, t], i) => `set arrow ${i + 1} from first ${(t / 60).toFixed(3)}, graph 0 to first ${(t / 60).toFixed(3)}, graph 1 nohead dt 2 lc rgb "#888888"`);
  // Written down along each line from the top, so that neighbouring markers do not overlap.
  const labels = lines.map(([name, t], i) => `set label ${i + 1} "${name}" at first ${(t / 60).toFixed(3)}, graph 0.98 rotate by 90 right offset -0.7,0 font ",8" tc rgb "#666666"`);
  const d = JSON.stringify(data);
  const script = [
    'set terminal pngcairo size 1200,1000 font "DejaVu Sans,10" noenhanced',
    `set output ${JSON.stringify(png)}`,
    'set multiplot layout 3,1 title "Shoal soak: ' + `${r.params.connections} connections, ${r.params['messages/s']} msg/s, ${r.params['drops/s']} drops/s` + '"',
    'set grid',
    'set key outside top center horizontal',
    'set xlabel "minutes since the ramp began"',
    'set lmargin 10',
    'set rmargin 10',
    ...arrows,
    ...labels,
    'set title "server memory (MB)"',
    'set ylabel "MB"',
    'set yrange [0:*]',
    `plot ${d} using 1:2 with lines lw 2 lc rgb "#3b7dd8" title "RSS", '' using 1:3 with lines lc rgb "#d8703b" title "heap used", '' using 1:4 with points pt 7 ps 0.6 lc rgb "#2a9d4b" title "heap after major GC"`,
    `set title "server event-loop lag (ms, per ${r.params['sample interval (s)']}-s interval) and CPU (% of a core)"`,
    'set ylabel "ms"',
    'set y2label "% CPU"',
    'set y2tics',
    'set yrange [0:*]',
    'set y2range [0:100]',
    `plot ${d} using 1:6 with lines lc rgb "#e0a0a0" title "lag max", '' using 1:5 with lines lw 2 lc rgb "#c0392b" title "lag p99", '' using 1:7 axes x1y2 with lines lc rgb "#555555" title "server CPU % of a core", '' using 1:10 axes x1y2 with lines lc rgb "#9b59b6" title "machine CPU % of all cores"`,
    'set title "connections held by the server, and messages delivered per second"',
    'set ylabel "connections"',
    'set y2label "messages/s"',
    'set y2range [0:*]',
    `plot ${d} using 1:8 with lines lw 2 lc rgb "#3b7dd8" title "connections", '' using 1:9 axes x1y2 with lines lc rgb "#2a9d4b" title "delivered/s"`,
    'unset multiplot',
  ].join('\n');
  return gnuplot(script);
}
