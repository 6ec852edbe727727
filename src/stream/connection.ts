// One client-to-server stream (RFC 6120 §4-§7): header checks, STARTTLS, SASL,
// resource binding, then stanzas handed to the server core; and every way a
// stream can end, each of which leaves the session registry exactly once.
import { randomBytes, randomUUID } from 'node:crypto';
import { Element, escapeAttr, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import { StreamParser, type StreamHeader } from '../xml/parser.js';
import { Jid, JidError, prepResourcepart } from '../jid/jid.js';
import { StanzaError, StreamError, errorReply, type StreamErrorCondition } from './errors.js';
import type { Transport } from './transport.js';
import type { Session } from '../router/router.js';
import type { SaslContext, SaslExchange, SaslMechanism, SaslFailureCondition, SaslStep } from '../sasl/mechanism.js';
import type { EndReason } from '../modules/api.js';
import type { C2SContext } from './context.js';

type Stage = 'header' | 'open' | 'closing' | 'closed';

/** Stanzas queued for processing before we stop reading from the socket (flood control). */
const MAX_QUEUED = 64;

export class C2SConnection implements Session {
  readonly id = randomUUID();
  jid!: Jid;
  available = false;
  priority = 0;
  presence: Element | undefined;
  interested = false;

  private stage: Stage = 'header';
  private parser: StreamParser;
  private host: string | undefined;
  private headerSent = false;
  private username: string | undefined;
  private bound = false;
  private sasl: { mechanism: SaslMechanism; exchange: SaslExchange } | undefined;
  private offered: SaslMechanism[] = [];
  private saslFailures = 0;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private paused = false;
  private lastActivity = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private pingOutstanding = false;
  private endReason: EndReason = 'disconnect';
  private finished = false;
  private readonly finishListeners: (() => void)[] = [];
  private readonly log;

  constructor(
    private readonly ctx: C2SContext,
    private readonly transport: Transport,
  ) {
    this.log = ctx.log.child({ conn: this.id.slice(0, 8), ip: transport.remoteAddress });
    this.parser = this.newParser();
    transport.setHandler({
      data: (chunk) => {
        this.lastActivity = Date.now();
        // XEP-0199 §4.1 / seed "Timeouts": any bytes, whitespace keepalives included, answer an
        // outstanding ping; decided here rather than by timing when the ping timer fires, which
        // may run late and would then drop a client that answered in time.
        this.pingOutstanding = false;
        this.parser.write(chunk);
      },
      closed: (hadError, error) => this.finish(hadError ? 'error' : this.endReason, error),
    });
    // RFC 6120 §4.6.2 / seed: a client that does not finish authenticating in time is dropped.
    this.timer = setTimeout(() => this.closeWithError(new StreamError('connection-timeout', 'authentication took too long')), ctx.config.timeouts.pre_auth * 1000);
    this.log.info({ event: 'connect' }, 'client connected');
  }

  // --- Session ---------------------------------------------------------------

  send(stanza: Element): void {
    if (this.stage !== 'open') return;
    this.transport.write(stanza.toString(NS.CLIENT));
    // A client that does not read its socket must not make us buffer without bound.
    if (this.transport.pendingBytes > this.ctx.config.limits.max_stanza_bytes * 16) {
      this.closeWithError(new StreamError('policy-violation', 'client is not reading its stream'));
    }
  }

  close(error?: StreamError): void {
    if (error) {
      if (error.condition === 'system-shutdown') this.endReason = 'shutdown';
      else if (error.condition === 'conflict') this.endReason = 'conflict';
      this.closeWithError(error);
    } else this.closeStream();
  }

  get authenticated(): boolean {
    return this.bound;
  }

  /** Calls back once the connection is fully closed (at once if it already is). */
  onFinished(cb: () => void): void {
    if (this.finished) cb();
    else this.finishListeners.push(cb);
  }

  // --- Parser events ----------------------------------------------------------

  private newParser(): StreamParser {
    return new StreamParser(
      {
        streamStart: (h) => this.onStreamStart(h),
        element: (el) => this.enqueue(el),
        whitespace: () => undefined, // activity was already recorded on the data event
        streamEnd: () => this.enqueueEnd(),
        error: (condition, text) => this.closeWithError(new StreamError(condition, text)),
      },
      { maxStanzaSize: this.ctx.config.limits.max_stanza_bytes },
    );
  }

  /** RFC 6120 §4.3.3: after TLS and SASL both sides start a fresh stream on the same connection. */
  private restart(): void {
    this.parser.stop();
    this.parser = this.newParser();
    this.stage = 'header';
    this.headerSent = false;
  }

  private onStreamStart(h: StreamHeader): void {
    if (this.stage !== 'header') return;
    const to = (h.attrs.to ?? '').toLowerCase();
    const served = this.ctx.isLocalDomain(to);
    if (served && this.host !== undefined && to !== this.host) {
      // RFC 6120 §4.3.3: the restarted stream must be for the same domain.
      this.sendHeader(this.host, h);
      this.closeWithError(new StreamError('host-unknown', 'stream restarted for another domain'));
      return;
    }
    this.sendHeader(served ? to : this.ctx.defaultHost, h);
    // RFC 6120 §4.9.1.2: the header goes out first even when it is refused.
    if (h.name !== 'stream' || h.uri !== NS.STREAM) return this.closeWithError(new StreamError('invalid-namespace', 'root must be stream:stream'));
    if (h.contentNs !== NS.CLIENT) return this.closeWithError(new StreamError('invalid-namespace', 'content namespace must be jabber:client'));
    // RFC 6120 §4.7.5: we speak 1.0; a missing or lower major version cannot negotiate features.
    const version = h.attrs.version;
    if (version === undefined || !/^\d+\.\d+$/.test(version) || Number(version.split('.')[0]) < 1) {
      return this.closeWithError(new StreamError('unsupported-version', 'version 1.0 is required'));
    }
    if (!served) return this.closeWithError(new StreamError('host-unknown', 'this server does not serve that domain'));
    this.host = to;
    this.stage = 'open';
    this.transport.write(this.features().toString(NS.CLIENT));
  }

  private sendHeader(from: string, h: StreamHeader | undefined): void {
    if (this.headerSent) return;
    this.headerSent = true;
    // RFC 6120 §4.7.3: a fresh, unpredictable id for every stream header, restarts included.
    const id = randomBytes(16).toString('base64url');
    let s = `<?xml version='1.0'?><stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}' id='${id}' from='${escapeAttr(from)}'`;
    const peer = h?.attrs.from;
    if (peer !== undefined && this.username !== undefined) s += ` to='${escapeAttr(peer)}'`;
    // RFC 6120 §4.7.5: answer with the lower of the two versions; none when the client gave none.
    const theirs = h?.attrs.version;
    if (theirs === undefined && h !== undefined) s += ` xml:lang='en'>`;
    else s += ` version='${theirs !== undefined && /^0\.\d+$/.test(theirs) ? theirs : '1.0'}' xml:lang='en'>`;
    this.transport.write(s);
  }

  /** RFC 6120 §4.3.2: what may be negotiated at this stage of the stream. */
  private features(): Element {
    const f = x('features', NS.STREAM);
    if (this.ctx.tlsRequired && !this.transport.secure) {
      // RFC 6120 §5.3.1: when TLS is mandatory it is the only feature offered.
      f.append(x('starttls', NS.TLS, {}, x('required', NS.TLS)));
      return f;
    }
    if (this.username === undefined) {
      if (this.transport.canStartTls) f.append(x('starttls', NS.TLS));
      this.offered = this.ctx.offeredMechanisms(this.saslContext());
      f.append(x('mechanisms', NS.SASL, {}, ...this.offered.map((m) => x('mechanism', NS.SASL, {}, m.name))));
      const cb = this.transport.channelBindingTypes;
      // XEP-0440: tell the client which channel bindings -PLUS can use here.
      if (cb.length > 0 && this.offered.some((m) => m.name.endsWith('-PLUS'))) {
        f.append(x('sasl-channel-binding', NS.SASL_CB, {}, ...cb.map((type) => x('channel-binding', NS.SASL_CB, { type }))));
      }
      return f;
    }
    f.append(x('bind', NS.BIND));
    // RFC 6121 Appendix E / RFC 3921 legacy session: advertised as optional for old clients.
    f.append(x('session', NS.SESSION, {}, x('optional', NS.SESSION)));
    for (const extra of this.ctx.streamFeatures()) f.append(extra.clone());
    return f;
  }

  private saslContext(): SaslContext {
    const t = this.transport;
    return {
      host: this.host ?? this.ctx.defaultHost,
      secure: t.secure,
      channelBinding: (type) => t.channelBinding(type),
      channelBindingTypes: t.channelBindingTypes,
      plusAdvertised: this.offered.some((m) => m.name.endsWith('-PLUS')),
      accounts: this.ctx.storage.accounts,
      remoteAddress: t.remoteAddress,
      legacySecrets: this.ctx.storage.legacySecrets,
      tokens: this.ctx.auth?.tokens,
      passwords: this.ctx.auth?.passwords,
    };
  }

  // --- Element processing ----------------------------------------------------

  /** Elements are processed strictly in order (RFC 6120 §10.1), one at a time. */
  private enqueue(el: Element): void {
    if (this.stage === 'closed') return;
    this.queued++;
    if (this.queued > MAX_QUEUED && !this.paused) {
      this.paused = true;
      this.transport.pause();
    }
    this.queue = this.queue
      .then(() => (this.stage === 'open' ? this.process(el) : undefined))
      .catch((err: unknown) => this.onProcessingError(err))
      .finally(() => {
        this.queued--;
        if (this.paused && this.queued < MAX_QUEUED / 2) {
          this.paused = false;
          this.transport.resume();
        }
      });
  }

  private enqueueEnd(): void {
    this.queue = this.queue.then(() => {
      // RFC 6120 §4.4: the peer closed its stream; close ours and the connection.
      if (this.endReason === 'disconnect') this.endReason = 'logout';
      this.closeStream();
    });
  }

  private onProcessingError(err: unknown): void {
    if (err instanceof StreamError) this.closeWithError(err);
    else {
      this.log.error({ err }, 'error while processing an element');
      this.closeWithError(new StreamError('internal-server-error'));
    }
  }

  private async process(el: Element): Promise<void> {
    if (this.ctx.tlsRequired && !this.transport.secure) return this.beforeTls(el);
    if (this.username === undefined) return this.beforeAuth(el);
    if (!this.bound) return this.beforeBind(el);
    if (el.xmlns !== NS.CLIENT || (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq')) {
      throw new StreamError('unsupported-stanza-type', `<${el.name}/> in ${el.xmlns}`);
    }
    if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS.SESSION)) {
      return this.sendResult(el);
    }
    this.checkFrom(el);
    el.attrs.from = this.jid.toString();
    await this.ctx.handleStanza(this, el);
  }

  /** RFC 6120 §8.1.2.1: the server stamps 'from'; a client may only state its own JID. */
  private checkFrom(el: Element): void {
    const from = el.attrs.from;
    if (from === undefined) return;
    let jid: Jid;
    try {
      jid = Jid.parse(from);
    } catch {
      throw new StreamError('invalid-from', 'malformed from address');
    }
    if (jid.equals(this.jid) || (jid.isBare() && jid.equals(this.jid.bare))) return;
    throw new StreamError('invalid-from', 'from does not match the authenticated identity');
  }

  private async beforeTls(el: Element): Promise<void> {
    if (el.name === 'starttls' && el.xmlns === NS.TLS) return this.startTls();
    if (el.name === 'auth' && el.xmlns === NS.SASL) {
      // RFC 6120 §6.4.1 / §5.3.1: secrets only travel after TLS when TLS is required.
      this.transport.write(x('failure', NS.SASL, {}, x('encryption-required', NS.SASL)).toString(NS.CLIENT));
      return this.countSaslFailure();
    }
    throw new StreamError('not-authorized', 'STARTTLS is required first');
  }

  private async startTls(): Promise<void> {
    if (!this.transport.canStartTls) {
      // RFC 6120 §5.4.2.2: failure, then the stream and connection are closed.
      this.transport.write(x('failure', NS.TLS).toString(NS.CLIENT) + '</stream:stream>');
      this.stage = 'closing';
      this.transport.end();
      return;
    }
    this.transport.write(x('proceed', NS.TLS).toString(NS.CLIENT));
    this.restart();
    try {
      await this.transport.startTls();
      this.log.info({ event: 'tls' }, 'TLS established');
    } catch (err) {
      this.log.info({ event: 'tls-failed', err: (err as Error).message }, 'TLS handshake failed');
      this.transport.destroy();
    }
  }

  private async beforeAuth(el: Element): Promise<void> {
    if (el.xmlns === NS.SASL) {
      if (el.name === 'auth') return this.saslAuth(el);
      if (el.name === 'response') return this.saslResponse(el);
      if (el.name === 'abort') {
        this.sasl = undefined;
        return this.saslFailure('aborted');
      }
    }
    if (el.name === 'starttls' && el.xmlns === NS.TLS) return this.startTls();
    throw new StreamError('not-authorized', 'authenticate first');
  }

  private async saslAuth(el: Element): Promise<void> {
    const name = el.attrs.mechanism ?? '';
    const mechanism = this.offered.find((m) => m.name === name);
    if (!mechanism) {
      const known = this.ctx.knownMechanism(name);
      // RFC 6120 §6.5.4 (encryption-required) / §6.5.7 (invalid-mechanism): a mechanism that needs TLS vs one we do not offer at all.
      return this.saslFailure(known && known.requiresTls && !this.transport.secure ? 'encryption-required' : 'invalid-mechanism');
    }
    const data = decodeSasl(el.text());
    if (data === null) return this.saslFailure('incorrect-encoding');
    // Brute-force protection: an address with too many recent failures is refused at once,
    // before any (costly) credential check.
    if (this.ctx.auth?.limiter.isLimited(this.transport.remoteAddress)) {
      this.log.info({ event: 'auth-rate-limited', mechanism: name }, 'authentication refused: too many failures from this address');
      return this.saslFailure('temporary-auth-failure', 'too many failed attempts, try again later');
    }
    this.sasl = { mechanism, exchange: mechanism.start(this.saslContext()) };
    await this.saslStep(data);
  }

  private async saslResponse(el: Element): Promise<void> {
    if (!this.sasl) return this.saslFailure('malformed-request');
    const data = decodeSasl(el.text());
    if (data === null) return this.saslFailure('incorrect-encoding');
    await this.saslStep(data);
  }

  private async saslStep(data: Buffer | undefined): Promise<void> {
    const sasl = this.sasl!;
    const outcome = await sasl.exchange.step(data);
    if (this.stage !== 'open') return;
    if (outcome.kind === 'challenge') {
      this.transport.write(x('challenge', NS.SASL, {}, outcome.data.length ? outcome.data.toString('base64') : '=').toString(NS.CLIENT));
      return;
    }
    this.sasl = undefined;
    const step = this.rateLimited(sasl.exchange, outcome);
    if (step.kind === 'failure') {
      this.log.info({ event: 'auth-failure', mechanism: sasl.mechanism.name, condition: step.condition, user: sasl.exchange.authcid }, 'authentication failed');
      return this.saslFailure(step.condition, step.text);
    }
    this.username = step.username;
    this.log.info({ event: 'auth', mechanism: sasl.mechanism.name, user: `${step.username}@${this.host}` }, 'authenticated');
    const extra = step.additionalData;
    this.transport.write(x('success', NS.SASL, {}, extra && extra.length ? extra.toString('base64') : undefined).toString(NS.CLIENT));
    this.restart();
  }

  /**
   * Per-account and per-address limits on failed authentications. Checked once the
   * mechanism is done, so that while an account is limited every attempt on it gets the
   * same temporary-auth-failure, right password or not: the answer tells nothing.
   */
  private rateLimited(exchange: SaslExchange, step: Exclude<SaslStep, { kind: 'challenge' }>): Exclude<SaslStep, { kind: 'challenge' }> {
    const limiter = this.ctx.auth?.limiter;
    if (limiter === undefined) return step;
    const address = this.transport.remoteAddress;
    const user = step.kind === 'success' ? step.username : exchange.authcid;
    const account = user === undefined ? undefined : `${user}@${this.host}`;
    if (limiter.isLimited(address, account)) {
      this.log.info({ event: 'auth-rate-limited', user: account }, 'authentication refused: too many failures');
      return { kind: 'failure', condition: 'temporary-auth-failure', text: 'too many failed attempts, try again later' };
    }
    // Server-side trouble and a client's own abort are not guesses.
    if (step.kind === 'failure' && step.condition !== 'temporary-auth-failure' && step.condition !== 'aborted') {
      limiter.recordFailure(address, account);
    }
    return step;
  }

  private saslFailure(condition: SaslFailureCondition, text?: string): void {
    const f = x('failure', NS.SASL, {}, x(condition, NS.SASL));
    if (text) f.append(x('text', NS.SASL, { 'xml:lang': 'en' }, text));
    this.transport.write(f.toString(NS.CLIENT));
    if (condition !== 'aborted') this.countSaslFailure();
  }

  /** RFC 6120 §6.4.5: a bounded number of retries, then the stream is closed. */
  private countSaslFailure(): void {
    this.saslFailures++;
    if (this.saslFailures >= this.ctx.config.sasl.max_attempts) {
      this.closeWithError(new StreamError('policy-violation', 'too many failed authentication attempts'));
    }
  }

  private async beforeBind(el: Element): Promise<void> {
    if (el.name === 'iq' && el.xmlns === NS.CLIENT && el.attrs.type === 'set') {
      const bind = el.getChild('bind', NS.BIND);
      if (bind) return this.bindResource(el, bind);
      if (el.getChild('session', NS.SESSION)) return this.sendResult(el);
    }
    // RFC 6120 §7.1: nothing but binding is processed before a resource is bound.
    throw new StreamError('not-authorized', 'bind a resource first');
  }

  /** RFC 6120 §7.6 */
  private async bindResource(iq: Element, bind: Element): Promise<void> {
    const host = this.host!;
    const bare = `${this.username}@${host}`;
    const requested = bind.getChildText('resource');
    let resource: string;
    if (this.ctx.config.bind.resource === 'client' && requested !== undefined && requested !== '') {
      try {
        resource = prepResourcepart(requested);
      } catch (err) {
        if (!(err instanceof JidError)) throw err;
        return this.sendError(iq, new StanzaError('bad-request', 'invalid resourcepart'));
      }
      // RFC 6120 §7.7.2.2: on conflict we give the newcomer another resource rather than kick anyone.
      if (this.ctx.router.hasResource(bare, resource)) resource = `${resource}.${randomBytes(4).toString('hex')}`;
    } else {
      // The seed's policy: the server always picks the resource (RFC 6120 §7.6.2.1).
      resource = randomUUID();
    }
    this.jid = new Jid(this.username!, host, resource);
    if (!this.ctx.router.register(this)) {
      return this.sendError(iq, new StanzaError('conflict', 'resource already bound'));
    }
    this.bound = true;
    if (this.timer) clearTimeout(this.timer);
    this.armIdleTimer(this.ctx.config.timeouts.ping_after * 1000);
    this.log.info({ event: 'bind', jid: this.jid.toString() }, 'resource bound');
    const result = x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id }, x('bind', NS.BIND, {}, x('jid', NS.BIND, {}, this.jid.toString())));
    this.transport.write(result.toString(NS.CLIENT));
    this.ctx.sessionBound(this);
  }

  private sendResult(iq: Element): void {
    const result = x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id });
    if (this.bound) result.attrs.to = this.jid.toString();
    this.transport.write(result.toString(NS.CLIENT));
  }

  private sendError(stanza: Element, err: StanzaError): void {
    this.transport.write(errorReply(stanza, err).toString(NS.CLIENT));
  }

  // --- Idle detection (seed "Timeouts", XEP-0199 §4.1) -----------------------

  private armIdleTimer(ms: number): void {
    this.timer = setTimeout(() => this.onIdleTimer(), ms);
  }

  private onIdleTimer(): void {
    if (this.stage === 'closed') return;
    const { ping_after, ping_timeout } = this.ctx.config.timeouts;
    if (this.pingOutstanding) {
      // Nothing at all arrived within ping_timeout of the ping.
      this.endReason = 'timeout';
      this.closeWithError(new StreamError('connection-timeout', 'no answer to ping'));
      return;
    }
    const silentFor = Date.now() - this.lastActivity;
    if (silentFor >= ping_after * 1000) {
      this.pingOutstanding = true;
      const ping = x('iq', NS.CLIENT, { type: 'get', id: `ping-${randomBytes(6).toString('hex')}`, from: this.host, to: this.jid.toString() }, x('ping', NS.PING));
      this.transport.write(ping.toString(NS.CLIENT));
      this.armIdleTimer(ping_timeout * 1000);
    } else {
      this.armIdleTimer(ping_after * 1000 - silentFor);
    }
  }

  // --- Closing -----------------------------------------------------------------

  /** RFC 6120 §4.9.1.1: stream errors are unrecoverable: error element, close tag, close connection. */
  private closeWithError(err: StreamError): void {
    if (this.stage === 'closing' || this.stage === 'closed') return;
    if (err.condition === 'connection-timeout' && this.endReason === 'disconnect') this.endReason = 'timeout';
    else if (this.endReason === 'disconnect') this.endReason = 'error';
    this.sendHeader(this.host ?? this.ctx.defaultHost, undefined);
    this.log.info({ event: 'stream-error', condition: err.condition, text: err.text }, 'closing stream with error');
    this.transport.write(err.toElement().toString(NS.CLIENT) + '</stream:stream>');
    this.stage = 'closing';
    this.parser.stop();
    this.transport.end();
    this.endSession();
  }

  private closeStream(): void {
    if (this.stage === 'closing' || this.stage === 'closed') return;
    this.sendHeader(this.host ?? this.ctx.defaultHost, undefined);
    this.transport.write('</stream:stream>');
    this.stage = 'closing';
    this.parser.stop();
    this.transport.end();
    this.endSession();
  }

  /**
   * Once our closing tag is out, nothing more can reach the client over this stream, so the
   * session ends now (RFC 6121 §4.5.2: contacts hear at once), not when the peer, which may be
   * dead or silent, finally closes the TCP connection.
   */
  private endSession(): void {
    this.finish(this.endReason);
  }

  /** Runs once, whatever ended the connection. */
  private finish(reason: EndReason, error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.stage = 'closed';
    this.parser.stop();
    if (this.timer) clearTimeout(this.timer);
    this.log.info({ event: 'disconnect', reason, jid: this.bound ? this.jid.toString() : undefined, err: error?.message }, 'client disconnected');
    this.ctx.connectionClosed(this);
    if (this.bound) {
      this.ctx.router.unregister(this);
      this.ctx.sessionEnded(this, reason);
    }
    for (const cb of this.finishListeners) cb();
  }
}

/** RFC 6120 §6.4.2: '=' is an empty response; otherwise base64, or an encoding error. */
function decodeSasl(text: string): Buffer | undefined | null {
  const t = text.trim();
  if (t === '') return undefined;
  if (t === '=') return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) return null;
  return Buffer.from(t, 'base64');
}

export type { StreamErrorCondition };
