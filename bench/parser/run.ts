// XML stream parsing throughput: Shoal's StreamParser against the raw parsers
// it could be built on. Not a test; run with `npm run bench:parser -- --mb 50`.
//
// Every candidate gets the same Buffers a socket would deliver and must find
// the same top-level elements; a candidate that disagrees with the generator is
// reported as a mismatch and the run exits non-zero.
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SaxesParser } from 'saxes';
import sax from 'sax';
import SaxLtx from 'ltx/src/parsers/ltx.js';
import LtxElement from 'ltx/src/Element.js';
import { StreamParser } from '../../src/xml/parser.js';
import { Element } from '../../src/xml/element.js';
import { generateStream, type GeneratedStream } from './generate.js';

interface Counts {
  stanzas: number;
  elements: number;
  textChars: number;
  error?: string;
}

interface Sink {
  write(chunk: Buffer): void;
  counts(): Counts;
}

interface Candidate {
  name: string;
  /** One line for the table: what the candidate does per event. */
  does: string;
  /**
   * `check` asks for full counts (elements, text) for the correctness pass; where
   * getting them costs extra work (walking a built tree) the timed runs skip it.
   */
  create(check: boolean): Sink;
}

/**
 * Raw parsers take strings; a server has to decode the socket's bytes first, and
 * Shoal's parser does so internally, so every other candidate pays the same
 * streaming decode (which also keeps split UTF-8 sequences intact).
 */
function decoder(): (chunk: Buffer) => string {
  const d = new TextDecoder('utf-8', { fatal: true });
  return (chunk) => d.decode(chunk, { stream: true });
}

function walkShoal(el: Element, c: Counts): void {
  c.elements++;
  for (const ch of el.children) {
    if (typeof ch === 'string') c.textChars += ch.length;
    else walkShoal(ch, c);
  }
}

function walkLtx(el: LtxElement, c: Counts): void {
  c.elements++;
  for (const ch of el.children) {
    if (typeof ch === 'string') c.textChars += ch.length;
    else walkLtx(ch, c);
  }
}

