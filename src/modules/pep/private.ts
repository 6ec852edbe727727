// XEP-0049 Private XML Storage, and XEP-0048 bookmarks kept in step with the
// XEP-0402 node (XEP-0402 §5.3 compatibility, the '#compat' feature): the node is
// the one copy; a jabber:iq:private get of storage:bookmarks is made from its items,
// and a set of storage:bookmarks publishes what changed and retracts what is gone.
import { x, type Element } from '../../xml/element.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import { tryParseJid, type Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import type { IqRequest, ServerApi } from '../../core/api.js';
import { NS_BOOKMARKS, NS_BOOKMARKS_LEGACY, NS_PRIVATE } from './ns.js';
import type { PepService } from './pubsub.js';
import type { PepStore, StoredItem } from './store.js';

/** XEP-0049 §2.3: namespaces reserved by the protocol itself; refused with not-acceptable. */
function reserved(ns: string): boolean {
  return ns === '' || ns.startsWith('jabber:') || ns.startsWith('http://jabber.org/') || ns === 'vcard-temp';
}

const keyOf = (el: Element): string => `{${el.xmlns}}${el.name}`;

/** XEP-0402 §2 (conference element) -> XEP-0048 §2.1 (conference with jid). */
export function toLegacyConference(item: StoredItem): Element | undefined {
  let conf: Element;
  try {
    conf = loadXml(item.payload);
  } catch {
    return undefined;
  }
  if (conf.name !== 'conference' || conf.xmlns !== NS_BOOKMARKS) return undefined;
  const out = x('conference', NS_BOOKMARKS_LEGACY, { jid: item.id, name: conf.attrs.name, autojoin: isTrue(conf.attrs.autojoin) ? 'true' : undefined });
  const nick = conf.getChildText('nick', NS_BOOKMARKS);
  if (nick !== undefined) out.append(x('nick', NS_BOOKMARKS_LEGACY, {}, nick));
  const password = conf.getChildText('password', NS_BOOKMARKS);
  if (password !== undefined) out.append(x('password', NS_BOOKMARKS_LEGACY, {}, password));
  return out;
}

/**
 * XEP-0048 conference -> XEP-0402 conference (the room JID becomes the item id), keeping the
 * <extensions/> of the item it replaces (XEP-0402 §2: they MUST be preserved).
 */
export function fromLegacyConference(conf: Element, previous: Element | undefined): { id: string; payload: Element } | undefined {
  const jid = tryParseJid(conf.attrs.jid ?? '');
  if (jid === undefined || jid.local === '' || !jid.isBare()) return undefined;
  const payload = x('conference', NS_BOOKMARKS, { name: conf.attrs.name, autojoin: isTrue(conf.attrs.autojoin) ? 'true' : undefined });
  const nick = conf.getChildText('nick', NS_BOOKMARKS_LEGACY);
  if (nick !== undefined) payload.append(x('nick', NS_BOOKMARKS, {}, nick));
  const password = conf.getChildText('password', NS_BOOKMARKS_LEGACY);
  if (password !== undefined) payload.append(x('password', NS_BOOKMARKS, {}, password));
  const ext = previous?.getChild('extensions', NS_BOOKMARKS);
  if (ext) payload.append(ext);
  return { id: jid.toString(), payload };
}

const isTrue = (v: string | undefined): boolean => v === 'true' || v === '1';

export class PrivateStorage {
  constructor(
    private readonly server: ServerApi,
    private readonly store: PepStore,
    private readonly pep: PepService,
  ) {}

  /** XEP-0049 §2.3: get: one child, named and namespaced, answered with what is stored (or itself, empty). */
  async get(req: IqRequest): Promise<Element> {
    const child = this.check(req);
    if (req.payload.getChildren().length > 1) throw new StanzaError('bad-request', 'ask for one element at a time');
    const owner = req.to;
    if (keyOf(child) === `{${NS_BOOKMARKS_LEGACY}}storage`) return x('query', NS_PRIVATE, {}, await this.legacyBookmarks(owner));
    const stored = await this.store.getPrivate(owner.domain, owner.local, keyOf(child));
    return x('query', NS_PRIVATE, {}, stored === undefined ? x(child.name, child.xmlns) : loadXml(stored));
  }

