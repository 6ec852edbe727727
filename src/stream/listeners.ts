// Listeners are made from configuration by kind: each kind (c2s, component;
// later direct TLS, HTTP) registers a factory here, and the server starts one
// listener per configured address without knowing what the kinds are.
import net from 'node:net';
import tls from 'node:tls';
import type { TlsSettings } from './transport.js';
import type { Logger } from '../log/logger.js';
import { StreamError } from '../core/errors.js';
import { addressKey } from '../core/address.js';

/** Where a listener listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** A running listener. */
export interface Listener {
  readonly kind: string;
  /** The address actually bound (the port chosen by the OS for port 0). */
  readonly address: ListenAddress;
  /** How many connections it holds now. */
  readonly connections: number;
  /** The same, by transport, when a listener has several (HTTP: websocket, bosh). */
  byTransport?(): Record<string, number>;
  /** Stops accepting, and ends every connection (with system-shutdown for XML streams). */
  close(): Promise<void>;
}

/** Creates a listener of one kind on an address. */
export type ListenerFactory = (address: ListenAddress) => Promise<Listener>;

export class ListenerRegistry {
  private readonly kinds = new Map<string, ListenerFactory>();

  define(kind: string, factory: ListenerFactory): void {
    if (this.kinds.has(kind)) throw new Error(`listener kind ${kind} is already defined`);
    this.kinds.set(kind, factory);
  }

  has(kind: string): boolean {
    return this.kinds.has(kind);
  }

  async start(kind: string, address: ListenAddress): Promise<Listener> {
    const factory = this.kinds.get(kind);
    if (!factory) throw new Error(`no listener kind ${kind}`);
    return factory(address);
  }
}

/** A connection a TCP listener holds: it can be asked to close and tells when it has. */
export interface HeldConnection {
  close(error?: StreamError): void;
  onFinished(cb: () => void): void;
}

/** How long shutdown waits for connections to close after system-shutdown. */
const SHUTDOWN_GRACE_MS = 3_000;

/** RFC 6120 §4.9.3.22: ends every held stream with system-shutdown and waits for them (at most SHUTDOWN_GRACE_MS). */
export async function closeStreams(held: Iterable<HeldConnection>): Promise<void> {
  const closed = [...held].map(
    (c) =>
      new Promise<void>((resolve) => {
        c.onFinished(resolve);
        c.close(new StreamError('system-shutdown'));
      }),
  );
  await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
}

export interface TcpListenOptions {
  /** Extra fields for the 'listen' log line. */
  logFields?: Record<string, unknown>;
  /** Connections one client address (an IPv6 /64) may hold at once; 0: no limit. Asked at each connection (it can be reloaded). */
  maxPerAddress?: () => number;
  /** Answers a connection over that limit (then it is closed). */
  refuse?: (socket: net.Socket) => void;
  /**
   * TLS from the first byte (XEP-0368): connections are handed over once the handshake is
   * done. The context is asked for at each connection (a reloaded certificate applies).
   */
  tls?: { settings: () => TlsSettings; alpn: string[] };
}

/** How long a refused connection may take to read its answer before it is destroyed. */
const REFUSE_GRACE_MS = 2_000;

/**
 * A TCP listener that hands each accepted socket to `accept` and keeps track of the
 * connections, so that closing it ends them all (RFC 6120 §4.9.3.22 system-shutdown).
 */
export async function listenTcp(
  kind: string,
  address: ListenAddress,
  log: Logger,
  accept: (socket: net.Socket) => HeldConnection,
  options: TcpListenOptions = {},
): Promise<Listener> {
  const held = new Set<HeldConnection>();
  const perAddress = new Map<string, number>();
  let closing = false;
  const onSocket = (socket: net.Socket): void => {
    if (closing) {
      socket.destroy();
      return;
    }
    const key = addressKey(socket.remoteAddress ?? '');
    const count = perAddress.get(key) ?? 0;
    const max = options.maxPerAddress?.() ?? 0;
    if (max > 0 && count >= max) {
      log.warn({ event: 'too-many-connections', kind, ip: socket.remoteAddress, limit: max }, 'connection refused: too many from this address');
      socket.on('error', () => undefined);
      setTimeout(() => socket.destroy(), REFUSE_GRACE_MS).unref();
      if (options.refuse) options.refuse(socket);
      else socket.destroy();
      return;
    }
    perAddress.set(key, count + 1);
    const conn = accept(socket);
    held.add(conn);
    conn.onFinished(() => {
      held.delete(conn);
      const n = (perAddress.get(key) ?? 1) - 1;
      if (n <= 0) perAddress.delete(key);
      else perAddress.set(key, n);
    });
  };
  const t = options.tls;
  const server = t ? tlsServer(t.settings, { ALPNProtocols: t.alpn }, onSocket) : net.createServer(onSocket);
  if (t) server.on('tlsClientError', (err) => log.debug({ event: 'tls-failed', kind, err: err.message }, 'TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const actual = bound && typeof bound === 'object' ? { host: bound.address, port: bound.port } : address;
  log.info({ event: 'listen', kind, host: actual.host, port: actual.port, ...options.logFields }, `listening (${kind})`);
  return {
    kind,
    address: actual,
    get connections() {
      return held.size;
    },
    async close() {
      if (closing) return;
      closing = true;
      server.close();
      await closeStreams(held);
    },
  };
}

/**
 * A TLS server with the current certificate: a client that names a host (SNI) gets the one in
 * force now; one that does not gets the one in force when the previous connection arrived
 * (a reloaded certificate reaches the server with the next connection).
 */
export function tlsServer(settings: () => TlsSettings, options: tls.TlsOptions, onSecure: (socket: tls.TLSSocket) => void): tls.Server {
  let current = settings();
  const server = tls.createServer(
    {
      ...current.pem,
      minVersion: 'TLSv1.2',
      SNICallback: (_name, cb) => cb(null, settings().context),
      // A client that never finishes its handshake does not hold a socket for long.
      handshakeTimeout: 10_000,
      ...options,
    },
    onSecure,
  );
  server.on('connection', () => {
    const now = settings();
    if (now !== current) {
      current = now;
      server.setSecureContext({ ...now.pem, minVersion: 'TLSv1.2' });
    }
  });
  return server;
}
