// BOSH (XEP-0124) carrying an XMPP client stream (XEP-0206). A BOSH session is
// the transport of one C2SStream: it outlives every HTTP request that carries
// it. Requests are processed strictly in 'rid' order (XEP-0124 §14): early ones
// wait for the missing ones, a repeated one gets its cached answer, one too far
// ahead ends the session. The session holds up to 'hold' requests to answer with
// what the stream writes, each for at most 'wait' seconds, and ends when no
// request has been held for 'inactivity' seconds, the way a dropped socket would.
import { randomBytes } from 'node:crypto';
import { escapeAttr, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StreamParser, type StreamParserOptions } from '../../xml/parser.js';
import type { StreamError } from '../../core/errors.js';
import type { ChannelBindingType } from '../../core/sasl.js';
import type { Logger } from '../../log/logger.js';
import type { FrameParser, Framing, HeaderFields } from '../framing.js';
import type { StreamParserHandler } from '../../xml/parser.js';
import { tlsChannelBinding, tlsChannelBindingTypes, type TlsSettings, type Transport, type TransportHandler } from '../transport.js';
import { ElementFrameParser, NS_FRAMING, standaloneStreamElement } from './frames.js';
import type { PeerInfo } from './websocket.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
/** XEP-0206 §3 */
export const NS_XBOSH = 'urn:xmpp:xbosh';

/** XEP-0124 §17.2 terminal conditions this server sends. */
export type BoshCondition = 'bad-request' | 'host-unknown' | 'item-not-found' | 'policy-violation' | 'remote-stream-error' | 'system-shutdown' | 'other-request';

export interface BoshSettings {
  /** Longest 'wait' granted, seconds. */
  max_wait: number;
  /** Most requests held at once. */
  max_hold: number;
  /** Seconds without a held request before the session ends. */
  inactivity: number;
  /** Longest 'pause' granted, seconds. */
  max_pause: number;
  /** Shortest interval between empty requests of a polling client, seconds. */
  polling: number;
}

/** A parsed request body: the <body/> attributes and the elements it carries. */
export interface BoshRequest {
  attrs: Record<string, string>;
  elements: Element[];
}

/** Answers one HTTP request with a <body/>. */
export type BoshReply = (body: string) => void;

/** Parses a request body; a string is the reason it is not a BOSH body. */
export function parseBoshBody(data: Buffer, opts: StreamParserOptions): BoshRequest | string {
  let attrs: Record<string, string> | undefined;
  let ended = false;
  let error: string | undefined;
  const elements: Element[] = [];
  const parser = new StreamParser(
    {
      streamStart: (h) => {
        // XEP-0124 §4: the wrapper is <body/> qualified by the httpbind namespace.
        if (h.name !== 'body' || h.uri !== NS_HTTPBIND) error ??= 'the root must be <body/> of http://jabber.org/protocol/httpbind';
        attrs = h.attrs;
      },
      element: (el) => elements.push(toClientNs(el)),
      whitespace: () => undefined,
      streamEnd: () => {
        ended = true;
      },
      error: (_condition, text) => {
        error ??= text;
      },
    },
    opts,
  );
  parser.write(data);
  if (error !== undefined) return error;
  if (attrs === undefined || !ended) return 'the body is not one complete XML element';
  return { attrs, elements };
}

/**
 * XEP-0206 §8: stanzas in a body should be qualified by jabber:client; one written without a
 * namespace of its own is in the body's (httpbind), which means the same thing.
 */
function toClientNs(el: Element): Element {
  if (el.xmlns === NS_HTTPBIND) el.xmlns = NS.CLIENT;
  for (const c of el.children) if (typeof c !== 'string' && c.xmlns === NS_HTTPBIND) toClientNs(c);
  return el;
}

function terminateBody(condition: BoshCondition | undefined, payload = ''): string {
  const cond = condition === undefined ? '' : ` condition='${condition}'`;
  return `<body xmlns='${NS_HTTPBIND}' type='terminate'${cond}>${payload}</body>`;
}

function parseInt10(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,16}$/.test(v)) return undefined;
  return Number(v);
}

interface Held {
  rid: number;
  reply: BoshReply;
  timer?: NodeJS.Timeout;
}

interface Waiting {
  request: BoshRequest;
  reply: BoshReply;
}

/** What a session needs from the server: a client stream over it, the time, its settings. */
export interface BoshEnv {
  readonly settings: () => BoshSettings;
  /** Input one session may have waiting for its stream to read (see BoshSession.feed). */
  readonly maxInputBytes: () => number;
  readonly log: Logger;
}

/** Starts the client stream (a C2SStream) over a session. */
export type OpenStream = (transport: Transport, framing: Framing) => void;

