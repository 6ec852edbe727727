// PostgreSQL storage through node-postgres (pg, pure JavaScript) and a pool of
// connections. The stores and migrations are the same as SQLite's (sql/); this
// file only sets up the pool, the type parsers and the migrations.
import pg from 'pg';
import { Kysely, PostgresDialect, sql, type DatabaseIntrospector } from 'kysely';
import { POSTGRES_SCHEMA_NAME } from '../config/schema.js';
import type { Storage } from './types.js';
import { CurrentSchemaIntrospector } from './postgres-introspector.js';
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
   * A schema of the server's own in the database (config storage.schema), created if missing:
   * every pooled connection resolves names in it alone, so the tables, the migrations and their
   * bookkeeping live there. Without it, the role's default search_path (normally public).
   */
  schema?: string;
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

/** Kysely's PostgreSQL dialect, introspecting the current schema only (postgres-introspector.ts). */
class SchemaPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
}

/** Connects to `url` and brings its schema up to date (the same migrations as SQLite). */
export async function openPostgresStorage(url: string, options: PostgresOptions = {}): Promise<Storage> {
  return createSqlStorage(await openPostgresDatabase(url, options), 'postgres');
}

/** The Kysely instance behind openPostgresStorage, for callers (and tests) that need the database itself. */
export async function openPostgresDatabase(url: string, options: PostgresOptions = {}): Promise<Kysely<Database>> {
  const { schema } = options;
  if (schema !== undefined && !POSTGRES_SCHEMA_NAME.test(schema)) throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}`);
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
    // The schema as the connection's search_path from its start (a startup option, so no
    // connection ever runs a query before it is set). The name needs no quoting (POSTGRES_SCHEMA_NAME).
    ...(schema !== undefined && { options: `-c search_path=${schema}` }),
  });
  pool.on('error', (err) => options.onIdleError?.(err));
  const db = new Kysely<Database>({ dialect: new SchemaPostgresDialect({ pool }) });
  try {
    if (schema !== undefined) await createSchema(db, schema);
    await migrateToLatest(db, 'postgres');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return db;
}

/**
 * Creates the schema unless it exists. Looked up first: CREATE SCHEMA IF NOT EXISTS needs the
 * right to create schemas in the database even when the schema is there (created by an operator
 * for a role without that right).
 */
async function createSchema(db: Kysely<Database>, schema: string): Promise<void> {
  const exists = async () => (await sql`select 1 from pg_namespace where nspname = ${schema}`.execute(db)).rows.length > 0;
  if (await exists()) return;
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (err) {
    // Two servers creating it at the same moment: the slower one fails on pg_namespace's unique
    // index (23505) instead of finding it there.
    if ((err as { code?: unknown }).code !== '23505' || !(await exists())) throw err;
  }
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
