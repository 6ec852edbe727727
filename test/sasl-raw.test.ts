// SASL negotiation over raw XML against a real server (RFC 6120 §6): every
// mechanism, channel binding (RFC 5802 §6, RFC 5929, RFC 9266, XEP-0440), and
// each <failure/> condition of §6.5, including the retry limit of §6.4.5.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { clientChannelBinding, login, scramAuth } from './support/login.js';
import { ScramClient } from '../src/sasl/scram-client.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { ScramHash } from '../src/storage/types.js';

const ALL_OVER_TLS = ['SCRAM-SHA-512-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
const HASHES: ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ sasl: { max_attempts: 3 } });
  await srv.addUser('alice', 'alice-pass');
});
after(() => srv.stop());

// --- helpers -------------------------------------------------------------------

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/** A fresh connection up to the features of the stream after STARTTLS. */
async function tlsStream(port = srv.port, tlsOptions: tls.ConnectionOptions = {}): Promise<{ c: RawClient; features: Element }> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.header();
  await c.element('features');
  await c.startTls(tlsOptions);
  const features = await c.restart();
  return { c, features };
}

/** A fresh connection up to its first features (no TLS). */
async function plainStream(port: number): Promise<{ c: RawClient; features: Element }> {
  const c = await RawClient.connect(port);
  c.send(STREAM_OPEN());
  await c.header();
  const features = await c.element('features');
  return { c, features };
}

function mechanisms(features: Element): string[] {
  const m = features.getChild('mechanisms', NS.SASL);
  return m ? m.getChildren('mechanism', NS.SASL).map((e) => e.text()) : [];
}

/** XEP-0440 §2: the channel binding types advertised in the stream features. */
function cbTypes(features: Element): string[] | undefined {
  const cb = features.getChild('sasl-channel-binding', NS.SASL_CB);
  return cb?.getChildren('channel-binding', NS.SASL_CB).map((e) => e.attrs.type ?? '');
}

/** The next SASL <failure/>; returns its condition (RFC 6120 §6.5). */
async function saslFailure(c: RawClient): Promise<string> {
  const f = await c.waitFor((el) => el.name === 'failure' || el.name === 'success' || el.name === 'challenge', 'the SASL outcome');
  assert.equal(f.name, 'failure', `expected <failure/>, got ${f.toString()}`);
  assert.equal(f.xmlns, NS.SASL);
  const cond = f.getChildren().filter((e) => e.name !== 'text');
  assert.equal(cond.length, 1, 'exactly one defined condition');
  return cond[0]!.name;
}

/** After <success/>: the restarted stream offers bind (not SASL again) and binding works. */
async function bindsAs(c: RawClient, user: string): Promise<void> {
  const features = await c.restart();
  assert.ok(features.getChild('bind', NS.BIND), 'bind is offered after SASL');
  assert.equal(features.getChild('mechanisms', NS.SASL), undefined, 'SASL is not offered again');
  c.send(`<iq type='set' id='bind'><bind xmlns='${NS.BIND}'/></iq>`);
  const r = await c.waitFor((el) => el.attrs.id === 'bind', 'bind result');
  assert.equal(r.attrs.type, 'result');
  assert.match(r.getChild('bind', NS.BIND)?.getChildText('jid', NS.BIND) ?? '', new RegExp(`^${user}@localhost/.+`));
}

/** Sends a SCRAM exchange up to the client-final-message and returns the server-first-message. */
async function scramFirst(c: RawClient, mech: string, scram: ScramClient): Promise<string> {
  c.send(`<auth xmlns='${NS.SASL}' mechanism='${mech}'>${b64(scram.first())}</auth>`);
  const ch = await c.waitFor((el) => el.name === 'challenge' || el.name === 'failure', 'challenge');
  assert.equal(ch.name, 'challenge', `expected a challenge, got ${ch.toString()}`);
  return Buffer.from(ch.text(), 'base64').toString();
}

async function scramFinal(c: RawClient, scram: ScramClient, serverFirst: string): Promise<void> {
  c.send(`<response xmlns='${NS.SASL}'>${b64(scram.final(serverFirst))}</response>`);
}

const plainMessage = (user: string, pass: string, authzid = ''): string => b64(`${authzid}\0${user}\0${pass}`);

