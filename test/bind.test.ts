// Resource binding (RFC 6120 §7) in both configured modes, and the legacy
// session establishment kept for old clients (RFC 6121 Appendix E; RFC 3921 §3).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { login, scramAuth } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import { escapeText, type Element } from '../src/xml/element.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** TLS and SCRAM done, stream restarted: the client may now bind (RFC 6120 §7.1). */
async function authenticated(port: number, user: string, password: string): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.header();
  await c.element('features');
  await c.startTls();
  await c.restart();
  await scramAuth(c, user, password);
  const features = await c.restart();
  assert.ok(features.getChild('bind', NS.BIND), 'bind offered after SASL');
  return c;
}

/** Sends a bind request (`resource` as text; undefined for none) and returns the reply. */
async function bind(c: RawClient, id: string, resource?: string): Promise<Element> {
  const r = resource === undefined ? '' : `<resource>${escapeText(resource)}</resource>`;
  c.send(`<iq type='set' id='${id}'><bind xmlns='${NS.BIND}'>${r}</bind></iq>`);
  return c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, `reply to ${id}`);
}

function boundJid(reply: Element): string {
  assert.equal(reply.attrs.type, 'result', reply.toString());
  const jid = reply.getChild('bind', NS.BIND)?.getChildText('jid', NS.BIND);
  assert.ok(jid, `a <jid/> in the result: ${reply.toString()}`);
  return jid;
}

/** The condition of a stanza error reply, checking its type too (RFC 6120 §8.3.2). */
function stanzaError(reply: Element): { type: string | undefined; condition: string | undefined } {
  assert.equal(reply.attrs.type, 'error', reply.toString());
  const error = reply.getChild('error');
  const cond = error?.getChildren().find((c) => c.xmlns === NS.STANZA_ERRORS && c.name !== 'text');
  return { type: error?.attrs.type, condition: cond?.name };
}

async function closeAll(...clients: RawClient[]): Promise<void> {
  for (const c of clients) {
    c.send('</stream:stream>');
    await c.closedEvent();
  }
}

describe('bind.resource: generate (the default)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'alice-pass');
  });
  after(() => srv.stop());

  test('the requested resource is ignored and each session gets its own UUID', async () => {
    const a1 = await login(srv.port, 'alice', 'alice-pass', { resource: 'phone' });
    const a2 = await login(srv.port, 'alice', 'alice-pass', { resource: 'phone' });
    const a3 = await login(srv.port, 'alice', 'alice-pass');
    const resources = [a1, a2, a3].map((a) => {
      const [bare, resource] = a.jid.split('/');
      assert.equal(bare, 'alice@localhost');
      assert.match(resource ?? '', UUID, 'a server-generated UUID');
      return resource;
    });
    assert.equal(new Set(resources).size, 3, 'all different');
    assert.equal(srv.server.router.getSessions('alice@localhost').length, 3);
    await closeAll(a1.client, a2.client, a3.client);
  });

  test('legacy <session/> is answered with an empty result, before and after binding', async () => {
    const c = await authenticated(srv.port, 'alice', 'alice-pass');
    c.send(`<iq type='set' id='s1'><session xmlns='${NS.SESSION}'/></iq>`);
    const before = await c.waitFor((el) => el.attrs.id === 's1');
    assert.equal(before.name, 'iq');
    assert.equal(before.attrs.type, 'result');
    assert.deepEqual(before.children, [], 'empty result');
    const jid = boundJid(await bind(c, 'b1'));
    c.send(`<iq type='set' id='s2'><session xmlns='${NS.SESSION}'/></iq>`);
    const afterBind = await c.waitFor((el) => el.attrs.id === 's2');
    assert.equal(afterBind.attrs.type, 'result');
    assert.deepEqual(afterBind.children, [], 'empty result');
    assert.equal(afterBind.attrs.to ?? jid, jid);
    // The stream is still usable afterwards.
    c.send(`<iq type='get' id='p1'><ping xmlns='${NS.PING}'/></iq>`);
    assert.equal((await c.waitFor((el) => el.attrs.id === 'p1')).attrs.type, 'result');
    await closeAll(c);
  });
});

