// One simulated XMPP client: the seed's full login over a real socket (RFC 6120
// §5 STARTTLS, §6 SASL SCRAM-SHA-1, §7 bind, RFC 3921 session, RFC 6121 §2.2
// roster get, §4.2 initial presence), then whatever the load generator asks it
// to send, counting what it receives. With stream management (XEP-0198) it
// also counts inbound stanzas ('h'), answers <r/>, and can lose its connection
// and resume the session on a new one.
import net from 'node:net';
import tls from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import { ScramSha1Client, type ScramCache } from './scram.js';
import { XmlStreamReader, child, escapeXml, type XmlElement } from './xml.js';

export const NS = {
  STREAM: 'http://etherx.jabber.org/streams',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session',
  ROSTER: 'jabber:iq:roster',
  PING: 'urn:xmpp:ping',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  SM: 'urn:xmpp:sm:3',
} as const;

/** XEP-0198 §4: 'h' is an unsignedInt and wraps to 0. */
const H_MOD = 2 ** 32;

export interface ClientSettings {
  host: string;
  port: number;
  /** The XMPP domain (stream 'to', SNI). */
  domain: string;
  user: string;
  password: string;
  cache: ScramCache;
  /**
   * Shared by all clients: a context per connection would load OpenSSL's CA store every time,
   * making the generator pay more for a handshake than the server does.
   */
  secureContext: tls.SecureContext;
  /** Verify the server certificate (against the context's CAs); otherwise any certificate is accepted. */
  verify: boolean;
  /** Bound on each login step (connect, each round trip). */
  stepTimeoutMs: number;
  /** Requested resource (servers may override it, RFC 6120 §7.6). */
  resource?: string;
  /** XEP-0198: enable stream management with resumption right after bind. */
  sm?: boolean;
  /** The source address to connect from (a loopback one other than 127.0.0.1: more ports). */
  localAddress?: string;
}

export interface ClientEvents {
  message(client: LoadClient, el: XmlElement): void;
  /** Every presence stanza received once online (available, unavailable, errors). */
  presence?(client: LoadClient, el: XmlElement): void;
  /** The connection is gone, whoever ended it. */
  closed?(client: LoadClient): void;
}

/** The step a login was in, for failure reports. */
export type LoginStep = 'connect' | 'stream' | 'starttls' | 'tls' | 'sasl' | 'bind' | 'session' | 'sm' | 'roster' | 'presence' | 'resume';

export class LoginError extends Error {
  constructor(
    readonly step: LoginStep,
    message: string,
  ) {
    super(`${step}: ${message}`);
  }
}

interface Waiter {
  pred: (el: XmlElement) => boolean;
  resolve: (el: XmlElement) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const header = (to: string): string =>
  `<?xml version='1.0'?><stream:stream to='${escapeXml(to)}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='${NS.STREAM}'>`;

export class LoadClient {
  jid = '';
  bare: string;
  online = false;
  closed = false;
  /** Roster items in the roster result (RFC 6121 §2.1.3). */
  rosterItems = -1;
  /** Available presence received from other entities. */
  presences = 0;
  /** Distinct senders of available presence. */
  readonly presenceFrom = new Set<string>();
  messagesReceived = 0;
  tlsProtocol = '';
  tlsCipher = '';
  /** Anything the client noticed after login that it did not expect (stream errors, bad XML). */
  problem: string | undefined;
  /** XEP-0198: the SM-ID to resume with, once the server has enabled resumption. */
  smId: string | undefined;
  /** XEP-0198 'h': stanzas received since <enabled/> (the retransmissions after <resumed/> included). */
  h = 0;

