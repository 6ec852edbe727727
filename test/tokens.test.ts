// Access tokens end to end: `shoal token issue|list|revoke` (tokens: local), JWTs
// (tokens: jwt), and an external account service (auth.backend: http) on a local
// node:http server, with xmpp.js logging in over PLAIN through it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { sql } from 'kysely';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { XmppServer } from '../src/server.js';
import { silentLogger } from '../src/log/logger.js';
import { openStorage } from '../src/storage/index.js';
import { deriveAllScramCredentials } from '../src/sasl/credentials.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { runShoal, shoalOk } from './support/cli.js';
import { dropTestServerStorage, startTestServer, testServerStorage, type TestServer } from './support/server.js';
import { LogCapture, createXmppJs, serverCertificate, startXmppJs, trustCertificate, withTimeout, xml } from './support/xmppjs.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) {
    await dropTestServerStorage(d);
    rmSync(d, { recursive: true, force: true });
  }
});

async function openTlsStream(port: number): Promise<{ c: RawClient; features: Element }> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.header();
  await c.element('features');
  await c.startTls();
  return { c, features: await c.restart() };
}

const mechanismsOf = (features: Element): string[] => features.getChild('mechanisms', NS.SASL)?.getChildren('mechanism', NS.SASL).map((m) => m.text()) ?? [];

async function saslReply(c: RawClient): Promise<Element> {
  return c.waitFor((el) => el.xmlns === NS.SASL && ['challenge', 'success', 'failure'].includes(el.name), 'a SASL reply');
}

function condition(el: Element): string {
  if (el.name !== 'failure') return el.name;
  return el.children.find((ch): ch is Element => typeof ch !== 'string' && ch.name !== 'text')?.name ?? '';
}

/** OAUTHBEARER on a fresh TLS stream: 'success', or the error JSON and the final condition. */
async function oauthbearer(port: number, token: string, authzid = ''): Promise<{ outcome: string; error?: Record<string, string> }> {
  const { c } = await openTlsStream(port);
  try {
    c.send(`<auth xmlns='${NS.SASL}' mechanism='OAUTHBEARER'>${b64(`n,${authzid ? `a=${authzid}` : ''},\x01auth=Bearer ${token}\x01\x01`)}</auth>`);
    const first = await saslReply(c);
    if (first.name !== 'challenge') return { outcome: condition(first) };
    const error = JSON.parse(unb64(first.text())) as Record<string, string>;
    c.send(`<response xmlns='${NS.SASL}'>AQ==</response>`);
    return { outcome: condition(await saslReply(c)), error };
  } finally {
    c.close();
  }
}

async function xOauth2(port: number, user: string, token: string): Promise<string> {
  const { c } = await openTlsStream(port);
  try {
    c.send(`<auth xmlns='${NS.SASL}' mechanism='X-OAUTH2'>${b64(`\0${user}\0${token}`)}</auth>`);
    return condition(await saslReply(c));
  } finally {
    c.close();
  }
}

