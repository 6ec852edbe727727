// One XML stream over one transport (RFC 6120 §4): the header exchange, the
// parser and its restarts, strictly ordered processing of what arrives (with
// flood control), and every way a stream can end. What is negotiated on it is
// the subclass's: a client's STARTTLS, SASL and bind (c2s.ts), a component's
// handshake (component.ts).
import { Element } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import type { ParseErrorCondition, StreamHeader, StreamParserHandler } from '../xml/parser.js';
import { StreamError } from '../core/errors.js';
import type { EndReason } from '../core/session.js';
import { randomToken } from '../core/random.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Transport, TransportHandler } from './transport.js';
import type { FrameParser, Framing } from './framing.js';
import { RateShaper, ThrottleMeter } from './shaper.js';

type Stage = 'header' | 'open' | 'closing' | 'closed';
type PauseReason = 'flood' | 'output' | 'rate';
/** One bit per reason (a Set per connection would cost more than the connection's whole state here). */
const PAUSE_BIT: Record<PauseReason, number> = { flood: 1, output: 2, rate: 4 };

function sleepUntil(time: number): Promise<void> {
  const ms = time - Date.now();
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** Half-life of the record of how long a peer was throttled (abuse detection). */
const THROTTLE_HALF_LIFE_MS = 120_000;

/** Elements queued for processing before we stop reading from the socket (flood control). */
const MAX_QUEUED = 64;

/** The peer's closing tag, in the queue of what arrived. */
const END = Symbol('end of stream');

/** An element that waits for the stanza rate limit until `readyAt` (ms since the epoch). */
interface Delayed {
  el: Element;
  readyAt: number;
}

/** What every stream needs from the server around it. */
export interface StreamEnv {
  readonly config: Config;
  readonly log: Logger;
}

/**
 * The connection is itself the handler of its transport's and its parser's events (the
 * methods under "Events"), rather than an object of closures for each: a connection that
 * does nothing for hours should hold as little as possible.
 */
export abstract class StreamConnection implements TransportHandler, StreamParserHandler {
  protected stage: Stage = 'header';
  protected readonly log: Logger;
  /** Why the stream ended, as far as known so far. */
  protected endReason: EndReason = 'disconnect';
  private parser: FrameParser;
  private headerSent = false;
  /**
   * What arrived and waits its turn, oldest first from `head`: elements, elements that wait for
   * the stanza rate (Delayed), and END for the peer's closing tag. One array per connection
   * rather than a chain of promises per element, which cost six promises, five closures and
   * as many microtask turns for every stanza.
   */
  private readonly waiting: (Element | Delayed | typeof END)[] = [];
  private head = 0;
  /** A drain() is under way or scheduled. */
  private draining = false;
  private readonly drainSoon = (): void => void this.drain();
  /** Elements received and not yet processed (flood control). */
  private queued = 0;
  /** Why reading from the transport is paused now (flood control, a full output buffer, the rate limit). */
  private pausedFor = 0;
  /** What this peer may send (its connection's shaper; a subclass adds its account's). */
  protected readonly shapers: RateShaper[] = [];
  private readonly throttled: ThrottleMeter;
  private rateTimer: NodeJS.Timeout | undefined;
  private rateUntil = 0;
  private finished = false;
  private readonly finishListeners: (() => void)[] = [];

  constructor(
    protected readonly env: StreamEnv,
    protected readonly transport: Transport,
    protected readonly framing: Framing,
    logFields: Record<string, unknown>,
  ) {
    this.log = env.log.child({ ...logFields, ip: transport.remoteAddress });
    this.parser = this.newParser();
    this.throttled = new ThrottleMeter(THROTTLE_HALF_LIFE_MS);
    transport.setHandler(this);
  }

  // --- Events: from the transport (TransportHandler) and the parser (StreamParserHandler) only ---

  data(chunk: Buffer): void {
    this.onData();
    this.parser.write(chunk);
    this.charge('bytes', chunk.length);
  }

  emptied(): void {
    this.onDrained();
  }

  closed(hadError: boolean, error?: Error): void {
    this.finish(hadError ? 'error' : this.endReason, error);
  }

  streamStart(header: StreamHeader): void {
    if (this.stage === 'header') this.onStreamStart(header);
  }

  element(el: Element): void {
    this.enqueue(el);
  }

  /** Activity was already recorded on the data event. */
  whitespace(): void {}

  streamEnd(): void {
    this.enqueueEnd();
  }

  error(condition: ParseErrorCondition, text: string): void {
    this.closeWithError(new StreamError(condition, text));
  }

  // --- What subclasses decide ---------------------------------------------------------

  /** The peer's stream header arrived (the first, or after a restart); the subclass answers it. */
  protected abstract onStreamStart(header: StreamHeader): void;
  /** One top-level element, in order; a thrown StreamError ends the stream with it. */
  protected abstract process(el: Element): Promise<void>;
  /** The stream is over, however it ended; runs once. */
  protected abstract onFinish(reason: EndReason, error?: Error): void;
  /** Bytes arrived (activity, whitespace included). */
  protected onData(): void {}
  /** The output buffer emptied. */
  protected onDrained(): void {}
  /** The domain our header names when we must answer before knowing which one the peer wants. */
  protected abstract get defaultFrom(): string;
  /** Whether our header announces version 1.0 (stream features); a component stream does not. */
  protected get speaksVersion(): boolean {
    return true;
  }

  // --- Writing ----------------------------------------------------------------------------

  /** Whether the stream can still carry elements to the peer. */
  get open(): boolean {
    return this.stage === 'open';
  }

  /** Writes a stanza or nonza; false when the stream is no longer open. */
  protected writeElement(el: Element): boolean {
    if (this.stage !== 'open') return false;
    this.transport.write(this.framing.element(el));
    return true;
  }

  protected writeFeatures(features: Element): void {
    this.transport.write(this.framing.features(features));
  }

  /**
   * Our stream header, once per stream. RFC 6120 §4.7.3: a fresh, unpredictable id each time;
   * §4.7.5: the lower of the two versions, none when the peer gave none. Returns the id.
   */
  protected sendHeader(from: string, h: StreamHeader | undefined, to?: string): string | undefined {
    if (this.headerSent) return undefined;
    this.headerSent = true;
    const id = randomToken(16, 'base64url');
    const theirs = h?.attrs.version;
    let version: string | undefined = this.speaksVersion ? '1.0' : undefined;
    if (theirs === undefined && h !== undefined) version = undefined;
    else if (theirs !== undefined && /^0\.\d+$/.test(theirs)) version = theirs;
    this.transport.write(this.framing.header({ from, id, to, version, lang: 'en' }));
    return id;
  }

  /** RFC 6120 §4.3.3: after TLS and SASL both sides start a fresh stream on the same connection. */
  protected restart(): void {
    this.parser.stop();
    this.parser = this.newParser();
    this.stage = 'header';
    this.headerSent = false;
  }

  // --- Reading ------------------------------------------------------------------------------

  private newParser(): FrameParser {
    return this.framing.parser(this, { maxStanzaSize: this.env.config.limits.max_stanza_bytes });
  }

  /** The header was accepted: elements are processed from now on. */
  protected opened(): void {
    this.stage = 'open';
  }

  /** Elements are processed strictly in order (RFC 6120 §10.1), one at a time. */
  private enqueue(el: Element): void {
    if (this.stage === 'closed') return;
    // Over the stanza rate, this element (and so every one after it) waits its turn.
    const wait = this.charge('stanza', 1);
    this.queued++;
    if (this.queued > MAX_QUEUED) this.pauseReading('flood');
    this.push(wait > 0 ? { el, readyAt: Date.now() + wait } : el);
  }

  private push(item: Element | Delayed | typeof END): void {
    this.waiting.push(item);
    if (this.draining) return;
    this.draining = true;
    // Never from inside the parser's callback: the rest of its chunk is parsed first, as before
    // any element is processed.
    queueMicrotask(this.drainSoon);
  }

  /** Processes what waits, in order, each element once the one before it is done. */
  private async drain(): Promise<void> {
    while (this.head < this.waiting.length) {
      const item = this.waiting[this.head]!;
      this.waiting[this.head++] = END;
      if (item === END) {
        try {
          // RFC 6120 §4.4: the peer closed its stream; close ours and the connection.
          if (this.endReason === 'disconnect') this.endReason = 'logout';
          this.closeStream();
        } catch (err: unknown) {
          this.onProcessingError(err);
        }
        continue;
      }
      try {
        let el: Element;
        if (item instanceof Element) el = item;
        else {
          el = item.el;
          await sleepUntil(item.readyAt);
        }
        if (this.stage !== 'open') continue;
        if (el.name === 'error' && el.xmlns === NS.STREAM) this.peerError(el);
        else await this.process(el);
      } catch (err: unknown) {
        this.onProcessingError(err);
      } finally {
        this.queued--;
        if (this.queued < MAX_QUEUED / 2) this.resumeReading('flood');
      }
    }
    this.waiting.length = 0;
    this.head = 0;
    this.draining = false;
  }

  /**
   * RFC 6120 §4.9.1.1: a stream error from the peer ends the stream; it is not answered with
   * another error, only with our closing tag.
   */
  private peerError(el: Element): void {
    const condition = el.getChildren().find((c) => c.xmlns === NS.STREAM_ERRORS && c.name !== 'text')?.name;
    this.log.info({ event: 'peer-stream-error', condition, text: el.getChildText('text', NS.STREAM_ERRORS) }, 'the peer closed its stream with an error');
    if (this.endReason === 'disconnect') this.endReason = 'error';
    this.closeStream();
  }

  private enqueueEnd(): void {
    this.push(END);
  }

  private onProcessingError(err: unknown): void {
    if (err instanceof StreamError) this.closeWithError(err);
    else {
      this.log.error({ err }, 'error while processing an element');
      this.closeWithError(new StreamError('internal-server-error'));
    }
  }

  /** Stops reading from the peer (TCP backpressure) until every reason given is lifted. */
  protected pauseReading(reason: PauseReason): void {
    if (this.pausedFor === 0) this.transport.pause();
    this.pausedFor |= PAUSE_BIT[reason];
  }

  protected resumeReading(reason: PauseReason): void {
    const bit = PAUSE_BIT[reason];
    if ((this.pausedFor & bit) === 0) return;
    this.pausedFor &= ~bit;
    if (this.pausedFor !== 0 || this.stage === 'closed') return;
    this.transport.resume();
  }

  /**
   * Charges what arrived to every shaper; over a rate, reading pauses until the debt is paid.
   * A peer that kept the server waiting too long lately is ending its own stream.
   */
  private charge(what: 'bytes' | 'stanza', n: number): number {
    if (this.shapers.length === 0 || this.stage === 'closed' || this.stage === 'closing') return 0;
    let wait = 0;
    for (const s of this.shapers) wait = Math.max(wait, what === 'bytes' ? s.chargeBytes(n) : s.chargeStanza());
    if (wait <= 0) return 0;
    const until = Date.now() + wait;
    if (until <= this.rateUntil) return wait;
    const added = until - Math.max(this.rateUntil, Date.now());
    this.rateUntil = until;
    if (this.throttled.add(added) > this.env.config.limits.rate.abuse_seconds * 1000) {
      this.log.warn({ event: 'rate-abuse' }, 'peer kept over its rate limit for too long');
      this.closeWithError(new StreamError('policy-violation', 'sending too fast for too long'));
      return 0;
    }
    this.pauseReading('rate');
    if (this.rateTimer) clearTimeout(this.rateTimer);
    this.rateTimer = setTimeout(() => {
      this.rateTimer = undefined;
      this.resumeReading('rate');
    }, until - Date.now());
    return wait;
  }

  // --- Closing --------------------------------------------------------------------------------

  /** Calls back once the connection is fully closed (at once if it already is). */
  onFinished(cb: () => void): void {
    if (this.finished) cb();
    else this.finishListeners.push(cb);
  }

  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void {
    if (error) {
      if (error.condition === 'system-shutdown') this.endReason = 'shutdown';
      else if (error.condition === 'conflict') this.endReason = 'conflict';
      this.closeWithError(error);
    } else this.closeStream();
  }

  /** RFC 6120 §4.9.1.1: stream errors are unrecoverable: error element, close tag, close connection. */
  protected closeWithError(err: StreamError): void {
    if (this.stage === 'closing' || this.stage === 'closed') return;
    if (err.condition === 'connection-timeout' && this.endReason === 'disconnect') this.endReason = 'timeout';
    else if (this.endReason === 'disconnect') this.endReason = 'error';
    // RFC 6120 §4.9.1.2: the header goes out first, even when the stream is refused.
    this.sendHeader(this.defaultFrom, undefined);
    this.log.info({ event: 'stream-error', condition: err.condition, text: err.text }, 'closing stream with error');
    // Two writes: a framing with one element per message (RFC 7395 §3.3.1) sends them apart.
    this.transport.write(this.framing.error(err));
    this.transport.write(this.framing.footer());
    this.shutDown();
  }

  protected closeStream(): void {
    if (this.stage === 'closing' || this.stage === 'closed') return;
    this.sendHeader(this.defaultFrom, undefined);
    this.transport.write(this.framing.footer());
    this.shutDown();
  }

  /**
   * Once our closing tag is out, nothing more can reach the peer over this stream, so what it
   * carried ends now (RFC 6121 §4.5.2: contacts hear at once), not when the peer, which may be
   * dead or silent, finally closes the TCP connection.
   */
  private shutDown(): void {
    this.stage = 'closing';
    this.parser.stop();
    this.transport.end();
    this.finish(this.endReason);
  }

  /** Runs once, whatever ended the connection. */
  protected finish(reason: EndReason, error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.stage = 'closed';
    if (this.rateTimer) clearTimeout(this.rateTimer);
    this.parser.stop();
    this.onFinish(reason, error);
    for (const cb of this.finishListeners) cb();
  }
}