  private socket: net.Socket | undefined;
  private secure: tls.TLSSocket | undefined;
  private decoder = new StringDecoder('utf8');
  private readonly reader: XmlStreamReader;
  private waiter: Waiter | undefined;
  private step: LoginStep = 'connect';
  private ids = 0;
  /** Pings sent with ping(), by id: several may be in flight beside other traffic. */
  private readonly pings = new Map<string, { resolve: (ok: boolean) => void; timer: NodeJS.Timeout }>();
  private closeWaiters: (() => void)[] = [];
  private closing = false;
  /** Counts up with every connection: events of a connection given up (drop()) are ignored. */
  private conn = 0;
  /** Milliseconds spent in each login step. */
  readonly stepMs: Partial<Record<LoginStep, number>> = {};
  /** The same for the last resume (connect, stream, starttls, tls, sasl, resume). */
  readonly resumeStepMs: Partial<Record<LoginStep, number>> = {};
  private timing = this.stepMs;
  private stepStart = 0;

  constructor(
    readonly settings: ClientSettings,
    private readonly events: ClientEvents,
  ) {
    this.bare = `${settings.user}@${settings.domain}`;
    this.reader = new XmlStreamReader({
      open: () => undefined,
      element: (el) => this.onElement(el),
      close: () => this.fault('the server closed the stream'),
      error: (m) => this.fault(`bad XML from server: ${m}`),
    });
  }

