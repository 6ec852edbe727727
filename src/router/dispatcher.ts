// Stanza handling for everything a local client sends, and delivery of stanzas
// to local sessions (RFC 6120 §8, §10; RFC 6121 §8.5). Feature modules plug in
// through the ServerApi registered here; none of them routes by itself.
import { randomBytes } from 'node:crypto';
import { Element, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import { Jid, JidError } from '../jid/jid.js';
import { StanzaError, errorReply } from '../stream/errors.js';
import type { Router, Session } from './router.js';
import type { Storage } from '../storage/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { DeliveryFilter, EndReason, IqHandler, IqTarget, ServerApi, ServerEvents, StanzaHook } from '../modules/api.js';

export class Dispatcher implements ServerApi {
  private readonly iqHandlers = new Map<string, IqHandler>();
  private readonly featureSets: Record<IqTarget, string[]> = { server: [], account: [] };
  private readonly extraStreamFeatures: Element[] = [];
  private readonly messageHooks: StanzaHook[] = [];
  private readonly presenceHooks: StanzaHook[] = [];
  private readonly iqHooks: StanzaHook[] = [];
  private offlineHandler: ((stanza: Element) => Promise<boolean>) | undefined;
  private readonly listeners: { [E in keyof ServerEvents]: ServerEvents[E][] } = { 'session-bound': [], 'session-ended': [], 'initial-presence': [] };
  private readonly pendingIqs = new Map<string, { resolve: (el: Element) => void; timer: NodeJS.Timeout }>();
  private readonly hosts: Set<string>;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly storage: Storage,
    readonly router: Router,
  ) {
    this.hosts = new Set(config.hosts);
  }

  // --- ServerApi ----------------------------------------------------------------

  isLocalDomain(domain: string): boolean {
    return this.hosts.has(domain);
  }

  handleIq(target: IqTarget, xmlns: string, type: 'get' | 'set', handler: IqHandler): void {
    this.iqHandlers.set(`${target} ${type} ${xmlns}`, handler);
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

  hookMessage(hook: StanzaHook): void {
    this.messageHooks.push(hook);
  }

  hookPresence(hook: StanzaHook): void {
    this.presenceHooks.push(hook);
  }

  private readonly deliveryFilters: DeliveryFilter[] = [];

  addDeliveryFilter(filter: DeliveryFilter): void {
    this.deliveryFilters.push(filter);
  }

  async mayExchange(from: Jid, to: Jid): Promise<boolean> {
    for (const f of this.deliveryFilters) if (!(await f(from, to))) return false;
    return true;
  }

  hookIq(hook: StanzaHook): void {
    this.iqHooks.push(hook);
  }

  setOfflineHandler(handler: (stanza: Element) => Promise<boolean>): void {
    this.offlineHandler = handler;
  }

  on<E extends keyof ServerEvents>(event: E, listener: ServerEvents[E]): void {
    this.listeners[event].push(listener);
  }

  emit<E extends keyof ServerEvents>(event: E, ...args: Parameters<ServerEvents[E]>): void {
    for (const l of this.listeners[event]) this.safely(() => (l as (...a: Parameters<ServerEvents[E]>) => unknown)(...args));
  }

  sessionBound(session: Session): void {
    this.emit('session-bound', session);
  }

  sessionEnded(session: Session, reason: EndReason): void {
    this.emit('session-ended', session, reason);
  }

  /** Listener work still running (awaited on shutdown, before storage closes). */
  private readonly inFlight = new Set<Promise<unknown>>();

  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private safely(fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) {
        const p = r.catch((err: unknown) => this.log.error({ err }, 'event listener failed'));
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      }
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

  // --- From a local client -------------------------------------------------------

  /** Entry point for every stanza a bound client sends; 'from' is already stamped. */
  async handleStanza(session: Session, stanza: Element): Promise<void> {
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
    }
    try {
      if (stanza.name === 'iq') return await this.handleClientIq(session, stanza, to);
      if (stanza.name === 'message') {
        // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID.
        if (!to) stanza.attrs.to = session.jid.bareString();
        for (const hook of this.messageHooks) if (await hook(stanza, session)) return;
        return await this.deliver(stanza, to ?? session.jid.bare);
      }
      for (const hook of this.presenceHooks) if (await hook(stanza, session)) return;
      // Broadcast presence (no 'to') is the presence module's; without it there is nothing to do.
      if (to) return await this.deliver(stanza, to);
    } catch (err) {
      if (err instanceof StanzaError) {
        if (stanza.attrs.type !== 'error') session.send(errorReply(stanza, err));
        return;
      }
      this.log.error({ err, stanza: stanza.name }, 'stanza handler failed');
      if (stanza.attrs.type !== 'error') session.send(errorReply(stanza, new StanzaError('internal-server-error')));
    }
  }

  private async handleClientIq(session: Session, iq: Element, to: Jid | undefined): Promise<void> {
    const type = iq.attrs.type;
    const ownBare = session.jid.bare;
    const addressedToUs = !to || to.equals(ownBare) || (to.local === '' && to.resource === '' && this.isLocalDomain(to.domain));
    if (type === 'result' || type === 'error') {
      if (addressedToUs) {
        const key = `${session.jid.toString()} ${iq.attrs.id ?? ''}`;
        const pending = this.pendingIqs.get(key);
        if (pending) {
          this.pendingIqs.delete(key);
          clearTimeout(pending.timer);
          pending.resolve(iq);
        }
        return;
      }
      for (const hook of this.iqHooks) if (await hook(iq, session)) return;
      return to ? this.deliver(iq, to) : undefined;
    }
    // RFC 6120 §8.2.3: id required; get/set carry exactly one payload element.
    if ((type !== 'get' && type !== 'set') || iq.attrs.id === undefined) throw new StanzaError('bad-request', 'invalid IQ type or missing id');
    const payloads = iq.getChildren();
    const payload = payloads[0];
    if (payloads.length !== 1 || !payload) throw new StanzaError('bad-request', 'an IQ get/set carries exactly one child');
    if (!addressedToUs) for (const hook of this.iqHooks) if (await hook(iq, session)) return;
    if (to && to.resource !== '') return this.deliver(iq, to);
    if (to && !this.isLocalDomain(to.domain)) throw new StanzaError('remote-server-not-found');
    const target: IqTarget = to && to.local === '' ? 'server' : 'account';
    const addressee = to ?? ownBare;
    let handler = this.iqHandlers.get(`${target} ${type} ${payload.xmlns}`);
    // RFC 6120 §10.3.3: an IQ without 'to' is handled by the server on the account's behalf,
    // which includes server-wide features such as ping.
    if (!handler && !to) handler = this.iqHandlers.get(`server ${type} ${payload.xmlns}`);
    if (!handler) throw new StanzaError('service-unavailable');
    if (target === 'account' && !addressee.equals(ownBare) && !(await this.storage.accounts.exists(addressee.domain, addressee.local))) {
      throw new StanzaError('service-unavailable');
    }
    const result = await handler({ stanza: iq, payload, type, from: session.jid, to: addressee, session });
    const reply = x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id, to: session.jid.toString() });
    if (to) reply.attrs.from = to.toString();
    if (result) reply.append(result);
    session.send(reply);
  }

  // --- Delivery -----------------------------------------------------------------

  /** Delivers a stanza with 'from' and 'to' to its local recipients (RFC 6121 §8.5). */
  async route(stanza: Element): Promise<void> {
    const toAttr = stanza.attrs.to;
    if (toAttr === undefined) return;
    let to: Jid;
    try {
      to = Jid.parse(toAttr);
    } catch {
      return this.bounce(stanza, new StanzaError('jid-malformed'));
    }
    return this.deliver(stanza, to);
  }

  /** route() for a stanza whose 'to' was already parsed (the client path parses it once). */
  private async deliver(stanza: Element, to: Jid): Promise<void> {
    const type = stanza.attrs.type;
    if (!this.isLocalDomain(to.domain)) {
      // No server-to-server links yet (RFC 6120 §10.4).
      return this.bounce(stanza, new StanzaError('remote-server-not-found'));
    }
    if (to.local === '') {
      // RFC 6120 §10.3: stanzas to the server itself that no module took.
      if (stanza.name === 'iq' && (type === 'get' || type === 'set')) this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    if (to.resource !== '') {
      const session = this.router.getSession(to.toString());
      if (session) return session.send(stanza);
      // RFC 6121 §8.5.3.2: no such resource.
      if (stanza.name === 'iq') {
        if (type === 'get' || type === 'set') this.bounce(stanza, new StanzaError('service-unavailable'));
        return;
      }
      if (stanza.name === 'presence') return;
      if (type === 'headline' || type === 'error') return;
      if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
      // chat and normal are treated as if sent to the bare JID.
    }
    if (stanza.name === 'message') return this.deliverMessageToBare(stanza, to.bare);
    if (stanza.name === 'presence') {
      for (const s of this.router.getSessions(to.bareString())) if (s.available) s.send(stanza);
      return;
    }
    if (type === 'get' || type === 'set') this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  /** RFC 6121 §8.5.2: a message to a local bare JID. */
  private async deliverMessageToBare(stanza: Element, bare: Jid): Promise<void> {
    const type = stanza.attrs.type ?? 'normal';
    const candidates = this.router.getSessions(bare.bareString()).filter((s) => s.available && s.priority >= 0);
    if (type === 'groupchat') return this.bounce(stanza, new StanzaError('service-unavailable'));
    if (candidates.length > 0) {
      if (type === 'headline') {
        for (const s of candidates) s.send(stanza);
        return;
      }
      // RFC 6121 §8.5.2.1.1: the highest-priority available resource(s).
      let top = -1;
      for (const s of candidates) if (s.priority > top) top = s.priority;
      for (const s of candidates) if (s.priority === top) s.send(stanza);
      return;
    }
    if (type === 'error' || type === 'headline') return;
    const exists = await this.storage.accounts.exists(bare.domain, bare.local);
    // RFC 6121 §8.5.2.2.1 / XEP-0160: store for later when a module offers offline storage.
    if (exists && this.offlineHandler && (await this.offlineHandler(stanza))) return;
    this.bounce(stanza, new StanzaError('service-unavailable'));
  }

  /** Returns an error to the sender, unless the stanza was itself an error (RFC 6120 §8.3.1). */
  bounce(stanza: Element, err: StanzaError): void {
    if (stanza.attrs.type === 'error' || stanza.attrs.from === undefined) return;
    const reply = errorReply(stanza, err);
    const from = reply.attrs.to;
    if (from === undefined) return;
    const session = this.router.getSession(from);
    if (session) session.send(reply);
  }
}
