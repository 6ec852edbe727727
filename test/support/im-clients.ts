// Two real IM clients behind one small interface, so the RFC 6121 scenarios can
// be written once and run with any mix of xmpp.js and slixmpp:
// - XjsClient: xmpp.js (@xmpp/client). It has no roster or presence API, so the
//   stanzas are built with its xml() and IQs go through its iqCaller; its
//   iqCallee answers the server's roster and blocklist pushes as a client must.
// - SlixClient: slixmpp driven through test/slixmpp/im_client.py, which uses
//   slixmpp's own roster, presence, XEP-0054, XEP-0191 and XEP-0203 support and
//   reports every stanza as slixmpp parsed it.
// Every stanza a client receives is normalised to a StanzaView; tests wait for
// the one they expect (with a timeout), never for a fixed time.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type net from 'node:net';
import type tls from 'node:tls';
import { createXmppJs, withTimeout, xml, type XmlElement, type XmppJsClient } from './xmppjs.js';
import { PYTHON, slixmppMissing, type ScriptEvent } from './slixmpp.js';

export const NS_ROSTER = 'jabber:iq:roster';
export const NS_VCARD = 'vcard-temp';
export const NS_VCARD_UPDATE = 'vcard-temp:x:update';
export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
export const NS_DELAY = 'urn:xmpp:delay';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const NS_PING = 'urn:xmpp:ping';

export type ClientKind = 'xmpp.js' | 'slixmpp';

export interface RosterItemView {
  jid: string;
  subscription: string;
  ask: string | null;
  name: string | null;
  groups: string[];
  approved: string | null;
}

export interface StanzaErrorView {
  condition: string;
  type: string | null;
  /** XEP-0191 §3.3: the <blocked/> application condition. */
  blocked: boolean;
}

/** A received stanza as the client library understood it. */
export interface StanzaView {
  kind: 'presence' | 'message' | 'iq';
  type: string | null;
  from: string | null;
  to: string | null;
  id: string | null;
  show?: string | null;
  status?: string | null;
  priority?: number;
  /** XEP-0153 photo hash ('' for "no image"); undefined when the presence has no update element. */
  photo?: string | null;
  body?: string | null;
  /** XEP-0203 */
  delay?: { stamp: string | null; from: string | null; text: string | null };
  error?: StanzaErrorView;
  roster?: { ver: string | null; items: RosterItemView[] };
  blocking?: { op: 'block' | 'unblock'; jids: string[] };
  xml: string;
}

export interface RosterResult {
  /** RFC 6121 §2.6.3: true when the result carried no <query/> (the client's version is current or diffs follow). */
  empty: boolean;
  ver: string | null;
  items: RosterItemView[];
}

export interface VCardView {
  fn: string | null;
  nickname: string | null;
  /** PHOTO/BINVAL as sent (base64). */
  photo: string | null;
}

export interface VCardInput {
  fn?: string;
  nickname?: string;
  photo?: { type: string; base64: string };
}

export interface PresenceInput {
  show?: string;
  status?: string;
  priority?: number;
  to?: string;
  type?: string;
}

/** An IQ the server answered with an error, as the client library reported it. */
export class IqFailure extends Error {
  constructor(
    readonly condition: string,
    readonly errorType: string | null,
    readonly blocked: boolean,
    text?: string | null,
  ) {
    super(`IQ error: ${condition}${text ? ` (${text})` : ''}`);
  }
}

