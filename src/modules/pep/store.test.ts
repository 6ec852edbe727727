import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, storageBackends, type TempStorage } from '../../storage/sql/testutil.js';
import { defaultConfig } from './node-config.js';
import { SqlPepStore, type StoredItem } from './store.js';

const H = 'a.example';
const item = (id: string, payload = `<p xmlns="urn:x">${id}</p>`): StoredItem => ({ id, payload, publisher: 'juliet@a.example/balcony', publishedAt: '2026-01-01T00:00:00.000Z' });
const LIMITS = { keep: 3, maxAccountBytes: 10_000 };

for (const backend of storageBackends()) describe(`SqlPepStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  let store: SqlPepStore;
  before(async () => {
    t = await backend.open();
    store = await SqlPepStore.open(t.storage.sql);
    for (const user of ['juliet', 'romeo', 'nurse']) await t.storage.accounts.create(H, user, [credentials('SHA-256', 1)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('nodes: created once, counted against the limit, listed, configured, deleted with their items', async () => {
    assert.equal(await store.createNode(H, 'juliet', 'n1', defaultConfig(), 2), 'created');
    assert.equal(await store.createNode(H, 'juliet', 'n1', defaultConfig(), 2), 'exists');
    assert.equal(await store.createNode(H, 'juliet', 'n2', { ...defaultConfig(), accessModel: 'open' }, 2), 'created');
    assert.equal(await store.createNode(H, 'juliet', 'n3', defaultConfig(), 2), 'limit');
    assert.equal(await store.createNode(H, 'romeo', 'n3', defaultConfig(), 2), 'created', 'the limit is per account');
    assert.deepEqual((await store.listNodes(H, 'juliet')).map((n) => [n.node, n.config.accessModel]), [
      ['n1', 'presence'],
      ['n2', 'open'],
    ]);
    await store.publish(H, 'juliet', 'n2', item('a'), LIMITS);
    assert.equal(await store.deleteNode(H, 'juliet', 'n2'), true);
    assert.equal(await store.getNode(H, 'juliet', 'n2'), undefined);
    assert.deepEqual(await store.items(H, 'juliet', 'n2', {}), [], 'the items went with the node');
    assert.equal(await store.deleteNode(H, 'juliet', 'n2'), false);
  });

  test('items: the newest `keep` stay, a republished id becomes the newest, max and ids select', async () => {
    await store.createNode(H, 'nurse', 'n', defaultConfig(), 10);
    for (const id of ['a', 'b', 'c']) assert.deepEqual(await store.publish(H, 'nurse', 'n', item(id), LIMITS), { stored: true, removed: [] });
    assert.deepEqual(await store.publish(H, 'nurse', 'n', item('d'), LIMITS), { stored: true, removed: ['a'] });
    assert.deepEqual((await store.items(H, 'nurse', 'n', {})).map((i) => i.id), ['b', 'c', 'd']);
    await store.publish(H, 'nurse', 'n', item('b', '<p xmlns="urn:x">b2</p>'), LIMITS);
    assert.deepEqual((await store.items(H, 'nurse', 'n', {})).map((i) => i.id), ['c', 'd', 'b']);
    assert.equal((await store.lastItem(H, 'nurse', 'n'))?.payload, '<p xmlns="urn:x">b2</p>');
    assert.deepEqual((await store.items(H, 'nurse', 'n', { max: 2 })).map((i) => i.id), ['d', 'b']);
    assert.deepEqual((await store.items(H, 'nurse', 'n', { ids: ['c', 'zz'] })).map((i) => i.id), ['c']);
    assert.deepEqual(await store.setConfig(H, 'nurse', 'n', { ...defaultConfig(), maxItems: 1 }, 1), ['d', 'c'], 'a smaller max_items drops the oldest');
    assert.equal(await store.retract(H, 'nurse', 'n', 'b'), true);
    assert.equal(await store.retract(H, 'nurse', 'n', 'b'), false);
    await store.publish(H, 'nurse', 'n', item('e'), LIMITS);
    assert.equal(await store.purge(H, 'nurse', 'n'), 1);
    assert.equal(await store.lastItem(H, 'nurse', 'n'), undefined);
  });

  test('the bytes of all items of an account are limited; replacing an item counts its new size only', async () => {
    await store.createNode(H, 'romeo', 'big', defaultConfig(), 10);
    const payload = `<p xmlns="urn:x">${'x'.repeat(400)}</p>`;
    const limits = { keep: 10, maxAccountBytes: 1000 };
    assert.equal((await store.publish(H, 'romeo', 'big', item('1', payload), limits)).stored, true);
    assert.equal((await store.publish(H, 'romeo', 'big', item('2', payload), limits)).stored, true);
    assert.deepEqual(await store.publish(H, 'romeo', 'big', item('3', payload), limits), { stored: false, reason: 'account-full' });
    assert.equal((await store.publish(H, 'romeo', 'big', item('2', payload), limits)).stored, true, 'the same item again fits');
    assert.deepEqual((await store.items(H, 'romeo', 'big', {})).map((i) => i.id), ['1', '2']);
  });

  test('nodesOf finds the named nodes of many accounts at once', async () => {
    await store.createNode(H, 'romeo', 'urn:tune', defaultConfig(), 10);
    await store.createNode(H, 'juliet', 'urn:tune', defaultConfig(), 10);
    const many = [...Array.from({ length: 1000 }, (_, i) => `nobody${i}`), 'romeo', 'juliet'];
    const found = await store.nodesOf(H, many, ['urn:tune', 'urn:mood']);
    assert.deepEqual(found.map((n) => `${n.username} ${n.node}`).sort(), ['juliet urn:tune', 'romeo urn:tune']);
    assert.deepEqual(await store.nodesOf(H, many, []), []);
  });

  test('private XML: replace in place, a count limit for new keys', async () => {
    assert.equal(await store.getPrivate(H, 'juliet', '{urn:a}a'), undefined);
    assert.equal(await store.setPrivate(H, 'juliet', '{urn:a}a', '<a xmlns="urn:a"/>', 2), 'stored');
    assert.equal(await store.setPrivate(H, 'juliet', '{urn:b}b', '<b xmlns="urn:b"/>', 2), 'stored');
    assert.equal(await store.setPrivate(H, 'juliet', '{urn:c}c', '<c xmlns="urn:c"/>', 2), 'limit');
    assert.equal(await store.setPrivate(H, 'juliet', '{urn:a}a', '<a xmlns="urn:a">2</a>', 2), 'stored');
    assert.equal(await store.getPrivate(H, 'juliet', '{urn:a}a'), '<a xmlns="urn:a">2</a>');
  });

  test('removing an account removes its nodes, items and private XML (foreign keys)', async () => {
    assert.ok((await store.listNodes(H, 'juliet')).length > 0);
    assert.equal(await t.storage.accounts.remove(H, 'juliet'), true);
    assert.deepEqual(await store.listNodes(H, 'juliet'), []);
    assert.equal(await store.getPrivate(H, 'juliet', '{urn:a}a'), undefined);
    assert.ok((await store.listNodes(H, 'romeo')).length > 0, 'other accounts keep theirs');
  });

  test('concurrent node creations and publishes of one account keep to its limits', async () => {
    await t.storage.accounts.create(H, 'paris', [credentials('SHA-256', 1)]);
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => store.createNode(H, 'paris', `c${i}`, defaultConfig(), 3)));
    assert.equal(created.filter((r) => r === 'created').length, 3);
    const node = (await store.listNodes(H, 'paris'))[0]!.node;
    const published = await Promise.all(Array.from({ length: 8 }, (_, i) => store.publish(H, 'paris', node, item(`p${i}`, 'x'.repeat(100)), { keep: 100, maxAccountBytes: 450 })));
    assert.equal(published.filter((r) => r.stored).length, 4, '4 x 100 bytes fit in 450');
    const items = await store.items(H, 'paris', node, {});
    assert.equal(items.length, 4);
  });
});
