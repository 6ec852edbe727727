// Every stream-level error of the client stream, replayed as raw XML against a
// real server (RFC 6120 §4.9). Each one is checked end to end: the server's
// stream header (sent first if it had not been sent yet, §4.9.1.2), the
// <stream:error/> with the condition, the closing </stream:stream>, and the
// TCP connection closed by the server (§4.9.1.1).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { login, scramAuth } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';

/** RFC 6120 §13.12: the smallest limit a server may set, and the one the schema allows. */
const MAX_STANZA = 10000;
const XML_DECL = "<?xml version='1.0'?>";

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ limits: { max_stanza_bytes: MAX_STANZA } });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
});
after(() => srv.stop());

/** How many stream headers the server has sent on this connection. */
function headersSent(c: RawClient): number {
  return (c.received.match(/<stream:stream\b/g) ?? []).length;
}

/**
 * RFC 6120 §4.9.1.1: the error element, then the close tag, then the TCP connection
 * is closed by the server. `headers` is how many stream headers the server must have
 * sent in all (one per stream: restarts after TLS and SASL add one each).
 */
async function expectStreamError(c: RawClient, condition: string, headers = 1): Promise<void> {
  assert.equal(await c.streamError(), condition);
  await c.streamEnd();
  await c.closedEvent();
  assert.equal(headersSent(c), headers, 'the server sends exactly one header per stream, even when refusing it');
  assertWireOrder(c.received);
}

