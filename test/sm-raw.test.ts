// XEP-0198 stream management over raw XML: enabling, acks both ways, resumption
// after a socket is destroyed without </stream:stream> (with the server noticing
// first, and without), the window closing (unacknowledged messages to offline
// storage, unavailable presence exactly once), another account's SM-ID refused,
// a client that never acks, and a connection killed at every point of a resume
// with nothing lost or duplicated.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login, scramAuth, type LoggedIn } from './support/login.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { OfflineApi } from '../src/modules/offline/api.js';

const SM = 'urn:xmpp:sm:3';
const RESUME_TIMEOUT = 30;

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ stream_management: { resume_timeout: RESUME_TIMEOUT, max_unacked: 50, request_every: 1000 } });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank']) await srv.addUser(u, `${u}-pass`);
  for (const [a, b] of [
    ['alice', 'bob'],
    ['carol', 'dave'],
    ['erin', 'frank'],
    ['gina', 'hank'],
  ] as const) {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      await srv.server.storage.roster.setItem('localhost', x!, { jid: `${y!}@localhost`, subscription: 'both', ask: false, pendingIn: false, approved: false, groups: [] });
    }
  }
});
after(() => srv.stop());

const isStanza = (el: Element): boolean => el.xmlns === NS.CLIENT && (el.name === 'message' || el.name === 'presence' || el.name === 'iq');
const bodyOf = (el: Element): string | undefined => (el.name === 'message' ? el.getChildText('body') : undefined);

/** A client side of stream management: counts every stanza it reads (its 'h'). */
class SmClient {
  h = 0;
  readonly bodies: string[] = [];
  constructor(readonly c: RawClient) {}

  /** The next stanza, counted; nonzas are returned without counting. */
  async next(timeoutMs = 5000): Promise<Element> {
    const el = await this.c.element(undefined, timeoutMs);
    if (isStanza(el)) {
      this.h++;
      const b = bodyOf(el);
      if (b !== undefined) this.bodies.push(b);
    }
    return el;
  }

  /** Reads until a stanza or nonza matches (counting stanzas on the way). */
  async until(pred: (el: Element) => boolean, what: string, timeoutMs = 5000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      const el = await this.next(left);
      if (pred(el)) return el;
    }
  }
}

async function enable(li: LoggedIn): Promise<{ sm: SmClient; id: string }> {
  const sm = new SmClient(li.client);
  li.client.send(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await sm.until((el) => el.xmlns === SM, 'enabled');
  assert.equal(enabled.name, 'enabled', enabled.toString());
  assert.equal(enabled.attrs.resume, 'true');
  return { sm, id: enabled.attrs.id! };
}

/** A new connection up to the point where a client binds (or resumes). */
async function authenticated(user: string): Promise<{ client: RawClient; features: Element }> {
  const client = await RawClient.connect(srv.port);
  client.send(STREAM_OPEN());
  await client.header();
  await client.element('features');
  await client.startTls();
  await client.restart();
  await scramAuth(client, user, `${user}-pass`);
  const features = await client.restart();
  return { client, features };
}

/** An answer from the server to a ping: everything sent before has been handled. */
let seq = 0;
async function roundTrip(c: RawClient): Promise<void> {
  const id = `rt-${++seq}`;
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  await c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 'ping result');
}

async function online(user: string): Promise<LoggedIn> {
  const li = await login(srv.port, user, `${user}-pass`);
  return li;
}

