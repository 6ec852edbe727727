// Issue 3, "data survives a server restart": a first server is used by real
// clients (xmpp.js and slixmpp), stopped, and a second server is started on the
// same directory and shoal.yaml, as an operator restarting Shoal would. Between
// the two logins: accounts (SCRAM credentials), roster items with names, groups
// and subscription states, the roster version, pending subscription requests in
// both directions, vCards with the avatar hash, offline messages (in order, with
// their delay) and the blocklist must all still be there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate } from './support/xmppjs.js';
import { SlixClient, XjsClient, isMessage, isPresence, isPush, slixmppMissing, type AnyClient, type ClientKind, type StanzaView } from './support/im-clients.js';
import { befriend } from './support/im-scenarios.js';
import type { OfflineApi } from '../src/modules/offline/api.js';
import { until } from './support/until.js';

/** Without -PLUS, so that slixmpp 1.8 can use SCRAM (see test/slixmpp.test.ts). */
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };
const noSlix = slixmppMissing();
/** bob is the slixmpp user when slixmpp is there (the others use xmpp.js). */
const BOB: ClientKind = noSlix ? 'xmpp.js' : 'slixmpp';

async function connect(srv: TestServer, kind: ClientKind, user: string, clients: AnyClient[]): Promise<AnyClient> {
  const opts = { port: srv.port, user, password: `${user}-pass`, caFile: join(srv.dir, 'data', 'tls', 'self-signed.crt') };
  const c = kind === 'xmpp.js' ? await XjsClient.connect(opts) : await SlixClient.connect({ ...opts, mech: 'SCRAM-SHA-256' });
  clients.push(c);
  return c;
}