export interface ImClient {
  readonly kind: ClientKind;
  readonly user: string;
  /** Full JID bound by the server. */
  readonly jid: string;
  readonly bare: string;
  /** Every stanza received so far (never consumed). */
  readonly history: readonly StanzaView[];
  /** Waits for (and consumes) the first received-but-unconsumed stanza matching `pred`. */
  next(pred: (s: StanzaView) => boolean, what: string, ms?: number): Promise<StanzaView>;
  /** Received stanzas matching `pred`, consumed or not. */
  count(pred: (s: StanzaView) => boolean): number;
  presence(p?: PresenceInput): Promise<void>;
  subscribe(jid: string): Promise<void>;
  approve(jid: string): Promise<void>;
  deny(jid: string): Promise<void>;
  unsubscribe(jid: string): Promise<void>;
  message(to: string, body: string, opts?: { type?: string; id?: string }): Promise<void>;
  /** RFC 6121 §2.1.3, with `ver` (§2.6.2) as a client with a cached roster sends it. */
  rosterGet(ver?: string): Promise<RosterResult>;
  rosterSet(jid: string, name?: string, groups?: string[]): Promise<void>;
  rosterRemove(jid: string): Promise<void>;
  vcardGet(jid?: string): Promise<VCardView>;
  vcardSet(card: VCardInput, to?: string): Promise<void>;
  block(jids: string[]): Promise<void>;
  unblock(jids: string[]): Promise<void>;
  blocklist(): Promise<string[]>;
  /** XEP-0199 round trip to the server. */
  ping(): Promise<void>;
  /** Ends the session with a closing stream tag, after unavailable presence when asked (RFC 6121 §4.5.1). */
  logout(opts?: { unavailable?: boolean; status?: string }): Promise<void>;
  /**
   * An abrupt disconnect: no unavailable presence, no closing tag, no TLS close_notify.
   * 'reset': the TCP connection is reset (RST, a socket error for the server);
   * 'close': the socket is just closed (FIN), as when the client process dies.
   */
  kill(mode?: 'reset' | 'close'): Promise<void>;
  /** The client goes silent with the connection still open (nothing read, nothing answered). */
  freeze(): void;
  /** Whether the connection is gone. */
  readonly closed: boolean;
  /** Resolves when the connection is gone. */
  waitClosed(ms?: number): Promise<void>;
}

export interface ClientOptions {
  port: number;
  user: string;
  password: string;
  /** PEM file of the server certificate (slixmpp verifies against it; xmpp.js needs trustCertificate()). */
  caFile: string;
  /** How long the login may take (ms); more than the default for servers under heavy load. */
  loginMs?: number;
}

// --- Shared inbox ----------------------------------------------------------------------

