// The session registry (RFC 6120 §7 bound resources; RFC 6121 §8.5 delivery
// looks resources up here). The server is given a Router (ServerOptions.router):
// router/local.ts keeps it in this process; a cluster implementation keeps a
// replica of every node's registry, so lookups stay synchronous and cost nothing
// per stanza, and forwards `send` on a remote session over the cluster bus.
//
// State changes go through the router (setPresence, setInterested), never by
// writing fields of a session object: a replicated registry must see every change.
import type { Element } from '../xml/element.js';
import type { LocalSession, Session } from './session.js';

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
  /** Removes a session; idempotent. */
  unregister(session: Session): void;
  getSession(fullJid: string): Session | undefined;
  /** All bound resources of an account, available or not. */
  getSessions(bareJid: string): readonly Session[];
  /** Records a session's presence: available with a priority, or unavailable. */
  setPresence(session: Session, change: PresenceChange): void;
  /** Records that the session asked for its roster (RFC 6121 §2.1.6). */
  setInterested(session: Session, interested: boolean): void;
  /** Number of bound sessions (for stats). */
  readonly size: number;
  /** Every bound session (for shutdown). */
  all(): Iterable<Session>;
}
