// The soak's clients: one LoadClient per account (bench/load/client.ts, the seed's
// full login over STARTTLS and SCRAM-SHA-1), and the traffic between them —
// chat messages between contacts, presence changes, abrupt drops and clean
// logouts followed by a reconnect — with every message accounted for.
//
// A message is acknowledged when its sender gets the result of a ping sent
// right after it (RFC 6120 §10.1: the server handles one client's stanzas in
// order, so the message has been routed by then: delivered, or stored offline).
// Every acknowledged message must reach its recipient exactly once, live or from
// offline storage (XEP-0160) at a later login.
//
// Without stream management (XEP-0198) a stanza written to a connection that the
// client then destroys cannot be accounted for by anyone, so an abrupt drop is
// prepared as a real client could not, but a fair test must: the victim is
// quiesced first (nobody sends it anything new, and the drop waits until all
// that was sent to it has arrived and its own messages are acknowledged; if that
// takes too long the drop is called off). Once its socket is destroyed, nobody
// sends to it until its unavailable presence has been seen: the server sends
// that after taking the session out of routing (src/core/dispatcher.ts ended()),
// so from then on messages for it go to offline storage (see Account.stale). A clean logout needs no such care: the server delivers
// what it routed before its closing tag, and stores what comes after.
import { createSecureContext, type SecureContext } from 'node:tls';
import { LoadClient, LoginError } from '../load/client.js';
import { percentiles, sleep, until, type Percentiles } from '../load/run.js';
import type { ScramCache } from '../load/scram.js';
import type { XmlElement } from '../load/xml.js';

export interface TrafficPlan {
  /** Chat messages per second, all senders together. */
  msgRate: number;
  /** Presence changes (show away/xa/dnd/chat or back to plain available) per second. */
  presenceRate: number;
  /** Abrupt drops (socket destroyed, no closing tag) per second; each reconnects after a pause. */
  dropRate: number;
  /** Clean logouts (unavailable presence, closing tag) per second; each reconnects after a pause. */
  logoutRate: number;
  /** How long a dropped or logged-out account stays away, ms (uniform between the two). */
  offlinePauseMs: [number, number];
}

export interface GeneratorSettings {
  host: string;
  port: number;
  domain: string;
  /** Logins started per second at most (the ramp, the final drain). */
  loginRate: number;
  /** Logins in flight at once at most. */
  loginConcurrency: number;
  /** Bound on each login step. */
  stepTimeoutMs: number;
  /** How long an acknowledgement (ping result) may take. */
  ackTimeoutMs: number;
  /** How long a drop waits for the victim's inbound messages and outstanding acknowledgements. */
  quiesceTimeoutMs: number;
  cache: ScramCache;
}

export interface AccountSpec {
  user: string;
  password: string;
  /** Indexes of the contacts (subscription both) in the account list. */
  contacts: number[];
}

type State =
  /** Not connected: messages for it go to offline storage. */
  | 'offline'
  /** Logging in: messages for it are stored, or delivered once its initial presence is in. */
  | 'connecting'
  | 'online'
  /** Chosen to be dropped: nobody sends it anything new. */
  | 'quiescing'
  /** Socket destroyed, the server has not yet been seen to notice. */
  | 'dropped'
  /** Logging out cleanly. */
  | 'closing';

interface Account {
  index: number;
  user: string;
  password: string;
  bare: string;
  contacts: Account[];
  state: State;
  client: LoadClient | undefined;
  /** Full JID of the current or last session. */
  jid: string;
  /** Messages sent to it and neither received nor bounced yet. */
  inbound: number;
  /** Its acknowledgement pings in flight. */
  acksOut: number;
  /** A drop or logout cycle (with its reconnect) is running. */
  busy: boolean;
  /**
   * Full JIDs of sessions whose connection the client abandoned (destroyed) and that the server
   * has not yet been seen to end. While there is one, nobody sends the account anything: the
   * server may route a message to the dead connection, the only available one until the new
   * session's initial presence, and without stream management that message is lost to everyone.
   */
  stale: Set<string>;
  /** The last state changes, for the report of a lost message. */
  history: string[];
}

interface Message {
  from: number;
  to: number;
  sentAt: number;
  /** The recipient's state when it was sent. */
  toState: State;
  acked: boolean;
  received: number;
  bounced: boolean;
}

