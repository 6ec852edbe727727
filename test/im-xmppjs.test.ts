// Issue 3 with real clients, xmpp.js in the lead: every scenario of
// test/support/im-scenarios.ts with xmpp.js playing the user (and the third
// party), slixmpp the contact; then what only the xmpp.js side checks.
import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate } from './support/xmppjs.js';
import { XjsClient, slixmppMissing } from './support/im-clients.js';
import { NO_STREAM_MANAGEMENT, registerImScenarios, registerKeepaliveScenario, type ImEnv } from './support/im-scenarios.js';

/** Without -PLUS, so that slixmpp 1.8 can use SCRAM (see test/slixmpp.test.ts). */
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };

const noSlix = slixmppMissing();
let srv: TestServer;
let env: ImEnv;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({ sasl: NO_PLUS, ...NO_STREAM_MANAGEMENT });
  restoreTls = trustCertificate(serverCertificate(srv.dir));
  env = { srv, caFile: join(srv.dir, 'data', 'tls', 'self-signed.crt'), slixMech: 'SCRAM-SHA-256' };
});
after(async () => {
  restoreTls();
  await srv.stop();
});

describe(noSlix ? `xmpp.js only (${noSlix})` : 'xmpp.js with slixmpp', () => {
  registerImScenarios(() => env, noSlix ? { a: 'xmpp.js', b: 'xmpp.js', c: 'xmpp.js' } : { a: 'xmpp.js', b: 'slixmpp', c: 'xmpp.js' });
});

describe(noSlix ? 'keepalive, xmpp.js only' : 'keepalive: xmpp.js goes silent, slixmpp watches', () => {
  registerKeepaliveScenario(noSlix ? { a: 'xmpp.js', b: 'xmpp.js' } : { a: 'xmpp.js', b: 'slixmpp' }, { sasl: NO_PLUS, ...NO_STREAM_MANAGEMENT }, 'SCRAM-SHA-256');
});

describe('roster.versioning: full (xmpp.js)', () => {
  // RFC 6121 §2.6.3 lets a server answer a known-but-old version with the whole roster
  // instead of pushes; Shoal does that when configured with `roster.versioning: full`.
  test('an old version gets the full roster and the current version, the current one an empty result', async (t) => {
    const full = await startTestServer({ sasl: NO_PLUS, roster: { versioning: 'full' } });
    const restore = trustCertificate(serverCertificate(full.dir));
    t.after(async () => {
      restore();
      await full.stop();
    });
    await full.addUser('alice', 'alice-pass');
    const alice = await XjsClient.connect({ port: full.port, user: 'alice', password: 'alice-pass', caFile: join(full.dir, 'data', 'tls', 'self-signed.crt') });
    t.after(() => alice.dispose());
    const v0 = (await alice.rosterGet('')).ver;
    assert.ok(v0);
    await alice.rosterSet('one@localhost', 'One');
    await alice.rosterSet('two@localhost', 'Two');
    const old = await alice.rosterGet(v0);
    assert.equal(old.empty, false);
    assert.deepEqual(old.items.map((i) => [i.jid, i.name]), [['one@localhost', 'One'], ['two@localhost', 'Two']]);
    assert.notEqual(old.ver, v0);
    const current = await alice.rosterGet(old.ver!);
    assert.equal(current.empty, true);
    await alice.ping();
    // Only the two pushes of the sets themselves (§2.1.6), none from the gets.
    assert.equal(alice.count((s) => s.kind === 'iq' && s.type === 'set' && s.roster !== undefined), 2);
  });
});
