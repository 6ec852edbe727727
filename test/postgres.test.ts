// A real Shoal server on PostgreSQL (storage.driver postgres, a database of this
// test's own), driven by xmpp.js: SCRAM login against credentials stored in
// PostgreSQL, roster set/get with versions (RFC 6121 §2.6), a subscription request
// kept for an offline contact and approved later (RFC 6121 §3.1.3), and an offline
// message stored and delivered (XEP-0160) — then what is in the database checked.
// Also two servers sharing one database, each in a schema of its own (storage.schema).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pg from 'pg';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, startXmppJs, trustCertificate, xml, type XmlElement, type XmppJsSession } from './support/xmppjs.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { runShoal } from './support/cli.js';
import { login } from './support/login.js';
import { postgresSkipped, reserveTestSchema, testPostgresAdminUrl, type TestSchema } from '../src/storage/sql/testutil.js';
import type { OfflineApi } from '../src/modules/offline/api.js';
import { migrations } from '../src/storage/sql/migrations.js';

const NS_ROSTER = 'jabber:iq:roster';
const NS_DELAY = 'urn:xmpp:delay';

const skip = postgresSkipped();
let srv: TestServer;
let restoreTls: () => void;
const open: XmppJsSession[] = [];

before(async () => {
  if (skip) return;
  srv = await startTestServer({}, { storage: 'postgres' });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  if (skip) return;
  for (const s of open) await s.xmpp.stop().catch(() => undefined);
  restoreTls();
  await srv.stop();
});

async function online(username: string): Promise<XmppJsSession> {
  const s = await startXmppJs({ port: srv.port, username, password: `${username}-pass` });
  open.push(s);
  return s;
}

function rosterItems(query: XmlElement | undefined): { jid: string; subscription: string; ask?: string; name?: string; groups: string[] }[] {
  return (query?.getChildren('item') ?? []).map((i) => ({
    jid: i.attrs.jid ?? '',
    subscription: i.attrs.subscription ?? 'none',
    ...(i.attrs.ask !== undefined && { ask: i.attrs.ask }),
    ...(i.attrs.name !== undefined && { name: i.attrs.name }),
    groups: i.getChildren('group').map((g) => g.text()),
  }));
}

