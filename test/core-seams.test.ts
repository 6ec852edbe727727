// What the reshaped core promises on the wire: stream features and stream errors
// with the `stream:` prefix declared on the header (clients match the qualified
// name), and a stanza handed to a session whose connection is gone reaching
// offline storage and the next login, exactly once.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { login } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import { x } from '../src/xml/element.js';
import type { OfflineApi } from '../src/modules/offline/api.js';
import { until } from './support/until.js';

describe('the TCP framing', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'alice-pass');
  });
  after(async () => {
    await srv.stop();
  });

  test('features are <stream:features> with the prefix of the header, at every stage', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    const text = client.received;
    // Before TLS, after TLS, after SASL: three stream headers, three feature sets.
    assert.equal(text.match(/<stream:stream /g)?.length, 3, text);
    assert.equal(text.match(/<stream:features>/g)?.length, 3, text);
    assert.ok(text.includes(`xmlns:stream='${NS.STREAM}'`), 'the prefix is declared on our header');
    assert.ok(!/<features[\s>]/.test(text), 'never an unprefixed <features>');
    assert.ok(/<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls><\/stream:features>/.test(text), text);
    client.close();
  });

  test('stream errors are <stream:error> with the prefix, before and after login', async () => {
    const pre = await RawClient.connect(srv.port);
    pre.send(STREAM_OPEN());
    await pre.element('features');
    pre.send('<message><body>too early</body></message>');
    assert.equal(await pre.streamError(), 'not-authorized');
    await pre.closedEvent();
    assert.ok(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/.test(pre.received), pre.received);
    assert.ok(!/<error xmlns=["']http:\/\/etherx/.test(pre.received));
    assert.ok(pre.received.endsWith('</stream:stream>'));

    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send(`<message from='bob@localhost'><body>spoofed</body></message>`);
    assert.equal(await client.streamError(), 'invalid-from');
    assert.ok(/<stream:error><invalid-from xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/.test(client.received));
  });

  test('a refused header still gets a header first, then <stream:error>', async () => {
    const c = await RawClient.connect(srv.port);
    c.send(STREAM_OPEN('elsewhere.example'));
    assert.equal(await c.streamError(), 'host-unknown');
    assert.ok(/^<\?xml version='1.0'\?><stream:stream [^>]*><stream:error><host-unknown /.test(c.received), c.received);
  });
});

describe('no stanza lost when a connection goes away', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'alice-pass');
    await srv.addUser('bob', 'bob-pass');
  });
  after(async () => {
    await srv.stop();
  });

  test('a message handed to a session whose connection is gone goes to offline storage and arrives once at the next login', async () => {
    const bob = await login(srv.port, 'bob', 'bob-pass');
    bob.client.send('<presence/>');
    const alice = await login(srv.port, 'alice', 'alice-pass');
    alice.client.send('<presence/>');
    await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid, 'own presence echo');
    // A module that looked the session up a moment ago still holds it when the socket dies.
    const held = srv.server.router.getSession(alice.jid);
    assert.ok(held);
    const ended = new Promise<void>((resolve) => srv.server.dispatcher.on('session-ended', (s) => (s === held ? resolve() : undefined)));
    alice.client.close();
    await ended;
    assert.equal(srv.server.router.getSession(alice.jid), undefined);

    const stanza = x('message', NS.CLIENT, { from: bob.jid, to: alice.jid, type: 'chat', id: 'late-1' }, x('body', NS.CLIENT, {}, 'are you there?'));
    assert.equal(held.send(stanza), false, 'send reports the failed delivery');
    await srv.server.dispatcher.drain();
    assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'alice'), 1, 'kept offline');
    // Bob was not told it failed: it was accepted, and it is not lost.
    assert.ok(!bob.client.received.includes("type='error'") && !bob.client.received.includes('type="error"'));

    const again = await login(srv.port, 'alice', 'alice-pass');
    again.client.send('<presence/>');
    const got = await again.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'late-1', 'the stored message');
    assert.equal(got.getChildText('body'), 'are you there?');
    assert.equal(got.getChild('delay', 'urn:xmpp:delay')?.attrs.from, 'localhost');
    // A round trip after it: nothing else (no second copy) came before the answer.
    again.client.send(`<iq type='get' id='rt'><ping xmlns='${NS.PING}'/></iq>`);
    await again.client.waitFor((el) => el.attrs.id === 'rt', 'ping result');
    assert.equal(again.client.received.split('are you there?').length - 1, 1, 'delivered exactly once');
    // Removed from storage once written (the removal follows the write; on PostgreSQL it can come after the ping's answer).
    await until(async () => (await srv.server.module<OfflineApi>('offline').count('localhost', 'alice')) === 0, 'the message to leave storage once written');
    again.client.close();
    bob.client.close();
  });

  test('a message for a resource that just went away goes to another resource of the account', async () => {
    const bob = await login(srv.port, 'bob', 'bob-pass');
    const a1 = await login(srv.port, 'alice', 'alice-pass');
    const a2 = await login(srv.port, 'alice', 'alice-pass');
    a1.client.send('<presence><priority>5</priority></presence>');
    a2.client.send('<presence><priority>1</priority></presence>');
    await a2.client.waitFor((el) => el.name === 'presence' && el.attrs.from === a1.jid, 'a1 available');
    const held = srv.server.router.getSession(a1.jid)!;
    const ended = new Promise<void>((resolve) => srv.server.dispatcher.on('session-ended', (s) => (s === held ? resolve() : undefined)));
    a1.client.close();
    await ended;
    held.send(x('message', NS.CLIENT, { from: bob.jid, to: a1.jid, type: 'chat', id: 'moved' }, x('body', NS.CLIENT, {}, 'moved over')));
    const got = await a2.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'moved', 'the message at the other resource');
    assert.equal(got.attrs.to, a1.jid, 'addressed as it was sent');
    a2.client.close();
    bob.client.close();
  });
});
