import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, tempStorage, type TempStorage } from './testutil.js';

describe('SqlOfflineStore', () => {
  let t: TempStorage;
  before(async () => {
    t = await tempStorage();
    for (const user of ['juliet', 'romeo', 'nurse', 'tybalt']) await t.storage.accounts.create('a.example', user, [credentials('SHA-256', 1)]);
    await t.storage.accounts.create('b.example', 'juliet', [credentials('SHA-256', 2)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('push then take returns the messages oldest first, once', async () => {
    const { offline } = t.storage;
    const before = Date.now();
    for (let i = 0; i < 12; i++) assert.equal(await offline.push('a.example', 'juliet', `<message id="m${i}"/>`, 100), true);
    assert.equal(await offline.push('b.example', 'juliet', '<message id="other-host"/>', 100), true);
    assert.equal(await offline.count('a.example', 'juliet'), 12);

    const taken = await offline.take('a.example', 'juliet');
    assert.deepEqual(
      taken.map((m) => m.stanza),
      Array.from({ length: 12 }, (_, i) => `<message id="m${i}"/>`),
    );
    const ids = taken.map((m) => Number(m.id));
    assert.deepEqual([...ids].sort((a, b) => a - b), ids, 'ids increase with arrival');
    for (const m of taken) assert.ok(m.storedAt.getTime() >= before - 1000 && m.storedAt.getTime() <= Date.now() + 1000);

    assert.deepEqual(await offline.take('a.example', 'juliet'), [], 'a second take gets nothing');
    assert.equal(await offline.count('a.example', 'juliet'), 0);
    assert.equal(await offline.count('b.example', 'juliet'), 1, 'same name on another host untouched');
  });

  test('ids keep increasing after the queue was emptied', async () => {
    const { offline } = t.storage;
    await offline.push('a.example', 'romeo', '<message id="1"/>', 10);
    const [first] = await offline.take('a.example', 'romeo');
    await offline.push('a.example', 'romeo', '<message id="2"/>', 10);
    await offline.push('a.example', 'romeo', '<message id="3"/>', 10);
    const next = await offline.take('a.example', 'romeo');
    assert.ok(first !== undefined);
    assert.deepEqual(
      next.map((m) => m.stanza),
      ['<message id="2"/>', '<message id="3"/>'],
    );
    assert.ok(Number(next[0]?.id) < Number(next[1]?.id));
  });

  test('the limit is per user; a full queue refuses until emptied; limit 0 stores nothing', async () => {
    const { offline } = t.storage;
    assert.equal(await offline.push('a.example', 'nurse', '<message id="1"/>', 2), true);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="2"/>', 2), true);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="3"/>', 2), false);
    assert.equal(await offline.count('a.example', 'nurse'), 2);
    assert.equal(await offline.push('a.example', 'romeo', '<message id="r"/>', 2), true, 'another user is not affected');
    assert.equal((await offline.take('a.example', 'nurse')).length, 2);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="4"/>', 2), true);
    assert.equal(await offline.push('a.example', 'tybalt', '<message id="0"/>', 0), false);
    assert.equal(await offline.count('a.example', 'tybalt'), 0);
  });

  test('concurrent pushes never exceed the limit and concurrent takes never share a message', async () => {
    const { offline } = t.storage;
    await offline.take('a.example', 'tybalt');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => offline.push('a.example', 'tybalt', `<message id="c${i}"/>`, 10)));
    assert.equal(results.filter(Boolean).length, 10);
    const takes = await Promise.all([offline.take('a.example', 'tybalt'), offline.take('a.example', 'tybalt'), offline.take('a.example', 'tybalt')]);
    const all = takes.flat().map((m) => m.id);
    assert.equal(all.length, 10);
    assert.equal(new Set(all).size, 10);
  });

  test('messages survive a reopen and go with the account', async () => {
    await t.storage.offline.push('a.example', 'juliet', '<message id="kept"/>', 10);
    const storage = await t.reopen();
    assert.equal(await storage.offline.count('a.example', 'juliet'), 1);
    assert.equal(await storage.accounts.remove('a.example', 'juliet'), true);
    assert.equal(await storage.offline.count('a.example', 'juliet'), 0);
    await assert.rejects(storage.offline.push('a.example', 'juliet', '<message/>', 10), /FOREIGN KEY/, 'no account, no storage');
  });
});
