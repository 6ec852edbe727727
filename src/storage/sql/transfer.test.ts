// exportData / importData in process (test/export-import.test.ts runs the commands
// from SQLite to PostgreSQL): a round trip on each backend, and every way a file can be
// wrong, each refused with nothing imported.
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { credentials, item, storageBackends, tempStorage, type TempStorage } from './testutil.js';
import { coreData, exportData, importData, ownedData, TransferError, type DataOwner } from './transfer.js';
import type { Generated } from 'kysely';
import type { Storage } from '../types.js';
import { offlineData } from '../../modules/offline/store.js';

/** The central tables plus a module-like owner with an identity column and a binary one. */
const notes: DataOwner = ownedData(
  'notes',
  (dialect) => ({
    '0001_notes': {
      async up(db) {
        await db.schema
          .createTable('notes')
          .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey()))
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('blob', dialect === 'postgres' ? 'bytea' : 'blob')
          .addForeignKeyConstraint('notes_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
      },
    },
  }),
  [{ name: 'notes', key: ['id'], identity: 'id' }],
);
// The central migrations also create offline_messages, which the offline module owns.
const OWNERS = [coreData, offlineData, notes];

async function exportText(storage: Storage, owners: readonly DataOwner[] = OWNERS): Promise<string> {
  const chunks: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  await exportData(storage, owners, out);
  return chunks.join('');
}

async function fill(storage: Storage): Promise<void> {
  await storage.accounts.create('a.example', 'juliet', [credentials('SHA-256', 1), credentials('SHA-1', 2)]);
  await storage.accounts.create('a.example', 'romeo', [credentials('SHA-512', 3)]);
  for (let i = 0; i < 3; i++) await storage.roster.setItem('a.example', 'juliet', item(`c${i}@b.example`, { groups: ['g'], ask: i === 1 }));
  await storage.blocking.block('a.example', 'romeo', Array.from({ length: 1234 }, (_, i) => `s${i}@spam.example`));
  await notes.migrate(storage.sql);
  const db = storage.sql.db<{ notes: { host: string; username: string; blob: Buffer | null } }>();
  await db.insertInto('notes').values([
    { host: 'a.example', username: 'juliet', blob: Buffer.from([0, 255, 1]) },
    { host: 'a.example', username: 'romeo', blob: null },
  ]).execute();
}

for (const backend of storageBackends()) describe(`export and import (${backend.dialect})`, { skip: backend.skip }, () => {
  let source: TempStorage;
  let text: string;
  before(async () => {
    source = await backend.open();
    await fill(source.storage);
    text = await exportText(source.storage);
  });
  after(() => source.cleanup());

  test('a round trip into a new database gives the same export, and new ids continue after the imported ones', async () => {
    const target = await backend.open();
    try {
      const summary = await importData(target.storage, OWNERS, Readable.from([text]));
      assert.equal(summary.tables.find((t) => t.table === 'blocklist')?.rows, 1234, 'three pages of rows');
      const again = await exportText(target.storage);
      const body = (s: string) => s.split('\n').slice(1).join('\n');
      assert.equal(body(again), body(text), 'the same rows, in the same order');
      const db = target.storage.sql.db<{ notes: { id: Generated<number>; host: string; username: string; blob: Buffer | null } }>();
      const [added] = await db.insertInto('notes').values({ host: 'a.example', username: 'romeo', blob: null }).returning('id').execute();
      assert.equal(Number(added?.id), 3);
      assert.deepEqual(await target.storage.accounts.getScramCredentials('a.example', 'juliet', 'SHA-1'), credentials('SHA-1', 2));
    } finally {
      await target.cleanup();
    }
  });
});

