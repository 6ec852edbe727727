// The stream parser's defences (issue "Hardening", items A, B and D) against a
// real server, over raw sockets and with a real slixmpp client:
//
// A. Everything up to the end of the stream header is bounded (parser.ts
//    MAX_HEADER_SIZE, MAX_HEADER_ATTRIBUTES), on every stream, restarts
//    included, and so is the attribute count of any element of a stanza.
// B. Nesting depth is limited (DEFAULT_MAX_DEPTH), so deep input is refused at
//    once instead of freezing the server or overflowing its stack.
// D. A prefixed attribute reaches its recipient with its namespace declared,
//    whether the prefix was declared on the sender's stream header or on an
//    ancestor the recipient does not get, live or from offline storage.
//
// Stream errors are matched by element name and namespace (RawClient.streamError),
// so either way of writing the <error/> element is accepted (RFC 6120 §4.9).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN, iq } from './support/raw-client.js';
import { login, scramAuth } from './support/login.js';
import { SlixClient, slixmppMissing, type StanzaView } from './support/im-clients.js';
import { NS } from '../src/xml/namespaces.js';
import { DEFAULT_MAX_ATTRIBUTES, MAX_HEADER_ATTRIBUTES, MAX_HEADER_SIZE } from '../src/xml/parser.js';
import type { Element } from '../src/xml/element.js';
import type { OfflineApi } from '../src/modules/offline/api.js';

const FOO = 'urn:example:foo';
const ROLE = 'urn:example:role';
const EXT = 'urn:example:ext';
const NS_DELAY = 'urn:xmpp:delay';

const skipSlixmpp = slixmppMissing();

