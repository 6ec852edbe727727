// Runs the fuzz targets under jsfuzz, a coverage-guided fuzzer: it instruments the
// code with istanbul (statement, branch and function counters), keeps every input
// that reaches code no earlier input reached, and mutates those.
//
// jsfuzz loads a target with require() and instruments what require() loads, so the
// targets and the Shoal code they reach are first transpiled, file by file, to
// CommonJS (esbuild) in a scratch folder under node_modules/.cache (kept out of
// ESLint's and tsc's way, and node_modules/ resolves the dependencies from there).
// Used by `npm run fuzz` (fuzz/run.ts) and by test/fuzz.test.ts.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { setPriority } from 'node:os';
import { build } from 'esbuild';

export const ROOT = join(import.meta.dirname, '..');
export const FUZZ_DIR = join(ROOT, 'fuzz');
export const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
export const CRASH_DIR = join(FUZZ_DIR, 'crashes');
/** Where `npm run fuzz` keeps the inputs each target found interesting, across runs (gitignored). */
export const GROWN_DIR = join(FUZZ_DIR, '.corpus');
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'shoal-fuzz');

/** Every target: fuzz/targets/<name>.ts, with its seeds in fuzz/corpus/<name>/. */
export const TARGETS = ['stream', 'jid', 'sasl', 'sasl-parsers'] as const;
export type TargetName = (typeof TARGETS)[number];

export function isTarget(name: string): name is TargetName {
  return (TARGETS as readonly string[]).includes(name);
}

const JSFUZZ = join(dirname(createRequire(import.meta.url).resolve('jsfuzz/package.json')), 'build', 'src', 'index.js');

/** Transpiled targets, ready for jsfuzz; remove() when done. */
export interface Build {
  dir: string;
  /** Path of a target's transpiled module, relative to `dir`. */
  target(name: TargetName): string;
  remove(): void;
}

/**
 * Transpiles the targets and every Shoal file they import to CommonJS, one output
 * file per source file, so coverage stays per file and node_modules is required
 * (and instrumented) from its usual place.
 */