export class BoshSession implements Transport {
  readonly sid = randomBytes(18).toString('base64url');
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly canStartTls = false;
  private handler: TransportHandler | undefined;
  /** The 'rid' expected next: every lower one has been processed. */
  private nextRid: number;
  private readonly wait: number;
  private readonly hold: number;
  /** XEP-0124 §7.1: requests the client may have open at once. */
  private readonly requests: number;
  private readonly ackOn: boolean;
  private readonly held: Held[] = [];
  /** Requests ahead of a missing 'rid', or arrived while reading is paused. */
  private readonly waiting = new Map<number, Waiting>();
  /** The answer to each of the last 'requests' processed rids. */
  private readonly answered = new Map<number, string>();
  private out: string[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private paused = false;
  private input: string[] = [];
  private inputBytes = 0;
  private inactivityTimer: NodeJS.Timeout | undefined;
  /** A client 'pause' (XEP-0124 §10) stretches the next inactivity period. */
  private pauseMs: number | undefined;
  private lastRequestAt = 0;
  /** XEP-0124 §12: when the last empty request came, and whether its answer carried nothing. */
  private lastEmpty: { at: number; answeredEmpty: boolean; rid: number } | undefined;
  private streamErrored = false;
  /** The stream is over: what remains is answering with a terminate body. */
  private ending = false;
  private gone = false;
  private closedOnce = false;
  private authid: string | undefined;
  private readonly to: string;
  private readonly lang: string;

  constructor(
    private readonly env: BoshEnv,
    private readonly registry: Map<string, BoshSession>,
    private readonly peer: PeerInfo,
    private readonly tls: TlsSettings | undefined,
    first: BoshRequest,
    firstRid: number,
  ) {
    const s = env.settings();
    this.remoteAddress = peer.remoteAddress;
    this.secure = peer.secure;
    const a = first.attrs;
    // XEP-0124 §7.1: the server may lower what the client asks for, never raise it.
    this.wait = Math.min(parseInt10(a.wait) ?? s.max_wait, s.max_wait);
    this.hold = Math.min(parseInt10(a.hold) ?? 1, s.max_hold);
    this.requests = this.hold + 1;
    this.ackOn = a.ack === '1';
    this.nextRid = firstRid + 1;
    this.to = a.to ?? '';
    this.lang = a['xml:lang'] ?? 'en';
    registry.set(this.sid, this);
  }

  /** XEP-0124 §7.1 / XEP-0206 §3: starts the stream and answers the session creation request. */
  start(first: BoshRequest, rid: number, reply: BoshReply, open: OpenStream): void {
    open(this, new BoshFraming(this));
    this.lastRequestAt = Date.now();
    this.feed(this.openTag(first.attrs));
    const s = this.env.settings();
    const attrs: Record<string, string | undefined> = {
      xmlns: NS_HTTPBIND,
      'xmlns:xmpp': NS_XBOSH,
      'xmlns:stream': NS.STREAM,
      sid: this.sid,
      wait: String(this.wait),
      requests: String(this.requests),
      hold: String(this.hold),
      inactivity: String(s.inactivity),
      polling: String(s.polling),
      maxpause: String(s.max_pause),
      ver: '1.11',
      from: this.to,
      authid: this.authid,
      ack: this.ackOn ? String(rid) : undefined,
      'xmpp:version': '1.0',
      'xmpp:restartlogic': 'true',
    };
    // The stream may have refused the header already (host-unknown, bad version).
    if (this.ending) {
      this.answerTerminate({ rid, reply });
      return;
    }
    let head = '<body';
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) head += ` ${k}='${escapeAttr(v)}'`;
    const body = `${head}>${this.takeOut()}</body>`;
    this.remember(rid, body);
    reply(body);
    this.armInactivity();
  }

  // --- Requests ------------------------------------------------------------------------

