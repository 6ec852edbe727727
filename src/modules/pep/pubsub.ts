// XEP-0163 Personal Eventing: each account's bare JID is a pubsub service
// (XEP-0060, the parts clients use) with one publisher, the account. Nodes are
// created on first publish (auto-create), configured per node (access model,
// items kept, last item on presence), read under the node's access model on every
// request, and every change is notified to the owner's resources and to contacts
// with a presence subscription whose caps ask for the node (XEP-0163 §4).
import { randomUUID } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import { Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import type { IqRequest, ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import type { Storage } from '../../storage/types.js';
import { accessError, seesPresence, type Relation } from './access.js';
import { PubsubError } from './errors.js';
import type { Interest } from './interest.js';
import {
  applyConfigForm,
  applyPublishOptions,
  configForm,
  defaultConfig,
  itemsKept,
  type ConfigLimits,
  type NodeConfig,
} from './node-config.js';
import { NS_ADDRESS, NS_BOOKMARKS, NS_BOOKMARKS_LEGACY, NS_DELAY, NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER } from './ns.js';
import type { PepStore, StoredItem, StoredNode } from './store.js';

/** A change of a node, for the conversions built on PEP (bookmarks, avatars). */
export type NodeListener = (owner: Jid, change: { kind: 'publish'; id: string; payload: Element | undefined } | { kind: 'retract'; id: string } | { kind: 'purge' | 'delete' }) => Promise<void> | void;

/** XEP-0223 / XEP-0402: nodes that hold private data are whitelist (owner only) unless configured otherwise. */
const PRIVATE_BY_DEFAULT = new Set([NS_BOOKMARKS, NS_BOOKMARKS_LEGACY]);

const isTrue = (v: string | undefined): boolean => v === 'true' || v === '1';

export class PepService {
  private readonly listeners = new Map<string, NodeListener[]>();

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    private readonly store: PepStore,
    private readonly interest: Interest,
  ) {}

  private get cfg() {
    return this.server.config.pep;
  }

  get limits(): ConfigLimits {
    return { maxItems: this.cfg.max_items };
  }

  /** The configuration a new node gets (XEP-0163 §5), before publish-options or a configure form. */
  defaultsFor(node: string): NodeConfig {
    const c = defaultConfig();
    if (PRIVATE_BY_DEFAULT.has(node)) {
      // XEP-0402 §3.3 / XEP-0223 §2: private, persistent, every item, not pushed on presence.
      c.accessModel = 'whitelist';
      c.maxItems = this.cfg.max_items;
      c.sendLast = 'never';
    }
    return c;
  }

  /** Runs `listener` after every change of `node` on any account. */
  onNode(node: string, listener: NodeListener): void {
    let l = this.listeners.get(node);
    if (!l) this.listeners.set(node, (l = []));
    l.push(listener);
  }

  private async changed(owner: Jid, node: string, change: Parameters<NodeListener>[1]): Promise<void> {
    for (const l of this.listeners.get(node) ?? []) {
      try {
        await l(owner, change);
      } catch (err) {
        this.server.log.error({ err, user: owner.toString(), node }, 'a PEP node listener failed');
      }
    }
  }

  // --- Access ------------------------------------------------------------------------------

  /** How `requester` stands to `owner`'s nodes. */
  async relation(owner: Jid, requester: Jid): Promise<Relation> {
    if (requester.bare.equals(owner)) return { owner: true };
    return { owner: false, item: await this.storage.roster.getItem(owner.domain, owner.local, requester.bareString()) };
  }

  /** The nodes of `owner` that `requester` may read (XEP-0163 §6.2: what disco#items lists). */
  async visibleNodes(requester: Jid, owner: Jid): Promise<string[]> {
    const rel = await this.relation(owner, requester);
    return (await this.store.listNodes(owner.domain, owner.local)).filter((n) => accessError(n.config, rel) === undefined).map((n) => n.node);
  }

  // --- IQ handlers (XEP-0060 §6, §7, §8) --------------------------------------------------------

  async pubsubGet(req: IqRequest): Promise<Element> {
    const action = onlyAction(req.payload, NS_PUBSUB);
    if (action.name === 'items') return this.itemsRequest(req, action);
    throw unsupported(action.name);
  }

  async pubsubSet(req: IqRequest): Promise<Element | void> {
    const action = onlyAction(req.payload, NS_PUBSUB);
    if (action.name === 'subscribe' || action.name === 'unsubscribe') {
      // XEP-0163 §4.1: subscriptions follow presence subscriptions (auto-subscribe).
      throw unsupported('subscribe');
    }
    ownerOnly(req);
    switch (action.name) {
      case 'publish':
        return this.publishRequest(req, action);
      case 'retract':
        return this.retractRequest(req, action);
      case 'create':
        return this.createRequest(req, action);
      default:
        throw unsupported(action.name);
    }
  }

  async ownerGet(req: IqRequest): Promise<Element> {
    ownerOnly(req);
    const action = onlyAction(req.payload, NS_PUBSUB_OWNER);
    if (action.name === 'default') {
      // XEP-0060 §8.3: the default configuration.
      return x('pubsub', NS_PUBSUB_OWNER, {}, x('default', NS_PUBSUB_OWNER, {}, configForm(defaultConfig(), this.limits)));
    }
    if (action.name !== 'configure') throw unsupported(action.name);
    const node = nodeAttr(action);
    const config = await this.existing(req.to, node);
    // XEP-0060 §8.2.1
    return x('pubsub', NS_PUBSUB_OWNER, {}, x('configure', NS_PUBSUB_OWNER, { node }, configForm(config, this.limits)));
  }

  async ownerSet(req: IqRequest): Promise<void> {
    ownerOnly(req);
    const action = onlyAction(req.payload, NS_PUBSUB_OWNER);
    const node = nodeAttr(action);
    const owner = req.to;
    const config = await this.existing(owner, node);
    switch (action.name) {
      case 'configure': {
        // XEP-0060 §8.2.4
        const form = action.getChild('x', 'jabber:x:data');
        if (!form) throw new StanzaError('bad-request', 'configure needs a data form');
        const next = applyConfigForm(config, form, this.limits);
        await this.store.setConfig(owner.domain, owner.local, node, next, itemsKept(next));
        return;
      }
      case 'delete': {
        // XEP-0060 §8.4: subscribers hear of it (worked out before it is gone).
        const recipients = config.notifyDelete ? await this.recipients(owner, node, config) : [];
        await this.store.deleteNode(owner.domain, owner.local, node);
        req.afterReply(async () => {
          this.send(owner, recipients, x('event', NS_PUBSUB_EVENT, {}, x('delete', NS_PUBSUB_EVENT, { node })));
          await this.changed(owner, node, { kind: 'delete' });
        });
        return;
      }
      case 'purge': {
        // XEP-0060 §8.5
        await this.store.purge(owner.domain, owner.local, node);
        req.afterReply(async () => {
          if (config.notifyRetract) await this.notify(owner, node, config, x('event', NS_PUBSUB_EVENT, {}, x('purge', NS_PUBSUB_EVENT, { node })));
          await this.changed(owner, node, { kind: 'purge' });
        });
        return;
      }
      default:
        throw unsupported(action.name);
    }
  }

  private async existing(owner: Jid, node: string): Promise<NodeConfig> {
    const config = await this.store.getNode(owner.domain, owner.local, node);
    if (!config) throw new StanzaError('item-not-found');
    return config;
  }

  /** XEP-0060 §6.5: items of a node, all, the newest max_items, or by id; under the node's access model. */
  private async itemsRequest(req: IqRequest, items: Element): Promise<Element> {
    const node = nodeAttr(items);
    const owner = req.to;
    const config = await this.existing(owner, node);
    const denied = accessError(config, await this.relation(owner, req.from));
    if (denied) throw denied;
    const ids = items.getChildren('item', NS_PUBSUB).map((i) => i.attrs.id);
    if (ids.some((id) => id === undefined || id === '')) throw new StanzaError('bad-request', 'an item to retrieve needs an id');
    let max: number | undefined;
    if (items.attrs.max_items !== undefined) {
      max = /^\d{1,9}$/.test(items.attrs.max_items) ? Number(items.attrs.max_items) : NaN;
      if (!Number.isInteger(max) || max < 1) throw new StanzaError('bad-request', 'max_items must be a positive integer');
    }
    const found = await this.store.items(owner.domain, owner.local, node, ids.length > 0 ? { ids: ids as string[] } : { max });
    return x('pubsub', NS_PUBSUB, {}, x('items', NS_PUBSUB, { node }, ...found.map((i) => itemElement(NS_PUBSUB, i, true))));
  }

  /** XEP-0060 §7.1 (with §7.1.5 publish-options, XEP-0163 §3 auto-create). */
  private async publishRequest(req: IqRequest, publish: Element): Promise<Element> {
    const node = nodeAttr(publish);
    const items = publish.getChildren('item', NS_PUBSUB);
    // §7.1.3.6: one item per publish here; an item with exactly one payload.
    if (items.length === 0) throw new PubsubError('bad-request', 'item-required');
    if (items.length > 1) throw new StanzaError('bad-request', 'publish one item at a time');
    const item = items[0]!;
    const payloads = item.getChildren();
    if (payloads.length === 0) throw new PubsubError('bad-request', 'payload-required');
    if (payloads.length > 1) throw new StanzaError('bad-request', 'an item carries one payload element');
    const optionsEl = req.payload.getChild('publish-options', NS_PUBSUB);
    const form = optionsEl?.getChild('x', 'jabber:x:data');
    if (optionsEl && !form && optionsEl.getChildren().length > 0) throw new StanzaError('bad-request', 'publish-options must hold a data form');
    const id = await this.publish(req.to, req.from, node, item.attrs.id, payloads[0]!, form, req);
    return x('pubsub', NS_PUBSUB, {}, x('publish', NS_PUBSUB, { node }, x('item', NS_PUBSUB, { id })));
  }

  /**
   * Publishes one item on `owner`'s node (created when missing, with `options` or the defaults);
   * the notifications and listeners run after the reply when `req` is given, else at once.
   * Returns the item id (generated when absent, XEP-0060 §7.1.2).
   */
  async publish(owner: Jid, publisher: Jid, node: string, itemId: string | undefined, payload: Element, options: Element | undefined, req?: IqRequest): Promise<string> {
    const xml = storeXml(payload);
    const max = this.cfg.max_item_bytes;
    // XEP-0060 §7.1.3.5
    if (Buffer.byteLength(xml, 'utf8') > max) throw new PubsubError('not-acceptable', 'payload-too-big', `item payloads are limited to ${max} bytes`);
    const existing = await this.store.getNode(owner.domain, owner.local, node);
    const config = options !== undefined ? applyPublishOptions(existing, this.defaultsFor(node), options, this.limits) : (existing ?? this.defaultsFor(node));
    // XEP-0163 §3: auto-create (a node another publish just created is fine).
    if (existing === undefined) await this.create(owner, node, config, true);
    const id = itemId !== undefined && itemId !== '' ? itemId : randomUUID();
    const stored: StoredItem = { id, payload: xml, publisher: publisher.toString(), publishedAt: new Date().toISOString() };
    const outcome = await this.store.publish(owner.domain, owner.local, node, stored, { keep: itemsKept(config), maxAccountBytes: this.cfg.max_bytes_per_account });
    if (!outcome.stored) throw new StanzaError('policy-violation', `the items of this account are limited to ${this.cfg.max_bytes_per_account} bytes`);
    const after = async (): Promise<void> => {
      if (config.deliverNotifications) {
        const event = x('event', NS_PUBSUB_EVENT, {}, x('items', NS_PUBSUB_EVENT, { node }, itemElement(NS_PUBSUB_EVENT, stored, config.deliverPayloads)));
        await this.notify(owner, node, config, event, publisher);
      }
      await this.changed(owner, node, { kind: 'publish', id, payload });
    };
    if (req) req.afterReply(after);
    else await after();
    return id;
  }

  private async create(owner: Jid, node: string, config: NodeConfig, auto = false): Promise<void> {
    const r = await this.store.createNode(owner.domain, owner.local, node, config, this.cfg.max_nodes);
    if (r === 'limit') throw new PubsubError('policy-violation', 'max-nodes-exceeded', `an account may have ${this.cfg.max_nodes} nodes`);
    // XEP-0060 §8.1.1 (error cases of create): a NodeID that exists is a conflict.
    if (r === 'exists' && !auto) throw new StanzaError('conflict', 'the node exists');
  }

  /** XEP-0060 §8.1 create (and §8.1.3 create-and-configure). */
  private async createRequest(req: IqRequest, create: Element): Promise<void> {
    const node = create.attrs.node;
    // §8.1.2: instant nodes (no NodeID) are not offered.
    if (node === undefined || node === '') throw new PubsubError('not-acceptable', 'nodeid-required');
    const form = req.payload.getChild('configure', NS_PUBSUB)?.getChild('x', 'jabber:x:data');
    const config = form ? applyConfigForm(this.defaultsFor(node), form, this.limits) : this.defaultsFor(node);
    await this.create(req.to, node, config);
  }

  /** XEP-0060 §7.2 retract, notified when asked (or, without 'notify', per pubsub#notify_retract). */
  private async retractRequest(req: IqRequest, retract: Element): Promise<void> {
    const node = nodeAttr(retract);
    const item = retract.getChild('item', NS_PUBSUB);
    const id = item?.attrs.id;
    if (id === undefined || id === '') throw new PubsubError('bad-request', 'item-required');
    const notifyAttr = retract.attrs.notify;
    await this.retract(req.to, node, id, notifyAttr === undefined ? undefined : isTrue(notifyAttr), req);
  }

  async retract(owner: Jid, node: string, id: string, notify: boolean | undefined, req?: IqRequest): Promise<void> {
    const config = await this.existing(owner, node);
    // §7.2.3: no such item
    if (!(await this.store.retract(owner.domain, owner.local, node, id))) throw new StanzaError('item-not-found');
    const after = async (): Promise<void> => {
      if (notify ?? config.notifyRetract) {
        await this.notify(owner, node, config, x('event', NS_PUBSUB_EVENT, {}, x('items', NS_PUBSUB_EVENT, { node }, x('retract', NS_PUBSUB_EVENT, { id }))));
      }
      await this.changed(owner, node, { kind: 'retract', id });
    };
    if (req) req.afterReply(after);
    else await after();
  }

  /** The items of one of `owner`'s nodes (for conversions run as the owner). */
  ownItems(owner: Jid, node: string): Promise<StoredItem[]> {
    return this.store.items(owner.domain, owner.local, node, {});
  }

  // --- Notifications (XEP-0163 §4.3) ---------------------------------------------------------------

  /**
   * The resources that get notifications of `owner`'s node: the owner's and those of contacts
   * that receive the owner's presence and may read the node, each available and asking for the
   * node in its caps (XEP-0163 §4.2), none blocked (XEP-0163 §4.3.3 rule 3).
   */
  private async recipients(owner: Jid, node: string, config: NodeConfig): Promise<{ session: Session; contact: boolean }[]> {
    const out: { session: Session; contact: boolean }[] = [];
    for (const s of this.server.router.getSessions(owner.bareString())) {
      if (s.available && this.interest.wants(s, node)) out.push({ session: s, contact: false });
    }
    if (config.accessModel === 'whitelist') return out;
    const roster = await this.storage.roster.get(owner.domain, owner.local);
    for (const item of roster.items) {
      if (!seesPresence(item) || accessError(config, { owner: false, item }) !== undefined) continue;
      for (const s of this.server.router.getSessions(item.jid)) {
        if (s.available && this.interest.wants(s, node) && (await this.server.mayExchange(owner, s.jid))) out.push({ session: s, contact: true });
      }
    }
    return out;
  }

  private async notify(owner: Jid, node: string, config: NodeConfig, event: Element, publisher?: Jid): Promise<void> {
    this.send(owner, await this.recipients(owner, node, config), event, publisher);
  }

  /** XEP-0163 §4.3.1: headline messages from the owner's bare JID to each full JID. */
  private send(owner: Jid, recipients: readonly { session: Session; contact: boolean }[], event: Element, publisher?: Jid, delay?: string): void {
    for (const { session, contact } of recipients) {
      const msg = x('message', NS.CLIENT, { from: owner.toString(), to: session.jid.toString(), type: 'headline', id: randomUUID() }, event.clone());
      // §4.3.1 rule 3: the publishing resource, for contacts with a presence subscription.
      if (contact && publisher && !publisher.isBare()) {
        msg.append(x('addresses', NS_ADDRESS, {}, x('address', NS_ADDRESS, { type: 'replyto', jid: publisher.toString() })));
      }
      if (delay) msg.append(x('delay', NS_DELAY, { stamp: delay, from: owner.toString() }));
      this.server.track(this.server.routeTo(msg, owner, session.jid), 'PEP notification');
    }
  }

  /**
   * XEP-0163 §4.3.4: a resource's initial presence (or new caps asking for more nodes): the last
   * item of each such node it may read, of the user's own account and of every contact whose
   * presence the user receives, where the node sends its last item on presence.
   */
  async sendLastItems(session: Session, nodes: ReadonlySet<string>): Promise<void> {
    if (nodes.size === 0) return;
    const user = session.jid.bare;
    const wanted = [...nodes];
    for (const n of await this.store.nodesOf(user.domain, [user.local], wanted)) await this.sendLast(session, user, n, { owner: true });
    // The contacts whose presence the user receives ('to' or 'both' from the user's side), by host.
    const roster = await this.storage.roster.get(user.domain, user.local);
    const byHost = new Map<string, string[]>();
    for (const item of roster.items) {
      if (item.subscription !== 'to' && item.subscription !== 'both') continue;
      const contact = Jid.parse(item.jid);
      if (contact.local === '' || !contact.isBare() || !this.server.isLocalDomain(contact.domain)) continue;
      let list = byHost.get(contact.domain);
      if (!list) byHost.set(contact.domain, (list = []));
      list.push(contact.local);
    }
    for (const [host, usernames] of byHost) {
      const found = await this.store.nodesOf(host, usernames, wanted);
      const owners = new Map<string, (typeof found)[number][]>();
      for (const n of found) {
        let l = owners.get(n.username);
        if (!l) owners.set(n.username, (l = []));
        l.push(n);
      }
      for (const [username, ownerNodes] of owners) {
        const owner = new Jid(username, host);
        if (!(await this.server.mayExchange(owner, session.jid))) continue;
        const rel: Relation = { owner: false, item: await this.storage.roster.getItem(host, username, user.bareString()) };
        for (const n of ownerNodes) await this.sendLast(session, owner, n, rel);
      }
    }
  }

  /**
   * XEP-0163 §4.3.4 ("MUST send the last published item to all new subscribers"): `subscriber`
   * now receives `owner`'s presence; each of its available resources gets the last item of the
   * owner's nodes it asks for and may read.
   */
  async newSubscriber(owner: Jid, subscriber: Jid): Promise<void> {
    const sessions = this.server.router.getSessions(subscriber.bareString()).filter((s) => s.available && this.interest.nodes(s).size > 0);
    if (sessions.length === 0) return;
    const rel: Relation = { owner: false, item: await this.storage.roster.getItem(owner.domain, owner.local, subscriber.bareString()) };
    const all = new Set<string>();
    for (const s of sessions) for (const n of this.interest.nodes(s)) all.add(n);
    const found = await this.store.nodesOf(owner.domain, [owner.local], [...all]);
    for (const s of sessions) {
      if (!(await this.server.mayExchange(owner, s.jid))) continue;
      const wanted = this.interest.nodes(s);
      for (const n of found) if (wanted.has(n.node)) await this.sendLast(s, owner, n, rel);
    }
  }

  /** The last item of one node to one resource, when the node sends it on presence and the resource may read it. */
  private async sendLast(session: Session, owner: Jid, { node, config }: StoredNode, rel: Relation): Promise<void> {
    if (config.sendLast !== 'on_sub_and_presence' || !config.deliverNotifications || accessError(config, rel) !== undefined) return;
    const last = await this.store.lastItem(owner.domain, owner.local, node);
    if (!last) return;
    const event = x('event', NS_PUBSUB_EVENT, {}, x('items', NS_PUBSUB_EVENT, { node }, itemElement(NS_PUBSUB_EVENT, last, config.deliverPayloads)));
    this.send(owner, [{ session, contact: !rel.owner }], event, undefined, last.publishedAt);
  }
}

/** An <item/> as stored, with its payload unless `payload` is false (pubsub#deliver_payloads). */
function itemElement(ns: string, item: StoredItem, payload: boolean): Element {
  const el = x('item', ns, { id: item.id });
  if (payload && item.payload !== '') el.append(loadXml(item.payload));
  return el;
}

/** The single action element of a <pubsub/> request (publish-options and configure go beside publish and create). */
function onlyAction(pubsub: Element, ns: string): Element {
  if (pubsub.name !== 'pubsub') throw new StanzaError('bad-request', 'expected <pubsub/>');
  const actions = pubsub.getChildren().filter((c) => c.xmlns === ns && c.name !== 'publish-options' && !(c.name === 'configure' && ns === NS_PUBSUB));
  if (actions.length !== 1) throw new StanzaError('bad-request', 'expected exactly one pubsub action');
  return actions[0]!;
}

function nodeAttr(el: Element): string {
  const node = el.attrs.node;
  // XEP-0060 §7.2.3.3, §8.2.3.3 and the like: NodeID required.
  if (node === undefined || node === '') throw new PubsubError('bad-request', 'nodeid-required');
  return node;
}

function ownerOnly(req: IqRequest): void {
  // XEP-0163 §2.2: one publisher per node, the owner; XEP-0060 §7.1.3.1 / §8.2.3.2: forbidden.
  if (!req.from.bare.equals(req.to)) throw new StanzaError('forbidden');
}

/** XEP-0060 §7.1.3.5 and others: feature-not-implemented with <unsupported feature/>. */
function unsupported(feature: string): PubsubError {
  return new PubsubError('feature-not-implemented', 'unsupported', undefined, 'cancel', feature);
}

