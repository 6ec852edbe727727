// Two ClusterRouters in one process, on the machine's Redis (a database index and a
// namespace of the test's own): the replica, cluster-wide resources, delivery to
// another node's session batched per node, placement, cache invalidation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Jid } from '../jid/jid.js';
import { x, type Element } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import { silentLogger } from '../log/logger.js';
import { Caches } from '../core/cache.js';
import { ClientSession, type EndReason, type Session, type SessionConnection, type SessionHost } from '../core/session.js';
import type { RouterHub } from '../core/router.js';
import { ClusterRouter, placeOf } from './cluster.js';
import { configSchema } from '../config/schema.js';

const REDIS = `redis://127.0.0.1:6379/${1 + (process.pid % 15)}`;

class Hub implements RouterHub {
  readonly log = silentLogger();
  readonly caches = new Caches();
  readonly undelivered: Element[] = [];
  readonly here: Element[] = [];
  readonly ended: [string, EndReason, boolean][] = [];
  changes = 0;
  route(stanza: Element): Promise<void> {
    this.here.push(stanza);
    return Promise.resolve();
  }
  deliverHere(stanza: Element): Promise<void> {
    this.here.push(stanza);
    return Promise.resolve();
  }
  undeliverable(_s: Session, stanza: Element): void {
    this.undelivered.push(stanza);
  }
  remoteEnded(s: Session, reason: EndReason, adopted: boolean): void {
    this.ended.push([s.jid.toString(), reason, adopted]);
  }
  clusterChanged(): void {
    this.changes++;
  }
}

class Conn implements SessionConnection {
  readonly written: Element[] = [];
  congested = false;
  write(el: Element): boolean {
    this.written.push(el);
    return true;
  }
  close(): void {}
  drained(): Promise<boolean> {
    return Promise.resolve(true);
  }
}

