// XEP-0198 stream management: acks both ways, and resumption of a session whose
// connection dropped. The session (core/session.ts) outlives its connection; this
// module keeps it for `resume_timeout` seconds ("hibernating") when an unfinished
// stream ends, queues what is sent to it meanwhile, and lets a new connection of
// the same account adopt it with <resume/>. Nothing the server accepted for the
// client is lost: every stanza written or queued stays here until the client
// acknowledges it; when the session ends without that (no resume in time, a
// client that never acks, shutdown) the unacknowledged messages go where a
// message for a gone resource goes (another resource, else offline storage).
import { randomBytes } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { ServerApi, UnboundStream } from '../../core/api.js';
import type { EndReason, Session } from '../../core/session.js';
import { StreamError } from '../../core/errors.js';
import { Priority } from '../../core/hooks.js';
import type { Module } from '../api.js';
import type { StreamManagementApi } from './api.js';

export const NS_SM = 'urn:xmpp:sm:3';
/** XEP-0203 */
const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0198 §4: 'h' is an unsignedInt and wraps from 2^32-1 to 0. */
const H_MOD = 2 ** 32;
/** Sessions that ended while resumable, remembered so that a late <resume/> learns its 'h' (XEP-0198 §5). */
const MAX_TOMBSTONES = 10_000;

interface Entry {
  readonly stanza: Element;
  /** When the server first handed it to the session (ms), for the XEP-0203 stamp of a retransmission. */
  readonly at: number;
}

interface SmState {
  readonly session: Session;
  /** The SM-ID, for resumption; undefined when the client did not ask for it (or it is off). */
  readonly id: string | undefined;
  /** session.handledCount when stream management was enabled: 'h' for the client's stanzas counts from here. */
  readonly base: number;
  /** Stanzas sent (or, while hibernating, queued) and not yet acknowledged, oldest first. */
  queue: Entry[];
  /** Stanzas the client has acknowledged, in all (the number of the queue's first entry minus one). */
  acked: number;
  /** An <r/> is outstanding. */
  awaitingAck: boolean;
  /** Set when this module itself ends the stream: the session must not hibernate then. */
  ending: boolean;
  /** While hibernating: when the window closes. */
  timer: NodeJS.Timeout | undefined;
}

interface Tombstone {
  readonly account: string;
  readonly h: number;
  readonly until: number;
}

function failed(condition: string, h?: number): Element {
  return x('failed', NS_SM, h === undefined ? {} : { h: String(h) }, x(condition, NS.STANZA_ERRORS));
}

/** XEP-0198 §4: a non-negative integer below 2^32, or undefined. */
function parseH(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const h = Number(value);
  return h < H_MOD ? h : undefined;
}

export class StreamManagement {
  private readonly states = new Map<Session, SmState>();
  private readonly byId = new Map<string, SmState>();
  private readonly tombstones = new Map<string, Tombstone>();

  constructor(private readonly server: ServerApi) {}

  private get cfg() {
    return this.server.config.stream_management;
  }

  start(): void {
    const server = this.server;
    if (!this.cfg.enabled) return;
    // XEP-0198 §2: offered with bind, after authentication.
    server.addStreamFeature(x('sm', NS_SM));
    server.handleNonza(NS_SM, (session, el) => this.nonza(session, el));
    server.handlePreBindNonza(NS_SM, (stream, el) => this.preBind(stream, el));
    // Counts what was really written to the connection, after every other filter (CSI holds
    // stanzas before this point: they count once they go out).
    server.observeWritten((session, stanza) => this.written(session, stanza));
    // While hibernating, what is sent to the session waits here for the resume.
    server.addOutgoingFilter((session, stanza) => this.whileDetached(session, stanza), Priority.LAST);
    server.hookDetach((session, reason) => this.detached(session, reason), Priority.DEFAULT);
    server.on('session-ended', (session, reason) => this.ended(session, reason));
    // Before the idle ping, an ack request: it also tells the client what we still hold.
    server.on('session-idle', (session) => {
      const st = this.states.get(session);
      if (st) this.requestAck(st, true);
    });
  }