/** RFC 6120 §4.9.1.1 as seen by the client: error, close tag, TCP close. */
async function expectStreamError(c: RawClient, condition: string): Promise<void> {
  assert.equal(await c.streamError(), condition);
  await c.streamEnd();
  await c.closedEvent();
  const text = c.received;
  const err = text.search(/<(?:stream:error|error xmlns=(['"])http:\/\/etherx\.jabber\.org\/streams\1)[\s/>]/);
  assert.ok(err > text.lastIndexOf('<failure'), 'the last <failure/> precedes the stream error');
  assert.match(text.slice(err), /<\/(?:stream:)?error>\s*<\/stream:stream>\s*$/);
}

// --- offered mechanisms -------------------------------------------------------------

describe('<mechanisms/> (RFC 6120 §6.4.1)', () => {
  test('over TLS 1.3: every mechanism, strongest first, -PLUS and XEP-0440 channel binding types', async () => {
    const { c, features } = await tlsStream();
    assert.equal((c.socket as tls.TLSSocket).getProtocol(), 'TLSv1.3');
    assert.deepEqual(mechanisms(features), ALL_OVER_TLS);
    assert.deepEqual(cbTypes(features), ['tls-exporter', 'tls-server-end-point']);
    assert.equal(features.getChild('starttls', NS.TLS), undefined, 'no STARTTLS on an encrypted stream');
    c.close();
  });

  test('over TLS 1.2: tls-exporter is not advertised (RFC 9266 §3), -PLUS works with tls-server-end-point', async () => {
    const { c, features } = await tlsStream(srv.port, { maxVersion: 'TLSv1.2' });
    assert.equal((c.socket as tls.TLSSocket).getProtocol(), 'TLSv1.2');
    assert.deepEqual(mechanisms(features), ALL_OVER_TLS);
    assert.deepEqual(cbTypes(features), ['tls-server-end-point']);
    // A client that insists on tls-exporter here is refused...
    const bad = new ScramClient('SHA-256', 'alice', 'alice-pass', { cbType: 'tls-exporter', cbData: randomBytes(32) });
    c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256-PLUS'>${b64(bad.first())}</auth>`);
    assert.equal(await saslFailure(c), 'not-authorized');
    // ...and tls-server-end-point succeeds on the same stream.
    await scramAuth(c, 'alice', 'alice-pass', { hash: 'SHA-256', cbType: 'tls-server-end-point' });
    await bindsAs(c, 'alice');
    c.close();
  });

  test('without TLS: no PLAIN, no -PLUS, no channel binding, no STARTTLS', async () => {
    const plain = await startTestServer({ tls: null });
    try {
      const { c, features } = await plainStream(plain.port);
      assert.deepEqual(mechanisms(features), ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1']);
      assert.equal(cbTypes(features), undefined);
      assert.equal(features.getChild('starttls', NS.TLS), undefined);
      c.close();
    } finally {
      await plain.stop();
    }
  });

  test('before STARTTLS when TLS is required: only <starttls><required/></starttls>', async () => {
    const { c, features } = await plainStream(srv.port);
    assert.deepEqual(mechanisms(features), []);
    assert.ok(features.getChild('starttls', NS.TLS)?.getChild('required', NS.TLS));
    c.close();
  });

  test('the order is by strength whatever the configuration order; disabled mechanisms are refused', async () => {
    const custom = await startTestServer({ sasl: { mechanisms: ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] } });
    try {
      await custom.addUser('alice', 'alice-pass');
      const { c, features } = await tlsStream(custom.port);
      assert.deepEqual(mechanisms(features), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
      const scram = new ScramClient('SHA-512', 'alice', 'alice-pass');
      c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-512'>${b64(scram.first())}</auth>`);
      assert.equal(await saslFailure(c), 'invalid-mechanism');
      c.close();
    } finally {
      await custom.stop();
    }
  });
});

// --- successful authentication ------------------------------------------------------

describe('SCRAM (RFC 5802, RFC 7677)', () => {
  for (const hash of HASHES) {
    test(`SCRAM-${hash} succeeds and the server signature verifies`, async () => {
      const { client, jid } = await login(srv.port, 'alice', 'alice-pass', { hash });
      assert.match(jid, /^alice@localhost\//);
      client.close();
    });
  }

  test('SCRAM without TLS on a server configured without TLS', async () => {
    const plain = await startTestServer({ tls: null });
    try {
      await plain.addUser('alice', 'alice-pass');
      const { client, jid } = await login(plain.port, 'alice', 'alice-pass', { plaintext: true });
      assert.match(jid, /^alice@localhost\//);
      client.close();
    } finally {
      await plain.stop();
    }
  });

  for (const hash of HASHES) {
    for (const cbType of ['tls-exporter', 'tls-server-end-point'] as const) {
      test(`SCRAM-${hash}-PLUS with ${cbType}`, async () => {
        const { client, jid } = await login(srv.port, 'alice', 'alice-pass', { hash, cbType });
        assert.equal((client.socket as tls.TLSSocket).getProtocol(), 'TLSv1.3');
        assert.match(jid, /^alice@localhost\//);
        client.close();
      });
    }
  }
});

describe('channel binding failures (RFC 5802 §6)', () => {
  for (const cbType of ['tls-exporter', 'tls-server-end-point'] as const) {
    test(`wrong ${cbType} data fails with not-authorized`, async () => {
      const { c } = await tlsStream();
      const right = clientChannelBinding(c, cbType);
      const wrong = Buffer.from(right);
      wrong[0] = wrong[0]! ^ 0xff;
      const scram = new ScramClient('SHA-256', 'alice', 'alice-pass', { cbType, cbData: wrong });
      await scramFinal(c, scram, await scramFirst(c, 'SCRAM-SHA-256-PLUS', scram));
      assert.equal(await saslFailure(c), 'not-authorized');
      c.close();
    });
  }

  test("a channel binding type the server does not support ('tls-unique') fails", async () => {
    const { c } = await tlsStream();
    const scram = new ScramClient('SHA-256', 'alice', 'alice-pass', { cbType: 'tls-unique', cbData: randomBytes(12) });
    c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256-PLUS'>${b64(scram.first())}</auth>`);
    assert.equal(await saslFailure(c), 'not-authorized');
    c.close();
  });

  test('the data of one binding type sent under the name of the other fails', async () => {
    const { c } = await tlsStream();
    const scram = new ScramClient('SHA-1', 'alice', 'alice-pass', { cbType: 'tls-exporter', cbData: clientChannelBinding(c, 'tls-server-end-point') });
    await scramFinal(c, scram, await scramFirst(c, 'SCRAM-SHA-1-PLUS', scram));
    assert.equal(await saslFailure(c), 'not-authorized');
    c.close();
  });

  test("gs2 'y' (client thinks the server cannot bind) while -PLUS was advertised: downgrade refused", async () => {
    const { c } = await tlsStream();
    const scram = new ScramClient('SHA-256', 'alice', 'alice-pass', { gs2: 'y' });
    c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(scram.first())}</auth>`);
    assert.equal(await saslFailure(c), 'not-authorized');
    c.close();
  });

  test("gs2 'y' where no -PLUS was advertised (no TLS) succeeds", async () => {
    const plain = await startTestServer({ tls: null });
    try {
      await plain.addUser('alice', 'alice-pass');
      const { c } = await plainStream(plain.port);
      const scram = new ScramClient('SHA-256', 'alice', 'alice-pass', { gs2: 'y' });
      await scramFinal(c, scram, await scramFirst(c, 'SCRAM-SHA-256', scram));
      const success = await c.element('success');
      assert.ok(scram.verify(Buffer.from(success.text(), 'base64').toString()));
      await bindsAs(c, 'alice');
      c.close();
    } finally {
      await plain.stop();
    }
  });

  test("a tls-unique-only client (hardening 16): its -PLUS and 'y' refusals are not counted as failed attempts", async () => {
    // sasl.max_attempts is 3 here: six refusals of these kinds and the stream is still open.
    const { c } = await tlsStream();
    for (let round = 0; round < 3; round++) {
      const plus = new ScramClient('SHA-256', 'alice', 'alice-pass', { cbType: 'tls-unique', cbData: randomBytes(12) });
      c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256-PLUS'>${b64(plus.first())}</auth>`);
      assert.equal(await saslFailure(c), 'not-authorized');
      const y = new ScramClient('SHA-256', 'alice', 'alice-pass', { gs2: 'y' });
      c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(y.first())}</auth>`);
      assert.equal(await saslFailure(c), 'not-authorized', "still a downgrade by default");
    }
    assert.equal(c.closed, false);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', 'alice-pass')}</auth>`);
    await c.element('success');
    c.close();
  });

  test("sasl.tls_unique_fallback: 'y' is accepted after the client asked for tls-unique on the stream, and only then", async () => {
    const srv2 = await startTestServer({ sasl: { tls_unique_fallback: true } });
    try {
      await srv2.addUser('alice', 'alice-pass');
      // Without a tls-unique attempt first, 'y' is still refused: the downgrade protection stays for clients that bind.
      const direct = await tlsStream(srv2.port);
      const y0 = new ScramClient('SHA-256', 'alice', 'alice-pass', { gs2: 'y' });
      direct.c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(y0.first())}</auth>`);
      assert.equal(await saslFailure(direct.c), 'not-authorized');
      direct.c.close();
      // A client that only knows tls-unique: refused -PLUS, then SCRAM with 'y' succeeds.
      const { c } = await tlsStream(srv2.port);
      const plus = new ScramClient('SHA-512', 'alice', 'alice-pass', { cbType: 'tls-unique', cbData: randomBytes(12) });
      c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-512-PLUS'>${b64(plus.first())}</auth>`);
      assert.equal(await saslFailure(c), 'not-authorized');
      const y = new ScramClient('SHA-512', 'alice', 'alice-pass', { gs2: 'y' });
      await scramFinal(c, y, await scramFirst(c, 'SCRAM-SHA-512', y));
      const success = await c.element('success');
      assert.ok(y.verify(Buffer.from(success.text(), 'base64').toString()));
      c.close();
    } finally {
      await srv2.stop();
    }
  });

  test('-PLUS asked for on a stream without TLS: encryption-required', async () => {
    const plain = await startTestServer({ tls: null });
    try {
      await plain.addUser('alice', 'alice-pass');
      const { c } = await plainStream(plain.port);
      const scram = new ScramClient('SHA-256', 'alice', 'alice-pass', { cbType: 'tls-exporter', cbData: randomBytes(32) });
      c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256-PLUS'>${b64(scram.first())}</auth>`);
      assert.equal(await saslFailure(c), 'encryption-required');
      c.close();
    } finally {
      await plain.stop();
    }
  });
});

describe('PLAIN (RFC 4616)', () => {
  test('over TLS with the right password', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', 'alice-pass')}</auth>`);
    const s = await c.waitFor((el) => el.name === 'success' || el.name === 'failure', 'SASL outcome');
    assert.equal(s.name, 'success', s.toString());
    await bindsAs(c, 'alice');
    c.close();
  });

  test('without an initial response: an empty challenge, then the response (RFC 6120 §6.4.2)', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'/>`);
    const ch = await c.element('challenge');
    assert.ok(ch.text() === '' || ch.text() === '=', `empty challenge, got ${ch.toString()}`);
    c.send(`<response xmlns='${NS.SASL}'>${plainMessage('alice', 'alice-pass', 'alice@localhost')}</response>`);
    await c.element('success');
    await bindsAs(c, 'alice');
    c.close();
  });

  test('a wrong password: not-authorized', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', 'wrong')}</auth>`);
    assert.equal(await saslFailure(c), 'not-authorized');
    c.close();
  });

  test('not offered without TLS, and refused with encryption-required (RFC 6120 §6.5.4)', async () => {
    const plain = await startTestServer({ tls: null });
    try {
      await plain.addUser('alice', 'alice-pass');
      const { c, features } = await plainStream(plain.port);
      assert.ok(!mechanisms(features).includes('PLAIN'));
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', 'alice-pass')}</auth>`);
      assert.equal(await saslFailure(c), 'encryption-required');
      c.close();
    } finally {
      await plain.stop();
    }
  });
});

