// Hardening, one account must not harm others (items 2, 3, 5, 6), over raw XML:
// offline quotas that keep room for contacts, a briefly unavailable store,
// subscription spam, roster and session limits.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { iq, stanzaErrorCondition } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { OfflineApi } from '../src/modules/offline/api.js';

const byId = (id: string) => (el: Element) => el.attrs.id === id;

/** A ping answered: everything sent before it was processed (RFC 6120 §10.1). After a burst, give it `timeoutMs`. */
async function roundTrip(c: LoggedIn, timeoutMs?: number): Promise<void> {
  await iq(c.client, `type='get' to='localhost'`, `<ping xmlns='${NS.PING}'/>`, timeoutMs);
}

/**
 * The error condition the server answered stanza `id` with, or undefined when it answered none.
 * Call after a round trip: by in-order processing (RFC 6120 §10.1) an error would have come first.
 */
async function errorFor(c: LoggedIn, id: string): Promise<string | undefined> {
  if (!new RegExp(`<(message|presence|iq) [^>]*id="${id}"[^>]*type="error"`).test(c.client.received)) return undefined;
  return stanzaErrorCondition(await c.client.waitFor(byId(id), `the error for ${id}`));
}

/** Makes `a` and `b` subscribed to each other (RFC 6121 §3), both online. */
async function befriend(a: LoggedIn, b: LoggedIn): Promise<void> {
  const bareA = a.jid.split('/')[0]!;
  const bareB = b.jid.split('/')[0]!;
  a.client.send('<presence/>');
  b.client.send('<presence/>');
  for (const [x, y, bx, by] of [
    [a, b, bareA, bareB],
    [b, a, bareB, bareA],
  ] as const) {
    x.client.send(`<presence to='${by}' type='subscribe'/>`);
    await y.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === bx, 'request');
    y.client.send(`<presence to='${bx}' type='subscribed'/>`);
    await x.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribed', 'approval');
  }
}

describe('offline quotas keep room for contacts (item 3)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ offline: { max_per_user: 8, max_per_stranger: 2, strangers_share: 0.5, max_bytes_per_user: 100_000 } });
    for (const u of ['alice', 'friend', 'spam1', 'spam2', 'spam3']) await srv.addUser(u, `${u}-pass`);
  });
  after(() => srv.stop());

  test('strangers are held to their share and to a few each; a contact still gets through; bytes are bounded', async () => {
    const alice = await login(srv.port, 'alice', 'alice-pass');
    const friend = await login(srv.port, 'friend', 'friend-pass');
    await befriend(alice, friend);
    alice.client.close();
    await new Promise((r) => setTimeout(r, 0));
    const count = (): Promise<number> => srv.server.module<OfflineApi>('offline').count('localhost', 'alice');
    const send = async (c: LoggedIn, id: string, body = 'hello'): Promise<string | undefined> => {
      c.client.send(`<message to='alice@localhost' type='chat' id='${id}'><body>${body}</body></message>`);
      await roundTrip(c);
      return errorFor(c, id);
    };
    await waitFor(async () => srv.server.router.getSessions('alice@localhost').length === 0, 'alice offline');
    const spam = [await login(srv.port, 'spam1', 'spam1-pass'), await login(srv.port, 'spam2', 'spam2-pass'), await login(srv.port, 'spam3', 'spam3-pass')];
    // Two from one stranger, then that stranger is refused.
    assert.equal(await send(spam[0]!, 's1a'), undefined);
    assert.equal(await send(spam[0]!, 's1b'), undefined);
    assert.equal(await send(spam[0]!, 's1c'), 'service-unavailable', 'a third from the same stranger');
    // Strangers together: half of 8.
    assert.equal(await send(spam[1]!, 's2a'), undefined);
    assert.equal(await send(spam[1]!, 's2b'), undefined);
    assert.equal(await send(spam[2]!, 's3a'), 'service-unavailable', "the strangers' share is used up");
    assert.equal(await count(), 4);
    // The contact still has the other half.
    for (let i = 0; i < 4; i++) assert.equal(await send(friend, `f${i}`), undefined, `contact message ${i}`);
    assert.equal(await send(friend, 'f-full'), 'service-unavailable', 'the store is full now');
    assert.equal(await count(), 8);
    // The bounce says which limit it is.
    assert.match(spam[0]!.client.received, /id="s1c"[^>]*type="error"><body>hello<\/body><error type="cancel"><service-unavailable [^>]*\/><text [^>]*>too many messages stored for this user from you</);
    for (const c of [...spam, friend]) c.client.close();
  });
});

describe('a store that is briefly unavailable (item 2)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ storage: { path: './data/shoal.sqlite', busy_timeout: 0.1 } });
    for (const u of ['alice', 'bob']) await srv.addUser(u, `${u}-pass`);
  });
  after(() => srv.stop());

  test('a lock that is released in time: retried and stored; a lock that stays: a wait error, not cancel', async () => {
    const bob = await login(srv.port, 'bob', 'bob-pass');
    const holder = new BetterSqlite3(join(srv.dir, 'data', 'shoal.sqlite'));
    try {
      // Held for 300 ms: longer than the busy timeout (100 ms), shorter than the retries.
      holder.exec('BEGIN IMMEDIATE');
      setTimeout(() => holder.exec('COMMIT'), 300);
      bob.client.send(`<message to='alice@localhost' type='chat' id='m1'><body>kept after a retry</body></message>`);
      await roundTrip(bob);
      assert.doesNotMatch(bob.client.received, /id="m1" type="error"/);
      assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'alice'), 1);

      // Held for good: after the retries the sender learns it may try again later.
      holder.exec('BEGIN IMMEDIATE');
      bob.client.send(`<message to='alice@localhost' type='chat' id='m2'><body>not now</body></message>`);
      const err = await bob.client.waitFor(byId('m2'), 'the error for m2', 10_000);
      assert.equal(stanzaErrorCondition(err), 'resource-constraint');
      assert.equal(err.getChild('error')?.attrs.type, 'wait', 'temporary: not the permanent cancel of an unknown user');
      holder.exec('COMMIT');
    } finally {
      holder.close();
    }
    bob.client.close();
  });
});

