// The load generator (bench/load) against a real Shoal server with tiny N, so
// that it cannot silently rot: every client logs in the seed's way, messages
// between pairs all arrive with a latency, and the server is measured by pid;
// with stream management, dropped clients resume without losing a message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { runLoad, type LoadOptions, type LoadReport } from '../bench/load/run.js';
import { ScramCache } from '../bench/load/scram.js';
import { XmlStreamReader, type XmlElement } from '../bench/load/xml.js';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
  for (let i = 1; i <= 5; i++) await srv.addUser(`load${i}`, `secret-${i}`);
  // load11..20 for the stream management test: pairs of mutual contacts, as in bench:compare.
  for (let i = 11; i <= 20; i++) await srv.addUser(`load${i}`, `secret-${i}`);
  for (let i = 11; i <= 20; i++) {
    const contact = `load${i % 2 === 1 ? i + 1 : i - 1}@localhost`;
    await srv.server.storage.roster.setItem('localhost', `load${i}`, { jid: contact, subscription: 'both', ask: false, pendingIn: false, approved: false, groups: [] });
  }
});
after(() => srv.stop());

/** runLoad against this server's load<N> accounts (password secret-<N> unless given), no settling, 10 s per login step. */
function loadTest(opts: Pick<LoadOptions, 'clients' | 'concurrency'> & Partial<LoadOptions>): Promise<LoadReport> {
  return runLoad({ host: '127.0.0.1', port: srv.port, domain: 'localhost', users: 'load%d', passwordPattern: 'secret-%d', settleMs: 0, stepTimeoutMs: 10_000, ...opts });
}

test('5 clients log in over STARTTLS + SCRAM-SHA-1 and exchange 20 messages in pairs', async () => {
  const cache = new ScramCache();
  const r = await loadTest({
    clients: 5,
    concurrency: 3,
    messages: 20,
    serverPid: process.pid,
    phaseTimeoutMs: 30_000,
    stallTimeoutMs: 10_000,
    scramCache: cache,
  });
  assert.equal(r.login.attempted, 5);
  assert.equal(r.login.succeeded, 5, JSON.stringify(r.login.failures));
  assert.equal(r.login.failed, 0);
  assert.equal(r.login.latencyMs.count, 5);
  assert.ok(r.login.latencyMs.p50 > 0 && r.login.latencyMs.p99 >= r.login.latencyMs.p50);
  assert.ok(r.login.perSecond > 0);
  assert.match(r.login.tls.protocol, /^TLSv1\.[23]$/);
  assert.equal(r.roster.minItems, 0);
  // Clients 1-4 form two pairs; the fifth has no partner.
  assert.ok(r.messages);
  assert.equal(r.messages.sent, 20);
  assert.equal(r.messages.received, 20);
  assert.equal(r.messages.lost, 0);
  assert.equal(r.messages.latencyMs.count, 20);
  assert.ok(r.messages.latencyMs.p50 > 0 && r.messages.latencyMs.max >= r.messages.latencyMs.p99);
  assert.ok(r.server, 'server measured by pid');
  assert.ok(r.server.rssBeforeKiB > 0 && r.server.rssOnlineKiB > 0);
  assert.ok(r.server.cpuLoginS >= 0);
  assert.equal(r.problems.count, 0, r.problems.examples.join('; '));
  // Each client derived its keys once (RFC 5802 §5.1 cache), five distinct accounts.
  assert.equal(cache.misses, 5);
});

test('the warm-up logs other accounts in and out before the measured logins, and reports them apart', async () => {
  const cache = new ScramCache();
  const seen: string[] = [];
  // load1..2 measured; the warm-up takes the accounts after them, load3..5.
  const r = await loadTest({ clients: 2, concurrency: 2, warmupClients: 3, serverPid: process.pid, scramCache: cache, progress: (l) => seen.push(l) });
  assert.ok(r.warmup);
  assert.equal(r.warmup.clients, 3);
  assert.equal(r.warmup.succeeded, 3);
  assert.equal(r.warmup.failed, 0);
  assert.ok(r.warmup.elapsedMs > 0 && r.warmup.sustainedPerSecond > 0);
  assert.ok(r.warmup.cpuPer1000Logins > 0, 'the warm-up is measured by pid too');
  // Five distinct accounts derived their keys: the warm-up did not reuse the measured ones.
  assert.equal(cache.misses, 5);
  assert.equal(r.login.succeeded, 2);
  assert.equal(r.login.latencyMs.count, 2, 'the warm-up logins are not among the measured ones');
  // Logged out before the measured phase began: none of them is online now.
  for (const i of [3, 4, 5]) assert.deepEqual(srv.server.router.getSessions(`load${i}@localhost`), [], `load${i}`);
  assert.ok(seen.some((l) => l.startsWith('warm-up: 3/3 logged in and out')), seen.join('\n'));
});

test('a warm-up of several rounds logs the same accounts in and out each time and reports the first and the last round', async () => {
  const cache = new ScramCache();
  const seen: string[] = [];
  const r = await loadTest({ clients: 1, concurrency: 2, warmupClients: 2, warmupRounds: 3, serverPid: process.pid, scramCache: cache, progress: (l) => seen.push(l) });
  assert.ok(r.warmup);
  assert.equal(r.warmup.rounds, 3);
  assert.equal(r.warmup.succeeded, 2);
  assert.equal(r.warmup.failed, 0);
  assert.ok(r.warmup.cpuPer1000Logins > 0 && (r.warmup.lastRoundCpuPer1000Logins ?? 0) > 0, 'both rounds measured by pid');
  for (const n of [1, 2, 3]) assert.ok(seen.some((l) => l.startsWith(`warm-up (round ${n}/3): 2/2 logged in and out`)), seen.join('\n'));
  // The same two warm-up accounts each round (keys derived once each), and the measured one.
  assert.equal(cache.misses, 3);
  assert.equal(r.login.succeeded, 1);
  for (const i of [2, 3]) assert.deepEqual(srv.server.router.getSessions(`load${i}@localhost`), [], `load${i}`);
});

