import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HookChain, Priority, runUntilHandled } from './hooks.js';

test('handlers run highest priority first, equal priorities in registration order; removal works', async () => {
  const chain = new HookChain<(log: string[]) => boolean | void>();
  chain.add((l) => void l.push('default-1'), Priority.DEFAULT);
  chain.add((l) => void l.push('policy'), Priority.POLICY);
  const remove = chain.add((l) => void l.push('last'), Priority.LAST);
  chain.add((l) => void l.push('default-2'), Priority.DEFAULT);
  chain.add((l) => void l.push('first'), Priority.FIRST);
  const log: string[] = [];
  assert.equal(await runUntilHandled(chain, log), false);
  assert.deepEqual(log, ['first', 'policy', 'default-1', 'default-2', 'last']);
  remove();
  const again: string[] = [];
  await runUntilHandled(chain, again);
  assert.deepEqual(again, ['first', 'policy', 'default-1', 'default-2']);
});

test('the first handler returning true stops the chain (async ones too)', async () => {
  const chain = new HookChain<(log: string[]) => Promise<boolean | void> | boolean | void>();
  chain.add(async (l) => void l.push('a'), 10);
  chain.add(async (l) => {
    l.push('b');
    return true;
  }, 5);
  chain.add((l) => void l.push('c'), 0);
  const log: string[] = [];
  assert.equal(await runUntilHandled(chain, log), true);
  assert.deepEqual(log, ['a', 'b']);
});
