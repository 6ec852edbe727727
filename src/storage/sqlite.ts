// SQLite storage through better-sqlite3. One connection: Kysely's SQLite driver
// serialises queries and transactions on it, which is what SQLite wants anyway.
import { mkdir } from 'node:fs/promises';
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';
import { readDirectly } from './sql/prepared.js';
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
  const queue = { waiting: 0 };
  const db = new Kysely<Database>({ dialect: new CountingSqliteDialect({ database: sqlite }, queue) });
  // The login's prepared reads skip Kysely's connection queue when it is empty (see DirectReader):
  // nothing else is then running on the one connection, and no transaction is open on it.
  readDirectly(db, (source, parameters) => {
    if (queue.waiting > 0 || sqlite.inTransaction) return undefined;
    const statement = sqlite.prepare(source);
    return statement.reader ? (statement.all(parameters as unknown[]) as unknown[]) : undefined;
  });
  try {
    await migrateToLatest(db, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return db;
}

/** Kysely's SQLite dialect, counting the queries and transactions that hold or wait for the connection. */
class CountingSqliteDialect extends SqliteDialect {
  constructor(
    private readonly settings: SqliteDialectConfig,
    private readonly queue: { waiting: number },
  ) {
    super(settings);
  }

  override createDriver(): Driver {
    return new CountingSqliteDriver(this.settings, this.queue);
  }
}

class CountingSqliteDriver extends SqliteDriver {
  constructor(
    settings: SqliteDialectConfig,
    private readonly queue: { waiting: number },
  ) {
    super(settings);
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    this.queue.waiting++;
    try {
      return await super.acquireConnection();
    } catch (err) {
      this.queue.waiting--;
      throw err;
    }
  }

  override async releaseConnection(): Promise<void> {
    try {
      await super.releaseConnection();
    } finally {
      this.queue.waiting--;
    }
  }
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
