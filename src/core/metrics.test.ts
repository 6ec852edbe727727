// The process metrics' event-loop delay comes from a timer that fires every
// `eventLoopResolutionMs` (perf_hooks.monitorEventLoopDelay). Node records the time between two
// firings, so the smallest value seen is never below the period: that is how a test can tell
// which period the timer runs at without counting the process's wake-ups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_EVENT_LOOP_RESOLUTION_MS, Metrics } from './metrics.js';

/** The value of an unlabelled sample in the Prometheus text format. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in the metrics`);
  return Number(line.split(' ')[1]);
}

test('the event-loop delay is sampled every 100 ms by default, not every 10 ms: an idle server is not woken up 100 times a second', async () => {
  assert.equal(DEFAULT_EVENT_LOOP_RESOLUTION_MS, 100);
  const metrics = new Metrics();
  await metrics.text(); // the histogram starts afresh at each scrape
  await sleep(450);
  const text = await metrics.text();
  // Several firings about 0.1 s apart (prom-client's own 10 ms gives ~0.010). A firing can come a
  // little early: the next one is due a period after the loop's cached time, not after the
  // callback ran, hence a threshold halfway down rather than at the period.
  assert.ok(sample(text, 'shoal_nodejs_eventloop_lag_min_seconds') >= 0.05, text);
  assert.ok(sample(text, 'shoal_nodejs_eventloop_lag_max_seconds') > 0);
});

test('metrics.event_loop_resolution_ms sets the period', async () => {
  const metrics = new Metrics({ eventLoopResolutionMs: 300 });
  await metrics.text();
  await sleep(1000);
  // Firings 0.3 s apart, where the default's would be 0.1 s apart.
  const min = sample(await metrics.text(), 'shoal_nodejs_eventloop_lag_min_seconds');
  assert.ok(min >= 0.2, `min ${min}`);
});
