// A client's session (RFC 6120 §7: a bound resource) is not its connection: the
// stream that negotiated it (TCP now; WebSocket, BOSH and a resumed stream later)
// attaches to it and may go away while the session lives on. Everything the
// server sends a client goes through `send()`, which runs the server's ordered
// outgoing filters (stream management, CSI, carbons, archiving add theirs) and
// reports a stanza that could not be handed to an open connection to the hub,
// which re-routes it (another resource, offline storage) instead of dropping it.
import { sessionUuid } from './ids.js';
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { StreamError } from './errors.js';

/**
 * Why a session ended. 'node-failure': the cluster node that held it stopped answering, and
 * another node ended it for it.
 */
export type EndReason = 'logout' | 'disconnect' | 'timeout' | 'error' | 'shutdown' | 'conflict' | 'node-failure';

/** The marks of a session that has none (shared, never changed). */
export const NO_MARKS: ReadonlySet<string> = new Set<string>();

/** `marks` with `mark` set or cleared (a new set: a session's marks are never changed in place). */
export function withMark(marks: ReadonlySet<string>, mark: string, on: boolean): ReadonlySet<string> {
  const next = new Set(marks);
  if (on) next.add(mark);
  else next.delete(mark);
  return next;
}

/**
 * What the session registry knows of a session besides its address: presence (RFC 6121 §4)
 * and roster interest (§2.1.6). Only the router changes it (Router.setPresence and
 * Router.setInterested), so a replicated registry sees every change.
 */
export interface SessionState {
  /** Whether the client has sent initial presence (RFC 6121 §4.2) and is not unavailable. */
  readonly available: boolean;
  /** RFC 6121 §4.7.2.3: priority of the last available presence, 0 by default. */
  readonly priority: number;
  /** The last available presence broadcast by this resource (without 'to'). */
  readonly presence: Element | undefined;
  /** Whether the client asked for its roster (RFC 6121 §2.1.6 "interested resource"). */
  readonly interested: boolean;
  /**
   * What modules marked on the session for other parts of the server (and other nodes) to see,
   * e.g. XEP-0280 carbons enabled: set through Router.setMark.
   */
  readonly marks: ReadonlySet<string>;
}

/**
 * Runs on every stanza handed to a local client session, in priority order: returns the
 * stanza to write (the same or another), or null when the filter took it (held or dropped
 * on purpose). Synchronous: it runs on every stanza to every client.
 */
export type OutgoingFilter = (session: Session, stanza: Element) => Element | null;

/** One bound resource, of this process or (in a cluster) of another node. */
export interface Session extends SessionState {
  /** Unique for the life of the process (used as a map key and in logs). */
  readonly id: string;
  /** The full JID bound to the stream (RFC 6120 §7). */
  readonly jid: Jid;
  /**
   * Whether a connection carries the session now; false while stream management (XEP-0198)
   * keeps it for the client to resume.
   */
  readonly attached: boolean;
  /**
   * Stanzas received from the client and handled so far (in order, RFC 6120 §10.1): what
   * XEP-0198 acknowledges. Counted across resumptions.
   */
  readonly handledCount: number;
  /**
   * Hands a stanza (already carrying to/from) to this client through the outgoing filters.
   * Returns true when it was written to an open connection or taken by a filter; false when
   * it could not be, in which case it has gone to the hub's undeliverable handling, never lost.
   * `after`: a filter that held this stanza and now releases it: only the filters after it run.
   */
  send(stanza: Element, after?: OutgoingFilter): boolean;
  /**
   * Writes an element straight to the current connection, past the outgoing filters and the
   * write observers: stream management's own elements (acks) and its retransmissions. False
   * when no open connection carries the session.
   */
  writeDirect(el: Element): boolean;
  /**
   * Like send(), but a stanza that cannot be handed to an open connection is not re-routed:
   * false, and the caller keeps it (offline storage removes a message only once it went out).
   */
  trySend(stanza: Element): boolean;
  /**
   * True when more can be sent now; otherwise a promise that resolves true once the client has
   * read enough of what was sent, false when the session ended first. Whoever sends a lot to one
   * client (offline storage, history) paces itself on it.
   */
  writable(): true | Promise<boolean>;
  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void;
}

/** A session of this process, as the router sees it: the router alone applies state changes. */
export interface LocalSession extends Session {
  /** Called by the Router only (Router.setPresence/setInterested); modules never call it. */
  applyState(change: Partial<SessionState>): void;
  /** Ends the session whether or not a connection carries it (a cluster node that was declared dead). */
  end(reason: EndReason): void;
}

/** What carries a session's stanzas to the client: one stream over one transport. */
export interface SessionConnection {
  /** Writes a stanza; false when this connection can no longer carry it (closing or closed). */
  write(stanza: Element): boolean;
  /** Closes the stream, with a stream error when given; the connection then detaches. */
  close(error?: StreamError): void;
  /**
   * Whether the client is not reading what was written (its output buffer is over the limit):
   * the session then takes nothing more from others until it drains (congestion()).
   */
  readonly congested: boolean;
  /** Resolves true when the output buffer has drained (at once when not congested), false when the connection closed first. */
  drained(): Promise<boolean>;
}