  /**
   * A new connection up to an authenticated stream (connect, STARTTLS, SCRAM-SHA-1, stream
   * restart): the part a login and a resume share. Returns the features after SASL.
   */
  private async authenticate(): Promise<XmlElement> {
    const s = this.settings;
    const conn = ++this.conn;
    this.closed = false;
    this.closing = false;
    this.secure = undefined;
    this.decoder = new StringDecoder('utf8');
    this.reader.reset();
    this.enter('connect');
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const sock = net.connect({ host: s.host, port: s.port, localAddress: s.localAddress });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new LoginError('connect', 'timed out'));
      }, s.stepTimeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(sock);
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(new LoginError('connect', err.message));
      });
    });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      if (this.live(conn)) this.reader.write(this.decoder.write(d));
    });
    socket.on('error', (err) => {
      if (this.live(conn)) this.fault(`socket error: ${err.message}`);
    });
    socket.on('close', () => {
      if (this.live(conn)) this.onClose();
    });

    this.enter('stream');
    this.send(header(s.domain));
    const f1 = await this.expect((el) => el.name === 'features');
    if (!child(f1, 'starttls', NS.TLS)) throw new LoginError('starttls', 'server does not offer STARTTLS');

    this.enter('starttls');
    this.send(`<starttls xmlns='${NS.TLS}'/>`);
    const proceed = await this.expect((el) => el.name === 'proceed' || el.name === 'failure');
    if (proceed.name !== 'proceed') throw new LoginError('starttls', 'server refused STARTTLS');
    await this.startTls(socket, conn);

    this.enter('sasl');
    const f2 = await this.restart();
    const mechs = child(f2, 'mechanisms', NS.SASL)?.children.map((m) => m.text.trim()) ?? [];
    if (!mechs.includes('SCRAM-SHA-1')) throw new LoginError('sasl', `SCRAM-SHA-1 not offered (${mechs.join(' ')})`);
    const scram = new ScramSha1Client(s.user, s.password, s.cache);
    this.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-1'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
    const challenge = await this.expect((el) => el.name === 'challenge' || el.name === 'failure');
    if (challenge.name !== 'challenge') throw new LoginError('sasl', `refused: ${describeFailure(challenge)}`);
    const final = await scram.final(Buffer.from(challenge.text.trim(), 'base64').toString());
    this.send(`<response xmlns='${NS.SASL}'>${Buffer.from(final).toString('base64')}</response>`);
    let outcome = await this.expect((el) => el.name === 'success' || el.name === 'failure' || el.name === 'challenge');
    if (outcome.name === 'challenge') {
      // RFC 6120 §6.4.6 allows the server-final-message as a last challenge instead of in <success/>.
      if (!scram.verify(Buffer.from(outcome.text.trim(), 'base64').toString())) throw new LoginError('sasl', 'server signature did not verify');
      this.send(`<response xmlns='${NS.SASL}'/>`);
      outcome = await this.expect((el) => el.name === 'success' || el.name === 'failure');
      if (outcome.name !== 'success') throw new LoginError('sasl', `refused: ${describeFailure(outcome)}`);
    } else if (outcome.name !== 'success') throw new LoginError('sasl', `refused: ${describeFailure(outcome)}`);
    else if (!scram.verify(Buffer.from(outcome.text.trim(), 'base64').toString())) throw new LoginError('sasl', 'server signature did not verify');
    return this.restart();
  }


  /** Runs the whole login; resolves once initial presence has been processed by the server. */
  async login(): Promise<void> {
    const s = this.settings;
    const f3 = await this.authenticate();

    this.enter('bind');    this.enter('bind');
    if (!child(f3, 'bind', NS.BIND)) throw new LoginError('bind', 'bind not offered');
    const resource = s.resource ? `<resource>${escapeXml(s.resource)}</resource>` : '';
    const bound = await this.iq(`<iq type='set' id='%ID%'><bind xmlns='${NS.BIND}'>${resource}</bind></iq>`);
    const jid = child(bound, 'bind')?.children.find((c) => c.name === 'jid')?.text.trim();
    if (bound.attrs.type !== 'result' || !jid) throw new LoginError('bind', 'no JID in bind result');
    this.jid = jid;

    // RFC 3921 §3 session: the seed's login sends it; servers that still advertise it answer with a result.
    const session = child(f3, 'session', NS.SESSION);
    if (session) {
      this.enter('session');
      const r = await this.iq(`<iq type='set' id='%ID%'><session xmlns='${NS.SESSION}'/></iq>`);
      if (r.attrs.type !== 'result') throw new LoginError('session', 'session refused');
    }

    // XEP-0198 §3: enabled right after bind, so that 'h' counts everything the session receives.
    if (s.sm) {
      this.enter('sm');
      if (!child(f3, 'sm', NS.SM)) throw new LoginError('sm', 'stream management not offered');
      this.send(`<enable xmlns='${NS.SM}' resume='true'/>`);
      const enabled = await this.expect((el) => (el.name === 'enabled' || el.name === 'failed') && el.attrs.xmlns === NS.SM);
      if (enabled.name !== 'enabled') throw new LoginError('sm', `refused: ${describeFailure(enabled)}`);
      const resume = enabled.attrs.resume;
      if (!enabled.attrs.id || (resume !== 'true' && resume !== '1')) throw new LoginError('sm', 'resumption not granted');
      this.smId = enabled.attrs.id;
      this.h = 0;
    }

    this.enter('roster');
    const roster = await this.iq(`<iq type='get' id='%ID%'><query xmlns='${NS.ROSTER}'/></iq>`);
    if (roster.attrs.type !== 'result') throw new LoginError('roster', 'roster get failed');
    this.rosterItems = child(roster, 'query')?.children.filter((c) => c.name === 'item').length ?? 0;

    // RFC 6120 §10.1: a server processes one client's stanzas in order, so the answer to a
    // ping sent right after initial presence means the presence has been handled
    // (broadcast and probes sent) — the same "online" point on every server.
    this.enter('presence');
    this.send('<presence/>');
    await this.roundTrip();
    this.enter(undefined);
    this.online = true;
  }

  /**
   * XEP-0198 §5: a new connection and authentication, then <resume/> instead of bind. Resolves
   * once the server has answered a ping sent after <resumed/>: it writes what it retransmits
   * before that answer (RFC 6120 §10.1), so by then every retransmitted stanza has arrived.
   */
  async resume(): Promise<void> {
    if (this.smId === undefined) throw new LoginError('resume', 'stream management was not enabled with resumption');
    this.timing = this.resumeStepMs;
    this.stepStart = 0;
    const features = await this.authenticate();
    this.enter('resume');
    if (!child(features, 'sm', NS.SM)) throw new LoginError('resume', 'stream management not offered');
    this.send(`<resume xmlns='${NS.SM}' previd='${escapeXml(this.smId)}' h='${this.h}'/>`);
    const outcome = await this.expect((el) => (el.name === 'resumed' || el.name === 'failed') && el.attrs.xmlns === NS.SM);
    if (outcome.name !== 'resumed') throw new LoginError('resume', `refused: ${describeFailure(outcome)}`);
    await this.roundTrip();
    this.enter(undefined);
    this.online = true;
  }

  /** A ping round trip to the server during a login or resume: everything sent before has been handled once it returns (RFC 6120 §10.1). */
  async roundTrip(): Promise<void> {
    await this.iq(`<iq type='get' id='%ID%' to='${escapeXml(this.settings.domain)}'><ping xmlns='${NS.PING}'/></iq>`);
  }

  /** An IQ once online ('%ID%' in the template is replaced by a fresh id); resolves with the answer. */
  request(template: string): Promise<XmlElement> {
    return this.iq(template);
  }

  /** XEP-0198 §4: an unrequested <a/>, telling the server everything received so far has been handled. */
  ack(): void {
    this.send(`<a xmlns='${NS.SM}' h='${this.h}'/>`);
  }

  /** Charges the time since the last step change to the current step; undefined ends the login's timing. */
  private enter(step: LoginStep | undefined): void {
    const now = performance.now();
    if (this.stepStart > 0) this.timing[this.step] = (this.timing[this.step] ?? 0) + (now - this.stepStart);
    if (step !== undefined) this.step = step;
    this.stepStart = now;
  }

  /** Whether `conn` is still the client's connection (events from one given up are ignored). */
  private live(conn: number): boolean {
    return conn === this.conn;
  }

  send(data: string): void {
    const s = this.secure ?? this.socket;
    if (s && !s.destroyed) s.write(data);
  }

  /** Sends a chat message to a bare JID with `body` (and `id`, when given). */
  sendMessage(to: string, body: string, id?: string): void {
    this.send(`<message to='${to}' type='chat'${id === undefined ? '' : ` id='${escapeXml(id)}'`}><body>${body}</body></message>`);
  }

  /**
   * XEP-0199 ping to the server once online; resolves true on its result, false on an error,
   * a timeout or the end of the connection. RFC 6120 §10.1: the server handles a client's
   * stanzas in order, so the result means everything sent before has been handled.
   */
  ping(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const id = `p${++this.ids}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        resolve(false);
      }, timeoutMs);
      this.pings.set(id, { resolve, timer });
      this.send(`<iq type='get' id='${id}' to='${escapeXml(this.settings.domain)}'><ping xmlns='${NS.PING}'/></iq>`);
    });
  }

  /** Ends the stream politely (RFC 6120 §4.4), waiting at most `timeoutMs` for the server to close. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    this.send(this.online ? `<presence type='unavailable'/></stream:stream>` : '</stream:stream>');
    const timer = setTimeout(() => this.destroy(), timeoutMs);
    await done;
    clearTimeout(timer);
  }

  destroy(): void {
    this.secure?.destroy();
    this.socket?.destroy();
    if (!this.closed) this.onClose();
  }

  /**
   * Loses the connection the way a dead network or a killed client does: a TCP reset, no
   * </stream:stream>, no TLS close_notify. The server must keep the session for a resume
   * (XEP-0198 §5). Not a problem to report: the generator asked for it.
   */
  drop(): void {
    const raw = this.socket;
    const secure = this.secure;
    this.closing = true;
    this.conn++;
    // resetAndDestroy needs the TCP handle: the raw socket's, not the TLS wrapper's.
    if (raw && !raw.destroyed) raw.resetAndDestroy();
    secure?.destroy();
    this.onClose();
  }

  private async startTls(raw: net.Socket, conn: number): Promise<void> {
    this.enter('tls');
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    this.secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        socket: raw,
        servername: this.settings.domain,
        secureContext: this.settings.secureContext,
        rejectUnauthorized: this.settings.verify,
      });
      const timer = setTimeout(() => reject(new LoginError('tls', 'handshake timed out')), this.settings.stepTimeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new LoginError('tls', err.message));
      });
    });
    this.tlsProtocol = this.secure.getProtocol() ?? '';
    this.tlsCipher = this.secure.getCipher()?.name ?? '';
    this.secure.setEncoding('utf8');
    this.secure.on('data', (d: string) => {
      if (this.live(conn)) this.reader.write(d);
    });
    this.secure.on('error', (err) => {
      if (this.live(conn)) this.fault(`TLS error: ${err.message}`);
    });
    this.secure.on('close', () => {
      if (this.live(conn)) this.onClose();
    });
  }

  /** RFC 6120 §4.3.3: a new stream on the same connection; returns its features. */
  private async restart(): Promise<XmlElement> {
    this.reader.reset();
    this.send(header(this.settings.domain));
    return this.expect((el) => el.name === 'features');
  }

  /** Sends an IQ (its id written as %ID%) and waits for the response with that id. */
  private async iq(template: string): Promise<XmlElement> {
    const id = `q${++this.ids}`;
    this.send(template.replace('%ID%', id));
    return this.expect((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'));
  }

  private expect(pred: (el: XmlElement) => boolean): Promise<XmlElement> {
    if (this.closed) return Promise.reject(new LoginError(this.step, this.problem ?? 'connection closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new LoginError(this.step, 'timed out'));
      }, this.settings.stepTimeoutMs);
      this.waiter = { pred, resolve, reject, timer };
    });
  }

  private onElement(el: XmlElement): void {
    if (el.name === 'error' && el.attrs.xmlns === undefined) {
      // <stream:error/> (RFC 6120 §4.9): the stream is over.
      const condition = el.children.find((c) => c.name !== 'text')?.name ?? 'unknown';
      return this.fault(`stream error: ${condition}`);
    }
    // XEP-0198 §4: every stanza counts, whoever consumes it (an IQ result awaited below included).
    if (this.smId !== undefined && (el.name === 'message' || el.name === 'presence' || el.name === 'iq')) this.h = (this.h + 1) % H_MOD;
    const w = this.waiter;
    if (w && w.pred(el)) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(el);
      return;
    }
    switch (el.name) {
      case 'message':
        this.messagesReceived++;
        this.events.message(this, el);
        return;
      case 'presence':
        if (el.attrs.type === undefined && el.attrs.from !== undefined && el.attrs.from !== this.jid) {
          this.presences++;
          this.presenceFrom.add(el.attrs.from);
        }
        this.events.presence?.(this, el);
        return;
      case 'iq': {
        const ping = el.attrs.type === 'result' || el.attrs.type === 'error' ? this.pings.get(el.attrs.id ?? '') : undefined;
        if (ping) {
          this.pings.delete(el.attrs.id!);
          clearTimeout(ping.timer);
          ping.resolve(el.attrs.type === 'result');
          return;
        }
        return this.answerIq(el);
      }
      case 'r':
        if (el.attrs.xmlns === NS.SM) this.ack();
        return;
      default:
        return;
    }
  }

  /** RFC 6120 §8.2.3: every get/set is answered; pings and roster pushes (RFC 6121 §2.1.6) with a result. */
  private answerIq(el: XmlElement): void {
    const type = el.attrs.type;
    if (type !== 'get' && type !== 'set') return;
    const to = el.attrs.from ? ` to='${escapeXml(el.attrs.from)}'` : '';
    const id = escapeXml(el.attrs.id ?? '');
    const payload = el.children[0];
    if ((type === 'get' && payload?.name === 'ping') || (type === 'set' && payload?.name === 'query' && payload.attrs.xmlns === NS.ROSTER)) {
      this.send(`<iq type='result' id='${id}'${to}/>`);
    } else {
      this.send(`<iq type='error' id='${id}'${to}><error type='cancel'><service-unavailable xmlns='${NS.STANZAS}'/></error></iq>`);
    }
  }

  private fault(problem: string): void {
    if (!this.closing) this.problem ??= problem;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(new LoginError(this.step, problem));
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.online = false;
    this.fault('connection closed');
    for (const p of this.pings.values()) {
      clearTimeout(p.timer);
      p.resolve(false);
    }
    this.pings.clear();
    for (const cb of this.closeWaiters.splice(0)) cb();
    this.events.closed?.(this);
  }
}

function describeFailure(el: XmlElement): string {
  return el.children.find((c) => c.name !== 'text')?.name ?? el.name;
}
