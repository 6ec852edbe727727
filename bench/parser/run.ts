// XML stream parsing throughput: Shoal's StreamParser against the raw parsers
// it could be built on. Not a test; run with `npm run bench:parser -- --mb 50`.
//
// Every candidate gets the same Buffers a socket would deliver and must find
// the same top-level elements; a candidate that disagrees with the generator is
// reported as a mismatch and the run exits non-zero.
import { performance, PerformanceObserver } from 'node:perf_hooks';
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
    does: 'saxes (xmlns, position) + Element tree, size limit, restricted-xml checks',
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
const gc = getGc();

const gcEntries: { start: number; duration: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcEntries.push({ start: e.startTime, duration: e.duration });
});
gcObserver.observe({ entryTypes: ['gc'] });

interface RunResult {
  ms: number;
  /** Highest heap in use during the run above the heap just before it (sampled every 64 chunks). */
  peakHeapMB: number;
  /** Time spent in garbage collection during the run. */
  gcMs: number;
  counts: Counts;
}

async function runOnce(cand: Candidate, input: GeneratedStream, check: boolean): Promise<RunResult> {
  const sink = cand.create(check);
  const chunks = input.chunks;
  gc?.();
  const base = v8.getHeapStatistics().used_heap_size;
  let peak = base;
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
  return { ms: t1 - t0, peakHeapMB: (peak - base) / 1e6, gcMs, counts: sink.counts() };
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
  --only S    run only candidates whose name contains S (repeatable)`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '50' },
      runs: { type: 'string', default: '3' },
      only: { type: 'string', multiple: true },
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
  const only = values.only ?? [];
  const cands = CANDIDATES.filter((c) => only.length === 0 || only.some((s) => c.name.includes(s)));
  if (cands.length === 0) {
    console.error(`no candidate matches ${only.join(', ')}`);
    return 2;
  }

  const tg = performance.now();
  const input = generateStream({ bytes: Math.round(mb * 1e6) });
  const genMs = performance.now() - tg;
  const want: Counts = { stanzas: input.stanzas, elements: input.elements, textChars: input.textChars };

  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`# XML stream parser benchmark`);
  console.log('');
  console.log(`node ${process.version}, ${cpu}, ${os.cpus().length} cores; gc between runs: ${gc ? 'yes' : 'no'}`);
  console.log(
    `input: ${(input.bytes / 1e6).toFixed(1)} MB in ${input.chunks.length} chunks of 16 KiB ` +
      `(${input.splitsInTag} split inside a tag, ${input.splitsInUtf8} inside a UTF-8 sequence), ` +
      `${input.stanzas} top-level elements, ${input.elements} elements, ${input.keepalives} keepalives; ` +
      `generated in ${genMs.toFixed(0)} ms`,
  );
  console.log(
    'mix: ' +
      Object.entries(input.kinds)
        .sort((a, b) => b[1].bytes - a[1].bytes)
        .map(([k, s]) => `${k} ${((100 * s.count) / input.stanzas).toFixed(1)}% / ${((100 * s.bytes) / input.bytes).toFixed(1)}% bytes`)
        .join(', '),
  );
  console.log('');

  const problems: string[] = [];
  const rows: { cand: Candidate; best: RunResult }[] = [];
  for (const cand of cands) {
    // The warm-up is also the full correctness check.
    const warm = await runOnce(cand, input, true);
    const bad = compare(cand.name, warm.counts, want, true);
    let best: RunResult | undefined;
    for (let i = 0; i < runs; i++) {
      const r = await runOnce(cand, input, false);
      bad.push(...compare(`${cand.name} (run ${i + 1})`, r.counts, want, false));
      if (best === undefined || r.ms < best.ms) best = r;
    }
    if (bad.length > 0) {
      problems.push(...bad);
      for (const b of bad) console.error(`MISMATCH ${b}`);
    }
    rows.push({ cand, best: best! });
    process.stderr.write(`  ${cand.name}: ${((input.bytes / 1e6) / (best!.ms / 1000)).toFixed(1)} MB/s\n`);
  }

  const shoal = rows.find((r) => r.cand.name === 'shoal StreamParser');
  console.log('| parser | what it does | MB/s | stanzas/s | best of ' + runs + ' (ms) | peak heap Δ (MB) | GC (ms) | vs Shoal | counts |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const { cand, best } of rows) {
    const mbs = input.bytes / 1e6 / (best.ms / 1000);
    const sps = input.stanzas / (best.ms / 1000);
    const rel = shoal ? `${(shoal.best.ms / best.ms).toFixed(2)}×` : '–';
    const ok = problems.some((p) => p.startsWith(cand.name)) ? '**MISMATCH**' : 'ok';
    console.log(
      `| ${cand.name} | ${cand.does} | ${mbs.toFixed(1)} | ${Math.round(sps).toLocaleString('en-US')} | ` +
        `${best.ms.toFixed(0)} | ${best.peakHeapMB.toFixed(1)} | ${best.gcMs.toFixed(0)} | ${rel} | ${ok} |`,
    );
  }
  gcObserver.disconnect();
  if (problems.length > 0) {
    console.log('');
    console.log(`**${problems.length} mismatch(es):**`);
    for (const p of problems) console.log(`- ${p}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();
