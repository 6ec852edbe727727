// XEP-0215 External Service Discovery with xmpp.js: the configured STUN and TURN
// servers, TURN entries with credentials that coturn's use-auth-secret accepts,
// filtering by type, credentials for one service, and the errors.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, startXmppJs, trustCertificate, xml, type XmlElement, type XmppJsSession } from './support/xmppjs.js';
import { RawClient } from './support/raw-client.js';
import { login } from './support/login.js';

const NS = 'urn:xmpp:extdisco:2';
const SECRET = 'coturn-static-auth-secret';

let srv: TestServer;
let alice: XmppJsSession;
let restoreTls: () => void;

before(async () => {
  srv = await startTestServer({
    stun: [{ host: 'stun.example.net' }],
    turn: { host: 'turn.example.org', port: 3478, tls_port: 5349, secret: SECRET, ttl: 600 },
  });
  await srv.addUser('alice', 'alice-pass');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
  alice = await startXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' });
});
after(async () => {
  await alice.xmpp.stop();
  restoreTls();
  await srv.stop();
});

const get = (payload: XmlElement): Promise<XmlElement> => alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, payload));
const attrs = (el: XmlElement): Record<string, string | undefined> => ({ ...el.attrs });

/** A TURN entry's credentials are what coturn computes from the shared secret. */
function assertCoturnCredentials(s: XmlElement): void {
  const username = s.attrs.username!;
  const [expiry, user] = username.split(':');
  assert.equal(user, 'alice@localhost');
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Number(expiry) > now + 590 && Number(expiry) <= now + 601, `expiry ${expiry}, now ${now}`);
  assert.equal(s.attrs.password, createHmac('sha1', SECRET).update(username).digest('base64'));
  assert.equal(s.attrs.expires, new Date(Number(expiry) * 1000).toISOString().replace('.000Z', 'Z'));
  assert.equal(s.attrs.restricted, '1');
}

describe('XEP-0215', () => {
  test('the server advertises the feature', async () => {
    const info = await get(xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes(NS));
  });

  test('all services: STUN entries without credentials, TURN entries with them', async () => {
    const services = (await get(xml('services', { xmlns: NS }))).getChild('services', NS)!.getChildren('service', NS);
    assert.deepEqual(
      services.map((s) => [s.attrs.type, s.attrs.host, s.attrs.port, s.attrs.transport]),
      [
        ['stun', 'stun.example.net', '3478', 'udp'],
        ['stun', 'turn.example.org', '3478', 'udp'],
        ['turn', 'turn.example.org', '3478', 'udp'],
        ['turn', 'turn.example.org', '3478', 'tcp'],
        ['turns', 'turn.example.org', '5349', 'tcp'],
      ],
    );
    for (const s of services.filter((x) => x.attrs.type === 'stun')) assert.equal(attrs(s).username, undefined);
    for (const s of services.filter((x) => x.attrs.type !== 'stun')) assertCoturnCredentials(s);
  });

  test('services of one type', async () => {
    const result = (await get(xml('services', { xmlns: NS, type: 'turns' }))).getChild('services', NS)!;
    assert.equal(result.attrs.type, 'turns');
    const services = result.getChildren('service', NS);
    assert.equal(services.length, 1);
    assert.equal(services[0]!.attrs.port, '5349');
  });

  test('credentials for one service, by host and type (and port)', async () => {
    const all = (await get(xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.example.org', type: 'turn' })))).getChild('credentials', NS)!.getChildren('service', NS);
    assert.equal(all.length, 2, 'udp and tcp');
    all.forEach(assertCoturnCredentials);
    const one = (await get(xml('credentials', { xmlns: NS }, xml('service', { host: 'turn.example.org', type: 'turns', port: '5349' })))).getChild('credentials', NS)!.getChildren('service', NS);
    assert.equal(one.length, 1);
  });

  test('credentials for an unknown service are item-not-found; a request without host is bad-request', async () => {
    await assert.rejects(get(xml('credentials', { xmlns: NS }, xml('service', { host: 'stun.example.net', type: 'stun' }))), (err: Error & { condition?: string }) => err.condition === 'item-not-found');
    await assert.rejects(get(xml('credentials', { xmlns: NS }, xml('service', { type: 'turn' }))), (err: Error & { condition?: string }) => err.condition === 'bad-request');
  });
});

describe('XEP-0215 without configured services', () => {
  test('the feature is not advertised and the request is service-unavailable', async () => {
    const plain = await startTestServer({});
    try {
      await plain.addUser('bob', 'bob-pass');
      const { client } = await login(plain.port, 'bob', 'bob-pass');
      client.send(`<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
      const info = await client.waitFor((el) => el.attrs.id === 'd1', 'disco#info');
      const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.length > 0 && !features.includes(NS), features.join());
      client.send(`<iq type='get' id='x1' to='localhost'><services xmlns='${NS}'/></iq>`);
      const reply = await client.waitFor((el) => el.attrs.id === 'x1', 'the reply');
      assert.equal(reply.attrs.type, 'error');
      assert.ok(reply.getChild('error')?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
      (client as RawClient).close();
    } finally {
      await plain.stop();
    }
  });
});
