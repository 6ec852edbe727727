// Interoperability with a second, independent client library: slixmpp (Python,
// Debian's python3-slixmpp), driven by test/slixmpp/client.py against a real
// Shoal server, with an xmpp.js client as the peer that echoes its message.
// The script reports each step as a JSON line; the server's log is captured to
// check the server's side (mechanism run, JID bound, session ended).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { runSlixmppScript, slixmppMissing, type ScriptRun } from './support/slixmpp.js';
import { LogCapture, serverCertificate, startXmppJs, trustCertificate, waitUntil, xml, type XmlElement, type XmppJsSession } from './support/xmppjs.js';

const GENERATED_JID = (user: string): RegExp => new RegExp(`^${user}@localhost/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`);
const skip = slixmppMissing();

/** An xmpp.js session that answers every chat message with "echo: <body>" and remembers what it got. */
async function echoPeer(port: number, username: string, password: string): Promise<XmppJsSession & { received: XmlElement[] }> {
  const peer = await startXmppJs({ port, username, password });
  const received: XmlElement[] = [];
  peer.xmpp.on('stanza', (el: XmlElement) => {
    const body = el.getChildText('body');
    if (!el.is('message') || body === null || el.attrs.type === 'error') return;
    received.push(el);
    void peer.xmpp.send(xml('message', { to: el.attrs.from, type: 'chat' }, xml('body', {}, `echo: ${body}`)));
  });
  await peer.xmpp.send(xml('presence'));
  return { ...peer, received };
}

interface Env {
  srv: TestServer;
  log: LogCapture;
  ca: string;
  peer: XmppJsSession & { received: XmlElement[] };
  restoreTls: () => void;
}

async function startEnv(settings: Record<string, unknown>): Promise<Env> {
  const log = new LogCapture();
  const srv = await startTestServer(settings, { log: log.logger });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  const restoreTls = trustCertificate(serverCertificate(srv.dir));
  const peer = await echoPeer(srv.port, 'bob', 'bob-pass');
  return { srv, log, ca: join(srv.dir, 'data', 'tls', 'self-signed.crt'), peer, restoreTls };
}

async function stopEnv(env: Env | undefined): Promise<void> {
  if (!env) return;
  await env.peer.xmpp.stop().catch(() => undefined);
  env.restoreTls();
  await env.srv.stop();
}

const aliceArgs = (env: Env, extra: string[] = []): string[] => [
  '--port', String(env.srv.port), '--jid', 'alice@localhost', '--password', 'alice-pass', '--peer', 'bob@localhost', '--ca', env.ca, ...extra,
];

/** The whole scripted session succeeded, and the server agrees about each step. */
async function assertFullSession(env: Env, run: ScriptRun, mechanism: string): Promise<void> {
  assert.equal(run.code, 0, `slixmpp failed:\n${run.events.map((e) => JSON.stringify(e)).join('\n')}\n${run.stderr}`);
  assert.equal(run.get('done').ok, true);
  // STARTTLS, with the certificate verified against the server's own (chain and host name).
  const tlsInfo = run.get('tls');
  assert.equal(tlsInfo.version, 'TLSv1.3');
  assert.equal(tlsInfo.verified_with_ca, true);
  assert.deepEqual(tlsInfo.peer_cert_subject, { commonName: 'localhost' });
  // The <auth/> on the wire, and SASL success.
  assert.deepEqual(run.all('auth_sent').map((e) => e.mechanism), [mechanism], 'one attempt, with the requested mechanism');
  assert.equal(run.get('auth').mechanism, mechanism);
  const jid = run.get('bound').jid as string;
  assert.match(jid, GENERATED_JID('alice'));
  // XEP-0199: the server itself answered the ping.
  assert.deepEqual({ type: run.get('ping').type, from: run.get('ping').from }, { type: 'result', from: 'localhost' });
  // The message reached the peer from alice's full JID, and the echo came back from bob's.
  const reply = run.get('reply');
  assert.equal(reply.from, env.peer.jid);
  assert.equal(reply.to, jid);
  assert.equal(reply.body, 'echo: hello from slixmpp');
  const got = env.peer.received.find((m) => m.attrs.from === jid);
  assert.ok(got, 'the peer got the message from the bound JID');
  assert.equal(got.getChildText('body'), 'hello from slixmpp');
  // RFC 6121 §2.6: slixmpp saw the roster versioning feature and got a version.
  const roster = run.get('roster');
  assert.equal(roster.rosterver_feature, true);
  assert.equal(typeof roster.ver, 'string');
  assert.equal(roster.items, 0);
  assert.ok(run.get('disconnected'));

  // The server's view of the same connection: TLS, then this mechanism, then this JID, then the end.
  const bind = await env.log.waitFor((r) => r.event === 'bind' && r.jid === jid, `bind of ${jid}`);
  // Refused attempts that were protocol mismatches (tls-unique, 'y') may come before the one that counts.
  const conn = env.log.find((r) => r.conn === bind.conn && r.event !== undefined && r.event !== 'auth-mismatch');
  assert.deepEqual(conn.slice(0, 4).map((r) => r.event), ['connect', 'tls', 'auth', 'bind']);
  assert.equal(conn[2]!.mechanism, mechanism);
  assert.equal(conn[2]!.user, 'alice@localhost');
  await env.log.waitFor((r) => r.event === 'disconnect' && r.jid === jid, `server-side end of ${jid}`);
  await waitUntil(() => env.srv.server.router.getSessions('alice@localhost').length === 0, 'alice\'s session to be unregistered');
  assert.equal(env.srv.server.router.size, 1, 'only the peer is left');
}

