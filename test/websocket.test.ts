// XMPP over WebSocket (RFC 7395) on a real server: xmpp.js logs in over ws://
// and chats with a TCP client; a raw WebSocket client checks the handshake,
// the framing and every error path (RFC 7395 §3.1, §3.3, §3.6).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, startXmppJs, trustCertificate, xml } from './support/xmppjs.js';
import { OPEN, WsClient, NS_FRAMING } from './support/ws-client.js';

// xmpp.js uses the WebSocket global of browsers (and of Node 22); Node 20 has none.
(globalThis as Record<string, unknown>).WebSocket ??= WebSocket;

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const MAX_STANZA = 20_000;

let srv: TestServer;
let url: string;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({
    http: { host: '127.0.0.1', port: 0, trust_proxy: ['127.0.0.2'], websocket_ping: 0.3 },
    limits: { max_stanza_bytes: MAX_STANZA },
  });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  url = `ws://127.0.0.1:${srv.server.portOf('http')}/xmpp-websocket`;
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

/** The condition of a <stream:error/> element. */
function streamErrorCondition(el: { getChildren(): { name: string; xmlns: string }[] }): string | undefined {
  return el.getChildren().find((c) => c.xmlns === NS_STREAM_ERRORS && c.name !== 'text')?.name;
}

/** Opens a stream and waits for the server's <open/> and features. */
async function opened(c: WsClient): Promise<void> {
  c.send(OPEN());
  const open = await c.next((el) => el.name === 'open', 'the server <open/>');
  assert.equal(open.xmlns, NS_FRAMING);
  await c.next((el) => el.name === 'features' && el.xmlns === NS_STREAM, 'stream features');
}

/** Waits for a stream error, then <close/>, then the WebSocket closing; returns the condition. */
async function streamError(c: WsClient): Promise<string | undefined> {
  const err = await c.next((el) => el.name === 'error' && el.xmlns === NS_STREAM, 'a stream error');
  await c.next((el) => el.name === 'close' && el.xmlns === NS_FRAMING, '<close/> after the error');
  await c.closed();
  return streamErrorCondition(err);
}

describe('xmpp.js over WebSocket', () => {
  test('logs in (SASL, restart with a new <open/>, bind) and chats with a TCP client both ways', async () => {
    const port = srv.server.portOf('http');
    const alice = await startXmppJs({ port, service: url, username: 'alice', password: 'alice-pass' });
    const bob = await startXmppJs({ port: srv.port, username: 'bob', password: 'bob-pass' });
    try {
      assert.match(alice.jid, /^alice@localhost\//);
      await alice.xmpp.send(xml('message', { to: bob.jid, type: 'chat', id: 'ws1' }, xml('body', {}, 'from the web')));
      const atBob = await bob.nextStanza((el) => el.is('message') && el.attrs.id === 'ws1', 'the message at the TCP client');
      assert.equal(atBob.getChildText('body'), 'from the web');
      assert.equal(atBob.attrs.from, alice.jid);
      await bob.xmpp.send(xml('message', { to: alice.jid, type: 'chat', id: 'tcp1' }, xml('body', {}, 'from TCP')));
      const atAlice = await alice.nextStanza((el) => el.is('message') && el.attrs.id === 'tcp1', 'the message at the WebSocket client');
      assert.equal(atAlice.getChildText('body'), 'from TCP');
    } finally {
      await alice.xmpp.stop();
      await bob.xmpp.stop();
    }
  });
});

describe('RFC 7395 handshake', () => {
  test('a client that does not ask for the xmpp subprotocol is refused', async () => {
    await assert.rejects(WsClient.connect(url, []), /HTTP 400/);
    await assert.rejects(WsClient.connect(url, ['chat']), /HTTP 400/);
  });

  test('the server agrees to the xmpp subprotocol', async () => {
    const c = await WsClient.connect(url, ['chat', 'xmpp']);
    assert.equal(c.ws.protocol, 'xmpp');
    c.ws.close();
  });

  test('another path is not found, and a plain GET of the endpoint asks for an upgrade', async () => {
    await assert.rejects(WsClient.connect(url.replace('xmpp-websocket', 'other')), /HTTP 404/);
    const res = await fetch(url.replace('ws:', 'http:'));
    assert.equal(res.status, 426);
  });

  test('the server <open/> answers the client’s, and stream-level elements declare the stream prefix', async () => {
    const c = await WsClient.connect(url);
    c.send(OPEN());
    const open = await c.next((el) => el.name === 'open', '<open/>');
    assert.equal(open.attrs.from, 'localhost');
    assert.equal(open.attrs.version, '1.0');
    assert.ok((open.attrs.id ?? '').length >= 16);
    await c.next((el) => el.name === 'features' && el.xmlns === NS_STREAM, 'features');
    // RFC 7395 §3.3.3: each message stands alone, so the stream prefix is declared on it.
    assert.match(c.messages[1]!, /^<stream:features xmlns:stream='http:\/\/etherx\.jabber\.org\/streams'>/);
    c.send(`<close xmlns='${NS_FRAMING}'/>`);
    await c.next((el) => el.name === 'close' && el.xmlns === NS_FRAMING, 'the server <close/>');
    assert.equal(await c.closed(), 1000);
  });
});

describe('RFC 7395 framing errors', () => {
  test('text that is not an element is a stream error', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send('hello');
    assert.equal(await streamError(c), 'bad-format');
  });

  test('part of an element is a stream error', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send("<message xmlns='jabber:client' to='bob@localhost'><body>");
    assert.equal(await streamError(c), 'not-well-formed');
  });

  test('two elements in one message are a stream error', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
    assert.equal(await streamError(c), 'bad-format');
  });

  test('a prefix the message does not declare is a stream error (each message stands alone)', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send("<stream:error><x/></stream:error>");
    assert.equal(await streamError(c), 'not-well-formed');
  });

  test('a first message that is not <open/> is refused like a root that is not <stream:stream>', async () => {
    const c = await WsClient.connect(url);
    c.send("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' to='localhost' version='1.0'/>");
    await c.next((el) => el.name === 'open', 'the server <open/> first (RFC 6120 §4.9.1.2)');
    assert.equal(await streamError(c), 'invalid-namespace');
  });

  test('a second <open/> without a restart is a stream error', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send(OPEN());
    assert.equal(await streamError(c), 'bad-format');
  });

  test('a message larger than limits.max_stanza_bytes is policy-violation', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send(`<message xmlns='jabber:client' to='bob@localhost'><body>${'x'.repeat(MAX_STANZA)}</body></message>`);
    assert.equal(await streamError(c), 'policy-violation');
  });

  test('a message far beyond the limit is cut off by the WebSocket layer (1009) before it is buffered', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send(`<message xmlns='jabber:client'><body>${'x'.repeat(MAX_STANZA * 3)}</body></message>`);
    // RFC 6455 §7.4.1: 1009, a message too big to process.
    assert.equal(await c.closed(), 1009);
  });

  test('a binary message is refused with close code 1003 (RFC 7395 §3.2: text only)', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send(Buffer.from("<presence xmlns='jabber:client'/>"), true);
    assert.equal(await c.closed(), 1003);
  });

  test('a restricted XML construct (a comment) is restricted-xml, as over TCP', async () => {
    const c = await WsClient.connect(url);
    await opened(c);
    c.send("<presence xmlns='jabber:client'><!-- hi --></presence>");
    assert.equal(await streamError(c), 'restricted-xml');
  });
});