test('failed warm-up logins are counted, not hidden', async () => {
  // No account load100..101: both warm-up logins fail; the measured ones still run.
  const r = await loadTest({ clients: 1, concurrency: 1, warmupClients: 2, warmupFirst: 100 });
  assert.equal(r.warmup?.succeeded, 0);
  assert.equal(r.warmup?.failed, 2);
  assert.equal(r.login.succeeded, 1);
});

test('a wrong password is counted as a SASL failure, not hidden', async () => {
  const r = await loadTest({
    passwordPattern: 'wrong-%d',
    clients: 2,
    concurrency: 2,
  });
  assert.equal(r.login.succeeded, 0);
  assert.equal(r.login.failed, 2);
  assert.deepEqual(Object.keys(r.login.failures), ['sasl: refused: not-authorized']);
});

test('presence fan-out is awaited between contacts that see each other', async () => {
  for (const [a, b] of [
    ['load1', 'load2'],
    ['load2', 'load1'],
  ] as const) {
    await srv.server.storage.roster.setItem('localhost', a, { jid: `${b}@localhost`, subscription: 'both', ask: false, pendingIn: false, approved: false, groups: [] });
  }
  const r = await loadTest({
    clients: 2,
    concurrency: 1,
    awaitPresence: 1,
    phaseTimeoutMs: 10_000,
  });
  assert.equal(r.login.succeeded, 2);
  assert.equal(r.roster.minItems, 1);
  assert.equal(r.presence.complete, true);
  assert.ok(r.presence.received >= 2);
});

test('with --sm, 5 clients lose their connections at once and resume: every message sent meanwhile arrives once', async () => {
  const t0 = performance.now();
  const r = await loadTest({
    first: 11,
    clients: 10,
    concurrency: 10,
    sm: true,
    resume: true,
    resumeMessages: 4,
    serverPid: process.pid,
    phaseTimeoutMs: 10_000,
  });
  assert.equal(r.login.succeeded, 10, JSON.stringify(r.login.failures));
  assert.equal(r.roster.minItems, 1);
  assert.ok(r.resume);
  assert.equal(r.resume.dropped, 5);
  assert.equal(r.resume.resumed, 5, JSON.stringify(r.resume.failures));
  assert.equal(r.resume.failed, 0);
  assert.equal(r.resume.expected, 20);
  assert.equal(r.resume.received, 20);
  assert.equal(r.resume.lost, 0);
  assert.equal(r.resume.duplicates, 0);
  assert.equal(r.resume.latencyMs.count, 5);
  assert.ok(r.resume.perSecond > 0);
  assert.ok(r.resume.stepP50Ms.resume !== undefined && r.resume.stepP50Ms.bind === undefined, JSON.stringify(r.resume.stepP50Ms));
  assert.ok(r.server && r.server.cpuResumeS >= 0);
  // The drop was asked for: it is not a problem, and the resumed clients logged out cleanly.
  assert.equal(r.problems.count, 0, r.problems.examples.join('; '));
  assert.ok(performance.now() - t0 < 10_000);
});

test("the generator's XML reader: any chunking, entities, prefixes, CDATA, stream close", () => {
  const input =
    `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='a&amp;b' from='localhost' version='1.0'>` +
    `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>` +
    ` <message from="x@y/z" type='chat' note='a>b'><body>1 &lt; 2 &#x263A; caf\u00e9<![CDATA[<raw>]]></body><!-- c --><x/></message>` +
    `<iq type='result' id='q1'/></stream:stream>`;
  // Every split point, including inside multi-byte characters' surrogate-free text, tags and entities.
  for (const step of [1, 2, 3, 7, input.length]) {
    const events: string[] = [];
    const els: XmlElement[] = [];
    const r = new XmlStreamReader({
      open: (attrs) => events.push(`open ${attrs.id}`),
      element: (el) => {
        events.push(el.name);
        els.push(el);
      },
      close: () => events.push('close'),
      error: (m) => events.push(`error ${m}`),
    });
    for (let i = 0; i < input.length; i += step) r.write(input.slice(i, i + step));
    assert.deepEqual(events, ['open a&b', 'features', 'message', 'iq', 'close'], `chunks of ${step}`);
    assert.equal(els[0]!.children[0]!.children[0]!.text, 'SCRAM-SHA-1');
    const msg = els[1]!;
    assert.equal(msg.attrs.from, 'x@y/z');
    assert.equal(msg.attrs.note, 'a>b');
    assert.equal(msg.children[0]!.text, '1 < 2 \u263a caf\u00e9<raw>');
    assert.deepEqual(msg.children.map((c) => c.name), ['body', 'x']);
    assert.equal(els[2]!.attrs.id, 'q1');
  }
});

test("the generator's XML reader reports a mismatched close tag", () => {
  const errors: string[] = [];
  const r = new XmlStreamReader({ open: () => undefined, element: () => undefined, close: () => undefined, error: (m) => errors.push(m) });
  r.write(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a><b></a>`);
  assert.equal(errors.length, 1);
});
