// DIGEST-MD5, CRAM-MD5, X-OAUTH2 and OAUTHBEARER against a real server: raw XML
// for every server-side detail (challenges, rspauth, the RFC 7628 error JSON), and
// slixmpp (feature_mechanisms use_mech) as an independent client for DIGEST-MD5,
// CRAM-MD5 and X-OAUTH2 (slixmpp has no OAUTHBEARER). Then the mechanism policy
// with and without TLS, and the brute-force limits end to end.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { runSlixmppScript, slixmppMissing, type ScriptRun } from './support/slixmpp.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { LogCapture, serverCertificate, startXmppJs, trustCertificate, xml, type XmlElement, type XmppJsSession } from './support/xmppjs.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import { deriveAllScramCredentials } from '../src/sasl/credentials.js';
import { deriveLegacySecrets } from '../src/sasl/legacy-credentials.js';
import { parseDirectives } from '../src/sasl/digest-md5.js';
import { issueToken } from '../src/auth/local-tokens.js';

const MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'DIGEST-MD5', 'CRAM-MD5', 'OAUTHBEARER', 'X-OAUTH2', 'PLAIN'];

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** Creates the account the way `shoal user add` does with these mechanisms enabled. */
async function addUser(srv: TestServer, local: string, password: string, mechanisms = MECHANISMS): Promise<void> {
  const created = await srv.server.storage.accounts.create('localhost', local, deriveAllScramCredentials(password), deriveLegacySecrets('localhost', local, password, mechanisms));
  assert.equal(created, true);
}

async function openStream(port: number, withTls = true): Promise<{ c: RawClient; features: Element }> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.header();
  let features = await c.element('features');
  if (withTls) {
    await c.startTls();
    features = await c.restart();
  }
  return { c, features };
}

function mechanisms(features: Element): string[] {
  return features.getChild('mechanisms', NS.SASL)?.getChildren('mechanism', NS.SASL).map((m) => m.text()) ?? [];
}

/** The next <challenge/>, <success/> or <failure/>. */
async function saslReply(c: RawClient): Promise<Element> {
  return c.waitFor((el) => el.xmlns === NS.SASL && ['challenge', 'success', 'failure'].includes(el.name), 'a SASL reply');
}

function failureCondition(el: Element): string {
  assert.equal(el.name, 'failure', `expected <failure/>, got ${el.toString()}`);
  return el.children.find((ch): ch is Element => typeof ch !== 'string' && ch.name !== 'text')?.name ?? '';
}

/** Restarts the stream after <success/>, binds, and returns the JID. */
async function bind(c: RawClient): Promise<string> {
  await c.restart();
  c.send(`<iq type='set' id='b1'><bind xmlns='${NS.BIND}'/></iq>`);
  const result = await c.waitFor((el) => el.name === 'iq' && el.attrs.id === 'b1', 'bind result');
  assert.equal(result.attrs.type, 'result');
  return result.getChild('bind', NS.BIND)?.getChildText('jid', NS.BIND) ?? '';
}

/** A DIGEST-MD5 digest-response computed as a client does (RFC 2831 §2.1.2). */
function digestResponse(challenge: string, user: string, password: string, opts: { uri?: string; cnonce?: string } = {}): { message: string; rspauth: string } {
  const d = parseDirectives(challenge)!;
  const realm = d.get('realm')!;
  const nonce = d.get('nonce')!;
  const cnonce = opts.cnonce ?? 'c2NoZW1lIGNub25jZQ';
  const uri = opts.uri ?? `xmpp/${realm}`;
  const H = (x: Buffer | string): Buffer => createHash('md5').update(x).digest();
  const a1 = Buffer.concat([H(`${user}:${realm}:${password}`), Buffer.from(`:${nonce}:${cnonce}`)]);
  const kd = (a2: string): string => H(`${H(a1).toString('hex')}:${nonce}:00000001:${cnonce}:auth:${H(a2).toString('hex')}`).toString('hex');
  return {
    message: `username="${user}",realm="${realm}",nonce="${nonce}",cnonce="${cnonce}",nc=00000001,qop=auth,digest-uri="${uri}",response=${kd(`AUTHENTICATE:${uri}`)},charset=utf-8`,
    rspauth: kd(`:${uri}`),
  };
}