test('login, roster, subscription and an offline message round trip on PostgreSQL', { skip }, async () => {
  assert.equal(srv.server.storage.sql.dialect, 'postgres', 'the server runs on PostgreSQL');

  // SCRAM against the credentials in PostgreSQL.
  const alice = await online('alice');
  assert.match(alice.jid, /^alice@localhost\//);

  // RFC 6121 §2.1.6: asking for the roster makes this resource an interested one (it gets pushes).
  const empty = await alice.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER }));
  assert.deepEqual(rosterItems(empty), []);

  // RFC 6121 §2.3: roster set, answered by a push carrying a version (§2.6).
  const push = alice.nextStanza((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS_ROSTER) !== undefined, 'roster push');
  await alice.xmpp.iqCaller.request(
    xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'bob@localhost', name: 'Bob' }, xml('group', {}, 'Friends')))),
  );
  const pushed = (await push).getChild('query', NS_ROSTER);
  const v1 = pushed?.attrs.ver;
  assert.ok(v1 !== undefined && v1 !== '', 'the push carries a roster version');
  assert.deepEqual(rosterItems(pushed), [{ jid: 'bob@localhost', subscription: 'none', name: 'Bob', groups: ['Friends'] }]);

  // RFC 6121 §3.1.2: bob is offline; his server keeps the request (pending in), alice's item gets ask='subscribe'.
  const askPush = alice.nextStanza((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.ask === 'subscribe', 'ask push');
  await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
  await askPush;
  // XEP-0160: a message to bob, who has no available resource, is stored.
  await alice.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'offline-1' }, xml('body', {}, 'stored in PostgreSQL')));
  const offline = srv.server.module<OfflineApi>('offline');
  for (let i = 0; i < 200 && (await offline.count('localhost', 'bob')) === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(await offline.count('localhost', 'bob'), 1);

  // Bob comes online: the stored request and the stored message arrive after initial presence.
  const bob = await online('bob');
  await bob.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER }));
  const request = bob.nextStanza((el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'the stored subscription request', 10_000);
  const message = bob.nextStanza((el) => el.name === 'message' && el.attrs.id === 'offline-1', 'the offline message', 10_000);
  await bob.xmpp.send(xml('presence'));
  assert.equal((await request).attrs.from, 'alice@localhost');
  const delivered = await message;
  assert.equal(delivered.getChildText('body'), 'stored in PostgreSQL');
  assert.equal(delivered.getChild('delay', NS_DELAY)?.attrs.from, 'localhost', 'XEP-0203 delay on a stored message');
  for (let i = 0; i < 200 && (await offline.count('localhost', 'bob')) > 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(await offline.count('localhost', 'bob'), 0, 'delivered messages leave the store');

  // Bob approves: alice's item becomes 'to', bob's 'from' (RFC 6121 §3.1.5).
  const subscribed = alice.nextStanza(
    (el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.subscription === 'to',
    'roster push with subscription to',
  );
  await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
  await subscribed;
  const bobRoster = await bob.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER }));
  assert.deepEqual(rosterItems(bobRoster), [{ jid: 'alice@localhost', subscription: 'from', groups: [] }]);

  // RFC 6121 §2.6.3: with the version from before the subscription, an empty result and then
  // the changed item as a roster push (read back from PostgreSQL's change log).
  const diff = alice.nextStanza((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS_ROSTER) !== undefined, 'roster push of the diff');
  const since = await alice.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER, ver: v1 }));
  assert.equal(since, undefined, 'an empty result: the changes follow as pushes');
  const diffQuery = (await diff).getChild('query', NS_ROSTER);
  assert.deepEqual(rosterItems(diffQuery), [{ jid: 'bob@localhost', subscription: 'to', name: 'Bob', groups: ['Friends'] }]);
  const latest = diffQuery?.attrs.ver;
  assert.ok(latest !== undefined && Number(latest) > Number(v1));
  const full = await alice.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER }));
  assert.deepEqual(rosterItems(full), [{ jid: 'bob@localhost', subscription: 'to', name: 'Bob', groups: ['Friends'] }]);
  assert.equal(full?.attrs.ver, latest);

  // What PostgreSQL holds: booleans as 0/1, the version counter, no offline message left.
  const db = srv.server.storage.sql.db<unknown>();
  const rows = await sql<{ username: string; jid: string; subscription: string; ask: number; pending_in: number; version: number }>`
    select username, jid, subscription, ask, pending_in, version from roster_items order by username`.execute(db);
  assert.deepEqual(
    rows.rows.map((r) => [r.username, r.jid, r.subscription, r.ask, r.pending_in]),
    [
      ['alice', 'bob@localhost', 'to', 0, 0],
      ['bob', 'alice@localhost', 'from', 0, 0],
    ],
  );
  assert.equal(String(rows.rows[0]?.version), latest);
});

