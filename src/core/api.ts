// What the rest of the server sees of the hub (core/dispatcher.ts): stanza hooks
// on the sender's side and on the recipient's side, IQ handlers that return a
// payload or throw a StanzaError, outgoing filters every stanza to a client
// passes, chained handlers for what no session could take, service domains,
// events, caches that can be invalidated from outside, and routing.
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Router } from './router.js';
import type { EndReason, OutgoingFilter, Session } from './session.js';
import type { Caches } from './cache.js';
import type { StanzaError, StreamError } from './errors.js';
import type { HttpHandler } from './http.js';

export type { EndReason, OutgoingFilter } from './session.js';
export type { HttpHandler, HttpRequestInfo } from './http.js';

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
  /**
   * Runs `work` once the reply has been sent (the pushes a change causes follow its result,
   * RFC 6121 §2.1.6 example order; XEP-0191 §3.3). A failure is logged.
   */
  afterReply(work: () => Promise<void> | void): void;
}

/**
 * Returns the payload of the result (or nothing for an empty result);
 * throws a StanzaError for an error reply.
 */
export type IqHandler = (req: IqRequest) => Promise<Element | void> | Element | void;

/** Who an IQ handler answers for (RFC 6120 §10.3.3 / §10.5.3.1). */
export type IqTarget = 'server' | 'account';

export type StanzaKind = 'message' | 'presence' | 'iq';

/** A stanza on its way, with its addresses parsed once. */
export interface RoutedStanza {
  readonly stanza: Element;
  readonly kind: StanzaKind;
  /** The stamped sender. */
  readonly from: Jid;
  /**
   * The parsed 'to'. Undefined only on the sender's side, for what has none: presence
   * broadcast, or an IQ to the sender's own account (RFC 6120 §10.3.3); a message without
   * 'to' is addressed to the sender's bare JID before any hook runs (RFC 6120 §10.3.1).
   */
  readonly to: Jid | undefined;
  /** The local session it came from, when a client of this server sent it. */
  readonly session: Session | undefined;
}

/** A stanza with a recipient: what recipient-side hooks, services and undeliverable handlers get. */
export interface AddressedStanza extends RoutedStanza {
  readonly to: Jid;
}

/** Returns true when the stanza was fully handled and must not go further. */
export type StanzaHook = (s: RoutedStanza) => Promise<boolean | void> | boolean | void;
export type AddressedHook = (s: AddressedStanza) => Promise<boolean | void> | boolean | void;

/** Sees every stanza written to a client's connection, after the outgoing filters (stream management counts them). Synchronous. */
export type WriteObserver = (session: Session, stanza: Element) => void;

/** Sees a message the hub handed to local sessions: the sessions that got it (carbons copy it to the others). */
export type DeliveryObserver = (s: AddressedStanza, recipients: readonly Session[]) => void;

/** Whether the server may show `from`'s presence to `to` (false: they must not see each other). */
export type DeliveryFilter = (from: Jid, to: Jid) => Promise<boolean> | boolean;

/** Asked when a session loses its connection: true keeps the session for a new connection. */
export type DetachHook = (session: Session, reason: EndReason) => boolean;

/** Handles a top-level element of another namespace than the stanzas' on a bound client stream (XEP-0198 acks, XEP-0352 states). */
export type NonzaHandler = (session: Session, element: Element) => Promise<void> | void;

/** An authenticated client stream that has not bound a resource yet. */
export interface UnboundStream {
  /** The authenticated account (a bare JID). */
  readonly account: Jid;
  /** Writes a top-level element (a nonza) to the client. */
  writeNonza(el: Element): void;
  /**
   * Makes this stream carry an existing session of this account (XEP-0198 resumption) instead
   * of binding a new one; a connection still carrying it is closed with a conflict stream error.
   * False when that cannot be (another account's session, an ended one, a closed stream).
   */
  adopt(session: Session): boolean;
  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void;
}

