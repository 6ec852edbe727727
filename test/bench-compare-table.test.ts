// bench:compare's tables when the login scenario ran several times (--login-repeat): the
// targets take each figure's median over the runs, the side-by-side table one real run (the
// median by CPU per login), and a failed login in any run is reported, not only in the one shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capacityTargets, failedChecks, median, medianRun, repeatsTable, type Results, type ScenarioReport } from '../bench/compare/table.js';

/** The parts of a login report the tables read. */
function run(loginsPerS: number, cpuPer1000: number, failed = 0): ScenarioReport {
  return {
    clients: 2000,
    login: { sustainedPerSecond: loginsPerS, perSecond: loginsPerS, failed, succeeded: 2000 - failed, failures: {}, elapsedMs: 4000, latencyMs: { p50: 1, p95: 2, p99: 3 } },
    warmup: { clients: 2000, rounds: 3, sustainedPerSecond: loginsPerS / 2, cpuPer1000Logins: cpuPer1000 * 2, lastRoundCpuPer1000Logins: cpuPer1000 * 1.1, failed: 0 },
    server: { cpuPer1000Logins: cpuPer1000 },
  } as unknown as ScenarioReport;
}

function results(shoal: ScenarioReport[], ejabberd: ScenarioReport[]): Results {
  const server = (name: string, runs: ScenarioReport[]) => ({ name, version: '1', reports: { login: medianRun(runs) }, cpu: {}, repeats: { login: runs } });
  return { scenarios: ['login'], servers: { shoal: server('Shoal', shoal), ejabberd: server('ejabberd', ejabberd) }, errors: {} };
}

/** The cells of the targets table row that starts with `what`. */
function row(table: string, what: string): string[] {
  const line = table.split('\n').find((l) => l.startsWith(`| ${what}`));
  assert.ok(line, `no row "${what}" in\n${table}`);
  return line.split('|').map((c) => c.trim());
}

test('median: odd and even counts, order does not matter, none is undefined', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), undefined);
});

test('medianRun picks the real run with the median CPU per login (the lower middle of an even count)', () => {
  const a = run(500, 1.6);
  const b = run(400, 2.4);
  const c = run(450, 1.9);
  assert.equal(medianRun([a, b, c]), c);
  assert.equal(medianRun([b, a]), a);
  const unmeasured = { ...run(1, 1), server: undefined } as unknown as ScenarioReport;
  assert.equal(medianRun([unmeasured, b]), b, 'a run without a CPU figure is not the median');
  assert.throws(() => medianRun([]));
});

test('the targets take each figure\'s median over the runs, not the figures of one run', () => {
  // Shoal's logins/s medians to 500, ejabberd's to 300: 1.67 (its median run by CPU, the first,
  // had 600/s: 2.00). Its CPU medians to 1.6 against 2.5: 0.64 ≤ 0.67. A single unlucky run
  // (300/s, 3.0 ms) decides neither.
  const r = results([run(600, 1.6), run(500, 1.5), run(300, 3.0)], [run(300, 2.5), run(320, 2.4), run(250, 2.6)]);
  const logins = row(capacityTargets(r), 'logins/s (after the warm-up');
  assert.equal(logins[5], '1.67');
  assert.equal(logins[7], 'yes');
  const cpu = row(capacityTargets(r), 'server CPU per login');
  assert.equal(cpu[5], '0.64');
  assert.equal(cpu[7], 'yes');
  // With one run only (no repeats), that run's figures are the targets' (300 / 300 = 1.00).
  const single: Results = { scenarios: ['login'], servers: { shoal: { name: 'Shoal', version: '1', reports: { login: run(300, 3.0) }, cpu: {} }, ejabberd: { name: 'ejabberd', version: '1', reports: { login: run(300, 2.5) }, cpu: {} } }, errors: {} };
  assert.equal(row(capacityTargets(single), 'logins/s (after the warm-up')[5], '1.00');
});

test('every run is listed with the median marked, and a failed login in a run not shown is still a failed check', () => {
  const shoal = [run(600, 1.6), run(500, 1.5), run(300, 3.0, 2)];
  const r = results(shoal, [run(300, 2.5), run(320, 2.4), run(250, 2.6)]);
  const table = repeatsTable(r);
  assert.match(table, /\| Shoal \| 1 \(median\) \| 600 \|/);
  assert.match(table, /\| Shoal \| median \| 500 \| 250 \| 1\.60 \|/);
  assert.match(table, /\| ejabberd \| 1 \(median\) \| 300 \|/);
  assert.equal(r.servers.shoal!.reports.login, shoal[0], 'the table shows the median run, which had no failures');
  assert.deepEqual(failedChecks(r), ['Shoal / login (run 3): failed logins = 2']);
  assert.equal(repeatsTable({ ...r, servers: { shoal: { ...r.servers.shoal!, repeats: undefined } } }), '', 'nothing repeated: no table');
});