test('an operator is told in one line when PostgreSQL cannot be reached or the database is missing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-pg-cli-'));
  try {
    const write = (url: string): void => writeFileSync(join(dir, 'shoal.yaml'), stringify({ hosts: ['localhost'], c2s: { host: '127.0.0.1', port: 0 }, storage: { driver: 'postgres', url } }));
    write('postgresql://shoal:s3cret@127.0.0.1:1/xmpp');
    const down = await runShoal(['start'], { cwd: dir });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^shoal: cannot connect to PostgreSQL at postgresql:\/\/shoal:\*\*\*@127\.0\.0\.1:1\/xmpp \(storage\.url\)/m, 'the password is not shown');
    assert.doesNotMatch(down.stderr, /s3cret|\n\s+at /, 'no password, no stack trace');

    if (skip) return;
    const missing = new URL(testPostgresAdminUrl());
    missing.pathname = '/shoal_test_no_such_database';
    write(missing.toString());
    const migrate = await runShoal(['migrate'], { cwd: dir });
    assert.equal(migrate.code, 1);
    assert.match(migrate.stderr, /^shoal: the PostgreSQL database of .*shoal_test_no_such_database \(storage\.url\) does not exist; create it first/m);

    // A user that may not create schemas, and a storage.schema that does not exist yet.
    const { schema, drop } = await reserveTestSchema();
    const role = schema;
    const admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
    await admin.connect();
    try {
      await admin.query(`create role "${role}" login`);
      const limited = new URL(testPostgresAdminUrl());
      limited.username = role;
      writeFileSync(join(dir, 'shoal.yaml'), stringify({ hosts: ['localhost'], storage: { driver: 'postgres', url: limited.toString(), schema } }));
      const refused = await runShoal(['migrate'], { cwd: dir });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`^shoal: the PostgreSQL user of .* \\(storage\\.url\\) may not create the schema ${schema} \\(storage\\.schema\\) or tables in it; create the schema for it`, 'm'));
      // Once an administrator has made the schema for it, the same user migrates into it.
      await admin.query(`create schema "${schema}" authorization "${role}"`);
      const migrated = await runShoal(['migrate'], { cwd: dir });
      assert.equal(migrated.code, 0, migrated.stderr);
      const tables = await admin.query<{ n: string }>('select count(*) as n from information_schema.tables where table_schema = $1 and table_name = $2', [schema, 'accounts']);
      assert.equal(tables.rows[0]?.n, '1');
    } finally {
      await drop();
      await admin.query(`drop role if exists "${role}"`);
      await admin.end();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two servers on one database, each in its own schema (storage.schema), do not see each other\'s accounts', { skip }, async () => {
  const schemas: TestSchema[] = [await reserveTestSchema(), await reserveTestSchema()];
  const running = new Set<TestServer>();
  const dirs: string[] = [];
  const start = async (settings: Record<string, unknown>, dir?: string): Promise<TestServer> => {
    const srv = await startTestServer(settings, dir === undefined ? {} : { dir });
    running.add(srv);
    if (dir === undefined) dirs.push(srv.dir);
    return srv;
  };
  try {
    // One after the other: the second finds the first's migration tables in the database, not in its schema.
    const [a, b] = [
      await start({ storage: { driver: 'postgres', url: schemas[0]!.url, schema: schemas[0]!.schema, pool: 2 } }),
      await start({ storage: { driver: 'postgres', url: schemas[1]!.url, schema: schemas[1]!.schema, pool: 2 } }),
    ];
    await a.addUser('alice', 'alice-pass');
    await b.addUser('bob', 'bob-pass');
    assert.equal(await a.server.storage.accounts.exists('localhost', 'bob'), false);
    assert.equal(await b.server.storage.accounts.exists('localhost', 'alice'), false);

    // Over XMPP: alice logs in to her server only, bob to his.
    const restore = trustCertificate(serverCertificate(a.dir));
    try {
      (await login(a.port, 'alice', 'alice-pass')).client.close();
      (await login(b.port, 'bob', 'bob-pass')).client.close();
      await assert.rejects(login(b.port, 'alice', 'alice-pass'), /not-authorized/);
      await assert.rejects(login(a.port, 'bob', 'bob-pass'), /not-authorized/);
    } finally {
      restore();
    }

    // The tables and the migrations' bookkeeping are in each schema, every migration recorded there once.
    const db = a.server.storage.sql.db<unknown>();
    const tables = await sql<{ schema: string; n: number }>`
      select table_schema as schema, count(*) as n from information_schema.tables
      where table_schema in (${schemas[0]!.schema}, ${schemas[1]!.schema}) and table_name in ('accounts', 'kysely_migration', 'shoal_migrations_offline')
      group by table_schema order by table_schema`.execute(db);
    assert.deepEqual(tables.rows, schemas.map((s) => ({ schema: s.schema, n: 3 })).sort((x, y) => x.schema.localeCompare(y.schema)));
    const applied = await sql<{ schema: string; n: number }>`select current_schema() as schema, count(*) as n from kysely_migration`.execute(db);
    assert.deepEqual(applied.rows, [{ schema: schemas[0]!.schema, n: Object.keys(migrations('postgres')).length }]);

    // Restarted on its schema: nothing to migrate, alice still there.
    running.delete(a);
    await a.stop({ keep: true });
    const again = await start({}, a.dir);
    assert.equal(await again.server.storage.accounts.exists('localhost', 'alice'), true);
    assert.equal(await again.server.storage.accounts.exists('localhost', 'bob'), false);
  } finally {
    for (const srv of running) await srv.stop({ keep: true });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    for (const s of schemas) await s.drop();
  }
});
