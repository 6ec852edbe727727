// A raw XML client for tests: sends exactly the bytes a test gives and parses
// what the server answers into elements, so every exchange of the seed and
// every error path can be checked element by element.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { StreamParser, type StreamHeader } from '../../src/xml/parser.js';
import type { Element } from '../../src/xml/element.js';
import { NS } from '../../src/xml/namespaces.js';

export const STREAM_OPEN = (to = 'localhost', extra = ''): string =>
  `<?xml version='1.0'?><stream:stream to='${to}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='${NS.STREAM}'${extra}>`;

type Event = { kind: 'header'; header: StreamHeader } | { kind: 'element'; el: Element } | { kind: 'end' } | { kind: 'closed' };

export class RawClient {
  socket: net.Socket | tls.TLSSocket;
  private parser: StreamParser;
  private events: Event[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  /** Everything received, as text (for byte-level checks such as the stream header). */
  received = '';
  /** Every top-level element received, in order, consumed by a wait or not. */
  readonly elements: Element[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.parser = this.newParser();
    this.attach(socket);
  }

  /** Connects to 127.0.0.1:`port`, from `localAddress` when given (any 127.x.y.z is this machine too). */
  static connect(port: number, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port, ...(localAddress !== undefined && { localAddress }) }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects with TLS from the first byte (XEP-0368 direct TLS) to 127.0.0.1:`port`. */
  static connectTls(port: number, options: tls.ConnectionOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost', ...options }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private attach(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.received += d.toString('utf8');
      this.parser.write(d);
    });
    s.on('close', () => {
      this.closed = true;
      this.push({ kind: 'closed' });
    });
    s.on('error', () => undefined);
  }

  private newParser(): StreamParser {
    return new StreamParser(
      {
        streamStart: (header) => this.push({ kind: 'header', header }),
        element: (el) => {
          this.elements.push(el);
          this.push({ kind: 'element', el });
        },
        whitespace: () => undefined,
        streamEnd: () => this.push({ kind: 'end' }),
        error: (c, t) => {
          throw new Error(`server sent bad XML: ${c} ${t}`);
        },
      },
      { maxStanzaSize: 10 * 1024 * 1024 },
    );
  }

  private push(e: Event): void {
    this.events.push(e);
    for (const w of this.waiters.splice(0)) w();
  }

  send(data: string): void {
    this.socket.write(data);
  }

  /** Waits for the first event satisfying `match`; other events stay queued. */
  private async next<T extends Event>(match: (e: Event) => e is T, what: string, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex(match);
      if (i >= 0) {
        // Only the matched event is consumed: others stay for later waits, whatever the order.
        const [e] = this.events.splice(i, 1);
        return e as T;
      }
      if (this.closed && !this.events.some(match)) {
        if (what !== 'close') throw new Error(`connection closed while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async header(): Promise<StreamHeader> {
    return (await this.next((e): e is Extract<Event, { kind: 'header' }> => e.kind === 'header', 'stream header')).header;
  }

  /** The next top-level element, optionally of a given name. */
  async element(name?: string, timeoutMs?: number): Promise<Element> {
    const e = await this.next(
      (ev): ev is Extract<Event, { kind: 'element' }> => ev.kind === 'element' && (name === undefined || ev.el.name === name),
      name ? `<${name}/>` : 'an element',
      timeoutMs,
    );
    return e.el;
  }

  /** Waits for a stanza matching the predicate (others are skipped). */
  async waitFor(pred: (el: Element) => boolean, what = 'a matching element', timeoutMs?: number): Promise<Element> {
    const e = await this.next((ev): ev is Extract<Event, { kind: 'element' }> => ev.kind === 'element' && pred(ev.el), what, timeoutMs);
    return e.el;
  }

  async streamEnd(timeoutMs?: number): Promise<void> {
    await this.next((e): e is Extract<Event, { kind: 'end' }> => e.kind === 'end', '</stream:stream>', timeoutMs);
  }

  async closedEvent(timeoutMs?: number): Promise<void> {
    if (this.closed) return;
    await this.next((e): e is Extract<Event, { kind: 'closed' }> => e.kind === 'closed', 'close', timeoutMs);
  }

  /** Expects a stream error with this condition, then the close of the stream. */
  async streamError(timeoutMs?: number): Promise<string> {
    const err = await this.waitFor((el) => el.name === 'error' && el.xmlns === NS.STREAM, 'a stream error', timeoutMs);
    const cond = err.children.find((c) => typeof c !== 'string' && c.xmlns === NS.STREAM_ERRORS && c.name !== 'text');
    return typeof cond === 'object' ? cond.name : '';
  }

  /**
   * STARTTLS in place (RFC 6120 §5.4.3.3): after <proceed/>, TLS on the same socket, new parser.
   * `options` are extra TLS settings (e.g. `maxVersion: 'TLSv1.2'`).
   */
  async startTls(options: tls.ConnectionOptions = {}): Promise<void> {
    this.send(`<starttls xmlns='${NS.TLS}'/>`);
    await this.element('proceed');
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    this.parser = this.newParser();
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ...options }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  /** Starts a new stream on the same connection (after TLS or SASL) and returns its features. */
  async restart(to = 'localhost'): Promise<Element> {
    this.parser = this.newParser();
    this.send(STREAM_OPEN(to));
    await this.header();
    return this.element('features');
  }

  close(): void {
    this.socket.destroy();
  }
}

let iqSeq = 0;

/** Sends `<iq {attrs}>{payload}</iq>` with a fresh id and resolves with the reply carrying that id. */
export async function iq(c: RawClient, attrs: string, payload: string, timeoutMs?: number): Promise<Element> {
  const id = `q-${++iqSeq}`;
  c.send(`<iq id='${id}' ${attrs}>${payload}</iq>`);
  return c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, `reply to ${id}`, timeoutMs);
}

/** The defined condition of an error reply (RFC 6120 §8.3.2); fails the test unless `reply` is type='error'. */
export function stanzaErrorCondition(reply: Element): string | undefined {
  assert.equal(reply.attrs.type, 'error', reply.toString());
  return reply.getChild('error')?.getChildren().find((c) => c.xmlns === NS.STANZA_ERRORS && c.name !== 'text')?.name;
}
