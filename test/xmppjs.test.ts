// Interoperability with a real, independent client library: xmpp.js
// (@xmpp/client 0.14) logs in to a real Shoal server over STARTTLS and uses it.
// The server's own log is captured to check the server's side of each step
// (which SASL mechanism it ran, which JID it bound), not only the client's view.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type tls from 'node:tls';
import { startTestServer, type TestServer } from './support/server.js';
import {
  LogCapture,
  createXmppJs,
  serverCertificate,
  startXmppJs,
  trustCertificate,
  waitUntil,
  withTimeout,
  xml,
  type LogRecord,
  type XmppJsSession,
} from './support/xmppjs.js';

const NS_PING = 'urn:xmpp:ping';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_ROSTER = 'jabber:iq:roster';
/** The server's default resource policy generates a UUID (RFC 6120 §7.6). */
const GENERATED_JID = (user: string): RegExp => new RegExp(`^${user}@localhost/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`);

let srv: TestServer;
let log: LogCapture;
let restoreTls: () => void;

before(async () => {
  log = new LogCapture();
  srv = await startTestServer({}, { log: log.logger });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  // The server generated its self-signed certificate at start; trust exactly it.
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

/** The server's log records for the connection that logged `event` for `jid` (bind) or `user` (auth). */
function connectionOf(record: LogRecord): LogRecord[] {
  return log.find((r) => r.conn === record.conn);
}

test('xmpp.js: STARTTLS with a verified certificate, SCRAM-SHA-1, bind, chat, ping, disco, roster, logout', async () => {
  const alice = await startXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' });
  // RFC 6120 §7.6: bob asks for a resource; the default policy replaces it with a generated one.
  const bob = await startXmppJs({ port: srv.port, username: 'bob', password: 'bob-pass', resource: 'xmppjs' });
  const sessions: XmppJsSession[] = [alice, bob];
  try {
    // The client's view: TLS really happened, and the certificate verified against the trusted CA.
    for (const s of sessions) {
      assert.ok(s.xmpp.isSecure());
      const sock = s.xmpp.socket?.socket as tls.TLSSocket;
      assert.equal(sock.encrypted, true, 'STARTTLS upgraded the socket');
      assert.equal(sock.authorized, true, `certificate verified: ${String(sock.authorizationError)}`);
      // xmpp.js prefers SCRAM-SHA-1 over PLAIN and knows no other mechanism.
      assert.deepEqual(s.authMechanisms, ['SCRAM-SHA-1']);
    }
    assert.match(alice.jid, GENERATED_JID('alice'));
    assert.match(bob.jid, GENERATED_JID('bob'), 'requested resource ignored');

    // The server's view: TLS first, then SCRAM-SHA-1, then the same JID bound, on one connection.
    for (const [s, user] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const bind = await log.waitFor((r) => r.event === 'bind' && r.jid === s.jid, `bind of ${s.jid}`);
      const events = connectionOf(bind);
      const names = events.map((r) => r.event).filter((e) => e !== undefined);
      assert.deepEqual(names.slice(0, 4), ['connect', 'tls', 'auth', 'bind']);
      const auth = events.find((r) => r.event === 'auth')!;
      assert.equal(auth.mechanism, 'SCRAM-SHA-1');
      assert.equal(auth.user, `${user}@localhost`);
    }

    // RFC 6121 §5: a chat message from bob to alice's bare JID reaches her, stamped with bob's full JID.
    await alice.xmpp.send(xml('presence'));
    await bob.xmpp.send(xml('presence'));
    await bob.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'hello from bob')));
    const msg = await alice.nextStanza((el) => el.is('message') && el.attrs.id === 'm1', 'the chat message');
    assert.equal(msg.attrs.from, bob.jid);
    assert.equal(msg.attrs.type, 'chat');
    assert.equal(msg.getChildText('body'), 'hello from bob');
    assert.ok(msg.attrs.to === alice.jid || msg.attrs.to === 'alice@localhost', `to: ${msg.attrs.to}`);

    // XEP-0199 §4.2: the server answers a ping with an empty result.
    const pong = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS_PING })), 5000);
    assert.equal(pong.attrs.type, 'result');
    assert.equal(pong.attrs.from, 'localhost');
    assert.equal(pong.children.length, 0);

    // XEP-0030 §3.1: the server's identity and features, including ping.
    const info = await alice.xmpp.iqCaller.get(xml('query', { xmlns: NS_DISCO_INFO }), 'localhost', 5000);
    assert.ok(info, 'disco#info query in the result');
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(NS_PING), `features: ${features.join(' ')}`);
    assert.ok(features.includes(NS_DISCO_INFO));
    assert.ok(info.getChildren('identity').some((i) => i.attrs.category === 'server'));

    // RFC 6121 §2.6: a client that supports versioning sends ver (empty: nothing cached) and gets one back.
    const roster = await alice.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER, ver: '' }), undefined, 5000);
    assert.ok(roster, 'roster query in the result');
    assert.equal(typeof roster.attrs.ver, 'string');
    assert.ok(roster.attrs.ver!.length > 0, 'a non-empty version');
    assert.equal(roster.getChildren('item').length, 0, 'nobody on a new account\'s roster');
    // RFC 6121 §2.6.3: asking with the current version gives an empty result (no query).
    const same = await alice.xmpp.iqCaller.get(xml('query', { xmlns: NS_ROSTER, ver: roster.attrs.ver }), undefined, 5000);
    assert.equal(same, undefined);
  } finally {
    // RFC 6120 §4.4: xmpp.js closes the stream and waits for the server's closing tag.
    await Promise.all(sessions.map((s) => withTimeout(s.xmpp.stop(), 5000, 'xmpp.stop()')));
  }
  for (const s of sessions) {
    assert.equal(s.xmpp.status, 'offline');
    await log.waitFor((r) => r.event === 'disconnect' && r.jid === s.jid, `server-side disconnect of ${s.jid}`);
  }
  await waitUntil(() => srv.server.router.size === 0, 'the session registry to empty');
  assert.equal(srv.server.router.getSessions('alice@localhost').length, 0);
});