  /** A request for this session, in whatever order it arrived. */
  handle(request: BoshRequest, rid: number, reply: BoshReply): void {
    if (this.gone) return reply(terminateBody('item-not-found'));
    // XEP-0124 §14.3: a repeated request gets the answer it got before.
    const cached = this.answered.get(rid);
    if (cached !== undefined) return reply(cached);
    const held = this.held.find((h) => h.rid === rid);
    if (held !== undefined) {
      // The client gave up on that HTTP request and sent it again: the new one gets the answer.
      held.reply(`<body xmlns='${NS_HTTPBIND}'/>`);
      held.reply = reply;
      return;
    }
    const queued = this.waiting.get(rid);
    if (queued !== undefined) {
      queued.reply(`<body xmlns='${NS_HTTPBIND}'/>`);
      queued.reply = reply;
      return;
    }
    if (rid < this.nextRid) return this.fail('item-not-found', reply, 'rid already answered and no longer cached');
    // XEP-0124 §14.2: no further ahead than the number of requests the client may have open.
    if (rid >= this.nextRid + this.requests) return this.fail('item-not-found', reply, 'rid out of the window');
    this.clearInactivity();
    // A pause lasts until the client's next request.
    this.pauseMs = undefined;
    if (this.held.length + this.waiting.size + 1 > this.requests) {
      // XEP-0124 §11: more requests open at once than 'requests' allows.
      return this.fail('policy-violation', reply, 'too many simultaneous requests');
    }
    this.waiting.set(rid, { request, reply });
    this.processReady();
  }

  /** Processes the waiting requests that are next in 'rid' order (what they carry may still wait: see feed()). */
  private processReady(): void {
    while (!this.gone) {
      const next = this.waiting.get(this.nextRid);
      if (next === undefined) break;
      this.waiting.delete(this.nextRid);
      this.nextRid++;
      this.process(next.request, this.nextRid - 1, next.reply);
    }
    if (this.held.length === 0) this.armInactivity();
  }

  private process(request: BoshRequest, rid: number, reply: BoshReply): void {
    const a = request.attrs;
    const s = this.env.settings();
    const now = Date.now();
    const empty = request.elements.length === 0 && a.type === undefined && a.pause === undefined && a['xmpp:restart'] === undefined;
    if (empty) {
      const prev = this.lastEmpty;
      const tooSoon = prev !== undefined && prev.rid === rid - 1 && now - prev.at < s.polling * 1000;
      // XEP-0124 §12: a polling client (hold 0) whose last empty request got nothing must wait 'polling' seconds.
      if (this.hold === 0 && tooSoon && prev.answeredEmpty) return this.fail('policy-violation', reply, 'polling too often');
      this.lastEmpty = { at: now, answeredEmpty: true, rid };
    }
    this.lastRequestAt = now;
    // What the request carries goes to the stream in rid order, when the stream reads (see pause()).
    for (const el of request.elements) this.feed(el.toString());
    if (a['xmpp:restart'] === 'true') this.feed(this.openTag(a));
    if (a.type === 'terminate') {
      // XEP-0124 §13: the payload first, then the stream ends (logout); the stream's end answers this request.
      this.held.push(this.holdEntry(rid, reply));
      this.feed(`<close xmlns='${NS_FRAMING}'/>`);
      return;
    }
    if (this.inputBytes > this.env.maxInputBytes()) {
      // The stream is not reading (rate or flood control) and the client keeps sending.
      return this.fail('policy-violation', reply, 'sending faster than the stream is read');
    }
    const pause = parseInt10(a.pause);
    if (pause !== undefined) {
      // XEP-0124 §10: every held request is answered, and the session lives 'pause' seconds without one.
      this.pauseMs = Math.min(pause, s.max_pause) * 1000;
      this.held.push(this.holdEntry(rid, reply));
      this.answerAll();
      return;
    }
    this.held.push(this.holdEntry(rid, reply));
    // XEP-0124 §7.1 'hold': beyond it, the oldest held request is answered at once.
    while (this.held.length > this.hold) this.answerOldest();
    if (this.out.length > 0) this.scheduleFlush();
  }

  private holdEntry(rid: number, reply: BoshReply): Held {
    const timer = setTimeout(() => {
      // XEP-0124 §7.1 'wait': a held request is answered, empty if need be, within wait seconds.
      const i = this.held.findIndex((h) => h.rid === rid);
      if (i < 0) return;
      const [h] = this.held.splice(i, 1);
      this.answer(h!);
      if (this.held.length === 0) this.armInactivity();
    }, this.wait * 1000);
    timer.unref();
    return { rid, reply, timer };
  }

  /**
   * Input for the stream, in order. While the stream does not read (its flood and rate
   * control paused it), input waits here, bounded; requests are still held and answered,
   * since answering them is how the client reads what the stream writes.
   */
  private feed(data: string): void {
    this.input.push(data);
    this.inputBytes += Buffer.byteLength(data);
    this.drainInput();
  }

  private drainInput(): void {
    while (!this.paused && this.input.length > 0 && !this.closedOnce) {
      const data = this.input.shift()!;
      this.inputBytes -= Buffer.byteLength(data);
      this.handler?.data(Buffer.from(data));
    }
  }

