import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Caches } from './cache.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

test('a key is loaded once; gets during the load share it; then it is served loaded', async () => {
  const caches = new Caches();
  const c = caches.define<string>('c');
  let loads = 0;
  const d = deferred<string>();
  const load = (): Promise<string> => (loads++, d.promise);
  const a = c.get('k', load);
  const b = c.get('k', load);
  assert.equal(loads, 1);
  assert.equal(c.has('k'), true);
  assert.equal(c.settled('k'), undefined, 'not settled while loading');
  assert.equal(c.peek('k'), a);
  d.resolve('v');
  assert.deepEqual(await Promise.all([a, b]), ['v', 'v']);
  assert.equal(c.settled('k'), 'v');
  assert.equal(await c.get('k', load), 'v');
  assert.equal(await c.peek('k'), 'v');
  assert.equal(loads, 1);
  assert.equal(c.size, 1);
});

test('a failed load is not kept; set replaces and tells the listeners; invalidate during a load discards its result', async () => {
  const caches = new Caches();
  const changed: string[] = [];
  caches.onChange((n, k) => changed.push(`${n}:${k}`));
  const c = caches.define<number>('n');
  await assert.rejects(c.get('x', () => Promise.reject(new Error('down'))));
  assert.equal(c.has('x'), false);
  assert.equal(await c.get('x', () => Promise.resolve(1)), 1);
  c.set('x', 2);
  assert.equal(c.settled('x'), 2);
  assert.equal(await c.get('x', () => Promise.resolve(99)), 2);
  assert.deepEqual(changed, ['n:x']);

  const d = deferred<number>();
  const pending = c.get('y', () => d.promise);
  caches.invalidate('n', 'y');
  d.resolve(5);
  assert.equal(await pending, 5, 'the caller still gets what it waited for');
  assert.equal(c.has('y'), false, 'but the cache does not keep a value read before the change');
  c.forget('x');
  assert.equal(c.size, 0);
});