export async function buildTargets(): Promise<Build> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const dir = mkdtempSync(join(CACHE_DIR, 'build-'));
  const entryPoints = TARGETS.map((t) => join(FUZZ_DIR, 'targets', `${t}.ts`));
  // First pass only finds the files the targets reach.
  const graph = await build({
    entryPoints,
    bundle: true,
    write: false,
    outdir: dir,
    metafile: true,
    packages: 'external',
    platform: 'node',
    format: 'cjs',
    logLevel: 'silent',
  });
  const sources = Object.keys(graph.metafile.inputs).map((p) => join(ROOT, p));
  await build({
    entryPoints: sources,
    outdir: dir,
    outbase: ROOT,
    bundle: false,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
  });
  // The package is "type": "module"; the transpiled files are CommonJS.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'commonjs' }));
  return {
    dir,
    target: (name) => join('fuzz', 'targets', `${name}.js`),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RunOptions {
  seconds: number;
  /**
   * Folder the fuzzer adds the inputs it finds interesting to; it also starts from
   * what is there. Default: a fresh scratch folder, removed afterwards.
   */
  corpusDir?: string;
  /** Where a crashing input is saved, as crash-<sha256>. Default: fuzz/crashes/<target>/. */
  crashDir?: string;
  /** An input running longer than this counts as a crash (a hang). Default 10 s. */
  timeoutSeconds?: number;
  /** Each line jsfuzz prints, as it comes. */
  onLine?: (line: string) => void;
  /** Scheduling priority of the fuzzer (nice value). Default 10, below the tests running beside it. */
  niceness?: number;
}

export interface FileCoverage {
  /** Source file, relative to the repository (src/xml/parser.ts). */
  file: string;
  statements: number;
  coveredStatements: number;
  branches: number;
  coveredBranches: number;
}

export interface RunResult {
  target: TargetName;
  crashed: boolean;
  /** Why the run failed, when it did: the fuzzer's own report of the crash, or what went wrong. */
  failure?: string;
  /** The crashing input and where it was saved. */
  input?: Buffer;
  crashFile?: string;
  executions: number;
  execsPerSecond: number;
  /** jsfuzz's coverage measure: statements, branches and functions ever reached, all files. */
  cov: number;
  corpusSize: number;
  /** Statement and branch coverage of the Shoal source files the target loaded. */
  coverage: FileCoverage[];
  output: string;
}

interface IstanbulFile {
  s: Record<string, number>;
  b: Record<string, number[]>;
}

function readCoverage(buildDir: string, file: string): FileCoverage[] {
  if (!existsSync(file)) return [];
  const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, IstanbulFile>;
  const out: FileCoverage[] = [];
  for (const [path, cov] of Object.entries(data)) {
    const rel = relative(buildDir, path).split(sep).join('/');
    if (!rel.startsWith('src/')) continue;
    const s = Object.values(cov.s);
    const b = Object.values(cov.b).flat();
    out.push({
      file: rel.replace(/\.js$/, '.ts'),
      statements: s.length,
      coveredStatements: s.filter((n) => n > 0).length,
      branches: b.length,
      coveredBranches: b.filter((n) => n > 0).length,
    });
  }
  return out.sort((x, y) => x.file.localeCompare(y.file));
}

/** Longest wait for the first input to run before the clock starts anyway. */
const STARTUP_LIMIT_MS = 60_000;

const STATS_LINE = /^#(\d+) (?:NEW|PULSE)\s+cov: (\d+) corp: (\d+) exec\/s: (\d+)/;

/**
 * Fuzzes one target for `seconds`. The run ends early when the fuzzer finds a
 * crash (an exception out of the target, a hang, or running out of memory).
 */
export async function runTarget(b: Build, target: TargetName, opts: RunOptions): Promise<RunResult> {
  const work = mkdtempSync(join(b.dir, `run-${target}-`));
  const corpusDir = opts.corpusDir ?? join(work, 'corpus');
  mkdirSync(corpusDir, { recursive: true });
  const seeds = join(work, 'seeds');
  cpSync(join(CORPUS_DIR, target), seeds, { recursive: true });
  const artifact = join(work, 'crash');
  const statsFile = join(work, 'stats.json');
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_FUZZ_STATS: statsFile };
  // Not a test process, and no loader: the worker runs the transpiled CommonJS.
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;

  const args = [
    JSFUZZ,
    relative(work, join(b.dir, b.target(target))),
    corpusDir,
    seeds,
    '--exact-artifact-path',
    artifact,
    '--timeout',
    String(opts.timeoutSeconds ?? 10),
    '--rss-limit-mb',
    '2048',
    // jsfuzz's versifier (go-fuzz's text-structure generator) makes every tenth input
    // from the corpus' token structure with no size bound: megabytes, each sent to the
    // worker as JSON, which took the runs here from ~1,500 to ~15 executions per second.
    '--no-versifier',
  ];
  // Its own process group: jsfuzz forks a worker, and both get the signals below.
  // Working directory: the run's own folder, where the worker leaves .nyc_output/.
  const child = spawn(process.execPath, args, { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // Below the other tests that share the machine; jsfuzz forks its worker later, which inherits this.
  try {
    setPriority(child.pid!, opts.niceness ?? 10);
  } catch {
    // Not allowed here: run at the normal priority.
  }
  let output = '';
  let pending = '';
  let cov = 0;
  let corpusSize = 0;
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const m = STATS_LINE.exec(line);
      if (m) {
        cov = Number(m[2]);
        corpusSize = Number(m[3]);
        startClock();
      }
      opts.onLine?.(line);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  let stoppedByUs = false;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // Already gone.
    }
  };
  // SIGINT makes the worker save its coverage and exit at its next input; jsfuzz's
  // main process ignores it and ends when the worker has. SIGKILL if that takes long.
  // The clock starts at the first input run, not while the worker loads and instruments
  // the code (1-3 s, more on a busy machine), so every run gets its seconds of fuzzing.
  const timers: NodeJS.Timeout[] = [];
  const stop = (): void => {
    stoppedByUs = true;
    signal('SIGINT');
    timers.push(setTimeout(() => signal('SIGKILL'), 15_000));
  };
  let clockStarted = false;
  function startClock(): void {
    if (clockStarted) return;
    clockStarted = true;
    timers.push(setTimeout(stop, opts.seconds * 1000));
  }
  timers.push(setTimeout(() => startClock(), STARTUP_LIMIT_MS));
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  for (const t of timers) clearTimeout(t);
  signal('SIGKILL'); // a worker left behind, if any

  let executions = 0;
  let milliseconds = 0;
  if (existsSync(statsFile)) {
    const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as { executions: number; milliseconds: number };
    executions = stats.executions;
    milliseconds = stats.milliseconds;
  }
  const result: RunResult = {
    target,
    crashed: false,
    executions,
    execsPerSecond: milliseconds > 0 ? Math.round((executions * 1000) / milliseconds) : 0,
    cov,
    corpusSize,
    coverage: readCoverage(b.dir, join(work, '.nyc_output', 'cov.json')),
    output,
  };
  if (existsSync(artifact)) {
    const input = readFileSync(artifact);
    const crashDir = opts.crashDir ?? join(CRASH_DIR, target);
    mkdirSync(crashDir, { recursive: true });
    const crashFile = join(crashDir, `crash-${createHash('sha256').update(input).digest('hex')}`);
    writeFileSync(crashFile, input);
    const report = output.lastIndexOf('=================================================================');
    Object.assign(result, {
      crashed: true,
      input,
      crashFile,
      failure: report >= 0 ? output.slice(report) : output.slice(-4000),
    });
  } else if (!stoppedByUs) {
    result.failure = `jsfuzz exited by itself (code ${exitCode}) without a crash file:\n${output.slice(-4000)}`;
  } else if (executions === 0) {
    result.failure = `the target never ran:\n${output.slice(-4000)}`;
  }
  rmSync(work, { recursive: true, force: true });
  return result;
}

/** The seed files of a target (fuzz/corpus/<target>/), for replaying them without the fuzzer. */
export function seedFiles(target: TargetName): string[] {
  const dir = join(CORPUS_DIR, target);
  return readdirSync(dir)
    .sort()
    .map((f) => join(dir, f));
}

/** Imports a target directly (through tsx, no instrumentation), to replay inputs. */
export async function loadTarget(target: TargetName): Promise<(data: Buffer) => void | Promise<void>> {
  const mod = (await import(`./targets/${target}.js`)) as { fuzz: (data: Buffer) => void | Promise<void> };
  return mod.fuzz;
}

/** Sums the per-file coverage. */
export function totalCoverage(files: FileCoverage[]): { statements: number; covered: number; percent: number } {
  const statements = files.reduce((n, f) => n + f.statements, 0);
  const covered = files.reduce((n, f) => n + f.coveredStatements, 0);
  return { statements, covered, percent: statements === 0 ? 0 : Math.round((1000 * covered) / statements) / 10 };
}
