// The archive as an operator sees it: the mam configuration section (retention
// limits, turning archiving off) on a real server, and `shoal mam purge`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate, xml, type XmlElement } from './support/xmppjs.js';
import { XjsClient } from './support/im-clients.js';
import { runShoal } from './support/cli.js';
import { SqlMamStore } from '../src/modules/mam/store.js';
import type { MamApi } from '../src/modules/mam/api.js';

const NS_MAM = 'urn:xmpp:mam:2';
const NS_SID = 'urn:xmpp:sid:0';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

async function withServer(settings: Record<string, unknown>, fn: (srv: TestServer, connect: (user: string) => Promise<XjsClient>) => Promise<void>): Promise<void> {
  const srv = await startTestServer(settings);
  const restore = trustCertificate(serverCertificate(srv.dir));
  const clients: XjsClient[] = [];
  try {
    for (const u of ['alice', 'bob']) await srv.addUser(u, `${u}-pass`);
    const caFile = join(srv.dir, 'data', 'tls', 'self-signed.crt');
    await fn(srv, async (user) => {
      const c = await XjsClient.connect({ port: srv.port, user, password: `${user}-pass`, caFile });
      clients.push(c);
      return c;
    });
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    restore();
    await srv.stop();
  }
}

describe('mam configuration and shoal mam purge', () => {
  test('max_per_user is enforced by the retention pass; shoal mam purge deletes before a date, then all', async () => {
    await withServer({ mam: { max_per_user: 3 } }, async (srv, connect) => {
      const bob = await connect('bob');
      for (let i = 0; i < 5; i++) await bob.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, `m${i}`)));
      await bob.ping();
      const store = await SqlMamStore.open(srv.server.storage.sql);
      assert.equal(await store.size('localhost', 'alice'), 5, 'recipient side, alice offline');
      assert.equal(await store.size('localhost', 'bob'), 5, 'sender side');

      assert.equal(await srv.server.module<MamApi>('mam').retention(), 4);
      const left = await (await store.reader('localhost', 'alice')).page({}, 10, false);
      assert.deepEqual(left.map((m) => /<body>(m\d)</.exec(m.stanza)?.[1]), ['m2', 'm3', 'm4'], 'the newest are kept');

      // The CLI, on the same database while the server runs.
      const cwd = srv.dir;
      const none = await runShoal(['mam', 'purge', 'alice@localhost', '--before', '2000-01-01'], { cwd });
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /deleted 0 archived message\(s\) of alice@localhost archived before 2000-01-01T00:00:00.000Z/);
      const all = await runShoal(['mam', 'purge', 'alice@localhost'], { cwd });
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stdout, /deleted 3 archived message\(s\) of alice@localhost/);
      assert.equal(await store.size('localhost', 'alice'), 0);
      assert.equal(await store.size('localhost', 'bob'), 3, 'only that account');

      const bad = await runShoal(['mam', 'purge', 'alice@localhost', '--before', 'last tuesday'], { cwd });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /invalid --before/);
      // Deleting the account deletes its archive.
      const del = await runShoal(['user', 'del', 'bob@localhost'], { cwd });
      assert.equal(del.code, 0, del.stderr);
      assert.equal(await store.size('localhost', 'bob'), 0);
      const rows = await srv.server.storage.sql.db<{ mam_messages: { seq: number } }>().selectFrom('mam_messages').select('seq').execute();
      assert.equal(rows.length, 0, 'no message of bob\'s is left');
      const unknown = await runShoal(['mam', 'purge', 'nobody@localhost'], { cwd });
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /does not exist/);
    });
  });

  test('mam.enabled false: no features, no stanza-id, no archive query', async () => {
    await withServer({ mam: { enabled: false } }, async (_srv, connect) => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      await alice.presence();
      await alice.ping();
      const info = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: NS_DISCO_INFO })), 10_000);
      const features = info.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(!features.includes(NS_MAM) && !features.includes(NS_SID), String(features));
      let got: XmlElement | undefined;
      alice.xmpp.on('stanza', (el: XmlElement) => {
        if (el.is('message') && el.getChildText('body') === 'unarchived') got = el;
      });
      await bob.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'unarchived')));
      await bob.ping();
      await alice.ping();
      for (let i = 0; i < 100 && !got; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(got, 'delivered');
      assert.equal(got.getChild('stanza-id', NS_SID), undefined);
      const err = await alice.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_MAM })), 10_000).then(
        () => 'no error',
        (e: { condition?: string }) => e.condition,
      );
      assert.equal(err, 'service-unavailable');
    });
  });
});
