import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { openStorage } from '../index.js';
import { openSqliteDatabase } from '../sqlite.js';
import { migrations } from './migrations.js';
import { compilePostgresMigration, credentials, item } from './testutil.js';

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
    // Compiled, not run: PostgreSQL is not available here, but its DDL must use bytea.
    const compiled = await compilePostgresMigration('0001_initial');
    const credentialsDdl = compiled.find((s) => s.includes('"scram_credentials"'));
    assert.ok(credentialsDdl !== undefined);
    assert.match(credentialsDdl, /"salt" bytea not null/);
    assert.doesNotMatch(compiled.join('\n'), /blob/);
  });
});