describe('raw XML', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ sasl: { mechanisms: MECHANISMS } });
    await addUser(srv, 'alice', 'alice-pass');
    await addUser(srv, 'bob', 'bob-pass');
    // An account created while the MD5 mechanisms were off: no secrets for them.
    await addUser(srv, 'carol', 'carol-pass', ['SCRAM-SHA-256']);
  });
  after(() => srv.stop());

  test('over TLS every enabled mechanism is offered, strongest first', async () => {
    const { c, features } = await openStream(srv.port);
    assert.deepEqual(mechanisms(features), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'DIGEST-MD5', 'CRAM-MD5', 'OAUTHBEARER', 'X-OAUTH2', 'PLAIN']);
    c.close();
  });

  test('DIGEST-MD5: challenge, digest-response, success carrying rspauth (RFC 6120 §6.3.10), bind', async () => {
    const { c } = await openStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='DIGEST-MD5'/>`);
    const challenge = await saslReply(c);
    assert.equal(challenge.name, 'challenge');
    const text = unb64(challenge.text());
    assert.match(text, /^realm="localhost",nonce="[A-Za-z0-9+/=]{24}",qop="auth",charset=utf-8,algorithm=md5-sess$/);
    const { message, rspauth } = digestResponse(text, 'alice', 'alice-pass');
    c.send(`<response xmlns='${NS.SASL}'>${b64(message)}</response>`);
    const success = await saslReply(c);
    assert.equal(success.name, 'success');
    assert.equal(unb64(success.text()), `rspauth=${rspauth}`);
    assert.match(await bind(c), /^alice@localhost\//);
    c.close();
  });

  test('DIGEST-MD5: a wrong password, and an account whose password predates DIGEST-MD5, fail alike', async () => {
    for (const [user, password] of [['alice', 'wrong'], ['carol', 'carol-pass']]) {
      const { c } = await openStream(srv.port);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='DIGEST-MD5'/>`);
      const challenge = unb64((await saslReply(c)).text());
      c.send(`<response xmlns='${NS.SASL}'>${b64(digestResponse(challenge, user!, password!).message)}</response>`);
      assert.equal(failureCondition(await saslReply(c)), 'not-authorized', user);
      c.close();
    }
  });

  test('DIGEST-MD5: a response replayed on a new stream (new nonce) fails', async () => {
    const first = await openStream(srv.port);
    first.c.send(`<auth xmlns='${NS.SASL}' mechanism='DIGEST-MD5'/>`);
    const recorded = digestResponse(unb64((await saslReply(first.c)).text()), 'bob', 'bob-pass').message;
    first.c.send(`<response xmlns='${NS.SASL}'>${b64(recorded)}</response>`);
    assert.equal((await saslReply(first.c)).name, 'success');
    first.c.close();
    const second = await openStream(srv.port);
    second.c.send(`<auth xmlns='${NS.SASL}' mechanism='DIGEST-MD5'/>`);
    await saslReply(second.c);
    second.c.send(`<response xmlns='${NS.SASL}'>${b64(recorded)}</response>`);
    assert.equal(failureCondition(await saslReply(second.c)), 'not-authorized');
    second.c.close();
  });

  test('CRAM-MD5: an RFC 2195 challenge for this host, "user hmac", success, bind', async () => {
    const { c } = await openStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='CRAM-MD5'/>`);
    const challenge = unb64((await saslReply(c)).text());
    assert.match(challenge, /^<\d+\.\d+@localhost>$/);
    c.send(`<response xmlns='${NS.SASL}'>${b64(`bob ${createHmac('md5', 'bob-pass').update(challenge).digest('hex')}`)}</response>`);
    const success = await saslReply(c);
    assert.equal(success.name, 'success');
    assert.match(await bind(c), /^bob@localhost\//);
    c.close();
  });

  test('CRAM-MD5: wrong password, and no secret stored for the account: not-authorized', async () => {
    for (const [user, password] of [['bob', 'bob-pas'], ['carol', 'carol-pass']]) {
      const { c } = await openStream(srv.port);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='CRAM-MD5'/>`);
      const challenge = unb64((await saslReply(c)).text());
      c.send(`<response xmlns='${NS.SASL}'>${b64(`${user} ${createHmac('md5', password!).update(challenge).digest('hex')}`)}</response>`);
      assert.equal(failureCondition(await saslReply(c)), 'not-authorized', user);
      c.close();
    }
  });

  test('OAUTHBEARER (RFC 7628) with a local token: initial response, success, bind', async () => {
    const { text } = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'alice', ttlSeconds: 600 });
    const { c } = await openStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='OAUTHBEARER'>${b64(`n,a=alice@localhost,\x01host=localhost\x01port=5222\x01auth=Bearer ${text}\x01\x01`)}</auth>`);
    assert.equal((await saslReply(c)).name, 'success');
    assert.match(await bind(c), /^alice@localhost\//);
    c.close();
  });

  test('OAUTHBEARER failure (RFC 7628 §3.2.2-3): error JSON as a challenge, the client sends ^A, then <failure/>', async () => {
    const { text, token } = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'alice', ttlSeconds: 600 });
    await srv.server.storage.tokens.revoke(token.id);
    const { c } = await openStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='OAUTHBEARER'>${b64(`n,,\x01auth=Bearer ${text}\x01\x01`)}</auth>`);
    const challenge = await saslReply(c);
    assert.equal(challenge.name, 'challenge');
    assert.deepEqual(JSON.parse(unb64(challenge.text())), { status: 'invalid_token' });
    c.send(`<response xmlns='${NS.SASL}'>AQ==</response>`);
    assert.equal(failureCondition(await saslReply(c)), 'not-authorized');
    // The stream is still usable: a good token now.
    const good = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'alice', ttlSeconds: 600 });
    c.send(`<auth xmlns='${NS.SASL}' mechanism='OAUTHBEARER'>${b64(`n,,\x01auth=Bearer ${good.text}\x01\x01`)}</auth>`);
    assert.equal((await saslReply(c)).name, 'success');
    c.close();
  });

  test("OAUTHBEARER: a valid token of another user than the authzid fails; <abort/> ends the error exchange too", async () => {
    const { text } = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'bob', ttlSeconds: 600 });
    const { c } = await openStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='OAUTHBEARER'>${b64(`n,a=alice@localhost,\x01auth=Bearer ${text}\x01\x01`)}</auth>`);
    assert.equal((await saslReply(c)).name, 'challenge');
    c.send(`<abort xmlns='${NS.SASL}'/>`);
    assert.equal(failureCondition(await saslReply(c)), 'aborted');
    c.close();
  });

  test('X-OAUTH2: "\\0user\\0token" with a local token; an expired token fails', async () => {
    const { text } = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'bob', ttlSeconds: 600 });
    const { c } = await openStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='X-OAUTH2'>${b64(`\0bob\0${text}`)}</auth>`);
    assert.equal((await saslReply(c)).name, 'success');
    c.close();
    const expired = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'bob', ttlSeconds: 60, now: new Date(Date.now() - 61_000) });
    const second = await openStream(srv.port);
    second.c.send(`<auth xmlns='${NS.SASL}' mechanism='X-OAUTH2'>${b64(`\0bob\0${expired.text}`)}</auth>`);
    assert.equal(failureCondition(await saslReply(second.c)), 'not-authorized');
    second.c.close();
  });
});

