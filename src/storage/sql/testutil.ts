// Shared set-up for the SQL storage tests: a fresh SQLite file in a temp dir, or a
// fresh PostgreSQL schema (or database) of its own (created and dropped by the test),
// so every store test runs against both dialects.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { openSqliteStorage } from '../sqlite.js';
import { openPostgresStorage } from '../postgres.js';
import { migrations, type SqlDialect } from './migrations.js';
import type { RosterItem, ScramCredentials, ScramHash, Storage } from '../types.js';

export interface TempStorage {
  dialect: SqlDialect;
  /** SQLite: a temporary directory; PostgreSQL: ''. */
  dir: string;
  /** SQLite: the database file; PostgreSQL: the connection URL of the database the schema is in. */
  path: string;
  /** PostgreSQL: the test's own schema (storage.schema). */
  schema?: string;
  storage: Storage;
  reopen(): Promise<Storage>;
  cleanup(): Promise<void>;
}

/** A fresh SQLite database in a temporary directory. */
export async function tempStorage(): Promise<TempStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-storage-'));
  const path = join(dir, 'nested', 'shoal.sqlite');
  const state: TempStorage = {
    dialect: 'sqlite',
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

/**
 * The PostgreSQL server the tests use: a database there that the user may connect to and
 * a role that may create databases (each test creates its own and drops it).
 */
export function testPostgresAdminUrl(): string {
  return process.env.SHOAL_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
}

/** Why PostgreSQL tests are skipped (SHOAL_TEST_NO_PG is set), or false when they run. */
export function postgresSkipped(): string | false {
  return process.env.SHOAL_TEST_NO_PG ? 'PostgreSQL tests skipped: SHOAL_TEST_NO_PG is set' : false;
}

export interface TestDatabase {
  /** Connection URL of the new, empty database. */
  url: string;
  /** Drops it, closing whatever connections are still open to it. */
  drop(): Promise<void>;
}

/** The name of a test's database or schema: the test process's id, to sweep those of dead processes. */
const TEST_NAME = /^shoal_test_[0-9]+_[0-9a-f]{12}$/;

function testName(): string {
  return `shoal_test_${process.pid}_${randomBytes(6).toString('hex')}`;
}

async function runAdmin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let staleSwept: Promise<void> | undefined;

/**
 * Test databases and schemas (in the admin database) left by test processes that died before
 * dropping them (killed runs), dropped once per process.
 */
function sweepStale(): Promise<void> {
  staleSwept ??= (async () => {
    const client = new pg.Client({ connectionString: testPostgresAdminUrl() });
    await client.connect();
    const dead = (name: string): boolean => {
      const pid = Number(/^shoal_test_([0-9]+)_/.exec(name)?.[1]);
      return TEST_NAME.test(name) && Number.isSafeInteger(pid) && !processAlive(pid);
    };
    try {
      const databases = await client.query<{ name: string }>("select datname as name from pg_database where datname like 'shoal\\_test\\_%'");
      const schemas = await client.query<{ name: string }>("select nspname as name from pg_namespace where nspname like 'shoal\\_test\\_%'");
      // Another process may be sweeping the same one at the same moment: that one wins.
      for (const { name } of databases.rows.filter((r) => dead(r.name))) await client.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
      for (const { name } of schemas.rows.filter((r) => dead(r.name))) await client.query(`drop schema if exists "${name}" cascade`).catch(() => undefined);
    } finally {
      await client.end();
    }
  })();
  return staleSwept;
}

/** Creates a uniquely named, empty PostgreSQL database for one test (never shared between runs). */
export async function createTestDatabase(): Promise<TestDatabase> {
  await sweepStale();
  const name = testName();
  await runAdmin(`create database "${name}"`);
  const url = new URL(testPostgresAdminUrl());
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => dropTestDatabase(url.toString()) };
}

