// /metrics in the Prometheus text format: connections by transport, sessions,
// logins and failures by mechanism, stanzas in and out by kind, processing
// latency, offline storage, process numbers; readable from metrics.allowed_ips only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from './support/server.js';
import { createXmppJs, serverCertificate, startXmppJs, trustCertificate, waitUntil, withTimeout, xml } from './support/xmppjs.js';

(globalThis as Record<string, unknown>).WebSocket ??= WebSocket;

let srv: TestServer;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 } });
  for (const u of ['alice', 'bob', 'carol']) await srv.addUser(u, `${u}-pass`);
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

/** GET /metrics from a given local address; resolves with status and body. */
function scrape(localAddress = '127.0.0.1'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.server.portOf('http'), path: '/metrics', localAddress }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
  });
}

/** The value of one sample line, e.g. value(body, 'shoal_connections{transport="tcp"}'). */
function value(body: string, sample: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

test('the numbers follow what happens on the server', async () => {
  const before = await scrape();
  assert.equal(before.status, 200);
  assert.match(before.type, /^text\/plain; version=0\.0\.4/);
  const port = srv.server.portOf('http');
  const alice = await startXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' });
  const bob = await startXmppJs({ port, service: `ws://127.0.0.1:${port}/xmpp-websocket`, username: 'bob', password: 'bob-pass' });
  // A failed login.
  const { xmpp: wrong } = createXmppJs({ port: srv.port, username: 'alice', password: 'wrong' });
  await assert.rejects(withTimeout(wrong.start(), 10_000, 'the failed login'));
  await wrong.stop().catch(() => undefined);
  try {
    await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await alice.xmpp.send(xml('message', { to: bob.jid, type: 'chat', id: 'm1' }, xml('body', {}, 'hi')));
    await bob.nextStanza((el) => el.attrs.id === 'm1', 'the message');
    // carol is offline: the message is stored.
    await alice.xmpp.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'm2' }, xml('body', {}, 'later')));
    // Scraped until the stored message and the end of the failed login's connection show.
    let body = '';
    for (let i = 0; i < 100; i++) {
      body = (await scrape()).body;
      if ((value(body, 'shoal_offline_messages') ?? 0) >= 1 && value(body, 'shoal_connections{transport="tcp"}') === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(value(body, 'shoal_connections{transport="tcp"}'), 1);
    assert.equal(value(body, 'shoal_connections{transport="websocket"}'), 1);
    assert.equal(value(body, 'shoal_connections{transport="bosh"}'), 0);
    assert.equal(value(body, 'shoal_sessions'), 2);
    assert.equal(value(body, 'shoal_logins_total{mechanism="SCRAM-SHA-1"}'), 2);
    assert.equal(value(body, 'shoal_login_failures_total{mechanism="SCRAM-SHA-1"}'), 1);
    assert.ok((value(body, 'shoal_stanzas_total{direction="in",kind="message"}') ?? 0) >= 2);
    assert.ok((value(body, 'shoal_stanzas_total{direction="out",kind="message"}') ?? 0) >= 1);
    assert.ok((value(body, 'shoal_stanzas_total{direction="in",kind="iq"}') ?? 0) >= 1, 'the ping');
    assert.ok((value(body, 'shoal_stanza_processing_seconds_count{kind="message"}') ?? 0) >= 2);
    assert.equal(value(body, 'shoal_offline_messages'), 1);
    assert.ok((value(body, 'shoal_offline_bytes') ?? 0) > 20);
    // The process: event-loop lag and memory.
    assert.ok(value(body, 'shoal_nodejs_eventloop_lag_seconds') !== undefined);
    assert.ok((value(body, 'shoal_process_resident_memory_bytes') ?? 0) > 1e6);
  } finally {
    await alice.xmpp.stop();
    await bob.xmpp.stop();
  }
  await waitUntil(() => srv.server.router.size === 0, 'the sessions to end');
  const afterwards = (await scrape()).body;
  assert.equal(value(afterwards, 'shoal_sessions'), 0);
  assert.equal(value(afterwards, 'shoal_connections{transport="websocket"}'), 0);
});

test('only metrics.allowed_ips may read them, and metrics.enabled false removes them', async () => {
  // 127.0.0.2 is loopback too, but not in the default allowed_ips (127.0.0.1, ::1).
  assert.equal((await scrape('127.0.0.2')).status, 403);
  srv.server.config.metrics.allowed_ips = ['127.0.0.2'];
  try {
    assert.equal((await scrape('127.0.0.2')).status, 200);
    assert.equal((await scrape('127.0.0.1')).status, 403);
  } finally {
    srv.server.config.metrics.allowed_ips = ['127.0.0.1', '::1'];
  }
  srv.server.config.metrics.enabled = false;
  try {
    assert.equal((await scrape()).status, 404);
  } finally {
    srv.server.config.metrics.enabled = true;
  }
});