class Inbox {
  readonly history: StanzaView[] = [];
  private readonly queue: StanzaView[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  push(s: StanzaView): void {
    this.history.push(s);
    this.queue.push(s);
    this.wake();
  }

  markClosed(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async waitFor(cond: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return true;
  }

  async next(owner: string, pred: (s: StanzaView) => boolean, what: string, ms: number): Promise<StanzaView> {
    let hit: StanzaView | undefined;
    const found = await this.waitFor(() => {
      const i = this.queue.findIndex(pred);
      if (i < 0) return false;
      hit = this.queue.splice(i, 1)[0];
      return true;
    }, ms);
    if (!found || !hit) {
      const recent = this.queue.slice(-15).map((s) => s.xml).join('\n  ');
      throw new Error(`${owner}: timed out after ${ms} ms waiting for ${what}; unconsumed:\n  ${recent}`);
    }
    return hit;
  }
}

/** The ImClient members both clients answer from their Inbox. */
abstract class InboxClient {
  protected readonly inbox = new Inbox();
  abstract readonly kind: ClientKind;
  abstract readonly user: string;

  get history(): readonly StanzaView[] {
    return this.inbox.history;
  }

  get closed(): boolean {
    return this.inbox.closed;
  }

  next(pred: (s: StanzaView) => boolean, what: string, ms = 5000): Promise<StanzaView> {
    return this.inbox.next(`${this.user} (${this.kind})`, pred, what, ms);
  }

  count(pred: (s: StanzaView) => boolean): number {
    return this.inbox.history.filter(pred).length;
  }
}

// --- xmpp.js --------------------------------------------------------------------------

interface IqCallee {
  set(ns: string, name: string, handler: (ctx: { stanza: XmlElement }) => unknown): void;
}

function attr(el: XmlElement, name: string): string | null {
  return el.attrs[name] ?? null;
}

/** The stanza as an xmpp.js user reads it from the element. */
export function describeXjs(el: XmlElement): StanzaView {
  const view: StanzaView = {
    kind: el.name as StanzaView['kind'],
    type: attr(el, 'type'),
    from: attr(el, 'from'),
    to: attr(el, 'to'),
    id: attr(el, 'id'),
    xml: el.toString(),
  };
  const error = el.getChild('error');
  if (error) {
    const cond = error.children.find((c): c is XmlElement => typeof c !== 'string' && c.attrs.xmlns === NS_STANZAS && c.name !== 'text');
    view.error = { condition: cond?.name ?? '', type: attr(error, 'type'), blocked: error.getChild('blocked', NS_BLOCKING_ERRORS) !== undefined };
  }
  if (el.name === 'presence') {
    view.show = el.getChildText('show');
    view.status = el.getChildText('status');
    const p = el.getChildText('priority');
    view.priority = p === null ? 0 : Number.parseInt(p, 10);
    const update = el.getChild('x', NS_VCARD_UPDATE);
    if (update) view.photo = update.getChild('photo') ? update.getChildText('photo') ?? '' : null;
  } else if (el.name === 'message') {
    view.body = el.getChildText('body');
    const delay = el.getChild('delay', NS_DELAY);
    if (delay) view.delay = { stamp: attr(delay, 'stamp'), from: attr(delay, 'from'), text: delay.text() || null };
  } else if (el.name === 'iq') {
    const query = el.getChild('query', NS_ROSTER);
    if (query) view.roster = { ver: attr(query, 'ver'), items: query.getChildren('item').map(rosterItemXjs) };
    for (const op of ['block', 'unblock'] as const) {
      const b = el.getChild(op, NS_BLOCKING);
      if (b) view.blocking = { op, jids: b.getChildren('item').map((i) => i.attrs.jid ?? '').sort() };
    }
  }
  return view;
}

function rosterItemXjs(item: XmlElement): RosterItemView {
  return {
    jid: item.attrs.jid ?? '',
    subscription: item.attrs.subscription ?? 'none',
    ask: attr(item, 'ask'),
    name: attr(item, 'name'),
    groups: item.getChildren('group').map((g) => g.text()).sort(),
    approved: attr(item, 'approved'),
  };
}

function iqFailureFromXjs(err: unknown): never {
  const e = err as Error & { condition?: string; element?: XmlElement };
  if (e.name === 'StanzaError' && e.condition) {
    const error = e.element;
    throw new IqFailure(e.condition, error ? attr(error, 'type') : null, error?.getChild('blocked', NS_BLOCKING_ERRORS) !== undefined, e.message);
  }
  throw err;
}

export class XjsClient extends InboxClient implements ImClient {
  readonly kind = 'xmpp.js' as const;
  jid = '';
  bare = '';

  private constructor(
    readonly xmpp: XmppJsClient,
    readonly user: string,
    /** Errors xmpp.js reported (stream errors among them, e.g. system-shutdown). */
    readonly errors: (Error & { condition?: string })[],
  ) {
    super();
  }

  static async connect(opts: ClientOptions): Promise<XjsClient> {
    const { xmpp, errors } = createXmppJs({ port: opts.port, username: opts.user, password: opts.password });
    const c = new XjsClient(xmpp, opts.user, errors);
    xmpp.on('stanza', (el: XmlElement) => c.inbox.push(describeXjs(el)));
    xmpp.on('offline', () => c.inbox.markClosed());
    xmpp.on('disconnect', () => c.inbox.markClosed());
    const callee = (xmpp as unknown as { iqCallee: IqCallee }).iqCallee;
    // RFC 6121 §2.1.6: a push is accepted only from the user's own account (no 'from' or the bare JID);
    // the client acknowledges it with a result.
    const ownPush = ({ stanza }: { stanza: XmlElement }): unknown => {
      const from = stanza.attrs.from;
      if (from !== undefined && from !== c.bare) return xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS_STANZAS }));
      return true;
    };
    callee.set(NS_ROSTER, 'query', ownPush);
    // XEP-0191 §3.3 / §3.4: blocklist pushes, acknowledged the same way.
    callee.set(NS_BLOCKING, 'block', ownPush);
    callee.set(NS_BLOCKING, 'unblock', ownPush);
    let address;
    try {
      // Generous: a loaded 2-core CI machine runs two test files at once.
      address = await withTimeout(xmpp.start(), opts.loginMs ?? 10_000, `${opts.user} (xmpp.js) to come online`);
    } catch (err) {
      await xmpp.stop().catch(() => undefined);
      throw err;
    }
    c.jid = address.toString();
    c.bare = address.bare().toString();
    return c;
  }

  async presence(p: PresenceInput = {}): Promise<void> {
    const children: XmlElement[] = [];
    if (p.show !== undefined) children.push(xml('show', {}, p.show));
    if (p.status !== undefined) children.push(xml('status', {}, p.status));
    if (p.priority !== undefined) children.push(xml('priority', {}, String(p.priority)));
    await this.xmpp.send(xml('presence', { to: p.to, type: p.type }, ...children));
  }

  private sub(type: string, jid: string): Promise<void> {
    return this.xmpp.send(xml('presence', { to: jid, type }));
  }

  subscribe(jid: string): Promise<void> {
    return this.sub('subscribe', jid);
  }
  approve(jid: string): Promise<void> {
    return this.sub('subscribed', jid);
  }
  deny(jid: string): Promise<void> {
    return this.sub('unsubscribed', jid);
  }
  unsubscribe(jid: string): Promise<void> {
    return this.sub('unsubscribe', jid);
  }

  message(to: string, body: string, opts: { type?: string; id?: string } = {}): Promise<void> {
    return this.xmpp.send(xml('message', { to, type: opts.type ?? 'chat', id: opts.id }, xml('body', {}, body)));
  }

  private async iq(type: 'get' | 'set', payload: XmlElement, to?: string): Promise<XmlElement> {
    try {
      return await this.xmpp.iqCaller.request(xml('iq', { type, to }, payload), 5000);
    } catch (err) {
      return iqFailureFromXjs(err);
    }
  }

  async rosterGet(ver?: string): Promise<RosterResult> {
    const res = await this.iq('get', xml('query', { xmlns: NS_ROSTER, ver }));
    const query = res.getChild('query', NS_ROSTER);
    if (!query) return { empty: true, ver: null, items: [] };
    return { empty: false, ver: attr(query, 'ver'), items: query.getChildren('item').map(rosterItemXjs) };
  }

  async rosterSet(jid: string, name?: string, groups: string[] = []): Promise<void> {
    await this.iq('set', xml('query', { xmlns: NS_ROSTER }, xml('item', { jid, name }, ...groups.map((g) => xml('group', {}, g)))));
  }

  async rosterRemove(jid: string): Promise<void> {
    await this.iq('set', xml('query', { xmlns: NS_ROSTER }, xml('item', { jid, subscription: 'remove' })));
  }

  async vcardGet(jid?: string): Promise<VCardView> {
    const res = await this.iq('get', xml('vCard', { xmlns: NS_VCARD }), jid);
    const card = res.getChild('vCard', NS_VCARD);
    return {
      fn: card?.getChildText('FN') ?? null,
      nickname: card?.getChildText('NICKNAME') ?? null,
      photo: card?.getChild('PHOTO')?.getChildText('BINVAL')?.trim() ?? null,
    };
  }

  async vcardSet(card: VCardInput, to?: string): Promise<void> {
    const children: XmlElement[] = [];
    if (card.fn !== undefined) children.push(xml('FN', {}, card.fn));
    if (card.nickname !== undefined) children.push(xml('NICKNAME', {}, card.nickname));
    if (card.photo) children.push(xml('PHOTO', {}, xml('TYPE', {}, card.photo.type), xml('BINVAL', {}, card.photo.base64)));
    await this.iq('set', xml('vCard', { xmlns: NS_VCARD }, ...children), to);
  }

  async block(jids: string[]): Promise<void> {
    await this.iq('set', xml('block', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid }))));
  }

  async unblock(jids: string[]): Promise<void> {
    await this.iq('set', xml('unblock', { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid }))));
  }

  async blocklist(): Promise<string[]> {
    const res = await this.iq('get', xml('blocklist', { xmlns: NS_BLOCKING }));
    return (res.getChild('blocklist', NS_BLOCKING)?.getChildren('item') ?? []).map((i) => i.attrs.jid ?? '').sort();
  }

  async ping(): Promise<void> {
    await this.iq('get', xml('ping', { xmlns: NS_PING }), 'localhost');
  }

  async logout(opts: { unavailable?: boolean; status?: string } = {}): Promise<void> {
    if (opts.unavailable) {
      await this.xmpp.send(xml('presence', { type: 'unavailable' }, ...(opts.status !== undefined ? [xml('status', {}, opts.status)] : [])));
    }
    // RFC 6120 §4.4: xmpp.js sends </stream:stream> and waits for the server's.
    await withTimeout(this.xmpp.stop(), 5000, `${this.user} (xmpp.js) to log out`);
    await this.waitClosed();
  }

  private tlsSocket(): tls.TLSSocket & { _parent?: net.Socket } {
    const sock = this.xmpp.socket?.socket as (tls.TLSSocket & { _parent?: net.Socket }) | null | undefined;
    if (!sock) throw new Error(`${this.user} (xmpp.js) has no socket`);
    return sock;
  }

  async kill(mode: 'reset' | 'close' = 'reset'): Promise<void> {
    const sock = this.tlsSocket();
    // After STARTTLS the TLS socket wraps the TCP one (Node keeps it as _parent).
    const tcp = sock._parent;
    if (mode === 'reset') {
      if (!tcp) throw new Error('no TCP socket under the TLS one');
      tcp.resetAndDestroy();
    } else {
      // destroy(), not end(): no close_notify, no closing tag, just FIN.
      sock.destroy();
    }
    await this.waitClosed();
    await this.xmpp.stop().catch(() => undefined);
  }

  freeze(): void {
    // Stop reading: the server's pings go unanswered while the connection stays up.
    const sock = this.tlsSocket();
    sock.pause();
    sock._parent?.pause();
  }

  async waitClosed(ms = 5000): Promise<void> {
    if (!(await this.inbox.waitFor(() => this.inbox.closed, ms))) throw new Error(`${this.user} (xmpp.js) still connected after ${ms} ms`);
  }

  /** Stops the client whatever its state (test clean-up). */
  async dispose(): Promise<void> {
    if (!this.inbox.closed) await this.xmpp.stop().catch(() => undefined);
  }
}