  /** Ends the hibernating sessions (shutdown): their unacknowledged messages go to offline storage now. */
  stop(): void {
    for (const st of [...this.states.values()]) if (!st.session.attached) st.session.close(new StreamError('system-shutdown'));
  }

  /** Whether the session has stream management enabled. */
  enabled(session: Session): boolean {
    return this.states.has(session);
  }

  /** Stanzas the client has not acknowledged yet. */
  unacked(session: Session): number {
    return this.states.get(session)?.queue.length ?? 0;
  }

  // --- Client elements -------------------------------------------------------------------

  private nonza(session: Session, el: Element): void {
    const st = this.states.get(session);
    switch (el.name) {
      case 'enable':
        // XEP-0198 §3: at most one enable per stream.
        if (st) session.writeDirect(failed('unexpected-request'));
        else this.enable(session, el);
        return;
      case 'r':
        // XEP-0198 §4: answered at once with what was handled so far (processing is in order,
        // so every stanza before this <r/> is counted).
        if (st) session.writeDirect(x('a', NS_SM, { h: String(this.inboundH(st)) }));
        return;
      case 'a':
        if (st) this.ack(st, el.attrs.h);
        return;
      case 'resume':
        // XEP-0198 §5: resumption replaces binding; this stream is already bound.
        session.writeDirect(failed('unexpected-request'));
        return;
      default:
        throw new StreamError('unsupported-stanza-type', `<${el.name}/> in ${NS_SM}`);
    }
  }

  private enable(session: Session, el: Element): void {
    const wantsResume = el.attrs.resume === 'true' || el.attrs.resume === '1';
    const timeout = this.cfg.resume_timeout;
    const resumable = wantsResume && timeout > 0;
    // XEP-0198 §5: the SM-ID is opaque and never reused; unguessable, since it is a capability.
    const id = resumable ? randomBytes(18).toString('base64url') : undefined;
    const st: SmState = { session, id, base: session.handledCount, queue: [], acked: 0, awaitingAck: false, ending: false, timer: undefined };
    this.states.set(session, st);
    if (id) this.byId.set(id, st);
    const attrs: Record<string, string> = {};
    if (id) {
      attrs.id = id;
      attrs.resume = 'true';
      const asked = parseH(el.attrs.max);
      attrs.max = String(asked !== undefined && asked > 0 ? Math.min(asked, timeout) : timeout);
      if (this.cfg.location) attrs.location = this.cfg.location;
    }
    // XEP-0198 §4: our count of sent stanzas starts once <enabled/> is out.
    session.writeDirect(x('enabled', NS_SM, attrs));
    this.server.log.debug({ event: 'sm-enabled', jid: session.jid.toString(), resumable }, 'stream management enabled');
  }

  private preBind(stream: UnboundStream, el: Element): void {
    if (el.name === 'resume') return this.resume(stream, el);
    // XEP-0198 §3: enabling before binding (other than by resuming) is refused.
    if (el.name === 'enable') return stream.writeNonza(failed('unexpected-request'));
    throw new StreamError('not-authorized', 'bind a resource first');
  }

  private inboundH(st: SmState): number {
    return (st.session.handledCount - st.base) % H_MOD;
  }

  /** XEP-0198 §4: the client handled everything up to 'h': those leave the queue. */
  private ack(st: SmState, value: string | undefined): void {
    st.awaitingAck = false;
    this.applyH(st, value);
  }

