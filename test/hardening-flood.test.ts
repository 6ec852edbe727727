// Hardening over real TLS sockets: a stranger's burst does not get a slow reader
// disconnected, and nothing of it is lost (item E); a large offline backlog is
// delivered at the pace the client reads, never cut off, never lost (item 1).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { OfflineApi } from '../src/modules/offline/api.js';
import { until } from './support/until.js';

/** Message ids received by a client, in order. */
function ids(c: LoggedIn, prefix: string): string[] {
  return [...c.client.received.matchAll(new RegExp(`<message [^>]*id="(${prefix}-\\d+)"`, 'g'))].map((m) => m[1]!);
}

let pings = 0;
/**
 * Waits until the server has processed everything the client sent so far (RFC 6120 §10.1:
 * in order, so the answer to a ping sent now comes after). Storing megabytes takes a while
 * on a loaded machine: a long timeout.
 */
async function processed(c: LoggedIn): Promise<void> {
  const id = `processed-${++pings}`;
  c.client.send(`<iq type='get' to='localhost' id='${id}'><ping xmlns='${NS.PING}'/></iq>`);
  await c.client.waitFor((el) => el.attrs.id === id, 'the server to process the burst', 120_000);
}

/** No traffic shaping of senders: these tests are about what becomes of the recipient (item 4 tests the shaping). */
const UNSHAPED = { rate: { client: { bytes_per_second: 0, stanzas_per_second: 0 }, account: { bytes_per_second: 0, stanzas_per_second: 0 } } };

describe('a flood from a stranger does not disconnect a slow reader (item E)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ limits: UNSHAPED });
    await srv.addUser('victim', 'victim-pass');
    await srv.addUser('stranger', 'stranger-pass');
  });
  after(() => srv.stop());

  test('a 12 MB burst to a client that is not reading: it stays connected and gets every message, once', async () => {
    const victim = await login(srv.port, 'victim', 'victim-pass');
    victim.client.send('<presence/>');
    await victim.client.waitFor((el) => el.name === 'presence' && el.attrs.from === victim.jid, 'own presence');
    // The victim stops reading its socket.
    victim.client.socket.pause();

    const stranger = await login(srv.port, 'stranger', 'stranger-pass');
    const body = 'x'.repeat(60_000);
    const N = 200;
    for (let i = 0; i < N; i++) stranger.client.send(`<message to='victim@localhost' type='chat' id='burst-${i}'><body>${body}</body></message>`);
    // In-order processing (RFC 6120 §10.1): once this is answered, the server has handled the burst.
    await processed(stranger);
    assert.ok(srv.server.router.getSession(victim.jid), 'the victim was not disconnected for what a stranger sent');
    // What did not fit in the victim's connection was kept offline, up to the stranger's quota
    // there (offline.max_per_stranger, the strangers' share of the bytes); the rest came back
    // to the stranger as errors. Nothing vanished.
    // A refusal is sent once the store has answered, which with an asynchronous store can be
    // after the ping's reply (a reply from another entity, RFC 6120 §10.1): read them afresh.
    const bouncedIds = (): Set<string> =>
      new Set([...stranger.client.received.matchAll(/<message [^>]*id="(burst-\d+)"[^>]*type="error"/g)].map((m) => m[1]!));
    assert.ok(bouncedIds().size < N / 2, `most of the burst was accepted (${N - bouncedIds().size})`);

    // The victim reads again: what was written arrives, and what was kept follows.
    victim.client.socket.resume();
    await until(() => new Set(ids(victim, 'burst')).size + bouncedIds().size === N, 'every accepted message at the victim', 60_000);
    const bounced = bouncedIds();
    assert.ok(bounced.size < N / 2, `most of the burst was accepted (${N - bounced.size})`);
    const got = ids(victim, 'burst');
    assert.equal(got.length, new Set(got).size, 'each exactly once');
    assert.ok(got.every((id) => !bounced.has(id)), 'nothing both bounced and delivered');
    assert.equal(victim.client.closed, false);
    assert.equal(await srv.server.module<OfflineApi>('offline').count('localhost', 'victim'), 0, 'nothing left behind');
    victim.client.close();
    stranger.client.close();
  });
});