// --- slixmpp --------------------------------------------------------------------------

export { PYTHON, slixmppMissing };
const SCRIPT = join(import.meta.dirname, '..', 'slixmpp', 'im_client.py');

export class SlixClient extends InboxClient implements ImClient {
  readonly kind = 'slixmpp' as const;
  private readonly results = new Map<number, (e: ScriptEvent) => void>();
  private nextId = 1;
  private stderr = '';
  jid = '';
  bare = '';
  /** Whether the server offered roster versioning and pre-approval (slixmpp's view of the stream features). */
  features = { rosterver: false, preapproval: false };
  private exited = false;

  private constructor(
    readonly child: ChildProcess,
    readonly user: string,
  ) {
    super();
  }

  /**
   * slixmpp 1.8 answers a -PLUS offer with SCRAM flag 'y' (see test/slixmpp.test.ts), so
   * `mech` defaults to PLAIN, which works against the default mechanism list; pass a SCRAM
   * mechanism only against a server that offers no -PLUS. `script`: another script that
   * extends im_client.py (e.g. test/slixmpp/carbons_client.py).
   */
  static async connect(opts: ClientOptions & { mech?: string; script?: string }): Promise<SlixClient> {
    const args = [opts.script ?? SCRIPT, '--port', String(opts.port), '--jid', `${opts.user}@localhost`, '--password', opts.password, '--ca', opts.caFile, '--mech', opts.mech ?? 'PLAIN'];
    if (process.env.SHOAL_SLIX_DEBUG) args.push('--debug');
    const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const c = new SlixClient(child, opts.user);
    let ready: ((e: ScriptEvent) => void) | undefined;
    let failed: ((err: Error) => void) | undefined;
    const started = new Promise<ScriptEvent>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    child.stderr!.on('data', (d: Buffer) => {
      c.stderr += d.toString('utf8');
      if (process.env.SHOAL_SLIX_DEBUG) process.stderr.write(d);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: ScriptEvent;
      try {
        e = JSON.parse(line) as ScriptEvent;
      } catch {
        c.stderr += `unparsable line: ${line}\n`;
        return;
      }
      switch (e.event) {
        case 'ready':
          ready?.(e);
          break;
        case 'stanza':
          c.inbox.push(e as unknown as StanzaView);
          break;
        case 'result': {
          const r = c.results.get(e.id as number);
          c.results.delete(e.id as number);
          r?.(e);
          break;
        }
        case 'disconnected':
          c.inbox.markClosed();
          break;
        case 'fatal':
          failed?.(new Error(`slixmpp ${opts.user}: ${String(e.message)}\n${c.stderr}`));
          break;
        default:
          break;
      }
    });
    child.on('exit', () => {
      c.exited = true;
      c.inbox.markClosed();
      failed?.(new Error(`slixmpp ${opts.user} exited before the session started:\n${c.stderr}`));
      for (const [, r] of c.results) r({ event: 'result', ok: false, error: { condition: 'client-exited' } });
      c.results.clear();
    });
    let e: ScriptEvent;
    try {
      e = await withTimeout(started, opts.loginMs ?? 8000, `${opts.user} (slixmpp) to come online`);
    } catch (err) {
      await c.dispose();
      throw err;
    }
    c.jid = e.jid as string;
    c.bare = c.jid.split('/')[0]!;
    c.features = { rosterver: e.rosterver === true, preapproval: e.preapproval === true };
    return c;
  }

