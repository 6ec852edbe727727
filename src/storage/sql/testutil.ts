// Shared set-up for the SQL storage tests: a fresh SQLite file in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../sqlite.js';
import type { RosterItem, ScramCredentials, ScramHash, Storage } from '../types.js';

export interface TempStorage {
  dir: string;
  path: string;
  storage: Storage;
  reopen(): Promise<Storage>;
  cleanup(): Promise<void>;
}

export async function tempStorage(): Promise<TempStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-storage-'));
  const path = join(dir, 'nested', 'shoal.sqlite');
  const state: TempStorage = {
    dir,
    path,
    storage: await openSqliteStorage(path),
    async reopen() {
      await state.storage.close();
      state.storage = await openSqliteStorage(path);
      return state.storage;
    },
    async cleanup() {
      await state.storage.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return state;
}

export function credentials(hash: ScramHash, seed: number): ScramCredentials {
  const bytes = (n: number, offset: number) => Buffer.from(Array.from({ length: n }, (_, i) => (seed * 31 + offset + i * 7) & 0xff));
  return { hash, salt: bytes(16, 1), iterations: 4096 + seed, storedKey: bytes(32, 2), serverKey: bytes(32, 3) };
}

export function item(jid: string, extra: Partial<RosterItem> = {}): RosterItem {
  return { jid, subscription: 'none', ask: false, pendingIn: false, approved: false, groups: [], ...extra };
}
