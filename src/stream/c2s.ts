// A client-to-server stream (RFC 6120 §4-§7): header checks, STARTTLS, SASL and
// resource binding over one transport; then a ClientSession (core/session.ts)
// that this stream carries until it ends. The stream also watches the client's
// liveness (pre-authentication limit, idle ping). Everything sent to the client
// after binding goes through the session, so the outgoing filters see it all.
import { Element, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import type { StreamHeader } from '../xml/parser.js';
import { Jid, JidError, prepResourcepart } from '../jid/jid.js';
import { StanzaError, StreamError, errorReply } from '../core/errors.js';
import { sessionUuid } from '../core/ids.js';
import { ClientSession, type EndReason, type SessionConnection, type SessionHost } from '../core/session.js';
import type { Router } from '../core/router.js';
import type { NonzaHandler, PreBindHandler, UnboundStream } from '../core/api.js';
import type { Session } from '../core/session.js';
import type { AuthServices, CredentialStore, LegacySecretSource } from '../core/credentials.js';
import type { SaslContext, SaslExchange, SaslFailureCondition, SaslMechanism, SaslStep } from '../core/sasl.js';
import type { Transport } from './transport.js';
import type { Framing } from './framing.js';
import { StreamConnection, type StreamEnv } from './connection.js';
import { RateShaper, limitsAnything, type AccountShapers } from './shaper.js';
import { randomToken } from '../core/random.js';

/** What a client stream needs from the server around it. */
export interface C2SContext extends StreamEnv {
  readonly router: Router;
  /** Where the client's session lives: outgoing filters, undeliverable handling, its end. */
  readonly sessions: SessionHost;
  /** The domain used in a stream header when the client's 'to' is not one of ours. */
  readonly defaultHost: string;
  /** Whether STARTTLS must happen before anything else (the config has a tls section). */
  readonly tlsRequired: boolean;
  /** The stores SASL checks credentials against. */
  readonly credentials: CredentialStore;
  readonly legacySecrets?: LegacySecretSource;
  /** Token verifier, external password check and rate limiter; absent in minimal test contexts. */
  readonly auth?: AuthServices;
  isLocalDomain(domain: string): boolean;
  offeredMechanisms(ctx: SaslContext): SaslMechanism[];
  /** Any mechanism this server implements, offered here or not (to tell invalid from needs-TLS). */
  knownMechanism(name: string): SaslMechanism | undefined;
  /** Stream features offered after authentication, beside bind (RFC 6120 §4.3.2). */
  streamFeatures(): readonly Element[];
  /** The handler for a nonza of this namespace on a bound stream, if any. */
  nonzaHandler(xmlns: string): NonzaHandler | undefined;
  /** The handler for a nonza of this namespace on an authenticated stream before binding (XEP-0198 resume), if any. */
  preBindHandler(xmlns: string): PreBindHandler | undefined;
  /** Rate shapers shared by all the connections of an account (limits.rate.account). */
  readonly accountShapers: AccountShapers;
  handleStanza(session: ClientSession, stanza: Element): Promise<void>;
  sessionBound(session: ClientSession): void;
  /** Counts logins and their failures by mechanism (core/metrics.ts), when metrics are on. */
  readonly countLogin?: (mechanism: string, ok: boolean) => void;
}

/** What an authenticated stream offers: no SASL mechanism (shared, so no array per connection). */
const NO_MECHANISMS: SaslMechanism[] = [];

export class C2SStream extends StreamConnection implements SessionConnection {
  private host: string | undefined;
  private username: string | undefined;
  private session: ClientSession | undefined;
  private sasl: { mechanism: SaslMechanism; exchange: SaslExchange } | undefined;
  private offered: SaslMechanism[] = [];
  private saslFailures = 0;
  /** The client asked for a channel binding type this connection does not have (tls-unique on TLS 1.3). */
  private askedMissingBinding = false;
  private lastActivity = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private pingOutstanding = false;
  /** Whether this stream holds its account's shared shaper (to be released at the end). */
  private accountShaped = false;

  constructor(
    private readonly ctx: C2SContext,
    transport: Transport,
    framing: Framing,
  ) {
    super(ctx, transport, framing, { conn: randomToken(4, 'hex') });
    if (limitsAnything(ctx.config.limits.rate.client)) this.shapers.push(new RateShaper(ctx.config.limits.rate.client));
    // RFC 6120 §4.6.2 / seed: a client that does not finish authenticating in time is dropped.
    this.timer = setTimeout(() => this.closeWithError(new StreamError('connection-timeout', 'authentication took too long')), ctx.config.timeouts.pre_auth * 1000);
    // The listener keeps the process alive; a connection's timers must not (in-process tests).
    this.timer.unref();
    this.log.info({ event: 'connect' }, 'client connected');
  }

  /** Whether a resource is bound on this stream. */
  get authenticated(): boolean {
    return this.session !== undefined;
  }

  protected get defaultFrom(): string {
    return this.host ?? this.ctx.defaultHost;
  }

  protected override onData(): void {
    this.lastActivity = Date.now();
    // XEP-0199 §4.1 / seed "Timeouts": any bytes, whitespace keepalives included, answer an
    // outstanding ping; decided here rather than by timing when the ping timer fires, which
    // may run late and would then drop a client that answered in time.
    this.pingOutstanding = false;
  }

  // --- SessionConnection ------------------------------------------------------------------

  /**
   * Output buffer limits. Over `congestionBytes` the client is not keeping up: nothing more from
   * others is written (the session diverts it, see SessionHost.congested), and reading from the
   * client pauses until it has read what it has (its own requests would only add replies). Only
   * the client's own traffic can then fill the buffer further; over `hardLimitBytes` that is a
   * client that does not read at all, and its stream ends.
   */
  private get congestionBytes(): number {
    return this.ctx.config.limits.max_stanza_bytes * 4;
  }

  private get hardLimitBytes(): number {
    return this.ctx.config.limits.max_stanza_bytes * 16;
  }

  private drainWaiters: ((open: boolean) => void)[] | undefined;
  private wasCongested = false;

  get congested(): boolean {
    const pending = this.transport.pendingBytes;
    if (pending <= this.congestionBytes) return false;
    if (!this.wasCongested) {
      this.wasCongested = true;
      this.pauseReading('output');
      this.log.info({ event: 'congested', pending }, 'client is not keeping up with its stream: held back');
    }
    return true;
  }

  drained(): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    if (!this.congested) return Promise.resolve(true);
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  write(stanza: Element): boolean {
    if (!this.writeElement(stanza)) return false;
    // Noticed here too, so that the drain after it releases what waits.
    if (this.congested && this.transport.pendingBytes > this.hardLimitBytes) {
      // A client that does not read its socket must not make us buffer without bound.
      this.closeWithError(new StreamError('policy-violation', 'client is not reading its stream'));
    }
    return true;
  }

  protected override onDrained(): void {
    if (!this.wasCongested) return;
    this.wasCongested = false;
    this.resumeReading('output');
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    if (waiters) for (const w of waiters) w(true);
    this.session?.onDrained();
  }

  // --- Header and features --------------------------------------------------------------

  protected onStreamStart(h: StreamHeader): void {
    const to = (h.attrs.to ?? '').toLowerCase();
    const served = this.ctx.isLocalDomain(to);
    // The 'to' of our header is the client's JID once it is known (RFC 6120 §4.7.2).
    const peer = this.username !== undefined ? h.attrs.from : undefined;
    if (served && this.host !== undefined && to !== this.host) {
      // RFC 6120 §4.3.3: the restarted stream must be for the same domain.
      this.sendHeader(this.host, h, peer);
      this.closeWithError(new StreamError('host-unknown', 'stream restarted for another domain'));
      return;
    }
    this.sendHeader(served ? to : this.ctx.defaultHost, h, peer);
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
    this.opened();
    this.writeFeatures(this.features());
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
      bindingFallback: this.askedMissingBinding && this.ctx.config.sasl.tls_unique_fallback,
      accounts: this.ctx.credentials,
      remoteAddress: t.remoteAddress,
      legacySecrets: this.ctx.legacySecrets,
      tokens: this.ctx.auth?.tokens,
      passwords: this.ctx.auth?.passwords,
    };
  }

  /** A nonza of the negotiation (TLS, SASL), written before any session exists. */
  private writeNonza(el: Element): void {
    this.transport.write(this.framing.element(el));
  }

  // --- Element processing ------------------------------------------------------------------

  protected async process(el: Element): Promise<void> {
    if (this.ctx.tlsRequired && !this.transport.secure) return this.beforeTls(el);
    if (this.username === undefined) return this.beforeAuth(el);
    const session = this.session;
    if (!session) return this.beforeBind(el);
    if (el.xmlns !== NS.CLIENT) {
      const handler = this.ctx.nonzaHandler(el.xmlns);
      if (handler) return handler(session, el);
      throw new StreamError('unsupported-stanza-type', `<${el.name}/> in ${el.xmlns}`);
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      throw new StreamError('unsupported-stanza-type', `<${el.name}/> in ${el.xmlns}`);
    }
    if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS.SESSION)) {
      session.send(this.result(el));
      session.countHandled();
      return;
    }
    this.checkFrom(el, session.jid);
    el.attrs.from = session.jid.toString();
    await this.ctx.handleStanza(session, el);
    // XEP-0198 §4: handled (routed, stored or answered): acknowledged from now on.
    session.countHandled();
  }

  /** RFC 6120 §8.1.2.1: the server stamps 'from'; a client may only state its own JID. */
  private checkFrom(el: Element, own: Jid): void {
    const from = el.attrs.from;
    if (from === undefined) return;
    let jid: Jid;
    try {
      jid = Jid.parse(from);
    } catch {
      throw new StreamError('invalid-from', 'malformed from address');
    }
    if (jid.equals(own) || (jid.isBare() && jid.equals(own.bare))) return;
    throw new StreamError('invalid-from', 'from does not match the authenticated identity');
  }

  private async beforeTls(el: Element): Promise<void> {
    if (el.name === 'starttls' && el.xmlns === NS.TLS) return this.startTls();
    if (el.name === 'auth' && el.xmlns === NS.SASL) {
      // RFC 6120 §6.4.1 / §5.3.1: secrets only travel after TLS when TLS is required.
      this.writeNonza(x('failure', NS.SASL, {}, x('encryption-required', NS.SASL)));
      return this.countSaslFailure();
    }
    throw new StreamError('not-authorized', 'STARTTLS is required first');
  }

  private async startTls(): Promise<void> {
    if (!this.transport.canStartTls) {
      // RFC 6120 §5.4.2.2: failure, then the stream and connection are closed.
      this.transport.write(this.framing.element(x('failure', NS.TLS)));
      this.transport.write(this.framing.footer());
      this.stage = 'closing';
      this.transport.end();
      return;
    }
    this.writeNonza(x('proceed', NS.TLS));
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
    if (!this.open) return;
    if (outcome.kind === 'challenge') {
      this.writeNonza(x('challenge', NS.SASL, {}, outcome.data.length ? outcome.data.toString('base64') : '='));
      return;
    }
    this.sasl = undefined;
    if (outcome.kind === 'failure' && outcome.mismatch !== undefined) {
      // A protocol mismatch, not a guess: answered, not counted (RFC 6120 §6.4.5 limits retries of credentials).
      if (outcome.mismatch === 'channel-binding') this.askedMissingBinding = true;
      this.log.info({ event: 'auth-mismatch', mechanism: sasl.mechanism.name, mismatch: outcome.mismatch, text: outcome.text }, 'authentication attempt refused');
      return this.saslFailure(outcome.condition, outcome.text, false);
    }
    const step = this.rateLimited(sasl.exchange, outcome);
    if (step.kind === 'failure') {
      this.log.info({ event: 'auth-failure', mechanism: sasl.mechanism.name, condition: step.condition, user: sasl.exchange.authcid }, 'authentication failed');
      this.ctx.countLogin?.(sasl.mechanism.name, false);
      return this.saslFailure(step.condition, step.text);
    }
    this.username = step.username;
    // Nothing is offered after a success (RFC 6120 §6.4.6: the stream restarts authenticated).
    this.offered = NO_MECHANISMS;
    this.log.info({ event: 'auth', mechanism: sasl.mechanism.name, user: `${step.username}@${this.host}` }, 'authenticated');
    this.ctx.countLogin?.(sasl.mechanism.name, true);
    const extra = step.additionalData;
    this.writeNonza(x('success', NS.SASL, {}, extra && extra.length ? extra.toString('base64') : undefined));
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
    // Server-side trouble and a client's own abort are not guesses.
    const guess = step.kind === 'failure' && step.condition !== 'temporary-auth-failure' && step.condition !== 'aborted';
    const limited: Exclude<SaslStep, { kind: 'challenge' }> = { kind: 'failure', condition: 'temporary-auth-failure', text: 'too many failed attempts, try again later' };
    if (limiter.isLimited(address)) {
      this.log.info({ event: 'auth-rate-limited', user: account }, 'authentication refused: too many failures from this address');
      return limited;
    }
    if (account !== undefined && limiter.isLimited(address, account)) {
      // The account is limited, not this address: its owner, with the right credentials from an
      // address that has not failed, gets in; anything else here is answered as limited and
      // charged to the address (so a guess from a fresh address makes it a failed one).
      if (step.kind === 'success' && limiter.isClean(address)) {
        this.log.info({ event: 'auth-limited-account-clean-address', user: account }, 'limited account, clean address: login allowed');
        return step;
      }
      if (guess) limiter.recordFailure(address);
      this.log.info({ event: 'auth-rate-limited', user: account }, 'authentication refused: too many failures on this account');
      return limited;
    }
    if (guess) limiter.recordFailure(address, account);
    return step;
  }

  private saslFailure(condition: SaslFailureCondition, text?: string, counted = condition !== 'aborted'): void {
    const f = x('failure', NS.SASL, {}, x(condition, NS.SASL));
    if (text) f.append(x('text', NS.SASL, { 'xml:lang': 'en' }, text));
    this.writeNonza(f);
    if (counted) this.countSaslFailure();
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
      if (el.getChild('session', NS.SESSION)) return this.writeNonza(this.result(el));
    }
    if (el.xmlns !== NS.CLIENT) {
      const handler = this.ctx.preBindHandler(el.xmlns);
      if (handler) return handler(this.unbound(), el);
    }
    // RFC 6120 §7.1: nothing but binding is processed before a resource is bound.
    throw new StreamError('not-authorized', 'bind a resource first');
  }

  /** RFC 6120 §7.6 */
  private async bindResource(iq: Element, bind: Element): Promise<void> {
    const host = this.host!;
    const bare = `${this.username}@${host}`;
    const max = this.ctx.config.limits.max_sessions_per_account;
    if (this.ctx.router.getSessions(bare).length >= max) {
      // RFC 6120 §7.6.2.1: the account has reached its limit of simultaneous resources.
      return this.writeNonza(errorReply(iq, new StanzaError('resource-constraint', `no more than ${max} resources at once`)));
    }
    const requested = bind.getChildText('resource');
    let resource: string;
    if (this.ctx.config.bind.resource === 'client' && requested !== undefined && requested !== '') {
      try {
        resource = prepResourcepart(requested);
      } catch (err) {
        if (!(err instanceof JidError)) throw err;
        return this.writeNonza(errorReply(iq, new StanzaError('bad-request', 'invalid resourcepart')));
      }
      // RFC 6120 §7.7.2.2: on conflict we give the newcomer another resource rather than kick anyone.
      if (this.ctx.router.hasResource(bare, resource)) resource = `${resource}.${randomToken(4, 'hex')}`;
    } else {
      // The seed's policy: the server always picks the resource (RFC 6120 §7.6.2.1).
      resource = sessionUuid();
    }
    let session = new ClientSession(this.ctx.sessions, new Jid(this.username!, host, resource), this);
    if (!(await this.ctx.router.register(session))) {
      // Taken meanwhile, here or (in a cluster) on another node: §7.7.2.2 again, once.
      session = new ClientSession(this.ctx.sessions, new Jid(this.username!, host, `${resource}.${randomToken(4, 'hex')}`), this);
      if (!(await this.ctx.router.register(session))) {
        return this.writeNonza(errorReply(iq, new StanzaError('conflict', 'resource already bound')));
      }
    }
    if (!this.open) {
      // The stream ended while the registry was claiming the resource.
      this.ctx.router.unregister(session);
      return;
    }
    this.carry(session);
    this.log.info({ event: 'bind', jid: session.jid.toString() }, 'resource bound');
    session.send(x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id }, x('bind', NS.BIND, {}, x('jid', NS.BIND, {}, session.jid.toString()))));
    this.ctx.sessionBound(session);
  }

  /** From now on this stream carries the session: its account's rate, the idle ping. */
  private carry(session: ClientSession): void {
    this.session = session;
    const shaper = this.ctx.accountShapers.acquire(session.jid.bareString());
    if (shaper) {
      this.shapers.push(shaper);
      this.accountShaped = true;
    }
    if (this.timer) clearTimeout(this.timer);
    this.armIdleTimer(this.ctx.config.timeouts.ping_after * 1000);
  }

  /** What a pre-bind handler may do with this authenticated stream. */
  private unbound(): UnboundStream {
    const account = new Jid(this.username!, this.host!);
    return {
      account,
      writeNonza: (el) => this.writeNonza(el),
      adopt: (session: Session) => {
        if (!(session instanceof ClientSession) || session.ended || !this.open || this.session) return false;
        if (!session.jid.bare.equals(account)) return false;
        const previous = session.attach(this);
        this.carry(session);
        this.log.info({ event: 'resume', jid: session.jid.toString() }, 'session resumed');
        // XEP-0198 §5: a stream still open for the resumed session is closed with conflict.
        previous?.close(new StreamError('conflict', 'the session was resumed on another connection'));
        return true;
      },
      close: (error) => this.close(error),
    };
  }

  private result(iq: Element): Element {
    const result = x('iq', NS.CLIENT, { type: 'result', id: iq.attrs.id });
    if (this.session) result.attrs.to = this.session.jid.toString();
    return result;
  }

  // --- Idle detection (seed "Timeouts", XEP-0199 §4.1) -----------------------

  private armIdleTimer(ms: number): void {
    // The stream as the timer's argument, not a closure over it: the timer lives as long as
    // the connection, and a closure with its context would too.
    this.timer = setTimeout(C2SStream.idleTimerFired, ms, this);
    this.timer.unref();
  }

  private static idleTimerFired(stream: C2SStream): void {
    stream.onIdleTimer();
  }

  private onIdleTimer(): void {
    const session = this.session;
    if (this.stage === 'closed' || !session) return;
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
      this.ctx.sessions.idle(session);
      session.send(x('iq', NS.CLIENT, { type: 'get', id: `ping-${randomToken(6, 'hex')}`, from: this.host, to: session.jid.toString() }, x('ping', NS.PING)));
      this.armIdleTimer(ping_timeout * 1000);
    } else {
      this.armIdleTimer(ping_after * 1000 - silentFor);
    }
  }

  // --- The end ---------------------------------------------------------------------------

  protected onFinish(reason: EndReason, error?: Error): void {
    if (this.timer) clearTimeout(this.timer);
    const waiters = this.drainWaiters;
    this.drainWaiters = undefined;
    if (waiters) for (const w of waiters) w(false);
    const session = this.session;
    this.log.info({ event: 'disconnect', reason, jid: session?.jid.toString(), err: error?.message }, 'client disconnected');
    if (session && this.accountShaped) this.ctx.accountShapers.release(session.jid.bareString());
    session?.detach(this, reason);
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