test('xmpp.js: a wrong password is rejected with SASL not-authorized', async () => {
  const { xmpp, authMechanisms } = createXmppJs({ port: srv.port, username: 'alice', password: 'wrong' });
  try {
    await assert.rejects(withTimeout(xmpp.start(), 5000, 'the login to fail'), (err: Error & { condition?: string }) => {
      assert.equal(err.name, 'SASLError');
      assert.equal(err.condition, 'not-authorized');
      return true;
    });
    assert.deepEqual(authMechanisms, ['SCRAM-SHA-1']);
    const failure = await log.waitFor((r) => r.event === 'auth-failure' && r.mechanism === 'SCRAM-SHA-1', 'auth-failure');
    assert.equal(failure.condition, 'not-authorized');
  } finally {
    await withTimeout(xmpp.stop(), 5000, 'xmpp.stop()');
  }
  assert.equal(srv.server.router.size, 0);
});

test('xmpp.js: the self-signed certificate is refused unless trusted (verification is on)', async () => {
  restoreTls();
  const start = log.records.length;
  try {
    const { xmpp } = createXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' });
    try {
      await assert.rejects(withTimeout(xmpp.start(), 5000, 'the TLS handshake to fail'), (err: Error & { code?: string }) => {
        assert.match(err.code ?? '', /SELF_SIGNED|UNABLE_TO_VERIFY/, `${err.code}: ${err.message}`);
        return true;
      });
    } finally {
      await withTimeout(xmpp.stop().catch(() => undefined), 5000, 'xmpp.stop()');
    }
    // The server saw this handshake fail.
    await log.waitFor((r) => r.event === 'tls-failed' && log.records.indexOf(r) >= start, 'tls-failed');
  } finally {
    restoreTls = trustCertificate(serverCertificate(srv.dir));
  }
});

test('xmpp.js: PLAIN over STARTTLS when the server offers only PLAIN', async () => {
  const plainLog = new LogCapture();
  const plainSrv = await startTestServer({ sasl: { mechanisms: ['PLAIN'] } }, { log: plainLog.logger });
  const restore = trustCertificate(serverCertificate(plainSrv.dir));
  try {
    await plainSrv.addUser('carol', 'carol-pass');
    const carol = await startXmppJs({ port: plainSrv.port, username: 'carol', password: 'carol-pass' });
    try {
      assert.deepEqual(carol.authMechanisms, ['PLAIN']);
      assert.match(carol.jid, GENERATED_JID('carol'));
      const auth = await plainLog.waitFor((r) => r.event === 'auth', 'auth');
      assert.equal(auth.mechanism, 'PLAIN');
      const tlsEvent = plainLog.find((r) => r.conn === auth.conn && r.event === 'tls');
      assert.equal(tlsEvent.length, 1, 'PLAIN ran on a TLS-protected stream (RFC 6120 §13.8)');
      const pong = await carol.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS_PING })), 5000);
      assert.equal(pong.attrs.type, 'result');
    } finally {
      await withTimeout(carol.xmpp.stop(), 5000, 'xmpp.stop()');
    }
    await plainLog.waitFor((r) => r.event === 'disconnect' && r.jid === carol.jid, 'disconnect');
    await waitUntil(() => plainSrv.server.router.size === 0, 'the session registry to empty');

    // And a wrong password over PLAIN is not-authorized too.
    const { xmpp } = createXmppJs({ port: plainSrv.port, username: 'carol', password: 'nope' });
    try {
      await assert.rejects(withTimeout(xmpp.start(), 5000, 'the login to fail'), (err: Error & { condition?: string }) => {
        assert.equal(err.condition, 'not-authorized');
        return true;
      });
    } finally {
      await withTimeout(xmpp.stop(), 5000, 'xmpp.stop()');
    }
    const failure = await plainLog.waitFor((r) => r.event === 'auth-failure', 'auth-failure');
    assert.equal(failure.mechanism, 'PLAIN');
  } finally {
    restore();
    await plainSrv.stop();
  }
});

test('xmpp.js: no compatible mechanism when the server offers only SCRAM-SHA-256', async () => {
  // Confirms from the server side that SCRAM-SHA-1 and PLAIN are all xmpp.js 0.14 can do.
  const s256 = await startTestServer({ sasl: { mechanisms: ['SCRAM-SHA-256'] } });
  const restore = trustCertificate(serverCertificate(s256.dir));
  try {
    await s256.addUser('dave', 'dave-pass');
    const { xmpp, authMechanisms } = createXmppJs({ port: s256.port, username: 'dave', password: 'dave-pass' });
    try {
      await assert.rejects(withTimeout(xmpp.start(), 5000, 'the login to fail'), /No compatible mechanism/);
      assert.deepEqual(authMechanisms, []);
    } finally {
      await withTimeout(xmpp.stop(), 5000, 'xmpp.stop()');
    }
  } finally {
    restore();
    await s256.stop();
  }
});