describe('a large offline backlog is paced by the reader (item 1)', () => {
  let srv: TestServer;
  before(async () => {
    // Room for the whole backlog from one stranger (the quotas are tested in hardening-accounts).
    srv = await startTestServer({ limits: UNSHAPED, offline: { max_bytes_per_user: 64 * 1024 * 1024, max_per_stranger: 1000, strangers_share: 1 } });
    await srv.addUser('reader', 'reader-pass');
    await srv.addUser('writer', 'writer-pass');
  });
  after(() => srv.stop());

  test('160 messages of 128 KB: a slow reader gets them all without being cut off; none is removed before it is written', async () => {
    const writer = await login(srv.port, 'writer', 'writer-pass');
    const body = 'y'.repeat(128 * 1024 - 200);
    const N = 160;
    for (let i = 0; i < N; i++) writer.client.send(`<message to='reader@localhost' type='chat' id='big-${i}'><body>${body}</body></message>`);
    await processed(writer);
    const offline = srv.server.module<OfflineApi>('offline');
    assert.equal(await offline.count('localhost', 'reader'), N);

    // Logs in, becomes available, and does not read for a while.
    const reader = await login(srv.port, 'reader', 'reader-pass');
    reader.client.socket.pause();
    reader.client.send('<presence/>');
    // While it does not read, most of the backlog stays stored (the server writes only what the connection takes).
    await until(async () => (await offline.count('localhost', 'reader')) < N, 'the first messages to be written', 60_000);
    const stored = await offline.count('localhost', 'reader');
    assert.ok(stored > N / 2, `only what fits in the connection has left storage (${N - stored} written)`);
    // Reads slowly, in steps: the server never closes the stream.
    for (let step = 0; step < 8; step++) {
      reader.client.socket.resume();
      const seen = new Set(ids(reader, 'big')).size;
      await until(() => new Set(ids(reader, 'big')).size >= Math.min(N, seen + 10), 'ten more', 60_000);
      reader.client.socket.pause();
      assert.ok(srv.server.router.getSession(reader.jid), 'not cut off');
    }
    reader.client.socket.resume();
    await until(() => new Set(ids(reader, 'big')).size === N, 'the whole backlog', 60_000);
    assert.equal(ids(reader, 'big').length, N, 'each once');
    assert.deepEqual(
      ids(reader, 'big'),
      Array.from({ length: N }, (_, i) => `big-${i}`),
      'in order',
    );
    assert.equal(reader.client.received.includes('<stream:error>'), false);
    await until(async () => (await offline.count('localhost', 'reader')) === 0, 'storage emptied', 60_000);
    reader.client.close();
    writer.client.close();
  });

  test('a reader that goes away in the middle gets the rest at its next login', async () => {
    const writer = await login(srv.port, 'writer', 'writer-pass');
    const body = 'z'.repeat(128 * 1024 - 200);
    const N = 60;
    for (let i = 0; i < N; i++) writer.client.send(`<message to='reader@localhost' type='chat' id='rest-${i}'><body>${body}</body></message>`);
    await processed(writer);
    const offline = srv.server.module<OfflineApi>('offline');
    const first = await login(srv.port, 'reader', 'reader-pass');
    first.client.socket.pause();
    first.client.send('<presence/>');
    await until(async () => (await offline.count('localhost', 'reader')) < N, 'the first messages to be written', 60_000);
    first.client.close();
    await until(() => srv.server.router.getSession(first.jid) === undefined, 'the first session to end', 60_000);
    const left = await offline.count('localhost', 'reader');
    assert.ok(left > 0 && left < N, `some went out, the rest stayed (${left} stored)`);
    const second = await login(srv.port, 'reader', 'reader-pass');
    second.client.send('<presence/>');
    await until(() => ids(second, 'rest').length === left, `the ${left} left`, 60_000);
    assert.deepEqual(
      ids(second, 'rest'),
      Array.from({ length: left }, (_, i) => `rest-${N - left + i}`),
      'exactly the ones not written before, in order',
    );
    second.client.close();
    writer.client.close();
  });
});