/** Handles a top-level element of another namespace on an authenticated stream before binding (XEP-0198 resume). */
export type PreBindHandler = (stream: UnboundStream, element: Element) => Promise<void> | void;

export interface ServerEvents {
  /** A resource was bound (RFC 6120 §7). */
  'session-bound': (session: Session) => void;
  /** A bound session is gone, for whatever reason; emitted exactly once per session, after it left the registry. */
  'session-ended': (session: Session, reason: EndReason) => void;
  /** A session sent its initial presence (RFC 6121 §4.2): time to deliver what waited for it. */
  'initial-presence': (session: Session) => void;
  /** A session whose client had fallen behind has read its backlog: what was kept for it can follow. */
  'session-drained': (session: Session) => void;
  /** A session that had lost its connection is carried by a new one again (XEP-0198 resumption). */
  'session-resumed': (session: Session) => void;
  /** A client was silent for timeouts.ping_after; its connection pings it next. */
  'session-idle': (session: Session) => void;
  /**
   * The server is stopping: every client stream is about to end with system-shutdown (RFC 6120
   * §4.9.3.22). What a module routes now still reaches the clients first (XEP-0045 §15.6.2: the
   * rooms tell their occupants with status 332).
   */
  'server-stopping': () => void;
  /**
   * Cluster: a session of another node ended ('session-ended' ran on the node that held it, or
   * on the one that cleaned up after that node died). Modules that keep state here for sessions
   * of every node drop it (a room hosted here takes the user out).
   */
  'remote-session-ended': (session: Session, reason: EndReason) => void;
  /**
   * Cluster: the set of live nodes changed, so some stateful entities (rooms) now belong to
   * another node (router.hostOf): a service lets go of those it no longer hosts.
   */
  'cluster-changed': () => void;
}

/** Handles every stanza routed to a service domain (and, with `subdomains`, to its subdomains). */
export type ServiceHandler = (s: AddressedStanza) => Promise<void> | void;

export interface ServiceOptions {
  /** Also route stanzas for subdomains of the domain here (XEP-0114 components). */
  subdomains?: boolean;
  /** A human-readable name for disco#items (XEP-0030 §4.1). */
  name?: string;
  /**
   * In a cluster, each entity of the service (a bare JID under the domain: a MUC room) lives on
   * one node (router.hostOf), and stanzas for it are forwarded there. Stanzas for the domain
   * itself are handled on any node.
   */
  placed?: boolean;
}

export interface ServiceInfo {
  readonly domain: string;
  readonly name: string | undefined;
}

export interface ServerApi {
  readonly config: Config;
  readonly log: Logger;
  readonly router: Router;
  readonly caches: Caches;
  /** The served account domains (config.hosts). */
  readonly hosts: readonly string[];
  /** Whether the domain is one of our account hosts. */
  isLocalDomain(domain: string): boolean;

  handleIq(target: IqTarget, xmlns: string, type: 'get' | 'set', handler: IqHandler): void;
  /** Adds a disco#info feature for the server or for accounts (XEP-0030). */
  addFeature(target: IqTarget, feature: string): void;
  features(target: IqTarget): readonly string[];
  /** Adds an element to the stream features offered after authentication (RFC 6120 §4.3.2). */
  addStreamFeature(feature: Element): void;
  /** Handles top-level elements of `xmlns` that a bound client sends (anything else is unsupported-stanza-type). */
  handleNonza(xmlns: string, handler: NonzaHandler): void;
  /** Handles top-level elements of `xmlns` on an authenticated stream before it binds a resource. */
  handlePreBindNonza(xmlns: string, handler: PreBindHandler): void;