describe('slixmpp against a server offering SCRAM without -PLUS', { skip }, () => {
  // slixmpp always has tls-unique data on a TLS socket, so for a non-PLUS SCRAM it
  // sends the gs2 flag "y" ("I could bind, I think you cannot"). That is only
  // acceptable when the server did not advertise -PLUS (RFC 5802 §6).
  let env: Env | undefined;
  before(async () => {
    env = await startEnv({ sasl: { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] } });
  });
  after(() => stopEnv(env));

  test('SCRAM-SHA-256 (use_mech): TLS, login, bind, presence, ping, message and reply, roster, logout', async () => {
    const run = await runSlixmppScript(aliceArgs(env!, ['--mech', 'SCRAM-SHA-256']));
    assert.equal(run.get('auth_sent').gs2_header, 'y,,');
    await assertFullSession(env!, run, 'SCRAM-SHA-256');
  });

  test('SCRAM-SHA-1 (use_mech)', async () => {
    const run = await runSlixmppScript(aliceArgs(env!, ['--mech', 'SCRAM-SHA-1']));
    await assertFullSession(env!, run, 'SCRAM-SHA-1');
  });

  test('slixmpp\'s own choice among the offered mechanisms is SCRAM-SHA-512', async () => {
    const run = await runSlixmppScript(aliceArgs(env!));
    await assertFullSession(env!, run, 'SCRAM-SHA-512');
  });

  test('without the server\'s certificate as CA, slixmpp refuses the TLS handshake (verification is on)', async () => {
    const run = await runSlixmppScript(['--port', String(env!.srv.port), '--jid', 'alice@localhost', '--password', 'alice-pass', '--peer', 'bob@localhost', '--mech', 'PLAIN']);
    assert.equal(run.code, 1);
    assert.match(String(run.get('error').message), /CERTIFICATE_VERIFY_FAILED/);
    assert.equal(run.all('auth_sent').length, 0, 'no credentials sent');
    await env!.log.waitFor((r) => r.event === 'tls-failed', 'the server-side handshake failure');
  });

  test('a wrong password: SASL not-authorized, non-zero exit, nothing bound', async () => {
    const run = await runSlixmppScript(['--port', String(env!.srv.port), '--jid', 'alice@localhost', '--password', 'wrong', '--peer', 'bob@localhost', '--ca', env!.ca, '--mech', 'SCRAM-SHA-256']);
    assert.equal(run.code, 1);
    assert.equal(run.get('done').ok, false);
    const failed = run.get('auth_failed');
    assert.equal(failed.mechanism, 'SCRAM-SHA-256');
    assert.equal(failed.condition, 'not-authorized');
    assert.equal(run.all('bound').length, 0);
    const logged = await env!.log.waitFor((r) => r.event === 'auth-failure' && r.mechanism === 'SCRAM-SHA-256', 'auth-failure');
    assert.equal(logged.condition, 'not-authorized');
    assert.equal(env!.srv.server.router.getSessions('alice@localhost').length, 0);
  });
});

