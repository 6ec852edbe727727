// The room and ws scenarios of bench:compare (bench/compare/room.ts, ws.ts) against a real
// Shoal at a tiny size, so that they cannot silently rot: every room message reaches every
// other occupant exactly once and its sender once, and WebSocket (RFC 7395) logins succeed
// and carry chat between pairs; and the counts do show a failure when there is one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { ScramCache } from '../bench/load/scram.js';
import { runRoom } from '../bench/compare/room.js';
import { runWs } from '../bench/compare/ws.js';

let srv: TestServer;
let wsUrl: string;
before(async () => {
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0, web_client: false } });
  for (let i = 1; i <= 6; i++) await srv.addUser(`bench${i}`, `secret-${i}`);
  wsUrl = `ws://127.0.0.1:${srv.server.portOf('http')}/xmpp-websocket`;
});
after(() => srv.stop());

test('room: 5 occupants, 3 messages each: every message reaches the 4 others once and its sender once', async () => {
  const r = await runRoom({
    host: '127.0.0.1',
    port: srv.port,
    domain: 'localhost',
    service: 'conference.localhost',
    users: 'bench%d',
    passwordPattern: 'secret-%d',
    occupants: 5,
    messagesPerOccupant: 3,
    concurrency: 5,
    cache: new ScramCache(),
    serverPid: process.pid,
    stepTimeoutMs: 10_000,
    stallTimeoutMs: 10_000,
  });
  assert.deepEqual([...r.loginFailures, ...r.joinFailures], []);
  assert.equal(r.joined, 5);
  assert.equal(r.messagesSent, 15);
  assert.equal(r.expectedDeliveries, 15 * 4);
  assert.equal(r.deliveries, 60);
  assert.equal(r.missing, 0);
  assert.equal(r.duplicates, 0);
  assert.equal(r.missingReflections, 0);
  assert.equal(r.latencyMs.count, 60);
  assert.ok(r.deliveriesPerSecond > 0 && r.server && r.server.cpuS >= 0);
});

test('room: an occupant whose login fails is reported, and the others still exchange everything', async () => {
  // bench7 has no account: its login fails; the 6 others join and exchange their messages.
  const r = await runRoom({
    host: '127.0.0.1',
    port: srv.port,
    domain: 'localhost',
    service: 'conference.localhost',
    users: 'bench%d',
    passwordPattern: 'secret-%d',
    occupants: 7,
    messagesPerOccupant: 1,
    concurrency: 7,
    cache: new ScramCache(),
    stepTimeoutMs: 10_000,
    stallTimeoutMs: 10_000,
  });
  assert.equal(r.loginFailures.length, 1);
  assert.match(r.loginFailures[0]!, /^bench7: sasl/);
  assert.equal(r.joined, 6);
  assert.equal(r.deliveries, 6 * 5);
  assert.equal(r.missing, 0);
});

test('ws: 4 clients log in over RFC 7395 and exchange 20 messages in pairs; a wrong password is counted as a failed login', async () => {
  const r = await runWs({ url: wsUrl, domain: 'localhost', users: 'bench%d', passwordPattern: 'secret-%d', clients: 4, concurrency: 2, messages: 20, cache: new ScramCache(), serverPid: process.pid, stepTimeoutMs: 10_000, stallTimeoutMs: 10_000 });
  assert.deepEqual(r.login.failures, {});
  assert.equal(r.login.succeeded, 4);
  assert.equal(r.login.latencyMs.count, 4);
  assert.equal(r.messages.sent, 20);
  assert.equal(r.messages.received, 20);
  assert.equal(r.messages.lost, 0);
  assert.equal(r.messages.latencyMs.count, 20);

  const bad = await runWs({ url: wsUrl, domain: 'localhost', users: 'bench%d', passwordPattern: 'wrong-%d', clients: 2, concurrency: 2, messages: 2, cache: new ScramCache(), stepTimeoutMs: 10_000, stallTimeoutMs: 2_000 });
  assert.equal(bad.login.succeeded, 0);
  assert.equal(bad.login.failed, 2);
  assert.deepEqual(Object.keys(bad.login.failures), ['sasl: failure']);
  assert.equal(bad.messages.sent, 0);
});

test('ws warm-up: other accounts log in and out first and are reported apart; a failed warm-up login is counted', async () => {
  // Clients bench1, bench2 measured; the warm-up uses the accounts after them: bench3..bench7 (bench7 has none).
  const r = await runWs({ url: wsUrl, domain: 'localhost', users: 'bench%d', passwordPattern: 'secret-%d', clients: 2, warmup: 5, concurrency: 2, messages: 4, cache: new ScramCache(), serverPid: process.pid, stepTimeoutMs: 10_000, stallTimeoutMs: 10_000 });
  assert.ok(r.warmup, 'the warm-up is reported');
  assert.equal(r.warmup.succeeded, 4);
  assert.equal(r.warmup.failed, 1);
  assert.deepEqual(Object.keys(r.warmup.failures), ['sasl: failure']);
  assert.ok(r.warmup.cpuPer1000Logins !== undefined && r.warmup.perSecond > 0);
  assert.equal(r.login.succeeded, 2);
  assert.equal(r.messages.received, 4);
  const cold = await runWs({ url: wsUrl, domain: 'localhost', users: 'bench%d', passwordPattern: 'secret-%d', clients: 2, concurrency: 2, messages: 2, cache: new ScramCache(), stepTimeoutMs: 10_000, stallTimeoutMs: 10_000 });
  assert.equal(cold.warmup, undefined, 'no warm-up unless asked for');
});