export interface SoakCounts {
  /** Messages sent. */
  sent: number;
  /** ... whose ping came back: the server had taken them. */
  acked: number;
  /** ... whose ping did not come back (the sender's connection ended first, or a timeout). */
  unacked: number;
  deliveredLive: number;
  /** Delivered with a XEP-0203 delay: from offline storage. */
  deliveredOffline: number;
  /** Acknowledged, never received, not bounced. */
  lost: number;
  /** Extra copies received of a message already received. */
  duplicates: number;
  /** Returned to the sender as an error. */
  bounced: number;
  /** Received by an account that was not the recipient. */
  misrouted: number;
  /** Messages not sent for want of a sender or recipient in a state to take part. */
  skipped: number;
  logins: number;
  loginFailures: number;
  drops: number;
  /** Drops whose reconnect began before the server was seen to end the dropped session (nothing is sent to the account until it is). */
  dropsUnconfirmed: number;
  /**
   * Drops called off because what was sent to the victim had not all arrived (or its own
   * messages were not acknowledged) within the quiesce timeout: the server was stalled.
   */
  dropsCalledOff: number;
  logouts: number;
  /** Clean logouts the server did not close within the timeout. */
  logoutTimeouts: number;
  /** Connections that ended without the generator ending them. */
  unexpectedCloses: number;
  presenceSent: number;
  presenceReceived: number;
}

/** Durations with the time they ended (performance.now()), so that a window can be picked. */
class Timings {
  private readonly at: number[] = [];
  private readonly ms: number[] = [];

  add(start: number): void {
    const now = performance.now();
    this.at.push(now);
    this.ms.push(now - start);
  }

  /** Percentiles of what ended between `from` and `to` (performance.now() values). */
  within(from: number, to: number): Percentiles {
    return percentiles(this.ms.filter((_, i) => this.at[i]! >= from && this.at[i]! < to));
  }
}

export interface GeneratorReport {
  counts: SoakCounts;
  /** Live deliveries only, from send to receipt, received in the judged window. */
  latencyMs: Percentiles;
  /** Logins of the ramp, of the reconnects in the judged window, and of the drain. */
  rampLoginMs: Percentiles;
  loginMs: Percentiles;
  drainLoginMs: Percentiles;
  /** Failure counts by reason (login steps, unexpected closes, bounce conditions). */
  failures: Record<string, number>;
  /** The first lost messages, with their recipient's state then and its last state changes. */
  lostDetails: string[];
}

const SHOWS = [undefined, 'away', 'chat', 'dnd', 'xa'] as const;

export class SoakGenerator {
  readonly counts: SoakCounts = {
    sent: 0,
    acked: 0,
    unacked: 0,
    deliveredLive: 0,
    deliveredOffline: 0,
    lost: 0,
    duplicates: 0,
    bounced: 0,
    misrouted: 0,
    skipped: 0,
    logins: 0,
    loginFailures: 0,
    drops: 0,
    dropsUnconfirmed: 0,
    dropsCalledOff: 0,
    logouts: 0,
    logoutTimeouts: 0,
    unexpectedCloses: 0,
    presenceSent: 0,
    presenceReceived: 0,
  };
  readonly failures: Record<string, number> = {};
  private readonly accounts: Account[];
  private readonly byBare = new Map<string, Account>();
  private readonly messages: Message[] = [];
  private readonly latencies = new Timings();
  private readonly loginTimes = new Timings();
  private readonly cycles = new Set<Promise<void>>();
  private readonly secureContext: SecureContext = createSecureContext({});
  /** Set once traffic stops: cycles still running do not reconnect. */
  private stopping = false;
  /** The TLS version and cipher the first login negotiated. */
  tls = '';
  /** Time zero of the histories (performance.now()). */
  epoch = performance.now();

  constructor(
    private readonly settings: GeneratorSettings,
    specs: AccountSpec[],
  ) {
    this.accounts = specs.map((s, index) => ({
      index,
      user: s.user,
      password: s.password,
      bare: `${s.user}@${settings.domain}`,
      contacts: [],
      state: 'offline',
      client: undefined,
      jid: '',
      inbound: 0,
      acksOut: 0,
      busy: false,
      stale: new Set(),
      history: [],
    }));
    specs.forEach((s, i) => (this.accounts[i]!.contacts = s.contacts.map((c) => this.accounts[c]!)));
    for (const a of this.accounts) this.byBare.set(a.bare, a);
  }

  get online(): number {
    let n = 0;
    for (const a of this.accounts) if (a.state === 'online') n++;
    return n;
  }

  /** Acknowledged messages not received (yet): lost if still so at the end. */
  get pending(): number {
    let n = 0;
    for (const m of this.messages) if (m.acked && m.received === 0 && !m.bounced) n++;
    return n;
  }