/** Drops a database createTestDatabase made, given its URL (closing its connections). */
export async function dropTestDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!TEST_NAME.test(name)) throw new Error(`not a test database: ${name}`);
  await runAdmin(`drop database if exists "${name}" with (force)`);
}

export interface TestSchema {
  /** Connection URL of the admin database (SHOAL_TEST_PG_URL) the schema is in. */
  url: string;
  /** The schema's name, for storage.schema: the server creates it. */
  schema: string;
  /** Drops it, and everything in it, if it exists. */
  drop(): Promise<void>;
}

/**
 * A uniquely named schema (never shared between runs) in the admin database, for one test's
 * server or stores (config storage.schema): cheaper than a database of its own. Not created
 * here: openPostgresStorage creates it.
 */
export async function reserveTestSchema(): Promise<TestSchema> {
  await sweepStale();
  const schema = testName();
  return { url: testPostgresAdminUrl(), schema, drop: () => dropTestSchema(schema) };
}

/** Drops a schema reserveTestSchema named, with its tables. */
export async function dropTestSchema(schema: string): Promise<void> {
  if (!TEST_NAME.test(schema)) throw new Error(`not a test schema: ${schema}`);
  await runAdmin(`drop schema if exists "${schema}" cascade`);
}

/** A fresh PostgreSQL schema of the test's own, opened as Storage. */
export async function tempPostgresStorage(): Promise<TempStorage> {
  const { url, schema, drop } = await reserveTestSchema();
  const open = () => openPostgresStorage(url, { pool: 4, schema });
  let storage: Storage;
  try {
    storage = await open();
  } catch (err) {
    await drop();
    throw err;
  }
  const state: TempStorage = {
    dialect: 'postgres',
    dir: '',
    path: url,
    schema,
    storage,
    async reopen() {
      await state.storage.close();
      state.storage = await open();
      return state.storage;
    },
    async cleanup() {
      await state.storage.close();
      await drop();
    },
  };
  return state;
}

/** The storage the suite runs on: SQLite, or PostgreSQL when SHOAL_TEST_STORAGE=postgres (`npm run test:postgres`). */
export function testStorageDialect(): SqlDialect {
  return process.env.SHOAL_TEST_STORAGE === 'postgres' ? 'postgres' : 'sqlite';
}

/** A fresh store of testStorageDialect(), for tests of something over storage (not of the stores: storageBackends()). */
export function testStorage(): Promise<TempStorage> {
  return testStorageDialect() === 'postgres' ? tempPostgresStorage() : tempStorage();
}

export interface StorageBackend {
  dialect: SqlDialect;
  /** For describe(): a reason to skip, or false. */
  skip: string | false;
  open(): Promise<TempStorage>;
}

/**
 * Both SQL backends, for `for (const b of storageBackends()) describe(`... (${b.dialect})`, { skip: b.skip }, ...)`.
 * PostgreSQL is only skipped when SHOAL_TEST_NO_PG is set (CI runs it).
 */
export function storageBackends(): StorageBackend[] {
  return [
    { dialect: 'sqlite', skip: false, open: tempStorage },
    { dialect: 'postgres', skip: postgresSkipped(), open: tempPostgresStorage },
  ];
}

/** The message of a foreign key violation, as either dialect words it. */
export const FOREIGN_KEY_ERROR = /foreign key/i;

export function credentials(hash: ScramHash, seed: number): ScramCredentials {
  const bytes = (n: number, offset: number) => Buffer.from(Array.from({ length: n }, (_, i) => (seed * 31 + offset + i * 7) & 0xff));
  return { hash, salt: bytes(16, 1), iterations: 4096 + seed, storedKey: bytes(32, 2), serverKey: bytes(32, 3) };
}

export function item(jid: string, extra: Partial<RosterItem> = {}): RosterItem {
  return { jid, subscription: 'none', ask: false, pendingIn: false, approved: false, groups: [], ...extra };
}

/**
 * The SQL one PostgreSQL migration compiles to, statement by statement: compiled, not
 * run, through a driver that executes nothing (the DDL itself, without a server).
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
