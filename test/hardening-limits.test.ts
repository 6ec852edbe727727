// Hardening, over raw XML from several loopback addresses: a brute-force attack
// locks the attacker's addresses, not the owner (item 7); the per-address
// connection cap (C); a client's own stream error closes the stream (8); the
// directed-presence list is bounded (8).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN, iq } from './support/raw-client.js';
import { login } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A stream with PLAIN offered (no TLS section), from `from` (a 127.x address). */
async function plainStream(port: number, from: string): Promise<RawClient> {
  const c = await RawClient.connect(port, from);
  c.send(STREAM_OPEN());
  await c.header();
  await c.element('features');
  return c;
}

async function plain(c: RawClient, user: string, password: string): Promise<string> {
  c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64(`\0${user}\0${password}`)}</auth>`);
  const reply: Element = await c.waitFor((el) => el.xmlns === NS.SASL && (el.name === 'success' || el.name === 'failure'), 'SASL outcome');
  if (reply.name === 'success') return 'success';
  return reply.getChildren().find((k) => k.name !== 'text')?.name ?? '';
}

describe('brute force locks the attacker, not the owner (item 7)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      tls: null,
      sasl: {
        mechanisms: ['PLAIN'],
        allow_plain_without_tls: true,
        max_attempts: 100,
        rate_limit: { account: { burst: 5, per_minute: 1 }, address: { burst: 10, per_minute: 1 } },
      },
    });
    await srv.addUser('victim', 'the-right-one');
  });
  after(() => srv.stop());

  test('after the account bucket is empty the owner still logs in from a clean address; the attackers stay refused', async () => {
    // Two attacking addresses fail until the account is limited.
    const attackers = [await plainStream(srv.port, '127.0.0.2'), await plainStream(srv.port, '127.0.0.3')];
    for (let i = 0; i < 6; i++) await plain(attackers[i % 2]!, 'victim', `guess-${i}`);
    // The account is limited now: a guess, and even the right password, from an attacking address.
    assert.equal(await plain(attackers[0]!, 'victim', 'guess-x'), 'temporary-auth-failure');
    assert.equal(await plain(attackers[1]!, 'victim', 'the-right-one'), 'temporary-auth-failure', 'an address that failed gets nothing');
    // The owner, from an address that never failed, with the right password, gets in.
    const owner = await plainStream(srv.port, '127.0.0.4');
    assert.equal(await plain(owner, 'victim', 'the-right-one'), 'success');
    // A wrong guess from a fresh address while the account is limited is refused and taints that address.
    const fresh = await plainStream(srv.port, '127.0.0.5');
    assert.equal(await plain(fresh, 'victim', 'another-guess'), 'temporary-auth-failure');
    const freshAgain = await plainStream(srv.port, '127.0.0.5');
    assert.equal(await plain(freshAgain, 'victim', 'the-right-one'), 'temporary-auth-failure', 'the address that guessed is now limited for this account');
    for (const c of [...attackers, owner, fresh, freshAgain]) c.close();
  });
});

describe('per-address connection cap (item C)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ limits: { max_connections_per_ip: 3 } });
  });
  after(() => srv.stop());

  test('the connection over the cap gets policy-violation; other addresses and freed slots are not affected', async () => {
    const held = [await RawClient.connect(srv.port, '127.0.0.7'), await RawClient.connect(srv.port, '127.0.0.7'), await RawClient.connect(srv.port, '127.0.0.7')];
    for (const c of held) {
      c.send(STREAM_OPEN());
      await c.element('features');
    }
    const over = await RawClient.connect(srv.port, '127.0.0.7');
    assert.equal(await over.streamError(), 'policy-violation');
    await over.closedEvent();
    // Another address is not limited by this one.
    const other = await RawClient.connect(srv.port, '127.0.0.8');
    other.send(STREAM_OPEN());
    await other.element('features');
    // A freed slot can be used again.
    held[0]!.close();
    await held[0]!.closedEvent();
    await waitFor(() => srv.server.connectionCount === 3, 'the server to see the close');
    const again = await RawClient.connect(srv.port, '127.0.0.7');
    again.send(STREAM_OPEN());
    await again.element('features');
    for (const c of [...held, other, again]) c.close();
  });
});

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("a client's stream error and the directed-presence bound (item 8)", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ limits: { max_directed_presence: 3 } });
    await srv.addUser('alice', 'alice-pass');
  });
  after(() => srv.stop());

  test('a stream error from the client closes the stream without an error in return', async () => {
    const { client, jid } = await login(srv.port, 'alice', 'alice-pass');
    const ended = new Promise<string>((resolve) => srv.server.dispatcher.on('session-ended', (s, reason) => (s.jid.toString() === jid ? resolve(reason) : undefined)));
    client.send(`<stream:error><undefined-condition xmlns='${NS.STREAM_ERRORS}'/></stream:error>`);
    await client.streamEnd();
    await client.closedEvent();
    assert.ok(!/<stream:error>/.test(client.received.slice(client.received.lastIndexOf('<stream:stream'))), 'no stream error answered');
    assert.equal(await ended, 'error');
  });

  test('directed presence to more JIDs than allowed at once is refused with policy-violation', async () => {
    const { client } = await login(srv.port, 'alice', 'alice-pass');
    client.send('<presence/>');
    for (let i = 0; i < 3; i++) client.send(`<presence to='room${i}@elsewhere.example/x' id='d${i}'/>`);
    client.send(`<presence to='room9@elsewhere.example/x' id='d9'/>`);
    const refused = await client.waitFor((el) => el.name === 'presence' && el.attrs.id === 'd9', 'the refusal');
    assert.equal(refused.attrs.type, 'error');
    assert.ok(refused.getChild('error')?.getChild('policy-violation', NS.STANZA_ERRORS));
    // Taking one back frees a place: the next one is routed (and, with no server-to-server
    // links, answered with remote-server-not-found instead of the policy refusal).
    client.send(`<presence to='room0@elsewhere.example/x' type='unavailable'/>`);
    client.send(`<presence to='room9@elsewhere.example/x' id='d9b'/>`);
    const routed = await client.waitFor((el) => el.name === 'presence' && el.attrs.id === 'd9b', 'the answer to d9b');
    assert.ok(routed.getChild('error')?.getChild('remote-server-not-found', NS.STANZA_ERRORS), routed.toString());
    client.close();
  });
});

describe('limits.max_stanza_bytes counts bytes, at the stanza boundary (item 8)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'alice-pass');
  });
  after(() => srv.stop());

  test('a stanza under the limit in characters but over it in bytes is refused; one just under it in bytes passes, even among others', async () => {
    const max = srv.server.config.limits.max_stanza_bytes;
    const ok = await login(srv.port, 'alice', 'alice-pass');
    // 254 KB of ASCII right after another stanza in the same write: accepted (measured from its own start).
    const body = 'a'.repeat(max - 2048);
    ok.client.send(`<iq type='get' id='small'><ping xmlns='${NS.PING}'/></iq><message to='alice@localhost' id='near'><body>${body}</body></message><iq type='get' id='after'><ping xmlns='${NS.PING}'/></iq>`);
    await ok.client.waitFor((el) => el.attrs.id === 'after', 'the ping after the large stanza');
    assert.equal(ok.client.closed, false);
    // 100,000 characters of "€" are 300,000 bytes: over 262,144.
    const euros = '€'.repeat(100_000);
    assert.ok(euros.length < max && Buffer.byteLength(euros) > max);
    ok.client.send(`<message to='alice@localhost' id='euros'><body>${euros}</body></message>`);
    assert.equal(await ok.client.streamError(), 'policy-violation');
  });
});

describe('traffic shaping per connection and per account (item 4)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      limits: {
        rate: {
          client: { bytes_per_second: 0, stanzas_per_second: 20, burst_stanzas: 20 },
          account: { bytes_per_second: 0, stanzas_per_second: 30, burst_stanzas: 30 },
          abuse_seconds: 3,
        },
      },
    });
    for (const u of ['fast', 'twice', 'calm', 'flood']) await srv.addUser(u, `${u}-pass`);
  });
  after(() => srv.stop());

  const pings = (n: number, tag: string): string => Array.from({ length: n }, (_, i) => `<iq type='get' id='${tag}-${i}'><ping xmlns='${NS.PING}'/></iq>`).join('');

  test('over the rate, reading pauses: the answers come at the rate; others are not slowed down', async () => {
    const fast = await login(srv.port, 'fast', 'fast-pass');
    const calm = await login(srv.port, 'calm', 'calm-pass');
    const started = Date.now();
    // 20 at once (the burst), then 20 per second: the 60th answer cannot come before ~2 s.
    fast.client.send(pings(60, 'f'));
    // Meanwhile another user's ping is answered at once.
    const calmStart = Date.now();
    await iq(calm.client, `type='get' to='localhost'`, `<ping xmlns='${NS.PING}'/>`);
    assert.ok(Date.now() - calmStart < 1000, 'another connection is not held up');
    await fast.client.waitFor((el) => el.attrs.id === 'f-59', 'the last answer', 15_000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1900, `throttled to the rate (${elapsed} ms for 60 at 20/s with a burst of 20)`);
    assert.equal(fast.client.closed, false, 'a burst now and then is not abuse');
    fast.client.close();
    calm.client.close();
  });

  test('two connections of one account share the account rate', async () => {
    const a = await login(srv.port, 'twice', 'twice-pass');
    const b = await login(srv.port, 'twice', 'twice-pass');
    const started = Date.now();
    // 40 on each connection: within each connection's burst+rate, but 80 in all against 30 + 30/s.
    a.client.send(pings(40, 'a'));
    b.client.send(pings(40, 'b'));
    await Promise.all([a.client.waitFor((el) => el.attrs.id === 'a-39', 'a done', 15_000), b.client.waitFor((el) => el.attrs.id === 'b-39', 'b done', 15_000)]);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1500, `the account's 30/s held both connections back (${elapsed} ms)`);
    a.client.close();
    b.client.close();
  });

  test('a sustained flood ends with policy-violation', async () => {
    const flood = await login(srv.port, 'flood', 'flood-pass');
    // 400 stanzas at 20/s would keep reading paused for 19 s: more than abuse_seconds (3).
    flood.client.send(pings(400, 'x'));
    assert.equal(await flood.client.streamError(10_000), 'policy-violation');
    assert.match(flood.client.received, /sending too fast for too long/);
  });
});
