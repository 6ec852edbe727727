// How long Shoal's stream parser takes to refuse deeply nested input, the shape
// that used to cost time quadratic in its depth: saxes resolves every element's
// namespace by walking the whole stack of open elements, so 100,000 nested tags
// (300 KB, sent before authenticating) kept the server busy for a minute. The
// parser now refuses a stanza deeper than DEFAULT_MAX_DEPTH levels and stops
// saxes in the middle of the chunk, so refusing it should take about as long as
// reading one chunk. Not a test; see README.md.
//
// Run: node --import tsx bench/parser/deep.ts [--depth N]... [--runs N] [--saxes]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { SaxesParser } from 'saxes';
import { DEFAULT_MAX_DEPTH, StreamParser } from '../../src/xml/parser.js';
import { STREAM_HEADER } from './generate.js';

/** A socket read on Linux is at most 64 KiB. */
const CHUNK = 64 * 1024;
/** The server's default limits.max_stanza_bytes. */
const MAX_STANZA = 262_144;

interface Shape {
  name: string;
  /** The stanza as sent: a message `depth` levels deep, or one with `depth` empty children. */
  body: (n: number) => string;
}

const SHAPES: Shape[] = [
  { name: 'deep: <message><a><a>… never closed', body: (n) => '<message>' + '<a>'.repeat(n - 1) },
  { name: 'wide (control): <message><a/><a/>…</message>', body: (n) => '<message>' + '<a/>'.repeat(n - 1) + '</message>' },
];

interface Outcome {
  ms: number;
  /** The stream error, or 'accepted' when the stanza was delivered. */
  result: string;
  /** Chunks written when the outcome was known. */
  chunks: number;
}

/** Feeds `chunks` to a fresh parser (after the stream header) and times it until the error or the end. */
function shoal(chunks: Buffer[]): Outcome {
  let result: string | undefined;
  const p = new StreamParser(
    {
      streamStart() {},
      element() {
        result ??= 'accepted';
      },
      whitespace() {},
      streamEnd() {},
      error(condition) {
        result ??= condition;
      },
    },
    { maxStanzaSize: MAX_STANZA },
  );
  p.write(Buffer.from(STREAM_HEADER));
  const t0 = performance.now();
  let n = 0;
  while (result === undefined && n < chunks.length) p.write(chunks[n++]!);
  return { ms: performance.now() - t0, result: result ?? 'nothing yet', chunks: n };
}

/** Raw saxes with Shoal's options and no limits: what tokenising all of it costs. */
function saxes(chunks: Buffer[]): Outcome {
  const p = new SaxesParser({ xmlns: true, position: true });
  let errors = 0;
  p.on('error', () => errors++);
  const decoder = new TextDecoder();
  p.write(STREAM_HEADER);
  const t0 = performance.now();
  for (const c of chunks) p.write(decoder.decode(c, { stream: true }));
  return { ms: performance.now() - t0, result: errors === 0 ? 'tokenised' : `${errors} errors`, chunks: chunks.length };
}

function cut(text: string): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) out.push(bytes.subarray(i, i + CHUNK));
  return out;
}

function best(runs: number, f: () => Outcome): Outcome {
  f(); // warm-up
  let top: Outcome | undefined;
  for (let i = 0; i < runs; i++) {
    const o = f();
    if (top === undefined || o.ms < top.ms) top = o;
  }
  return top!;
}

const HELP = `Usage: node --import tsx bench/parser/deep.ts [--depth N]... [--runs N] [--saxes]
  --depth N   nesting depth (and sibling count for the control row); repeatable, default 25000 and 100000
  --runs N    timed runs per row after one warm-up; the fastest is reported (default 5)
  --saxes     also time raw saxes (no limits) on the deep input: quadratic, about a minute at 100000`;

function main(): number {
  const { values } = parseArgs({
    options: {
      depth: { type: 'string', multiple: true },
      runs: { type: 'string', default: '5' },
      saxes: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const depths = (values.depth ?? ['25000', '100000']).map(Number);
  const runs = Number(values.runs);
  if (depths.some((d) => !Number.isInteger(d) || d < 1) || !Number.isInteger(runs) || runs < 1) {
    console.error(HELP);
    return 2;
  }
  console.log(`node ${process.version}; input after the stream header in ${CHUNK / 1024} KiB Buffers; ` +
    `maxStanzaSize ${MAX_STANZA}, maxDepth ${DEFAULT_MAX_DEPTH}; best of ${runs}`);
  console.log('');
  console.log('| parser | shape | n | input (KB) | outcome | chunks read | time (ms) |');
  console.log('| --- | --- | ---: | ---: | --- | ---: | ---: |');
  let bad = false;
  for (const n of depths) {
    for (const shape of SHAPES) {
      const chunks = cut(shape.body(n));
      const kb = chunks.reduce((s, c) => s + c.length, 0) / 1024;
      const o = best(runs, () => shoal(chunks));
      console.log(`| shoal StreamParser | ${shape.name} | ${n} | ${kb.toFixed(0)} | ${o.result} | ${o.chunks} of ${chunks.length} | ${o.ms.toFixed(2)} |`);
      // The deep shape must be refused in the first chunk, whatever its depth.
      if (shape === SHAPES[0] && n > DEFAULT_MAX_DEPTH && (o.result !== 'policy-violation' || o.chunks !== 1)) bad = true;
    }
    if (values.saxes) {
      const chunks = cut(SHAPES[0]!.body(n));
      const o = saxes(chunks); // once, no warm-up: it takes seconds to minutes
      console.log(`| raw saxes, no limits | ${SHAPES[0]!.name} | ${n} | ${(chunks.reduce((s, c) => s + c.length, 0) / 1024).toFixed(0)} | ${o.result} | ${o.chunks} of ${chunks.length} | ${o.ms.toFixed(0)} |`);
    }
  }
  if (bad) console.error('the deep shape was not refused in the first chunk');
  return bad ? 1 : 0;
}

process.exitCode = main();
