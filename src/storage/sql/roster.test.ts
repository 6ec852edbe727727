import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ROSTER_CACHE_USERS, ROSTER_CHANGES_KEPT } from './roster.js';
import { item, storageBackends, type TempStorage } from './testutil.js';
import { openSqliteStorage } from '../sqlite.js';
import { openPostgresStorage } from '../postgres.js';

const H = 'example.net';

for (const backend of storageBackends()) describe(`SqlRosterStore (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  before(async () => {
    t = await backend.open();
  });
  after(async () => {
    await t.cleanup();
  });

  test('a roster never changed is empty at version 0', async () => {
    assert.deepEqual(await t.storage.roster.get(H, 'nobody'), { version: '0', items: [] });
    assert.equal(await t.storage.roster.getItem(H, 'nobody', 'x@example.net'), undefined);
  });

  test('set, get, update and remove items; every change bumps the version', async () => {
    const { roster } = t.storage;
    const juliet = item('juliet@example.com', {
      name: 'Juliet',
      subscription: 'both',
      ask: true,
      pendingIn: true,
      approved: true,
      groups: ['Friends', 'Capulets'],
    });
    const nurse = item('nurse@example.com', { subscription: 'from' });
    assert.equal(await roster.setItem(H, 'romeo', juliet), '1');
    assert.equal(await roster.setItem(H, 'romeo', nurse), '2');

    assert.deepEqual(await roster.getItem(H, 'romeo', 'juliet@example.com'), juliet);
    const nurseBack = await roster.getItem(H, 'romeo', 'nurse@example.com');
    assert.deepEqual(nurseBack, nurse);
    assert.ok(nurseBack !== undefined && !('name' in nurseBack), 'no name stays no name');

    const updated = { ...juliet, name: 'J', subscription: 'to' as const, ask: false, groups: [] };
    assert.equal(await roster.setItem(H, 'romeo', updated), '3');
    assert.deepEqual(await roster.get(H, 'romeo'), { version: '3', items: [updated, nurse] });

    assert.equal(await roster.removeItem(H, 'romeo', 'nurse@example.com'), '4');
    assert.equal(await roster.removeItem(H, 'romeo', 'nurse@example.com'), undefined, 'no such item');
    assert.deepEqual(await roster.get(H, 'romeo'), { version: '4', items: [updated] });

    // Other users' rosters are separate, versions included.
    assert.deepEqual(await roster.get(H, 'juliet'), { version: '0', items: [] });
    assert.deepEqual(await roster.get('other.example', 'romeo'), { version: '0', items: [] });
  });

  test('invalid items are rejected', async () => {
    const { roster } = t.storage;
    await assert.rejects(roster.setItem(H, 'romeo', { ...item('x@y'), subscription: 'remove' as 'none' }), /subscription/);
    await assert.rejects(roster.setItem(H, 'romeo', item('')), /JID/);
    assert.equal((await roster.get(H, 'romeo')).version, '4', 'rejected items do not bump the version');
  });

  test('concurrent changes get distinct, consecutive versions', async () => {
    const { roster } = t.storage;
    const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => roster.setItem(H, 'benvolio', item(`c${i}@example.com`))));
    assert.deepEqual(
      versions.map(Number).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const { version, items } = await roster.get(H, 'benvolio');
    assert.equal(version, '20');
    assert.equal(items.length, 20);
  });

  test('changesSince returns the latest state of each JID changed after the version', async () => {
    const { roster } = t.storage;
    const u = 'tybalt';
    const a = item('a@example.com');
    const b = item('b@example.com', { groups: ['G'] });
    const c = item('c@example.com');
    assert.equal(await roster.setItem(H, u, a), '1');
    assert.equal(await roster.setItem(H, u, b), '2');
    assert.equal(await roster.setItem(H, u, c), '3');
    const a2 = { ...a, name: 'A', subscription: 'to' as const };
    assert.equal(await roster.setItem(H, u, a2), '4');
    assert.equal(await roster.removeItem(H, u, 'b@example.com'), '5');

    assert.deepEqual(await roster.changesSince(H, u, '3'), {
      version: '5',
      changes: [a2, { jid: 'b@example.com', subscription: 'remove' }],
    });
    // Ordered by each JID's last change; a JID changed several times appears once.
    assert.deepEqual(await roster.changesSince(H, u, '0'), {
      version: '5',
      changes: [c, a2, { jid: 'b@example.com', subscription: 'remove' }],
    });
    assert.deepEqual(await roster.changesSince(H, u, '4'), {
      version: '5',
      changes: [{ jid: 'b@example.com', subscription: 'remove' }],
    });
    assert.deepEqual(await roster.changesSince(H, u, '5'), { version: '5', changes: [] });

    // Removed, then added again: the item, not a removal.
    const b2 = item('b@example.com', { subscription: 'both' });
    assert.equal(await roster.setItem(H, u, b2), '6');
    assert.deepEqual(await roster.changesSince(H, u, '4'), { version: '6', changes: [b2] });
  });

  test('changesSince is undefined for versions that are not ours', async () => {
    const { roster } = t.storage;
    for (const bad of ['7', '100', '', 'abc', '-1', '1.5', ' 3', '3 ', '0x3', '1e3', '99999999999999999999']) {
      assert.equal(await roster.changesSince(H, 'tybalt', bad), undefined, `version ${JSON.stringify(bad)}`);
    }
    assert.deepEqual(await roster.changesSince(H, 'never-changed', '0'), { version: '0', changes: [] });
    assert.equal(await roster.changesSince(H, 'never-changed', '1'), undefined);
  });

  test(`only the last ${ROSTER_CHANGES_KEPT} changes are kept; older versions get undefined`, async () => {
    const { roster } = t.storage;
    const u = 'paris';
    const total = ROSTER_CHANGES_KEPT + 5;
    for (let i = 1; i <= total; i++) {
      assert.equal(await roster.setItem(H, u, item(`c${i % 7}@example.com`, { name: String(i) })), String(i));
    }
    // Changes 6..505 are kept, so a client at version 5 or later can still get a diff.
    assert.equal(await roster.changesSince(H, u, '0'), undefined);
    assert.equal(await roster.changesSince(H, u, '4'), undefined);
    const fromOldest = await roster.changesSince(H, u, '5');
    assert.ok(fromOldest !== undefined);
    assert.equal(fromOldest.version, String(total));
    assert.equal(fromOldest.changes.length, 7);
    const recent = await roster.changesSince(H, u, String(total - 2));
    assert.deepEqual(recent?.changes, [
      item(`c${(total - 1) % 7}@example.com`, { name: String(total - 1) }),
      item(`c${total % 7}@example.com`, { name: String(total) }),
    ]);
  });

  test('a roster read again is current after changes made here, by another connection, and by removing the account', async () => {
    const { roster } = t.storage;
    const u = 'mercutio';
    const a = item('a@example.com', { subscription: 'both', groups: ['G'] });
    await roster.setItem(H, u, a);
    const first = await roster.get(H, u);
    assert.deepEqual(first, { version: '1', items: [a] });
    // Unchanged: read again, the same.
    assert.deepEqual(await roster.get(H, u), first);

    // Another process on the same database (here: a second connection) changes it.
    const other = t.dialect === 'sqlite' ? await openSqliteStorage(t.path) : await openPostgresStorage(t.path, { schema: t.schema });
    try {
      const b = item('b@example.com', { subscription: 'to' });
      assert.equal(await other.roster.setItem(H, u, b), '2');
      assert.deepEqual(await roster.get(H, u), { version: '2', items: [a, b] });
      assert.equal(await other.roster.removeItem(H, u, 'a@example.com'), '3');
      assert.deepEqual(await roster.get(H, u), { version: '3', items: [b] });
      // The account goes (its roster with it) and comes back with the same name: nothing of the old roster.
      await other.accounts.create(H, u, []);
      assert.equal(await other.accounts.remove(H, u), true);
      assert.deepEqual(await roster.get(H, u), { version: '4', items: [] });
    } finally {
      await other.close();
    }

    // Changed here: seen at once.
    const c = item('c@example.com');
    assert.equal(await roster.setItem(H, u, c), '5');
    assert.deepEqual(await roster.get(H, u), { version: '5', items: [c] });
  });

  test(`rosters read for more than ${ROSTER_CACHE_USERS} users are all still right`, async () => {
    const { roster } = t.storage;
    const users = Array.from({ length: ROSTER_CACHE_USERS + 10 }, (_, i) => `many${i}`);
    await roster.setItem(H, users[0]!, item('x@example.com'));
    for (const u of users) await roster.get(H, u);
    // The first was dropped long ago: read again from storage, still right.
    assert.deepEqual(await roster.get(H, users[0]!), { version: '1', items: [item('x@example.com')] });
    assert.deepEqual(await roster.get(H, users[users.length - 1]!), { version: '0', items: [] });
  });

  test('rosters and versions survive close and reopen', async () => {
    const before = await t.storage.roster.get(H, 'tybalt');
    const changes = await t.storage.roster.changesSince(H, 'tybalt', '3');
    await t.reopen();
    assert.deepEqual(await t.storage.roster.get(H, 'tybalt'), before);
    assert.deepEqual(await t.storage.roster.changesSince(H, 'tybalt', '3'), changes);
    assert.equal(await t.storage.roster.setItem(H, 'tybalt', item('d@example.com')), String(Number(before.version) + 1));
  });
});
