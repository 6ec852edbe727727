import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { credentials, item, storageBackends, type TempStorage } from './testutil.js';

for (const backend of storageBackends()) describe(`SqlAccountStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  before(async () => {
    t = await backend.open();
  });
  after(async () => {
    await t.cleanup();
  });

  test('create, exists, list and remove', async () => {
    const { accounts } = t.storage;
    const before = Date.now();
    assert.equal(await accounts.create('a.example', 'romeo', [credentials('SHA-256', 1)]), true);
    assert.equal(await accounts.create('a.example', 'juliet', [credentials('SHA-256', 2)]), true);
    assert.equal(await accounts.create('b.example', 'romeo', [credentials('SHA-256', 3)]), true);
    assert.equal(await accounts.create('a.example', 'romeo', [credentials('SHA-1', 4)]), false, 'duplicate create');

    assert.equal(await accounts.exists('a.example', 'romeo'), true);
    assert.equal(await accounts.exists('a.example', 'nurse'), false);
    assert.equal(await accounts.exists('c.example', 'romeo'), false);

    const list = await accounts.list('a.example');
    assert.deepEqual(
      list.map((a) => [a.host, a.username]),
      [
        ['a.example', 'juliet'],
        ['a.example', 'romeo'],
      ],
    );
    for (const a of list) {
      assert.ok(a.createdAt instanceof Date);
      assert.ok(a.createdAt.getTime() >= before - 1000 && a.createdAt.getTime() <= Date.now() + 1000);
    }
    assert.deepEqual(await accounts.list('nowhere.example'), []);

    assert.equal(await accounts.remove('a.example', 'romeo'), true);
    assert.equal(await accounts.remove('a.example', 'romeo'), false);
    assert.equal(await accounts.exists('a.example', 'romeo'), false);
    assert.equal(await accounts.exists('b.example', 'romeo'), true, 'same name on another host untouched');
    assert.deepEqual(
      (await accounts.list('a.example')).map((a) => a.username),
      ['juliet'],
    );
  });

  test('the duplicate create did not touch the existing credentials', async () => {
    const { accounts } = t.storage;
    assert.equal(await accounts.getScramCredentials('a.example', 'juliet', 'SHA-1'), undefined);
    assert.deepEqual(await accounts.getScramCredentials('a.example', 'juliet', 'SHA-256'), credentials('SHA-256', 2));
  });

  test('credentials round-trip for every hash', async () => {
    const { accounts } = t.storage;
    const creds = [credentials('SHA-1', 10), credentials('SHA-256', 11), credentials('SHA-512', 12)];
    assert.equal(await accounts.create('a.example', 'mercutio', creds), true);
    for (const expected of creds) {
      const got = await accounts.getScramCredentials('a.example', 'mercutio', expected.hash);
      assert.ok(got !== undefined);
      assert.ok(Buffer.isBuffer(got.salt) && Buffer.isBuffer(got.storedKey) && Buffer.isBuffer(got.serverKey));
      assert.ok(got.salt.equals(expected.salt));
      assert.ok(got.storedKey.equals(expected.storedKey));
      assert.ok(got.serverKey.equals(expected.serverKey));
      assert.deepEqual(got, expected);
    }
    assert.equal(await accounts.getScramCredentials('a.example', 'tybalt', 'SHA-1'), undefined);
    assert.equal(await accounts.getScramCredentials('b.example', 'mercutio', 'SHA-1'), undefined);
  });

  test('setCredentials replaces all credentials, only for existing accounts', async () => {
    const { accounts } = t.storage;
    const replacement = [credentials('SHA-512', 20)];
    assert.equal(await accounts.setCredentials('a.example', 'mercutio', replacement), true);
    assert.equal(await accounts.getScramCredentials('a.example', 'mercutio', 'SHA-1'), undefined);
    assert.equal(await accounts.getScramCredentials('a.example', 'mercutio', 'SHA-256'), undefined);
    assert.deepEqual(await accounts.getScramCredentials('a.example', 'mercutio', 'SHA-512'), replacement[0]);

    assert.equal(await accounts.setCredentials('a.example', 'benvolio', replacement), false);
    assert.equal(await accounts.exists('a.example', 'benvolio'), false);
    assert.equal(await accounts.getScramCredentials('a.example', 'benvolio', 'SHA-512'), undefined);
  });

  test('invalid credentials are rejected without creating the account', async () => {
    const { accounts } = t.storage;
    await assert.rejects(accounts.create('a.example', 'paris', [credentials('SHA-1', 1), credentials('SHA-1', 2)]), /twice/);
    await assert.rejects(accounts.create('a.example', 'paris', [{ ...credentials('SHA-1', 1), iterations: 0 }]), /iteration/);
    assert.equal(await accounts.exists('a.example', 'paris'), false);
  });

  test('a failure after the account row is written rolls the whole create back', async () => {
    const { accounts } = t.storage;
    // A null salt breaks the NOT NULL constraint (in both dialects), so the credentials insert fails inside the transaction.
    const bad = { ...credentials('SHA-256', 1), salt: null as unknown as Buffer };
    await assert.rejects(accounts.create('a.example', 'balthasar', [bad]));
    assert.equal(await accounts.exists('a.example', 'balthasar'), false);
    assert.equal(await accounts.create('a.example', 'balthasar', [credentials('SHA-256', 2)]), true);
  });

  test('remove deletes credentials and roster; a re-created account starts empty', async () => {
    const { accounts, roster } = t.storage;
    assert.equal(await accounts.create('a.example', 'friar', [credentials('SHA-256', 30), credentials('SHA-1', 31)]), true);
    await roster.setItem('a.example', 'friar', item('juliet@a.example'));
    const cached = await roster.setItem('a.example', 'friar', item('romeo@a.example'));

    assert.equal(await accounts.remove('a.example', 'friar'), true);
    assert.equal(await accounts.getScramCredentials('a.example', 'friar', 'SHA-256'), undefined);
    assert.deepEqual((await roster.get('a.example', 'friar')).items, []);
    assert.equal(await roster.getItem('a.example', 'friar', 'juliet@a.example'), undefined);

    assert.equal(await accounts.create('a.example', 'friar', [credentials('SHA-512', 32)]), true);
    assert.equal(await accounts.getScramCredentials('a.example', 'friar', 'SHA-256'), undefined);
    assert.equal(await accounts.getScramCredentials('a.example', 'friar', 'SHA-1'), undefined);
    await roster.setItem('a.example', 'friar', item('nurse@a.example'));
    // A client still caching the old roster must not get a diff against items that are gone.
    assert.equal(await roster.changesSince('a.example', 'friar', cached), undefined);
    const now = await roster.get('a.example', 'friar');
    assert.deepEqual(
      now.items.map((i) => i.jid),
      ['nurse@a.example'],
    );
    assert.ok(Number(now.version) > Number(cached), 'versions never repeat for one user');
  });
});