describe('bind.resource: client', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ bind: { resource: 'client' } });
    await srv.addUser('alice', 'alice-pass');
    await srv.addUser('bob', 'bob-pass');
  });
  after(() => srv.stop());

  test('the requested resource is used; none requested means a generated one', async () => {
    const a = await login(srv.port, 'alice', 'alice-pass', { resource: 'Phone 1' });
    assert.equal(a.jid, 'alice@localhost/Phone 1', 'case and ASCII space are kept (OpaqueString)');
    const b = await login(srv.port, 'alice', 'alice-pass');
    assert.match(b.jid.split('/')[1] ?? '', UUID);
    const c = await authenticated(srv.port, 'alice', 'alice-pass');
    assert.match(boundJid(await bind(c, 'empty', '')).split('/')[1] ?? '', UUID, 'an empty <resource/> counts as none');
    await closeAll(a.client, b.client, c);
  });

  test('the resource is prepared with the OpaqueString profile (RFC 7622 §3.4)', async () => {
    const c = await authenticated(srv.port, 'alice', 'alice-pass');
    // RFC 8265 §4.2.1/§4.2.2: non-ASCII spaces map to U+0020, then NFC.
    assert.equal(boundJid(await bind(c, 'b1', 'cafe\u0301\u00a0bar')), 'alice@localhost/caf\u00e9 bar');
    await closeAll(c);
  });

  test('an invalid resource gets bad-request, and the client may try again', async () => {
    const c = await authenticated(srv.port, 'alice', 'alice-pass');
    // RFC 7622 §3.4 / RFC 8264 §9.12: control characters are disallowed (U+007F is legal XML, so it reaches PRECIS).
    for (const [id, bad] of [
      ['del', 'phone\u007f'],
      ['tab', 'a\tb'],
      ['long', 'x'.repeat(1024)], // RFC 7622 §3.4: at most 1023 octets
    ] as const) {
      const reply = await bind(c, id, bad);
      // RFC 6120 §7.7.2.1
      assert.deepEqual(stanzaError(reply), { type: 'modify', condition: 'bad-request' }, id);
    }
    assert.equal(srv.server.router.getSessions('alice@localhost').length, 0, 'nothing bound by the failures');
    // RFC 6120 §7.7.2.1: the stream stays open and binding can be retried.
    assert.equal(boundJid(await bind(c, 'ok', 'laptop')), 'alice@localhost/laptop');
    await closeAll(c);
  });

  test('a conflicting resource: the newcomer gets another one and both sessions keep working', async () => {
    const first = await login(srv.port, 'alice', 'alice-pass', { resource: 'phone' });
    assert.equal(first.jid, 'alice@localhost/phone');
    const second = await login(srv.port, 'alice', 'alice-pass', { resource: 'phone' });
    // RFC 6120 §7.7.2.2: the server may give the new session a different resource instead of a conflict.
    assert.notEqual(second.jid, first.jid);
    assert.ok(second.jid.startsWith('alice@localhost/'), second.jid);
    assert.equal(srv.server.router.getSessions('alice@localhost').length, 2, 'the first session was not disconnected');
    assert.equal(first.client.closed, false);

    const bob = await login(srv.port, 'bob', 'bob-pass');
    // Sent to the newcomer first: if routing mixed them up, the first session would see m2 before m1.
    bob.client.send(`<message to='${second.jid}' type='chat' id='m2'><body>to second</body></message>`);
    bob.client.send(`<message to='${first.jid}' type='chat' id='m1'><body>to first</body></message>`);
    const m1 = await first.client.element('message');
    assert.equal(m1.attrs.id, 'm1');
    assert.equal(m1.attrs.to, first.jid);
    assert.equal(m1.attrs.from, bob.jid);
    const m2 = await second.client.element('message');
    assert.equal(m2.attrs.id, 'm2');
    assert.equal(m2.attrs.to, second.jid);

    // Once the first session is gone its resource is free again.
    await closeAll(first.client);
    const third = await login(srv.port, 'alice', 'alice-pass', { resource: 'phone' });
    assert.equal(third.jid, 'alice@localhost/phone');
    await closeAll(second.client, third.client, bob.client);
  });
});
