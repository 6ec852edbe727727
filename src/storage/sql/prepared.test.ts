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
});