  /**
   * Drops what the client says it handled. False (after closing the stream) when 'h' is not a
   * number or acknowledges more than was sent (XEP-0198 §6: handled-count-too-high).
   */
  private applyH(st: SmState, value: string | undefined, close: (e: StreamError) => void = (e) => st.session.close(e)): boolean {
    const h = parseH(value);
    if (h === undefined) {
      st.ending = true;
      close(new StreamError('invalid-xml', "'h' must be an unsigned integer"));
      return false;
    }
    const count = (h - (st.acked % H_MOD) + H_MOD) % H_MOD;
    if (count > st.queue.length) {
      const sent = (st.acked + st.queue.length) % H_MOD;
      st.ending = true;
      close(
        new StreamError('undefined-condition', `you acknowledged ${h} stanzas, but only ${sent} were sent`, x('handled-count-too-high', NS_SM, { h: String(h), 'send-count': String(sent) })),
      );
      return false;
    }
    if (count > 0) {
      st.queue = count === st.queue.length ? [] : st.queue.slice(count);
      st.acked += count;
      this.server.router.release(st.session, st.acked);
    }
    return true;
  }

  private requestAck(st: SmState, force = false): void {
    if (st.awaitingAck && !force) return;
    if (st.session.writeDirect(x('r', NS_SM))) st.awaitingAck = true;
  }

  // --- What the server sends -----------------------------------------------------------------

  private written(session: Session, stanza: Element): void {
    const st = this.states.get(session);
    if (!st) return;
    st.queue.push({ stanza, at: Date.now() });
    this.server.router.retain(session, st.acked + st.queue.length, stanza);
    if (this.overflowing(st)) return;
    if (st.queue.length >= this.cfg.request_every) this.requestAck(st);
  }

  /** A stanza for a session that hibernates: kept for the resume (or offline storage). */
  private whileDetached(session: Session, stanza: Element): Element | null {
    if (session.attached) return stanza;
    const st = this.states.get(session);
    if (!st) return stanza;
    st.queue.push({ stanza, at: Date.now() });
    this.server.router.retain(session, st.acked + st.queue.length, stanza);
    this.overflowing(st);
    return null;
  }

  /**
   * A client that does not acknowledge (or a hibernating session that keeps receiving) must not
   * make us hold without bound: the session ends and what it held goes to offline storage.
   */
  private overflowing(st: SmState): boolean {
    if (st.queue.length <= this.cfg.max_unacked || st.ending) return false;
    st.ending = true;
    this.server.log.info({ event: 'sm-overflow', jid: st.session.jid.toString(), unacked: st.queue.length }, 'too many unacknowledged stanzas: session ended');
    // Deferred: this runs inside a send, which must finish before the session ends under it.
    queueMicrotask(() => st.session.close(new StreamError('policy-violation', `more than ${this.cfg.max_unacked} unacknowledged stanzas`)));
    return true;
  }

  // --- Hibernation and resumption ---------------------------------------------------------------

  /** XEP-0198 §7: a stream that did not end cleanly keeps its session for the resume window. */
  private detached(session: Session, reason: EndReason): boolean {
    const st = this.states.get(session);
    if (!st?.id || st.ending || reason === 'logout' || reason === 'shutdown' || reason === 'conflict') return false;
    st.awaitingAck = false;
    st.timer = setTimeout(() => {
      st.timer = undefined;
      this.server.log.info({ event: 'sm-expired', jid: session.jid.toString() }, 'session not resumed in time');
      session.close(new StreamError('connection-timeout'));
    }, this.cfg.resume_timeout * 1000);
    st.timer.unref();
    this.server.log.info({ event: 'sm-hibernate', jid: session.jid.toString(), reason, unacked: st.queue.length }, 'connection lost: session kept for resumption');
    return true;
  }

