import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { credentials, storageBackends, type TempStorage } from '../../storage/sql/testutil.js';
import { SqlUploadStore, type UploadSlot } from './store.js';
import { purgeExpired, removeUserUploads } from './purge.js';

const H = 'a.example';
const T0 = '2026-01-01T00:00:00.000Z';
const slot = (id: string, username: string, size: number, createdAt = T0, putExpiresAt = '2026-01-01T00:05:00.000Z'): Omit<UploadSlot, 'storedAt'> => ({
  id,
  host: H,
  username,
  filename: `${id}.bin`,
  size,
  contentType: undefined,
  createdAt,
  putExpiresAt,
});

for (const backend of storageBackends()) describe(`SqlUploadStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  let store: SqlUploadStore;
  let dir: string;
  before(async () => {
    t = await backend.open();
    store = await SqlUploadStore.open(t.storage.sql);
    for (const user of ['juliet', 'romeo', 'nurse']) await t.storage.accounts.create(H, user, [credentials('SHA-256', 1)]);
    dir = mkdtempSync(join(tmpdir(), 'shoal-upload-'));
  });
  after(async () => {
    await t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('quota: stored files and open slots count, expired open slots do not', async () => {
    assert.equal(await store.reserve(slot('j1', 'juliet', 600), 1000), 'reserved');
    assert.deepEqual(await store.reserve(slot('j2', 'juliet', 500), 1000), { used: 600 });
    assert.equal(await store.reserve(slot('j3', 'juliet', 400), 1000), 'reserved');
    // j1 stored; j3's PUT URL expired unused by 00:10: only j1 counts then.
    assert.equal(await store.markStored('j1', '2026-01-01T00:01:00.000Z', 'image/png'), true);
    assert.equal(await store.markStored('j1', '2026-01-01T00:02:00.000Z', undefined), false, 'once only');
    assert.equal(await store.reserve(slot('j4', 'juliet', 400, '2026-01-01T00:10:00.000Z', '2026-01-01T00:15:00.000Z'), 1000), 'reserved');
    const j1 = await store.get('j1');
    assert.equal(j1?.contentType, 'image/png');
    assert.equal(j1?.size, 600);
    assert.equal(j1?.storedAt, '2026-01-01T00:01:00.000Z');
    assert.equal(await store.oldestStored(H, 'juliet'), '2026-01-01T00:01:00.000Z');
    assert.equal(await store.oldestStored(H, 'romeo'), undefined);
    assert.equal(await store.reserve(slot('r1', 'romeo', 1000), 1000), 'reserved', 'quota is per user');
  });

  test('concurrent reservations never exceed the quota', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.reserve(slot(`n${i}`, 'nurse', 300), 1000)));
    assert.equal(results.filter((r) => r === 'reserved').length, 3);
  });

  test('expiry: stored before the cutoff and unused slots past their PUT expiry go, files first', async () => {
    writeFileSync(join(dir, 'j1'), 'x');
    const n = await purgeExpired(store, dir, new Date('2026-01-01T00:02:00.000Z'), new Date('2026-01-01T00:12:00.000Z'));
    // j1 (stored 00:01), j3, r1, n* (PUT expired 00:05, never stored); j4 (open until 00:15) stays.
    assert.equal(await store.get('j1'), undefined);
    assert.ok(!existsSync(join(dir, 'j1')));
    assert.ok(await store.get('j4'));
    assert.equal(n, 1 + 1 + 1 + 3);
  });

  test('removeUserUploads and the account cascade', async () => {
    writeFileSync(join(dir, 'j4'), 'x');
    assert.equal(await removeUserUploads(store, dir, H, 'juliet'), 1);
    assert.ok(!existsSync(join(dir, 'j4')));
    assert.equal(await store.reserve(slot('r2', 'romeo', 10), 1000), 'reserved');
    await t.storage.accounts.remove(H, 'romeo');
    assert.equal(await store.get('r2'), undefined);
  });
});