  /** Sends a command and resolves with its result; an error result rejects (IqFailure for a stanza error). */
  async command(cmd: string, fields: Record<string, unknown> = {}): Promise<ScriptEvent> {
    if (this.exited) throw new Error(`slixmpp ${this.user} is gone`);
    const id = this.nextId++;
    const result = new Promise<ScriptEvent>((resolve) => this.results.set(id, resolve));
    this.child.stdin!.write(JSON.stringify({ cmd, id, ...fields }) + '\n');
    const e = await withTimeout(result, 8000, `slixmpp ${this.user}: ${cmd}`);
    if (e.ok !== true) {
      const err = (e.error ?? {}) as { condition?: string; type?: string; text?: string; blocked?: boolean };
      if (err.condition === 'client-exception' || err.condition === 'client-exited' || err.condition === 'client-timeout') {
        throw new Error(`slixmpp ${this.user}: ${cmd} failed: ${err.condition} ${err.text ?? ''}\n${this.stderr}`);
      }
      throw new IqFailure(err.condition ?? 'unknown', err.type ?? null, err.blocked === true, err.text);
    }
    return e;
  }

  async presence(p: PresenceInput = {}): Promise<void> {
    await this.command('presence', { ...p });
  }
  async subscribe(jid: string): Promise<void> {
    await this.command('subscribe', { jid });
  }
  async approve(jid: string): Promise<void> {
    await this.command('approve', { jid });
  }
  async deny(jid: string): Promise<void> {
    await this.command('deny', { jid });
  }
  async unsubscribe(jid: string): Promise<void> {
    await this.command('unsubscribe', { jid });
  }
  async message(to: string, body: string, opts: { type?: string; id?: string } = {}): Promise<void> {
    await this.command('send', { to, body, type: opts.type ?? 'chat', msg_id: opts.id });
  }

