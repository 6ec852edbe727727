import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, storageBackends, type TempStorage, FOREIGN_KEY_ERROR } from '../../storage/sql/testutil.js';
import { SqlOfflineStore, type OfflineLimits, type OfflineMessage, type OfflineSender } from './store.js';

const CONTACT: OfflineSender = { jid: 'friend@a.example', stranger: false };
/** Only the message count limits (the old single limit). */
const limit = (n: number): OfflineLimits => ({ maxMessages: n, maxBytes: 1e9, maxPerStranger: 1e9, strangersShare: 1 });

/** The old take(): everything, oldest first, then removed. */
async function take(offline: SqlOfflineStore, host: string, user: string): Promise<OfflineMessage[]> {
  const all = await offline.list(host, user, 1000);
  await offline.remove(host, user, all.map((m) => m.id));
  return all;
}

for (const backend of storageBackends()) describe(`SqlOfflineStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  let offline: SqlOfflineStore;
  before(async () => {
    t = await backend.open();
    offline = await SqlOfflineStore.open(t.storage.sql);
    for (const user of ['juliet', 'romeo', 'nurse', 'tybalt']) await t.storage.accounts.create('a.example', user, [credentials('SHA-256', 1)]);
    await t.storage.accounts.create('b.example', 'juliet', [credentials('SHA-256', 2)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('push then take returns the messages oldest first, once', async () => {
    const before = Date.now();
    for (let i = 0; i < 12; i++) assert.equal(await offline.push('a.example', 'juliet', `<message id="m${i}"/>`, CONTACT, limit(100)), 'stored');
    assert.equal(await offline.push('b.example', 'juliet', '<message id="other-host"/>', CONTACT, limit(100)), 'stored');
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
    await offline.push('a.example', 'romeo', '<message id="1"/>', CONTACT, limit(10));
    const [first] = await take(offline, 'a.example', 'romeo');
    await offline.push('a.example', 'romeo', '<message id="2"/>', CONTACT, limit(10));
    await offline.push('a.example', 'romeo', '<message id="3"/>', CONTACT, limit(10));
    const next = await take(offline, 'a.example', 'romeo');
    assert.ok(first !== undefined);
    assert.deepEqual(
      next.map((m) => m.stanza),
      ['<message id="2"/>', '<message id="3"/>'],
    );
    assert.ok(Number(next[0]?.id) < Number(next[1]?.id));
  });

  test('the limit is per user; a full queue refuses until emptied; limit 0 stores nothing', async () => {
    assert.equal(await offline.push('a.example', 'nurse', '<message id="1"/>', CONTACT, limit(2)), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', '<message id="2"/>', CONTACT, limit(2)), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', '<message id="3"/>', CONTACT, limit(2)), 'full');
    assert.equal(await offline.count('a.example', 'nurse'), 2);
    assert.equal(await offline.push('a.example', 'romeo', '<message id="r"/>', CONTACT, limit(2)), 'stored', 'another user is not affected');
    assert.equal((await take(offline, 'a.example', 'nurse')).length, 2);
    assert.equal(await offline.push('a.example', 'nurse', '<message id="4"/>', CONTACT, limit(2)), 'stored');
    assert.equal(await offline.push('a.example', 'tybalt', '<message id="0"/>', CONTACT, limit(0)), 'full');
    assert.equal(await offline.count('a.example', 'tybalt'), 0);
  });

  test('concurrent pushes never exceed the limit', async () => {
    await take(offline, 'a.example', 'tybalt');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => offline.push('a.example', 'tybalt', `<message id="c${i}"/>`, CONTACT, limit(10))));
    assert.equal(results.filter((r) => r === 'stored').length, 10);
    assert.equal(await offline.count('a.example', 'tybalt'), 10);
  });

  test('list reads the oldest first without removing; remove removes each message once', async () => {
    await take(offline, 'a.example', 'tybalt');
    for (let i = 0; i < 5; i++) await offline.push('a.example', 'tybalt', `<message id="l${i}"/>`, CONTACT, limit(10));
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

  test('quotas: bytes per user, messages per stranger, and the strangers\' share that keeps room for contacts', async () => {
    const L: OfflineLimits = { maxMessages: 10, maxBytes: 1000, maxPerStranger: 3, strangersShare: 0.5 };
    const stranger = (n: number): OfflineSender => ({ jid: `stranger${n}@b.example`, stranger: true });
    await take(offline, 'a.example', 'nurse');
    // One stranger: at most 3.
    for (let i = 0; i < 3; i++) assert.equal(await offline.push('a.example', 'nurse', `<message id="s1-${i}"/>`, stranger(1), L), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', '<message id="s1-x"/>', stranger(1), L), 'sender-limit');
    // Strangers together: at most half of the 10 messages.
    assert.equal(await offline.push('a.example', 'nurse', '<message id="s2-0"/>', stranger(2), L), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', '<message id="s2-1"/>', stranger(2), L), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', '<message id="s3-0"/>', stranger(3), L), 'strangers-limit');
    // Contacts still have the rest.
    for (let i = 0; i < 5; i++) assert.equal(await offline.push('a.example', 'nurse', `<message id="c-${i}"/>`, CONTACT, L), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', '<message id="c-x"/>', CONTACT, L), 'full');
    // Bytes: strangers get half of them, everyone together all of them; counted in UTF-8.
    await take(offline, 'a.example', 'nurse');
    const big = `<message id="big"><body>${'b'.repeat(600)}</body></message>`;
    assert.equal(await offline.push('a.example', 'nurse', big, stranger(4), L), 'strangers-limit', 'over the strangers\' 500 bytes');
    assert.equal(await offline.push('a.example', 'nurse', big, CONTACT, L), 'stored');
    assert.equal(await offline.push('a.example', 'nurse', big, CONTACT, L), 'full', 'over the 1000 bytes in all');
    assert.equal(await offline.push('a.example', 'nurse', `<message>${'€'.repeat(120)}</message>`, CONTACT, L), 'full', '379 UTF-8 bytes (139 characters) over the 359 left');
    assert.equal(await offline.push('a.example', 'nurse', `<message>${'e'.repeat(120)}</message>`, CONTACT, L), 'stored', 'the same length in ASCII fits');
  });

  test('messages survive a reopen and go with the account', async () => {
    await offline.push('a.example', 'juliet', '<message id="kept"/>', CONTACT, limit(10));
    const storage = await t.reopen();
    const reopened = await SqlOfflineStore.open(storage.sql);
    assert.equal(await reopened.count('a.example', 'juliet'), 1);
    assert.equal(await storage.accounts.remove('a.example', 'juliet'), true);
    assert.equal(await reopened.count('a.example', 'juliet'), 0);
    await assert.rejects(reopened.push('a.example', 'juliet', '<message/>', CONTACT, limit(10)), FOREIGN_KEY_ERROR, 'no account, no storage');
  });
});
