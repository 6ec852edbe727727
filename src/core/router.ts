// The session registry (RFC 6120 §7 bound resources; RFC 6121 §8.5 delivery
// looks resources up here). The server is given a Router (ServerOptions.router):
// router/local.ts keeps it in this process; a cluster implementation keeps a
// replica of every node's registry, so lookups stay synchronous and cost nothing
// per stanza, and forwards `send` on a remote session over the cluster bus.
//
// State changes go through the router (setPresence, setInterested), never by
// writing fields of a session object: a replicated registry must see every change.
import type { Element } from '../xml/element.js';
import type { Logger } from '../log/logger.js';
import type { Caches } from './cache.js';
import type { EndReason, LocalSession, Session } from './session.js';

/** A presence change of one session (RFC 6121 §4). */
export interface PresenceChange {
  /** The new broadcast presence (available), or undefined for unavailable. */
  presence: Element | undefined;
  /** RFC 6121 §4.7.2.3: the priority it carries; ignored when unavailable. */
  priority: number;
}

export interface Router {
  /** Whether this resource is bound for the bare JID right now (anywhere in the cluster). */
  hasResource(bare: string, resource: string): boolean;
  /**
   * Adds a bound session of this process; resolves false when the full JID is already taken
   * (the caller picks another resource or refuses the bind). May be asynchronous (a cluster
   * registry claims the resource cluster-wide).
   */
  register(session: LocalSession): Promise<boolean>;
  /** Removes a session; idempotent. `reason`: why it ended (other nodes hear it). */
  unregister(session: Session, reason?: EndReason): void;
  getSession(fullJid: string): Session | undefined;
  /** All bound resources of an account, available or not. */
  getSessions(bareJid: string): readonly Session[];
  /** Records a session's presence: available with a priority, or unavailable. */
  setPresence(session: Session, change: PresenceChange): void;
  /** Records that the session asked for its roster (RFC 6121 §2.1.6). */
  setInterested(session: Session, interested: boolean): void;
  /** Sets or clears a mark on the session (Session.marks) that every node sees. */
  setMark(session: Session, mark: string, on: boolean): void;
  /**
   * Where a stateful service entity lives (a MUC room, by its bare JID): the node that hosts it,
   * or undefined when that is this process (always, outside a cluster).
   */
  hostOf(key: string): NodeLink | undefined;
  /**
   * An external component (XEP-0114) for `domain` connected to this process (on) or left (off):
   * the other nodes of a cluster forward its stanzas here.
   */
  announceService(domain: string, on: boolean): void;
  /** The node the component for `domain` is connected to, when that is another node (undefined otherwise). */
  serviceNode(domain: string): NodeLink | undefined;
  /** Whether the session is one of this process's (false: another node's, seen through the registry). */
  isLocal(session: Session): boolean;
  /**
   * Stream management (XEP-0198): `stanza`, number `seq` of those written to the session, went
   * to its client, which has not acknowledged it yet. A cluster keeps a copy of a message outside
   * this process, so that it is not lost with the node: the node that cleans up after a dead one
   * re-routes the copies (RFC 6121 §8.5.3.2.1: another resource, offline storage).
   */
  retain(session: Session, seq: number, stanza: Element): void;
  /** The client acknowledged the stanzas up to number `upTo`; undefined: the session ended and what it held was handled. */
  release(session: Session, upTo: number | undefined): void;
  /** Starts the router with the hub it serves (a cluster joins and loads the registry). */
  start(hub: RouterHub): Promise<void>;
  /** Leaves (a cluster hands what was still on its way here to the hub); after the sessions ended. */
  stop(): Promise<void>;
  /** Number of bound sessions (for stats). */
  readonly size: number;
  /** Every bound session (for shutdown). */
  all(): Iterable<Session>;
}

/** Another node of the cluster, as this one sees it. */
export interface NodeLink {
  readonly name: string;
  /** Hands a stanza (with from and to) to that node, which delivers it there. */
  route(stanza: Element): void;
}

/** What a router needs from the hub (core/dispatcher.ts) it serves. */
export interface RouterHub {
  readonly log: Logger;
  /** Caches of stored data: a cluster invalidates keys other nodes changed. */
  readonly caches: Caches;
  /** Routes a stanza as any other (RFC 6120 §10): what a dead node's entities were sent goes where they live now. */
  route(stanza: Element): Promise<void>;
  /** Delivers a stanza another node forwarded here because this node hosts its entity (hostOf). */
  deliverHere(stanza: Element): Promise<void>;
  /** A stanza for a session that is gone: re-routed (another resource, offline storage) or bounced. */
  undeliverable(session: Session, stanza: Element): void;
  /**
   * A session of another node has left the registry. `adopted`: this node runs its end as if it
   * were its own ('session-ended': unavailable broadcast, room leave), because its node died and
   * this one won the clean-up; otherwise the other nodes only hear of it ('remote-session-ended').
   */
  remoteEnded(session: Session, reason: EndReason, adopted: boolean): void;
  /** The set of live nodes changed: stateful entities may now live elsewhere (hostOf). */
  clusterChanged(): void;
}