  private resume(stream: UnboundStream, el: Element): void {
    const previd = el.attrs.previd ?? '';
    const account = stream.account.toString();
    const st = this.byId.get(previd);
    // Another account's session is answered as unknown: whether an SM-ID exists is not told.
    if (!st || st.session.jid.bareString() !== account) {
      const tomb = this.tombstone(previd);
      if (st) this.server.log.warn({ event: 'sm-resume-refused', account, jid: st.session.jid.toString() }, "refused to resume another account's session");
      // XEP-0198 §5: item-not-found, with the 'h' of a session that timed out when known.
      stream.writeNonza(failed('item-not-found', tomb?.account === account ? tomb.h : undefined));
      return;
    }
    if (!this.applyH(st, el.attrs.h, (e) => stream.close(e))) return;
    const { session } = st;
    if (!stream.adopt(session)) {
      stream.writeNonza(failed('item-not-found'));
      return;
    }
    if (st.timer) clearTimeout(st.timer);
    st.timer = undefined;
    st.awaitingAck = false;
    session.writeDirect(x('resumed', NS_SM, { previd, h: String(this.inboundH(st)) }));
    // XEP-0198 §5: retransmit what the client did not handle, stamped with when it was first
    // sent (XEP-0198 §4, XEP-0203), in order; it keeps its numbers, so it stays in the queue.
    const domain = session.jid.domain;
    for (const entry of st.queue) {
      if (!session.writeDirect(stamped(entry, domain))) break;
    }
    this.server.log.info({ event: 'sm-resumed', jid: session.jid.toString(), retransmitted: st.queue.length }, 'session resumed');
    if (st.queue.length > 0) this.requestAck(st);
    this.server.emit('session-resumed', session);
  }

  private tombstone(id: string): Tombstone | undefined {
    const t = this.tombstones.get(id);
    if (t && t.until < Date.now()) {
      this.tombstones.delete(id);
      return undefined;
    }
    return t;
  }

  /**
   * The session is over: what the client never acknowledged is treated as sent to a resource that
   * is gone (XEP-0198 §4; RFC 6121 §8.5.3.2.1): messages to another resource or offline storage.
   */
  private ended(session: Session, reason: EndReason): void {
    const st = this.states.get(session);
    if (!st) return;
    this.states.delete(session);
    if (st.timer) clearTimeout(st.timer);
    if (st.id) {
      this.byId.delete(st.id);
      if (reason !== 'logout') {
        if (this.tombstones.size >= MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value as string);
        this.tombstones.set(st.id, { account: session.jid.bareString(), h: this.inboundH(st), until: Date.now() + this.cfg.resume_timeout * 1000 });
      }
    }
    this.server.router.release(session, undefined);
    if (reason === 'node-failure') {
      // This cluster node was declared dead: the node that cleaned up after it has re-routed
      // the copies the router kept of these (router.retain); doing it again would duplicate them.
      st.queue = [];
      return;
    }
    if (reason === 'logout') {
      // RFC 6120 §4.4: a client that closes its stream reads on until ours is closed, and ours
      // follows everything written to it: what is unacknowledged then was delivered all the same
      // (clients that miscount their 'h' would otherwise get messages twice).
      st.queue = [];
      return;
    }
    if (st.queue.length > 0) {
      this.server.log.info({ event: 'sm-unacked', jid: session.jid.toString(), reason, unacked: st.queue.length }, 'session ended with unacknowledged stanzas: messages re-routed');
    }
    const domain = session.jid.domain;
    for (const entry of st.queue) {
      const kind = entry.stanza.name;
      if (kind === 'message' || (kind === 'iq' && (entry.stanza.attrs.type === 'get' || entry.stanza.attrs.type === 'set'))) {
        this.server.undeliverable(session, kind === 'message' ? stamped(entry, domain) : entry.stanza);
      }
    }
    st.queue = [];
  }
}

/** A copy with a XEP-0203 delay saying when the server first sent it (messages and presence, unless they carry one). */
function stamped(entry: Entry, domain: string): Element {
  const { stanza } = entry;
  if ((stanza.name !== 'message' && stanza.name !== 'presence') || stanza.getChild('delay', NS_DELAY)) return stanza;
  const copy = stanza.clone();
  copy.append(x('delay', NS_DELAY, { from: domain, stamp: new Date(entry.at).toISOString() }));
  return copy;
}

export const smModule: Module = {
  name: 'stream-management',
  start({ server }) {
    const sm = new StreamManagement(server);
    sm.start();
    const api: StreamManagementApi = { enabled: (s) => sm.enabled(s), unacked: (s) => sm.unacked(s) };
    return { api, stop: () => sm.stop() };
  },
};
