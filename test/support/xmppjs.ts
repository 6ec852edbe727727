// Helpers for driving the real xmpp.js client (@xmpp/client) against a test
// server, and for watching what the server itself logged, so a test can check
// the server's side of an exchange (which SASL mechanism it ran, which JID it
// bound) and not only what the client library reports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/log/logger.js';

// @xmpp/client ships no type declarations; importing it through a non-literal
// specifier keeps the compiler from demanding them, and the small interfaces
// below describe the part of its API these tests use.
const XMPP_CLIENT = '@xmpp/client';
const xmppjs = (await import(XMPP_CLIENT)) as {
  client(options: Record<string, unknown>): XmppJsClient;
  xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: (XmlElement | string)[]): XmlElement;
};
export const xml = xmppjs.xml;

export interface XmlElement {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlElement | string)[];
  is(name: string, xmlns?: string): boolean;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
  getChildText(name: string, xmlns?: string): string | null;
  text(): string;
  toString(): string;
}

export interface XmppJsJid {
  toString(): string;
  bare(): XmppJsJid;
  getResource(): string;
}

export interface XmppJsClient {
  status: string;
  jid: XmppJsJid | null;
  socket: { socket: tls.TLSSocket | null } | null;
  start(): Promise<XmppJsJid>;
  stop(): Promise<unknown>;
  send(el: XmlElement): Promise<void>;
  isSecure(): boolean;
  on(event: string, fn: (...args: never[]) => void): void;
  off(event: string, fn: (...args: never[]) => void): void;
  reconnect: { start(): void; stop(): void; reconnect(): Promise<void> };
  iqCaller: {
    request(iq: XmlElement, timeoutMs?: number): Promise<XmlElement>;
    get(child: XmlElement, to?: string, timeoutMs?: number): Promise<XmlElement | undefined>;
  };
}

/** Rejects with a message naming `what` unless `p` settles within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `cond()` holds, re-checking every few milliseconds; rejects after `ms`. */
export async function waitUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves once the asynchronous `cond()` holds (e.g. a count read from storage); rejects after `ms`. */
export async function waitUntilAsync(cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One JSON line the server logged. */
export type LogRecord = Record<string, unknown> & { event?: string; conn?: string };

/**
 * A pino logger whose records a test can wait for and inspect. With
 * SHOAL_TEST_LOG set, records are also copied to stderr.
 */
export class LogCapture {
  readonly records: LogRecord[] = [];
  readonly logger: Logger;
  private waiters: (() => void)[] = [];
  private partial = '';

  constructor() {
    const echo = process.env.SHOAL_TEST_LOG !== undefined;
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        if (echo) process.stderr.write(chunk);
        this.partial += chunk.toString('utf8');
        let nl: number;
        while ((nl = this.partial.indexOf('\n')) >= 0) {
          const line = this.partial.slice(0, nl);
          this.partial = this.partial.slice(nl + 1);
          if (line.trim() !== '') this.records.push(JSON.parse(line) as LogRecord);
        }
        for (const w of this.waiters.splice(0)) w();
        done();
      },
    });
    this.logger = pino({ level: 'debug' }, sink);
  }

  /** Records matching `pred`, in order. */
  find(pred: (r: LogRecord) => boolean): LogRecord[] {
    return this.records.filter(pred);
  }

  /** Waits for the first record matching `pred` (already logged or still to come). */
  async waitFor(pred: (r: LogRecord) => boolean, what: string, ms = 5000): Promise<LogRecord> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.records.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for server log: ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** The self-signed certificate a test server generated under its data directory (PEM). */
export function serverCertificate(dir: string): string {
  return readFileSync(join(dir, 'data', 'tls', 'self-signed.crt'), 'utf8');
}

/**
 * xmpp.js's STARTTLS upgrade calls `tls.connect({ socket, host })` and offers
 * no way to pass TLS options, so certificate checking cannot be configured
 * through the library. Rather than switching verification off for the whole
 * process (NODE_TLS_REJECT_UNAUTHORIZED=0), this adds `ca` to every
 * `tls.connect` call that names none, so the test server's certificate is
 * still verified (chain and host name) against that one trust anchor.
 * Returns a function that restores the original `tls.connect`.
 */
