// What every fuzz target shares: the failure it throws when an invariant breaks,
// and the execution count the runner reads to report executions per second.
//
// A target is a module exporting `fuzz(data: Buffer)`, the shape jsfuzz calls
// (an async function when the code under test is async). Anything it throws is
// a crash: jsfuzz saves the input and stops. So a target catches exactly the
// errors the code under test is allowed to throw and nothing else.
import { writeFileSync } from 'node:fs';

/** An invariant of the code under test does not hold for this input. */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

let executions = 0;
let firstAt = 0;
let lastAt = 0;

function counted(): void {
  const now = performance.now();
  if (executions === 0) firstAt = now;
  lastAt = now;
  executions++;
}

// The runner sets SHOAL_FUZZ_STATS to a file for the worker to leave its count in
// when it exits (jsfuzz's own log only samples every 3 seconds).
const statsFile = process.env.SHOAL_FUZZ_STATS;
if (statsFile !== undefined && statsFile !== '') {
  process.on('exit', () => {
    writeFileSync(statsFile, JSON.stringify({ executions, milliseconds: lastAt - firstAt }));
  });
}

export type SyncTarget = (data: Buffer) => void;
export type AsyncTarget = (data: Buffer) => Promise<void>;

/** A synchronous target, counted. */
export function syncTarget(fn: SyncTarget): SyncTarget {
  return function fuzz(data: Buffer): void {
    counted();
    fn(data);
  };
}

/**
 * An asynchronous target, counted. It must stay an `async function`: jsfuzz awaits
 * the target only when its constructor is AsyncFunction, and a promise it does not
 * await would reject unobserved instead of counting as a crash.
 */
export function asyncTarget(fn: AsyncTarget): AsyncTarget {
  return async function fuzz(data: Buffer): Promise<void> {
    counted();
    await fn(data);
  };
}

/** Hex and a JSON string of an input, for logs and failure messages. */
export function describeInput(data: Buffer): string {
  const shown = data.length > 2048 ? data.subarray(0, 2048) : data;
  const more = data.length > shown.length ? ` ... (${data.length} bytes in all)` : '';
  return `hex: ${shown.toString('hex')}${more}\ntext: ${JSON.stringify(shown.toString('latin1'))}${more}`;
}
