// The MUC tables: rooms with affiliations and messages, tombstones, and an
// account's affiliations going with the account.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, storageBackends } from '../../storage/sql/testutil.js';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { MucStore, mucMigrations } from './store.js';

const ROOM = { name: 'r', config: '{"persistent":true}', subject: 'hi', subjectFrom: 'A', secret: 'k' };

for (const backend of storageBackends()) describe(`MucStore (${backend.dialect})`, { skip: backend.skip }, () => {
  test('rooms, affiliations and messages survive a reopen; a deleted account loses its affiliations', async () => {
    const t = await backend.open();
    try {
      await t.storage.accounts.create('localhost', 'bob', [credentials('SHA-256', 1)]);
      let store = await MucStore.open(t.storage.sql);
      const affs = new Map([
        ['alice@localhost', { affiliation: 'owner' as const }],
        ['bob@localhost', { affiliation: 'member' as const, nick: 'Bobby' }],
        ['eve@elsewhere.example', { affiliation: 'outcast' as const, reason: 'spam' }],
      ]);
      await store.saveRoom('conference.localhost', ROOM, affs, ['localhost']);
      await store.addMessage('conference.localhost', 'r', { id: 'a', stamp: 1000, nick: 'A', sender: 'alice@localhost/x', xml: '<message xmlns="jabber:client"><body>1</body></message>' });
      await store.addMessage('conference.localhost', 'r', { id: 'b', stamp: 2000, nick: 'A', sender: 'alice@localhost/x', xml: '<message xmlns="jabber:client"><body>2</body></message>' });
      assert.equal(await store.retract('conference.localhost', 'r', 'a', '<message xmlns="jabber:client"><retracted xmlns="urn:xmpp:message-retract:1"/></message>'), true);
      assert.equal(await store.retract('conference.localhost', 'r', 'zzz', '<message xmlns="jabber:client"/>'), false);

      await t.reopen();
      store = await MucStore.open(t.storage.sql);
      const [room] = await store.rooms('conference.localhost');
      assert.equal(room?.subject, 'hi');
      assert.deepEqual([...room!.affiliations.keys()].sort(), ['alice@localhost', 'bob@localhost', 'eve@elsewhere.example']);
      assert.deepEqual(room!.affiliations.get('bob@localhost'), { affiliation: 'member', nick: 'Bobby' });
      assert.deepEqual(room!.affiliations.get('eve@elsewhere.example'), { affiliation: 'outcast', reason: 'spam' });
      assert.deepEqual((await store.recent('conference.localhost', 'r', 10)).map((m) => m.id), ['b'], 'a retracted message is not history');
      assert.equal((await store.message('conference.localhost', 'r', 'a'))?.retracted, true, 'the tombstone stays in the archive');

      // shoal user del: bob's affiliation goes with his account; alice (no account here) and eve stay.
      assert.equal(await t.storage.accounts.remove('localhost', 'bob'), true);
      const [after] = await store.rooms('conference.localhost');
      assert.deepEqual([...after!.affiliations.keys()].sort(), ['alice@localhost', 'eve@elsewhere.example']);

      await store.setAffiliation('conference.localhost', 'r', 'eve@elsewhere.example', undefined, ['localhost']);
      await store.deleteRoom('conference.localhost', 'r');
      assert.deepEqual(await store.rooms('conference.localhost'), []);
      assert.equal(await store.message('conference.localhost', 'r', 'b'), undefined);
    } finally {
      await t.cleanup();
    }
  });

  test('a room archive reads like an XEP-0313 archive: order by time then seq, ranges, pages, counts, tombstones', async () => {
    const t = await backend.open();
    try {
      const store = await MucStore.open(t.storage.sql);
      await store.saveRoom('conference.localhost', ROOM, new Map(), ['localhost']);
      await store.saveRoom('conference.localhost', { ...ROOM, name: 'other' }, new Map(), ['localhost']);
      const msg = (body: string): string => `<message xmlns="jabber:client" type="groupchat"><body>${body}</body></message>`;
      // Two messages share a stamp: their order is the order they were archived in.
      const rows = [
        { id: 'm1', stamp: 1000, nick: 'A' },
        { id: 'm2', stamp: 2000, nick: 'B' },
        { id: 'm3', stamp: 2000, nick: 'A' },
        { id: 'm4', stamp: 3000, nick: 'B' },
      ];
      for (const r of rows) await store.addMessage('conference.localhost', 'r', { ...r, sender: `${r.nick}@localhost/x`, xml: msg(r.id) });
      await store.addMessage('conference.localhost', 'other', { id: 'o1', stamp: 1500, nick: 'A', sender: 'a@localhost/x', xml: msg('o1') });
      await store.retract('conference.localhost', 'r', 'm2', '<message xmlns="jabber:client"><retracted xmlns="urn:xmpp:message-retract:1"/></message>');

      const archive = store.archive('conference.localhost', 'r');
      const ids = (ms: { id: string }[]): string[] => ms.map((m) => m.id);
      assert.deepEqual(ids(await archive.page({}, 10, false)), ['m1', 'm2', 'm3', 'm4']);
      assert.deepEqual(ids(await archive.page({}, 2, true)), ['m4', 'm3'], 'newest first from the end');
      assert.deepEqual(ids(await archive.page({}, 2, false, 1)), ['m2', 'm3']);
      const all = await archive.page({}, 10, false);
      assert.ok(all[1]!.stanza.includes('retracted'), 'the tombstone, not the message');
      assert.equal(all[0]!.withBare, 'r@conference.localhost');
      assert.equal(all[0]!.withResource, 'A');
      const m2 = all[1]!;
      assert.deepEqual(ids(await archive.page({ after: m2 }, 10, false)), ['m3', 'm4'], 'after a message sharing its stamp');
      assert.deepEqual(ids(await archive.page({ before: all[2]! }, 10, false)), ['m1', 'm2']);
      assert.deepEqual(ids(await archive.page({ start: 2000, end: 2000 }, 10, false)), ['m2', 'm3']);
      assert.deepEqual(ids(await archive.page({ with: { bare: 'r@conference.localhost', resource: 'B' } }, 10, false)), ['m2', 'm4']);
      assert.deepEqual(ids(await archive.page({ with: { bare: 'someone@else' } }, 10, false)), []);
      assert.equal(await archive.count({}, 100), 4);
      assert.equal(await archive.count({}, 3), undefined, 'beyond the cap: not counted');
      assert.equal(await archive.count({ with: { bare: 'x@y' } }, 100), 0);
      assert.equal(await archive.total(), 4);
      assert.deepEqual(ids(await archive.byIds(['m4', 'o1', 'nope'])), ['m4'], "another room's id is not this archive's");
      const b = await archive.bounds();
      assert.deepEqual([b?.first.id, b?.last.id], ['m1', 'm4']);
      assert.equal(await store.archive('conference.localhost', 'empty').bounds(), undefined);
    } finally {
      await t.cleanup();
    }
  });
});

test('the migration compiles for PostgreSQL', async () => {
  const compiled: string[] = [];
  const db = new Kysely<unknown>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    log: (event) => {
      compiled.push(event.query.sql);
    },
  });
  for (const m of Object.values(mucMigrations('postgres'))) await m.up(db);
  await db.destroy();
  assert.ok(compiled.some((q) => /"seq" bigint generated by default as identity primary key/.test(q)), compiled.join('\n'));
});