/** What a session needs from the server around it (the hub implements it). */
export interface SessionHost {
  /**
   * Runs the outgoing filters in order (only those after `after`, when given); null when a
   * filter took the stanza (held or dropped on purpose).
   */
  filterOutgoing(session: Session, stanza: Element, after?: OutgoingFilter): Element | null;
  /** A stanza was written to the session's connection (stream management counts it). */
  written(session: Session, stanza: Element): void;
  /** The client has been silent for a while; the connection pings it next (stream management asks for an ack first). */
  idle(session: Session): void;
  /** A stanza the session could not hand to a connection: re-route it, store it or bounce it. */
  undeliverable(session: Session, stanza: Element): void;
  /**
   * A stanza from someone else for a session whose client is not reading (its connection is
   * congested): kept elsewhere, held or refused, never pushed into the full buffer, so one
   * sender's flood cannot get the reader disconnected (nor grow the server's memory).
   */
  congested(session: Session, stanza: Element): void;
  /** A congested session's connection drained: what was held for it can follow. */
  drained(session: Session): void;
  /** The session's connection went away: true when something keeps the session for a new one (resumption). */
  keepDetached(session: Session, reason: EndReason): boolean;
  /** The session ended; called once. */
  ended(session: Session, reason: EndReason): void;
}

/** A client's session, with its connection attached to it (or, while detached, none). */
export class ClientSession implements LocalSession {
  readonly id = sessionUuid();
  private state: SessionState = { available: false, priority: 0, presence: undefined, interested: false, marks: NO_MARKS };
  private connection: SessionConnection | undefined;
  private endedWith: EndReason | undefined;
  private handled = 0;

  constructor(
    private readonly host: SessionHost,
    readonly jid: Jid,
    connection: SessionConnection,
  ) {
    this.connection = connection;
  }

  /** Whether the session has ended (it is then out of the registry and delivers nothing). */
  get ended(): boolean {
    return this.endedWith !== undefined;
  }

  get attached(): boolean {
    return this.connection !== undefined;
  }

  get handledCount(): number {
    return this.handled;
  }

  /** The connection handled one more stanza from the client. */
  countHandled(): void {
    this.handled++;
  }

  get available(): boolean {
    return this.state.available;
  }

  get priority(): number {
    return this.state.priority;
  }

  get presence(): Element | undefined {
    return this.state.presence;
  }

  get interested(): boolean {
    return this.state.interested;
  }

  get marks(): ReadonlySet<string> {
    return this.state.marks;
  }

  applyState(change: Partial<SessionState>): void {
    this.state = { ...this.state, ...change };
  }

  send(stanza: Element, after?: OutgoingFilter): boolean {
    if (this.endedWith === undefined) {
      const out = this.host.filterOutgoing(this, stanza, after);
      if (out === null) return true;
      const conn = this.connection;
      if (conn?.congested && this.isFromOthers(out)) {
        this.host.congested(this, out);
        return false;
      }
      if (conn?.write(out)) {
        this.host.written(this, out);
        return true;
      }
      this.host.undeliverable(this, out);
      return false;
    }
    this.host.undeliverable(this, stanza);
    return false;
  }

  trySend(stanza: Element): boolean {
    if (this.endedWith !== undefined) return false;
    const out = this.host.filterOutgoing(this, stanza);
    if (out === null) return true;
    const conn = this.connection;
    if (!conn || (conn.congested && this.isFromOthers(out))) return false;
    if (!conn.write(out)) return false;
    this.host.written(this, out);
    return true;
  }

  writeDirect(el: Element): boolean {
    return this.endedWith === undefined && this.connection !== undefined && this.connection.write(el);
  }

  writable(): true | Promise<boolean> {
    const conn = this.connection;
    if (this.endedWith !== undefined || !conn) return Promise.resolve(false);
    return conn.congested ? conn.drained() : true;
  }

  /** The connection drained after being congested (called by the connection). */
  onDrained(): void {
    if (this.endedWith === undefined) this.host.drained(this);
  }

  /**
   * Whether a stanza comes from another entity than the user's own account and server: what a
   * client did not ask for, which a congested session does not take.
   */
  private isFromOthers(stanza: Element): boolean {
    const from = stanza.attrs.from;
    if (from === undefined || from === this.jid.domain) return false;
    const bare = this.jid.bareString();
    return !(from === bare || (from.startsWith(bare) && from.charCodeAt(bare.length) === 47)); // '/'
  }

  close(error?: StreamError): void {
    if (this.connection) this.connection.close(error);
    else this.end(error?.condition === 'system-shutdown' ? 'shutdown' : 'disconnect');
  }

  /**
   * A (new) connection carries the session from now on (XEP-0198 resumption). Returns the one
   * it replaces, if any, which the caller closes: its end no longer ends the session.
   */
  attach(connection: SessionConnection): SessionConnection | undefined {
    const previous = this.connection;
    this.connection = connection;
    return previous;
  }

  /**
   * The connection is gone (closed by either side, or lost). The session ends with it unless
   * the host keeps it for a new connection (stream resumption).
   */
  detach(connection: SessionConnection, reason: EndReason): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    if (this.endedWith !== undefined) return;
    if (!this.host.keepDetached(this, reason)) this.end(reason);
  }

  /** Ends the session: out of the registry, 'session-ended' emitted. Runs once. */
  end(reason: EndReason): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = reason;
    this.connection = undefined;
    this.host.ended(this, reason);
  }
}
