import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, storageBackends, type TempStorage, FOREIGN_KEY_ERROR } from '../../storage/sql/testutil.js';
import { SqlPushStore, type PushRegistration } from './store.js';

const reg = (service: string, node: string, options?: string): PushRegistration => ({ service, node, options });

for (const backend of storageBackends()) describe(`SqlPushStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  let store: SqlPushStore;
  before(async () => {
    t = await backend.open();
    store = await SqlPushStore.open(t.storage.sql);
    for (const user of ['juliet', 'romeo', 'nurse']) await t.storage.accounts.create('a.example', user, [credentials('SHA-256', 1)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('one row per service and node; enabling the same pair again replaces its options (XEP-0357 §5)', async () => {
    assert.equal(await store.put('a.example', 'juliet', reg('push.example', 'n1', '<x xmlns="jabber:x:data" type="submit"/>'), 10), 'stored');
    assert.equal(await store.put('a.example', 'juliet', reg('push.example', 'n2'), 10), 'stored');
    assert.equal(await store.put('a.example', 'juliet', reg('push.example', 'n1', '<x xmlns="jabber:x:data" type="submit"><field var="secret"/></x>'), 10), 'stored');
    const list = await store.list('a.example', 'juliet');
    assert.deepEqual(list.map((r) => r.node).sort(), ['n1', 'n2']);
    assert.equal(list.find((r) => r.node === 'n1')?.options, '<x xmlns="jabber:x:data" type="submit"><field var="secret"/></x>');
    assert.equal(list.find((r) => r.node === 'n2')?.options, undefined);
    assert.deepEqual(await store.list('a.example', 'romeo'), [], 'another account has none');
  });

  test('the limit counts other registrations; replacing one is always allowed', async () => {
    assert.equal(await store.put('a.example', 'nurse', reg('a.push', 'x'), 2), 'stored');
    assert.equal(await store.put('a.example', 'nurse', reg('b.push', 'x'), 2), 'stored');
    assert.equal(await store.put('a.example', 'nurse', reg('c.push', 'x'), 2), 'limit');
    assert.equal(await store.put('a.example', 'nurse', reg('b.push', 'x', '<x/>'), 2), 'stored', 'the same pair again');
    assert.equal(await store.put('a.example', 'romeo', reg('c.push', 'x'), 0), 'limit', 'limit 0 enables none');
    assert.equal((await store.list('a.example', 'nurse')).length, 2);
  });

  test('concurrent puts of new registrations never exceed the limit', async () => {
    await t.storage.accounts.create('a.example', 'paris', [credentials('SHA-256', 1)]);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.put('a.example', 'paris', reg(`s${i}.push`, 'n'), 3)));
    assert.equal(results.filter((r) => r === 'stored').length, 3);
    assert.equal((await store.list('a.example', 'paris')).length, 3);
  });

  test('remove: one node, or every node of the service (XEP-0357 §6)', async () => {
    await store.put('a.example', 'romeo', reg('push.example', 'n1'), 10);
    await store.put('a.example', 'romeo', reg('push.example', 'n2'), 10);
    await store.put('a.example', 'romeo', reg('other.example', 'n1'), 10);
    assert.equal(await store.remove('a.example', 'romeo', 'push.example', 'n1'), 1);
    assert.equal(await store.remove('a.example', 'romeo', 'push.example', 'n1'), 0);
    assert.deepEqual((await store.list('a.example', 'romeo')).map((r) => `${r.service} ${r.node}`).sort(), ['other.example n1', 'push.example n2']);
    await store.put('a.example', 'romeo', reg('push.example', 'n3'), 10);
    assert.equal(await store.remove('a.example', 'romeo', 'push.example'), 2);
    assert.deepEqual((await store.list('a.example', 'romeo')).map((r) => r.service), ['other.example']);
  });

  test('registrations survive a reopen and go with the account', async () => {
    const storage = await t.reopen();
    const reopened = await SqlPushStore.open(storage.sql);
    assert.equal((await reopened.list('a.example', 'juliet')).length, 2);
    assert.equal(await storage.accounts.remove('a.example', 'juliet'), true);
    assert.deepEqual(await reopened.list('a.example', 'juliet'), []);
    await assert.rejects(reopened.put('a.example', 'juliet', reg('push.example', 'n'), 10), FOREIGN_KEY_ERROR, 'no account, no registration');
  });
});
