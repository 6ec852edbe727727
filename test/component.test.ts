// XEP-0114 external components: the handshake (right, wrong, unknown domain, a
// second connection for a connected domain), routing both ways (subdomains
// included), a spoofed 'from' refused, the component domain in the host's
// disco#items, and a real component library (@xmpp/component) exchanging a
// message with a real slixmpp client.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, iq, stanzaErrorCondition } from './support/raw-client.js';
import { login } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import { SlixClient, isMessage, slixmppMissing } from './support/im-clients.js';
import { loadXmppJsComponent, withTimeout } from './support/xmppjs.js';

const NS_COMPONENT = 'jabber:component:accept';
const BRIDGE = { domain: 'bridge.localhost', secret: 'bridge-secret-123' };
const OTHER = { domain: 'other.localhost', secret: 'other-secret-456' };

const componentHeader = (to: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='${NS.STREAM}' to='${to}'>`;

const handshakeFor = (id: string, secret: string): string => createHash('sha1').update(id + secret).digest('hex');

/** Connects as a component for `domain`; with `secret`, completes the handshake. */
async function component(port: number, domain: string, secret?: string): Promise<{ c: RawClient; id: string }> {
  const c = await RawClient.connect(port);
  c.send(componentHeader(domain));
  const h = await c.header();
  const id = h.attrs.id ?? '';
  if (secret !== undefined) {
    c.send(`<handshake>${handshakeFor(id, secret)}</handshake>`);
    const ok = await c.element('handshake');
    assert.equal(ok.children.length, 0, 'an empty <handshake/> confirms');
  }
  return { c, id };
}

describe('XEP-0114 components', () => {
  let srv: TestServer;
  let cport: number;
  before(async () => {
    srv = await startTestServer({ components: { listen: { host: '127.0.0.1', port: 0 }, services: [BRIDGE, OTHER] } });
    cport = srv.server.componentPort;
    await srv.addUser('alice', 'alice-pass');
  });
  after(async () => {
    await srv.stop();
  });

  test('the server header answers from the domain, with a fresh id and no version', async () => {
    const c = await RawClient.connect(cport);
    c.send(componentHeader(BRIDGE.domain));
    const h = await c.header();
    assert.equal(h.attrs.from, BRIDGE.domain);
    assert.equal(h.contentNs, NS_COMPONENT);
    assert.ok((h.attrs.id ?? '').length >= 16);
    assert.equal(h.attrs.version, undefined, 'no stream features on a component stream');
    c.close();
  });

  test('a wrong handshake is not-authorized; an unknown domain is host-unknown', async () => {
    const { c } = await component(cport, BRIDGE.domain);
    c.send(`<handshake>${handshakeFor('not-the-id', BRIDGE.secret)}</handshake>`);
    assert.equal(await c.streamError(), 'not-authorized');
    await c.closedEvent();

    const u = await RawClient.connect(cport);
    u.send(componentHeader('nobody.localhost'));
    assert.equal(await u.streamError(), 'host-unknown');
    await u.closedEvent();

    // A stanza before the handshake is not accepted either.
    const early = await component(cport, OTHER.domain);
    early.c.send(`<message to='alice@localhost' from='${OTHER.domain}'><body>too early</body></message>`);
    assert.equal(await early.c.streamError(), 'not-authorized');
  });

  test('a second connection for a connected domain gets conflict; the first keeps working', async () => {
    const first = await component(cport, BRIDGE.domain, BRIDGE.secret);
    const second = await component(cport, BRIDGE.domain);
    second.c.send(`<handshake>${handshakeFor(second.id, BRIDGE.secret)}</handshake>`);
    assert.equal(await second.c.streamError(), 'conflict');
    const alice = await login(srv.port, 'alice', 'alice-pass');
    alice.client.send(`<message to='echo@${BRIDGE.domain}' id='still'><body>still there?</body></message>`);
    const got = await first.c.waitFor((el) => el.name === 'message' && el.attrs.id === 'still', 'the message at the first component');
    assert.equal(got.attrs.from, alice.jid);
    first.c.close();
    alice.client.close();
  });

  test('routing both ways, subdomains included, in the component namespace', async () => {
    const { c } = await component(cport, BRIDGE.domain, BRIDGE.secret);
    const alice = await login(srv.port, 'alice', 'alice-pass');
    alice.client.send(`<presence/>`);

    // User → component: the message arrives with the user's full JID, in jabber:component:accept.
    alice.client.send(`<message to='bot@${BRIDGE.domain}' id='m1' type='chat'><body>hi bot</body></message>`);
    const m1 = await c.waitFor((el) => el.name === 'message' && el.attrs.id === 'm1', 'm1 at the component');
    assert.equal(m1.xmlns, NS_COMPONENT, 'stanzas are written in the component stream namespace');
    assert.equal(m1.attrs.from, alice.jid);
    assert.equal(m1.getChildText('body', NS_COMPONENT), 'hi bot');
    assert.ok(!/xmlns=["']jabber:client["']/.test(c.received), 'no jabber:client namespace on the component stream');

    // A subdomain of the component's domain goes to it too.
    alice.client.send(`<message to='room@chat.${BRIDGE.domain}' id='m2'><body>sub</body></message>`);
    await c.waitFor((el) => el.name === 'message' && el.attrs.id === 'm2', 'm2 (subdomain) at the component');

    // Component → user, from its domain and from a subdomain.
    c.send(`<message from='bot@${BRIDGE.domain}/x' to='${alice.jid}' id='r1' type='chat'><body>hello human</body></message>`);
    const r1 = await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'r1', 'r1 at alice');
    assert.equal(r1.xmlns, NS.CLIENT);
    assert.equal(r1.attrs.from, `bot@${BRIDGE.domain}/x`);
    assert.equal(r1.getChildText('body'), 'hello human');
    c.send(`<message from='room@chat.${BRIDGE.domain}' to='alice@localhost' id='r2'><body>to the bare JID</body></message>`);
    await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'r2', 'r2 at alice (bare JID delivery)');

    // An IQ from the component to the server is answered (XEP-0199 ping), and one to the user's bare JID too.
    c.send(`<iq type='get' id='p1' from='${BRIDGE.domain}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
    const pong = await c.waitFor((el) => el.name === 'iq' && el.attrs.id === 'p1', 'ping result');
    assert.equal(pong.attrs.type, 'result');
    assert.equal(pong.attrs.to, BRIDGE.domain);

    // No 'from': stamped with the component's domain. No 'to': bad-request back to the component.
    c.send(`<message to='${alice.jid}' id='r3'><body>unstamped</body></message>`);
    assert.equal((await alice.client.waitFor((el) => el.attrs.id === 'r3', 'r3')).attrs.from, BRIDGE.domain);
    c.send(`<iq type='get' id='noto' from='${BRIDGE.domain}'><ping xmlns='${NS.PING}'/></iq>`);
    assert.equal(stanzaErrorCondition(await c.waitFor((el) => el.attrs.id === 'noto', 'error for no to')), 'bad-request');

    alice.client.close();
    c.close();
  });

  test('a spoofed from (a user, another component, the server) ends the component stream with invalid-from', async () => {
    for (const spoof of ['alice@localhost/x', `bot@${OTHER.domain}`, 'localhost', `evil${BRIDGE.domain}`]) {
      const { c } = await component(cport, BRIDGE.domain, BRIDGE.secret);
      c.send(`<message from='${spoof}' to='alice@localhost' id='spoof'><body>trust me</body></message>`);
      assert.equal(await c.streamError(), 'invalid-from', spoof);
      await c.closedEvent();
    }
    // Nothing of it reached alice, and the server is fine: she logs in and finds no message stored.
    const alice = await login(srv.port, 'alice', 'alice-pass');
    alice.client.send(`<presence/>`);
    await iq(alice.client, `type='get' to='localhost'`, `<ping xmlns='${NS.PING}'/>`);
    assert.ok(!alice.client.received.includes('trust me'));
    alice.client.close();
  });

  test('the host lists the component domains in disco#items; a disconnected component answers service-unavailable', async () => {
    const alice = await login(srv.port, 'alice', 'alice-pass');
    const items = await iq(alice.client, `type='get' to='localhost'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
    const jids = items.getChild('query', NS.DISCO_ITEMS)?.getChildren('item').map((i) => i.attrs.jid);
    // Beside the components, the host's own multi-user chat service (on by default).
    assert.deepEqual(jids, [BRIDGE.domain, 'conference.localhost', OTHER.domain]);
    // No component is connected for other.localhost now.
    const err = await iq(alice.client, `type='get' to='${OTHER.domain}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
    assert.equal(stanzaErrorCondition(err), 'service-unavailable');
    alice.client.close();
  });
});