describe('tokens: local with `shoal token`', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-tokens-'));
    dirs.push(dir);
    file = join(dir, 'shoal.yaml');
    const storage = await testServerStorage(dir);
    writeFileSync(
      file,
      stringify({ hosts: ['localhost'], c2s: { host: '127.0.0.1', port: 0 }, data_dir: './data', storage, tls: {}, sasl: { mechanisms: ['SCRAM-SHA-256', 'OAUTHBEARER', 'X-OAUTH2', 'PLAIN'] }, tokens: 'local' }),
    );
    await shoalOk(['user', 'add', 'alice@localhost', '--password', 'alice-pass'], { cwd: dir });
    await shoalOk(['user', 'add', 'bob@localhost', '--password', 'bob-pass'], { cwd: dir });
  });

  test('issue, log in with OAUTHBEARER and X-OAUTH2, list, revoke by id and by token', async () => {
    const issued = await runShoal(['token', 'issue', 'alice@localhost', '--ttl', '1h', '--scope', 'xmpp,chat'], { cwd: dir });
    assert.equal(issued.code, 0, issued.stderr);
    const token = issued.stdout.trim();
    assert.match(token, /^[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/);
    const id = token.split('.')[0]!;
    assert.match(issued.stderr, new RegExp(`issued token ${id} for alice@localhost, expires \\d{4}-`));
    const second = (await shoalOk(['token', 'issue', 'alice@localhost'], { cwd: dir })).trim();

    // Only the hash is in the database: not in the SQLite files, not in a row on PostgreSQL.
    const secret = Buffer.from(token.split('.')[1]!);
    const base = join(dir, 'data', 'shoal.sqlite');
    for (const f of [base, `${base}-wal`].filter((p) => existsSync(p))) assert.equal(readFileSync(f).includes(secret), false);
    const storage = await openStorage(loadConfig({ file }).storage);
    try {
      const rows = await sql<Record<string, unknown>>`select * from auth_tokens`.execute(storage.sql.db<unknown>());
      assert.equal(rows.rows.length, 2);
      for (const row of rows.rows) for (const v of Object.values(row)) assert.equal((Buffer.isBuffer(v) ? v : Buffer.from(String(v))).includes(secret), false);
    } finally {
      await storage.close();
    }

    const listed = (await shoalOk(['token', 'list', 'alice@localhost'], { cwd: dir })).trim().split('\n');
    assert.equal(listed.length, 2);
    assert.match(listed[0]!, new RegExp(`^${id}  active  created \\S+  expires \\S+  scope xmpp chat$`));
    assert.deepEqual((await shoalOk(['token', 'list', 'bob@localhost'], { cwd: dir })).trim(), '');

    const server = await XmppServer.create({ config: loadConfig({ file }), log: silentLogger() });
    await server.listen();
    try {
      assert.deepEqual(await oauthbearer(server.port, token, 'alice@localhost'), { outcome: 'success' });
      assert.equal(await xOauth2(server.port, 'alice', token), 'success');
      // alice's token does not log bob in.
      assert.equal(await xOauth2(server.port, 'bob', token), 'not-authorized');
      assert.deepEqual(await oauthbearer(server.port, token, 'bob@localhost'), { outcome: 'not-authorized', error: { status: 'invalid_token' } });

      assert.equal((await shoalOk(['token', 'revoke', id], { cwd: dir })).trim(), 'revoked');
      assert.deepEqual(await oauthbearer(server.port, token), { outcome: 'not-authorized', error: { status: 'invalid_token' } });
      assert.equal(await xOauth2(server.port, 'alice', token), 'not-authorized');
      assert.equal(await xOauth2(server.port, 'alice', second), 'success');
      await shoalOk(['token', 'revoke', second], { cwd: dir });
      assert.equal(await xOauth2(server.port, 'alice', second), 'not-authorized');
    } finally {
      await server.stop();
    }
    assert.match(await shoalOk(['token', 'list', 'alice@localhost'], { cwd: dir }), new RegExp(`^${id}  revoked  `, 'm'));
    const again = await runShoal(['token', 'revoke', id], { cwd: dir });
    assert.notEqual(again.code, 0);
  });

  test('refused: unknown account, bad --ttl, bad scope', async () => {
    for (const [args, message] of [
      [['token', 'issue', 'nobody@localhost'], /nobody@localhost does not exist/],
      [['token', 'issue', 'alice@localhost', '--ttl', 'soon'], /invalid --ttl/],
      [['token', 'issue', 'alice@localhost', '--scope', 'a"b'], /invalid scope/],
      [['token', 'issue', 'alice@elsewhere.example'], /not one of the configured hosts/],
    ] as const) {
      const r = await runShoal([...args], { cwd: dir });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
    }
  });
});

// --- tokens: jwt ------------------------------------------------------------------

const SECRET = 'jwt shared secret, 32 characters or more';
const sign = (claims: JWTPayload): Promise<string> => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

describe('tokens: jwt', () => {
  let srv: TestServer;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (extra: JWTPayload = {}): JWTPayload => ({
    sub: 'alice@localhost',
    iss: 'https://idp.example',
    aud: 'xmpp:localhost',
    scope: 'openid xmpp',
    iat: now(),
    exp: now() + 300,
    ...extra,
  });
  before(async () => {
    srv = await startTestServer({
      sasl: { mechanisms: ['SCRAM-SHA-256', 'OAUTHBEARER', 'X-OAUTH2', 'PLAIN'] },
      tokens: {
        verifier: 'jwt',
        required_scope: 'xmpp',
        openid_configuration: 'https://idp.example/.well-known/openid-configuration',
        jwt: { secret: SECRET, issuer: 'https://idp.example', audience: 'xmpp:localhost', clock_tolerance: 5 },
      },
    });
    await srv.addUser('alice', 'alice-pass');
    await srv.addUser('bob', 'bob-pass');
  });
  after(() => srv.stop());

  const refused = {
    outcome: 'not-authorized',
    error: { status: 'invalid_token', scope: 'xmpp', 'openid-configuration': 'https://idp.example/.well-known/openid-configuration' },
  };

  test('a valid JWT logs in with OAUTHBEARER and X-OAUTH2', async () => {
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims())), { outcome: 'success' });
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims()), 'alice@localhost'), { outcome: 'success' });
    assert.equal(await xOauth2(srv.port, 'alice', await sign(claims())), 'success');
  });

  test('expired, not yet valid, wrong audience, wrong issuer: invalid_token (with the scope and discovery URL)', async () => {
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ exp: now() - 60 }))), refused);
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ nbf: now() + 600 }))), refused);
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ aud: 'mail:localhost' }))), refused);
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ iss: 'https://evil.example' }))), refused);
  });

  test('without the required scope: insufficient_scope', async () => {
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ scope: 'openid' }))), { ...refused, error: { ...refused.error, status: 'insufficient_scope' } });
  });

  test("the token's user must match the authzid / username; an account that does not exist fails", async () => {
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims()), 'bob@localhost'), refused);
    assert.equal(await xOauth2(srv.port, 'bob', await sign(claims())), 'not-authorized');
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ sub: 'nobody@localhost' }))), refused);
    assert.deepEqual(await oauthbearer(srv.port, await sign(claims({ sub: 'bob@elsewhere.example' }))), refused);
  });
});