const host: SessionHost = {
  filterOutgoing: (_s, el) => el,
  undeliverable: () => undefined,
  congested: () => undefined,
  drained: () => undefined,
  keepDetached: () => false,
  ended: () => undefined,
  written: () => undefined,
  idle: () => undefined,
};

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ClusterRouter (two nodes in one process, on Redis)', () => {
  const namespace = `u${process.pid}${randomBytes(3).toString('hex')}`;
  const config = (node: string) =>
    configSchema.parse({ storage: { driver: 'postgres', url: 'postgresql://x@127.0.0.1/x' }, cluster: { node, redis: REDIS, namespace, heartbeat_ms: 100, dead_after_ms: 600 } }).cluster!;
  let a: ClusterRouter;
  let b: ClusterRouter;
  const hubA = new Hub();
  const hubB = new Hub();
  const redis = new Redis(REDIS);

  before(async () => {
    a = new ClusterRouter(config('a'), silentLogger());
    b = new ClusterRouter(config('b'), silentLogger());
    await a.start(hubA);
    await b.start(hubB);
    await until(() => a.liveNodes.length === 2 && b.liveNodes.length === 2, 'both nodes live on both');
  });
  after(async () => {
    await a.stop();
    await b.stop();
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  test('a session of one node is in the other replica with its presence, marks and interest; it leaves with its end', async () => {
    const conn = new Conn();
    const s = new ClientSession(host, Jid.parse('alice@h/phone'), conn);
    assert.equal(await a.register(s), true);
    a.setPresence(s, { presence: x('presence', NS.CLIENT, {}, x('show', NS.CLIENT, {}, 'away')), priority: 5 });
    a.setMark(s, 'urn:xmpp:carbons:2', true);
    a.setInterested(s, true);
    await until(() => b.getSession('alice@h/phone')?.priority === 5 && b.getSession('alice@h/phone')!.interested, 'the replica');
    const remote = b.getSession('alice@h/phone')!;
    assert.equal(remote.available, true);
    assert.equal(remote.presence?.getChildText('show'), 'away');
    assert.ok(remote.marks.has('urn:xmpp:carbons:2'));
    assert.deepEqual(b.getSessions('alice@h'), [remote]);
    assert.equal(b.isLocal(remote), false);
    assert.equal(b.hasResource('alice@h', 'phone'), true);
    // RFC 6120 §7.7.2.2: the same resource cannot be bound on the other node.
    assert.equal(await b.register(new ClientSession(host, Jid.parse('alice@h/phone'), new Conn())), false);
    a.unregister(s, 'logout');
    await until(() => b.getSession('alice@h/phone') === undefined, 'the session gone from the replica');
    assert.deepEqual(hubB.ended.at(-1), ['alice@h/phone', 'logout', false]);
    // The resource is free again, cluster-wide.
    const again = new ClientSession(host, Jid.parse('alice@h/phone'), new Conn());
    assert.equal(await b.register(again), true);
    b.unregister(again);
  });

  test('stanzas to sessions of another node: one XADD per node per turn, delivered in order; a gone session re-routes', async () => {
    const conns = Array.from({ length: 50 }, () => new Conn());
    const sessions = conns.map((c, i) => new ClientSession(host, Jid.parse(`u${i}@h/r`), c));
    for (const s of sessions) assert.equal(await b.register(s), true);
    await until(() => sessions.every((s) => a.getSession(s.jid.toString()) !== undefined), 'the replica on a');
    // A first stanza creates b's stream.
    a.getSession(sessions[1]!.jid.toString())!.send(x('message', NS.CLIENT, { from: 'z@h/x', to: sessions[1]!.jid.toString(), id: 'first' }));
    await until(() => conns[1]!.written.length === 1, 'the first stanza');
    conns[1]!.written.length = 0;
    // Entries ever added to b's stream (Redis 7 XINFO 'entries-added'; the stream is this test's alone).
    const [inbox] = await redis.keys(`${namespace}:inbox:b:*`);
    const stats = async (): Promise<number> => {
      const info = (await redis.xinfo('STREAM', inbox!)) as (string | number)[];
      return Number(info[info.indexOf('entries-added') + 1]);
    };
    const before = await stats();
    // One turn: a presence broadcast to 50 contacts, 3 stanzas each.
    for (let k = 0; k < 3; k++) for (const s of sessions) a.getSession(s.jid.toString())!.send(x('presence', NS.CLIENT, { from: 'z@h/x', to: s.jid.toString(), id: `p${k}` }));
    await until(() => conns.every((c) => c.written.length === 3), 'every stanza delivered on b');
    assert.equal((await stats()) - before, 1, 'one stream entry for 150 stanzas to one node');
    for (const c of conns) assert.deepEqual(c.written.map((e) => e.attrs.id), ['p0', 'p1', 'p2']);
    // A stanza that reaches b after the session ended: undeliverable there, not lost.
    const remote = a.getSession(sessions[0]!.jid.toString())!;
    b.unregister(sessions[0]!);
    remote.send(x('message', NS.CLIENT, { from: 'z@h/x', to: sessions[0]!.jid.toString(), type: 'chat', id: 'late' }));
    await until(() => hubB.undelivered.some((e) => e.attrs.id === 'late'), 'the late message re-routed on b');
    for (const s of sessions.slice(1)) b.unregister(s);
  });

  test('placement: every node agrees on the host of an entity; stanzas for it go there', async () => {
    const rooms = Array.from({ length: 40 }, (_, i) => `room${i}@conference.h`);
    const onA = rooms.filter((r) => a.hostOf(r) === undefined);
    const onB = rooms.filter((r) => b.hostOf(r) === undefined);
    assert.equal(onA.length + onB.length, rooms.length, 'each room has exactly one host');
    assert.ok(onA.length > 5 && onB.length > 5, `spread: ${onA.length} / ${onB.length}`);
    for (const r of onB) assert.equal(a.hostOf(r)!.name, 'b');
    for (const r of rooms) assert.equal(placeOf(['a', 'b'], r), a.hostOf(r)?.name ?? 'a');
    a.hostOf(onB[0]!)!.route(x('message', NS.CLIENT, { from: 'z@h/x', to: `${onB[0]}`, type: 'groupchat', id: 'placed' }));
    await until(() => hubB.here.some((e) => e.attrs.id === 'placed'), 'the stanza at its host');
  });

  test('a cache key changed on one node is invalidated on the other', async () => {
    const ca = hubA.caches.define<string>('test-cache');
    const cb = hubB.caches.define<string>('test-cache');
    await cb.get('k', () => Promise.resolve('old'));
    assert.equal(cb.has('k'), true);
    ca.set('k', 'new');
    await until(() => !cb.has('k'), 'the key invalidated on b');
  });
});
