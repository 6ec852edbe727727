import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openSqliteDatabase } from '../sqlite.js';
import { openPostgresDatabase } from '../postgres.js';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { prepare } from './prepared.js';
import { item, storageBackends, type TempStorage } from './testutil.js';

const H = 'example.net';

for (const backend of storageBackends()) describe(`prepare (${backend.dialect})`, { skip: backend.skip }, () => {
  let t: TempStorage;
  let db: Kysely<Database>;
  before(async () => {
    t = await backend.open();
    db = t.dialect === 'sqlite' ? await openSqliteDatabase(t.path) : await openPostgresDatabase(t.path, { schema: t.schema });
    for (const [user, jids] of [
      ['romeo', ['c@example.com', 'a@example.com', 'b@example.com']],
      ['juliet', ['nurse@example.com']],
    ] as const) {
      for (const jid of jids) await t.storage.roster.setItem(H, user, item(jid, { subscription: jid === 'b@example.com' ? 'both' : 'none' }));
    }
  });
  after(async () => {
    await db.destroy();
    await t.cleanup();
  });

  test('runs with each call’s values, a parameter used twice and constants of the query kept', async () => {
    const q = prepare(db, (d, p) =>
      d
        .selectFrom('roster_items')
        .select(['jid', 'subscription'])
        .where('host', '=', p('host'))
        .where('username', '=', p('username'))
        // A constant of the query itself, between two named parameters.
        .where('subscription', '!=', 'remove')
        .where((eb) => eb.or([eb('jid', '=', p('jid')), eb('jid', '>', p('jid'))]))
        .orderBy('jid')
        .limit(p<number>('limit')),
    );
    assert.deepEqual(
      (await q.execute({ host: H, username: 'romeo', jid: 'b@example.com', limit: 10 })).map((r) => r.jid),
      ['b@example.com', 'c@example.com'],
    );
    assert.deepEqual(
      (await q.execute({ host: H, username: 'romeo', jid: 'a@example.com', limit: 2 })).map((r) => r.jid),
      ['a@example.com', 'b@example.com'],
    );
    assert.deepEqual(await q.execute({ host: H, username: 'juliet', jid: 'a@example.com', limit: 10 }), [{ jid: 'nurse@example.com', subscription: 'none' }]);
    assert.equal(await q.first({ host: H, username: 'nobody', jid: '', limit: 10 }), undefined);
    // The same as the query built the usual way.
    const built = await db
      .selectFrom('roster_items')
      .select(['jid', 'subscription'])
      .where('host', '=', H)
      .where('username', '=', 'romeo')
      .orderBy('jid')
      .execute();
    assert.deepEqual(await q.execute({ host: H, username: 'romeo', jid: '', limit: 10 }), built);
  });

  test('a read never sees what an open transaction wrote, and waits for it', async () => {
    const q = prepare(db, (d, p) => d.selectFrom('roster_items').select('jid').where('host', '=', p('host')).where('username', '=', p('username')).orderBy('jid'));
    const jids = async (): Promise<string[]> => (await q.execute({ host: H, username: 'juliet' })).map((r) => r.jid);
    let during: Promise<string[]> | undefined;
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx
          .insertInto('roster_items')
          .values({ host: H, username: 'juliet', jid: 'tybalt@example.com', name: null, subscription: 'none', ask: 0, pending_in: 0, approved: 0, groups: '[]', version: 1 })
          .execute();
        // On SQLite this read shares the transaction's connection: it must wait, not read the uncommitted row.
        during = jids();
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('rolled back');
      }),
      /rolled back/,
    );
    assert.deepEqual(await during, ['nurse@example.com']);
    assert.deepEqual(await jids(), ['nurse@example.com']);
  });

  // On SQLite's one connection Kysely runs queries in the order they were issued; the direct path
  // must keep that order. (PostgreSQL's pool gives no such order: there the read may run first.)
  test('on SQLite, a read issued after a write keeps its place behind it, even one not awaited yet', { skip: backend.dialect !== 'sqlite' }, async () => {
    const q = prepare(db, (d, p) => d.selectFrom('roster_items').select('jid').where('host', '=', p('host')).where('username', '=', p('username')).orderBy('jid'));
    const write = db.transaction().execute(async (trx) => {
      await trx
        .insertInto('roster_items')
        .values({ host: H, username: 'juliet', jid: 'paris@example.com', name: null, subscription: 'none', ask: 0, pending_in: 0, approved: 0, groups: '[]', version: 1 })
        .execute();
    });
    const read = q.execute({ host: H, username: 'juliet' });
    await write;
    try {
      assert.deepEqual((await read).map((r) => r.jid), ['nurse@example.com', 'paris@example.com']);
    } finally {
      await db.deleteFrom('roster_items').where('host', '=', H).where('username', '=', 'juliet').where('jid', '=', 'paris@example.com').execute();
    }
  });

  test('on SQLite, a read runs at once while Kysely has nothing in flight, through Kysely otherwise', { skip: backend.dialect !== 'sqlite' }, async () => {
    const q = prepare(db, (d, p) => d.selectFrom('roster_items').select('jid').where('host', '=', p('host')).where('username', '=', p('username')));
    const executeQuery = db.executeQuery.bind(db);
    let throughKysely = 0;
    db.executeQuery = ((...args: Parameters<typeof executeQuery>) => {
      throughKysely++;
      return executeQuery(...args);
    }) as typeof db.executeQuery;
    try {
      assert.deepEqual(await q.execute({ host: H, username: 'juliet' }), [{ jid: 'nurse@example.com' }]);
      assert.equal(throughKysely, 0);
      // A transaction holds the connection: the read queues behind it, as any Kysely query does.
      let read: Promise<unknown> | undefined;
      await db.transaction().execute(async () => {
        read = q.execute({ host: H, username: 'juliet' });
        await new Promise((r) => setTimeout(r, 10));
      });
      assert.deepEqual(await read, [{ jid: 'nurse@example.com' }]);
      assert.equal(throughKysely, 1);
      assert.deepEqual(await q.execute({ host: H, username: 'juliet' }), [{ jid: 'nurse@example.com' }]);
      assert.equal(throughKysely, 1, 'direct again once the transaction is over');
    } finally {
      db.executeQuery = executeQuery;
    }
  });
});