  /** The header of a (re)started stream, as a WebSocket client would send it (XEP-0206 §5). */
  private openTag(a: Record<string, string>): string {
    let open = `<open xmlns='${NS_FRAMING}' to='${escapeAttr(a.to ?? this.to)}' xml:lang='${escapeAttr(a['xml:lang'] ?? this.lang)}'`;
    const version = a['xmpp:version'];
    if (version !== undefined) open += ` version='${escapeAttr(version)}'`;
    else if (a['xmpp:restart'] === 'true') open += ` version='1.0'`;
    return open + '/>';
  }

  // --- Answers ---------------------------------------------------------------------------

  private answerOldest(): void {
    const h = this.held.shift();
    if (h !== undefined) this.answer(h);
  }

  private answerAll(): void {
    while (this.held.length > 0) this.answerOldest();
    if (!this.ending) this.armInactivity();
  }

  private answer(h: Held): void {
    clearTimeout(h.timer);
    if (this.ending) return this.answerTerminate(h);
    const payload = this.takeOut();
    if (payload !== '' && this.lastEmpty?.rid === h.rid) this.lastEmpty.answeredEmpty = false;
    // XEP-0124 §9.1: when answering other than the highest rid, tell the client how far we got.
    const ack = this.ackOn && h.rid !== this.nextRid - 1 ? ` ack='${this.nextRid - 1}'` : '';
    const body = `<body xmlns='${NS_HTTPBIND}'${ack}>${payload}</body>`;
    this.remember(h.rid, body);
    h.reply(body);
  }

  private answerTerminate(h: Held): void {
    clearTimeout(h.timer);
    const body = terminateBody(this.streamErrored ? 'remote-stream-error' : undefined, this.takeOut());
    this.remember(h.rid, body);
    h.reply(body);
    this.forget();
  }

  private remember(rid: number, body: string): void {
    this.answered.set(rid, body);
    for (const k of this.answered.keys()) if (k <= rid - this.requests) this.answered.delete(k);
  }

  private takeOut(): string {
    const s = this.out.join('');
    this.out = [];
    this.outBytes = 0;
    if (s !== '') this.handler?.emptied?.();
    return s;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything written while handling one event leaves in one response.
    process.nextTick(() => {
      this.flushScheduled = false;
      if (this.out.length > 0 && this.held.length > 0) this.answerOldest();
      if (this.held.length === 0) this.armInactivity();
    });
  }

  /** A terminal binding error (XEP-0124 §17.2): the session and its stream end. */
  private fail(condition: BoshCondition, reply: BoshReply, why: string): void {
    this.env.log.info({ event: 'bosh-terminate', sid: this.sid, condition, why }, 'BOSH session terminated');
    reply(terminateBody(condition));
    this.terminate(condition);
  }

  /** Ends the session from the HTTP side: held requests are answered, the stream ends as if its socket dropped. */
  terminate(condition: BoshCondition): void {
    if (this.gone) return;
    for (const h of this.held.splice(0)) {
      clearTimeout(h.timer);
      h.reply(terminateBody(condition));
    }
    for (const w of this.waiting.values()) w.reply(terminateBody(condition));
    this.waiting.clear();
    this.forget();
    this.onClosed(false);
  }

  private forget(): void {
    if (this.gone) return;
    this.gone = true;
    this.clearInactivity();
    for (const h of this.held.splice(0)) {
      clearTimeout(h.timer);
      h.reply(terminateBody(undefined));
    }
    for (const w of this.waiting.values()) w.reply(terminateBody(undefined));
    this.waiting.clear();
    // A repeated request still gets its answer for a moment; an unknown sid after that.
    setTimeout(() => {
      if (this.registry.get(this.sid) === this) this.registry.delete(this.sid);
    }, this.wait * 1000).unref();
  }

  private armInactivity(): void {
    if (this.gone || this.ending) return;
    this.clearInactivity();
    const ms = this.pauseMs ?? this.env.settings().inactivity * 1000;
    this.inactivityTimer = setTimeout(() => {
      // XEP-0124 §7.1 'inactivity': the client is gone; the same clean-up as a dropped socket.
      this.env.log.info({ event: 'bosh-inactive', sid: this.sid }, 'BOSH session expired');
      this.terminate('item-not-found');
    }, ms);
    this.inactivityTimer.unref();
  }

  private clearInactivity(): void {
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = undefined;
  }

  private onClosed(hadError: boolean): void {
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.handler?.closed(hadError);
  }

  // --- Transport ------------------------------------------------------------------------

