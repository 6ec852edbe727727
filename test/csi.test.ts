// XEP-0352 client state indication against a real server: the stream feature over raw
// XML, and with slixmpp's xep_0352 plugin on an inactive client (xmpp.js the contact):
// a presence flood is held, a message is not.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { login } from './support/login.js';
import { serverCertificate, trustCertificate } from './support/xmppjs.js';
import { isMessage, slixmppMissing, SlixClient, type StanzaView } from './support/im-clients.js';
import { befriend, flush, newCast, type ImEnv } from './support/im-scenarios.js';
import { NS } from '../src/xml/namespaces.js';

const NS_CSI = 'urn:xmpp:csi:0';
/** Without -PLUS, so that slixmpp 1.8 can use SCRAM (see test/slixmpp.test.ts). */
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };

describe('XEP-0352 over raw XML', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'alice-pass');
  });
  after(async () => {
    await srv.stop();
  });

  test('§4.1: the csi feature is offered after authentication (beside bind), not before', async () => {
    const { client, features } = await login(srv.port, 'alice', 'alice-pass');
    assert.ok(features.getChild('csi', NS_CSI), features.toString());
    assert.ok(features.getChild('bind', NS.BIND));
    const beforeAuth = client.received.slice(0, client.received.indexOf('<success'));
    assert.ok(!beforeAuth.includes(NS_CSI), beforeAuth);
    // §4.2: no reply to either; §5.1: a ping sent after them is answered after they were handled.
    client.send(`<inactive xmlns='${NS_CSI}'/><active xmlns='${NS_CSI}'/><iq type='get' id='p1'><ping xmlns='${NS.PING}'/></iq>`);
    const pong = await client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'p1', 'the pong');
    assert.equal(pong.attrs.type, 'result');
    assert.ok(!/<(inactive|active|stream:error)/.test(client.received.slice(client.received.indexOf('bind1'))), client.received);
    client.close();
  });
});

const skip = slixmppMissing();

describe('XEP-0352 with slixmpp (xep_0352) and xmpp.js', { skip }, () => {
  let srv: TestServer | undefined;
  let env: ImEnv;
  let restoreTls: (() => void) | undefined;
  before(async () => {
    srv = await startTestServer({ sasl: NO_PLUS });
    restoreTls = trustCertificate(serverCertificate(srv.dir));
    env = { srv, caFile: join(srv.dir, 'data', 'tls', 'self-signed.crt'), slixMech: 'SCRAM-SHA-256' };
  });
  after(async () => {
    restoreTls?.();
    await srv?.stop();
  });

  test('CSI holds a presence flood but not a message', async (t) => {
    const cast = newCast(t, env);
    const { alice, bob } = await cast.accounts('alice', 'bob');
    const a = await cast.online('slixmpp', alice);
    const b = await cast.online('xmpp.js', bob);
    assert.ok(a instanceof SlixClient);
    await befriend(a, b);
    await b.presence({ status: 'start' });
    await a.next((s) => fromB(s) && s.status === 'start', "b's presence while a is active");

    await a.csi('inactive');
    // The server handles a connection's input in order (§5.1): once this ping is answered, a is inactive.
    await a.ping();
    const seen = a.history.length;
    const bPresences = (): StanzaView[] => a.history.slice(seen).filter(fromB);

    for (let i = 1; i <= 50; i++) await b.presence({ status: `flood-${i}` });
    // Everything b sent has been handled and anything for a written, had it not been held.
    await flush(b, a);
    assert.deepEqual(bPresences(), [], 'no presence of the flood reached the inactive client');

    await b.message(a.jid, 'wake up');
    // At once, while a is still inactive; only the latest presence went before it (the order b sent them in).
    await a.next(isMessage('wake up'), 'the message, while inactive');
    assert.deepEqual(
      bPresences().map((s) => s.status),
      ['flood-50'],
      'one presence per contact at most: the latest, released ahead of the message',
    );

    for (let i = 51; i <= 60; i++) await b.presence({ status: `flood-${i}` });
    await flush(b, a);
    assert.equal(bPresences().length, 1, 'held again after the message');

    await a.csi('active');
    const latest = await a.next((s) => fromB(s) && s.status === 'flood-60', 'the latest presence after <active/>');
    assert.ok(latest.xml.includes('urn:xmpp:delay'), 'XEP-0203: it says when it came');
    await flush(b, a);
    assert.deepEqual(
      bPresences().map((s) => s.status),
      ['flood-50', 'flood-60'],
      'nothing else of the flood ever reached a',
    );

    // Active again: a presence goes out at once.
    await b.presence({ status: 'live' });
    await a.next((s) => fromB(s) && s.status === 'live', 'a presence once active');

    function fromB(s: StanzaView): boolean {
      return s.kind === 'presence' && s.type === null && s.from === b.jid;
    }
  });
});
