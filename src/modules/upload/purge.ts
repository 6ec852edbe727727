// Deleting uploads: the expiry job, `shoal upload purge` and account deletion all
// remove files first, then their rows, a batch at a time with asynchronous file
// operations, so a large clean-up never holds the event loop or one long transaction.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SqlUploadStore } from './store.js';

const BATCH = 200;

/** Removes the files of these slots (missing ones are fine), then their rows; returns how many rows went. */
export async function removeUploads(store: SqlUploadStore, dir: string, ids: readonly string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += BATCH) {
    const batch = ids.slice(i, i + BATCH);
    await Promise.all(batch.map((id) => rm(join(dir, id), { force: true })));
    n += await store.remove(batch);
  }
  return n;
}

/**
 * Removes files stored before `before` and slots whose PUT URL expired unused before `now`;
 * returns how many. Temporary files of uploads that died long ago go too.
 */
export async function purgeExpired(store: SqlUploadStore, dir: string, before: Date, now: Date = new Date()): Promise<number> {
  let total = 0;
  for (;;) {
    const ids = await store.expired(before.toISOString(), now.toISOString(), BATCH);
    if (ids.length === 0) break;
    total += await removeUploads(store, dir, ids);
    if (ids.length < BATCH) break;
  }
  await removeStaleTemporaries(join(dir, 'tmp'), now.getTime() - 24 * 3600_000);
  return total;
}

/** Every upload of a user (account deletion). */
export async function removeUserUploads(store: SqlUploadStore, dir: string, host: string, username: string): Promise<number> {
  return removeUploads(store, dir, await store.ofUser(host, username));
}

async function removeStaleTemporaries(tmp: string, olderThanMs: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmp);
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(tmp, name);
    const s = await stat(file).catch(() => undefined);
    if (s && s.mtimeMs < olderThanMs) await rm(file, { force: true });
  }
}
