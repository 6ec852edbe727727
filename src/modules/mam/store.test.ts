// The archive's store, on SQLite and on PostgreSQL: ids, order, preferences, purge, retention, account deletion.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { credentials, FOREIGN_KEY_ERROR, storageBackends, type TempStorage } from '../../storage/sql/testutil.js';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { SqlMamStore, mamMigrations, newArchiveId, type NewMessage } from './store.js';
import { enforceRetention, RETENTION_BATCH } from './retention.js';

const DAY = 86_400_000;
let ts: TempStorage;
let store: SqlMamStore;


const msg = (i: number, t?: number, withBare = 'bob@localhost'): NewMessage => ({
  withBare,
  withResource: '',
  stanza: `<message xmlns="jabber:client"><body>${i}</body></message>`,
  ts: t,
});
const bodiesOf = async (user: string) =>
  (await (await store.reader('localhost', user)).page({}, 100_000, false)).map((m) => Number(/<body>(\d+)</.exec(m.stanza)![1]));

for (const backend of storageBackends()) describe(`mam store on ${backend.dialect}`, { skip: backend.skip }, () => {
beforeEach(async () => {
  ts = await backend.open();
  for (const u of ['alice', 'bob']) await ts.storage.accounts.create('localhost', u, [credentials('SHA-256', 1)]);
  store = await SqlMamStore.open(ts.storage.sql);
});
afterEach(async () => ts.cleanup());

describe('mam store', () => {
  test('archive ids are unique and unpredictable-looking; order is the order archived, even if the clock steps back', async () => {
    const ids = new Set(Array.from({ length: 10_000 }, newArchiveId));
    assert.equal(ids.size, 10_000);
    assert.ok([...ids].every((id) => /^[A-Za-z0-9_-]{12}$/.test(id)));
    const now = Date.now();
    await store.append('localhost', 'alice', [msg(0, now), msg(1, now - 60_000), msg(2, now)]);
    await store.append('localhost', 'alice', [msg(3, now - 3_600_000)]);
    const page = await (await store.reader('localhost', 'alice')).page({}, 10, false);
    assert.deepEqual(page.map((m) => Number(/<body>(\d+)</.exec(m.stanza)![1])), [0, 1, 2, 3]);
    assert.ok(page.every((m) => m.ts === now), 'timestamps never go backwards');
    assert.equal(await store.size('localhost', 'alice'), 4);
    assert.equal(await store.size('localhost', 'bob'), 0);
  });

  test('the timestamp floor survives a restart', async () => {
    const future = Date.now() + 3_600_000;
    await store.append('localhost', 'alice', [msg(0, future)]);
    const reopened = await SqlMamStore.open((await ts.reopen()).sql);
    await reopened.append('localhost', 'alice', [msg(1)]);
    const page = await (await reopened.reader('localhost', 'alice')).page({}, 10, false);
    assert.deepEqual(page.map((m) => m.ts), [future, future]);
  });

  test('an unknown account cannot get an archive', async () => {
    await assert.rejects(store.append('localhost', 'nobody', [msg(0)]), FOREIGN_KEY_ERROR);
    await assert.rejects(store.setPrefs('localhost', 'nobody', { default: 'never', always: [], never: [] }), FOREIGN_KEY_ERROR);
  });

  test('preferences are stored per account', async () => {
    assert.deepEqual(await store.getPrefs('localhost', 'alice'), { default: undefined, always: [], never: [] });
    await store.setPrefs('localhost', 'alice', { default: 'roster', always: ['a@b'], never: ['c@d/e'] });
    await store.append('localhost', 'alice', [msg(0)]);
    assert.deepEqual(await store.getPrefs('localhost', 'alice'), { default: 'roster', always: ['a@b'], never: ['c@d/e'] }, 'archiving keeps them');
    assert.deepEqual(await store.getPrefs('localhost', 'bob'), { default: undefined, always: [], never: [] });
  });

  test('purge deletes the oldest first, before a date or all, in batches, and keeps the count', async () => {
    const now = Date.now();
    await store.append('localhost', 'alice', Array.from({ length: 25 }, (_, i) => msg(i, now - (25 - i) * DAY)));
    await store.append('localhost', 'bob', [msg(100, now - 30 * DAY)]);
    let pauses = 0;
    const n = await store.purge('localhost', 'alice', now - 10 * DAY, 4, async () => void pauses++);
    assert.equal(n, 15, 'those more than 10 days old');
    assert.ok(pauses >= 3, 'paused between batches');
    assert.deepEqual(await bodiesOf('alice'), Array.from({ length: 10 }, (_, i) => 15 + i));
    assert.equal(await store.size('localhost', 'alice'), 10);
    assert.equal(await store.purge('localhost', 'alice'), 10);
    assert.deepEqual(await bodiesOf('alice'), []);
    assert.deepEqual(await bodiesOf('bob'), [100], 'other archives untouched');
    assert.equal(await store.purge('localhost', 'nobody'), 0);
  });

  test('deleting the account deletes its archive and preferences', async () => {
    await store.append('localhost', 'alice', [msg(0), msg(1)]);
    await store.setPrefs('localhost', 'alice', { default: 'never', always: [], never: [] });
    await store.append('localhost', 'bob', [msg(2)]);
    const id = (await (await store.reader('localhost', 'alice')).page({}, 1, false))[0]!.id;
    assert.equal(await ts.storage.accounts.remove('localhost', 'alice'), true);
    const rows = await ts.storage.sql.db<{ mam_messages: { archive: number } }>().selectFrom('mam_messages').select('archive').execute();
    assert.equal(rows.length, 1, 'only bob\'s message is left');
    assert.deepEqual(await store.getPrefs('localhost', 'alice'), { default: undefined, always: [], never: [] });
    // Recreated, the account starts with an empty archive that does not know the old ids.
    await ts.storage.accounts.create('localhost', 'alice', [credentials('SHA-256', 1)]);
    assert.deepEqual(await (await store.reader('localhost', 'alice')).byIds([id]), []);
    assert.deepEqual(await bodiesOf('bob'), [2]);
  });
});

describe('mam migrations', () => {
  test('the PostgreSQL variant compiles: identity columns, the same indexes', async () => {
    const compiled: string[] = [];
    const db = new Kysely<unknown>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => new DummyDriver(),
        createIntrospector: (k) => new PostgresIntrospector(k),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
      log: (event) => void compiled.push(event.query.sql),
    });
    for (const m of Object.values(mamMigrations('postgres'))) await m.up(db);
    await db.destroy();
    assert.equal(compiled.length, 5);
    assert.match(compiled[0]!, /"archive" bigint generated by default as identity primary key/);
    assert.match(compiled[1]!, /"seq" bigint generated by default as identity primary key/);
    assert.match(compiled[4]!, /create unique index "mam_messages_id"/);
  });
});

