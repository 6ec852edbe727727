// The seed's login sequence replayed as raw XML against a real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { login } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
});
after(() => srv.stop());

test('stream header and required STARTTLS as the only feature (seed step 1-2)', async () => {
  const c = await RawClient.connect(srv.port);
  c.send(STREAM_OPEN());
  const h = await c.header();
  assert.equal(h.name, 'stream');
  assert.equal(h.uri, NS.STREAM);
  assert.equal(h.contentNs, NS.CLIENT);
  assert.equal(h.attrs.from, 'localhost');
  assert.equal(h.attrs.version, '1.0');
  assert.ok(h.attrs.id && h.attrs.id.length >= 16, 'a long random stream id');
  const f = await c.element('features');
  const starttls = f.getChild('starttls', NS.TLS);
  assert.ok(starttls?.getChild('required', NS.TLS));
  assert.equal(f.getChildren().length, 1, 'STARTTLS is the only feature before TLS');
  c.close();
});

test('full seed login: TLS, SCRAM-SHA-256, bind (generated resource), session, roster, presence, message, logout', async () => {
  const a = await login(srv.port, 'alice', 'alice-pass', { resource: 'ignored' });
  assert.match(a.jid, /^alice@localhost\/[0-9a-f-]{36}$/, 'server-generated UUID resource, request ignored');
  assert.ok(a.features.getChild('bind', NS.BIND));
  assert.ok(a.features.getChild('session', NS.SESSION)?.getChild('optional', NS.SESSION));
  assert.ok(a.features.getChild('ver', NS.ROSTER_VER));
  a.client.send(`<iq type='set' id='sess'><session xmlns='${NS.SESSION}'/></iq>`);
  const sess = await a.client.waitFor((el) => el.attrs.id === 'sess');
  assert.equal(sess.attrs.type, 'result');
  assert.equal(sess.children.length, 0);
  a.client.send(`<iq type='get' id='r1'><query xmlns='${NS.ROSTER}'/></iq>`);
  const roster = await a.client.waitFor((el) => el.attrs.id === 'r1');
  assert.equal(roster.attrs.type, 'result');
  const ver = roster.getChild('query', NS.ROSTER)?.attrs.ver;
  assert.ok(ver !== undefined);
  a.client.send(`<iq type='get' id='r2'><query xmlns='${NS.ROSTER}' ver='${ver}'/></iq>`);
  const same = await a.client.waitFor((el) => el.attrs.id === 'r2');
  assert.equal(same.attrs.type, 'result');
  assert.equal(same.children.length, 0, 'known version: empty result');
  a.client.send('<presence/>');

  const b = await login(srv.port, 'bob', 'bob-pass', { hash: 'SHA-1' });
  b.client.send('<presence/>');
  b.client.send(`<message to='alice@localhost' type='chat' id='m1'><body>hello</body></message>`);
  const msg = await a.client.element('message');
  assert.equal(msg.attrs.from, b.jid, 'from stamped with the full JID');
  assert.equal(msg.getChildText('body'), 'hello');

  a.client.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  const pong = await a.client.waitFor((el) => el.attrs.id === 'p1');
  assert.equal(pong.attrs.type, 'result');

  a.client.send(`<presence type='unavailable'/></stream:stream>`);
  await a.client.streamEnd();
  await a.client.closedEvent();
  b.client.close();
});
