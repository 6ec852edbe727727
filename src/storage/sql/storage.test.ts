import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { PostgresIntrospector, sql, type TableMetadata } from 'kysely';
import { openStorage } from '../index.js';
import { openSqliteDatabase } from '../sqlite.js';
import { migrations } from './migrations.js';
import pg from 'pg';
import { compilePostgresMigration, createTestDatabase, credentials, FOREIGN_KEY_ERROR, item, postgresSkipped, tempPostgresStorage, testPostgresAdminUrl, type TestDatabase } from './testutil.js';
import type { Database } from './schema.js';

describe('openStorage (sqlite)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-open-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('creates the parent directories and the schema; data survives close and reopen', async () => {
    const path = join(dir, 'a', 'b', 'shoal.sqlite');
    const first = await openStorage({ driver: 'sqlite', path });
    assert.ok(existsSync(path));
    const creds = [credentials('SHA-256', 5), credentials('SHA-512', 6)];
    assert.equal(await first.accounts.create('example.org', 'alice', creds), true);
    await first.roster.setItem('example.org', 'alice', item('bob@example.org', { name: 'Bob', groups: ['g'] }));
    const version = await first.roster.setItem('example.org', 'alice', item('carol@example.org'));
    await first.close();
    await first.close(); // closing twice is harmless

    const second = await openStorage({ driver: 'sqlite', path });
    try {
      assert.equal(await second.accounts.exists('example.org', 'alice'), true);
      assert.deepEqual(await second.accounts.getScramCredentials('example.org', 'alice', 'SHA-512'), creds[1]);
      const roster = await second.roster.get('example.org', 'alice');
      assert.equal(roster.version, version);
      assert.deepEqual(roster.items, [item('bob@example.org', { name: 'Bob', groups: ['g'] }), item('carol@example.org')]);
      assert.deepEqual((await second.roster.changesSince('example.org', 'alice', '1'))?.changes, [item('carol@example.org')]);
    } finally {
      await second.close();
    }

    // Inspect the file directly: WAL mode, and every migration recorded exactly once.
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
      const applied = raw.prepare('select name from kysely_migration order by name').all() as { name: string }[];
      assert.deepEqual(
        applied.map((r) => r.name),
        Object.keys(migrations('sqlite')).sort(),
      );
      const tables = raw.prepare("select name from sqlite_master where type = 'table' order by name").all() as { name: string }[];
      for (const table of ['accounts', 'roster_changes', 'roster_items', 'roster_versions', 'scram_credentials']) {
        assert.ok(
          tables.some((r) => r.name === table),
          `table ${table}`,
        );
      }
    } finally {
      raw.close();
    }
  });

  test('the connection runs with foreign keys, a busy timeout and WAL', async () => {
    const db = await openSqliteDatabase(join(dir, 'pragmas.sqlite'));
    try {
      const pragma = async (name: string) =>
        Object.values((await sql.raw(`pragma ${name}`).execute(db)).rows[0] as Record<string, unknown>)[0];
      assert.equal(await pragma('foreign_keys'), 1);
      assert.equal(await pragma('busy_timeout'), 5000);
      assert.equal(await pragma('journal_mode'), 'wal');
      await assert.rejects(
        db
          .insertInto('scram_credentials')
          .values({ host: 'h', username: 'ghost', hash: 'SHA-1', salt: Buffer.alloc(1), iterations: 1, stored_key: Buffer.alloc(1), server_key: Buffer.alloc(1) })
          .execute(),
        /FOREIGN KEY/,
        'credentials need an account',
      );
    } finally {
      await db.destroy();
    }
  });

  test('":memory:" opens a throwaway database', async () => {
    const storage = await openStorage({ driver: 'sqlite', path: ':memory:' });
    try {
      assert.equal(await storage.accounts.create('h', 'u', []), true);
      assert.equal(await storage.accounts.exists('h', 'u'), true);
    } finally {
      await storage.close();
    }
  });

  test('migrations name the binary type of the dialect', async () => {
    // Compiled, not run (the PostgreSQL suite below runs it): its DDL must use bytea.
    const compiled = await compilePostgresMigration('0001_initial');
    const credentialsDdl = compiled.find((s) => s.includes('"scram_credentials"'));
    assert.ok(credentialsDdl !== undefined);
    assert.match(credentialsDdl, /"salt" bytea not null/);
    assert.doesNotMatch(compiled.join('\n'), /blob/);
  });
});