/** Waits (bounded) until the server has noticed that the session lost its connection. */
async function hibernating(jid: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (srv.server.router.getSession(jid)?.attached !== false) {
    if (Date.now() > deadline) throw new Error(`${jid} did not hibernate`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const unavailableFrom = (c: RawClient, jid: string): number =>
  c.elements.filter((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === jid).length;

test('the feature is offered with bind; enable before bind fails; enable, a second enable, acks', async () => {
  const { client, features } = await authenticated('erin');
  assert.ok(features.getChild('sm', SM), 'sm offered after authentication');
  // XEP-0198 §3: not before binding.
  client.send(`<enable xmlns='${SM}'/>`);
  const early = await client.element();
  assert.equal(early.name, 'failed');
  assert.ok(early.getChild('unexpected-request', NS.STANZA_ERRORS));
  client.send(`<iq type='set' id='b1'><bind xmlns='${NS.BIND}'/></iq>`);
  await client.waitFor((el) => el.attrs.id === 'b1');
  client.send(`<enable xmlns='${SM}' resume='1' max='60'/>`);
  const enabled = await client.element();
  assert.equal(enabled.name, 'enabled');
  assert.equal(enabled.attrs.resume, 'true');
  assert.equal(enabled.attrs.max, '30', "the server's window, not longer than asked");
  assert.ok((enabled.attrs.id ?? '').length >= 16);
  client.send(`<enable xmlns='${SM}'/>`);
  const again = await client.element();
  assert.equal(again.name, 'failed', 'one enable per stream');
  // Three stanzas handled: h=3 (the ping results are not counted by the server: they are ours).
  client.send(`<presence/>`);
  await roundTrip(client);
  await roundTrip(client);
  client.send(`<r xmlns='${SM}'/>`);
  const a = await client.waitFor((el) => el.name === 'a' && el.xmlns === SM, 'a');
  assert.equal(a.attrs.h, '3');
  // The server's requests: <r/> when asked for one is answered; an 'h' too high ends the stream.
  client.send(`<a xmlns='${SM}' h='999'/>`);
  assert.equal(await client.streamError(), 'undefined-condition');
  assert.match(client.received, /handled-count-too-high/);
  client.close();
});

for (const noticed of [true, false]) {
  test(`resume after the socket is destroyed (${noticed ? 'server noticed first' : 'server did not notice yet'}): each message once, in order, no unavailable presence`, async () => {
    const [a, b] = noticed ? ['alice', 'bob'] : ['carol', 'dave'];
    const alice = await online(a);
    const { sm, id } = await enable(alice);
    alice.client.send(`<presence/>`);
    const bob = await online(b);
    bob.client.send(`<presence/>`);
    await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid, "alice's presence");
    await sm.until((el) => el.name === 'presence' && el.attrs.from === bob.jid, "bob's presence");
    // Messages alice receives and acknowledges before the drop are not sent again.
    bob.client.send(`<message to='${alice.jid}' type='chat'><body>before</body></message>`);
    await sm.until((el) => bodyOf(el) === 'before', 'before');
    alice.client.send(`<a xmlns='${SM}' h='${sm.h}'/>`);
    await roundTrip(alice.client);

    alice.client.socket.destroy();
    if (noticed) await hibernating(alice.jid);
    for (let i = 1; i <= 10; i++) bob.client.send(`<message to='${a}@localhost' type='chat'><body>m${i}</body></message>`);
    await roundTrip(bob.client);

    const { client } = await authenticated(a);
    const sm2 = new SmClient(client);
    sm2.h = sm.h;
    client.send(`<resume xmlns='${SM}' previd='${id}' h='${sm.h}'/>`);
    const resumed = await sm2.until((el) => el.xmlns === SM, 'resumed');
    assert.equal(resumed.name, 'resumed', resumed.toString());
    assert.equal(resumed.attrs.previd, id);
    await sm2.until((el) => bodyOf(el) === 'm10', 'm10');
    assert.deepEqual(sm2.bodies, Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
    // The session kept its full JID and presence: bob can still address it and saw no unavailable.
    bob.client.send(`<message to='${alice.jid}' type='chat'><body>after</body></message>`);
    await sm2.until((el) => bodyOf(el) === 'after', 'after');
    const retransmitted = client.elements.filter((el) => bodyOf(el) === 'm1')[0]!;
    assert.ok(retransmitted.getChild('delay', 'urn:xmpp:delay'), 'a retransmission carries its XEP-0203 delay');
    await roundTrip(bob.client);
    assert.equal(unavailableFrom(bob.client, alice.jid), 0);
    assert.equal(srv.server.router.getSessions(`${a}@localhost`).length, 1, 'one session, resumed');
    client.send(`<a xmlns='${SM}' h='${sm2.h}'/>`);
    client.send('</stream:stream>');
    await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === alice.jid, 'unavailable after logout');
    bob.client.close();
  });
}

test('no resume within the window: unavailable exactly once, the messages come from offline storage once, <resume/> then fails with h', async () => {
  const short = await startTestServer({ stream_management: { resume_timeout: 1 } });
  try {
    for (const u of ['ivy', 'jay']) await short.addUser(u, `${u}-pass`);
    for (const [x, y] of [
      ['ivy', 'jay'],
      ['jay', 'ivy'],
    ]) {
      await short.server.storage.roster.setItem('localhost', x!, { jid: `${y}@localhost`, subscription: 'both', ask: false, pendingIn: false, approved: false, groups: [] });
    }
    const ivy = await login(short.port, 'ivy', 'ivy-pass');
    const sm = new SmClient(ivy.client);
    ivy.client.send(`<enable xmlns='${SM}' resume='true'/>`);
    const id = (await sm.until((el) => el.name === 'enabled', 'enabled')).attrs.id!;
    ivy.client.send(`<presence/><iq type='get' id='x1' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
    await ivy.client.waitFor((el) => el.attrs.id === 'x1');
    const jay = await login(short.port, 'jay', 'jay-pass');
    jay.client.send('<presence/>');
    await jay.client.waitFor((el) => el.name === 'presence' && el.attrs.from === ivy.jid, "ivy's presence");
    // Sent to the session while it is still connected but never acknowledged: it must not be lost.
    jay.client.send(`<message to='${ivy.jid}' type='chat'><body>unacked</body></message>`);
    await sm.until((el) => bodyOf(el) === 'unacked', 'unacked');
    ivy.client.socket.destroy();
    for (let i = 1; i <= 3; i++) jay.client.send(`<message to='ivy@localhost' type='chat'><body>o${i}</body></message>`);
    await jay.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === ivy.jid, 'unavailable at expiry', 10_000);
    // The messages go to offline storage as the session ends; the stores may complete a moment
    // after the unavailable presence went out (a round trip each on PostgreSQL): wait for them.
    const offline = short.server.module<OfflineApi>('offline');
    const deadline = Date.now() + 5000;
    let count = await offline.count('localhost', 'ivy');
    while (count < 4 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      count = await offline.count('localhost', 'ivy');
    }
    assert.equal(count, 4, 'the unacknowledged and the queued messages are in offline storage');

    const late = await RawClient.connect(short.port);
    late.send(STREAM_OPEN());
    await late.header();
    await late.element('features');
    await late.startTls();
    await late.restart();
    await scramAuth(late, 'ivy', 'ivy-pass');
    await late.restart();
    late.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    const failed = await late.element();
    assert.equal(failed.name, 'failed');
    assert.ok(failed.getChild('item-not-found', NS.STANZA_ERRORS));
    assert.equal(failed.attrs.h, '2', 'h of the timed-out session: presence and ping');
    // XEP-0198 §5: the client may bind on the same stream after a failed resume.
    late.send(`<iq type='set' id='b2'><bind xmlns='${NS.BIND}'/></iq>`);
    await late.waitFor((el) => el.attrs.id === 'b2' && el.attrs.type === 'result');
    late.send('<presence/>');
    const got: string[] = [];
    while (got.length < 4) {
      const el = await late.waitFor((e) => bodyOf(e) !== undefined, 'offline message');
      got.push(bodyOf(el)!);
    }
    assert.deepEqual(got, ['unacked', 'o1', 'o2', 'o3']);
    await roundTrip(late);
    await roundTrip(jay.client);
    assert.equal(unavailableFrom(jay.client, ivy.jid), 1, 'unavailable exactly once');
    assert.equal(late.elements.filter((el) => bodyOf(el) !== undefined).length, 4, 'each message once');
    late.close();
    jay.client.close();
  } finally {
    await short.stop();
  }
});

test("a <resume/> for another account's session is refused, and its owner can still resume", async () => {
  const gina = await online('gina');
  const { id } = await enable(gina);
  gina.client.socket.destroy();
  await hibernating(gina.jid);
  const thief = await authenticated('hank');
  thief.client.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  const refused = await thief.client.element();
  assert.equal(refused.name, 'failed');
  assert.ok(refused.getChild('item-not-found', NS.STANZA_ERRORS));
  assert.equal(refused.attrs.h, undefined, 'nothing told about the session');
  assert.equal(srv.server.router.getSession(gina.jid)?.attached, false, 'still hibernating');
  const owner = await authenticated('gina');
  owner.client.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  assert.equal((await owner.client.element()).name, 'resumed');
  owner.client.send('</stream:stream>');
  await owner.client.streamEnd();
  thief.client.close();
});

test('a client that never acknowledges: policy-violation after max_unacked, and the messages are in offline storage', async () => {
  const erin = await online('erin');
  const { sm } = await enable(erin);
  const frank = await online('frank');
  for (let i = 1; i <= 60; i++) frank.client.send(`<message to='${erin.jid}' type='chat'><body>f${i}</body></message>`);
  assert.equal(await erin.client.streamError(10_000), 'policy-violation');
  await roundTrip(frank.client);
  void sm;
  const offline = srv.server.module<OfflineApi>('offline');
  const deadline = Date.now() + 5000;
  // Storing runs after the stream ended; wait for it (bounded), then count exactly.
  while ((await offline.count('localhost', 'erin')) < 51 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const stored = await offline.count('localhost', 'erin');
  // 51 were unacknowledged when the limit (50) was passed; the rest found no session and were stored too.
  assert.equal(stored, 60, 'every message stored, none lost');
  const back = await online('erin');
  back.client.send('<presence/>');
  const bodies: string[] = [];
  while (bodies.length < 60) bodies.push(bodyOf(await back.client.waitFor((e) => bodyOf(e) !== undefined, 'stored message'))!);
  assert.deepEqual(bodies, Array.from({ length: 60 }, (_, i) => `f${i + 1}`));
  back.client.close();
  frank.client.close();
});

test('a connection killed at every point of a resume: nothing lost, nothing duplicated', async () => {
  const N = 12;
  const carol = await online('carol');
  const { sm, id } = await enable(carol);
  carol.client.send('<presence/>');
  await roundTrip(carol.client);
  const dave = await online('dave');
  dave.client.send('<presence/>');
  await sm.until((el) => el.name === 'presence' && el.attrs.from === dave.jid, "dave's presence");
  carol.client.socket.destroy();
  await hibernating(carol.jid);
  for (let i = 1; i <= N; i++) dave.client.send(`<message to='${carol.jid}' type='chat'><body>k${i}</body></message>`);
  await roundTrip(dave.client);

  // What the client has really handled: its 'h' and the bodies it read, across every attempt.
  let h = sm.h;
  const bodies: string[] = [];
  // Killed right after sending <resume/>, before reading <resumed/>.
  {
    const { client } = await authenticated('carol');
    client.send(`<resume xmlns='${SM}' previd='${id}' h='${h}'/>`);
    client.socket.destroy();
  }
  // Killed during the retransmission: right after <resumed/>, then after each message in turn
  // (the client acknowledges what it read through the 'h' of its next <resume/>).
  for (let k = 0; bodies.length < N - 1; k = 1) {
    const { client } = await authenticated('carol');
    const c = new SmClient(client);
    c.h = h;
    client.send(`<resume xmlns='${SM}' previd='${id}' h='${h}'/>`);
    const resumed = await c.until((el) => el.xmlns === SM, 'resumed');
    assert.equal(resumed.name, 'resumed', resumed.toString());
    while (c.bodies.length < k) await c.next();
    h = c.h;
    bodies.push(...c.bodies);
    client.socket.destroy();
  }
  const { client } = await authenticated('carol');
  const last = new SmClient(client);
  last.h = h;
  client.send(`<resume xmlns='${SM}' previd='${id}' h='${h}'/>`);
  assert.equal((await last.until((el) => el.xmlns === SM, 'resumed')).name, 'resumed');
  while (bodies.length + last.bodies.length < N) await last.next();
  bodies.push(...last.bodies);
  assert.deepEqual(bodies, Array.from({ length: N }, (_, i) => `k${i + 1}`), 'each message exactly once, in order');
  // Nothing more comes: a marker sent now is the next message.
  dave.client.send(`<message to='${carol.jid}' type='chat'><body>marker</body></message>`);
  const next = await last.until((el) => bodyOf(el) !== undefined, 'marker');
  assert.equal(bodyOf(next), 'marker');
  await roundTrip(dave.client);
  assert.equal(unavailableFrom(dave.client, carol.jid), 0, 'dave never saw carol go unavailable');
  client.close();
  dave.client.close();
});

test('a resumed stream starts active (XEP-0352 §5.2): presence CSI held while inactive and hibernating arrives after <resumed/>', async () => {
  const gina = await online('gina');
  const { sm, id } = await enable(gina);
  gina.client.send('<presence/>');
  const hank = await online('hank');
  hank.client.send('<presence/>');
  await sm.until((el) => el.name === 'presence' && el.attrs.from === hank.jid, "hank's presence");
  gina.client.send(`<inactive xmlns='urn:xmpp:csi:0'/>`);
  await roundTrip(gina.client);
  gina.client.socket.destroy();
  await hibernating(gina.jid);
  hank.client.send(`<presence><show>away</show></presence>`);
  await roundTrip(hank.client);
  const { client } = await authenticated('gina');
  const c = new SmClient(client);
  c.h = sm.h;
  client.send(`<resume xmlns='${SM}' previd='${id}' h='${sm.h}'/>`);
  assert.equal((await c.until((el) => el.xmlns === SM, 'resumed')).name, 'resumed');
  const away = await c.until((el) => el.name === 'presence' && el.attrs.from === hank.jid, "hank's held presence");
  assert.equal(away.getChildText('show'), 'away');
  client.send('</stream:stream>');
  hank.client.close();
});
