// The fuzz targets (fuzz/README.md) in the test run: every seed input, crashes found
// earlier included, replayed as it is; then each target under the coverage-guided
// fuzzer for a few seconds (SHOAL_FUZZ_TEST_SECONDS, default 4). A crash fails the
// test with the input that caused it. `npm run fuzz` runs the same targets longer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { describeInput } from '../fuzz/harness.js';
import { ROOT, TARGETS, buildTargets, loadTarget, runTarget, seedFiles, totalCoverage, type Build } from '../fuzz/engine.js';

const SECONDS = Number(process.env.SHOAL_FUZZ_TEST_SECONDS ?? 4);

describe('fuzz targets: the seed corpus', () => {
  for (const target of TARGETS) {
    test(`${target}: every seed passes`, async () => {
      const fuzz = await loadTarget(target);
      const files = seedFiles(target);
      assert.ok(files.length >= 3, `fuzz/corpus/${target}/ has ${files.length} seeds`);
      for (const file of files) {
        const data = readFileSync(file);
        try {
          await fuzz(data);
        } catch (e) {
          assert.fail(`seed ${target}/${basename(file)} fails:\n${describeInput(data)}\n${(e as Error).stack ?? String(e)}`);
        }
      }
    });
  }
});

describe(`fuzz targets: ${SECONDS} s of jsfuzz each`, () => {
  let build: Build | undefined;
  before(async () => {
    build = await buildTargets();
  });
  after(() => build?.remove());

  for (const target of TARGETS) {
    test(`${target}: no crash`, async (t) => {
      // A crashing input is also saved under fuzz/crashes/<target>/ (gitignored).
      const r = await runTarget(build!, target, { seconds: SECONDS });
      const cov = totalCoverage(r.coverage);
      t.diagnostic(`${r.executions} executions, ${r.execsPerSecond}/s, jsfuzz cov ${r.cov}, Shoal statements ${cov.covered}/${cov.statements} (${cov.percent}%)`);
      if (r.crashed) {
        const file = relative(ROOT, r.crashFile!);
        assert.fail(`jsfuzz found a crash in ${target}:\n${describeInput(r.input!)}\n${r.failure}\nsaved as ${file}; replay: npm run fuzz -- replay ${target} ${file}`);
      }
      assert.equal(r.failure, undefined, r.failure);
      assert.ok(r.executions > 0, 'the target ran');
    });
  }
});