describe('openStorage (postgres)', { skip: postgresSkipped() }, () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await database.drop();
  });

  test('creates the schema; data survives close and reopen; every migration recorded once', async () => {
    const first = await openStorage({ driver: 'postgres', url: database.url, pool: 2 });
    const creds = [credentials('SHA-256', 5), credentials('SHA-512', 6)];
    assert.equal(await first.accounts.create('example.org', 'alice', creds), true);
    await first.roster.setItem('example.org', 'alice', item('bob@example.org', { name: 'Bob', groups: ['g'] }));
    const version = await first.roster.setItem('example.org', 'alice', item('carol@example.org'));
    await first.close();
    await first.close(); // closing twice is harmless

    const second = await openStorage({ driver: 'postgres', url: database.url });
    try {
      assert.equal(second.sql.dialect, 'postgres');
      assert.deepEqual(await second.accounts.getScramCredentials('example.org', 'alice', 'SHA-512'), creds[1]);
      const roster = await second.roster.get('example.org', 'alice');
      assert.equal(roster.version, version);
      assert.deepEqual(roster.items, [item('bob@example.org', { name: 'Bob', groups: ['g'] }), item('carol@example.org')]);
      const db = second.sql.db<unknown>();
      const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
      assert.deepEqual(
        applied.rows.map((r) => r.name),
        Object.keys(migrations('postgres')).sort(),
      );
      const columns = await sql<{ data_type: string }>`select data_type from information_schema.columns where table_name = 'scram_credentials' and column_name = 'salt'`.execute(db);
      assert.equal(columns.rows[0]?.data_type, 'bytea');
    } finally {
      await second.close();
    }
  });

  test('int8 values (counts, identity ids) come back as numbers, bytea as Buffers; foreign keys hold', async () => {
    const storage = await openStorage({ driver: 'postgres', url: database.url });
    try {
      const db = storage.sql.db<unknown>();
      const row = (await sql<{ n: unknown; big: unknown; huge: unknown; bin: unknown }>`select count(*) as n, 9007199254740991::int8 as big, 9007199254740993::int8 as huge, '\\x0102'::bytea as bin`.execute(db)).rows[0];
      assert.equal(typeof row?.n, 'number');
      assert.equal(row?.big, Number.MAX_SAFE_INTEGER);
      assert.equal(row?.huge, 9007199254740993n, 'beyond 2^53: a bigint, never a rounded number');
      assert.ok(Buffer.isBuffer(row?.bin) && row.bin.equals(Buffer.from([1, 2])));
      await assert.rejects(
        storage.sql
          .db<Database>()
          .insertInto('scram_credentials')
          .values({ host: 'h', username: 'ghost', hash: 'SHA-1', salt: Buffer.alloc(1), iterations: 1, stored_key: Buffer.alloc(1), server_key: Buffer.alloc(1) })
          .execute(),
        FOREIGN_KEY_ERROR,
        'credentials need an account',
      );
    } finally {
      await storage.close();
    }
  });

  test('nodes starting at once on an empty database: the migrations run once, both open', async () => {
    const fresh = await createTestDatabase();
    try {
      const opened = await Promise.all([0, 1, 2].map(() => openStorage({ driver: 'postgres', url: fresh.url, pool: 2 })));
      try {
        assert.equal(await opened[0]!.accounts.create('h', 'u', []), true);
        assert.equal(await opened[2]!.accounts.exists('h', 'u'), true);
        const applied = await sql<{ n: number }>`select count(*) as n from kysely_migration`.execute(opened[1]!.sql.db<unknown>());
        assert.equal(applied.rows[0]?.n, Object.keys(migrations('postgres')).length);
      } finally {
        await Promise.all(opened.map((s) => s.close()));
      }
    } finally {
      await fresh.drop();
    }
  });

  test('a pooled connection killed while idle is reported and replaced; the next query works', async () => {
    const errors: Error[] = [];
    const storage = await openStorage({ driver: 'postgres', url: database.url, pool: 2 }, { onBackgroundError: (err) => errors.push(err) });
    try {
      assert.equal(await storage.accounts.exists('example.org', 'alice'), true);
      const name = new URL(database.url).pathname.slice(1);
      const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
      await admin.connect();
      try {
        const killed = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name]);
        assert.ok((killed.rowCount ?? 0) >= 1, 'the idle pooled connection was there');
      } finally {
        await admin.end();
      }
      for (let i = 0; i < 500 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(errors.length >= 1, 'the idle error reached the callback (not an uncaught exception)');
      assert.equal(await storage.accounts.exists('example.org', 'alice'), true, 'a new connection serves the next query');
    } finally {
      await storage.close();
    }
  });

  test("introspection sees the current schema's tables, as Kysely's own introspector describes them, and no other schema's", async () => {
    const [a, b] = [await tempPostgresStorage(), await tempPostgresStorage()];
    try {
      await sql`create table only_in_b (id int8 generated by default as identity primary key, note text default 'x')`.execute(b.storage.sql.db<unknown>());
      const db = a.storage.sql.db<unknown>();
      const sorted = (o: object): object => Object.fromEntries(Object.entries(o).sort(([x], [y]) => x.localeCompare(y)));
      const normal = (tables: TableMetadata[]): string => JSON.stringify(tables.map((t) => sorted({ ...t, columns: t.columns.map(sorted) })));
      for (const withInternalKyselyTables of [false, true]) {
        const ours = await db.introspection.getTables({ withInternalKyselyTables });
        const kysely = (await new PostgresIntrospector(db).getTables({ withInternalKyselyTables })).filter((t) => t.schema === a.schema);
        assert.ok(ours.some((t) => t.name === 'accounts') && ours.every((t) => t.schema === a.schema));
        assert.equal(ours.some((t) => t.name === 'kysely_migration'), withInternalKyselyTables);
        assert.equal(normal(ours), normal(kysely));
      }
      const inB = (await b.storage.sql.db<unknown>().introspection.getTables()).find((t) => t.name === 'only_in_b');
      assert.deepEqual(
        inB?.columns.map((c) => [c.name, c.dataType, c.isAutoIncrementing, c.hasDefaultValue, c.isNullable]),
        [
          ['id', 'int8', true, false, false], // an identity is no default (atthasdef), as Kysely reports it too
          ['note', 'text', false, true, true],
        ],
      );
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  test('an unreachable server fails the open with the connection error', async () => {
    await assert.rejects(openStorage({ driver: 'postgres', url: 'postgresql://postgres@127.0.0.1:1/none' }), (err: unknown) => {
      const codes: unknown[] = [];
      for (let e = err as { code?: unknown; cause?: unknown } | undefined; e !== undefined && e !== null; e = e.cause as typeof e) codes.push(e.code);
      assert.ok(codes.includes('ECONNREFUSED'), `codes ${JSON.stringify(codes)}`);
      return true;
    });
  });
});
