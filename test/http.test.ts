// The HTTP listeners around the XMPP endpoints: XEP-0156 discovery
// (/.well-known/host-meta and host-meta.json), CORS and the WebSocket Origin
// check (http.allowed_origins), the per-address connection limit, https with
// channel binding over wss://, and system-shutdown for web streams.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, startXmppJs, trustCertificate, waitUntil } from './support/xmppjs.js';
import { OPEN, WsClient, NS_FRAMING } from './support/ws-client.js';
import { BoshRaw } from './support/bosh-client.js';
import { ScramClient } from '../src/sasl/scram-client.js';
import { NS } from '../src/xml/namespaces.js';

(globalThis as Record<string, unknown>).WebSocket ??= WebSocket;

let srv: TestServer;
let httpPort: number;
let httpsPort: number;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } });
  await srv.addUser('alice', 'alice-pass');
  httpPort = srv.server.portOf('http');
  httpsPort = srv.server.portOf('https');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

const httpSettings = (): NonNullable<typeof srv.server.config.http> => srv.server.config.http!;

describe('XEP-0156 discovery', () => {
  test('host-meta (XRD) names the BOSH and WebSocket endpoints at the URL the request used', async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/.well-known/host-meta`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/xrd\+xml/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const text = await res.text();
    assert.match(text, /<XRD xmlns='http:\/\/docs\.oasis-open\.org\/ns\/xri\/xrd-1\.0'>/);
    assert.ok(text.includes(`<Link rel='urn:xmpp:alt-connections:xbosh' href='http://127.0.0.1:${httpPort}/http-bind'/>`), text);
    assert.ok(text.includes(`<Link rel='urn:xmpp:alt-connections:websocket' href='ws://127.0.0.1:${httpPort}/xmpp-websocket'/>`), text);
  });

  test('host-meta.json, and http.public_url when set', async () => {
    const json = (await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/host-meta.json`)).json()) as { links: { rel: string; href: string }[] };
    assert.deepEqual(json.links, [
      { rel: 'urn:xmpp:alt-connections:xbosh', href: `http://127.0.0.1:${httpPort}/http-bind` },
      { rel: 'urn:xmpp:alt-connections:websocket', href: `ws://127.0.0.1:${httpPort}/xmpp-websocket` },
    ]);
    httpSettings().public_url = 'https://chat.example.org/xmpp/';
    try {
      const pub = (await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/host-meta.json`)).json()) as { links: { rel: string; href: string }[] };
      assert.deepEqual(
        pub.links.map((l) => l.href),
        ['https://chat.example.org/xmpp/http-bind', 'wss://chat.example.org/xmpp/xmpp-websocket'],
      );
    } finally {
      delete httpSettings().public_url;
    }
  });

  test('over https the links are https:// and wss://', async () => {
    const text = await (await fetch(`https://localhost:${httpsPort}/.well-known/host-meta`)).text();
    assert.ok(text.includes(`href='https://localhost:${httpsPort}/http-bind'`), text);
    assert.ok(text.includes(`href='wss://localhost:${httpsPort}/xmpp-websocket'`), text);
  });

  test('anything else is 404', async () => {
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/nothing`)).status, 404);
  });
});

describe('allowed origins', () => {
  test('an origin not in http.allowed_origins gets no CORS headers, and no WebSocket', async () => {
    httpSettings().allowed_origins = ['https://good.example'];
    try {
      const bosh = `http://127.0.0.1:${httpPort}/http-bind`;
      const good = await fetch(bosh, { method: 'OPTIONS', headers: { Origin: 'https://good.example' } });
      assert.equal(good.headers.get('access-control-allow-origin'), 'https://good.example');
      const bad = await fetch(bosh, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
      assert.equal(bad.headers.get('access-control-allow-origin'), null);
      const url = `ws://127.0.0.1:${httpPort}/xmpp-websocket`;
      await assert.rejects(WsClient.connect(url, ['xmpp'], { origin: 'https://evil.example' }), /HTTP 403/);
      const ok = await WsClient.connect(url, ['xmpp'], { origin: 'https://good.example' });
      ok.ws.close();
      // A client that is not a browser sends no Origin and is not a page of another site.
      const native = await WsClient.connect(url);
      native.ws.close();
    } finally {
      httpSettings().allowed_origins = ['*'];
    }
  });
});