export function trustCertificate(caPem: string): () => void {
  const original = tls.connect;
  const patched = (...args: unknown[]): tls.TLSSocket => {
    const [first] = args;
    if (args.length === 1 && typeof first === 'object' && first !== null && !('ca' in first)) {
      return original({ ...(first as tls.ConnectionOptions), ca: caPem });
    }
    return (original as (...a: unknown[]) => tls.TLSSocket)(...args);
  };
  tls.connect = patched as typeof tls.connect;
  return () => {
    tls.connect = original;
  };
}

export interface XmppJsSession {
  xmpp: XmppJsClient;
  /** The JID bound by the server. */
  jid: string;
  /** `mechanism` of every <auth/> the client sent, in order. */
  authMechanisms: string[];
  /** Every stanza received so far. */
  stanzas: XmlElement[];
  /** Waits for a received stanza matching `pred` (already received or still to come). */
  nextStanza(pred: (el: XmlElement) => boolean, what: string, ms?: number): Promise<XmlElement>;
}

export interface XmppJsOptions {
  port: number;
  /** Another service URL than xmpp://127.0.0.1:port (e.g. ws://127.0.0.1:port/xmpp-websocket). */
  service?: string;
  username: string;
  password: string;
  resource?: string;
}

/** Creates an xmpp.js client for the test server without starting it (no automatic reconnect). */
export function createXmppJs(opts: XmppJsOptions): { xmpp: XmppJsClient; authMechanisms: string[]; errors: Error[] } {
  const xmpp = xmppjs.client({
    service: opts.service ?? `xmpp://127.0.0.1:${opts.port}`,
    domain: 'localhost',
    // xmpp.js gives each stream step 2 s by default; a loaded CI machine running the
    // suite in parallel can exceed that without anything being wrong.
    timeout: 15_000,
    username: opts.username,
    password: opts.password,
    ...(opts.resource !== undefined ? { resource: opts.resource } : {}),
  });
  // A failed login must fail the test, not be retried a second later.
  xmpp.reconnect.stop();
  const authMechanisms: string[] = [];
  const errors: Error[] = [];
  xmpp.on('send', (el: XmlElement) => {
    if (el.is('auth', 'urn:ietf:params:xml:ns:xmpp-sasl')) authMechanisms.push(el.attrs.mechanism ?? '');
  });
  // xmpp.js requires an error listener; errors also reject start() when they end the login.
  xmpp.on('error', (err: Error) => {
    errors.push(err);
  });
  return { xmpp, authMechanisms, errors };
}

/** Connects, negotiates STARTTLS and SASL, binds, and resolves once online. */
export async function startXmppJs(opts: XmppJsOptions): Promise<XmppJsSession> {
  const { xmpp, authMechanisms } = createXmppJs(opts);
  const stanzas: XmlElement[] = [];
  const waiters: (() => void)[] = [];
  xmpp.on('stanza', (el: XmlElement) => {
    stanzas.push(el);
    for (const w of waiters.splice(0)) w();
  });
  // Generous: a loaded 2-core CI machine runs two test files at once.
  const address = await withTimeout(xmpp.start(), 10_000, `${opts.username} to come online`);
  return {
    xmpp,
    jid: address.toString(),
    authMechanisms,
    stanzas,
    async nextStanza(pred, what, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = stanzas.findIndex(pred);
        if (i >= 0) return stanzas.splice(i, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
  };
}

/** xmpp.js's component client (XEP-0114), as the tests use it. */
export interface XmppJsComponent {
  on(event: string, fn: (...a: never[]) => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: unknown): Promise<void>;
  reconnect: { stop(): void };
}

/** Loads @xmpp/component (a dev dependency without types): its factory and its xml builder. */
export async function loadXmppJsComponent(): Promise<{
  component(o: { service: string; domain: string; password: string }): XmppJsComponent;
  xml(name: string, attrs?: Record<string, string>, ...children: unknown[]): unknown;
}> {
  const spec = '@xmpp/component';
  return (await import(spec)) as Awaited<ReturnType<typeof loadXmppJsComponent>>;
}