let srv: TestServer;
let caFile: string;
before(async () => {
  // The defaults, limits.max_stanza_bytes (256 KiB) included.
  srv = await startTestServer();
  caFile = join(srv.dir, 'data', 'tls', 'self-signed.crt');
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

/** ` a0='' a1='' …`: `n` distinct attributes. */
function attrs(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ` a${i}=''`;
  return s;
}

/**
 * A `to` for RawClient.restart(to), which sends STREAM_OPEN(to), `to='${to}'` among its
 * attributes: closing the quote early puts `extra` (which must end with a quote, as
 * ` a='1'` does) on the restarted header as well, without changing the shared helper.
 */
function toWithExtra(extra: string): string {
  assert.ok(extra.endsWith("'"));
  return `localhost'${extra.slice(0, -1)}`;
}

/** RFC 6120 §4.9.1.1: the stream error, then the server closes the stream and the connection. */
async function expectStreamError(c: RawClient, condition: string): Promise<void> {
  assert.equal(await c.streamError(), condition);
  await c.streamEnd();
  await c.closedEvent();
}

/** A stream whose header was accepted: the server's header and features were received. */
async function openStream(): Promise<RawClient> {
  const c = await RawClient.connect(srv.port);
  c.send(STREAM_OPEN());
  await c.header();
  await c.element('features');
  return c;
}

/**
 * Writes `head`, then `filler` repeated, 16 KiB at a time, until `total` characters are
 * out or the server has closed its stream. Each piece is handed to the kernel, and the
 * event loop (which runs the server too) turns once, before the next one: so the server
 * reads the data as it comes, and what it does about it is seen before the next piece.
 * Returns how much was written.
 */
async function sendUntilRefused(c: RawClient, head: string, filler: string, total = 16 * 1024 * 1024): Promise<number> {
  const piece = filler.repeat(Math.ceil((16 * 1024) / filler.length));
  const serverDone = (): boolean => c.closed || c.received.includes('</stream:stream>');
  await new Promise<void>((resolve) => c.socket.write(head, () => resolve()));
  let written = head.length;
  while (written < total && !serverDone()) {
    await new Promise<void>((resolve) => c.socket.write(piece, () => resolve()));
    written += piece.length;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return written;
}

/**
 * How much a client may get out before the server refuses a header that never ends. The
 * parser reads at most MAX_HEADER_SIZE characters of it; the rest of the bound is room for
 * the pieces sendUntilRefused writes before it sees the server's answer (a few, in practice).
 */
const READ_BOUND = 1024 * 1024;

let seq = 0;
/** XEP-0199 ping to the server: everything the client sent before has been processed (RFC 6120 §10.1). */
async function roundTrip(c: RawClient): Promise<void> {
  const r = await iq(c, "type='get' to='localhost'", `<ping xmlns='${NS.PING}'/>`);
  assert.equal(r.attrs.type, 'result');
}

/** Available presence (RFC 6121 §4.2), processed before this returns. */
async function available(c: RawClient): Promise<void> {
  c.send(`<presence id='avail-${++seq}'/>`);
  await roundTrip(c);
}

describe('A: the stream header is bounded, on every stream (RFC 6120 §13.12)', () => {
  test('a header with thousands of attributes: policy-violation, connection closed', async () => {
    const c = await RawClient.connect(srv.port);
    c.send(STREAM_OPEN('localhost', attrs(5000)));
    await expectStreamError(c, 'policy-violation');
  });

  test(`a short header with more than MAX_HEADER_ATTRIBUTES (${MAX_HEADER_ATTRIBUTES}) attributes: policy-violation`, async () => {
    const header = STREAM_OPEN('localhost', attrs(MAX_HEADER_ATTRIBUTES));
    assert.ok(header.length < MAX_HEADER_SIZE);
    const c = await RawClient.connect(srv.port);
    c.send(header);
    await expectStreamError(c, 'policy-violation');
  });

  for (const [what, head, filler, condition] of [
    ['a 16 MB attribute value in the header', "<?xml version='1.0'?><stream:stream to='", 'x', 'policy-violation'],
    ['a 16 MB element name as the header', "<?xml version='1.0'?><stream", 's', 'policy-violation'],
    ['a header whose attributes never end', "<?xml version='1.0'?><stream:stream to='localhost'", " a=''", 'policy-violation'],
    ['an XML declaration that never ends', "<?xml version='1.", '0', 'policy-violation'],
    ['an unterminated comment before the header', "<?xml version='1.0'?><!--", 'c', 'restricted-xml'],
    ['an unterminated DOCTYPE before the header', "<?xml version='1.0'?><!DOCTYPE stream:stream [", ' ', 'restricted-xml'],
    ['an unterminated processing instruction before the header', "<?xml version='1.0'?><?foo ", 'p', 'restricted-xml'],
  ] as const) {
    test(`${what}: ${condition} before 1 MB of the 16 MB is out`, async () => {
      const c = await RawClient.connect(srv.port);
      const written = await sendUntilRefused(c, head, filler);
      await expectStreamError(c, condition);
      assert.ok(written <= READ_BOUND, `the server let ${written} characters in before refusing`);
    });
  }

  test('after STARTTLS: a header that never ends on the restarted stream', async () => {
    const c = await openStream();
    await c.startTls();
    const written = await sendUntilRefused(c, `<stream:stream to='localhost' xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}' v='`, 'v');
    await expectStreamError(c, 'policy-violation');
    assert.ok(written <= READ_BOUND, `the server let ${written} characters in before refusing`);
  });

  test('after SASL: too many attributes on the restarted header', async () => {
    const c = await openStream();
    await c.startTls();
    await c.restart();
    await scramAuth(c, 'alice', 'alice-pass');
    // restart() reads the server's new header with a fresh parser, then waits for features that never come.
    await assert.rejects(c.restart(toWithExtra(attrs(MAX_HEADER_ATTRIBUTES))), /closed while waiting for <features\/>/);
    await expectStreamError(c, 'policy-violation');
  });

  test(`more than DEFAULT_MAX_ATTRIBUTES (${DEFAULT_MAX_ATTRIBUTES}) attributes on an element of a stanza: policy-violation`, async () => {
    const a = await login(srv.port, 'alice', 'alice-pass');
    a.client.send(`<message to='bob@localhost'><x xmlns='${EXT}'${attrs(DEFAULT_MAX_ATTRIBUTES + 1)}/></message>`);
    await expectStreamError(a.client, 'policy-violation');
  });
});

describe('B: nesting depth is limited; deep input is refused at once (RFC 6120 §13.12)', () => {
  test('100,000 nested tags before login: policy-violation, and the server keeps answering others', async () => {
    const other = await login(srv.port, 'carol', 'carol-pass');
    const c = await openStream();
    const refused = c.streamError(10_000);
    let done = false;
    void refused.finally(() => (done = true)).catch(() => undefined);
    c.send('<message>' + '<a>'.repeat(100_000));
    // While the server deals with that, the other client's pings (XEP-0199) come back promptly.
    const rtts: number[] = [];
    while (!done || rtts.length < 3) {
      const t0 = performance.now();
      await roundTrip(other.client);
      rtts.push(performance.now() - t0);
    }
    assert.equal(await refused, 'policy-violation');
    await c.closedEvent();
    assert.ok(Math.max(...rtts) < 500, `ping round trips: ${rtts.map((t) => t.toFixed(1)).join(', ')} ms`);
    other.client.close();
  });

  test('a 20,000-deep stanza after login: policy-violation, and the server is still up', async () => {
    const a = await login(srv.port, 'alice', 'alice-pass');
    a.client.send(`<message to='bob@localhost' id='deep'>` + '<a>'.repeat(20_000) + '</a>'.repeat(20_000) + '</message>');
    await expectStreamError(a.client, 'policy-violation');
    // Nothing of it was stored for bob (who is offline), and a new client can log in and be answered.
    assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'bob'), 0);
    const b = await login(srv.port, 'bob', 'bob-pass');
    await available(b.client);
    b.client.close();
  });
});

/**
 * Logs in over raw XML, every stream header of the session declaring `xmlns:foo`
 * (Namespaces in XML 1.0, "Namespace Scoping": in scope for everything sent on that stream).
 */
async function loginDeclaringFoo(user: string): Promise<RawClient> {
  const decl = ` xmlns:foo='${FOO}'`;
  const c = await RawClient.connect(srv.port);
  c.send(STREAM_OPEN('localhost', decl));
  await c.header();
  await c.element('features');
  await c.startTls();
  const to = toWithExtra(decl);
  await c.restart(to);
  await scramAuth(c, user, `${user}-pass`);
  await c.restart(to);
  c.send(`<iq type='set' id='bind'><bind xmlns='${NS.BIND}'/></iq>`);
  const bound = await c.waitFor((el) => el.attrs.id === 'bind', 'bind result');
  assert.equal(bound.attrs.type, 'result');
  return c;
}

/** The message alice sends with a `foo:` attribute, the prefix declared on her stream header only. */
const prefixedMessage = (to: string, id: string): string => `<message to='${to}' id='${id}' type='chat' foo:mark='1'><body>prefixed</body></message>`;
/** A plain message after it. */
const plainMessage = (to: string, id: string): string => `<message to='${to}' id='${id}' type='chat'><body>after</body></message>`;
/**
 * A subscription request whose child uses a prefix declared on the request: the server routes a
 * new stanza with copies of the children to the contact (RFC 6121 §3.1.2), not the request itself.
 */
const subscribeRequest = (to: string): string =>
  `<presence to='${to}' type='subscribe' xmlns:r='${ROLE}'><x xmlns='${EXT}'><item r:role='owner'/></x></presence>`;

/** As the raw recipient parsed it, with the declaration that makes it stand alone. */
function assertPrefixedMessage(m: Element): void {
  assert.equal(m.getChildText('body'), 'prefixed');
  assert.equal(m.attrs['foo:mark'], '1');
  assert.equal(m.attrs['xmlns:foo'], FOO);
}

describe('D: prefixed attributes reach the recipient with their namespace declared (Namespaces in XML 1.0, "Prefix Declared")', () => {
  let alice: RawClient;
  before(async () => {
    alice = await loginDeclaringFoo('alice');
  });
  after(() => alice.close());

  test("a raw client's parser accepts the message and the subscription request", async () => {
    const dave = await login(srv.port, 'dave', 'dave-pass');
    await available(dave.client);
    alice.send(prefixedMessage('dave@localhost', 'raw-1'));
    alice.send(subscribeRequest('dave@localhost'));
    alice.send(plainMessage('dave@localhost', 'raw-2'));
    // RawClient's own StreamParser refuses (and stops at) anything not namespace-well-formed.
    assertPrefixedMessage(await dave.client.waitFor((el) => el.attrs.id === 'raw-1', 'the prefixed message'));
    const sub = await dave.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'the subscription request');
    const item = sub.getChild('x', EXT)?.getChild('item', EXT);
    assert.equal(item?.attrs['r:role'], 'owner');
    assert.equal(item?.attrs['xmlns:r'], ROLE);
    await dave.client.waitFor((el) => el.attrs.id === 'raw-2', 'the plain message after them');
    await roundTrip(dave.client);
    dave.client.close();
  });

  test('stored offline and delivered on login, well-formed (XEP-0160)', async () => {
    alice.send(prefixedMessage('erin@localhost', 'off-1'));
    alice.send(plainMessage('erin@localhost', 'off-2'));
    await roundTrip(alice);
    assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'erin'), 2);
    const erin = await login(srv.port, 'erin', 'erin-pass');
    erin.client.send('<presence/>');
    const m = await erin.client.waitFor((el) => el.attrs.id === 'off-1', 'the stored prefixed message');
    assertPrefixedMessage(m);
    assert.ok(m.getChild('delay', NS_DELAY), 'XEP-0203 delay: it came from storage');
    await erin.client.waitFor((el) => el.attrs.id === 'off-2', 'the stored plain message');
    erin.client.close();
  });

  describe('slixmpp as the recipient', { skip: skipSlixmpp }, () => {
    let slix: SlixClient | undefined;
    after(async () => {
      await slix?.dispose();
    });

    /** Waits for the stanza, then checks slixmpp is still connected: a ping round trip. */
    async function receives(c: SlixClient, pred: (s: StanzaView) => boolean, what: string): Promise<StanzaView> {
      const s = await c.next(pred, what);
      assert.equal(c.closed, false, `${what}: slixmpp disconnected`);
      return s;
    }

    test('slixmpp stays connected and receives the message, the request, and the message after them', async () => {
      slix = await SlixClient.connect({ port: srv.port, user: 'frank', password: 'frank-pass', caFile });
      await slix.presence();
      await slix.ping(); // the server has processed the presence
      alice.send(prefixedMessage('frank@localhost', 'slix-1'));
      alice.send(subscribeRequest('frank@localhost'));
      alice.send(plainMessage('frank@localhost', 'slix-2'));
      const m = await receives(slix, (s) => s.kind === 'message' && s.id === 'slix-1', 'the prefixed message');
      assert.equal(m.body, 'prefixed');
      const sub = await receives(slix, (s) => s.kind === 'presence' && s.type === 'subscribe', 'the subscription request');
      // slixmpp's str() leaves out attributes in namespaces it has no prefix for; the payload is there.
      assert.match(sub.xml, new RegExp(`<x xmlns="${EXT}"`));
      const after = await receives(slix, (s) => s.kind === 'message' && s.id === 'slix-2', 'the plain message');
      assert.equal(after.body, 'after');
      await slix.ping();
      await slix.logout();
    });

    test('slixmpp gets the stored message well-formed when it comes online', async () => {
      alice.send(prefixedMessage('grace@localhost', 'slix-off-1'));
      alice.send(plainMessage('grace@localhost', 'slix-off-2'));
      await roundTrip(alice);
      assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'grace'), 2);
      slix = await SlixClient.connect({ port: srv.port, user: 'grace', password: 'grace-pass', caFile });
      await slix.presence();
      const m = await receives(slix, (s) => s.kind === 'message' && s.id === 'slix-off-1', 'the stored prefixed message');
      assert.equal(m.body, 'prefixed');
      assert.ok(m.delay, 'XEP-0203 delay: it came from storage');
      await receives(slix, (s) => s.kind === 'message' && s.id === 'slix-off-2', 'the stored plain message');
      await slix.ping();
      await slix.logout();
    });
  });
});
