// Shared set-up for the SQL storage tests: a fresh SQLite file in a temp dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { openSqliteStorage } from '../sqlite.js';
import { migrations } from './migrations.js';
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

/**
 * The SQL one PostgreSQL migration compiles to, statement by statement: compiled, not
 * run (no PostgreSQL here), through a driver that executes nothing.
 */
export async function compilePostgresMigration(name: string): Promise<string[]> {
  const compiled: string[] = [];
  const db = new Kysely<unknown>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    log: (event) => {
      compiled.push(event.query.sql);
    },
  });
  const migration = migrations('postgres')[name];
  if (migration === undefined) throw new Error(`no migration ${name}`);
  await migration.up(db);
  await db.destroy();
  return compiled;
}