const CANDIDATES: Candidate[] = [
  {
    name: 'shoal StreamParser',
    does: 'saxes (xmlns, position) + Element tree, size/depth/attribute limits, restricted-xml checks',
    create(check) {
      const c: Counts = { stanzas: 0, elements: 0, textChars: 0 };
      const p = new StreamParser(
        {
          streamStart() {},
          element(el) {
            c.stanzas++;
            if (check) walkShoal(el, c);
          },
          whitespace() {},
          streamEnd() {},
          error(condition, text) {
            c.error ??= `${condition}: ${text}`;
          },
        },
        { maxStanzaSize: 1 << 30 },
      );
      return { write: (b) => p.write(b), counts: () => c };
    },
  },
  {
    name: 'saxes xmlns+position',
    does: 'raw events, count only (same saxes options as Shoal)',
    create: () => saxesSink(true, true),
  },
  {
    name: 'saxes xmlns',
    does: 'raw events, count only',
    create: () => saxesSink(true, false),
  },
  {
    name: 'saxes no-xmlns',
    does: 'raw events, count only, no namespace resolution',
    create: () => saxesSink(false, false),
  },
  {
    name: 'ltx parser',
    does: "raw events from ltx's own tokenizer, count only",
    create() {
      const c: Counts = { stanzas: 0, elements: 0, textChars: 0 };
      const decode = decoder();
      const p = new SaxLtx();
      let depth = 0;
      p.on('startElement', () => {
        if (++depth >= 2) c.elements++;
      });
      p.on('endElement', () => {
        if (depth-- === 2) c.stanzas++;
      });
      p.on('text', (t) => {
        if (depth >= 2) c.textChars += t.length;
      });
      p.on('error', (e) => {
        c.error ??= e.message;
      });
      return { write: (b) => p.write(decode(b)), counts: () => c };
    },
  },
  {
    name: 'ltx parser + ltx.Element',
    does: 'ltx tokenizer + ltx Element tree per stanza (as xmpp.js does)',
    create(check) {
      const c: Counts = { stanzas: 0, elements: 0, textChars: 0 };
      const decode = decoder();
      const p = new SaxLtx();
      let root: LtxElement | undefined;
      let cursor: LtxElement | undefined;
      p.on('startElement', (name, attrs) => {
        const el = new LtxElement(name, attrs);
        if (root === undefined) root = el;
        // Stanzas are not attached to the stream root, so finished ones can be collected.
        else if (cursor !== root) cursor!.cnode(el);
        cursor = el;
      });
      p.on('endElement', () => {
        const el = cursor!;
        if (el === root) return;
        if (el.parent === null) {
          c.stanzas++;
          if (check) walkLtx(el, c);
          cursor = root;
        } else cursor = el.parent;
      });
      p.on('text', (t) => {
        if (cursor !== undefined && cursor !== root) cursor.t(t);
      });
      p.on('error', (e) => {
        c.error ??= e.message;
      });
      return { write: (b) => p.write(decode(b)), counts: () => c };
    },
  },
  {
    name: 'sax strict xmlns',
    does: 'raw events, count only',
    create() {
      const c: Counts = { stanzas: 0, elements: 0, textChars: 0 };
      const decode = decoder();
      const p = sax.parser(true, { xmlns: true });
      let depth = 0;
      p.onopentag = () => {
        if (++depth >= 2) c.elements++;
      };
      p.onclosetag = () => {
        if (depth-- === 2) c.stanzas++;
      };
      p.ontext = (t) => {
        if (depth >= 2) c.textChars += t.length;
      };
      p.onerror = (e) => {
        c.error ??= e.message.split('\n')[0];
        throw e;
      };
      return {
        write(b) {
          if (c.error === undefined) {
            try {
              p.write(decode(b));
            } catch {
              // recorded by onerror; sax stays in its error state, so stop feeding it
            }
          }
        },
        counts: () => c,
      };
    },
  },
];

function saxesSink(xmlns: boolean, position: boolean): Sink {
  const c: Counts = { stanzas: 0, elements: 0, textChars: 0 };
  const decode = decoder();
  const p = new SaxesParser({ xmlns, position });
  let depth = 0;
  p.on('opentag', () => {
    if (++depth >= 2) c.elements++;
  });
  p.on('closetag', () => {
    if (depth-- === 2) c.stanzas++;
  });
  p.on('text', (t) => {
    if (depth >= 2) c.textChars += t.length;
  });
  p.on('error', (e) => {
    c.error ??= e.message.split('\n')[0];
  });
  return { write: (b) => p.write(decode(b)), counts: () => c };
}

// --- harness ---------------------------------------------------------------
//
// Each candidate runs in a child process of its own. In one process they
// disturb each other: three candidates share saxes' code, and V8's optimised
// versions of it depend on the object shapes seen so far, so whichever ran
// first decided the others' speed (raw saxes measured 31 MB/s after Shoal's
// parser and 74 MB/s alone). The input is regenerated in each child from the
// same seed, and its hash is compared so all candidates saw the same bytes.

/** A forced collection before each run, so heap figures start from live data only. */
function getGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

interface RunResult {
  ms: number;
  /** Highest V8 heap in use during the run (sampled every 64 chunks and at the end), in MB. */
  peakHeapMB: number;
  /** Time spent in garbage collection during the run. */
  gcMs: number;
  counts: Counts;
}

interface InputInfo {
  bytes: number;
  chunks: number;
  sha256: string;
  genMs: number;
  want: Counts;
  keepalives: number;
  splitsInTag: number;
  splitsInUtf8: number;
  kinds: GeneratedStream['kinds'];
}

/** What a child sends back to the parent. */
interface ChildReport {
  name: string;
  input: InputInfo;
  warm: RunResult;
  runs: RunResult[];
  gcExposed: boolean;
}

