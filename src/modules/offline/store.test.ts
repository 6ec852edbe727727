import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, tempStorage, type TempStorage } from '../../storage/sql/testutil.js';
import { SqlOfflineStore, type OfflineMessage } from './store.js';

/** The old take(): everything, oldest first, then removed. */
async function take(offline: SqlOfflineStore, host: string, user: string): Promise<OfflineMessage[]> {
  const all = await offline.list(host, user, 1000);
  await offline.remove(host, user, all.map((m) => m.id));
  return all;
}

describe('SqlOfflineStore', () => {
  let t: TempStorage;
  let offline: SqlOfflineStore;
  before(async () => {
    t = await tempStorage();
    offline = await SqlOfflineStore.open(t.storage.sql);
    for (const user of ['juliet', 'romeo', 'nurse', 'tybalt']) await t.storage.accounts.create('a.example', user, [credentials('SHA-256', 1)]);
    await t.storage.accounts.create('b.example', 'juliet', [credentials('SHA-256', 2)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('push then take returns the messages oldest first, once', async () => {
    const before = Date.now();
    for (let i = 0; i < 12; i++) assert.equal(await offline.push('a.example', 'juliet', `<message id="m${i}"/>`, 100), true);
    assert.equal(await offline.push('b.example', 'juliet', '<message id="other-host"/>', 100), true);
    assert.equal(await offline.count('a.example', 'juliet'), 12);

    const taken = await take(offline, 'a.example', 'juliet');
    assert.deepEqual(
      taken.map((m) => m.stanza),
      Array.from({ length: 12 }, (_, i) => `<message id="m${i}"/>`),
    );
    const ids = taken.map((m) => Number(m.id));
    assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'ids increase with arrival');
    for (const m of taken) assert.ok(m.storedAt.getTime() >= before - 1000 && m.storedAt.getTime() <= Date.now() + 1000);

    assert.deepEqual(await take(offline, 'a.example', 'juliet'), [], 'a second take gets nothing');
    assert.equal(await offline.count('a.example', 'juliet'), 0);
    assert.equal(await offline.count('b.example', 'juliet'), 1, 'same name on another host untouched');
  });

  test('ids keep increasing after the queue was emptied', async () => {
    await offline.push('a.example', 'romeo', '<message id="1"/>', 10);
    const [first] = await take(offline, 'a.example', 'romeo');
    await offline.push('a.example', 'romeo', '<message id="2"/>', 10);
    await offline.push('a.example', 'romeo', '<message id="3"/>', 10);
    const next = await take(offline, 'a.example', 'romeo');
    assert.ok(first !== undefined);
    assert.deepEqual(
      next.map((m) => m.stanza),
      ['<message id="2"/>', '<message id="3"/>'],
    );
    assert.ok(Number(next[0]?.id) < Number(next[1]?.id));
  });

  test('the limit is per user; a full queue refuses until emptied; limit 0 stores nothing', async () => {
    assert.equal(await offline.push('a.example', 'nurse', '<message id="1"/>', 2), true);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="2"/>', 2), true);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="3"/>', 2), false);
    assert.equal(await offline.count('a.example', 'nurse'), 2);
    assert.equal(await offline.push('a.example', 'romeo', '<message id="r"/>', 2), true, 'another user is not affected');
    assert.equal((await take(offline, 'a.example', 'nurse')).length, 2);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="4"/>', 2), true);
    assert.equal(await offline.push('a.example', 'tybalt', '<message id="0"/>', 0), false);
    assert.equal(await offline.count('a.example', 'tybalt'), 0);
  });

  test('concurrent pushes never exceed the limit', async () => {
    await take(offline, 'a.example', 'tybalt');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => offline.push('a.example', 'tybalt', `<message id="c${i}"/>`, 10)));
    assert.equal(results.filter(Boolean).length, 10);
    assert.equal(await offline.count('a.example', 'tybalt'), 10);
  });

  test('list reads the oldest first without removing; remove removes each message once', async () => {
    await take(offline, 'a.example', 'tybalt');
    for (let i = 0; i < 5; i++) await offline.push('a.example', 'tybalt', `<message id="l${i}"/>`, 10);
    const first = await offline.list('a.example', 'tybalt', 2);
    assert.deepEqual(
      first.map((m) => m.stanza),
      ['<message id="l0"/>', '<message id="l1"/>'],
    );
    assert.equal(await offline.count('a.example', 'tybalt'), 5, 'listing removes nothing');
    const ids = first.map((m) => m.id);
    const removed = await Promise.all([offline.remove('a.example', 'tybalt', ids), offline.remove('a.example', 'tybalt', ids)]);
    assert.equal(removed[0]! + removed[1]!, 2, 'two removals of the same ids remove them once');
    assert.equal(await offline.remove('romeo.example', 'tybalt', (await offline.list('a.example', 'tybalt', 10)).map((m) => m.id)), 0, 'another account cannot remove them');
    assert.deepEqual(
      (await offline.list('a.example', 'tybalt', 10)).map((m) => m.stanza),
      ['<message id="l2"/>', '<message id="l3"/>', '<message id="l4"/>'],
    );
  });

  test('messages survive a reopen and go with the account', async () => {
    await offline.push('a.example', 'juliet', '<message id="kept"/>', 10);
    const storage = await t.reopen();
    const reopened = await SqlOfflineStore.open(storage.sql);
    assert.equal(await reopened.count('a.example', 'juliet'), 1);
    assert.equal(await storage.accounts.remove('a.example', 'juliet'), true);
    assert.equal(await reopened.count('a.example', 'juliet'), 0);
    await assert.rejects(reopened.push('a.example', 'juliet', '<message/>', 10), /FOREIGN KEY/, 'no account, no storage');
  });
});