const STREAM_ERROR_START = /<(?:stream:error|error xmlns=(['"])http:\/\/etherx\.jabber\.org\/streams\1)[\s/>]/g;

/**
 * The order on the wire, checked on the received text since the client's event
 * queue does not keep it: header, then a single stream error, then the close tag
 * as the very last thing the server sent.
 */
function assertWireOrder(text: string): void {
  const starts = [...text.matchAll(STREAM_ERROR_START)];
  assert.equal(starts.length, 1, 'exactly one stream error');
  const at = starts[0]!.index;
  const header = text.lastIndexOf('<stream:stream');
  assert.ok(header >= 0 && header < at, 'the stream header precedes the error');
  assert.match(text.slice(at), /<\/(?:stream:)?error>\s*<\/stream:stream>\s*$/, 'the error is followed by </stream:stream> and nothing else');
}

/** Opens a connection and sends `header` (the client's stream header, or anything else). */
async function connectAndSend(data: string | Buffer): Promise<RawClient> {
  const c = await RawClient.connect(srv.port);
  c.socket.write(data);
  return c;
}

/** A stream whose header was accepted: the server's header and features were received. */
async function openStream(port = srv.port): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.header();
  await c.element('features');
  return c;
}

/** Checks the header the server sent in answer to a refused client header (RFC 6120 §4.9.1.2). */
async function expectServerHeader(c: RawClient): Promise<void> {
  const h = await c.header();
  assert.equal(h.name, 'stream');
  assert.equal(h.uri, NS.STREAM);
  assert.equal(h.contentNs, NS.CLIENT);
  assert.equal(h.attrs.from, 'localhost', "the server's own domain, never an unserved one");
  assert.ok(h.attrs.id, 'a stream id');
}

describe('host-unknown (RFC 6120 §4.9.3.6)', () => {
  test('to= a domain this server does not serve', async () => {
    const c = await connectAndSend(STREAM_OPEN('example.net'));
    await expectServerHeader(c);
    await expectStreamError(c, 'host-unknown');
  });

  test('no to attribute at all', async () => {
    const c = await connectAndSend(`<?xml version='1.0'?><stream:stream version='1.0' xmlns='jabber:client' xmlns:stream='${NS.STREAM}'>`);
    await expectServerHeader(c);
    await expectStreamError(c, 'host-unknown');
  });

  test('a restarted stream for another served domain (RFC 6120 §4.3.3)', async () => {
    const two = await startTestServer({ hosts: ['localhost', 'example.org'] });
    try {
      const c = await RawClient.connect(two.port);
      c.send(STREAM_OPEN('localhost'));
      await c.header();
      await c.element('features');
      await c.startTls();
      c.send(STREAM_OPEN('example.org'));
      const h = await c.header();
      assert.equal(h.attrs.from, 'localhost', 'the restarted stream stays with the original domain');
      await expectStreamError(c, 'host-unknown', 2);
    } finally {
      await two.stop();
    }
  });

  test('a second domain served by the same server is accepted', async () => {
    const two = await startTestServer({ hosts: ['localhost', 'example.org'] });
    try {
      const c = await RawClient.connect(two.port);
      c.send(STREAM_OPEN('EXAMPLE.org'));
      const h = await c.header();
      assert.equal(h.attrs.from, 'example.org');
      const f = await c.element('features');
      assert.ok(f.getChild('starttls', NS.TLS));
      c.close();
    } finally {
      await two.stop();
    }
  });
});

describe('invalid-namespace (RFC 6120 §4.9.3.10)', () => {
  test('the stream namespace is not http://etherx.jabber.org/streams', async () => {
    const c = await connectAndSend(
      `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://example.com/streams'>`,
    );
    await expectServerHeader(c);
    await expectStreamError(c, 'invalid-namespace');
  });

  test('the content namespace is not jabber:client', async () => {
    const c = await connectAndSend(STREAM_OPEN().replace("xmlns='jabber:client'", "xmlns='jabber:server'"));
    await expectServerHeader(c);
    await expectStreamError(c, 'invalid-namespace');
  });

  test('no content namespace at all', async () => {
    const c = await connectAndSend(STREAM_OPEN().replace(" xmlns='jabber:client'", ''));
    await expectServerHeader(c);
    await expectStreamError(c, 'invalid-namespace');
  });
});

describe('unsupported-version (RFC 6120 §4.7.5, §4.9.3.25)', () => {
  test("version='0.9'", async () => {
    const c = await connectAndSend(STREAM_OPEN().replace("' version='1.0'", "' version='0.9'"));
    await expectServerHeader(c);
    await expectStreamError(c, 'unsupported-version');
  });

  test('no version attribute', async () => {
    const c = await connectAndSend(STREAM_OPEN().replace("' version='1.0'", "'"));
    await expectServerHeader(c);
    await expectStreamError(c, 'unsupported-version');
  });

  test("a higher minor version ('1.5') is still 1.x and accepted", async () => {
    const c = await connectAndSend(STREAM_OPEN().replace("' version='1.0'", "' version='1.5'"));
    const h = await c.header();
    assert.equal(h.attrs.version, '1.0');
    await c.element('features');
    c.close();
  });
});

describe('not-well-formed (RFC 6120 §4.9.3.13)', () => {
  test('broken XML inside the stream header, before the server sent its own', async () => {
    const c = await connectAndSend(`<?xml version='1.0'?><stream:stream to='localhost' version='1.0' <xmlns='jabber:client'>`);
    await expectServerHeader(c);
    await expectStreamError(c, 'not-well-formed');
  });

  test('a duplicated attribute in the stream header', async () => {
    const c = await connectAndSend(STREAM_OPEN('localhost', " to='localhost'"));
    await expectServerHeader(c);
    await expectStreamError(c, 'not-well-formed');
  });

  test('mismatched tags in a stanza', async () => {
    const c = await openStream();
    c.send('<message><body>hi</message></body>');
    await expectStreamError(c, 'not-well-formed');
  });

  test('garbage that is not XML at all', async () => {
    const c = await openStream();
    c.send('<<<>>>');
    await expectStreamError(c, 'not-well-formed');
  });

  test('an undeclared namespace prefix (Namespaces in XML, "Prefix Declared")', async () => {
    const c = await openStream();
    c.send("<message><foo:bar xmlns:baz='urn:example'/></message>");
    await expectStreamError(c, 'not-well-formed');
  });

  test('an undeclared prefix on an attribute', async () => {
    const c = await openStream();
    c.send("<message foo:to='x'/>");
    await expectStreamError(c, 'not-well-formed');
  });

  test('after authentication and bind as well', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send(`<iq type='get' id='p1'><ping xmlns='${NS.PING}'></iq>`);
    await expectStreamError(client, 'not-well-formed', 3);
  });
});

describe('restricted-xml (RFC 6120 §11.1)', () => {
  test('a DOCTYPE before the stream header', async () => {
    const c = await connectAndSend(`<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM 'http://example.com/x.dtd'>${STREAM_OPEN().replace(XML_DECL, '')}`);
    await expectServerHeader(c);
    await expectStreamError(c, 'restricted-xml');
  });

  test('internal-subset ENTITY declarations ("billion laughs") are refused, never expanded', async () => {
    let dtd = `<!ENTITY lol0 "lollollollollollollollollollol">`;
    for (let i = 1; i <= 9; i++) dtd += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
    const header = `<?xml version='1.0'?><!DOCTYPE stream:stream [${dtd}]>` +
      `<stream:stream to='localhost' version='1.0' xml:lang='&lol9;' xmlns='jabber:client' xmlns:stream='${NS.STREAM}'>` +
      `<message to='&lol9;'><body>&lol9;</body></message>`;
    const c = await connectAndSend(header);
    await expectServerHeader(c);
    await expectStreamError(c, 'restricted-xml');
    assert.ok(!c.received.includes('lollol'), 'nothing was expanded into the answer');
    assert.ok(c.received.length < 2000, `a short answer (${c.received.length} characters)`);
    // The server is still healthy and quick for the next client.
    const next = await openStream();
    next.close();
  });

  test('an XML comment between stanzas', async () => {
    const c = await openStream();
    c.send('<!-- a comment -->');
    await expectStreamError(c, 'restricted-xml');
  });

  test('an XML comment inside a stanza', async () => {
    const c = await openStream();
    c.send('<message><!-- hidden --><body>hi</body></message>');
    await expectStreamError(c, 'restricted-xml');
  });

  test('a comment before the stream header', async () => {
    const c = await connectAndSend(`<!-- hello -->${STREAM_OPEN().replace(XML_DECL, '')}`);
    await expectServerHeader(c);
    await expectStreamError(c, 'restricted-xml');
  });

  test('a processing instruction between stanzas', async () => {
    const c = await openStream();
    c.send("<?xml-stylesheet href='x.xsl'?>");
    await expectStreamError(c, 'restricted-xml');
  });

  test('a processing instruction inside a stanza after bind', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send('<message><?foo bar?></message>');
    await expectStreamError(client, 'restricted-xml', 3);
  });
});