describe('subscription spam (item 5)', () => {
  let srv: TestServer;
  before(async () => {
    // The sender's own request budget is lifted here, to show the repeat suppression alone.
    srv = await startTestServer({ limits: { subscription_requests: { burst: 1000, per_minute: 1 } } });
    for (const u of ['victim', 'stranger']) await srv.addUser(u, `${u}-pass`);
  });
  after(() => srv.stop());

  test('a stranger cycling subscribe/unsubscribe reaches the victim once, not 50 times', async () => {
    const victim = await login(srv.port, 'victim', 'victim-pass');
    victim.client.send('<presence/>');
    // Its initial presence handled first (RFC 6121 §4.4.2: own presence back), else a request stored
    // meanwhile is also delivered as pending at that presence (§3.1.3), besides live.
    await victim.client.waitFor((el) => el.name === 'presence' && el.attrs.from === victim.jid, 'own presence');
    const stranger = await login(srv.port, 'stranger', 'stranger-pass');
    for (let i = 0; i < 50; i++) {
      stranger.client.send(`<presence to='victim@localhost' type='subscribe'/>`);
      stranger.client.send(`<presence to='victim@localhost' type='unsubscribe'/>`);
    }
    stranger.client.send(`<presence to='victim@localhost' type='subscribe'/>`);
    // 101 presences, each read and written in storage (many round trips on PostgreSQL): a long wait.
    await roundTrip(stranger, 60_000);
    await roundTrip(victim);
    const requests = victim.client.received.match(/<presence [^>]*type="subscribe"/g) ?? [];
    assert.equal(requests.length, 1, 'shown live once');
    // The request is not lost: it is pending, and shown at the next login.
    victim.client.close();
    const again = await login(srv.port, 'victim', 'victim-pass');
    again.client.send('<presence/>');
    const req = await again.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'the pending request');
    assert.equal(req.attrs.from, 'stranger@localhost');
    again.client.close();
    stranger.client.close();
  });
});

describe('subscription requests per sender (item 5) and account limits (item 6)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      limits: { subscription_requests: { burst: 3, per_minute: 1 }, max_sessions_per_account: 2 },
      roster: { max_items: 5 },
    });
    for (const u of ['spreader', 'collector', 'a1', 'a2', 'a3', 'a4']) await srv.addUser(u, `${u}-pass`);
  });
  after(() => srv.stop());

  test('one user sending requests to many strangers is slowed down with policy-violation', async () => {
    const spreader = await login(srv.port, 'spreader', 'spreader-pass');
    const outcomes: (string | undefined)[] = [];
    for (const [i, to] of ['a1', 'a2', 'a3', 'a4', 'nobody'].entries()) {
      spreader.client.send(`<presence to='${to}@localhost' type='subscribe' id='r${i}'/>`);
      await roundTrip(spreader);
      outcomes.push(await errorFor(spreader, `r${i}`));
    }
    assert.deepEqual(outcomes, [undefined, undefined, undefined, 'policy-violation', 'policy-violation']);
    spreader.client.close();
  });

  test('roster.max_items: a roster set beyond it is not-allowed; a request that would need a new item is dropped', async () => {
    const c = await login(srv.port, 'collector', 'collector-pass');
    for (const j of ['x1', 'x2', 'x3', 'x4', 'x5']) {
      const r = await iq(c.client, `type='set'`, `<query xmlns='${NS.ROSTER}'><item jid='${j}@localhost'/></query>`);
      assert.equal(r.attrs.type, 'result');
    }
    const over = await iq(c.client, `type='set'`, `<query xmlns='${NS.ROSTER}'><item jid='x6@localhost'/></query>`);
    assert.equal(stanzaErrorCondition(over), 'not-allowed');
    // Updating an existing item is still fine.
    assert.equal((await iq(c.client, `type='set'`, `<query xmlns='${NS.ROSTER}'><item jid='x1@localhost' name='One'/></query>`)).attrs.type, 'result');
    // A request from someone not in the full roster is not stored, nor shown.
    c.client.send('<presence/>');
    const a4 = await login(srv.port, 'a4', 'a4-pass');
    a4.client.send(`<presence to='collector@localhost' type='subscribe'/>`);
    await roundTrip(a4);
    await roundTrip(c);
    assert.doesNotMatch(c.client.received, /type="subscribe"/);
    const roster = await iq(c.client, `type='get'`, `<query xmlns='${NS.ROSTER}'/>`);
    assert.equal(roster.getChild('query', NS.ROSTER)?.getChildren('item').length, 5);
    a4.client.close();
    c.client.close();
  });

  test('limits.max_sessions_per_account: the next bind gets resource-constraint', async () => {
    const one = await login(srv.port, 'a1', 'a1-pass');
    const two = await login(srv.port, 'a1', 'a1-pass');
    await assert.rejects(login(srv.port, 'a1', 'a1-pass'), /bind failed: .*resource-constraint/);
    two.client.close();
    await waitFor(async () => srv.server.router.getSessions('a1@localhost').length === 1, 'one session left');
    const three = await login(srv.port, 'a1', 'a1-pass');
    for (const c of [one, three]) c.client.close();
  });
});

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