describe('XEP-0114 with real libraries: an @xmpp/component bot and a slixmpp user', { skip: slixmppMissing() }, () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      sasl: { mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] },
      components: { listen: { host: '127.0.0.1', port: 0 }, services: [BRIDGE] },
    });
    await srv.addUser('bob', 'bob-pass');
  });
  after(async () => {
    await srv.stop();
  });

  test('the bot echoes what a slixmpp user writes, and the user reads the answer', async () => {
    const { component: makeComponent, xml } = await loadXmppJsComponent();
    const bot = makeComponent({ service: `xmpp://127.0.0.1:${srv.server.componentPort}`, domain: BRIDGE.domain, password: BRIDGE.secret });
    bot.reconnect.stop();
    const seen: { from: string; body: string }[] = [];
    bot.on('error', () => undefined);
    bot.on('stanza', (async (stanza: { is(n: string): boolean; attrs: Record<string, string>; getChildText(n: string): string | null }) => {
      if (!stanza.is('message')) return;
      const body = stanza.getChildText('body');
      if (body === null) return;
      seen.push({ from: stanza.attrs.from!, body });
      await bot.send(xml('message', { from: `echo@${BRIDGE.domain}`, to: stanza.attrs.from!, type: 'chat', id: `echo-${seen.length}` }, xml('body', {}, `echo: ${body}`)));
    }) as never);
    await withTimeout(bot.start(), 5000, 'the component to connect');

    const bobClient = await SlixClient.connect({ port: srv.port, user: 'bob', password: 'bob-pass', caFile: join(srv.dir, 'data', 'tls', 'self-signed.crt') });
    try {
      await bobClient.presence();
      await bobClient.message(`echo@${BRIDGE.domain}`, 'ping through the bridge', { type: 'chat' });
      const answer = await bobClient.next(isMessage('echo: ping through the bridge'), 'the echo');
      assert.equal(answer.from, `echo@${BRIDGE.domain}`);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.from, bobClient.jid, 'the component saw the user as the server stamped it');
    } finally {
      await bobClient.dispose();
      await bot.stop();
    }
  });
});