describe('mam retention', () => {
  test('max_age_days deletes what is older, oldest first, across archives', async () => {
    const now = Date.now();
    await store.append('localhost', 'alice', Array.from({ length: 10 }, (_, i) => msg(i, now - (10 - i) * DAY)));
    await store.append('localhost', 'bob', Array.from({ length: 10 }, (_, i) => msg(i, now - (10 - i) * DAY)));
    // Alice's newer messages all have the latest timestamp (the store keeps time monotonic), so
    // count with the store's own timestamps.
    const deleted = await enforceRetention(store, { maxAgeDays: 5.5, maxPerUser: undefined }, () => false, now);
    assert.ok(deleted >= 5, `deleted ${deleted}`);
    for (const u of ['alice', 'bob']) {
      const left = await (await store.reader('localhost', u)).page({}, 100, false);
      assert.ok(left.every((m) => m.ts >= now - 5.5 * DAY), 'nothing older is left');
      assert.equal(await store.size('localhost', u), left.length);
    }
    assert.deepEqual(await bodiesOf('alice'), [5, 6, 7, 8, 9]);
  });

  test('max_per_user keeps the newest, in batches, and a stop request is honoured', async () => {
    const total = RETENTION_BATCH * 2 + 7;
    await store.append('localhost', 'alice', Array.from({ length: total }, (_, i) => msg(i)));
    await store.append('localhost', 'bob', [msg(0), msg(1)]);
    assert.equal(await enforceRetention(store, { maxAgeDays: undefined, maxPerUser: 10 }, () => true), 0, 'stopped before any batch');
    assert.equal(await enforceRetention(store, { maxAgeDays: undefined, maxPerUser: 10 }), total - 10);
    assert.deepEqual(await bodiesOf('alice'), Array.from({ length: 10 }, (_, i) => total - 10 + i));
    assert.deepEqual(await bodiesOf('bob'), [0, 1]);
    assert.equal(await store.size('localhost', 'alice'), 10);
    assert.equal(await enforceRetention(store, { maxAgeDays: undefined, maxPerUser: undefined }), 0, 'no limits: nothing to do');
  });

  test('the job yields to the event loop between batches', async () => {
    await store.append('localhost', 'alice', Array.from({ length: RETENTION_BATCH * 3 }, (_, i) => msg(i)));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await enforceRetention(store, { maxAgeDays: undefined, maxPerUser: 0 });
    clearInterval(timer);
    assert.ok(ticks >= 2, `timers ran during the job (${ticks})`);
    assert.equal(await store.size('localhost', 'alice'), 0);
  });
});
});
