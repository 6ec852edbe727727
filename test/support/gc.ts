// Whether an object can be garbage collected: for tests of what a closed connection or a
// stopped parser leaves behind.
import { setImmediate } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Whether the target of `ref` is gone after a full collection. A WeakRef keeps its target
 * until the end of the task that made it, so one macrotask passes first.
 */
export async function collected(ref: WeakRef<object>): Promise<boolean> {
  await setImmediate();
  // V8's gc(), without starting the test process with --expose-gc.
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return ref.deref() === undefined;
}