async function runOnce(
  cand: Candidate,
  input: GeneratedStream,
  check: boolean,
  gc: (() => void) | undefined,
  gcEntries: { start: number; duration: number }[],
): Promise<RunResult> {
  const sink = cand.create(check);
  const chunks = input.chunks;
  gc?.();
  let peak = v8.getHeapStatistics().used_heap_size;
  const t0 = performance.now();
  for (let i = 0; i < chunks.length; i++) {
    sink.write(chunks[i]!);
    if ((i & 63) === 63) {
      const h = v8.getHeapStatistics().used_heap_size;
      if (h > peak) peak = h;
    }
  }
  const t1 = performance.now();
  const end = v8.getHeapStatistics().used_heap_size;
  if (end > peak) peak = end;
  // GC performance entries are delivered asynchronously, after at least one timer turn.
  for (let i = 0; i < 2; i++) await new Promise((r) => setTimeout(r, 1));
  let gcMs = 0;
  for (const e of gcEntries) if (e.start >= t0 && e.start <= t1) gcMs += e.duration;
  gcEntries.length = 0;
  return { ms: t1 - t0, peakHeapMB: peak / 1e6, gcMs, counts: sink.counts() };
}

async function child(name: string, mb: number, runs: number): Promise<ChildReport> {
  const cand = CANDIDATES.find((c) => c.name === name);
  if (cand === undefined) throw new Error(`unknown candidate ${name}`);
  const gc = getGc();
  const gcEntries: { start: number; duration: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcEntries.push({ start: e.startTime, duration: e.duration });
  });
  obs.observe({ entryTypes: ['gc'] });

  const tg = performance.now();
  const g = generateStream({ bytes: Math.round(mb * 1e6) });
  const genMs = performance.now() - tg;
  const hash = createHash('sha256');
  for (const c of g.chunks) hash.update(c);
  const input: InputInfo = {
    bytes: g.bytes,
    chunks: g.chunks.length,
    sha256: hash.digest('hex'),
    genMs,
    want: { stanzas: g.stanzas, elements: g.elements, textChars: g.textChars },
    keepalives: g.keepalives,
    splitsInTag: g.splitsInTag,
    splitsInUtf8: g.splitsInUtf8,
    kinds: g.kinds,
  };
  // The warm-up is also the full correctness check.
  const warm = await runOnce(cand, g, true, gc, gcEntries);
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) results.push(await runOnce(cand, g, false, gc, gcEntries));
  obs.disconnect();
  return { name, input, warm, runs: results, gcExposed: gc !== undefined };
}

function runChild(name: string, mb: number, runs: number): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const p = fork(fileURLToPath(import.meta.url), ['--child', name, '--mb', String(mb), '--runs', String(runs)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let report: ChildReport | undefined;
    p.on('message', (m) => {
      report = m as ChildReport;
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (report !== undefined) resolve(report);
      else reject(new Error(`${name}: child exited with ${signal ?? code} and no report`));
    });
  });
}

function compare(name: string, got: Counts, want: Counts, full: boolean): string[] {
  const bad: string[] = [];
  if (got.error !== undefined) bad.push(`${name}: parser error: ${got.error}`);
  const keys: (keyof Counts)[] = full ? ['stanzas', 'elements', 'textChars'] : ['stanzas'];
  for (const k of keys) {
    if (got[k] !== want[k]) bad.push(`${name}: ${k} = ${String(got[k])}, expected ${String(want[k])}`);
  }
  return bad;
}

