// Listeners are made from configuration by kind: each kind (c2s, component;
// later direct TLS, HTTP) registers a factory here, and the server starts one
// listener per configured address without knowing what the kinds are.
import net from 'node:net';
import type { Logger } from '../log/logger.js';
import { StreamError } from '../core/errors.js';

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

/**
 * A TCP listener that hands each accepted socket to `accept` and keeps track of the
 * connections, so that closing it ends them all (RFC 6120 §4.9.3.22 system-shutdown).
 */
export async function listenTcp(
  kind: string,
  address: ListenAddress,
  log: Logger,
  accept: (socket: net.Socket) => HeldConnection,
  logFields: Record<string, unknown> = {},
): Promise<Listener> {
  const held = new Set<HeldConnection>();
  let closing = false;
  const server = net.createServer((socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const conn = accept(socket);
    held.add(conn);
    conn.onFinished(() => held.delete(conn));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const actual = bound && typeof bound === 'object' ? { host: bound.address, port: bound.port } : address;
  log.info({ event: 'listen', kind, host: actual.host, port: actual.port, ...logFields }, `listening (${kind})`);
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
      const closed = [...held].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.onFinished(resolve);
            c.close(new StreamError('system-shutdown'));
          }),
      );
      await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
    },
  };
}