  /** XEP-0049 §2.3: set: each child replaces what was stored under its name and namespace. */
  async set(req: IqRequest): Promise<void> {
    this.check(req);
    const max = this.server.config.pep.private_max_bytes;
    const children = req.payload.getChildren();
    const texts = children.map((c) => {
      if (reserved(c.xmlns)) throw new StanzaError('not-acceptable', `the namespace ${c.xmlns} is reserved`);
      const xml = storeXml(c);
      // XEP-0049 names no error for this; not-acceptable, as for a vCard or an item too big.
      if (Buffer.byteLength(xml, 'utf8') > max) throw new StanzaError('not-acceptable', `private XML elements are limited to ${max} bytes`);
      return xml;
    });
    const owner = req.to;
    for (const [i, child] of children.entries()) {
      if (keyOf(child) === `{${NS_BOOKMARKS_LEGACY}}storage`) {
        await this.setLegacyBookmarks(owner, req.from, child);
        continue;
      }
      const r = await this.store.setPrivate(owner.domain, owner.local, keyOf(child), texts[i]!, this.server.config.pep.private_max_entries);
      if (r === 'limit') throw new StanzaError('policy-violation', `an account may store ${this.server.config.pep.private_max_entries} private XML elements`);
    }
  }

  /** The one child of a request for one's own storage (XEP-0049 §2.3: forbidden for another user's). */
  private check(req: IqRequest): Element {
    if (!req.from.bare.equals(req.to)) throw new StanzaError('forbidden');
    if (req.payload.name !== 'query') throw new StanzaError('bad-request', 'expected <query xmlns="jabber:iq:private"/>');
    const child = req.payload.firstElement();
    // XEP-0049 §2.3: at least one child with a namespace of its own, else not-acceptable.
    if (!child || child.xmlns === NS_PRIVATE) throw new StanzaError('not-acceptable', 'a child element in a namespace of its own is required');
    if (reserved(child.xmlns)) throw new StanzaError('not-acceptable', `the namespace ${child.xmlns} is reserved`);
    return child;
  }

  /** XEP-0402 §5.3.1: the node's items collated into one XEP-0048 storage element. */
  private async legacyBookmarks(owner: Jid): Promise<Element> {
    const storage = x('storage', NS_BOOKMARKS_LEGACY);
    for (const item of await this.pep.ownItems(owner, NS_BOOKMARKS)) storage.append(toLegacyConference(item));
    return storage;
  }

  /** XEP-0402 §5.3.2: a whole new list: changed bookmarks published, removed ones retracted (notified), the rest untouched. */
  private async setLegacyBookmarks(owner: Jid, publisher: Jid, storage: Element): Promise<void> {
    const current = new Map<string, StoredItem>();
    for (const item of await this.pep.ownItems(owner, NS_BOOKMARKS)) current.set(item.id, item);
    const wanted = new Map<string, Element>();
    for (const conf of storage.getChildren('conference', NS_BOOKMARKS_LEGACY)) {
      const prev = current.get(conf.attrs.jid ?? '');
      let prevEl: Element | undefined;
      try {
        prevEl = prev ? loadXml(prev.payload) : undefined;
      } catch {
        prevEl = undefined;
      }
      const converted = fromLegacyConference(conf, prevEl);
      if (converted) wanted.set(converted.id, converted.payload);
    }
    const max = this.server.config.pep.max_items;
    if (wanted.size > max) throw new StanzaError('policy-violation', `at most ${max} bookmarks`);
    for (const [id, payload] of wanted) {
      if (current.get(id)?.payload === storeXml(payload)) continue;
      await this.pep.publish(owner, publisher, NS_BOOKMARKS, id, payload, undefined);
    }
    for (const id of current.keys()) if (!wanted.has(id)) await this.pep.retract(owner, NS_BOOKMARKS, id, true);
  }
}