  get pendingBytes(): number {
    return this.outBytes;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  /** Called by the framing: the stream id (XEP-0206 §3 'authid'). */
  noteHeader(id: string): void {
    this.authid = id;
  }

  noteStreamError(): void {
    this.streamErrored = true;
  }

  write(data: string): void {
    if (data === '' || this.gone) return;
    this.out.push(data);
    this.outBytes += Buffer.byteLength(data);
    if (this.held.length > 0) this.scheduleFlush();
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not part of BOSH'));
  }

  get channelBindingTypes(): readonly ChannelBindingType[] {
    return tlsChannelBindingTypes(this.peer.tlsSocket);
  }

  channelBinding(type: ChannelBindingType): Buffer | undefined {
    return tlsChannelBinding(this.peer.tlsSocket, this.tls, type);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.drainInput();
  }

  /** The stream closed (our <close/> or a stream error is written): answer with a terminate body. */
  end(): void {
    if (this.ending || this.gone) return;
    this.ending = true;
    this.clearInactivity();
    if (this.held.length > 0) {
      // After the current tick, so that the stream's last words (an error) are in the answer.
      process.nextTick(() => {
        const first = this.held.shift();
        if (first !== undefined) this.answerTerminate(first);
      });
    } else {
      // Kept for the next request of the client, for as long as it may take to come.
      this.inactivityTimer = setTimeout(() => this.forget(), this.env.settings().inactivity * 1000);
      this.inactivityTimer.unref();
    }
    this.onClosed(false);
  }

  destroy(): void {
    this.terminate('other-request');
  }

  /** A request arrived after the stream ended but before the session was forgotten. */
  get endingWithoutRequest(): boolean {
    return this.ending && !this.gone;
  }

  /** Answers a request of a session whose stream has ended. */
  answerEnded(rid: number, reply: BoshReply): void {
    const cached = this.answered.get(rid);
    if (cached !== undefined) return reply(cached);
    this.answerTerminate({ rid, reply });
  }
}

/** XEP-0206: the stream inside <body/> wrappers; header and footer are the session's, not elements. */
class BoshFraming implements Framing {
  readonly contentNs = NS.CLIENT;

  constructor(private readonly session: BoshSession) {}

  header(f: HeaderFields): string {
    this.session.noteHeader(f.id);
    return '';
  }

  footer(): string {
    return '';
  }

  features(features: Element): string {
    return standaloneStreamElement('features', features);
  }

  /** XEP-0206 §6: a stream error travels in a terminate body with condition remote-stream-error. */
  error(error: StreamError): string {
    this.session.noteStreamError();
    return standaloneStreamElement('error', error.toElement());
  }

  element(el: Element): string {
    return el.toString();
  }

  parser(handler: StreamParserHandler, options: StreamParserOptions): FrameParser {
    return new ElementFrameParser(handler, options);
  }
}

/** Whether a parsed request is a valid session creation request (XEP-0124 §7.1). */
export function isCreation(parsed: BoshRequest | string): boolean {
  if (typeof parsed === 'string') return false;
  const rid = parseInt10(parsed.attrs.rid);
  return parsed.attrs.sid === undefined && rid !== undefined && rid <= Number.MAX_SAFE_INTEGER && (parsed.attrs.to ?? '') !== '';
}

/** Every BOSH session of one HTTP listener, by 'sid'. */
export class BoshSessions {
  readonly sessions = new Map<string, BoshSession>();

  constructor(
    private readonly env: BoshEnv,
    private readonly tls: () => TlsSettings | undefined,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** One POST to the BOSH endpoint, its body parsed or the reason it is not a body. */
  request(parsed: BoshRequest | string, peer: PeerInfo, reply: BoshReply, open?: OpenStream): void {
    if (typeof parsed === 'string') return reply(terminateBody('bad-request'));
    const a = parsed.attrs;
    const rid = parseInt10(a.rid);
    // XEP-0124 §14: every request has a rid, a positive integer below 2^53.
    if (rid === undefined || rid > Number.MAX_SAFE_INTEGER) return reply(terminateBody('bad-request'));
    const sid = a.sid;
    if (sid === undefined) {
      // XEP-0124 §7.1: a session creation request names the host it wants.
      if (a.to === undefined || a.to === '' || open === undefined) return reply(terminateBody('bad-request'));
      const session = new BoshSession(this.env, this.sessions, peer, this.tls(), parsed, rid);
      session.start(parsed, rid, reply, open);
      return;
    }
    const session = this.sessions.get(sid);
    // XEP-0124 §17.2: an unknown (or expired) sid.
    if (session === undefined) return reply(terminateBody('item-not-found'));
    if (session.endingWithoutRequest) return session.answerEnded(rid, reply);
    session.handle(parsed, rid, reply);
  }

  /** Ends every session (the listener closes). */
  closeAll(): void {
    for (const s of [...this.sessions.values()]) s.terminate('system-shutdown');
  }
}
