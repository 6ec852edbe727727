// auth.backend: http against a real node:http server on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../log/logger.js';
import type { AccountStore } from '../storage/types.js';
import { HttpAuthBackend } from './http.js';

type Handler = (body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler = (_b, _q, res) => res.end();
const received: { body: Record<string, unknown>; authorization?: string; contentType?: string }[] = [];
const hanging: ServerResponse[] = [];

before(async () => {
  server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data) as Record<string, unknown>;
      received.push({ body, authorization: req.headers.authorization, contentType: req.headers['content-type'] });
      handler(body, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`;
});
after(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Every log line, as text, to prove what never reaches the logs. */
function capture(): { log: Logger; text: () => string } {
  let out = '';
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((out += chunk.toString()), done()) });
  const log: Logger = pino({ level: 'trace' }, sink);
  return { log, text: () => out };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** An account store that only records what the backend provisions. */
function memoryAccounts(): AccountStore & { created: string[] } {
  const created: string[] = [];
  return {
    created,
    exists: async (h: string, u: string) => created.includes(`${u}@${h}`),
    create: async (h: string, u: string) => (created.push(`${u}@${h}`), true),
  } as unknown as AccountStore & { created: string[] };
}

const PASSWORD = 'Tr0ub4dor&3-very-secret';

test('passwords: ok, wrong (ok:false, 401, 403, 404), and what is sent', async () => {
  const { log, text } = capture();
  const accounts = memoryAccounts();
  const backend = new HttpAuthBackend({ url, timeout: 5, secret: 'server-secret' }, log, accounts).passwordVerifier();
  handler = (body, _req, res) => json(res, 200, { ok: body.password === PASSWORD });
  received.length = 0;
  assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'ok');
  assert.deepEqual(received[0], {
    body: { type: 'password', host: 'example.com', username: 'alice', password: PASSWORD },
    authorization: 'Bearer server-secret',
    contentType: 'application/json',
  });
  // The first successful login creates the local account row (no credentials).
  assert.deepEqual(accounts.created, ['alice@example.com']);
  assert.equal(await backend.verify('example.com', 'alice', 'wrong'), 'wrong');
  for (const status of [401, 403, 404]) {
    handler = (_b, _r, res) => json(res, status, {});
    assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'wrong', String(status));
  }
  // The endpoint may not switch the account a password was checked for.
  handler = (_b, _r, res) => json(res, 200, { ok: true, username: 'mallory' });
  assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'wrong');
  assert.equal(text().includes(PASSWORD), false);
});

test('errors, bad answers and a timeout are unavailable; nothing secret is logged', async () => {
  const { log, text } = capture();
  const backend = new HttpAuthBackend({ url, timeout: 0.3 }, log).passwordVerifier();
  handler = (_b, _r, res) => json(res, 500, { error: 'boom' });
  assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'unavailable');
  handler = (_b, _r, res) => res.end('not json');
  assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'unavailable');
  handler = (_b, _r, res) => json(res, 200, { ok: 'yes' });
  assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'unavailable');
  // Never answers: the configured timeout ends the wait.
  handler = (_b, _r, res) => void hanging.push(res);
  const started = Date.now();
  assert.equal(await backend.verify('example.com', 'alice', PASSWORD), 'unavailable');
  assert.ok(Date.now() - started < 5000);
  assert.match(text(), /auth backend timed out/);
  // Nothing listening at all.
  const closed = new HttpAuthBackend({ url: 'http://127.0.0.1:1/auth', timeout: 2 }, log).passwordVerifier();
  assert.equal(await closed.verify('example.com', 'alice', PASSWORD), 'unavailable');
  assert.equal(text().includes(PASSWORD), false);
  assert.match(text(), /alice@example.com/);
});

test('tokens: the endpoint says whose token it is', async () => {
  const { log, text } = capture();
  const backend = new HttpAuthBackend({ url, timeout: 5 }, log).tokenVerifier();
  handler = (body, _r, res) => json(res, 200, body.token === 'tok-alice' ? { ok: true, username: 'Alice', scope: 'xmpp chat' } : { ok: false });
  received.length = 0;
  assert.deepEqual(await backend.verify('tok-alice', 'example.com', undefined), { ok: true, username: 'alice', scope: ['xmpp', 'chat'] });
  assert.deepEqual(received[0]?.body, { type: 'token', host: 'example.com', username: null, token: 'tok-alice' });
  assert.deepEqual(await backend.verify('tok-bob', 'example.com', 'bob'), { ok: false, reason: 'unknown' });
  assert.deepEqual(received[1]?.body, { type: 'token', host: 'example.com', username: 'bob', token: 'tok-bob' });
  // Without a username in the answer, the claimed one is taken; with neither there is no one.
  handler = (_b, _r, res) => json(res, 200, { ok: true });
  assert.deepEqual(await backend.verify('t', 'example.com', 'carol'), { ok: true, username: 'carol', scope: [] });
  assert.deepEqual(await backend.verify('t', 'example.com', undefined), { ok: false, reason: 'malformed' });
  handler = (_b, _r, res) => json(res, 503, {});
  assert.deepEqual(await backend.verify('t', 'example.com', 'carol'), { ok: false, reason: 'unavailable' });
  assert.equal(text().includes('tok-alice'), false);
});
