// What a feature module sees of the server. Modules register handlers here and
// reach sessions and data only through the Router and Storage interfaces.
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { Router, Session } from '../router/router.js';
import type { Storage } from '../storage/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

export interface IqRequest {
  /** The whole IQ, with 'from' stamped by the server. */
  stanza: Element;
  /** The single child element (RFC 6120 §8.2.3). */
  payload: Element;
  type: 'get' | 'set';
  from: Jid;
  /** The addressed entity: the server's domain or an account's bare JID (the sender's own when 'to' was absent). */
  to: Jid;
  /** The local session the IQ came from, when it came from a client of this server. */
  session: Session | undefined;
}

/**
 * Returns the payload of the result (or nothing for an empty result);
 * throws a StanzaError for an error reply.
 */
export type IqHandler = (req: IqRequest) => Promise<Element | void> | Element | void;

/** Who an IQ handler answers for (RFC 6120 §10.3.3 / §10.5.3.1). */
export type IqTarget = 'server' | 'account';

/** Returns true when the stanza was fully handled and must not be routed further. */
export type StanzaHook = (stanza: Element, from: Session | undefined) => Promise<boolean> | boolean;

export type DeliveryFilter = (from: Jid, to: Jid) => Promise<boolean> | boolean;

export type EndReason = 'logout' | 'disconnect' | 'timeout' | 'error' | 'shutdown' | 'conflict';

export interface ServerEvents {
  /** A resource was bound (RFC 6120 §7). */
  'session-bound': (session: Session) => void;
  /** A bound session is gone, for whatever reason; emitted exactly once per session. */
  'session-ended': (session: Session, reason: EndReason) => void;
  /** A session sent its initial presence (RFC 6121 §4.2): time to deliver what waited for it. */
  'initial-presence': (session: Session) => void;
}

export interface ServerApi {
  readonly config: Config;
  readonly log: Logger;
  readonly storage: Storage;
  readonly router: Router;
  /** Whether the domain is one of ours. */
  isLocalDomain(domain: string): boolean;
  handleIq(target: IqTarget, xmlns: string, type: 'get' | 'set', handler: IqHandler): void;
  /** Adds a disco#info feature for the server or for accounts (XEP-0030). */
  addFeature(target: IqTarget, feature: string): void;
  features(target: IqTarget): readonly string[];
  /** Adds an element to the stream features offered after authentication (RFC 6120 §4.3.2). */
  addStreamFeature(feature: Element): void;
  /** Hooks run, in registration order, before the default routing of a stanza. */
  hookMessage(hook: StanzaHook): void;
  hookPresence(hook: StanzaHook): void;
  /**
   * Hooks run, in registration order, for an IQ a client addresses to another entity (any 'to'
   * other than the server's domain and the client's own bare JID), before it is handled or routed.
   */
  hookIq(hook: StanzaHook): void;
  /**
   * Adds a privacy rule consulted before the server itself sends one entity's presence to
   * another (broadcasts, probe answers): false means the two must not see each other.
   */
  addDeliveryFilter(filter: DeliveryFilter): void;
  /** Whether `from` may be shown to `to` under every delivery filter. */
  mayExchange(from: Jid, to: Jid): Promise<boolean>;
  /** Called for a chat/normal message to a bare JID with no available resource (RFC 6121 §8.5.2.2). */
  setOfflineHandler(handler: (stanza: Element) => Promise<boolean>): void;
  on<E extends keyof ServerEvents>(event: E, listener: ServerEvents[E]): void;
  /** Tells every listener of the event; a failing listener is logged and does not stop the others. */
  emit<E extends keyof ServerEvents>(event: E, ...args: Parameters<ServerEvents[E]>): void;
  /** Delivers a stanza that already carries 'from' and 'to' (RFC 6120 §10, RFC 6121 §8.5). */
  route(stanza: Element): Promise<void>;
  /** Sends an IQ from the server to a local session and resolves with the response (or rejects on timeout). */
  sendIq(session: Session, iq: Element, timeoutMs: number): Promise<Element>;
}

export interface Module {
  readonly name: string;
  register(server: ServerApi): void;
}
