// XEP-0163 §4.2 filtered notifications: what each resource wants to be notified
// of, from the XEP-0115 caps in its last available presence. A 'ver' not yet known
// is resolved with one disco#info query to the resource that announced it, checked
// (XEP-0115 §5.4) and cached by hash for every other resource announcing it. The
// interest belongs to the resource: it is dropped when it goes unavailable or ends.
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import { CapsCache, capsHash, capsOf, verifies, type CapsAnnouncement } from './caps.js';

const NOTIFY = '+notify';
const NONE: ReadonlySet<string> = new Set();
/** Nodes one resource may ask for; more +notify features than this are ignored (the work per presence stays bounded). */
export const MAX_NOTIFY_NODES = 256;

/** The nodes a feature list asks notifications for (XEP-0060 §9.2: 'NODE+notify'). */
export function notifyNodes(features: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const f of features) {
    if (out.size >= MAX_NOTIFY_NODES) break;
    if (f.endsWith(NOTIFY) && f.length > NOTIFY.length) out.add(f.slice(0, -NOTIFY.length));
  }
  return out;
}

interface Known {
  /** 'hash ver' of the caps the nodes were read from. */
  key: string;
  nodes: ReadonlySet<string>;
}

export class Interest {
  private readonly cache: CapsCache;
  /** Per available resource: the nodes its current caps ask for. */
  private readonly bySession = new WeakMap<Session, Known>();
  /** Per resource: the caps of its latest available presence ('hash ver', '' for none), set as it arrives. */
  private readonly latest = new WeakMap<Session, string>();
  /** Queries on their way, by 'hash ver', so many resources announcing one ver cost one query. */
  private readonly resolving = new Map<string, Promise<ReadonlySet<string> | undefined>>();
  /** Resources with a query of their own on its way: at most one each (a flood of new vers costs one query at a time). */
  private readonly asking = new WeakSet<Session>();

  constructor(
    private readonly server: ServerApi,
    cacheSize: number,
    private readonly timeoutMs: number,
  ) {
    this.cache = new CapsCache(cacheSize);
  }

  /** Whether the resource's current caps announce NODE+notify. */
  wants(session: Session, node: string): boolean {
    return this.nodes(session).has(node);
  }

  /** The nodes the resource's current caps ask for (none while they are not known). */
  nodes(session: Session): ReadonlySet<string> {
    const caps = capsOf(session.presence);
    if (caps === undefined) return NONE;
    const known = this.bySession.get(session);
    if (known !== undefined && known.key === keyOf(caps)) return known.nodes;
    const features = this.cache.get(caps);
    return features === undefined ? NONE : notifyNodes(features);
  }

  /** The resource went unavailable: its next available presence is an initial one again (XEP-0163 §4.3.3). */
  forget(session: Session): void {
    this.bySession.delete(session);
    this.latest.delete(session);
  }

  /**
   * An available presence from a resource: resolves its caps (when it has any) and returns the
   * nodes it newly asks for (all of them on its first presence, the ones its new caps add
   * after a change; none when the caps are unchanged or cannot be resolved).
   */
  async presence(session: Session, presence: Element): Promise<Set<string>> {
    const caps = capsOf(presence);
    const before = this.bySession.get(session);
    this.latest.set(session, caps === undefined ? '' : keyOf(caps));
    if (caps === undefined) {
      this.bySession.set(session, { key: '', nodes: new Set() });
      return new Set();
    }
    const key = keyOf(caps);
    if (before?.key === key) return new Set();
    const features = await this.resolve(session, caps);
    // A later presence may have replaced these caps meanwhile: it answers for itself.
    if (this.latest.get(session) !== key) return new Set();
    const current = this.bySession.get(session);
    if (features === undefined) {
      // Not learnt (no answer, a false hash): nothing new; the next presence with these caps asks again.
      if (current === undefined) this.bySession.set(session, { key: '', nodes: new Set() });
      return new Set();
    }
    const nodes = notifyNodes(features);
    this.bySession.set(session, { key, nodes });
    const added = new Set<string>();
    for (const n of nodes) if (!current?.nodes.has(n)) added.add(n);
    return added;
  }

  /** The features of these caps: cached, or asked of the resource (undefined when they cannot be learnt). */
  private async resolve(session: Session, caps: CapsAnnouncement): Promise<ReadonlySet<string> | undefined> {
    const cached = this.cache.get(caps);
    if (cached !== undefined) return cached;
    // XEP-0115 §5.4 step 2: a hash function we do not know: asked, kept for this resource only.
    const supported = capsHash(caps.hash, '') !== undefined;
    const key = keyOf(caps);
    let pending = supported ? this.resolving.get(key) : undefined;
    if (pending === undefined) {
      // Still waiting for this resource's answer about other caps: these are asked at its next presence.
      if (this.asking.has(session)) return undefined;
      this.asking.add(session);
      pending = this.query(session, caps, supported).finally(() => this.asking.delete(session));
      if (supported) {
        this.resolving.set(key, pending);
        void pending.finally(() => this.resolving.delete(key));
      }
    }
    return pending;
  }

  /** XEP-0115 §6.2: disco#info to the resource for 'node#ver', then §5.4 checks. */
  private async query(session: Session, caps: CapsAnnouncement, supported: boolean): Promise<ReadonlySet<string> | undefined> {
    const iq = x(
      'iq',
      NS.CLIENT,
      { type: 'get', from: session.jid.domain, to: session.jid.toString() },
      x('query', NS.DISCO_INFO, { node: `${caps.node}#${caps.ver}` }),
    );
    let reply: Element;
    try {
      reply = await this.server.sendIq(session, iq, this.timeoutMs);
    } catch {
      return undefined;
    }
    const query = reply.attrs.type === 'result' ? reply.getChild('query', NS.DISCO_INFO) : undefined;
    if (query === undefined) return undefined;
    const features = new Set(query.getChildren('feature', NS.DISCO_INFO).map((f) => f.attrs.var ?? ''));
    if (!supported) return features;
    // §5.4 3.8 / 3.9: only a verified answer is cached for everyone; a false one is not used at all.
    if (!verifies(caps, query)) {
      this.server.log.debug({ event: 'caps-mismatch', jid: session.jid.toString(), ver: caps.ver }, 'a disco#info answer does not match its caps hash');
      return undefined;
    }
    this.cache.set(caps, features);
    return features;
  }
}

const keyOf = (caps: Pick<CapsAnnouncement, 'hash' | 'ver'>): string => `${caps.hash} ${caps.ver}`;