describe('import refuses a wrong file, keeping nothing', () => {
  let source: TempStorage;
  let target: TempStorage;
  let lines: string[];
  before(async () => {
    source = await tempStorage();
    await fill(source.storage);
    lines = (await exportText(source.storage)).trimEnd().split('\n');
    target = await tempStorage();
  });
  after(async () => {
    await source.cleanup();
    await target.cleanup();
  });

  const edit = (fn: (ls: string[]) => string[]): string => `${fn([...lines]).join('\n')}\n`;
  const header = (change: (h: Record<string, unknown>) => void) =>
    edit((ls) => {
      const h = JSON.parse(ls[0]!) as Record<string, unknown>;
      change(h);
      ls[0] = JSON.stringify(h);
      return ls;
    });
  const lineOf = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));

  const cases: [string, () => string, RegExp][] = [
    ['an empty file', () => '', /empty/],
    ['not JSON', () => 'hello\n', /line 1: not JSON/],
    ['another format', () => header((h) => (h.format = 'other')), /not a Shoal export/],
    ['a newer version', () => header((h) => (h.version = 2)), /format version 2; this Shoal reads version 1/],
    ['an owner this Shoal does not know', () => header((h) => (h.owners = [...(h.owners as unknown[]), { owner: 'mam', migrations: [] }])), /data of 'mam', which this Shoal does not know/],
    [
      'other migrations',
      () => header((h) => ((h.owners as { migrations: string[] }[])[0]!.migrations = ['0001_initial'])),
      /'core' was exported at migrations \[0001_initial\], this database is at \[0001_initial, 0002/,
    ],
    ['a truncated file', () => edit((ls) => ls.slice(0, -1)), /truncated/],
    ['a file cut inside a table', () => edit((ls) => ls.slice(0, lineOf('{"table":"blocklist"') + 10)), /ends inside table blocklist: truncated/],
    ['a column this database lacks', () => edit((ls) => ls.map((l) => l.replace('"columns":["host","username","created_at"]', '"columns":["host","username","born_at"]'))), /columns of accounts/],
    ['a row of the wrong length', () => edit((ls) => ls.map((l, i) => (i === lineOf('{"table":"accounts"') + 1 ? '{"row":["a.example"]}' : l))), /a row of accounts needs 3 values/],
    ['a bad value', () => edit((ls) => ls.map((l, i) => (i === lineOf('{"table":"accounts"') + 1 ? '{"row":["a.example",{"x":1},"t"]}' : l))), /invalid value/],
    ['a wrong row count', () => edit((ls) => ls.map((l) => l.replace('{"end":"accounts","rows":2}', '{"end":"accounts","rows":3}'))), /accounts should end with 2 rows/],
    [
      'a missing table',
      () =>
        edit((ls) => {
          const start = ls.findIndex((l) => l.startsWith('{"table":"notes"'));
          const [end] = ls.splice(start, 4);
          void end;
          const last = JSON.parse(ls.at(-1)!) as { tables: number; rows: number };
          ls[ls.length - 1] = JSON.stringify({ end: 'shoal-export', tables: last.tables - 1, rows: last.rows - 2 });
          return ls;
        }),
      /no section for table\(s\) notes/,
    ],
  ];
  for (const [what, make, message] of cases) {
    test(what, async () => {
      await assert.rejects(importData(target.storage, OWNERS, Readable.from([make()])), (err: unknown) => {
        assert.ok(err instanceof TransferError, String(err));
        assert.match(err.message, message);
        return true;
      });
      assert.deepEqual(await target.storage.accounts.list('a.example'), [], 'nothing imported');
    });
  }

  test('after all that, the same database takes the right file', async () => {
    await importData(target.storage, OWNERS, Readable.from([`${lines.join('\n')}\n`]));
    assert.equal((await target.storage.accounts.list('a.example')).length, 2);
    await assert.rejects(importData(target.storage, OWNERS, Readable.from([`${lines.join('\n')}\n`])), /not empty \(table accounts has rows\)/);
  });

  test('export refuses a table no owner declares, and two owners of one table', async () => {
    await assert.rejects(exportText(source.storage, [coreData, offlineData]), /tables no export owner declares, which would be lost: notes/);
    await assert.rejects(exportText(source.storage, [...OWNERS, { ...notes, owner: 'again' }]), /table notes is registered by two owners/);
  });
});