describe('mechanism policy without TLS', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ tls: null, sasl: { mechanisms: MECHANISMS } });
    await addUser(srv, 'alice', 'alice-pass');
  });
  after(() => srv.stop());

  test('the MD5 mechanisms are offered (no password on the wire), PLAIN and the bearer-token ones are not', async () => {
    const { c, features } = await openStream(srv.port, false);
    assert.deepEqual(mechanisms(features), ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'DIGEST-MD5', 'CRAM-MD5']);
    for (const mech of ['X-OAUTH2', 'OAUTHBEARER', 'PLAIN']) {
      c.send(`<auth xmlns='${NS.SASL}' mechanism='${mech}'>${b64('\0alice\0x')}</auth>`);
      assert.equal(failureCondition(await saslReply(c)), 'encryption-required', mech);
    }
    c.close();
  });

  test('CRAM-MD5 works on the unencrypted stream', async () => {
    const { c } = await openStream(srv.port, false);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='CRAM-MD5'/>`);
    const challenge = unb64((await saslReply(c)).text());
    c.send(`<response xmlns='${NS.SASL}'>${b64(`alice ${createHmac('md5', 'alice-pass').update(challenge).digest('hex')}`)}</response>`);
    assert.equal((await saslReply(c)).name, 'success');
    c.close();
  });
});

describe('brute-force protection (sasl.rate_limit)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      sasl: { mechanisms: MECHANISMS, max_attempts: 10, rate_limit: { account: { burst: 2, per_minute: 1 }, address: { burst: 4, per_minute: 1 } } },
    });
    for (const u of ['alice', 'bob', 'carol']) await addUser(srv, u, `${u}-pass`);
  });
  after(() => srv.stop());

  const plain = (c: RawClient, user: string, password: string): void => c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64(`\0${user}\0${password}`)}</auth>`);

  test('per account, then per address; limited answers do not depend on the password; time refills', async (t) => {
    // Frozen clock: the buckets only refill when the test moves time on.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const { c } = await openStream(srv.port);
    plain(c, 'alice', 'wrong-1');
    assert.equal(failureCondition(await saslReply(c)), 'not-authorized');
    // Another mechanism, same account: the limit is per account, not per mechanism.
    c.send(`<auth xmlns='${NS.SASL}' mechanism='CRAM-MD5'/>`);
    await saslReply(c);
    c.send(`<response xmlns='${NS.SASL}'>${b64(`alice ${'0'.repeat(32)}`)}</response>`);
    assert.equal(failureCondition(await saslReply(c)), 'not-authorized');
    // alice's bucket is empty: the right password and a wrong one get the same answer.
    plain(c, 'alice', 'alice-pass');
    const limited = await saslReply(c);
    assert.equal(failureCondition(limited), 'temporary-auth-failure');
    // A guess on the limited account is refused, and still counts against the address (3 of 4).
    plain(c, 'alice', 'wrong-3');
    assert.equal(failureCondition(await saslReply(c)), 'temporary-auth-failure');
    // Other accounts from the same address still log in, and successes cost nothing.
    for (let i = 0; i < 3; i++) {
      const s = await openStream(srv.port);
      plain(s.c, 'bob', 'bob-pass');
      assert.equal((await saslReply(s.c)).name, 'success');
      s.c.close();
    }
    // One more failure empties the address bucket (4): now everyone from here waits.
    plain(c, 'bob', 'wrong');
    assert.equal(failureCondition(await saslReply(c)), 'not-authorized');
    const late = await openStream(srv.port);
    plain(late.c, 'carol', 'carol-pass');
    assert.equal(failureCondition(await saslReply(late.c)), 'temporary-auth-failure');
    // One minute later one token is back in each bucket.
    t.mock.timers.tick(60_000);
    plain(late.c, 'alice', 'alice-pass');
    assert.equal((await saslReply(late.c)).name, 'success');
    late.c.close();
    c.close();
  });
});

