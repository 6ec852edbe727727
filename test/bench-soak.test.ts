// The soak benchmark (bench/soak) at a tiny size against a real Shoal in its own
// process, so that it cannot silently rot: 40 connections for a few seconds with
// messages, presence, abrupt drops and clean logouts, and nothing may be lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSoak, ringContacts } from '../bench/soak/soak.js';
import { fit } from '../bench/soak/results.js';

test('40 connections for 8 s: every acknowledged message arrives exactly once, live or from offline storage', { timeout: 60_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'shoal-soak-test-'));
  try {
    const r = await runSoak({
      connections: 40,
      durationS: 8,
      warmupS: 2,
      // Per account about one message a second, and drops that keep accounts away for 1-2 s:
      // some messages must go through offline storage.
      traffic: { msgRate: 40, presenceRate: 5, dropRate: 2, logoutRate: 0.5, offlinePauseMs: [1000, 2000] },
      loginRate: 100,
      sampleMs: 500,
      progressMs: 60_000,
      stepTimeoutMs: 20_000,
      quiesceTimeoutMs: 5_000,
      settleMs: 15_000,
      stallMs: 5_000,
      // The connections are closed by then; what stays after them is not what this test is about.
      lingerMs: 500,
      pin: false,
      outDir: out,
      progress: () => undefined,
    });
    const c = r.generator.counts;
    assert.ok(c.sent > 200, `sent ${c.sent}`);
    assert.equal(c.acked + c.unacked, c.sent);
    assert.equal(c.lost, 0, JSON.stringify(r.generator.failures));
    assert.equal(c.duplicates, 0);
    assert.equal(c.misrouted, 0);
    assert.equal(c.bounced, 0, JSON.stringify(r.generator.failures));
    assert.equal(c.deliveredLive + c.deliveredOffline, c.acked);
    assert.ok(c.deliveredOffline > 0, 'some messages came from offline storage');
    assert.ok(c.drops > 0 && c.logouts > 0 && c.presenceSent > 0);
    // The ramp, the reconnects after each drop and logout, and the drain's 40.
    assert.ok(c.logins >= 80 + c.drops, `logins ${c.logins}`);
    assert.equal(c.loginFailures, 0, JSON.stringify(r.generator.failures));
    assert.equal(r.offlineLeft, 0);
    assert.equal(r.serverLog.errors, 0, r.serverLog.examples.join('\n'));
    // The server sampled itself all along, and the forced-GC samples are there.
    assert.ok(r.points.length >= 10, `${r.points.length} samples`);
    assert.ok(r.points.some((p) => p.connections === 40));
    assert.deepEqual(
      r.gcPoints.map((g) => g.label),
      ['baseline', 'warm-up end', 'soak end', 'after drain'],
    );
    assert.equal(r.gcPoints[3]!.sample.connections, 0);
    const m = r.markers;
    assert.ok(m.rampEnd < m.warmupEnd && m.warmupEnd < m.judgedFrom && m.judgedFrom < m.soakEnd && m.soakEnd <= m.drainStart, JSON.stringify(m));
    assert.ok(r.generator.latencyMs.count > 0 && r.generator.rampLoginMs.count === 40);
    const md = readFileSync(join(out, 'RESULTS.md'), 'utf8');
    assert.match(md, /\*\*lost\*\* .* \| \*\*0\*\* \|/);
    assert.equal(existsSync(join(out, 'RESULTS.png')), md.includes('](RESULTS.png)'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('rosters are a symmetric ring; the memory slope is a least-squares fit in MB/min', () => {
  const ring = ringContacts(10, 4);
  for (const [i, contacts] of ring.entries()) {
    assert.equal(contacts.length, 4);
    for (const c of contacts) assert.ok(ring[c]!.includes(i), `${c} has ${i} back`);
  }
  assert.deepEqual(ringContacts(3, 4).map((c) => c.length), [2, 2, 2]);
  const MB = 1024 * 1024;
  // 1 MB per 30 s = 2 MB/min, around 100 MB.
  const f = fit([0, 30, 60, 90].map((t) => ({ t, y: (100 + t / 30) * MB })));
  assert.ok(Math.abs(f.slope - 2) < 1e-9 && Math.abs(f.mean - 101.5) < 1e-9 && f.se < 1e-9);
  // Noise around a level: a small slope, but within its standard errors.
  const noisy = fit([0, 30, 60, 90, 120, 150].map((t, i) => ({ t, y: (100 + (i % 2 === 0 ? 1 : -1)) * MB })));
  assert.ok(Math.abs(noisy.slope) < 2 * noisy.se, JSON.stringify(noisy));
});