// --- failures -------------------------------------------------------------------------

describe('SASL failures (RFC 6120 §6.5)', () => {
  test('<auth/> before STARTTLS when TLS is required: encryption-required, and STARTTLS still works', async () => {
    const { c } = await plainStream(srv.port);
    const scram = new ScramClient('SHA-256', 'alice', 'alice-pass');
    c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(scram.first())}</auth>`);
    assert.equal(await saslFailure(c), 'encryption-required');
    await c.startTls();
    await c.restart();
    await scramAuth(c, 'alice', 'alice-pass');
    await bindsAs(c, 'alice');
    c.close();
  });

  test('an unknown mechanism: invalid-mechanism', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='X-SHOAL-UNKNOWN'>${b64('whatever')}</auth>`);
    assert.equal(await saslFailure(c), 'invalid-mechanism');
    c.send(`<auth xmlns='${NS.SASL}'>${b64('no mechanism attribute')}</auth>`);
    assert.equal(await saslFailure(c), 'invalid-mechanism');
    c.close();
  });

  test('bad base64: incorrect-encoding, in <auth/> and in <response/>', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>!!not*base64!!</auth>`);
    assert.equal(await saslFailure(c), 'incorrect-encoding');
    const scram = new ScramClient('SHA-256', 'alice', 'alice-pass');
    await scramFirst(c, 'SCRAM-SHA-256', scram);
    c.send(`<response xmlns='${NS.SASL}'>abc</response>`);
    assert.equal(await saslFailure(c), 'incorrect-encoding');
    c.close();
  });

  test('a <response/> outside any exchange: malformed-request', async () => {
    const { c } = await tlsStream();
    c.send(`<response xmlns='${NS.SASL}'>${b64('x')}</response>`);
    assert.equal(await saslFailure(c), 'malformed-request');
    c.close();
  });

  test('<abort/> mid-exchange: aborted, then a new exchange succeeds on the same stream', async () => {
    const { c } = await tlsStream();
    const scram = new ScramClient('SHA-512', 'alice', 'alice-pass');
    await scramFirst(c, 'SCRAM-SHA-512', scram);
    c.send(`<abort xmlns='${NS.SASL}'/>`);
    assert.equal(await saslFailure(c), 'aborted');
    await scramAuth(c, 'alice', 'alice-pass', { hash: 'SHA-512' });
    await bindsAs(c, 'alice');
    c.close();
  });

  test('a failure, then a successful retry on the same stream (RFC 6120 §6.4.5)', async () => {
    const { c } = await tlsStream();
    const wrong = new ScramClient('SHA-256', 'alice', 'not-the-password');
    await scramFinal(c, wrong, await scramFirst(c, 'SCRAM-SHA-256', wrong));
    assert.equal(await saslFailure(c), 'not-authorized');
    await scramAuth(c, 'alice', 'alice-pass', { hash: 'SHA-256', cbType: 'tls-exporter' });
    await bindsAs(c, 'alice');
    c.close();
  });

  test('sasl.max_attempts failures close the stream with policy-violation (RFC 6120 §6.4.5)', async () => {
    const { c } = await tlsStream();
    for (let i = 1; i <= 3; i++) {
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', `wrong-${i}`)}</auth>`);
      assert.equal(await saslFailure(c), 'not-authorized', `attempt ${i}`);
      if (i < 3) assert.equal(c.closed, false);
    }
    await expectStreamError(c, 'policy-violation');
  });

  test('failures of different kinds count together', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='X-NOPE'/>`);
    assert.equal(await saslFailure(c), 'invalid-mechanism');
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>%%%</auth>`);
    assert.equal(await saslFailure(c), 'incorrect-encoding');
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', 'nope')}</auth>`);
    assert.equal(await saslFailure(c), 'not-authorized');
    await expectStreamError(c, 'policy-violation');
  });
});