test(`restart between two logins: accounts, roster, subscriptions, vCard, offline messages and blocklist survive (bob=${BOB})`, async (t) => {
  const clients: AnyClient[] = [];
  let srv: TestServer | undefined = await startTestServer({ sasl: NO_PLUS });
  const dir = srv.dir;
  let restoreTls = trustCertificate(serverCertificate(dir));
  t.after(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    restoreTls();
    await srv?.stop();
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await srv.addUser(u, `${u}-pass`);
  const image = Buffer.from('a small avatar, stored across restarts');
  const avatarHash = createHash('sha1').update(image).digest('hex');

  // --- First server ------------------------------------------------------------------
  let rosterVersion: string;
  {
    const alice = await connect(srv, 'xmpp.js', 'alice', clients);
    await alice.rosterGet();
    await alice.presence();
    const bob = await connect(srv, BOB, 'bob', clients);
    await bob.rosterGet();
    await bob.presence();
    // alice and bob: mutual subscription, and a name and groups on her side.
    await befriend(alice, bob);
    await alice.rosterSet(bob.bare, 'Bobby', ['Friends', 'Work']);
    await alice.next(isPush(bob.bare, 'both'), 'push of the renamed item');
    // alice: a vCard with a photo, and dave blocked.
    await alice.vcardSet({ fn: 'Alice Restart', nickname: 'ally', photo: { type: 'image/png', base64: image.toString('base64') } });
    await alice.block(['dave@localhost']);
    // bob leaves; alice writes to him, three times.
    await bob.logout();
    for (const body of ['before the restart 1', 'before the restart 2', 'before the restart 3']) await alice.message('bob@localhost', body);
    // carol asks bob for a subscription while he is away (pending both ways).
    const carol = await connect(srv, 'xmpp.js', 'carol', clients);
    await carol.rosterGet();
    await carol.presence();
    await carol.subscribe('bob@localhost');
    await carol.next(isPush('bob@localhost', 'none'), 'pending push');
    await alice.ping();
    assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'bob'), 3);
    // The version alice's client caches.
    const cached = await alice.rosterGet('');
    rosterVersion = cached.ver!;
    assert.ok(rosterVersion);
    await alice.logout();
    // carol is still connected when the server goes down: she is told (RFC 6120 §4.9.3.22).
    const certBefore = serverCertificate(dir);
    await srv.stop({ keep: true });
    await carol.waitClosed();
    assert.ok((carol as XjsClient).errors.some((e) => e.condition === 'system-shutdown'), 'carol was told: system-shutdown');
    srv = undefined;

    // --- Second server, same directory and configuration ------------------------------
    srv = await startTestServer({}, { dir });
    assert.equal(serverCertificate(dir), certBefore, 'the same certificate (key material kept in the data directory)');
    restoreTls();
    restoreTls = trustCertificate(serverCertificate(dir));
  }
  assert.match(readFileSync(join(dir, 'shoal.yaml'), 'utf8'), /SCRAM-SHA-256/, 'the same configuration file');

  // Accounts: the same passwords still log in (SCRAM-SHA-1 for xmpp.js, SCRAM-SHA-256 for slixmpp).
  const alice = await connect(srv, 'xmpp.js', 'alice', clients);
  // RFC 6121 §2.6.3: the version cached before the restart is still current: empty result, no push.
  const same = await alice.rosterGet(rosterVersion);
  assert.equal(same.empty, true, 'the cached version is still known and current');
  await alice.ping();
  assert.equal(alice.count((s) => s.kind === 'iq' && s.type === 'set' && s.roster !== undefined), 0, 'no push: nothing changed');
  const full = await alice.rosterGet('');
  assert.equal(full.ver, rosterVersion);
  const bobItem = full.items.find((i) => i.jid === 'bob@localhost');
  assert.deepEqual(bobItem && { subscription: bobItem.subscription, ask: bobItem.ask, name: bobItem.name, groups: bobItem.groups }, {
    subscription: 'both',
    ask: null,
    name: 'Bobby',
    groups: ['Friends', 'Work'],
  });
  assert.deepEqual(await alice.blocklist(), ['dave@localhost']);
  await alice.presence({ status: 'after the restart' });

  // bob: the offline messages, in order and with their delay; the pending request; alice online.
  const bob = await connect(srv, BOB, 'bob', clients);
  const bobRoster = await bob.rosterGet('');
  assert.equal(bobRoster.items.find((i) => i.jid === 'alice@localhost')?.subscription, 'both');
  assert.notEqual(bobRoster.items.find((i) => i.jid === 'carol@localhost')?.subscription ?? 'none', 'from', 'carol not approved yet');
  await bob.presence({ status: 'bob after the restart' });
  const got: StanzaView[] = [];
  for (const body of ['before the restart 1', 'before the restart 2', 'before the restart 3']) got.push(await bob.next(isMessage(body), body));
  assert.deepEqual(got.map((m) => bob.history.indexOf(m)), [...got.map((m) => bob.history.indexOf(m))].sort((x, y) => x - y), 'in order');
  for (const m of got) {
    assert.equal(m.delay?.from, 'localhost');
    assert.ok(m.delay?.stamp, 'XEP-0203 stamp kept');
    assert.match(m.from ?? '', /^alice@localhost\//);
  }
  // The rows go once the messages are written to bob's connection; on PostgreSQL that can be after they arrived.
  await until(async () => (await srv.server.module<OfflineApi>('offline').count('localhost', 'bob')) === 0, 'the offline messages to leave storage once delivered');
  await bob.next(isPresence('carol@localhost', 'subscribe'), 'carol\'s request, kept across the restart');
  // The subscription survived: each gets the other's presence (broadcast and probe answer),
  // alice's with the avatar hash read back from storage (XEP-0153).
  const aliceSeen = await bob.next((s) => s.kind === 'presence' && s.type === null && (s.from ?? '').startsWith('alice@localhost/'), "alice's presence");
  assert.equal(aliceSeen.status, 'after the restart');
  assert.equal(aliceSeen.photo, avatarHash);
  assert.equal((await alice.next(isPresence(bob.jid), "bob's presence")).status, 'bob after the restart');
  // vCard.
  const card = await bob.vcardGet('alice@localhost');
  assert.deepEqual(card, { fn: 'Alice Restart', nickname: 'ally', photo: image.toString('base64') });

  // carol's side of her request: still pending (ask), and bob can now approve it.
  const carol = await connect(srv, 'xmpp.js', 'carol', clients);
  const carolRoster = await carol.rosterGet('');
  const pending = carolRoster.items.find((i) => i.jid === 'bob@localhost');
  assert.deepEqual(pending && { subscription: pending.subscription, ask: pending.ask }, { subscription: 'none', ask: 'subscribe' });
  await carol.presence();
  await bob.approve('carol@localhost');
  await carol.next(isPresence('bob@localhost', 'subscribed'), 'approved after the restart');
  await carol.next(isPush('bob@localhost', 'to'), 'push to');

  // The blocklist is enforced, not only listed: dave cannot reach alice.
  const dave = await connect(srv, 'xmpp.js', 'dave', clients);
  await dave.message('alice@localhost', 'are you there?');
  const bounce = await dave.next((s) => s.kind === 'message' && s.type === 'error', 'the bounce');
  assert.equal(bounce.error?.condition, 'service-unavailable');

  // A wrong password is still refused (the credentials were not replaced by anything permissive).
  await assert.rejects(
    XjsClient.connect({ port: srv.port, user: 'alice', password: 'wrong', caFile: join(dir, 'data', 'tls', 'self-signed.crt') }),
    (err: Error & { condition?: string }) => err.condition === 'not-authorized',
  );
});