describe('policy-violation: stanza size limit (limits.max_stanza_bytes, RFC 6120 §13.12)', () => {
  test('a stanza just under the limit is delivered; one of 20 KB ends the stream', async () => {
    const a = await login(srv.port, 'alice', 'alice-pass');
    const b = await login(srv.port, 'bob', 'bob-pass');
    b.client.send('<presence/>');
    // RFC 6121 §4.2: available presence is what makes bob a delivery target; a ping round trip orders it.
    b.client.send(`<iq type='get' id='ready'><ping xmlns='${NS.PING}'/></iq>`);
    await b.client.waitFor((el) => el.attrs.id === 'ready');

    const small = 'x'.repeat(MAX_STANZA - 200);
    a.client.send(`<message to='bob@localhost' id='small'><body>${small}</body></message>`);
    const got = await b.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'small', 'the small message');
    assert.equal(got.getChildText('body'), small);

    a.client.send(`<message to='bob@localhost' id='big'><body>${'y'.repeat(20 * 1024)}</body></message>`);
    await expectStreamError(a.client, 'policy-violation', 3);
    // Nothing of the oversized stanza was delivered: bob's next stanza is the answer to his own ping.
    b.client.send(`<iq type='get' id='after'><ping xmlns='${NS.PING}'/></iq>`);
    const next = await b.client.waitFor((el) => el.attrs.id === 'after' || el.attrs.id === 'big', 'ping result');
    assert.equal(next.attrs.id, 'after');
    b.client.close();
  });

  test('a stanza that never closes is cut off without waiting for its end', async () => {
    const a = await login(srv.port, 'alice', 'alice-pass');
    a.client.send(`<message to='bob@localhost'><body>${'z'.repeat(20 * 1024)}`);
    await expectStreamError(a.client, 'policy-violation', 3);
  });

  test('a never-closing stanza made of many small child elements, before authentication', async () => {
    const c = await openStream();
    c.send('<message>');
    for (let i = 0; i < 40; i++) c.send(`<x${i} a='${'b'.repeat(400)}'/>`);
    await expectStreamError(c, 'policy-violation');
  });
});

describe('unsupported-encoding (RFC 6120 §11.6)', () => {
  test('invalid UTF-8 bytes in a stanza', async () => {
    const c = await openStream();
    c.socket.write(Buffer.concat([Buffer.from('<message><body>'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from('</body></message>')]));
    await expectStreamError(c, 'unsupported-encoding');
  });

  test('invalid UTF-8 in the stream header, before the server sent its own', async () => {
    const c = await connectAndSend(Buffer.concat([Buffer.from("<?xml version='1.0'?><stream:stream to='local"), Buffer.from([0xc3, 0x28]), Buffer.from("host'>")]));
    await expectServerHeader(c);
    await expectStreamError(c, 'unsupported-encoding');
  });

  test('an XML declaration naming another encoding', async () => {
    const c = await connectAndSend(STREAM_OPEN().replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='ISO-8859-1'?>"));
    await expectServerHeader(c);
    await expectStreamError(c, 'unsupported-encoding');
  });
});

describe('not-authorized: stanzas before authentication (RFC 6120 §4.9.3.12, §7.1)', () => {
  test('before STARTTLS when TLS is required', async () => {
    const c = await openStream();
    c.send("<message to='bob@localhost'><body>hi</body></message>");
    await expectStreamError(c, 'not-authorized');
  });

  test('after STARTTLS, before SASL', async () => {
    const c = await openStream();
    await c.startTls();
    await c.restart();
    c.send(`<iq type='get' id='r1'><query xmlns='${NS.ROSTER}'/></iq>`);
    await expectStreamError(c, 'not-authorized', 2);
  });

  test('before SASL on a server without TLS', async () => {
    const plain = await startTestServer({ tls: null });
    try {
      const c = await openStream(plain.port);
      c.send('<presence/>');
      await expectStreamError(c, 'not-authorized');
    } finally {
      await plain.stop();
    }
  });

  test('after SASL, before resource binding', async () => {
    const c = await openStream();
    await c.startTls();
    await c.restart();
    await scramAuth(c, 'alice', 'alice-pass');
    await c.restart();
    c.send("<message to='bob@localhost'><body>hi</body></message>");
    await expectStreamError(c, 'not-authorized', 3);
  });
});

describe('unsupported-stanza-type (RFC 6120 §4.9.3.24)', () => {
  test('an unknown top-level element in jabber:client after bind', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send('<foo/>');
    await expectStreamError(client, 'unsupported-stanza-type', 3);
  });

  test('a top-level element in a foreign namespace after bind', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send("<query xmlns='jabber:iq:roster'/>");
    await expectStreamError(client, 'unsupported-stanza-type', 3);
  });
});