const HELP = `Usage: npm run bench:parser -- [--mb N] [--runs N] [--only NAME]...
  --mb N      size of the generated stream in MB (10^6 bytes), default 50
  --runs N    timed runs per candidate after one warm-up; the best is reported (default 3)
  --only S    run only candidates whose name contains S (repeatable)
Candidates: ${CANDIDATES.map((c) => c.name).join('; ')}`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '50' },
      runs: { type: 'string', default: '3' },
      only: { type: 'string', multiple: true },
      child: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const mb = Number(values.mb);
  const runs = Number(values.runs);
  if (!(mb > 0) || !Number.isInteger(runs) || runs < 1) {
    console.error(HELP);
    return 2;
  }
  if (values.child !== undefined) {
    const report = await child(values.child, mb, runs);
    await new Promise<void>((resolve, reject) => process.send!(report, (err: Error | null) => (err ? reject(err) : resolve())));
    return 0;
  }
  const only = values.only ?? [];
  const cands = CANDIDATES.filter((c) => only.length === 0 || only.some((s) => c.name.includes(s)));
  if (cands.length === 0) {
    console.error(`no candidate matches ${only.join(', ')}`);
    return 2;
  }

  const problems: string[] = [];
  const reports: { cand: Candidate; rep: ChildReport; best: RunResult }[] = [];
  for (const cand of cands) {
    const rep = await runChild(cand.name, mb, runs);
    const bad = compare(cand.name, rep.warm.counts, rep.input.want, true);
    rep.runs.forEach((r, i) => bad.push(...compare(`${cand.name} (run ${i + 1})`, r.counts, rep.input.want, false)));
    const first = reports[0]?.rep.input;
    if (first !== undefined && first.sha256 !== rep.input.sha256) bad.push(`${cand.name}: got different input bytes`);
    for (const b of bad) console.error(`MISMATCH ${b}`);
    problems.push(...bad);
    const best = rep.runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    reports.push({ cand, rep, best });
    process.stderr.write(`  ${cand.name}: ${(rep.input.bytes / 1e6 / (best.ms / 1000)).toFixed(1)} MB/s\n`);
  }

  const input = reports[0]!.rep.input;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`# XML stream parser benchmark`);
  console.log('');
  console.log(
    `node ${process.version}, ${cpu}, ${os.cpus().length} cores; one child process per parser; ` +
      `forced GC before each run: ${reports[0]!.rep.gcExposed ? 'yes' : 'no'}`,
  );
  console.log('');
  console.log(
    `input: ${(input.bytes / 1e6).toFixed(1)} MB in ${input.chunks} chunks of 16 KiB ` +
      `(${input.splitsInTag} boundaries inside a tag, ${input.splitsInUtf8} inside a UTF-8 sequence); ` +
      `${input.want.stanzas} top-level elements, ${input.want.elements} elements in all, ${input.keepalives} whitespace keepalives; ` +
      `generated in ${input.genMs.toFixed(0)} ms; sha256 ${input.sha256.slice(0, 16)}…`,
  );
  console.log('');
  console.log(
    'mix (share of stanzas / of bytes): ' +
      Object.entries(input.kinds)
        .sort((a, b) => b[1].bytes - a[1].bytes)
        .map(([k, s]) => `${k} ${((100 * s.count) / input.want.stanzas).toFixed(1)}% / ${((100 * s.bytes) / input.bytes).toFixed(1)}%`)
        .join(', '),
  );
  console.log('');

  const shoal = reports.find((r) => r.cand.name === 'shoal StreamParser');
  console.log(
    `| parser | what it does | MB/s | stanzas/s | best of ${runs} (ms) | heap used, peak (MB) | GC in run (ms) | vs Shoal | counts |`,
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const { cand, rep, best } of reports) {
    const mbs = rep.input.bytes / 1e6 / (best.ms / 1000);
    const sps = rep.input.want.stanzas / (best.ms / 1000);
    const rel = shoal ? `${(shoal.best.ms / best.ms).toFixed(2)}×` : '–';
    const ok = problems.some((p) => p.startsWith(cand.name)) ? '**MISMATCH**' : 'ok';
    console.log(
      `| ${cand.name} | ${cand.does} | ${mbs.toFixed(1)} | ${Math.round(sps).toLocaleString('en-US')} | ` +
        `${best.ms.toFixed(0)} | ${best.peakHeapMB.toFixed(1)} | ${best.gcMs.toFixed(0)} | ${rel} | ${ok} |`,
    );
  }
  if (problems.length > 0) {
    console.log('');
    console.log(`**${problems.length} mismatch(es):**`);
    for (const p of problems) console.log(`- ${p}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();