  async rosterGet(ver?: string): Promise<RosterResult> {
    const e = await this.command('roster_get', ver === undefined ? {} : { ver });
    return { empty: e.empty === true, ver: (e.ver as string | null) ?? null, items: e.items as RosterItemView[] };
  }

  /** slixmpp's own model of its roster (built from the result and the pushes it processed). */
  async rosterState(): Promise<{ ver: string; items: Record<string, { subscription: string; pending_out: boolean; name: string | null; groups: string[]; resources: Record<string, { show: string | null; status: string | null }> }> }> {
    const e = await this.command('roster_state');
    return e as never;
  }

  async rosterSet(jid: string, name?: string, groups: string[] = []): Promise<void> {
    await this.command('roster_set', { jid, name, groups });
  }
  async rosterRemove(jid: string): Promise<void> {
    await this.command('roster_remove', { jid });
  }

  async vcardGet(jid?: string): Promise<VCardView> {
    const e = await this.command('vcard_get', { jid });
    return { fn: (e.fn as string | null) ?? null, nickname: (e.nickname as string | null) ?? null, photo: (e.photo as string | null) ?? null };
  }

  async vcardSet(card: VCardInput, to?: string): Promise<void> {
    await this.command('vcard_set', { ...card, jid: to });
  }

  async block(jids: string[]): Promise<void> {
    await this.command('block', { jids });
  }
  async unblock(jids: string[]): Promise<void> {
    await this.command('unblock', { jids });
  }
  async blocklist(): Promise<string[]> {
    return (await this.command('blocklist')).jids as string[];
  }
  async ping(): Promise<void> {
    await this.command('ping');
  }