describe("invalid-from (RFC 6120 §4.9.3.9, §8.1.2.1)", () => {
  test("a spoofed from of another user", async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send("<message from='bob@localhost' to='alice@localhost'><body>spoof</body></message>");
    await expectStreamError(client, 'invalid-from', 3);
  });

  test('another resource of the same account', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send("<message from='alice@localhost/someone-else' to='bob@localhost'><body>spoof</body></message>");
    await expectStreamError(client, 'invalid-from', 3);
  });

  test('a malformed from', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send(`<iq type='get' id='p' from='@localhost'><ping xmlns='${NS.PING}'/></iq>`);
    await expectStreamError(client, 'invalid-from', 3);
  });

  test('its own full JID and its own bare JID are accepted', async () => {
    const { client, jid } = await login(srv.port, 'alice', 'alice-pass');
    client.send(`<iq type='get' id='full' from='${jid}'><ping xmlns='${NS.PING}'/></iq>`);
    const r1 = await client.waitFor((el) => el.attrs.id === 'full');
    assert.equal(r1.attrs.type, 'result');
    client.send(`<iq type='get' id='bare' from='alice@localhost'><ping xmlns='${NS.PING}'/></iq>`);
    const r2 = await client.waitFor((el) => el.attrs.id === 'bare');
    assert.equal(r2.attrs.type, 'result');
    assert.equal(r2.attrs.to, jid);
    client.close();
  });
});

describe('bad-format (RFC 6120 §4.9.3.1)', () => {
  test('character data between stanzas', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send('hello<presence/>');
    await expectStreamError(client, 'bad-format', 3);
  });
});

describe('closing streams', () => {
  test('system-shutdown to every client when the server stops (RFC 6120 §4.9.3.22)', async () => {
    const own = await startTestServer();
    await own.addUser('carol', 'carol-pass');
    const bound = await login(own.port, 'carol', 'carol-pass');
    const fresh = await RawClient.connect(own.port);
    fresh.send(STREAM_OPEN());
    await fresh.header();
    await fresh.element('features');
    const stopping = own.stop();
    await Promise.all([expectStreamError(bound.client, 'system-shutdown', 3), expectStreamError(fresh, 'system-shutdown')]);
    await stopping;
    assert.equal(own.server.connectionCount, 0);
  });

  test("the client's </stream:stream> is answered by the server's and the connection closes (RFC 6120 §4.4)", async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send('</stream:stream>');
    await client.streamEnd();
    await client.closedEvent();
    assert.ok(!/<error\b/.test(client.received), 'no stream error for an orderly close');
  });

  test('an orderly close before authentication too', async () => {
    const c = await openStream();
    c.send('</stream:stream>');
    await c.streamEnd();
    await c.closedEvent();
    assert.ok(!/<error\b/.test(c.received));
  });

  test('whitespace keepalives between stanzas are accepted (RFC 6120 §4.6.1)', async () => {
    const c = await openStream();
    // Before authentication: the keepalive must not upset STARTTLS.
    c.send(' \n');
    await c.startTls();
    await c.restart();
    c.send('\r\n\t ');
    await scramAuth(c, 'alice', 'alice-pass');
    await c.restart();
    c.send(`<iq type='set' id='b'><bind xmlns='${NS.BIND}'/></iq>`);
    await c.waitFor((el) => el.attrs.id === 'b');
    for (let i = 0; i < 3; i++) {
      c.send(' ');
      c.send(`<iq type='get' id='p${i}'><ping xmlns='${NS.PING}'/></iq>`);
      c.send('\n');
      const r = await c.waitFor((el) => el.attrs.id === `p${i}`);
      assert.equal(r.attrs.type, 'result');
    }
    assert.ok(!/<error\b/.test(c.received));
    assert.equal(c.closed, false);
    c.close();
  });
});