describe('keepalive and security of ws://', () => {
  test('the server pings; a client that never answers is dropped', async () => {
    const answering = await WsClient.connect(url);
    let pings = 0;
    answering.ws.on('ping', () => pings++);
    const silent = await WsClient.connect(url, ['xmpp'], { autoPong: false });
    // Two ping intervals (0.3 s): the silent one has missed a pong by then.
    assert.equal(await silent.closed(), 1006);
    assert.ok(pings >= 1, 'the answering client was pinged');
    assert.equal(answering.closeCode, undefined, 'the answering client is still connected');
    answering.ws.close();
  });

  test('on loopback ws:// counts as encrypted: PLAIN is offered, -PLUS is not (no TLS to bind to)', async () => {
    const c = await WsClient.connect(url);
    c.send(OPEN());
    const features = await c.next((el) => el.name === 'features', 'features');
    const mechs = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
    assert.ok(mechs.includes('PLAIN'), mechs.join());
    assert.ok(!mechs.some((m) => m.endsWith('-PLUS')), mechs.join());
    assert.equal(features.getChild('starttls', 'urn:ietf:params:xml:ns:xmpp-tls'), undefined);
    c.ws.close();
  });

  test('through a trusted proxy that reached us over plain http, PLAIN is not offered', async () => {
    // 127.0.0.2 is the trusted proxy; the client behind it is a remote address.
    const c = await WsClient.connect(url, ['xmpp'], { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '198.51.100.7', 'X-Forwarded-Proto': 'http' } });
    c.send(OPEN());
    const features = await c.next((el) => el.name === 'features', 'features');
    const mechs = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
    assert.ok(!mechs.includes('PLAIN'), mechs.join());
    assert.ok(mechs.includes('SCRAM-SHA-256'), mechs.join());
    c.ws.close();
  });

  test('through a trusted TLS proxy, PLAIN is offered', async () => {
    const c = await WsClient.connect(url, ['xmpp'], { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '198.51.100.7', 'X-Forwarded-Proto': 'https' } });
    c.send(OPEN());
    const features = await c.next((el) => el.name === 'features', 'features');
    const mechs = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
    assert.ok(mechs.includes('PLAIN'), mechs.join());
    c.ws.close();
  });

  test('X-Forwarded-* from an address that is not a trusted proxy is ignored', async () => {
    // From 127.0.0.3 (loopback, not a trusted proxy) the headers change nothing: loopback counts as encrypted.
    const c = await WsClient.connect(url, ['xmpp'], { localAddress: '127.0.0.3', headers: { 'X-Forwarded-Proto': 'http' } });
    c.send(OPEN());
    const features = await c.next((el) => el.name === 'features', 'features');
    const mechs = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
    assert.ok(mechs.includes('PLAIN'), mechs.join());
    c.ws.close();
  });
});
