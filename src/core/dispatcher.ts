// The hub: every stanza a local client sends enters here, and every stanza on
// its way to a local entity is delivered from here (RFC 6120 §8, §10; RFC 6121
// §8.5). The path is flat and two-sided:
//
//   from a client:  outbound hooks → own IQ handlers │ deliver
//   deliver:        service domain → its handler
//                   account host   → inbound hooks → account IQ handler │ sessions
//                                    → (nobody took it) undeliverable hooks → bounce
//
// Feature modules plug in through ServerApi; none of them routes by itself.
import { randomBytes } from 'node:crypto';
import { Element, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import { Jid, JidError } from '../jid/jid.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { StanzaError, errorReply } from './errors.js';
import type { Router, RouterHub } from './router.js';
import type { EndReason, Session, SessionHost } from './session.js';
import type { AccountDirectory } from './credentials.js';
import { Caches } from './cache.js';
import { HttpRoutes, type HttpHandler } from './http.js';
import { HookChain, runUntilHandled } from './hooks.js';
import type {
  AddressedHook,
  AddressedStanza,
  DeliveryFilter,
  DeliveryObserver,
  DetachHook,
  IqHandler,
  IqTarget,
  NonzaHandler,
  OutgoingFilter,
  PreBindHandler,
  RoutedStanza,
  ServerApi,
  ServerEvents,
  ServiceHandler,
  ServiceInfo,
  ServiceOptions,
  StanzaHook,
  StanzaKind,
  WriteObserver,
} from './api.js';

export interface DispatcherOptions {
  config: Config;
  log: Logger;
  router: Router;
  /** Answers whether a local account exists (bare-JID delivery, IQs on an account's behalf). */
  accounts: AccountDirectory;
}

interface Service extends ServiceInfo {
  handler: ServiceHandler;
  subdomains: boolean;
  placed: boolean;
}

const KINDS: readonly StanzaKind[] = ['message', 'presence', 'iq'];

/** Presences held per congested session (one per sender); beyond, the oldest sender's goes. */
const MAX_HELD_PRESENCE = 1000;

function chains<F>(): Record<StanzaKind, HookChain<F>> {
  return { message: new HookChain<F>(), presence: new HookChain<F>(), iq: new HookChain<F>() };
}

export class Dispatcher implements ServerApi, SessionHost, RouterHub {
  readonly config: Config;
  readonly log: Logger;
  readonly router: Router;
  readonly caches = new Caches();
  readonly hosts: readonly string[];
  private readonly accounts: AccountDirectory;
  private readonly hostSet: Set<string>;
  private readonly iqHandlers = new Map<string, IqHandler>();
  private readonly featureSets: Record<IqTarget, string[]> = { server: [], account: [] };
  private readonly extraStreamFeatures: Element[] = [];
  private readonly nonzaHandlers = new Map<string, NonzaHandler>();
  private readonly preBindHandlers = new Map<string, PreBindHandler>();
  private writeObservers: WriteObserver[] = [];
  private deliveryObservers: DeliveryObserver[] = [];
  private readonly outbound = chains<StanzaHook>();
  private readonly inbound = chains<AddressedHook>();
  private readonly undeliverableHooks = new HookChain<AddressedHook>();
  private readonly outgoingFilters = new HookChain<OutgoingFilter>();
  private readonly detachHooks = new HookChain<DetachHook>();
  private readonly deliveryFilters: DeliveryFilter[] = [];
  private readonly servicesByDomain = new Map<string, Service>();
  /** HTTP paths modules serve, and the listeners' base URL (core/http.ts). */
  readonly http = new HttpRoutes();
  private readonly listeners: { [E in keyof ServerEvents]: ServerEvents[E][] } = {
    'session-bound': [],
    'session-ended': [],
    'initial-presence': [],
    'session-drained': [],
    'session-idle': [],
    'session-resumed': [],
    'server-stopping': [],
    'remote-session-ended': [],
    'cluster-changed': [],
  };
  /** Presence held for congested sessions: the latest from each sender, sent when they drain. */
  private readonly heldPresence = new WeakMap<Session, Map<string, Element>>();
  private readonly pendingIqs = new Map<string, { resolve: (el: Element) => void; timer: NodeJS.Timeout }>();
  /** Work still running (listeners, re-routing): awaited on shutdown, before storage closes. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Per account, the last message being kept by the undeliverable hooks (they run in order). */
  private readonly keeping = new Map<string, Promise<void>>();
  /** Messages already re-routed once after a failed delivery: a second failure goes straight to the undeliverable hooks. */
  private readonly rerouted = new WeakSet<Element>();

  constructor(opts: DispatcherOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.router = opts.router;
    this.accounts = opts.accounts;
    this.hosts = [...opts.config.hosts];
    this.hostSet = new Set(opts.config.hosts);
  }

  // --- Registration (ServerApi) ------------------------------------------------------

  isLocalDomain(domain: string): boolean {
    return this.hostSet.has(domain);
  }

  handleIq(target: IqTarget, xmlns: string, type: 'get' | 'set', handler: IqHandler): void {
    const key = `${target} ${type} ${xmlns}`;
    if (this.iqHandlers.has(key)) throw new Error(`an IQ handler for ${key} is already registered`);
    this.iqHandlers.set(key, handler);
  }

  addFeature(target: IqTarget, feature: string): void {
    if (!this.featureSets[target].includes(feature)) this.featureSets[target].push(feature);
  }

  features(target: IqTarget): readonly string[] {
    return this.featureSets[target];
  }

  addStreamFeature(feature: Element): void {
    this.extraStreamFeatures.push(feature);
  }

  streamFeatures(): readonly Element[] {
    return this.extraStreamFeatures;
  }

  handleNonza(xmlns: string, handler: NonzaHandler): void {
    if (xmlns === NS.CLIENT) throw new Error('stanzas are not nonzas');
    if (this.nonzaHandlers.has(xmlns)) throw new Error(`a handler for ${xmlns} is already registered`);
    this.nonzaHandlers.set(xmlns, handler);
  }

  handlePreBindNonza(xmlns: string, handler: PreBindHandler): void {
    if (xmlns === NS.CLIENT) throw new Error('stanzas are not nonzas');
    if (this.preBindHandlers.has(xmlns)) throw new Error(`a pre-bind handler for ${xmlns} is already registered`);
    this.preBindHandlers.set(xmlns, handler);
  }

  /** The handler for a top-level element of this namespace on an authenticated stream before binding, if any. */
  preBindHandler(xmlns: string): PreBindHandler | undefined {
    return this.preBindHandlers.get(xmlns);
  }

  observeWritten(observer: WriteObserver): void {
    this.writeObservers = [...this.writeObservers, observer];
  }

  observeDelivered(observer: DeliveryObserver): void {
    this.deliveryObservers = [...this.deliveryObservers, observer];
  }

  /** The handler for a top-level element of this namespace on a bound client stream, if any. */
  nonzaHandler(xmlns: string): NonzaHandler | undefined {
    return this.nonzaHandlers.get(xmlns);
  }

  hookOutbound(kind: StanzaKind, hook: StanzaHook, priority: number): void {
    this.outbound[kind].add(hook, priority);
  }

  hookInbound(kind: StanzaKind, hook: AddressedHook, priority: number): void {
    this.inbound[kind].add(hook, priority);
  }

  hookUndeliverable(hook: AddressedHook, priority: number): void {
    this.undeliverableHooks.add(hook, priority);
  }

  addOutgoingFilter(filter: OutgoingFilter, priority: number): void {
    this.outgoingFilters.add(filter, priority);
  }

  hookDetach(hook: DetachHook, priority: number): void {
    this.detachHooks.add(hook, priority);
  }

  addDeliveryFilter(filter: DeliveryFilter): void {
    this.deliveryFilters.push(filter);
  }

  mayExchange(from: Jid, to: Jid): Promise<boolean> {
    // Filters that can answer at once do (blocklists of users online): no await per contact.
    for (let i = 0; i < this.deliveryFilters.length; i++) {
      const r = this.deliveryFilters[i]!(from, to);
      if (r instanceof Promise) return this.mayExchangeFrom(i, r, from, to);
      if (!r) return Promise.resolve(false);
    }
    return Promise.resolve(true);
  }

  private async mayExchangeFrom(i: number, pending: Promise<boolean>, from: Jid, to: Jid): Promise<boolean> {
    if (!(await pending)) return false;
    for (let j = i + 1; j < this.deliveryFilters.length; j++) if (!(await this.deliveryFilters[j]!(from, to))) return false;
    return true;
  }

  registerService(domain: string, handler: ServiceHandler, options: ServiceOptions = {}): () => void {
    const d = domain.toLowerCase();
    if (this.hostSet.has(d)) throw new Error(`${d} is an account host, not a service domain`);
    if (this.servicesByDomain.has(d)) throw new Error(`${d} already has a service`);
    const service: Service = { domain: d, name: options.name, handler, subdomains: options.subdomains ?? false, placed: options.placed ?? false };
    this.servicesByDomain.set(d, service);
    return () => {
      if (this.servicesByDomain.get(d) === service) this.servicesByDomain.delete(d);
    };
  }

  handleHttp(prefix: string, handler: HttpHandler): () => void {
    return this.http.add(prefix, handler);
  }

  httpBaseUrl(host: string): string | undefined {
    return this.http.baseUrl(host);
  }

  services(host: string): readonly ServiceInfo[] {
    const out: ServiceInfo[] = [];
    const suffix = '.' + host;
    for (const s of this.servicesByDomain.values()) if (s.domain.endsWith(suffix)) out.push({ domain: s.domain, name: s.name });
    return out.sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  }

  /** The service that takes stanzas for `domain`: its own, or a parent's that takes subdomains. */
  private serviceFor(domain: string): Service | undefined {
    if (this.servicesByDomain.size === 0) return undefined;
    const own = this.servicesByDomain.get(domain);
    if (own) return own;
    for (let dot = domain.indexOf('.'); dot >= 0; dot = domain.indexOf('.', dot + 1)) {
      const parent = this.servicesByDomain.get(domain.slice(dot + 1));
      if (parent?.subdomains) return parent;
    }
    return undefined;
  }

  on<E extends keyof ServerEvents>(event: E, listener: ServerEvents[E]): void {
    this.listeners[event].push(listener);
  }

  emit<E extends keyof ServerEvents>(event: E, ...args: Parameters<ServerEvents[E]>): void {
    for (const l of this.listeners[event]) this.safely(() => (l as (...a: Parameters<ServerEvents[E]>) => unknown)(...args));
  }

  track(work: Promise<unknown>, what: string): void {
    const p = work.catch((err: unknown) => this.log.error({ err }, `${what} failed`));
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Resolves once no tracked work is running. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private safely(fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) this.track(r, 'event listener');
    } catch (err) {
      this.log.error({ err }, 'event listener failed');
    }
  }

  sendIq(session: Session, iq: Element, timeoutMs: number): Promise<Element> {
    const id = iq.attrs.id ?? `s2c-${randomBytes(8).toString('hex')}`;
    iq.attrs.id = id;
    const key = `${session.jid.toString()} ${id}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIqs.delete(key);
        reject(new Error('IQ timed out'));
      }, timeoutMs);
      this.pendingIqs.set(key, { resolve, timer });
      session.send(iq);
    });
  }

  requestIq(iq: Element, timeoutMs: number): Promise<Element> {
    const to = tryJid(iq.attrs.to);
    const from = tryJid(iq.attrs.from);
    if (!to || !from || from.local !== '' || from.resource !== '' || !this.isLocalDomain(from.domain)) {
      return Promise.reject(new Error('requestIq needs one of our domains as from, and a valid to'));
    }
    const id = iq.attrs.id ?? `req-${randomBytes(8).toString('hex')}`;
    iq.attrs.id = id;
    // The reply comes from 'to' (answered() looks it up by the replier and the id).
    const key = `${to.toString()} ${id}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIqs.delete(key);
        reject(new Error('IQ timed out'));
      }, timeoutMs);
      this.pendingIqs.set(key, { resolve, timer });
      this.track(this.route(iq), 'routing an IQ request');
    });
  }

  // --- Sessions (SessionHost) ------------------------------------------------------------

  sessionBound(session: Session): void {
    this.emit('session-bound', session);
  }

  filterOutgoing(session: Session, stanza: Element, after?: OutgoingFilter): Element | null {
    const filters = this.outgoingFilters.handlers;
    let out: Element | null = stanza;
    for (let i = after === undefined ? 0 : filters.indexOf(after) + 1; i < filters.length; i++) {
      out = filters[i]!(session, out);
      if (out === null) return null;
    }
    return out;
  }

  written(session: Session, stanza: Element): void {
    const observers = this.writeObservers;
    for (let i = 0; i < observers.length; i++) observers[i]!(session, stanza);
  }

  idle(session: Session): void {
    this.emit('session-idle', session);
  }

  /** Tells the delivery observers which sessions a message was handed to. */
  private delivered(ev: AddressedStanza, recipients: readonly Session[]): void {
    for (const o of this.deliveryObservers) {
      try {
        o(ev, recipients);
      } catch (err) {
        this.log.error({ err }, 'a delivery observer failed');
      }
    }
  }

  keepDetached(session: Session, reason: EndReason): boolean {
    for (const h of this.detachHooks.handlers) if (h(session, reason)) return true;
    return false;
  }

  ended(session: Session, reason: EndReason): void {
    this.router.unregister(session, reason);
    this.heldPresence.delete(session);
    this.emit('session-ended', session, reason);
  }

  /**
   * Someone else's stanza for a session whose client is not reading. A chat or normal message
   * goes where a message for a gone resource goes (another resource, else offline storage,
   * delivered when this one drains); the latest presence of each sender is held and sent on
   * drain (bounded); an IQ request is answered resource-constraint (RFC 6120 §8.3.3.18, type
   * wait: try later); the rest (unrequested results, headlines, errors) is dropped.
   */
  congested(session: Session, stanza: Element): void {
    const kind = stanza.name;
    const type = stanza.attrs.type;
    if (kind === 'message' && (type === undefined || type === 'chat' || type === 'normal')) return this.undeliverable(session, stanza);
    if (kind === 'presence') {
      let held = this.heldPresence.get(session);
      if (!held) this.heldPresence.set(session, (held = new Map()));
      const from = stanza.attrs.from ?? '';
      held.delete(from);
      if (held.size >= MAX_HELD_PRESENCE) held.delete(held.keys().next().value as string);
      held.set(from, stanza);
      return;
    }
    if (kind === 'iq' && (type === 'get' || type === 'set')) return this.bounce(stanza, new StanzaError('resource-constraint', 'the recipient is not reading its stream'));
    this.log.debug({ event: 'dropped-congested', jid: session.jid.toString(), kind, type }, 'stanza for a congested session dropped');
  }

  drained(session: Session): void {
    const held = this.heldPresence.get(session);
    if (held) {
      this.heldPresence.delete(session);
      for (const p of held.values()) session.send(p);
    }
    this.emit('session-drained', session);
  }

  /**
   * A stanza handed to a session that could not take it (its connection was gone). RFC 6121
   * §8.5.3.2.1 for a resource that is no longer there: a chat or normal message is treated as
   * sent to the bare JID (another resource, else the undeliverable handlers: offline storage);
   * an IQ request is answered with service-unavailable; anything else is dropped.
   */
  undeliverable(session: Session, stanza: Element): void {
    const kind = stanza.name;
    const type = stanza.attrs.type;
    if (kind === 'iq') {
      if (type === 'get' || type === 'set') this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    if (kind !== 'message' || (type !== undefined && type !== 'chat' && type !== 'normal')) {
      this.log.debug({ event: 'dropped', jid: session.jid.toString(), kind, type }, 'stanza for a closed session dropped');
      return;
    }
    const from = tryJid(stanza.attrs.from);
    if (!from) return;
    const ev: AddressedStanza = { stanza, kind: 'message', from, to: session.jid, session: undefined };
    if (this.rerouted.has(stanza)) {
      this.track(this.keepUndeliverable(ev, session.jid.bare), 'keeping an undelivered message');
      return;
    }
    this.rerouted.add(stanza);
    this.track(this.deliverMessageToBare(ev, session.jid.bare, session), 'rerouting an undelivered message');
  }

  // --- From other nodes (RouterHub) ------------------------------------------------------

  async deliverHere(stanza: Element): Promise<void> {
    const to = tryJid(stanza.attrs.to);
    const from = tryJid(stanza.attrs.from);
    if (!to || !from) return;
    const kind = stanza.name as StanzaKind;
    if (!KINDS.includes(kind)) return;
    const ev: AddressedStanza = { stanza, kind, from, to, session: undefined };
    try {
      await this.deliver(ev, true);
    } catch (err) {
      this.failed(ev, err);
    }
  }

  remoteEnded(session: Session, reason: EndReason, adopted: boolean): void {
    this.heldPresence.delete(session);
    this.emit(adopted ? 'session-ended' : 'remote-session-ended', session, reason);
  }

  clusterChanged(): void {
    this.emit('cluster-changed');
  }

  // --- From a local client ----------------------------------------------------------------

  /** Entry point for every stanza a bound client sends; 'from' is already stamped. */
  async handleStanza(session: Session, stanza: Element): Promise<void> {
    const kind = stanza.name as StanzaKind;
    if (!KINDS.includes(kind)) throw new Error(`not a stanza: ${stanza.name}`);
    let to: Jid | undefined;
    const toAttr = stanza.attrs.to;
    if (toAttr !== undefined) {
      try {
        to = Jid.parse(toAttr);
      } catch (err) {
        if (!(err instanceof JidError)) throw err;
        // RFC 6120 §8.3.3.8
        if (stanza.attrs.type !== 'error') {
          const reply = errorReply(stanza, new StanzaError('jid-malformed'));
          // RFC 6120 §8.3.1 rule 2: swapping would put the malformed JID in 'from';
          // the error comes from the server that found it instead.
          reply.attrs.from = session.jid.domain;
          session.send(reply);
        }
        return;
      }
      stanza.attrs.to = to.toString();
    } else if (kind === 'message') {
      // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID.
      to = session.jid.bare;
      stanza.attrs.to = to.toString();
    }
    const ev: RoutedStanza = { stanza, kind, from: session.jid, to, session };
    try {
      if (await runUntilHandled(this.outbound[kind], ev)) return;
      if (kind === 'iq') return await this.clientIq(ev);
      // Broadcast presence (no 'to') is the presence module's; without it there is nothing to do.
      if (to) await this.deliver({ ...ev, to });
    } catch (err) {
      this.failed(ev, err);
    }
  }

  /** A handler threw: a StanzaError is the answer; anything else is internal-server-error (RFC 6120 §8.3.3.6). */
  private failed(ev: RoutedStanza, err: unknown): void {
    const { stanza } = ev;
    let error: StanzaError;
    if (err instanceof StanzaError) error = err;
    else {
      this.log.error({ err, stanza: stanza.name }, 'stanza handler failed');
      error = new StanzaError('internal-server-error');
    }
    if (stanza.attrs.type === 'error') return;
    const reply = errorReply(stanza, error);
    if (ev.session) ev.session.send(reply);
    else this.bounce(stanza, error);
  }

  private async clientIq(ev: RoutedStanza): Promise<void> {
    const { stanza: iq, to, session } = ev;
    const type = iq.attrs.type;
    const own = session!.jid;
    // RFC 6120 §10.3.3: no 'to' (or the user's own bare JID) is handled by the server for the account.
    const forAccount = !to || to.equals(own.bare);
    const forServer = to !== undefined && to.local === '' && to.resource === '' && this.isLocalDomain(to.domain);
    if (type === 'result' || type === 'error') {
      if (forAccount || forServer) return this.answered(own, iq);
      return this.deliver({ ...ev, to: to! });
    }
    checkIqRequest(iq);
    if (forServer) return this.callIqHandler({ ...ev, to: to! }, 'server');
    if (forAccount) return this.callIqHandler({ ...ev, to: own.bare }, 'account', !to);
    return this.deliver({ ...ev, to: to! });
  }

  /** An IQ result or error for one of the server's own requests (sendIq, requestIq). */
  private answered(from: Jid, iq: Element): void {
    const key = `${from.toString()} ${iq.attrs.id ?? ''}`;
    const pending = this.pendingIqs.get(key);
    if (!pending) return;
    this.pendingIqs.delete(key);
    clearTimeout(pending.timer);
    pending.resolve(iq);
  }

  /**
   * Runs the IQ handler for the addressed server or account and answers (RFC 6120 §8.2.3).
   * `serverFallback`: an IQ without 'to' may be for a server-wide feature (RFC 6120 §10.3.3).
   */
  private async callIqHandler(ev: AddressedStanza, target: IqTarget, serverFallback = false): Promise<void> {
    const { stanza: iq, to, session } = ev;
    const type = iq.attrs.type as 'get' | 'set';
    const payload = iq.firstElement()!;
    let handler = this.iqHandlers.get(`${target} ${type} ${payload.xmlns}`);
    if (!handler && serverFallback) handler = this.iqHandlers.get(`server ${type} ${payload.xmlns}`);
    if (!handler) throw new StanzaError('service-unavailable');
    if (target === 'account' && !to.equals(ev.from.bare) && !(await this.accounts.exists(to.domain, to.local))) {
      throw new StanzaError('service-unavailable');
    }
    const after: (() => Promise<void> | void)[] = [];
    const result = await handler({ stanza: iq, payload, type, from: ev.from, to, session, afterReply: (work) => void after.push(work) });
    const reply = x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id, to: ev.from.toString() });
    if (iq.attrs.to !== undefined) reply.attrs.from = to.toString();
    if (result) reply.append(result);
    if (session) session.send(reply);
    else await this.routeTo(reply, to, ev.from);
    for (const work of after) {
      try {
        const r = work();
        if (r instanceof Promise) this.track(r, 'work after an IQ reply');
      } catch (err) {
        this.log.error({ err }, 'work after an IQ reply failed');
      }
    }
  }

  // --- Delivery ---------------------------------------------------------------------------

  async route(stanza: Element): Promise<void> {
    const to = tryJid(stanza.attrs.to);
    const from = tryJid(stanza.attrs.from);
    if (!from) {
      this.log.warn({ event: 'route-without-from', stanza: stanza.name }, 'a stanza without a valid from cannot be routed');
      return;
    }
    if (!to) return this.bounce(stanza, new StanzaError('jid-malformed'));
    return this.routeTo(stanza, from, to);
  }

  async routeTo(stanza: Element, from: Jid, to: Jid): Promise<void> {
    const kind = stanza.name as StanzaKind;
    if (!KINDS.includes(kind)) throw new Error(`not a stanza: ${stanza.name}`);
    const ev: AddressedStanza = { stanza, kind, from, to, session: undefined };
    try {
      if (kind === 'iq' && (stanza.attrs.type === 'get' || stanza.attrs.type === 'set')) checkIqRequest(stanza);
      await this.deliver(ev);
    } catch (err) {
      this.failed(ev, err);
    }
  }

  /**
   * Delivers to the addressed entity: a service, the server, or a local account (RFC 6121 §8.5).
   * `here`: the stanza was forwarded by another node because this one hosts its entity.
   */
  private async deliver(ev: AddressedStanza, here = false): Promise<void> {
    const { stanza, to, kind } = ev;
    const type = stanza.attrs.type;
    const service = this.serviceFor(to.domain);
    if (service) {
      if (service.placed && !here && to.local !== '') {
        const node = this.router.hostOf(to.bareString());
        if (node) return node.route(stanza);
      }
      return service.handler(ev);
    }
    if (!this.isLocalDomain(to.domain)) {
      // No server-to-server links yet (RFC 6120 §10.4).
      return this.bounce(stanza, new StanzaError('remote-server-not-found'));
    }
    if (to.local === '') {
      if (to.resource === '' && kind === 'iq') {
        if (type === 'get' || type === 'set') return this.callIqHandler(ev, 'server');
        return this.answered(ev.from, stanza);
      }
      // RFC 6120 §10.3: other stanzas to the server itself that no module took.
      if (kind === 'iq' && (type === 'get' || type === 'set')) this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    if (await runUntilHandled(this.inbound[kind], ev)) return;
    if (kind === 'iq' && to.resource === '') {
      // RFC 6121 §8.5.2.1.3 / §8.5.2.2.3: the server answers an IQ to an account's bare JID.
      if (type === 'get' || type === 'set') return this.callIqHandler(ev, 'account');
      return;
    }
    return this.deliverToAccount(ev);
  }

  /** RFC 6121 §8.5.2 (bare JID) and §8.5.3 (full JID) for an account of this server. */
  private async deliverToAccount(ev: AddressedStanza): Promise<void> {
    const { stanza, to } = ev;
    const type = stanza.attrs.type;
    if (to.resource !== '') {
      const session = this.router.getSession(to.toString());
      if (session) {
        session.send(stanza);
        if (ev.kind === 'message' && this.deliveryObservers.length > 0) this.delivered(ev, [session]);
        return;
      }
      // RFC 6121 §8.5.3.2: no such resource.
      if (ev.kind === 'iq') {
        if (type === 'get' || type === 'set') this.bounce(stanza, new StanzaError('service-unavailable'));
        return;
      }
      if (ev.kind === 'presence') return;
      if (type === 'headline' || type === 'error') return;
      if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
      // chat and normal are treated as if sent to the bare JID.
    }
    if (ev.kind === 'message') return this.deliverMessageToBare(ev, to.bare);
    if (ev.kind === 'presence') {
      // RFC 6121 §4.2.3 / §4.6.4: to every available resource, addressed as sent.
      for (const s of this.router.getSessions(to.bareString())) if (s.available) s.send(stanza);
      return;
    }
    if (type === 'get' || type === 'set') this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  /** RFC 6121 §8.5.2: a message to a local bare JID (`except`: a session that just failed to take it). */
  private async deliverMessageToBare(ev: AddressedStanza, bare: Jid, except?: Session): Promise<void> {
    const { stanza } = ev;
    const type = stanza.attrs.type ?? 'normal';
    if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
    const candidates = this.router.getSessions(bare.bareString()).filter((s) => s !== except && s.available && s.priority >= 0);
    if (candidates.length > 0) {
      if (type === 'headline') {
        for (const s of candidates) s.send(stanza);
        if (this.deliveryObservers.length > 0) this.delivered(ev, candidates);
        return;
      }
      // RFC 6121 §8.5.2.1.1: the highest-priority available resource(s).
      let top = -1;
      for (const s of candidates) if (s.priority > top) top = s.priority;
      const chosen = candidates.filter((s) => s.priority === top);
      for (const s of chosen) s.send(stanza);
      if (this.deliveryObservers.length > 0) this.delivered(ev, chosen);
      return;
    }
    if (type === 'error' || type === 'headline') return;
    return this.keepUndeliverable(ev, bare);
  }

  /**
   * RFC 6121 §8.5.2.2.1: no resource: the undeliverable handlers (XEP-0160 offline storage) may
   * keep it, else a bounce. One account's are handled one at a time, in the order they came here,
   * so that what is stored keeps the order it was sent in (a session's unacknowledged messages
   * flushed at its end, then what arrives after).
   */
  private keepUndeliverable(ev: AddressedStanza, bare: Jid): Promise<void> {
    const key = bare.toString();
    const previous = this.keeping.get(key);
    const run = previous ? previous.then(() => this.keepNow(ev, bare)) : this.keepNow(ev, bare);
    this.keeping.set(key, run);
    void run.finally(() => {
      if (this.keeping.get(key) === run) this.keeping.delete(key);
    });
    return run;
  }

  private async keepNow(ev: AddressedStanza, bare: Jid): Promise<void> {
    try {
      if ((await this.accounts.exists(bare.domain, bare.local)) && (await runUntilHandled(this.undeliverableHooks, ev))) return;
    } catch (err) {
      // A handler that could not keep it says why (a full store, a store that is down).
      if (!(err instanceof StanzaError)) this.log.error({ err }, 'an undeliverable handler failed');
      this.bounce(ev.stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
      return;
    }
    this.bounce(ev.stanza, new StanzaError('service-unavailable'));
  }

  bounce(stanza: Element, err: StanzaError): void {
    if (stanza.attrs.type === 'error' || stanza.attrs.from === undefined) return;
    const reply = errorReply(stanza, err);
    const to = tryJid(reply.attrs.to);
    const from = tryJid(reply.attrs.from);
    if (!to) return;
    if (to.resource !== '' && this.isLocalDomain(to.domain)) {
      // The common case, an error for a local client: straight to its session, if still there.
      this.router.getSession(to.toString())?.send(reply);
      return;
    }
    if (!from) return;
    this.track(this.routeTo(reply, from, to), 'routing an error reply');
  }
}

/** RFC 6120 §8.2.3: an IQ request is a get or set, has an id and exactly one payload element. */
function checkIqRequest(iq: Element): void {
  const type = iq.attrs.type;
  if ((type !== 'get' && type !== 'set') || iq.attrs.id === undefined) throw new StanzaError('bad-request', 'invalid IQ type or missing id');
  const payloads = iq.getChildren();
  if (payloads.length !== 1) throw new StanzaError('bad-request', 'an IQ get/set carries exactly one child');
}

function tryJid(s: string | undefined): Jid | undefined {
  if (s === undefined) return undefined;
  try {
    return Jid.parse(s);
  } catch {
    return undefined;
  }
}