// --- auth.backend: http -------------------------------------------------------------

describe('auth.backend: http', () => {
  const PASSWORD = 'carol-http-secret-pw';
  let http: Server;
  let srv: TestServer;
  let log: LogCapture;
  let restoreTls: () => void;
  let slow = false;
  const seen: Record<string, unknown>[] = [];
  const held: ServerResponse[] = [];

  before(async () => {
    http = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const q = JSON.parse(body) as Record<string, unknown>;
        seen.push(q);
        if (slow) return void held.push(res);
        res.setHeader('content-type', 'application/json');
        if (req.headers.authorization !== 'Bearer shoal-to-backend') return void res.writeHead(500).end('{}');
        if (q.type === 'password') return void res.end(JSON.stringify({ ok: q.username === 'carol' && q.password === PASSWORD }));
        if (q.type === 'token' && q.token === 'carols-token') return void res.end(JSON.stringify({ ok: true, username: 'carol' }));
        res.writeHead(401).end('{}');
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    log = new LogCapture();
    srv = await startTestServer(
      {
        sasl: { mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'DIGEST-MD5', 'X-OAUTH2', 'PLAIN'] },
        auth: { backend: 'http', http: { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/check`, timeout: 0.5, secret: 'shoal-to-backend' } },
      },
      { log: log.logger },
    );
    restoreTls = trustCertificate(serverCertificate(srv.dir));
  });
  after(async () => {
    restoreTls();
    await srv.stop();
    for (const r of held) r.destroy();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });

  test('only what the service can check is offered: PLAIN and X-OAUTH2', async () => {
    const { c, features } = await openTlsStream(srv.port);
    assert.deepEqual(mechanismsOf(features), ['X-OAUTH2', 'PLAIN']);
    c.close();
  });

  test('xmpp.js logs in with PLAIN checked by the endpoint; the account row is created; no password in the logs', async () => {
    assert.equal(await srv.server.storage.accounts.exists('localhost', 'carol'), false);
    const session = await startXmppJs({ port: srv.port, username: 'carol', password: PASSWORD });
    try {
      assert.deepEqual(session.authMechanisms, ['PLAIN']);
      assert.match(session.jid, /^carol@localhost\//);
      assert.deepEqual(seen.at(-1), { type: 'password', host: 'localhost', username: 'carol', password: PASSWORD });
      assert.equal(await srv.server.storage.accounts.exists('localhost', 'carol'), true);
      // The roster works for the provisioned account.
      const roster = await session.xmpp.iqCaller.get(xml('query', { xmlns: 'jabber:iq:roster' }));
      assert.equal(roster?.attrs.xmlns, 'jabber:iq:roster');
    } finally {
      await session.xmpp.stop();
    }
    assert.ok(log.records.length > 0);
    assert.equal(JSON.stringify(log.records).includes(PASSWORD), false);
  });

  test('a wrong password fails; a local SCRAM account is not consulted', async () => {
    await srv.server.storage.accounts.create('localhost', 'dave', deriveAllScramCredentials('dave-pass'));
    for (const [username, password] of [['carol', 'wrong'], ['dave', 'dave-pass']]) {
      const { xmpp } = createXmppJs({ port: srv.port, username: username!, password: password! });
      await assert.rejects(withTimeout(xmpp.start(), 5000, 'login'), /not-authorized/);
      await xmpp.stop().catch(() => undefined);
    }
    assert.equal(JSON.stringify(log.records).includes('wrong'), false);
  });

  test('X-OAUTH2 with a token the endpoint accepts', async () => {
    assert.equal(await xOauth2(srv.port, 'carol', 'carols-token'), 'success');
    assert.deepEqual(seen.at(-1), { type: 'token', host: 'localhost', username: 'carol', token: 'carols-token' });
    assert.equal(await xOauth2(srv.port, 'carol', 'not-a-token'), 'not-authorized');
  });

  test('an endpoint that does not answer within the timeout: temporary-auth-failure', async () => {
    slow = true;
    try {
      const { c } = await openTlsStream(srv.port);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64(`\0carol\0${PASSWORD}`)}</auth>`);
      assert.equal(condition(await saslReply(c)), 'temporary-auth-failure');
      c.close();
      await log.waitFor((r) => r.event === 'auth-backend-error' && r.timeout === true, 'the timeout logged');
    } finally {
      slow = false;
    }
    assert.equal(JSON.stringify(log.records).includes(PASSWORD), false);
  });
});
