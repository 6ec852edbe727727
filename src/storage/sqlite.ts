// SQLite storage through better-sqlite3. One connection: Kysely's SQLite driver
// serialises queries and transactions on it, which is what SQLite wants anyway.
import { mkdir } from 'node:fs/promises';
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Storage } from './types.js';
import { migrateToLatest } from './sql/migrations.js';
import type { Database } from './sql/schema.js';
import { createSqlStorage } from './sql/storage.js';

/** How long a statement waits for another process's lock (e.g. a `shoal` admin command) before failing, by default. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export interface SqliteOptions {
  /** How long a statement waits for another process's lock before failing with SQLITE_BUSY. */
  busyTimeoutMs?: number;
}

/** Opens (creating if needed) the database at `path` and brings its schema up to date. `':memory:'` is accepted for tests. */
export async function openSqliteStorage(path: string, options: SqliteOptions = {}): Promise<Storage> {
  return createSqlStorage(await openSqliteDatabase(path, options), 'sqlite');
}

/** The Kysely instance behind openSqliteStorage, for callers (and tests) that need the database itself. */
export async function openSqliteDatabase(path: string, options: SqliteOptions = {}): Promise<Kysely<Database>> {
  if (path !== ':memory:') {
    // The file holds SCRAM verifiers and messages: readable by the server's user only.
    await mkdir(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  }
  const sqlite = cacheStatements(new BetterSqlite3(path));
  try {
    // First: a lock held briefly by another process (an admin command) is waited for, even here.
    sqlite.pragma(`busy_timeout = ${Math.round(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS)}`);
    // WAL lets readers (e.g. an admin CLI listing accounts) run while the server writes.
    sqlite.pragma('journal_mode = WAL');
    // With WAL, NORMAL only risks the last transactions on power loss, never corruption.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    sqlite.close();
    throw err;
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    await migrateToLatest(db, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return db;
}

/**
 * Kysely's SQLite driver prepares every query anew; the server runs the same few
 * statements over and over, so keep the compiled ones (bounded, oldest dropped first).
 * Safe because every statement runs to completion synchronously (no iterators).
 */
function cacheStatements(db: BetterSqlite3.Database, max = 256): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (statement === undefined) {
      statement = prepare(source);
      if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      cache.set(source, statement);
    }
    return statement;
  }) as typeof db.prepare;
  return db;
}
