// XEP-0313 Message Archive Management for every account: each chat message a
// user sends or receives is archived once in their archive (their bare JID),
// before it is delivered, so what goes to offline storage or waits unacknowledged
// in a stream management queue is in the archive too. The live message carries
// its archive id as a XEP-0359 <stanza-id/>. Queries, paging and the form are
// query.ts's; preferences (XEP-0441) are honoured when archiving; retention runs
// in the background (retention.ts).
import { Element } from '../../xml/element.js';
import { storeXml } from '../../xml/stored.js';
import { Jid, JidError } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { Priority } from '../../core/hooks.js';
import type { AddressedStanza, IqRequest, RoutedStanza, ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import type { KeyedCache } from '../../core/cache.js';
import type { Storage } from '../../storage/types.js';
import type { Module } from '../api.js';
import { NS_MAM, NS_MAM_EXTENDED, finElement, metadata, parseQuery, queryForm, resultMessage, runQuery, sendOrder, type PageLimits } from './query.js';
import { NS_SID, allowedByPrefs, archivable, foreignStanzaIds, parsePrefs, prefsElement, stanzaId, stripOwnStanzaIds } from './policy.js';
import { SqlMamStore, type Prefs } from './store.js';
import { enforceRetention } from './retention.js';
import type { MamApi } from './api.js';

/** The page size when a query asks for none (XEP-0313 §4.3.1 lets the server choose). */
export const DEFAULT_PAGE = 50;
/** Preferences kept in memory (accounts); the oldest is dropped beyond. */
const PREFS_CACHED = 10_000;
/** The first retention pass runs this long after start (ms). */
const FIRST_RETENTION_DELAY = 60_000;

export class MamModule {
  /**
   * Preferences by account, a server cache: in a cluster, the node that routes a message to an
   * account archives it there (the recipient side) by these, so a change on another node must
   * reach it (XEP-0441 §2.1: the new preferences apply from then on).
   */
  private readonly prefsCache: KeyedCache<Prefs>;
  /** The cached accounts, oldest first, to keep at most PREFS_CACHED. */
  private readonly prefsKeys = new Set<string>();
  /** Sender side: the stanza-id added for the sent carbons, removed before the message leaves. */
  private readonly forCarbons = new WeakMap<Element, Element>();
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRunning: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    readonly store: SqlMamStore,
  ) {
    this.prefsCache = server.caches.define<Prefs>('mam-prefs');
  }

  private get cfg() {
    return this.server.config.mam;
  }

  start(): void {
    const server = this.server;
    // XEP-0313 §7: on the archive's JID, the account's bare JID; XEP-0359 §6 for the ids.
    server.addFeature('account', NS_MAM);
    server.addFeature('account', NS_MAM_EXTENDED);
    server.addFeature('account', NS_SID);
    server.handleIq('account', NS_MAM, 'get', (req) => this.get(req));
    server.handleIq('account', NS_MAM, 'set', (req) => this.set(req));
    // Sender side: below blocking (POLICY: a refused message is not archived), above carbons
    // (DEFAULT), whose <sent/> copies then carry the sender's stanza-id (XEP-0313 §3.5)...
    server.hookOutbound('message', (ev) => this.outgoing(ev), Priority.DEFAULT + 10);
    // ...which the message itself must not carry to its recipient (§3.5 again).
    server.hookOutbound('message', (ev) => this.unstampOutgoing(ev), Priority.DEFAULT - 10);
    // Recipient side: after blocking (a message the user blocks is not in their archive,
    // XEP-0313 §7.1), before anything delivers or stores it.
    server.hookInbound('message', (ev) => this.incoming(ev), Priority.STAMP);
    // A bounce of a message its recipient's archive kept (offline storage refused it, say) must
    // not show the sender that archive's id (§3.5), and the refused message leaves it (§7.1).
    server.addOutgoingFilter((session, stanza) => this.outgoingBounce(session, stanza), Priority.STAMP);
    this.scheduleRetention(FIRST_RETENTION_DELAY);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retentionTimer);
    await this.retentionRunning;
  }

  // --- Archiving ---------------------------------------------------------------------------

  private async outgoing(ev: RoutedStanza): Promise<false> {
    const { stanza, to, from } = ev;
    const owner = from.bare;
    stripOwnStanzaIds(stanza, owner);
    // A message to the user's own account is archived once, on the recipient side.
    if (!ev.session || !to || to.bare.equals(owner) || !archivable(stanza)) return false;
    const id = await this.archive(owner, to, stanza);
    if (id !== undefined) {
      const sid = stanzaId(owner, id);
      stanza.append(sid);
      this.forCarbons.set(stanza, sid);
    }
    return false;
  }

  private unstampOutgoing(ev: RoutedStanza): false {
    const sid = this.forCarbons.get(ev.stanza);
    if (sid) {
      this.forCarbons.delete(ev.stanza);
      const i = ev.stanza.children.indexOf(sid);
      if (i >= 0) ev.stanza.children.splice(i, 1);
    }
    return false;
  }

  private async incoming(ev: AddressedStanza): Promise<false> {
    const { stanza } = ev;
    const owner = ev.to.bare;
    // XEP-0359 §4: an id claiming to be from this archive cannot be; only we assign them.
    stripOwnStanzaIds(stanza, owner);
    if (stanza.attrs.type === 'error') this.refused(stanza, owner, ev.from);
    if (!archivable(stanza)) return false;
    const id = await this.archive(owner, ev.from, stanza);
    if (id !== undefined) stanza.append(stanzaId(owner, id));
    return false;
  }

  /**
   * An error message carrying ids of other accounts' archives: they are removed (`reader` may
   * not see them). One naming the archive of the error's sender is a bounce from this server
   * (only it can put that id there: the account's own clients' are stripped on the way out):
   * the message it answers was archived and then refused, so it leaves that archive.
   * Returns whether any was found.
   */
  private refused(stanza: Element, reader: Jid, from: Jid | undefined): boolean {
    const foreign = foreignStanzaIds(stanza, reader, (d) => this.server.isLocalDomain(d));
    for (const f of foreign) {
      const i = stanza.children.indexOf(f.el);
      if (i >= 0) stanza.children.splice(i, 1);
      if (from !== undefined && f.archive.equals(from.bare)) {
        this.server.track(this.store.remove(f.archive.domain, f.archive.local, f.id), 'removing a refused message from the archive');
      }
    }
    return foreign.length > 0;
  }

  /** The outgoing filter: a bounce to a client (straight from the hub, past the inbound hooks). */
  private outgoingBounce(session: Session, stanza: Element): Element {
    if (stanza.name !== 'message' || stanza.attrs.type !== 'error' || !stanza.getChild('stanza-id', NS_SID)) return stanza;
    // A bounce's payload elements are the original's: work on a copy of the list.
    const copy = new Element(stanza.name, stanza.xmlns, { ...stanza.attrs }, [...stanza.children]);
    return this.refused(copy, session.jid.bare, senderOf(stanza)) ? copy : stanza;
  }

  /** Archives the message in `owner`'s archive unless their preferences say no; returns its id. */
  private async archive(owner: Jid, peer: Jid, stanza: Element): Promise<string | undefined> {
    const xml = storeXml(stanza);
    try {
      const prefs = await this.prefs(owner);
      const keep = await allowedByPrefs(prefs, this.cfg.default, peer, async () => {
        if (peer.bare.equals(owner)) return true;
        return (await this.storage.roster.getItem(owner.domain, owner.local, peer.bareString())) !== undefined;
      });
      if (!keep) return undefined;
      const [id] = await this.store.append(owner.domain, owner.local, [{ withBare: peer.bareString(), withResource: peer.resource, stanza: xml }]);
      return id;
    } catch (err) {
      // No such account (the message will bounce), or a store that failed: the message still
      // goes on, without an archive id; losing it for want of a copy would be worse.
      if (!/FOREIGN KEY/i.test(String((err as Error).message))) {
        this.server.log.error({ err, event: 'mam-archive-failed', owner: owner.toString() }, 'archiving a message failed');
      }
      return undefined;
    }
  }

  private prefs(owner: Jid): Promise<Prefs> {
    const key = owner.toString();
    this.keepPrefs(key);
    return this.prefsCache.get(key, () => this.store.getPrefs(owner.domain, owner.local));
  }

  private keepPrefs(key: string): void {
    if (this.prefsKeys.has(key)) return;
    this.prefsKeys.add(key);
    if (this.prefsKeys.size <= PREFS_CACHED) return;
    const oldest = this.prefsKeys.values().next().value as string;
    this.prefsKeys.delete(oldest);
    this.prefsCache.forget(oldest);
  }

  // --- Queries and preferences ---------------------------------------------------------------

  /** Only the account itself reads its archive and preferences (XEP-0313 §9.1). */
  private own(req: IqRequest): Jid {
    if (!req.from.bare.equals(req.to)) throw new StanzaError('forbidden', 'only the account itself may use its archive');
    return req.to;
  }

  private async get(req: IqRequest): Promise<Element> {
    const owner = this.own(req);
    switch (req.payload.name) {
      case 'query':
        // XEP-0313 §4.1.5
        return queryForm();
      case 'prefs':
        return prefsElement(await this.prefs(owner), this.cfg.default);
      case 'metadata':
        // XEP-0313 §6
        return metadata(await this.store.reader(owner.domain, owner.local));
      default:
        throw new StanzaError('bad-request', 'expected query, prefs or metadata');
    }
  }

  private async set(req: IqRequest): Promise<Element | void> {
    const owner = this.own(req);
    if (req.payload.name === 'prefs') {
      const prefs = parsePrefs(req.payload);
      await this.store.setPrefs(owner.domain, owner.local, prefs);
      // Replaced here, invalidated on the other nodes of a cluster.
      this.keepPrefs(owner.toString());
      this.prefsCache.set(owner.toString(), prefs);
      // XEP-0441 §2.1: the result holds the preferences now in force.
      return prefsElement(prefs, this.cfg.default);
    }
    if (req.payload.name !== 'query') throw new StanzaError('bad-request', 'expected query or prefs');
    const limits: PageLimits = { defaultPage: Math.min(DEFAULT_PAGE, this.cfg.max_page), maxPage: this.cfg.max_page };
    const q = parseQuery(req.payload, limits);
    const page = await runQuery(await this.store.reader(owner.domain, owner.local), q);
    // XEP-0313 §4.2: the results go to the querying resource, then the IQ result ends them.
    const to = req.from.toString();
    for (const m of sendOrder(page, q.flip)) {
      const result = resultMessage(m, q.queryId, owner.toString(), to);
      if (req.session) req.session.send(result);
      else await this.server.route(result);
    }
    return finElement(page);
  }

  // --- Retention -----------------------------------------------------------------------------

  private scheduleRetention(delay: number): void {
    if (this.stopped) return;
    this.retentionTimer = setTimeout(() => {
      this.retentionRunning = this.runRetention().finally(() => {
        this.retentionRunning = undefined;
        this.scheduleRetention(this.cfg.retention_interval * 1000);
      });
    }, delay);
    this.retentionTimer.unref();
  }

  /** One retention pass with the configured limits; returns how many messages were deleted. */
  async runRetention(): Promise<number> {
    try {
      const deleted = await enforceRetention(this.store, { maxAgeDays: this.cfg.max_age_days, maxPerUser: this.cfg.max_per_user }, () => this.stopped);
      if (deleted > 0) this.server.log.info({ event: 'mam-retention', deleted }, 'old archived messages deleted');
      return deleted;
    } catch (err) {
      this.server.log.error({ err, event: 'mam-retention-failed' }, 'archive retention failed');
      return 0;
    }
  }
}

/** The 'from' of a stanza the hub wrote (always valid there), parsed. */
function senderOf(stanza: Element): Jid | undefined {
  try {
    return stanza.attrs.from === undefined ? undefined : Jid.parse(stanza.attrs.from);
  } catch (err) {
    if (err instanceof JidError) return undefined;
    throw err;
  }
}

export const mamModule: Module = {
  name: 'mam',
  async start({ server, storage }) {
    if (!server.config.mam.enabled) return;
    const store = await SqlMamStore.open(storage.sql);
    const mam = new MamModule(server, storage, store);
    mam.start();
    const api: MamApi = {
      retention: () => mam.runRetention(),
      queryForm,
      metadata,
      async query(archive, query, archiveJid, to, send) {
        const limits: PageLimits = { defaultPage: Math.min(DEFAULT_PAGE, server.config.mam.max_page), maxPage: server.config.mam.max_page };
        const q = parseQuery(query, limits);
        const page = await runQuery(archive, q);
        for (const m of sendOrder(page, q.flip)) await send(resultMessage(m, q.queryId, archiveJid, to));
        return finElement(page);
      },
    };
    return { api, stop: () => mam.stop() };
  },
};

