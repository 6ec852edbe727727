import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, storageBackends, type TempStorage, FOREIGN_KEY_ERROR } from './testutil.js';

for (const backend of storageBackends()) describe(`SqlVCardStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  before(async () => {
    t = await backend.open();
    for (const user of ['juliet', 'romeo']) await t.storage.accounts.create('a.example', user, [credentials('SHA-256', 1)]);
    await t.storage.accounts.create('b.example', 'juliet', [credentials('SHA-256', 2)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('get, set (insert and replace) and the avatar hash', async () => {
    const { vcard } = t.storage;
    assert.equal(await vcard.get('a.example', 'juliet'), undefined);
    assert.equal(await vcard.avatarHash('a.example', 'juliet'), undefined);

    await vcard.set('a.example', 'juliet', { xml: '<vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard>' });
    assert.deepEqual(await vcard.get('a.example', 'juliet'), { xml: '<vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard>' });
    assert.equal(await vcard.avatarHash('a.example', 'juliet'), undefined);

    const hash = 'a'.repeat(40);
    await vcard.set('a.example', 'juliet', { xml: '<vCard xmlns="vcard-temp"><PHOTO/></vCard>', avatarHash: hash });
    assert.deepEqual(await vcard.get('a.example', 'juliet'), { xml: '<vCard xmlns="vcard-temp"><PHOTO/></vCard>', avatarHash: hash });
    assert.equal(await vcard.avatarHash('a.example', 'juliet'), hash);

    // Replacing with a vCard without photo clears the hash.
    await vcard.set('a.example', 'juliet', { xml: '<vCard xmlns="vcard-temp"/>' });
    assert.equal(await vcard.avatarHash('a.example', 'juliet'), undefined);

    assert.equal(await vcard.get('a.example', 'romeo'), undefined, 'per user');
    assert.equal(await vcard.get('b.example', 'juliet'), undefined, 'per host');
  });

  test('remove', async () => {
    const { vcard } = t.storage;
    await vcard.set('a.example', 'romeo', { xml: '<vCard xmlns="vcard-temp"><FN>Romeo</FN></vCard>' });
    assert.equal(await vcard.remove('a.example', 'romeo'), true);
    assert.equal(await vcard.remove('a.example', 'romeo'), false);
    assert.equal(await vcard.get('a.example', 'romeo'), undefined);
  });

  test('a vCard survives a reopen, goes with its account and needs one', async () => {
    const big = `<vCard xmlns="vcard-temp"><DESC>${'x'.repeat(70000)}</DESC></vCard>`;
    await t.storage.vcard.set('b.example', 'juliet', { xml: big, avatarHash: 'b'.repeat(40) });
    const storage = await t.reopen();
    assert.deepEqual(await storage.vcard.get('b.example', 'juliet'), { xml: big, avatarHash: 'b'.repeat(40) });
    assert.equal(await storage.accounts.remove('b.example', 'juliet'), true);
    assert.equal(await storage.vcard.get('b.example', 'juliet'), undefined);
    await assert.rejects(storage.vcard.set('b.example', 'juliet', { xml: '<vCard xmlns="vcard-temp"/>' }), FOREIGN_KEY_ERROR);
  });
});
