// Migration 0003: CRAM-MD5/DIGEST-MD5 secrets written with the SCRAM credentials,
// and locally issued access tokens stored by hash.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Migration } from 'kysely';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStorage } from '../sqlite.js';
import { migrations } from './migrations.js';
import { credentials, storageBackends, type TempStorage } from './testutil.js';
import type { LegacySaslSecret } from '../types.js';

const cram = (n: number): LegacySaslSecret => ({ mechanism: 'CRAM-MD5', realm: '', variant: 'hmac-md5-states', secret: Buffer.alloc(32, n) });
const digest = (realm: string, n: number, variant = 'utf-8'): LegacySaslSecret => ({ mechanism: 'DIGEST-MD5', realm, variant, secret: Buffer.alloc(16, n) });

for (const backend of storageBackends()) describe(`legacy SASL secrets (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  before(async () => {
    t = await backend.open();
  });
  after(() => t.cleanup());

  test('create stores them; get returns each variant for the mechanism and realm', async () => {
    const { accounts, legacySecrets } = t.storage;
    assert.equal(await accounts.create('a.example', 'juliet', [credentials('SHA-256', 1)], [cram(1), digest('a.example', 2), digest('a.example', 3, 'iso-8859-1')]), true);
    assert.deepEqual(await legacySecrets.get('a.example', 'juliet', 'CRAM-MD5', ''), [cram(1)]);
    assert.deepEqual(await legacySecrets.get('a.example', 'juliet', 'DIGEST-MD5', 'a.example'), [digest('a.example', 3, 'iso-8859-1'), digest('a.example', 2)]);
    assert.deepEqual(await legacySecrets.get('a.example', 'juliet', 'DIGEST-MD5', 'b.example'), []);
    assert.deepEqual(await legacySecrets.get('a.example', 'romeo', 'CRAM-MD5', ''), []);
  });

  test('setCredentials replaces them, and removes them when none are given', async () => {
    const { accounts, legacySecrets } = t.storage;
    await accounts.create('a.example', 'romeo', [credentials('SHA-256', 1)], [cram(1)]);
    assert.equal(await accounts.setCredentials('a.example', 'romeo', [credentials('SHA-256', 2)], [cram(9)]), true);
    assert.deepEqual(await legacySecrets.get('a.example', 'romeo', 'CRAM-MD5', ''), [cram(9)]);
    // A password set while the MD5 mechanisms are disabled must not leave the old password's secrets behind.
    assert.equal(await accounts.setCredentials('a.example', 'romeo', [credentials('SHA-256', 3)]), true);
    assert.deepEqual(await legacySecrets.get('a.example', 'romeo', 'CRAM-MD5', ''), []);
  });

  test('accountsWithout lists the accounts that cannot use a mechanism yet', async () => {
    const { accounts, legacySecrets } = t.storage;
    await accounts.create('c.example', 'has', [credentials('SHA-256', 1)], [cram(1), digest('c.example', 1)]);
    await accounts.create('c.example', 'lacks', [credentials('SHA-256', 1)]);
    await accounts.create('c.example', 'other-realm', [credentials('SHA-256', 1)], [digest('d.example', 1)]);
    assert.deepEqual(await legacySecrets.accountsWithout('c.example', 'CRAM-MD5'), ['lacks', 'other-realm']);
    assert.deepEqual(await legacySecrets.accountsWithout('c.example', 'DIGEST-MD5'), ['lacks']);
    assert.deepEqual(await legacySecrets.accountsWithout('c.example', 'DIGEST-MD5', 'c.example'), ['lacks', 'other-realm']);
  });

  test('removing the account removes its secrets', async () => {
    const { accounts, legacySecrets } = t.storage;
    await accounts.create('e.example', 'gone', [credentials('SHA-256', 1)], [cram(1)]);
    assert.equal(await accounts.remove('e.example', 'gone'), true);
    await accounts.create('e.example', 'gone', [credentials('SHA-256', 1)]);
    assert.deepEqual(await legacySecrets.get('e.example', 'gone', 'CRAM-MD5', ''), []);
  });

  test('the same variant twice is refused', async () => {
    await assert.rejects(t.storage.accounts.create('f.example', 'x', [], [cram(1), cram(2)]), /given twice/);
    assert.equal(await t.storage.accounts.exists('f.example', 'x'), false);
  });
});

for (const backend of storageBackends()) describe(`access tokens (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  before(async () => {
    t = await backend.open();
    await t.storage.accounts.create('a.example', 'juliet', [credentials('SHA-256', 1)]);
  });
  after(() => t.cleanup());

  test('add, find by hash, list, revoke', async () => {
    const { tokens } = t.storage;
    const createdAt = new Date('2030-01-01T00:00:00.000Z');
    const expiresAt = new Date('2030-01-01T01:00:00.000Z');
    await tokens.add({ id: 'aaa', host: 'a.example', username: 'juliet', scope: ['xmpp', 'extra'], createdAt, expiresAt }, Buffer.alloc(32, 1));
    await tokens.add({ id: 'bbb', host: 'a.example', username: 'juliet', scope: [], createdAt: new Date(createdAt.getTime() + 1) }, Buffer.alloc(32, 2));
    assert.deepEqual(await tokens.findByHash(Buffer.alloc(32, 1)), { id: 'aaa', host: 'a.example', username: 'juliet', scope: ['xmpp', 'extra'], createdAt, expiresAt });
    assert.equal(await tokens.findByHash(Buffer.alloc(32, 3)), undefined);
    assert.deepEqual((await tokens.list('a.example', 'juliet')).map((x) => x.id), ['aaa', 'bbb']);
    const at = new Date('2030-01-01T00:30:00.000Z');
    assert.equal(await tokens.revoke('bbb', at), true);
    assert.equal(await tokens.revoke('bbb', at), false);
    assert.equal(await tokens.revoke('nope'), false);
    assert.deepEqual((await tokens.findByHash(Buffer.alloc(32, 2)))?.revokedAt, at);
  });

  test('a token for an unknown account is refused, and tokens go with their account', async () => {
    const { tokens, accounts } = t.storage;
    await assert.rejects(tokens.add({ id: 'ccc', host: 'a.example', username: 'nobody', scope: [], createdAt: new Date() }, Buffer.alloc(32, 4)));
    await accounts.create('a.example', 'romeo', [credentials('SHA-256', 1)]);
    await tokens.add({ id: 'ddd', host: 'a.example', username: 'romeo', scope: [], createdAt: new Date() }, Buffer.alloc(32, 5));
    await accounts.remove('a.example', 'romeo');
    assert.equal(await tokens.findByHash(Buffer.alloc(32, 5)), undefined);
  });

  test('the hash is unique', async () => {
    await assert.rejects(t.storage.tokens.add({ id: 'eee', host: 'a.example', username: 'juliet', scope: [], createdAt: new Date() }, Buffer.alloc(32, 1)));
  });
});

