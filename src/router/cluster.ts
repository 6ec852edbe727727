// The session registry of a cluster of Shoal nodes, shared through Redis (the
// seed's server ran as a cluster too). Every node keeps a replica of the whole
// registry in memory, so that lookups (RFC 6121 §8.5 delivery, presence
// fan-out) stay synchronous and cost nothing per stanza; Redis holds the copy of
// record, carries the changes and the stanzas between nodes:
//
//   {ns}:nodes                  hash    node -> {"epoch","since"}: the members
//   {ns}:hb:{node}              string  the node's epoch, expiring after dead_after_ms: alive
//   {ns}:dead:{node}:{epoch}    string  the node that cleaned up after it (claimed once, NX)
//   {ns}:sess:{node}            hash    full JID -> session record: that node's sessions
//   {ns}:jid:{full JID}         string  "node session-id": the resource, claimed cluster-wide
//   {ns}:inbox:{node}:{epoch}   stream  batches of stanzas for that run of that node
//   {ns}:svc                    hash    component domain -> the node it is connected to
//   {ns}:events                 channel registry changes, cache invalidations, joins, leaves
//
// A stanza for a session of another node is queued and sent at the end of the
// event-loop turn, one XADD per node for everything queued for it (a presence
// broadcast to 500 contacts on two other nodes is two Redis operations). A node
// takes its entries off its stream once handed to its sessions, so what a node
// that died had not taken is still there: the node that cleans up after it
// re-routes those stanzas (another resource, offline storage) instead of losing them.
import { randomBytes } from 'node:crypto';
import { Redis, type ChainableCommander } from 'ioredis';
import type { Element } from '../xml/element.js';
import { loadXml, storeXml } from '../xml/stored.js';
import { Jid } from '../jid/jid.js';
import type { ClusterConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { StreamError, type StreamErrorCondition } from '../core/errors.js';
import type { NodeLink, PresenceChange, Router, RouterHub } from '../core/router.js';
import { NO_MARKS, withMark, type EndReason, type LocalSession, type Session } from '../core/session.js';

/** A session as the registry in Redis keeps it. */
interface SessionRecord {
  /** Session id (unique), full JID, node and its run (epoch). */
  id: string;
  jid: string;
  node: string;
  e: string;
  /** Version: a replica applies a record only if it is newer than what it has. */
  v: number;
  /** Available, priority, presence (XML), interested (RFC 6121 §2.1.6), marks. */
  a: boolean;
  p: number;
  x?: string;
  i: boolean;
  m?: string[];
}

type ClusterEvent =
  | { t: 's'; r: SessionRecord }
  | { t: 'u'; node: string; id: string; jid: string; why: EndReason; by?: string }
  | { t: 'c'; node: string; name: string; key: string }
  | { t: 'v'; node: string; domain: string; on: boolean }
  | { t: 'j'; node: string }
  | { t: 'l'; node: string };

/** What one node sends another through its stream: to a session, to an entity it hosts, a close. */
type InboxItem = ['s', string, string, string] | ['r', string] | ['c', string, string, string];

/** How long a removed session's id is remembered, so that a late update does not bring it back. */
const GONE_MS = 10 * 60_000;
/** Entries read from the stream at once. */
const READ_COUNT = 500;

/** Deletes a key only while it holds the expected value (a claim of this session, not a later one). */
const DEL_IF_EQUALS = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
/** Deletes a hash field only while it holds the expected value. */
const HDEL_IF_EQUALS = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0";

interface ClusterRedis extends Redis {
  delIfEquals(key: string, value: string): Promise<number>;
  hdelIfEquals(key: string, field: string, value: string): Promise<number>;
}

/** The custom commands, as a pipeline has them. */
interface ClusterPipeline {
  delIfEquals(key: string, value: string): void;
  hdelIfEquals(key: string, field: string, value: string): void;
}

/** A session of another node, as this node's replica knows it. */
class RemoteSession implements Session {
  readonly attached = true;
  readonly handledCount = 0;
  available = false;
  priority = 0;
  presence: Element | undefined = undefined;
  interested = false;
  marks: ReadonlySet<string> = NO_MARKS;
  version = 0;

  constructor(
    private readonly router: ClusterRouter,
    readonly id: string,
    readonly jid: Jid,
    readonly node: string,
    readonly epoch: string,
  ) {}

  apply(r: SessionRecord): void {
    this.version = r.v;
    this.available = r.a;
    this.priority = r.p;
    this.interested = r.i;
    this.presence = r.x === undefined ? undefined : loadXml(r.x);
    this.marks = r.m === undefined || r.m.length === 0 ? NO_MARKS : new Set(r.m);
  }

  send(stanza: Element): boolean {
    // The node that holds the session runs the outgoing filters (stream management, CSI) and,
    // when the session is gone by then, re-routes it as undeliverable: never lost here.
    this.router.forward(this.node, this.epoch, ['s', this.id, this.jid.toString(), storeXml(stanza)]);
    return true;
  }

  trySend(stanza: Element): boolean {
    return this.send(stanza);
  }

  writeDirect(): boolean {
    return false;
  }

  writable(): true {
    return true;
  }

  close(error?: StreamError): void {
    this.router.forward(this.node, this.epoch, ['c', this.id, this.jid.toString(), error?.condition ?? '']);
  }
}

/** A name for one run of a node: its stream, its registry records and its dead-marker carry it. */
function newEpoch(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** FNV-1a: a cheap, well-spread hash for rendezvous placement. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Mixed once more (murmur3's finaliser): node names that differ in one letter spread too.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** The node, among `nodes`, that hosts `key` (rendezvous hashing: the highest score wins). */
export function placeOf(nodes: readonly string[], key: string): string {
  let best = '';
  let bestScore = -1;
  for (const n of nodes) {
    const score = fnv1a(n + '\n' + key);
    if (score > bestScore) {
      best = n;
      bestScore = score;
    }
  }
  return best;
}

export class ClusterRouter implements Router {
  /** Every session of the cluster by full JID, and by bare JID. */
  private readonly byFull = new Map<string, Session>();
  private readonly byBare = new Map<string, Session[]>();
  /** This node's sessions by full JID. */
  private readonly locals = new Map<string, LocalSession>();
  private readonly remoteById = new Map<string, RemoteSession>();
  /** Ids of sessions that left, and when. */
  private readonly gone = new Map<string, number>();
  private readonly versions = new WeakMap<Session, number>();
  private hub: RouterHub | undefined;
  private cmd: ClusterRedis | undefined;
  private sub: Redis | undefined;
  private reader: Redis | undefined;
  private epoch = '';
  /** The live nodes (this one included), sorted; their runs. */
  private live: string[] = [];
  private readonly epochs = new Map<string, string>();
  private readonly links = new Map<string, NodeLink>();
  /** Component domain -> the node it is connected to. */
  private readonly services = new Map<string, string>();
  private outbox = new Map<string, InboxItem[]>();
  private writes: ChainableCommander | undefined;
  private flushing: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private running = false;
  private loaded = false;
  private early: ClusterEvent[] = [];
  private readonly cleaning = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private reading: Promise<void> | undefined;

  constructor(
    private readonly config: ClusterConfig,
    private readonly log: Logger,
  ) {}

  /** This node's name. */
  get node(): string {
    return this.config.node;
  }

  /** The live nodes as this one sees them (sorted). */
  get liveNodes(): readonly string[] {
    return this.live;
  }

  private k(...parts: string[]): string {
    return `${this.config.namespace}:${parts.join(':')}`;
  }

  // --- Router -------------------------------------------------------------------------------

  /** This node's sessions (the metrics' count, and what shutdown closes). */
  get size(): number {
    return this.locals.size;
  }

  all(): Iterable<Session> {
    return this.locals.values();
  }

  hasResource(bare: string, resource: string): boolean {
    return this.byFull.has(bare + '/' + resource);
  }

  getSession(fullJid: string): Session | undefined {
    return this.byFull.get(fullJid);
  }

  getSessions(bareJid: string): readonly Session[] {
    return this.byBare.get(bareJid) ?? [];
  }

  isLocal(session: Session): boolean {
    return this.locals.get(session.jid.toString()) === session;
  }

  /** RFC 6120 §7.7.2.2: the resource is claimed in Redis, so that it is unique in the whole cluster. */
  async register(session: LocalSession): Promise<boolean> {
    const full = session.jid.toString();
    if (this.byFull.has(full)) return false;
    const claimed = await this.redis().set(this.k('jid', full), `${this.node} ${session.id}`, 'NX');
    if (claimed !== 'OK') return false;
    if (this.byFull.has(full)) {
      // Taken here while Redis answered (a remote session's record arrived first).
      await this.redis().delIfEquals(this.k('jid', full), `${this.node} ${session.id}`);
      return false;
    }
    this.add(session);
    this.locals.set(full, session);
    this.publishSession(session);
    return true;
  }

  unregister(session: Session, reason: EndReason = 'disconnect'): void {
    const full = session.jid.toString();
    if (this.locals.get(full) !== session) return;
    this.locals.delete(full);
    this.remove(session);
    if (session.marks.size > 0) (session as LocalSession).applyState({ marks: NO_MARKS });
    const w = this.pipeline();
    w.hdel(this.k('sess', this.node), full);
    (w as unknown as ClusterPipeline).delIfEquals(this.k('jid', full), `${this.node} ${session.id}`);
    this.publishIn(w, { t: 'u', node: this.node, id: session.id, jid: full, why: reason });
  }

  setPresence(session: Session, change: PresenceChange): void {
    const local = this.registered(session);
    if (!local) return;
    if (change.presence === undefined) local.applyState({ available: false, presence: undefined });
    else local.applyState({ available: true, presence: change.presence, priority: change.priority });
    this.publishSession(local);
  }

  setInterested(session: Session, interested: boolean): void {
    const local = this.registered(session);
    if (!local || local.interested === interested) return;
    local.applyState({ interested });
    this.publishSession(local);
  }

  setMark(session: Session, mark: string, on: boolean): void {
    const local = this.registered(session);
    if (!local || local.marks.has(mark) === on) return;
    local.applyState({ marks: withMark(local.marks, mark, on) });
    this.publishSession(local);
  }

  /** Rendezvous hashing over the live nodes: every node computes the same host, and only the dead node's entities move. */
  hostOf(key: string): NodeLink | undefined {
    if (this.live.length <= 1) return undefined;
    const best = placeOf(this.live, key);
    return best === this.node ? undefined : this.link(best);
  }

  announceService(domain: string, on: boolean): void {
    if (!this.cmd) return;
    const w = this.pipeline();
    if (on) {
      this.services.set(domain, this.node);
      w.hset(this.k('svc'), domain, this.node);
    } else {
      if (this.services.get(domain) === this.node) this.services.delete(domain);
      (w as unknown as ClusterPipeline).hdelIfEquals(this.k('svc'), domain, this.node);
    }
    this.publishIn(w, { t: 'v', node: this.node, domain, on });
  }

  serviceNode(domain: string): NodeLink | undefined {
    const node = this.services.get(domain);
    return node === undefined || node === this.node || !this.live.includes(node) ? undefined : this.link(node);
  }

  private link(node: string): NodeLink {
    let link = this.links.get(node);
    if (!link) {
      link = { name: node, route: (stanza) => this.forward(node, this.epochs.get(node) ?? '', ['r', storeXml(stanza)]) };
      this.links.set(node, link);
    }
    return link;
  }

  private registered(session: Session): LocalSession | undefined {
    const local = this.locals.get(session.jid.toString());
    return local === session ? local : undefined;
  }

  private add(session: Session): void {
    const full = session.jid.toString();
    this.byFull.set(full, session);
    const bare = session.jid.bareString();
    const list = this.byBare.get(bare);
    if (list) list.push(session);
    else this.byBare.set(bare, [session]);
  }

  private remove(session: Session): void {
    const full = session.jid.toString();
    if (this.byFull.get(full) === session) this.byFull.delete(full);
    const bare = session.jid.bareString();
    const list = this.byBare.get(bare);
    if (!list) return;
    const i = list.indexOf(session);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byBare.delete(bare);
  }

  retain(session: Session, seq: number, stanza: Element): void {
    // Only what offline storage would take: chat and normal messages (RFC 6121 §8.5.2.2.1).
    const type = stanza.attrs.type;
    if (stanza.name !== 'message' || (type !== undefined && type !== 'chat' && type !== 'normal')) return;
    if (!this.isLocal(session)) return;
    this.pipeline().zadd(this.unackedKey(this.node, session.id), seq, `${seq} ${storeXml(stanza)}`);
  }

  release(session: Session, upTo: number | undefined): void {
    if (!this.cmd) return;
    const key = this.unackedKey(this.node, session.id);
    if (upTo === undefined) this.pipeline().del(key);
    else this.pipeline().zremrangebyscore(key, '-inf', upTo);
  }

  private unackedKey(node: string, sessionId: string): string {
    return this.k('unacked', node, sessionId);
  }

  // --- Publishing ---------------------------------------------------------------------------

  private redis(): ClusterRedis {
    if (!this.cmd) throw new Error('the cluster router has not started');
    return this.cmd;
  }

  /** The pipeline of this event-loop turn's registry writes (sent together at its end). */
  private pipeline(): ChainableCommander {
    if (!this.writes) {
      this.writes = this.redis().pipeline();
      setImmediate(() => void this.flush());
    }
    return this.writes;
  }

  private publishIn(w: ChainableCommander, ev: ClusterEvent): void {
    w.publish(this.k('events'), JSON.stringify(ev));
  }

  private publishSession(session: LocalSession): void {
    const v = (this.versions.get(session) ?? 0) + 1;
    this.versions.set(session, v);
    const r: SessionRecord = {
      id: session.id,
      jid: session.jid.toString(),
      node: this.node,
      e: this.epoch,
      v,
      a: session.available,
      p: session.priority,
      i: session.interested,
    };
    if (session.presence) r.x = storeXml(session.presence);
    if (session.marks.size > 0) r.m = [...session.marks];
    const w = this.pipeline();
    w.hset(this.k('sess', this.node), r.jid, JSON.stringify(r));
    this.publishIn(w, { t: 's', r });
  }

  /** Queues a stanza (or a close) for another node; sent at the end of this turn with the rest for that node. */
  forward(node: string, epoch: string, item: InboxItem): void {
    const key = this.k('inbox', node, epoch);
    let queue = this.outbox.get(key);
    if (!queue) {
      this.outbox.set(key, (queue = []));
      if (this.outbox.size === 1 && this.writes === undefined) setImmediate(() => void this.flush());
    }
    queue.push(item);
  }

  /** Sends this turn's registry writes and stanzas, in the order they were made. */
  private flush(): Promise<void> {
    const w = this.writes;
    const outbox = this.outbox;
    this.writes = undefined;
    if (outbox.size > 0) this.outbox = new Map();
    if (!w && outbox.size === 0) return this.flushing ?? Promise.resolve();
    const p = w ?? this.redis().pipeline();
    for (const [key, items] of outbox) p.xadd(key, '*', 'b', JSON.stringify(items));
    const sent = p.exec().then(
      (results) => {
        for (const [err] of results ?? []) if (err) this.log.error({ err, event: 'cluster-write-failed' }, 'a cluster write failed');
      },
      (err: unknown) => this.log.error({ err, event: 'cluster-write-failed' }, 'cluster writes failed'),
    );
    const previous = this.flushing;
    const done = (previous ? previous.then(() => sent) : sent).finally(() => {
      if (this.flushing === done) this.flushing = undefined;
    });
    this.flushing = done;
    return done;
  }

  // --- Joining, the replica ---------------------------------------------------------------

  async start(hub: RouterHub): Promise<void> {
    this.hub = hub;
    const options = { lazyConnect: true, connectionName: `shoal-${this.node}` };
    this.cmd = new Redis(this.config.redis, options) as ClusterRedis;
    this.cmd.defineCommand('delIfEquals', { numberOfKeys: 1, lua: DEL_IF_EQUALS });
    this.cmd.defineCommand('hdelIfEquals', { numberOfKeys: 1, lua: HDEL_IF_EQUALS });
    this.sub = new Redis(this.config.redis, options);
    this.reader = new Redis(this.config.redis, options);
    for (const r of [this.cmd, this.sub, this.reader]) {
      r.on('error', (err: Error) => this.log.warn({ event: 'cluster-redis-error', err: err.message }, 'Redis connection error; reconnecting'));
    }
    await Promise.all([this.cmd.connect(), this.sub.connect(), this.reader.connect()]);
    this.epoch = newEpoch();
    // The channel first: no change published while the registry loads is missed.
    this.sub.on('message', (_channel: string, message: string) => this.onEvent(message));
    await this.sub.subscribe(this.k('events'));
    // A run of this node that nobody cleaned up after (a restart within dead_after_ms): its
    // clients lost their connections, so its sessions end now, as for a dead node.
    const previous = await this.cmd.hget(this.k('nodes'), this.node);
    if (previous !== null) await this.claim(this.node, (JSON.parse(previous) as { epoch: string }).epoch);
    await this.join();
    await this.loadRegistry();
    this.loaded = true;
    for (const ev of this.early.splice(0)) this.apply(ev);
    hub.caches.onChange((name, key) => {
      if (this.running) this.publishIn(this.pipeline(), { t: 'c', node: this.node, name, key });
    });
    this.running = true;
    await this.checkNodes();
    this.heartbeat = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = undefined));
    }, this.config.heartbeat_ms);
    this.reading = this.readLoop();
    this.log.info({ event: 'cluster-joined', node: this.node, epoch: this.epoch, live: this.live }, 'joined the cluster');
  }

  /** Reads the other nodes' runs, sessions and components into the replica. */
  private async loadRegistry(): Promise<void> {
    const cmd = this.redis();
    const nodes = await cmd.hgetall(this.k('nodes'));
    for (const [n, info] of Object.entries(nodes)) {
      if (n === this.node) continue;
      this.epochs.set(n, (JSON.parse(info) as { epoch: string }).epoch);
      for (const json of Object.values(await cmd.hgetall(this.k('sess', n)))) this.upsert(JSON.parse(json) as SessionRecord);
    }
    for (const [domain, node] of Object.entries(await cmd.hgetall(this.k('svc')))) if (nodes[node] !== undefined) this.services.set(domain, node);
  }

  private async join(): Promise<void> {
    await this.redis()
      .multi()
      .hset(this.k('nodes'), this.node, JSON.stringify({ epoch: this.epoch, since: Date.now() }))
      .set(this.k('hb', this.node), this.epoch, 'PX', this.config.dead_after_ms)
      .publish(this.k('events'), JSON.stringify({ t: 'j', node: this.node } satisfies ClusterEvent))
      .exec();
  }

  private onEvent(message: string): void {
    let ev: ClusterEvent;
    try {
      ev = JSON.parse(message) as ClusterEvent;
    } catch {
      return;
    }
    if (!this.loaded) this.early.push(ev);
    else this.apply(ev);
  }

  private apply(ev: ClusterEvent): void {
    switch (ev.t) {
      case 's':
        if (ev.r.node !== this.node) this.upsert(ev.r);
        return;
      case 'u': {
        if (ev.node === this.node) return;
        const s = this.remoteById.get(ev.id);
        this.gone.set(ev.id, Date.now());
        if (!s) return;
        this.dropRemote(s);
        this.hub!.remoteEnded(s, ev.why, false);
        return;
      }
      case 'c':
        if (ev.node !== this.node) this.hub!.caches.invalidate(ev.name, ev.key);
        return;
      case 'v':
        if (ev.node === this.node) return;
        if (ev.on) this.services.set(ev.domain, ev.node);
        else if (this.services.get(ev.domain) === ev.node) this.services.delete(ev.domain);
        return;
      case 'j':
      case 'l':
        if (ev.node !== this.node && this.running) this.beating ??= this.checkNodes().finally(() => (this.beating = undefined));
        return;
    }
  }

  private upsert(r: SessionRecord): void {
    if (this.gone.has(r.id)) return;
    let s = this.remoteById.get(r.id);
    if (!s) {
      const other = this.byFull.get(r.jid);
      // A record for a resource another session holds here: the older one left without our hearing.
      if (other instanceof RemoteSession) this.dropRemote(other);
      else if (other !== undefined) return;
      s = new RemoteSession(this, r.id, Jid.parse(r.jid), r.node, r.e);
      this.remoteById.set(r.id, s);
      this.add(s);
    }
    if (r.v <= s.version) return;
    try {
      s.apply(r);
    } catch (err) {
      this.log.error({ err, jid: r.jid }, 'a session record from the cluster is unreadable');
    }
  }

  private dropRemote(s: RemoteSession): void {
    this.remoteById.delete(s.id);
    this.gone.set(s.id, Date.now());
    this.remove(s);
  }

  // --- Liveness ---------------------------------------------------------------------------

  private async beat(): Promise<void> {
    if (!this.running) return;
    try {
      const results = await this.redis()
        .multi()
        .exists(this.k('dead', this.node, this.epoch))
        .set(this.k('hb', this.node), this.epoch, 'PX', this.config.dead_after_ms)
        .exec();
      if (results?.[0]?.[1] === 1) await this.fenced();
      await this.checkNodes();
      const old = Date.now() - GONE_MS;
      for (const [id, at] of this.gone) if (at < old) this.gone.delete(id);
    } catch (err) {
      this.log.warn({ event: 'cluster-heartbeat-failed', err: err instanceof Error ? err.message : String(err) }, 'cluster heartbeat failed');
    }
  }

  /** Reads who is alive; claims the clean-up of a member whose heartbeat expired. */
  private async checkNodes(): Promise<void> {
    if (!this.running) return;
    const cmd = this.redis();
    const nodes = await cmd.hgetall(this.k('nodes'));
    if (nodes[this.node] === undefined) await this.join();
    const others = Object.keys(nodes).filter((n) => n !== this.node);
    const beats = others.length > 0 ? await cmd.mget(others.map((n) => this.k('hb', n))) : [];
    const live = [this.node];
    others.forEach((n, i) => {
      const epoch = (JSON.parse(nodes[n]!) as { epoch: string }).epoch;
      if (beats[i] !== null) {
        live.push(n);
        this.epochs.set(n, epoch);
      } else void this.claim(n, epoch);
    });
    live.sort();
    if (live.join(' ') !== this.live.join(' ')) {
      const before = this.live;
      this.live = live;
      if (before.length > 0) this.log.info({ event: 'cluster-changed', live, before }, 'the live nodes changed');
      this.hub!.clusterChanged();
    }
  }

  /** Takes the clean-up after a dead run of a node, unless another node already did (exactly once). */
  private async claim(node: string, epoch: string): Promise<void> {
    const key = `${node} ${epoch}`;
    if (this.cleaning.has(key)) return;
    this.cleaning.add(key);
    try {
      const won = await this.redis().set(this.k('dead', node, epoch), this.node, 'EX', 86_400, 'NX');
      if (won === 'OK') await this.cleanUp(node, epoch);
    } catch (err) {
      this.log.error({ err, node }, 'cleaning up after a dead node failed');
    } finally {
      this.cleaning.delete(key);
    }
  }

  /**
   * The seed's clean-up for every session of a dead node, run here once: each leaves the
   * registry, its end runs here as if it were this node's ('session-ended': unavailable
   * presence to contacts, room leave) and the others hear of it ('remote-session-ended'). Then
   * what was on its way to the node is re-routed.
   */
  private async cleanUp(node: string, epoch: string): Promise<void> {
    const cmd = this.redis();
    this.log.warn({ event: 'cluster-node-dead', node, epoch }, 'a cluster node stopped answering; ending its sessions here');
    const records = await cmd.hgetall(this.k('sess', node));
    let ended = 0;
    let rerouted = 0;
    for (const [full, json] of Object.entries(records)) {
      const r = JSON.parse(json) as SessionRecord;
      if (r.e !== epoch) continue;
      let s = this.remoteById.get(r.id);
      if (!s) {
        s = new RemoteSession(this, r.id, Jid.parse(r.jid), r.node, r.e);
        s.apply(r);
      } else this.dropRemote(s);
      this.gone.set(r.id, Date.now());
      const w = this.pipeline();
      w.hdel(this.k('sess', node), full);
      (w as unknown as ClusterPipeline).delIfEquals(this.k('jid', full), `${node} ${r.id}`);
      this.publishIn(w, { t: 'u', node, id: r.id, jid: full, why: 'node-failure', by: this.node });
      this.hub!.remoteEnded(s, 'node-failure', true);
      ended++;
      // XEP-0198: what its client had not acknowledged goes where a message for a gone resource goes.
      const unacked = this.unackedKey(node, r.id);
      for (const member of await cmd.zrange(unacked, 0, -1)) {
        try {
          this.hub!.undeliverable(s, loadXml(member.slice(member.indexOf(' ') + 1)));
          rerouted++;
        } catch (err) {
          this.log.error({ err }, 'an unacknowledged stanza of a dead node is unreadable');
        }
      }
      await cmd.del(unacked);
    }
    // Its components are gone with it.
    for (const [domain, n] of Object.entries(await cmd.hgetall(this.k('svc')))) {
      if (n !== node) continue;
      if (this.services.get(domain) === node) this.services.delete(domain);
      const w = this.pipeline();
      (w as unknown as ClusterPipeline).hdelIfEquals(this.k('svc'), domain, node);
      this.publishIn(w, { t: 'v', node, domain, on: false });
    }
    await this.flush();
    const drained = await this.drainInbox(node, epoch);
    const current = await cmd.hget(this.k('nodes'), node);
    if (current !== null && (JSON.parse(current) as { epoch: string }).epoch === epoch) await cmd.hdel(this.k('nodes'), node);
    await cmd.publish(this.k('events'), JSON.stringify({ t: 'l', node } satisfies ClusterEvent));
    this.log.warn({ event: 'cluster-node-cleaned', node, epoch, sessions: ended, rerouted: drained, unacked: rerouted }, 'cleaned up after a dead node');
    // Stanzas other nodes sent before they heard: once more after they all must have.
    const later = setTimeout(() => {
      this.timers.delete(later);
      void this.drainInbox(node, epoch).catch((err: unknown) => this.log.error({ err, node }, 'draining a dead node failed'));
    }, this.config.dead_after_ms);
    this.timers.add(later);
  }

  /** Re-routes what waits in a node run's stream (its sessions are gone) and deletes it. Returns how many stanzas. */
  private async drainInbox(node: string, epoch: string): Promise<number> {
    const cmd = this.redis();
    const key = this.k('inbox', node, epoch);
    let n = 0;
    for (;;) {
      const entries = await cmd.xrange(key, '-', '+', 'COUNT', READ_COUNT);
      if (entries.length === 0) break;
      for (const [, fields] of entries) n += this.take(fields, true);
      await cmd.xdel(key, ...entries.map(([id]) => id));
    }
    await cmd.del(key);
    await this.flush();
    return n;
  }

  /**
   * This node was declared dead (it had stopped answering; another node ended its sessions and
   * told everyone). Its sessions must not come back: they are closed without a second
   * unavailable broadcast, what stream management still held goes to offline storage (its
   * 'session-ended'), and the node joins again as a new run.
   */
  private async fenced(): Promise<void> {
    this.log.error({ event: 'cluster-fenced', node: this.node, epoch: this.epoch }, 'this node was declared dead; closing its sessions and joining again');
    for (const s of [...this.locals.values()]) {
      s.applyState({ available: false, presence: undefined });
      s.close(new StreamError('reset', 'this server lost contact with its cluster; please reconnect'));
      s.end('node-failure');
    }
    // The replica is read again from Redis: what this node missed while it was away. Not
    // dropRemote(): that would remember the ids as gone and refuse the live sessions' records.
    for (const s of [...this.remoteById.values()]) {
      this.remoteById.delete(s.id);
      this.remove(s);
    }
    this.epoch = newEpoch();
    await this.flush();
    await this.join();
    await this.loadRegistry();
  }

  // --- Receiving ----------------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    let key = '';
    let last = '0';
    while (this.running) {
      const current = this.k('inbox', this.node, this.epoch);
      if (current !== key) {
        key = current;
        last = '0';
      }
      let result: [string, [string, string[]][]][] | null;
      try {
        result = (await this.reader!.xread('COUNT', READ_COUNT, 'BLOCK', 500, 'STREAMS', key, last)) as typeof result;
      } catch (err) {
        if (!this.running) return;
        this.log.warn({ event: 'cluster-read-failed', err: err instanceof Error ? err.message : String(err) }, 'reading the cluster stream failed');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (!result || key !== this.k('inbox', this.node, this.epoch)) continue;
      const entries = result[0]![1];
      for (const [id, fields] of entries) {
        last = id;
        this.take(fields, false);
      }
      if (entries.length > 0) this.pipeline().xdel(key, ...entries.map(([id]) => id));
    }
  }

  /**
   * Hands one batch from a stream to this node's sessions and entities; `orphaned`: the batch
   * was for a dead node, so each stanza is re-routed as for a session that went. Returns the count.
   */
  private take(fields: string[], orphaned: boolean): number {
    const hub = this.hub!;
    let items: InboxItem[];
    try {
      items = JSON.parse(fields[1] ?? '[]') as InboxItem[];
    } catch {
      return 0;
    }
    for (const item of items) {
      try {
        if (item[0] === 's') {
          const [, sid, full, xml] = item;
          const stanza = loadXml(xml);
          const local = orphaned ? undefined : this.locals.get(full);
          if (local && local.id === sid) local.send(stanza);
          // RFC 6121 §8.5.3.2.1: as for a resource that is no longer there.
          else hub.undeliverable(new RemoteSession(this, sid, Jid.parse(full), '', ''), stanza);
        } else if (item[0] === 'r') {
          const stanza = loadXml(item[1]);
          void (orphaned ? hub.route(stanza) : hub.deliverHere(stanza)).catch((err: unknown) => this.log.error({ err }, 'a forwarded stanza failed'));
        } else if (!orphaned) {
          const [, sid, full, condition] = item;
          const local = this.locals.get(full);
          if (local && local.id === sid) local.close(condition === '' ? undefined : new StreamError(condition as StreamErrorCondition));
        }
      } catch (err) {
        this.log.error({ err }, 'a stanza from the cluster could not be handled');
      }
    }
    return items.length;
  }

  // --- Leaving ------------------------------------------------------------------------------

  /**
   * A graceful stop, after the listeners closed: the sessions still here (hibernated by
   * stream management) end, the node leaves, and what was still on its way to it is re-routed.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    for (const s of [...this.locals.values()]) s.end('shutdown');
    this.running = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const t of this.timers) clearTimeout(t);
    await this.beating;
    await this.flush();
    const cmd = this.redis();
    try {
      await cmd.del(this.k('hb', this.node));
      if ((await cmd.set(this.k('dead', this.node, this.epoch), this.node, 'EX', 86_400, 'NX')) === 'OK') {
        await cmd.hdel(this.k('nodes'), this.node);
        await cmd.publish(this.k('events'), JSON.stringify({ t: 'l', node: this.node } satisfies ClusterEvent));
        // The others stop sending here once they heard; what came before is re-routed.
        await new Promise((r) => setTimeout(r, 100));
        await this.drainInbox(this.node, this.epoch);
        await cmd.del(this.k('sess', this.node));
      }
    } catch (err) {
      this.log.error({ err }, 'leaving the cluster failed; the others clean up after this node');
    }
    this.reader?.disconnect();
    await this.reading;
    await this.flush();
    this.sub?.disconnect();
    await cmd.quit().catch(() => undefined);
    this.log.info({ event: 'cluster-left', node: this.node }, 'left the cluster');
  }
}

/** One member of the cluster, as `shoal cluster status` shows it. */
export interface NodeStatus {
  node: string;
  /** The node's current run, and when it joined. */
  epoch: string;
  since: Date;
  /** Whether its heartbeat is current, and how long ago it last beat (ms), when known. */
  alive: boolean;
  lastBeatMs: number | undefined;
  /** Sessions it holds in the registry. */
  sessions: number;
}

/** Reads the members of the cluster from Redis (no need to be a node). */
export async function clusterStatus(config: ClusterConfig): Promise<NodeStatus[]> {
  const redis = new Redis(config.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const ns = config.namespace;
    const nodes = await redis.hgetall(`${ns}:nodes`);
    const out: NodeStatus[] = [];
    for (const [node, info] of Object.entries(nodes).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const { epoch, since } = JSON.parse(info) as { epoch: string; since: number };
      const [ttl, sessions] = await Promise.all([redis.pttl(`${ns}:hb:${node}`), redis.hlen(`${ns}:sess:${node}`)]);
      out.push({ node, epoch, since: new Date(since), alive: ttl > 0, lastBeatMs: ttl > 0 ? Math.max(0, config.dead_after_ms - ttl) : undefined, sessions });
    }
    return out;
  } finally {
    redis.disconnect();
  }
}
