// XEP-0368 direct TLS for clients: TLS from the first byte with ALPN
// xmpp-client; the first stream features offer SASL (with -PLUS and the
// channel bindings of XEP-0440), never STARTTLS; channel binding works as it
// does after STARTTLS; slixmpp logs in and chats over it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type tls from 'node:tls';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { scramAuth } from './support/login.js';
import { runSlixmppScript, slixmppMissing } from './support/slixmpp.js';
import { serverCertificate, startXmppJs, trustCertificate, waitUntil, xml, type XmlElement } from './support/xmppjs.js';
import { NS } from '../src/xml/namespaces.js';

let srv: TestServer;
let port: number;

before(async () => {
  srv = await startTestServer({ c2s_direct_tls: { host: '127.0.0.1', port: 0 } });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  port = srv.server.portOf('c2s_direct_tls');
});
after(async () => {
  await srv.stop();
});

async function opened(c: RawClient): Promise<XmlElementLike> {
  c.send(STREAM_OPEN());
  await c.header();
  return c.element('features');
}
type XmlElementLike = Awaited<ReturnType<RawClient['element']>>;

describe('direct TLS (XEP-0368)', () => {
  test('ALPN xmpp-client is agreed, and the first features offer SASL with -PLUS, not STARTTLS', async () => {
    const c = await RawClient.connectTls(port, { ALPNProtocols: ['xmpp-client'] });
    assert.equal((c.socket as tls.TLSSocket).alpnProtocol, 'xmpp-client');
    const features = await opened(c);
    assert.equal(features.getChild('starttls', NS.TLS), undefined);
    const mechs = features.getChild('mechanisms', NS.SASL)!.getChildren('mechanism').map((m) => m.text());
    assert.ok(mechs.includes('SCRAM-SHA-256-PLUS'), mechs.join());
    assert.ok(mechs.includes('PLAIN'), mechs.join());
    const cb = features.getChild('sasl-channel-binding', NS.SASL_CB)!.getChildren('channel-binding').map((b) => b.attrs.type);
    assert.deepEqual(cb, ['tls-exporter', 'tls-server-end-point']);
    c.close();
  });

  test('a client offering only another application protocol is refused in the handshake (RFC 7301 §3.2)', async () => {
    await assert.rejects(RawClient.connectTls(port, { ALPNProtocols: ['h2'] }));
  });

  test('a client without ALPN, and without SNI, is served too', async () => {
    // Connecting to an IP address without a servername sends no SNI: the listener's own certificate.
    const c = await RawClient.connectTls(port, { servername: undefined });
    const features = await opened(c);
    assert.ok(features.getChild('mechanisms', NS.SASL));
    c.close();
  });

  for (const cbType of ['tls-exporter', 'tls-server-end-point'] as const) {
    test(`SCRAM-SHA-256-PLUS with ${cbType}, then bind`, async () => {
      const c = await RawClient.connectTls(port, { ALPNProtocols: ['xmpp-client'] });
      await opened(c);
      await scramAuth(c, 'alice', 'alice-pass', { cbType });
      const features = await c.restart();
      assert.ok(features.getChild('bind', NS.BIND));
      c.send(`<iq type='set' id='b1'><bind xmlns='${NS.BIND}'/></iq>`);
      const bound = await c.waitFor((el) => el.attrs.id === 'b1', 'bind result');
      assert.equal(bound.attrs.type, 'result');
      c.close();
    });
  }

  test('the same TLS connection cannot STARTTLS again', async () => {
    const c = await RawClient.connectTls(port);
    await opened(c);
    c.send(`<starttls xmlns='${NS.TLS}'/>`);
    await c.element('failure');
    await c.streamEnd();
    c.close();
  });
});

describe('slixmpp over direct TLS', { skip: slixmppMissing() }, () => {
  // slixmpp 1.8 knows only the tls-unique channel binding, which TLS 1.3 lacks, and so sends
  // SCRAM's 'y' flag; that is only acceptable from a server that offers no -PLUS (RFC 5802 §6).
  let srv: TestServer;
  let port: number;
  before(async () => {
    srv = await startTestServer({ c2s_direct_tls: { host: '127.0.0.1', port: 0 }, sasl: { mechanisms: ['SCRAM-SHA-256', 'PLAIN'] } });
    await srv.addUser('alice', 'alice-pass');
    await srv.addUser('bob', 'bob-pass');
    port = srv.server.portOf('c2s_direct_tls');
  });
  after(() => srv.stop());

  test('logs in, pings, chats with an xmpp.js user and logs out', async () => {
    const restore = trustCertificate(serverCertificate(srv.dir));
    const peer = await startXmppJs({ port: srv.port, username: 'bob', password: 'bob-pass' });
    try {
      const received: XmlElement[] = [];
      peer.xmpp.on('stanza', (el: XmlElement) => {
        const body = el.getChildText('body');
        if (!el.is('message') || body === null) return;
        received.push(el);
        void peer.xmpp.send(xml('message', { to: el.attrs.from, type: 'chat' }, xml('body', {}, `echo: ${body}`)));
      });
      await peer.xmpp.send(xml('presence'));
      const ca = join(srv.dir, 'data', 'tls', 'self-signed.crt');
      const run = await runSlixmppScript(['--port', String(port), '--direct-tls', '--jid', 'alice@localhost', '--password', 'alice-pass', '--peer', 'bob@localhost', '--ca', ca, '--mech', 'SCRAM-SHA-256']);
      assert.equal(run.code, 0, `slixmpp failed:\n${run.events.map((e) => JSON.stringify(e)).join('\n')}\n${run.stderr}`);
      assert.equal(run.get('tls').version, 'TLSv1.3');
      assert.equal(run.get('tls').verified_with_ca, true);
      assert.equal(run.get('auth').mechanism, 'SCRAM-SHA-256');
      assert.equal(run.get('reply').body, 'echo: hello from slixmpp');
      assert.ok(received.some((m) => String(m.attrs.from).startsWith('alice@localhost/')));
      await waitUntil(() => srv.server.router.getSessions('alice@localhost').length === 0, "alice's session to end");
    } finally {
      await peer.xmpp.stop();
      restore();
    }
  });
});
