// Session registry and local delivery (RFC 6120 §7 bound resources, RFC 6121 §8.5 delivery).
//
// Modules talk to the Router interface only. A cluster implementation keeps a
// replica of the registry of every node (so lookups stay synchronous and cost
// nothing per stanza) and forwards `send` on a remote session over the cluster
// bus; nothing above this file changes.
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { StreamError } from '../stream/errors.js';

/** One bound resource, local or (in a cluster) on another node. */
export interface Session {
  /** Unique for the life of the process (used as a map key and in logs). */
  readonly id: string;
  /** The full JID bound to the stream (RFC 6120 §7). */
  readonly jid: Jid;
  /** Whether the client has sent initial presence (RFC 6121 §4.2) and is not unavailable. */
  available: boolean;
  /** RFC 6121 §4.7.2.3: priority of the last available presence, 0 by default. */
  priority: number;
  /** The last available presence broadcast by this resource (without 'to'). */
  presence: Element | undefined;
  /** Whether the client asked for its roster (RFC 6121 §2.1.6 "interested resource"). */
  interested: boolean;
  /** Queues a stanza for this client. The stanza must already carry to/from. */
  send(stanza: Element): void;
  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void;
}

export interface Router {
  /** Whether this resource is bound for the bare JID right now. */
  hasResource(bare: string, resource: string): boolean;
  /** Adds a bound session; returns false when the full JID is already taken (caller picks another). */
  register(session: Session): boolean;
  /** Removes a session; idempotent. */
  unregister(session: Session): void;
  getSession(fullJid: string): Session | undefined;
  /** All bound resources of an account, available or not. */
  getSessions(bareJid: string): readonly Session[];
  /** Number of bound sessions (for stats). */
  readonly size: number;
  /** Every bound session (for shutdown). */
  all(): Iterable<Session>;
}

export class LocalRouter implements Router {
  private readonly byBare = new Map<string, Session[]>();
  private readonly byFull = new Map<string, Session>();

  get size(): number {
    return this.byFull.size;
  }

  hasResource(bare: string, resource: string): boolean {
    return this.byFull.has(bare + '/' + resource);
  }

  register(session: Session): boolean {
    const full = session.jid.toString();
    if (this.byFull.has(full)) return false;
    this.byFull.set(full, session);
    const bare = session.jid.bareString();
    const list = this.byBare.get(bare);
    if (list) list.push(session);
    else this.byBare.set(bare, [session]);
    return true;
  }

  unregister(session: Session): void {
    const full = session.jid.toString();
    if (this.byFull.get(full) !== session) return;
    this.byFull.delete(full);
    const bare = session.jid.bareString();
    const list = this.byBare.get(bare);
    if (!list) return;
    const i = list.indexOf(session);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byBare.delete(bare);
  }

  getSession(fullJid: string): Session | undefined {
    return this.byFull.get(fullJid);
  }

  getSessions(bareJid: string): readonly Session[] {
    return this.byBare.get(bareJid) ?? [];
  }

  all(): Iterable<Session> {
    return this.byFull.values();
  }
}
