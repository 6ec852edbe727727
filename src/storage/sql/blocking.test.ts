import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { blocklistKeysFor } from '../types.js';
import { credentials, storageBackends, type TempStorage, FOREIGN_KEY_ERROR } from './testutil.js';

describe('blocklistKeysFor (XEP-0191 §6)', () => {
  test('every form of JID', () => {
    assert.deepEqual(blocklistKeysFor('romeo@montague.net/orchard'), [
      'romeo@montague.net/orchard',
      'romeo@montague.net',
      'montague.net/orchard',
      'montague.net',
    ]);
    assert.deepEqual(blocklistKeysFor('romeo@montague.net'), ['romeo@montague.net', 'montague.net']);
    assert.deepEqual(blocklistKeysFor('montague.net/orchard'), ['montague.net/orchard', 'montague.net']);
    assert.deepEqual(blocklistKeysFor('montague.net'), ['montague.net']);
  });

  test('a resourcepart may hold "@" and "/" (RFC 7622 §3.1)', () => {
    assert.deepEqual(blocklistKeysFor('romeo@montague.net/a@b/c'), [
      'romeo@montague.net/a@b/c',
      'romeo@montague.net',
      'montague.net/a@b/c',
      'montague.net',
    ]);
    assert.deepEqual(blocklistKeysFor('montague.net/x@y'), ['montague.net/x@y', 'montague.net']);
  });
});

for (const backend of storageBackends()) describe(`SqlBlockingStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  before(async () => {
    t = await backend.open();
    for (const user of ['juliet', 'romeo']) await t.storage.accounts.create('a.example', user, [credentials('SHA-256', 1)]);
  });
  after(async () => {
    await t.cleanup();
  });

  test('block reports only new entries; list is sorted and per user', async () => {
    const { blocking } = t.storage;
    assert.deepEqual(await blocking.list('a.example', 'juliet'), []);
    assert.deepEqual(await blocking.block('a.example', 'juliet', ['tybalt@b.example', 'iago@c.example', 'tybalt@b.example']), [
      'tybalt@b.example',
      'iago@c.example',
    ]);
    assert.deepEqual(await blocking.block('a.example', 'juliet', ['iago@c.example', 'paris@b.example']), ['paris@b.example']);
    assert.deepEqual(await blocking.block('a.example', 'juliet', []), []);
    assert.deepEqual(await blocking.list('a.example', 'juliet'), ['iago@c.example', 'paris@b.example', 'tybalt@b.example']);
    assert.deepEqual(await blocking.list('a.example', 'romeo'), []);
  });

  test('isBlocked follows the XEP-0191 §6 matching rules', async () => {
    const { blocking } = t.storage;
    await blocking.block('a.example', 'romeo', ['full@x.example/res', 'bare@x.example', 'y.example/only', 'z.example']);
    const cases: [string, boolean][] = [
      ['full@x.example/res', true],
      ['full@x.example/other', false],
      ['full@x.example', false],
      ['bare@x.example', true],
      ['bare@x.example/any', true],
      ['x.example', false],
      ['y.example/only', true],
      ['y.example', false],
      // XEP-0016 §2.1 matching drops the localpart to compare with <domain/resource>.
      ['someone@y.example/only', true],
      ['someone@y.example/other', false],
      ['z.example', true],
      ['anyone@z.example', true],
      ['anyone@z.example/r', true],
      ['z.example/r', true],
      ['sub.z.example', false],
    ];
    for (const [jid, expected] of cases) assert.equal(await blocking.isBlocked('a.example', 'romeo', jid), expected, jid);
    assert.equal(await blocking.isBlocked('a.example', 'juliet', 'anyone@z.example'), false, "another user's list");
  });

  test('unblock some, then all', async () => {
    const { blocking } = t.storage;
    assert.deepEqual(await blocking.unblock('a.example', 'juliet', ['paris@b.example', 'nobody@b.example']), ['paris@b.example']);
    assert.deepEqual(await blocking.unblock('a.example', 'juliet', []), []);
    assert.equal(await blocking.isBlocked('a.example', 'juliet', 'paris@b.example'), false);
    assert.equal(await blocking.isBlocked('a.example', 'juliet', 'tybalt@b.example'), true);
    assert.deepEqual(await blocking.unblockAll('a.example', 'juliet'), ['iago@c.example', 'tybalt@b.example']);
    assert.deepEqual(await blocking.list('a.example', 'juliet'), []);
    assert.deepEqual(await blocking.unblockAll('a.example', 'juliet'), []);
    assert.equal((await blocking.list('a.example', 'romeo')).length, 4, "another user's list untouched");
  });

  test('the blocklist survives a reopen and goes with the account', async () => {
    const storage = await t.reopen();
    assert.equal(await storage.blocking.isBlocked('a.example', 'romeo', 'bare@x.example'), true);
    assert.equal(await storage.accounts.remove('a.example', 'romeo'), true);
    assert.deepEqual(await storage.blocking.list('a.example', 'romeo'), []);
    await assert.rejects(storage.blocking.block('a.example', 'romeo', ['x@y.example']), FOREIGN_KEY_ERROR);
  });
});