// --- slixmpp ------------------------------------------------------------------------

const skip = slixmppMissing();

/** Runs client.py; every line it wrote to stdout must be a JSON event. */
async function runSlixmpp(args: string[]): Promise<ScriptRun> {
  const run = await runSlixmppScript(args);
  assert.deepEqual(run.all('unparsable'), [], `client.py wrote a line that is not JSON:\n${run.output}`);
  return run;
}

describe('slixmpp (feature_mechanisms use_mech)', { skip }, () => {
  let srv: TestServer;
  let log: LogCapture;
  let peer: XmppJsSession;
  let restoreTls: () => void;
  let ca: string;
  before(async () => {
    log = new LogCapture();
    srv = await startTestServer({ sasl: { mechanisms: MECHANISMS } }, { log: log.logger });
    await addUser(srv, 'alice', 'alice-pass');
    await addUser(srv, 'bob', 'bob-pass');
    ca = join(srv.dir, 'data', 'tls', 'self-signed.crt');
    restoreTls = trustCertificate(serverCertificate(srv.dir));
    // The peer slixmpp talks to (client.py sends it a message and waits for the echo).
    peer = await startXmppJs({ port: srv.port, username: 'bob', password: 'bob-pass' });
    peer.xmpp.on('stanza', (el: XmlElement) => {
      const body = el.getChildText('body');
      if (!el.is('message') || body === null || el.attrs.type === 'error') return;
      void peer.xmpp.send(xml('message', { to: el.attrs.from, type: 'chat' }, xml('body', {}, `echo: ${body}`)));
    });
    await peer.xmpp.send(xml('presence'));
  });
  after(async () => {
    await peer?.xmpp.stop().catch(() => undefined);
    restoreTls?.();
    await srv?.stop();
  });

  async function fullSession(mech: string, extra: string[] = [], password = 'alice-pass'): Promise<void> {
    const run = await runSlixmpp(['--port', String(srv.port), '--jid', 'alice@localhost', '--password', password, '--peer', 'bob@localhost', '--ca', ca, '--mech', mech, ...extra]);
    assert.equal(run.code, 0, `slixmpp failed:\n${run.output}`);
    assert.deepEqual(run.events.filter((e) => e.event === 'auth_sent').map((e) => e.mechanism), [mech]);
    assert.equal(run.events.find((e) => e.event === 'auth')?.mechanism, mech);
    assert.equal(run.events.find((e) => e.event === 'reply')?.body, 'echo: hello from slixmpp');
    const jid = String(run.events.find((e) => e.event === 'bound')?.jid);
    assert.match(jid, /^alice@localhost\//);
    // The server's side: this mechanism authenticated alice, and that connection bound the JID.
    const bound = await log.waitFor((r) => r.event === 'bind' && r.jid === jid, `bind of ${jid}`);
    const auth = log.find((r) => r.conn === bound.conn && r.event === 'auth');
    assert.deepEqual(auth.map((r) => [r.mechanism, r.user]), [[mech, 'alice@localhost']]);
  }

  test('DIGEST-MD5: login (slixmpp checks our rspauth), message and reply, logout', async () => {
    await fullSession('DIGEST-MD5');
  });

  test('CRAM-MD5: login, message and reply, logout', async () => {
    await fullSession('CRAM-MD5');
  });

  test('X-OAUTH2 with a token from tokens: local', async () => {
    const { text } = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'alice', ttlSeconds: 600 });
    await fullSession('X-OAUTH2', ['--token', text], 'not-the-password');
  });

  test('DIGEST-MD5 with a wrong password: not-authorized, nothing bound', async () => {
    const run = await runSlixmpp(['--port', String(srv.port), '--jid', 'alice@localhost', '--password', 'wrong', '--peer', 'bob@localhost', '--ca', ca, '--mech', 'DIGEST-MD5']);
    assert.equal(run.code, 1);
    const failed = run.events.find((e) => e.event === 'auth_failed');
    assert.equal(failed?.mechanism, 'DIGEST-MD5');
    assert.equal(failed?.condition, 'not-authorized');
    assert.equal(run.events.some((e) => e.event === 'bound'), false);
  });

  test('X-OAUTH2 with a revoked token: not-authorized', async () => {
    const { text, token } = await issueToken(srv.server.storage.tokens, { host: 'localhost', username: 'alice', ttlSeconds: 600 });
    await srv.server.storage.tokens.revoke(token.id);
    const run = await runSlixmpp(['--port', String(srv.port), '--jid', 'alice@localhost', '--password', 'x', '--peer', 'bob@localhost', '--ca', ca, '--mech', 'X-OAUTH2', '--token', text]);
    assert.equal(run.code, 1);
    assert.equal(run.events.find((e) => e.event === 'auth_failed')?.condition, 'not-authorized');
  });
});
