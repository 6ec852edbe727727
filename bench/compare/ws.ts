// The ws scenario of bench:compare (issue 13): the seed's login over XMPP over
// WebSocket (RFC 7395: subprotocol 'xmpp', one element per text message,
// <open/>/<close/> in the framing namespace, a new <open/> after SASL), then
// chat between pairs in a closed loop, as the TCP chat scenario does. Plain ws://
// on loopback (each server is told to treat it as encrypted), SCRAM-SHA-1 with
// the cached keys the TCP scenarios use.
import WebSocket from 'ws';
import { percentiles, pool, sleep, type Percentiles } from '../load/run.js';
import { quiet, sampleProcess } from '../load/proc.js';
import { ScramSha1Client, type ScramCache } from '../load/scram.js';
import { XmlStreamReader, child, escapeXml, type XmlElement } from '../load/xml.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const SESSION = 'urn:ietf:params:xml:ns:xmpp-session';

export class WsClient {
  jid = '';
  online = false;
  private ws: WebSocket | undefined;
  private readonly reader: XmlStreamReader;
  private waiter: { pred: (el: XmlElement) => boolean; resolve: (el: XmlElement) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private ids = 0;
  private failed: Error | undefined;
  onMessage: (el: XmlElement) => void = () => undefined;

  constructor(
    private readonly url: string,
    private readonly domain: string,
    readonly user: string,
    private readonly password: string,
    private readonly cache: ScramCache,
    private readonly stepTimeoutMs: number,
  ) {
    this.reader = new XmlStreamReader({
      open: () => undefined,
      element: (el) => this.onElement(el),
      close: () => this.fail(new Error('stream closed')),
      error: (msg) => this.fail(new Error(`bad XML: ${msg}`)),
    });
  }

  private fail(err: Error): void {
    this.failed ??= err;
    this.online = false;
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private onElement(el: XmlElement): void {
    const w = this.waiter;
    if (w && w.pred(el)) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(el);
      return;
    }
    if (el.name === 'message') this.onMessage(el);
    else if (el.name === 'iq' && (el.attrs.type === 'get' || el.attrs.type === 'set')) {
      // RFC 6120 §8.2.3: every get/set is answered.
      this.send(`<iq xmlns='jabber:client' type='result' id='${escapeXml(el.attrs.id ?? '')}'${el.attrs.from ? ` to='${escapeXml(el.attrs.from)}'` : ''}/>`);
    } else if (el.name === 'error' && el.attrs.xmlns === undefined) this.fail(new Error(`stream error: ${el.children[0]?.name ?? '?'}`));
    else if (el.name === 'close' && el.attrs.xmlns === FRAMING) this.fail(new Error('server closed the stream'));
  }

  send(data: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  private expect(what: string, pred: (el: XmlElement) => boolean): Promise<XmlElement> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${what}: timed out`));
      }, this.stepTimeoutMs);
      this.waiter = { pred, resolve, reject, timer };
    });
  }

  private async iq(what: string, body: string): Promise<XmlElement> {
    const id = `w${++this.ids}`;
    this.send(body.replace('%ID%', id));
    const r = await this.expect(what, (el) => el.name === 'iq' && el.attrs.id === id);
    if (r.attrs.type !== 'result') throw new Error(`${what}: ${r.attrs.type}`);
    return r;
  }

  private open(): Promise<XmlElement> {
    // RFC 7395 §3.3.2: the stream starts (and restarts after SASL) with <open/>; features follow.
    this.send(`<open xmlns='${FRAMING}' to='${escapeXml(this.domain)}' version='1.0'/>`);
    return this.expect('stream', (el) => el.name === 'features');
  }

  /** Connect, SASL SCRAM-SHA-1, restart, bind, session when advertised, roster get, initial presence, a ping. */
  async login(): Promise<void> {
    const ws = new WebSocket(this.url, 'xmpp', { perMessageDeflate: false });
    this.ws = ws;
    // Each WebSocket message is one complete element: fed to the stream reader under a wrapper root.
    this.reader.reset();
    this.reader.write('<stream:stream>');
    ws.on('message', (data: WebSocket.RawData) => this.reader.write(data.toString()));
    ws.on('close', () => this.fail(new Error('WebSocket closed')));
    ws.on('error', (err) => this.fail(new Error(`WebSocket: ${err.message}`)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect: timed out')), this.stepTimeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        if (ws.protocol !== 'xmpp') reject(new Error(`connect: subprotocol '${ws.protocol}' instead of xmpp`));
        else resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`connect: HTTP ${res.statusCode}`));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`connect: ${err.message}`));
      });
    });
    const f1 = await this.open();
    const mechs = child(f1, 'mechanisms', SASL)?.children.map((c) => c.text.trim()) ?? [];
    if (!mechs.includes('SCRAM-SHA-1')) throw new Error(`sasl: SCRAM-SHA-1 not offered (${mechs.join(' ') || 'no mechanisms'})`);
    const scram = new ScramSha1Client(this.user, this.password, this.cache);
    this.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
    const challenge = await this.expect('sasl', (el) => el.attrs.xmlns === SASL);
    if (challenge.name !== 'challenge') throw new Error(`sasl: ${challenge.name}`);
    const final = await scram.final(Buffer.from(challenge.text.trim(), 'base64').toString());
    this.send(`<response xmlns='${SASL}'>${Buffer.from(final).toString('base64')}</response>`);
    const outcome = await this.expect('sasl', (el) => el.attrs.xmlns === SASL);
    if (outcome.name !== 'success') throw new Error(`sasl: ${outcome.name}`);
    if (!scram.verify(Buffer.from(outcome.text.trim(), 'base64').toString())) throw new Error('sasl: server signature did not verify');
    const f2 = await this.open();
    if (!child(f2, 'bind', BIND)) throw new Error('bind: not offered');
    const bound = await this.iq('bind', `<iq xmlns='jabber:client' type='set' id='%ID%'><bind xmlns='${BIND}'/></iq>`);
    this.jid = child(bound, 'bind')?.children.find((c) => c.name === 'jid')?.text.trim() ?? '';
    if (!this.jid) throw new Error('bind: no JID');
    const session = child(f2, 'session', SESSION);
    if (session && !child(session, 'optional')) await this.iq('session', `<iq xmlns='jabber:client' type='set' id='%ID%'><session xmlns='${SESSION}'/></iq>`);
    await this.iq('roster', `<iq xmlns='jabber:client' type='get' id='%ID%'><query xmlns='jabber:iq:roster'/></iq>`);
    this.send(`<presence xmlns='jabber:client'/>`);
    // RFC 6120 §10.1: the ping's answer means the presence has been handled (the TCP scenarios' "online").
    await this.iq('presence', `<iq xmlns='jabber:client' type='get' id='%ID%' to='${escapeXml(this.domain)}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    this.online = true;
  }

  /** RFC 7395 §3.6: <close/>, then the server closes the WebSocket. */
  async close(timeoutMs = 5000): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    this.online = false;
    this.send(`<close xmlns='${FRAMING}'/>`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export interface WsOptions {
  url: string;
  domain: string;
  users: string;
  passwordPattern: string;
  clients: number;
  concurrency: number;
  /** Messages in all, spread over the pairs (1,2), (3,4), ...; each sender one in flight. */
  messages: number;
  cache: ScramCache;
  /**
   * Other accounts (user N+1 .. N+W) logged in and out first, unmeasured but reported apart,
   * as in the login scenario: a server's first logins after start also pay for compiling its
   * hot code. Then the server is let settle (below 5% of a core) before the measured logins.
   */
  warmup?: number;
  serverPid?: number;
  stepTimeoutMs?: number;
  stallTimeoutMs?: number;
}

/** How a batch of logins went. */
export interface WsLogins {
  succeeded: number;
  failed: number;
  failures: Record<string, number>;
  elapsedMs: number;
  perSecond: number;
  latencyMs: Percentiles;
  cpuPer1000Logins?: number;
}

export interface WsReport {
  clients: number;
  login: WsLogins;
  /** The warm-up's logins (WsOptions.warmup), when there was one. */
  warmup?: WsLogins;
  messages: { sent: number; received: number; lost: number; elapsedMs: number; perSecond: number; latencyMs: Percentiles; cpuPer100kMessages?: number };
}

const fill = (pattern: string, i: number): string => pattern.replace(/%d/g, String(i));

/** Logs `clients` in, `concurrency` at a time, measuring the server's CPU meanwhile (when `cpu` reads it). */
async function logInAll(clients: WsClient[], concurrency: number, cpu: (() => number) | undefined): Promise<WsLogins> {
  const failures: Record<string, number> = {};
  const loginMs: number[] = [];
  const c0 = cpu?.() ?? 0;
  const t0 = performance.now();
  await pool(clients.length, concurrency, Infinity, async (i) => {
    const s = performance.now();
    try {
      await clients[i]!.login();
      loginMs.push(performance.now() - s);
    } catch (err) {
      const key = (err as Error).message.replace(/\d+/g, 'N');
      failures[key] = (failures[key] ?? 0) + 1;
    }
  });
  const elapsedMs = performance.now() - t0;
  const used = (cpu?.() ?? 0) - c0;
  const succeeded = loginMs.length;
  return {
    succeeded,
    failed: clients.length - succeeded,
    failures,
    elapsedMs,
    perSecond: elapsedMs > 0 ? (succeeded / elapsedMs) * 1000 : 0,
    latencyMs: percentiles(loginMs),
    cpuPer1000Logins: cpu && succeeded > 0 ? (used / succeeded) * 1000 : undefined,
  };
}

export async function runWs(o: WsOptions): Promise<WsReport> {
  const step = o.stepTimeoutMs ?? 30_000;
  const client = (i: number): WsClient => new WsClient(o.url, o.domain, fill(o.users, i), fill(o.passwordPattern, i), o.cache, step);
  const pid = o.serverPid;
  const serverCpu = pid === undefined ? undefined : (): number => sampleProcess(pid).cpuSeconds;
  const cpu = (): number => serverCpu?.() ?? 0;

  // --- Warm-up: other accounts in and out, then the server settles ---
  let warmup: WsLogins | undefined;
  if ((o.warmup ?? 0) > 0) {
    const warm = Array.from({ length: o.warmup! }, (_, i) => client(o.clients + i + 1));
    warmup = await logInAll(warm, o.concurrency, serverCpu);
    await Promise.all(warm.map((c) => c.close(5000)));
    if (pid !== undefined) await quiet(pid, 500, 0.05, 60_000);
  }

  // --- Logins, c at a time ---
  const clients = Array.from({ length: o.clients }, (_, i) => client(i + 1));
  const login = await logInAll(clients, o.concurrency, serverCpu);

  // --- Chat: pairs (1,2), (3,4), ..., each sender with one message in flight ---
  const pairs: [WsClient, WsClient][] = [];
  for (let k = 0; k + 1 < clients.length; k += 2) if (clients[k]!.online && clients[k + 1]!.online) pairs.push([clients[k]!, clients[k + 1]!]);
  const perSender = pairs.length > 0 ? Math.floor(o.messages / (2 * pairs.length)) : 0;
  const latency: number[] = [];
  let sent = 0;
  let received = 0;
  let lastProgress = performance.now();
  const c1 = cpu();
  const t1 = performance.now();
  for (const [a, b] of pairs) {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      let left = perSender;
      const sendOne = (): void => {
        if (left-- <= 0) return;
        sent++;
        from.send(`<message xmlns='jabber:client' to='${escapeXml(to.jid.split('/')[0]!)}' type='chat'><body>wb ${performance.now().toFixed(3)}</body></message>`);
      };
      // The recipient answers nothing: its receipt of the message is what lets the sender go on.
      const prev = to.onMessage;
      to.onMessage = (el) => {
        const body = child(el, 'body')?.text ?? '';
        if (el.attrs.from?.startsWith(from.jid.split('/')[0]! + '/') && body.startsWith('wb ')) {
          received++;
          lastProgress = performance.now();
          latency.push(performance.now() - Number(body.slice(3)));
          sendOne();
        } else prev(el);
      };
      sendOne();
    }
  }
  const stall = o.stallTimeoutMs ?? 30_000;
  const expected = perSender * 2 * pairs.length;
  while (received < expected) {
    if (performance.now() - lastProgress > stall) break;
    await sleep(10);
  }
  const chatElapsed = performance.now() - t1;
  const chatCpu = cpu() - c1;
  await Promise.all(clients.map((c) => c.close(5000)));
  return {
    clients: o.clients,
    login,
    ...(warmup ? { warmup } : {}),
    messages: {
      sent,
      received,
      lost: expected - received,
      elapsedMs: chatElapsed,
      perSecond: chatElapsed > 0 ? (received / chatElapsed) * 1000 : 0,
      latencyMs: percentiles(latency),
      cpuPer100kMessages: o.serverPid && received > 0 ? (chatCpu / received) * 100_000 : undefined,
    },
  };
}
