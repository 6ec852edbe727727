// PostgreSQL storage through node-postgres (pg, pure JavaScript) and a pool of
// connections. The stores and migrations are the same as SQLite's (sql/); this
// file only sets up the pool, the type parsers and the migrations.
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Storage } from './types.js';
import { migrateToLatest } from './sql/migrations.js';
import type { Database } from './sql/schema.js';
import { createSqlStorage } from './sql/storage.js';

/** Connections kept at most, by default (config storage.pool). */
export const DEFAULT_POOL_SIZE = 10;

/** How long getting a connection (a new one, or a free one from a busy pool) may take. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface PostgresOptions {
  /** Connections the pool opens at most. */
  pool?: number;
  /**
   * Errors of idle pooled connections (the server restarted, the network dropped): the pool
   * discards the connection and opens another when needed. Without a listener pg would throw
   * them as uncaught exceptions.
   */
  onIdleError?: (err: Error) => void;
}

/**
 * pg returns int8 (bigint: identity ids, count(*), sum() of integers) as strings, since not
 * every int8 fits a JS number. The stores use numbers (SQLite's integers come back as
 * numbers): ids and counts here stay far below 2^53, so they are numbers too; a larger
 * value comes back as a bigint rather than silently rounded.
 */
function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

const typeParsers: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** Connects to `url` and brings its schema up to date (the same migrations as SQLite). */
export async function openPostgresStorage(url: string, options: PostgresOptions = {}): Promise<Storage> {
  return createSqlStorage(await openPostgresDatabase(url, options), 'postgres');
}

/** The Kysely instance behind openPostgresStorage, for callers (and tests) that need the database itself. */
export async function openPostgresDatabase(url: string, options: PostgresOptions = {}): Promise<Kysely<Database>> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.pool ?? DEFAULT_POOL_SIZE,
    types: typeParsers,
    application_name: 'shoal',
    // A server that does not answer (network loss) fails a query after this instead of
    // stalling it forever; the callers' retries (offline storage) then apply.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // TCP keepalive: a connection whose peer vanished is noticed and replaced.
    keepAlive: true,
  });
  pool.on('error', (err) => options.onIdleError?.(err));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db, 'postgres');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return db;
}

/** The URL with its password (if any) replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