  /**
   * Sender's side: hooks run, highest priority first, on every stanza of this kind a local
   * client sends, before it is handled or routed.
   */
  hookOutbound(kind: StanzaKind, hook: StanzaHook, priority: number): void;
  /**
   * Recipient's side: hooks run, highest priority first, on every stanza of this kind addressed
   * to a local account (bare or full JID), whoever sent it: a client, a module, a component.
   */
  hookInbound(kind: StanzaKind, hook: AddressedHook, priority: number): void;
  /**
   * Chained handlers, highest priority first, for a stanza addressed to an existing local
   * account that no session can take (RFC 6121 §8.5.2.2: no available resource; or the session
   * it was handed to lost its connection). The first to return true keeps it (offline storage;
   * later the archive, push); when none does, the sender gets service-unavailable.
   */
  hookUndeliverable(hook: AddressedHook, priority: number): void;
  /** Adds a filter that every stanza to every client session passes (see OutgoingFilter). */
  addOutgoingFilter(filter: OutgoingFilter, priority: number): void;
  /** Asked, highest priority first, when a session loses its connection (stream resumption keeps it). */
  hookDetach(hook: DetachHook, priority: number): void;
  /** Adds an observer of every stanza written to a client's connection. */
  observeWritten(observer: WriteObserver): void;
  /** Adds an observer of every message the hub hands to local sessions of its recipient's account. */
  observeDelivered(observer: DeliveryObserver): void;

  /**
   * Adds a privacy rule consulted before the server itself sends one entity's presence to
   * another (broadcasts, probe answers): false means the two must not see each other.
   */
  addDeliveryFilter(filter: DeliveryFilter): void;
  /** Whether `from` may be shown to `to` under every delivery filter. */
  mayExchange(from: Jid, to: Jid): Promise<boolean>;

  /**
   * Routes every stanza for `domain` (not an account host) to `handler`: a module's service
   * (group chat, upload) or an external component. Returns the function that unregisters it.
   * Throws when the domain is an account host or already has a service.
   */
  registerService(domain: string, handler: ServiceHandler, options?: ServiceOptions): () => void;
  /** The services under a served host (their domain ends with '.' + host), for its disco#items. */
  services(host: string): readonly ServiceInfo[];

  /**
   * Serves the HTTP requests whose path starts with `prefix` ('/name/') on every HTTP listener
   * (XEP-0363 uploads). Returns the function that removes the route.
   */
  handleHttp(prefix: string, handler: HttpHandler): () => void;
  /** The base URL (no trailing slash) clients reach the HTTP listeners at for `host`; undefined before they listen or without one. */
  httpBaseUrl(host: string): string | undefined;

  on<E extends keyof ServerEvents>(event: E, listener: ServerEvents[E]): void;
  /** Tells every listener of the event; a failing listener is logged and does not stop the others. */
  emit<E extends keyof ServerEvents>(event: E, ...args: Parameters<ServerEvents[E]>): void;
  /**
   * Delivers a stanza that already carries 'from' and 'to' (RFC 6120 §10, RFC 6121 §8.5),
   * through the recipient's side hooks.
   */
  route(stanza: Element): Promise<void>;
  /** route() with the addresses already parsed. */
  routeTo(stanza: Element, from: Jid, to: Jid): Promise<void>;
  /** Returns an error to the sender, unless the stanza was itself an error (RFC 6120 §8.3.1). */
  bounce(stanza: Element, error: StanzaError): void;
  /**
   * A stanza a session took but could not deliver (RFC 6121 §8.5.3.2.1, as for a resource that
   * is gone): a message goes to another resource or the undeliverable hooks (offline storage),
   * an IQ request is answered service-unavailable, the rest is dropped.
   */
  undeliverable(session: Session, stanza: Element): void;
  /** Sends an IQ from the server to a local session and resolves with the response (or rejects on timeout). */
  sendIq(session: Session, iq: Element, timeoutMs: number): Promise<Element>;
  /**
   * Routes an IQ request from the server: 'from' is one of our domains, 'to' any entity (a
   * service, a component); resolves with the result or error reply from 'to', or rejects on
   * timeout (or at once for such addresses). An id is set when the IQ has none.
   */
  requestIq(iq: Element, timeoutMs: number): Promise<Element>;
  /** Runs `work` as server work that shutdown waits for; a failure is logged. */
  track(work: Promise<unknown>, what: string): void;
}