describe('limits', () => {
  test('WebSockets and BOSH sessions count against limits.max_connections_per_ip', async () => {
    // The streams of the tests before have ended (their closing handshakes are asynchronous).
    await waitUntil(() => srv.server.connectionCount === 0, 'the earlier connections to end');
    srv.server.config.limits.max_connections_per_ip = 2;
    const url = `ws://127.0.0.1:${httpPort}/xmpp-websocket`;
    const open: WsClient[] = [];
    try {
      open.push(await WsClient.connect(url, ['xmpp'], { localAddress: '127.0.0.5' }));
      const bosh = new BoshRaw(`http://127.0.0.1:${httpPort}/http-bind`);
      await bosh.create();
      // BOSH requests come from fetch's own sockets (127.0.0.1): a second address.
      open.push(await WsClient.connect(url, ['xmpp'], { localAddress: '127.0.0.5' }));
      await assert.rejects(WsClient.connect(url, ['xmpp'], { localAddress: '127.0.0.5' }), /HTTP 503/);
      const second = new BoshRaw(`http://127.0.0.1:${httpPort}/http-bind`);
      await second.create();
      const third = new BoshRaw(`http://127.0.0.1:${httpPort}/http-bind`);
      const refused = await third.create();
      assert.equal(refused.attrs.condition, 'policy-violation');
      await bosh.send('', { type: 'terminate' });
      await second.send('', { type: 'terminate' });
    } finally {
      for (const c of open) c.ws.close();
      srv.server.config.limits.max_connections_per_ip = 100;
    }
  });
});

describe('https: wss:// with channel binding', () => {
  test('xmpp.js logs in over wss://', async () => {
    const s = await startXmppJs({ port: httpsPort, service: `wss://localhost:${httpsPort}/xmpp-websocket`, username: 'alice', password: 'alice-pass' });
    assert.match(s.jid, /^alice@localhost\//);
    await s.xmpp.stop();
  });

  test('over wss:// the features offer -PLUS, and SCRAM-SHA-256-PLUS with tls-exporter succeeds', async () => {
    const c = await WsClient.connect(`wss://localhost:${httpsPort}/xmpp-websocket`, ['xmpp'], { rejectUnauthorized: false });
    c.send(OPEN());
    const features = await c.next((el) => el.name === 'features', 'features');
    const mechs = features.getChild('mechanisms', NS.SASL)!.getChildren('mechanism').map((m) => m.text());
    assert.ok(mechs.includes('SCRAM-SHA-256-PLUS'), mechs.join());
    const socket = (c.ws as unknown as { _socket: TLSSocket })._socket;
    const cbData = socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    const scram = new ScramClient('SHA-256', 'alice', 'alice-pass', { cbType: 'tls-exporter', cbData });
    c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256-PLUS'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
    const challenge = await c.next((el) => el.name === 'challenge', 'challenge');
    c.send(`<response xmlns='${NS.SASL}'>${Buffer.from(scram.final(Buffer.from(challenge.text(), 'base64').toString())).toString('base64')}</response>`);
    const success = await c.next((el) => el.name === 'success' || el.name === 'failure', 'the outcome');
    assert.equal(success.name, 'success', success.toString());
    assert.ok(scram.verify(Buffer.from(success.text(), 'base64').toString()));
    // RFC 7395 §3.5: the restart is a new <open/>.
    c.send(OPEN());
    await c.next((el) => el.name === 'open', 'the new <open/>');
    const after = await c.next((el) => el.name === 'features', 'features after SASL');
    assert.ok(after.getChild('bind', NS.BIND));
    c.ws.close();
  });
});

describe('shutdown', () => {
  test('stopping the server ends WebSocket streams and BOSH sessions with system-shutdown', async () => {
    const own = await startTestServer({ http: { host: '127.0.0.1', port: 0 } });
    const port = own.server.portOf('http');
    const ws = await WsClient.connect(`ws://127.0.0.1:${port}/xmpp-websocket`);
    ws.send(OPEN());
    await ws.next((el) => el.name === 'features', 'features');
    const bosh = new BoshRaw(`http://127.0.0.1:${port}/http-bind`);
    await bosh.create({ wait: 30 });
    const held = bosh.send();
    await new Promise((r) => setTimeout(r, 100));
    await own.stop();
    const err = await ws.next((el) => el.name === 'error', 'the stream error');
    assert.ok(err.getChild('system-shutdown', NS.STREAM_ERRORS));
    await ws.next((el) => el.name === 'close' && el.xmlns === NS_FRAMING, '<close/>');
    const answer = await held;
    assert.equal(answer.attrs.type, 'terminate');
    assert.match(answer.text, /system-shutdown/);
  });
});
