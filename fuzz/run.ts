// `npm run fuzz`: runs every fuzz target (or those named) for a while each, and
// `npm run fuzz -- replay <target> <file>...` runs one target on saved inputs.
// See fuzz/README.md.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describeInput } from './harness.js';
import {
  GROWN_DIR,
  ROOT,
  TARGETS,
  buildTargets,
  isTarget,
  loadTarget,
  runTarget,
  totalCoverage,
  type RunResult,
  type TargetName,
} from './engine.js';

const USAGE = `usage:
  npm run fuzz [-- [--seconds N] [--fresh] [target...]]
      fuzzes each target for N seconds (default: SHOAL_FUZZ_SECONDS, else 300);
      targets: ${TARGETS.join(', ')} (default: all)
      --fresh: start from the seed corpus only, not from what earlier runs kept in fuzz/.corpus/
  npm run fuzz -- replay <target> <file>...
      runs the target once on each file, without the fuzzer, and shows what it throws`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

async function replay(target: string, files: string[]): Promise<number> {
  if (!isTarget(target)) fail(`unknown target ${target}`);
  if (files.length === 0) fail('replay needs at least one input file');
  const fuzz = await loadTarget(target);
  let failures = 0;
  for (const file of files) {
    const data = readFileSync(file);
    try {
      await fuzz(data);
      console.log(`ok      ${file}`);
    } catch (e) {
      failures++;
      console.log(`CRASH   ${file}\n${describeInput(data)}\n${(e as Error).stack ?? String(e)}\n`);
    }
  }
  return failures === 0 ? 0 : 1;
}

function summary(r: RunResult, seconds: number): string {
  const t = totalCoverage(r.coverage);
  const lines = [
    `${r.target}: ${r.crashed ? 'CRASH' : r.failure !== undefined ? 'FAILED' : 'no crash'} after ${r.executions} executions in ~${seconds} s ` +
      `(${r.execsPerSecond} exec/s), jsfuzz cov ${r.cov}, corpus ${r.corpusSize}, ` +
      `Shoal statements covered ${t.covered}/${t.statements} (${t.percent}%)`,
  ];
  for (const f of r.coverage) {
    const pct = (n: number, of: number): string => (of === 0 ? '-' : `${Math.round((100 * n) / of)}%`);
    lines.push(`    ${f.file.padEnd(34)} statements ${pct(f.coveredStatements, f.statements).padStart(4)}  branches ${pct(f.coveredBranches, f.branches).padStart(4)}`);
  }
  if (r.failure !== undefined) lines.push(r.failure);
  if (r.input !== undefined) lines.push(describeInput(r.input), `saved as ${relative(ROOT, r.crashFile!)}`);
  return lines.join('\n');
}

async function fuzzAll(args: string[]): Promise<number> {
  let seconds = Number(process.env.SHOAL_FUZZ_SECONDS ?? 300);
  let fresh = false;
  const targets: TargetName[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--seconds') seconds = Number(args[++i]);
    else if (a === '--fresh') fresh = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return 0;
    } else if (isTarget(a)) targets.push(a);
    else fail(`unknown argument ${a}`);
  }
  if (!Number.isFinite(seconds) || seconds <= 0) fail('--seconds needs a positive number');
  const chosen = targets.length > 0 ? targets : [...TARGETS];
  console.log(`fuzzing ${chosen.join(', ')} for ${seconds} s each`);
  const build = await buildTargets();
  const results: RunResult[] = [];
  try {
    for (const target of chosen) {
      const r = await runTarget(build, target, {
        seconds,
        // Kept between runs, so a long run continues where the last one stopped.
        ...(fresh ? {} : { corpusDir: join(GROWN_DIR, target) }),
        onLine: (line) => {
          if (/ NEW | PULSE /.test(line)) process.stdout.write(`\r${target}: ${line.trim()}`.padEnd(100));
        },
      });
      process.stdout.write('\n');
      console.log(summary(r, seconds));
      results.push(r);
    }
  } finally {
    build.remove();
  }
  const failed = results.filter((r) => r.failure !== undefined);
  console.log(failed.length === 0 ? 'no crashes' : `crashes or failures in: ${failed.map((r) => r.target).join(', ')}`);
  return failed.length === 0 ? 0 : 1;
}

const [first, ...rest] = process.argv.slice(2);
process.exitCode = first === 'replay' ? await replay(rest[0] ?? '', rest.slice(1)) : await fuzzAll(process.argv.slice(2));