  /** Logs every account that is not connected in, at the configured rate and concurrency. */
  async loginAll(): Promise<void> {
    const todo = this.accounts.filter((a) => a.state === 'offline' || a.state === 'dropped');
    const { loginRate, loginConcurrency } = this.settings;
    const t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const k = next++;
        // Starts spread evenly at loginRate per second: a ramp, not a burst.
        const due = t0 + (k / loginRate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        await this.connect(todo[k]!);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(loginConcurrency, todo.length)) }, () => worker()));
  }

  /** Runs the traffic plan for `seconds`. */
  async traffic(plan: TrafficPlan, seconds: number): Promise<void> {
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    const done = { msg: 0, presence: 0, drop: 0, logout: 0 };
    for (let now = t0; now < end; now = performance.now()) {
      const s = (now - t0) / 1000;
      // Open loop on a schedule, whatever the server does: the offered load stays known.
      for (; done.msg < Math.floor(s * plan.msgRate); done.msg++) this.sendMessage();
      for (; done.presence < Math.floor(s * plan.presenceRate); done.presence++) this.changePresence(done.presence);
      for (; done.drop < Math.floor(s * plan.dropRate); done.drop++) this.startCycle('drop', plan);
      for (; done.logout < Math.floor(s * plan.logoutRate); done.logout++) this.startCycle('logout', plan);
      await sleep(5);
    }
  }

  /**
   * Ends the traffic: waits for running drop/logout cycles (their reconnects included) and
   * until every message sent to a connected account has arrived, or `timeoutMs`.
   */
  async settle(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const deadline = performance.now() + timeoutMs;
    await until(() => this.cycles.size === 0, timeoutMs, 50);
    await until(() => this.accounts.every((a) => a.acksOut === 0 && (a.state !== 'online' || a.inbound === 0)), Math.max(0, deadline - performance.now()));
  }

  /** Logs every connected account out cleanly, `concurrency` at a time. */
  async logoutAll(concurrency = 500): Promise<void> {
    const todo = this.accounts.filter((a) => a.client && (a.state === 'online' || a.state === 'connecting'));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(concurrency, todo.length)) }, async () => {
        while (next < todo.length) await this.logout(todo[next++]!);
      }),
    );
  }

  /**
   * Waits until no acknowledged message is outstanding, or until nothing has arrived for
   * `stallMs`: what is still outstanding then is lost.
   */
  async awaitDelivery(stallMs: number): Promise<void> {
    let last = -1;
    let lastChange = performance.now();
    await until(() => {
      const pending = this.pending;
      if (pending !== last) {
        last = pending;
        lastChange = performance.now();
      }
      return pending === 0 || performance.now() - lastChange > stallMs;
    }, Number.POSITIVE_INFINITY, 50);
  }

  /** Destroys every connection (after a failure). */
  destroyAll(): void {
    this.stopping = true;
    for (const a of this.accounts) a.client?.destroy();
  }

  /** `ramp`, `judged` and `drain`: [from, to) in performance.now() time. */
  report(ramp: [number, number], judged: [number, number], drain: [number, number]): GeneratorReport {
    let lost = 0;
    const lostDetails: string[] = [];
    this.messages.forEach((m, seq) => {
      if (!m.acked || m.received > 0 || m.bounced) return;
      lost++;
      const to = this.accounts[m.to]!;
      if (lostDetails.length < 10) {
        lostDetails.push(`m${seq} ${this.accounts[m.from]!.user} → ${to.user}, sent at ${this.seconds(m.sentAt)} s while the recipient was ${m.toState}; the recipient's last changes: ${to.history.join('; ')}`);
      }
    });
    this.counts.lost = lost;
    return {
      lostDetails,
      counts: { ...this.counts },
      latencyMs: this.latencies.within(...judged),
      rampLoginMs: this.loginTimes.within(...ramp),
      loginMs: this.loginTimes.within(...judged),
      drainLoginMs: this.loginTimes.within(...drain),
      failures: { ...this.failures },
    };
  }

  usernames(): string[] {
    return this.accounts.map((a) => a.user);
  }

  // --- Accounts --------------------------------------------------------------------------

  private fail(key: string): void {
    this.failures[key] = (this.failures[key] ?? 0) + 1;
  }

  private seconds(at: number): string {
    return ((at - this.epoch) / 1000).toFixed(1);
  }

  private setState(a: Account, state: State, note = ''): void {
    a.state = state;
    a.history.push(`${this.seconds(performance.now())} s ${state}${note}`);
    if (a.history.length > 12) a.history.shift();
  }

  /** The client let go of a session without the server ending it (see Account.stale). */
  private abandon(a: Account, jid: string): void {
    if (jid !== '') a.stale.add(jid);
  }

  /** Logs the account in (up to three attempts); false if it stayed out. */
  private async connect(a: Account): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (attempt > 0) await sleep(1000 * attempt);
      this.setState(a, 'connecting', a.stale.size > 0 ? ` (${a.stale.size} stale)` : '');
      const s = this.settings;
      const c = new LoadClient(
        { host: s.host, port: s.port, domain: s.domain, user: a.user, password: a.password, cache: s.cache, secureContext: this.secureContext, verify: false, stepTimeoutMs: s.stepTimeoutMs },
        {
          message: (_c, el) => this.onMessage(a, el),
          presence: (_c, el) => this.onPresence(el),
          closed: (closed) => this.onClosed(a, closed),
        },
      );
      a.client = c;
      const t0 = performance.now();
      try {
        await c.login();
        this.loginTimes.add(t0);
        a.jid = c.jid;
        this.setState(a, 'online', ` ${c.jid.slice(c.jid.indexOf('/') + 1, c.jid.indexOf('/') + 9)}`);
        this.tls ||= `${c.tlsProtocol}, ${c.tlsCipher}`;
        this.counts.logins++;
        return true;
      } catch (err) {
        this.counts.loginFailures++;
        this.fail(`login ${err instanceof LoginError ? err.message : `error: ${(err as Error).message}`}`);
        // Its session may have been bound: treated as a drop the server has not yet confirmed.
        this.abandon(a, c.jid);
        this.setState(a, 'dropped', ' (login failed)');
        c.destroy();
      }
    }
    return false;
  }

  private onClosed(a: Account, c: LoadClient): void {
    if (a.client !== c || (a.state !== 'online' && a.state !== 'quiescing')) return;
    this.counts.unexpectedCloses++;
    this.fail(`unexpected close: ${c.problem ?? 'connection closed'}`);
    this.abandon(a, a.jid);
    this.setState(a, 'dropped', ' (unexpected close)');
    if (!a.busy) this.track(this.reconnectLater(a, 1000));
  }

  private async reconnectLater(a: Account, ms: number): Promise<void> {
    a.busy = true;
    await sleep(ms);
    if (!this.stopping) await this.connect(a);
    a.busy = false;
  }

  private track(p: Promise<void>): void {
    this.cycles.add(p);
    void p.finally(() => this.cycles.delete(p));
  }

  /** A random account that is online and not in a cycle, or undefined after a few tries. */
  private pickOnline(): Account | undefined {
    for (let i = 0; i < 64; i++) {
      const a = this.accounts[Math.floor(Math.random() * this.accounts.length)]!;
      if (a.state === 'online' && !a.busy) return a;
    }
    return undefined;
  }

  private startCycle(kind: 'drop' | 'logout', plan: TrafficPlan): void {
    const a = this.pickOnline();
    if (!a) return;
    a.busy = true;
    const [lo, hi] = plan.offlinePauseMs;
    const pause = lo + Math.random() * (hi - lo);
    this.track((kind === 'drop' ? this.drop(a, pause) : this.logoutAndBack(a, pause)).finally(() => (a.busy = false)));
  }

  private async drop(a: Account, pauseMs: number): Promise<void> {
    this.setState(a, 'quiescing');
    const quiet = await until(() => a.inbound === 0 && a.acksOut === 0, this.settings.quiesceTimeoutMs);
    if (a.state === 'quiescing' && !quiet) {
      // The server has not handled what is in flight (it was stalled, e.g. by a GC or a heap
      // snapshot): destroying the socket now would lose what it routes there later, by the
      // generator's doing, so the drop is off. A message the server really lost for a
      // connected client stays outstanding and is counted at the end.
      this.counts.dropsCalledOff++;
      this.setState(a, 'online', ' (drop called off)');
      return;
    }
    // Unless its connection ended meanwhile (counted as unexpected there): it still comes back below.
    if (a.state === 'quiescing') {
      this.abandon(a, a.jid);
      this.setState(a, 'dropped');
      a.client?.destroy();
      this.counts.drops++;
    }
    await sleep(pauseMs);
    if (this.stopping) return;
    if (a.stale.size > 0) this.counts.dropsUnconfirmed++;
    await this.connect(a);
  }

  private async logout(a: Account): Promise<void> {
    this.setState(a, 'closing');
    const c = a.client;
    const t0 = performance.now();
    // Long enough for a loaded server; past it the client destroys the socket.
    const timeoutMs = 30_000;
    await c?.close(timeoutMs);
    if (performance.now() - t0 >= timeoutMs) {
      this.counts.logoutTimeouts++;
      this.abandon(a, a.jid);
    }
    this.setState(a, 'offline');
    this.counts.logouts++;
  }

  private async logoutAndBack(a: Account, pauseMs: number): Promise<void> {
    await this.logout(a);
    await sleep(pauseMs);
    if (!this.stopping) await this.connect(a);
  }

  // --- Traffic -----------------------------------------------------------------------------

  /** Whether a message to this account now can be accounted for (see the top of the file). */
  private static canReceive(a: Account): boolean {
    return a.stale.size === 0 && (a.state === 'online' || a.state === 'connecting' || a.state === 'offline' || a.state === 'closing');
  }

  private sendMessage(): void {
    const from = this.pickOnline();
    const options = from?.contacts.filter((c) => SoakGenerator.canReceive(c)) ?? [];
    if (!from || options.length === 0) {
      this.counts.skipped++;
      return;
    }
    const to = options[Math.floor(Math.random() * options.length)]!;
    const seq = this.messages.length;
    const m: Message = { from: from.index, to: to.index, sentAt: performance.now(), toState: to.state, acked: false, received: 0, bounced: false };
    this.messages.push(m);
    to.inbound++;
    from.acksOut++;
    this.counts.sent++;
    const c = from.client!;
    c.sendMessage(to.bare, `soak ${seq}`, `m${seq}`);
    void c.ping(this.settings.ackTimeoutMs).then((ok) => {
      from.acksOut--;
      if (ok) {
        m.acked = true;
        this.counts.acked++;
      } else {
        this.counts.unacked++;
      }
    });
  }

  private changePresence(k: number): void {
    const a = this.pickOnline();
    if (!a) return;
    const show = SHOWS[k % SHOWS.length];
    a.client!.send(show ? `<presence><show>${show}</show><status>soak ${k}</status></presence>` : '<presence/>');
    this.counts.presenceSent++;
  }

  private onMessage(a: Account, el: XmlElement): void {
    const id = /^m(\d+)$/.exec(el.attrs.id ?? '')?.[1] ?? /^soak (\d+)$/.exec(el.children.find((c) => c.name === 'body')?.text ?? '')?.[1];
    const m = id === undefined ? undefined : this.messages[Number(id)];
    if (!m) {
      this.fail(`unknown message: ${(el.attrs.type ?? 'normal')} from ${el.attrs.from ?? '?'}`);
      return;
    }
    if (el.attrs.type === 'error') {
      // Bounced back to its sender (RFC 6120 §8.3): not delivered, but not silently lost either.
      const condition = el.children.find((c) => c.name === 'error')?.children.find((c) => c.name !== 'text')?.name ?? 'unknown';
      this.fail(`bounced: ${condition}`);
      if (!m.bounced && m.received === 0) this.accounts[m.to]!.inbound--;
      if (!m.bounced) this.counts.bounced++;
      m.bounced = true;
      return;
    }
    if (m.to !== a.index) {
      this.counts.misrouted++;
      return;
    }
    m.received++;
    if (m.received > 1) {
      this.counts.duplicates++;
      return;
    }
    if (!m.bounced) a.inbound--;
    // XEP-0160 §2 / XEP-0203: what comes from offline storage carries a delay.
    if (el.children.some((c) => c.name === 'delay')) this.counts.deliveredOffline++;
    else {
      this.counts.deliveredLive++;
      this.latencies.add(m.sentAt);
    }
  }

  private onPresence(el: XmlElement): void {
    this.counts.presenceReceived++;
    if (el.attrs.type !== 'unavailable' || el.attrs.from === undefined) return;
    const from = el.attrs.from;
    const slash = from.indexOf('/');
    const a = this.byBare.get(slash < 0 ? from : from.slice(0, slash));
    // The server has taken an abandoned session out of routing (seen by a contact, or by the
    // account's own new session): messages for the account go where they should again.
    if (!a || !a.stale.delete(from)) return;
    a.history.push(`${this.seconds(performance.now())} s server ended ${from.slice(from.indexOf('/') + 1, from.indexOf('/') + 9)}`);
    if (a.state === 'dropped' && a.stale.size === 0) this.setState(a, 'offline');
  }
}