describe('slixmpp against the default mechanisms with sasl.tls_unique_fallback', { skip }, () => {
  let env: Env | undefined;
  before(async () => {
    env = await startEnv({ sasl: { tls_unique_fallback: true } });
  });
  after(() => stopEnv(env));

  test("after its tls-unique attempts, slixmpp's SCRAM with 'y' is accepted: SCRAM-SHA-512", async () => {
    const run = await runSlixmppScript(aliceArgs(env!));
    const tried = run.all('auth_sent').map((e) => `${String(e.mechanism)} ${String(e.gs2_header)}`);
    assert.deepEqual(tried, [
      'SCRAM-SHA-512-PLUS p=tls-unique,,',
      'SCRAM-SHA-256-PLUS p=tls-unique,,',
      'SCRAM-SHA-1-PLUS p=tls-unique,,',
      'SCRAM-SHA-512 y,,',
    ]);
    await assertFullSession(env!, { ...run, all: (kind: string) => (kind === 'auth_sent' ? run.all(kind).slice(-1) : run.all(kind)) }, 'SCRAM-SHA-512');
  });
});

describe('slixmpp against the default mechanisms (with -PLUS)', { skip }, () => {
  // slixmpp 1.8 only knows the tls-unique channel binding (the one CPython's ssl
  // exposes). Shoal offers tls-exporter and tls-server-end-point (RFC 9266 forbids
  // tls-unique on TLS 1.3; Shoal does not implement it on 1.2 either), so every
  // -PLUS attempt fails, and a non-PLUS SCRAM with "y" is a downgrade (RFC 5802 §6).
  let env: Env | undefined;
  before(async () => {
    env = await startEnv({});
  });
  after(() => stopEnv(env));

  for (const tlsMax of ['1.3', '1.2']) {
    test(`SCRAM-SHA-256-PLUS over TLS ${tlsMax}: the server refuses slixmpp's tls-unique binding`, async () => {
      const run = await runSlixmppScript(aliceArgs(env!, ['--mech', 'SCRAM-SHA-256-PLUS', '--tls-max', tlsMax]));
      assert.equal(run.code, 1);
      assert.equal(run.get('tls').version, `TLSv${tlsMax}`);
      assert.equal(run.get('auth_sent').gs2_header, 'p=tls-unique,,');
      const failed = run.get('auth_failed');
      assert.equal(failed.mechanism, 'SCRAM-SHA-256-PLUS');
      assert.equal(failed.condition, 'not-authorized');
      assert.match(String(failed.text), /tls-unique/);
      assert.equal(run.all('bound').length, 0);
    });
  }

  test('SCRAM-SHA-1 with gs2 flag "y" while -PLUS is advertised: refused as a downgrade', async () => {
    const run = await runSlixmppScript(aliceArgs(env!, ['--mech', 'SCRAM-SHA-1']));
    assert.equal(run.code, 1);
    assert.equal(run.get('auth_sent').gs2_header, 'y,,');
    const failed = run.get('auth_failed');
    assert.equal(failed.condition, 'not-authorized');
    assert.match(String(failed.text), /downgrade/i);
    // A protocol mismatch, not a password guess: logged as such, not counted (hardening 16).
    const logged = await env!.log.waitFor((r) => r.event === 'auth-mismatch' && r.mechanism === 'SCRAM-SHA-1', 'auth-mismatch');
    assert.equal(logged.mismatch, 'downgrade');
  });

  test("slixmpp's own choice (poezio on Debian 12): its refused tls-unique and 'y' attempts are not counted, it logs in with PLAIN, no stream error", async () => {
    const run = await runSlixmppScript(aliceArgs(env!));
    const tried = run.all('auth_sent').map((e) => e.mechanism);
    assert.ok(tried.length > 5, `more refused attempts than sasl.max_attempts (5): ${tried.join(', ')}`);
    assert.equal(run.all('error').length, 0, run.events.map((e) => JSON.stringify(e)).join('\n'));
    await assertFullSession(env!, { ...run, all: (kind: string) => (kind === 'auth_sent' ? run.all(kind).slice(-1) : run.all(kind)) }, 'PLAIN');
  });

  test('PLAIN over STARTTLS (use_mech) works against the default configuration', async () => {
    const run = await runSlixmppScript(aliceArgs(env!, ['--mech', 'PLAIN']));
    await assertFullSession(env!, run, 'PLAIN');
  });
});