  /** XEP-0352 §4.2 through slixmpp's plugin (fails when the server did not offer the feature). */
  async csi(state: 'active' | 'inactive'): Promise<void> {
    await this.command('csi', { state });
  }

  async logout(opts: { unavailable?: boolean; status?: string } = {}): Promise<void> {
    await this.command('disconnect', { unavailable: opts.unavailable === true, status: opts.status });
    await this.waitClosed();
    this.child.stdin!.end();
    await this.waitExit();
  }

  /** 'reset': the script resets the socket (SO_LINGER 0) and exits; 'close': SIGKILL, the kernel closes the socket (FIN). */
  async kill(mode: 'reset' | 'close' = 'reset'): Promise<void> {
    if (mode === 'reset') this.child.stdin!.write(JSON.stringify({ cmd: 'kill', id: 0 }) + '\n');
    else this.child.kill('SIGKILL');
    await this.waitExit();
  }

  /** SIGSTOP: the socket stays open but nothing answers (a dead peer, for the keepalive). */
  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  async waitClosed(ms = 5000): Promise<void> {
    if (!(await this.inbox.waitFor(() => this.inbox.closed, ms))) throw new Error(`${this.user} (slixmpp) still connected after ${ms} ms`);
  }

  async waitExit(ms = 5000): Promise<void> {
    if (this.exited) return;
    await withTimeout(new Promise<void>((resolve) => this.child.once('exit', () => resolve())), ms, `slixmpp ${this.user} to exit`);
  }

  async dispose(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGKILL');
    await this.waitExit().catch(() => undefined);
  }
}

// --- Helpers for scenarios ------------------------------------------------------------

export type AnyClient = XjsClient | SlixClient;

export async function connectClient(kind: ClientKind, opts: ClientOptions): Promise<AnyClient> {
  return kind === 'xmpp.js' ? XjsClient.connect(opts) : SlixClient.connect(opts);
}

export const isPresence =
  (from: string, type: string | null = null) =>
  (s: StanzaView): boolean =>
    s.kind === 'presence' && s.type === type && s.from === from;

/** A presence whose sender is any resource of `bare` (or the bare JID itself). */
export const isPresenceOf =
  (bare: string, type: string | null = null) =>
  (s: StanzaView): boolean =>
    s.kind === 'presence' && s.type === type && s.from !== null && (s.from === bare || s.from.startsWith(`${bare}/`));

export const isPush =
  (jid: string, subscription?: string) =>
  (s: StanzaView): boolean =>
    s.kind === 'iq' && s.type === 'set' && s.roster !== undefined && s.roster.items.length === 1 && s.roster.items[0]!.jid === jid &&
    (subscription === undefined || s.roster.items[0]!.subscription === subscription);

export const isMessage =
  (body: string) =>
  (s: StanzaView): boolean =>
    s.kind === 'message' && s.body === body;

let barrierCount = 0;
/**
 * Makes sure that everything `from`'s connection caused before now has reached `to`:
 * the server handles one connection's stanzas in order and delivers to a session in
 * order, so once this message arrives, any earlier stanza bound for `to` would have too.
 */
export async function barrier(from: ImClient, to: ImClient): Promise<void> {
  const body = `barrier-${++barrierCount}`;
  await from.message(to.jid, body, { type: 'chat' });
  await to.next(isMessage(body), `barrier message from ${from.user}`);
}