describe('migration 0003_sasl_secrets_tokens', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-mig3-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a database at 0002 is upgraded on open and keeps its accounts; down drops the tables', async () => {
    const path = join(dir, 'old.sqlite');
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
    const all = migrations('sqlite');
    const migrator = new Migrator({
      db,
      provider: {
        getMigrations: () =>
          Promise.resolve({ '0001_initial': all['0001_initial'] as Migration, '0002_offline_vcard_blocking': all['0002_offline_vcard_blocking'] as Migration }),
      },
    });
    assert.equal((await migrator.migrateToLatest()).error, undefined);
    await db.insertInto('accounts' as never).values({ host: 'h.example', username: 'old', created_at: new Date().toISOString() } as never).execute();
    await db.destroy();

    const storage = await openSqliteStorage(path);
    try {
      assert.equal(await storage.accounts.exists('h.example', 'old'), true);
      assert.deepEqual(await storage.legacySecrets.accountsWithout('h.example', 'CRAM-MD5'), ['old']);
      await storage.tokens.add({ id: 'x', host: 'h.example', username: 'old', scope: [], createdAt: new Date() }, Buffer.alloc(32));
    } finally {
      await storage.close();
    }

    const again = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
    try {
      await all['0003_sasl_secrets_tokens']?.down?.(again);
      const tables = (await again.introspection.getTables()).map((x) => x.name);
      assert.ok(!tables.includes('auth_tokens') && !tables.includes('legacy_sasl_secrets'));
      assert.ok(tables.includes('accounts'));
    } finally {
      await again.destroy();
    }
  });
});