describe('an unknown user fails exactly like a wrong password (RFC 5802 §9)', () => {
  test('SCRAM: same server-first shape, a stable salt, the same failure', async () => {
    const exchange = async (user: string, pass: string): Promise<{ first: string; failure: string }> => {
      const { c } = await tlsStream();
      const scram = new ScramClient('SHA-256', user, pass);
      const first = await scramFirst(c, 'SCRAM-SHA-256', scram);
      await scramFinal(c, scram, first);
      const f = await c.element('failure');
      c.close();
      return { first, failure: f.toString() };
    };
    const parse = (first: string): { salt: Buffer; iterations: string } => {
      const attrs = Object.fromEntries(first.split(',').map((a) => [a.slice(0, 1), a.slice(2)]));
      return { salt: Buffer.from(attrs.s ?? '', 'base64'), iterations: attrs.i ?? '' };
    };
    const known = await exchange('alice', 'wrong');
    const unknown1 = await exchange('nobody', 'whatever');
    const unknown2 = await exchange('nobody', 'something-else');
    assert.equal(unknown1.failure, known.failure);
    assert.match(known.failure, /not-authorized/);
    const k = parse(known.first);
    const u1 = parse(unknown1.first);
    const u2 = parse(unknown2.first);
    assert.equal(u1.iterations, k.iterations);
    assert.equal(u1.salt.length, k.salt.length);
    assert.ok(u1.salt.equals(u2.salt), 'the fake salt does not change between attempts');
    assert.ok(!u1.salt.equals(k.salt));
  });

  test('PLAIN: the same not-authorized', async () => {
    const { c } = await tlsStream();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('alice', 'wrong')}</auth>`);
    const known = await c.element('failure');
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${plainMessage('nobody', 'wrong')}</auth>`);
    const unknown = await c.element('failure');
    assert.equal(unknown.toString(), known.toString());
    assert.ok(known.getChild('not-authorized', NS.SASL));
    c.close();
  });
});
