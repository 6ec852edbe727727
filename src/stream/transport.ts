// The byte pipe under an XML stream. TCP with in-place STARTTLS (RFC 6120 §5)
// is the one here; WebSocket (RFC 7395) and BOSH plug in behind the same interface.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { ChannelBindingType } from '../core/sasl.js';

export interface TransportHandler {
  data(chunk: Buffer): void;
  /** Everything written so far has been handed to the OS (the output buffer emptied). */
  emptied?(): void;
  /** The peer or the network ended the connection (or we destroyed it). Called once. */
  closed(hadError: boolean, error?: Error): void;
}

export interface Transport {
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** Whether the transport can be upgraded with STARTTLS (not already TLS, and TLS configured). */
  readonly canStartTls: boolean;
  /** Bytes queued but not yet accepted by the OS (slow-reader detection). */
  readonly pendingBytes: number;
  setHandler(handler: TransportHandler): void;
  write(data: string): void;
  /** Upgrades the connection in place (RFC 6120 §5.4.3.3). Resolves once the handshake is done. */
  startTls(): Promise<void>;
  channelBinding(type: ChannelBindingType): Buffer | undefined;
  readonly channelBindingTypes: readonly ChannelBindingType[];
  /** Stops reading (backpressure on a client that floods). */
  pause(): void;
  resume(): void;
  /** Closes after flushing what was written. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
}

export interface TlsSettings {
  context: SecureContext;
  /** The PEM certificate chain and key (a listening TLS server takes these, not a context). */
  pem: { cert: string; key: string };
  /** RFC 5929 §4.1: hash of the server certificate, precomputed once. */
  serverEndPoint: Buffer;
}

/** How long end() waits for the peer to close its side before destroying the socket (ms). */
const LINGER_MS = 5_000;

export class TcpTransport implements Transport {
  private socket: Socket;
  private tlsSocket: TLSSocket | undefined;
  private handler: TransportHandler | undefined;
  private closedOnce = false;
  readonly remoteAddress: string;

  constructor(
    socket: Socket,
    private readonly tls: TlsSettings | undefined,
    /** XEP-0368 direct TLS: the socket is a TLSSocket whose handshake is done; no STARTTLS. */
    direct = false,
  ) {
    this.socket = socket;
    if (direct) {
      if (!(socket instanceof TLSSocket)) throw new Error('direct TLS needs a TLS socket');
      this.tlsSocket = socket;
      // The handshake finished just now: the client's first stream header may come in the same read.
      this.afterHandshake = true;
    }
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    // Dead peers on mobile networks: let the kernel probe idle connections too.
    socket.setKeepAlive(true, 60_000);
    socket.setNoDelay(true);
    this.attach(socket);
  }

  get secure(): boolean {
    return this.tlsSocket !== undefined;
  }

  get canStartTls(): boolean {
    return this.tls !== undefined && this.tlsSocket === undefined;
  }

  get pendingBytes(): number {
    // What this tick wrote and has not handed over yet counts in UTF-16 units, not bytes: it is
    // at most one tick's output, and leaves at the end of the tick.
    return this.socket.writableLength + (this.pending?.length ?? 0);
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  private attach(s: Socket): void {
    s.on('data', (chunk: Buffer) => this.handler?.data(chunk));
    s.on('drain', () => this.handler?.emptied?.());
    s.on('error', (err) => this.onClosed(true, err));
    s.on('close', (hadError) => this.onClosed(hadError));
  }

  private onClosed(hadError: boolean, error?: Error): void {
    if (this.linger !== undefined) {
      clearTimeout(this.linger);
      this.linger = undefined;
    }
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.socket.destroy();
    this.handler?.closed(hadError, error);
  }

  /** What was written during this tick and not yet handed to the socket (see write()). */
  private pending: string | undefined;
  private readonly flushSoon = (): void => this.flush();
  /**
   * Set when a TLS handshake has just finished: the next write is handed over after the event
   * loop's I/O (setImmediate), not at the end of the tick. OpenSSL writes its TLS 1.3 session
   * tickets (two, about 500 bytes) when it reads the client's Finished, and Node sends them only
   * once the read that carried the Finished has been handled; the client's first stream header
   * often comes in that same read. Written in the same tick, our answer would join the tickets
   * in Node's 1 KiB TLS output buffer, which then adds a 16 KiB one that the connection keeps
   * for the rest of its life: about 12 KiB of RSS per idle connection (bench/memory/README.md).
   */
  private afterHandshake = false;

  write(data: string): void {
    if (this.closedOnce || this.socket.destroyed) return;
    if (this.pending === undefined) {
      // Everything written while handling one event (a result, pushes, a broadcast) leaves in
      // one TLS record and one system call instead of one each: gathered until the end of the
      // tick and handed over as one string. Corking the socket did the same at a higher price:
      // Node's writev path copies each chunk, and TLS copies them again into one record.
      this.pending = data;
      if (this.afterHandshake) {
        this.afterHandshake = false;
        setImmediate(this.flushSoon);
      } else process.nextTick(this.flushSoon);
    } else {
      this.pending += data;
    }
  }

  /** Hands what this tick wrote to the socket. */
  private flush(): void {
    const data = this.pending;
    if (data === undefined) return;
    this.pending = undefined;
    if (this.closedOnce || this.socket.destroyed) return;
    this.socket.write(data);
  }

  startTls(): Promise<void> {
    const tls = this.tls;
    if (!tls || this.tlsSocket) return Promise.reject(new Error('STARTTLS not available'));
    const raw = this.socket;
    // RFC 6120 §5.4.3.3: <proceed/> must be on the wire before the handshake starts.
    this.flush();
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    return new Promise((resolve, reject) => {
      const secure = new TLSSocket(raw, { isServer: true, secureContext: tls.context });
      this.tlsSocket = secure;
      this.socket = secure;
      // Errors and close during the handshake go to the handler like any other close.
      this.attach(secure);
      // Each listener removes the other: one left behind would hold this promise for the life of the connection.
      const failed = (): void => {
        secure.off('secure', done);
        reject(new Error('connection closed during the TLS handshake'));
      };
      const done = (): void => {
        secure.off('close', failed);
        this.afterHandshake = true;
        resolve();
      };
      secure.once('secure', done);
      secure.once('close', failed);
    });
  }

  get channelBindingTypes(): readonly ChannelBindingType[] {
    return tlsChannelBindingTypes(this.tlsSocket);
  }

  channelBinding(type: ChannelBindingType): Buffer | undefined {
    return tlsChannelBinding(this.tlsSocket, this.tls, type);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (this.closedOnce) return;
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not keep the socket forever. The timer goes as
    // soon as the socket has closed: it holds this transport, and through its handler the whole
    // closed connection and its session, which at a thousand logouts a second is five thousand
    // dead connections kept for nothing.
    this.linger ??= setTimeout(TcpTransport.lingered, LINGER_MS, this).unref();
  }

  /** Set by end(): destroys the socket if the peer has not closed its side by then. */
  private linger: NodeJS.Timeout | undefined;

  private static lingered(this: void, transport: TcpTransport): void {
    transport.linger = undefined;
    transport.socket.destroy();
  }

  destroy(): void {
    this.pending = undefined;
    this.socket.destroy();
  }
}

/** The channel bindings a TLS connection has (none without TLS). */
export function tlsChannelBindingTypes(socket: TLSSocket | undefined): readonly ChannelBindingType[] {
  if (!socket) return [];
  // RFC 9266 §3: tls-exporter is only defined for TLS 1.3 (or 1.2 with extended master secret,
  // which Node does not let us check), so offer it on TLS 1.3 only.
  return socket.getProtocol() === 'TLSv1.3' ? ['tls-exporter', 'tls-server-end-point'] : ['tls-server-end-point'];
}

export function tlsChannelBinding(socket: TLSSocket | undefined, tls: TlsSettings | undefined, type: ChannelBindingType): Buffer | undefined {
  if (!socket || !tls) return undefined;
  if (type === 'tls-server-end-point') return tls.serverEndPoint;
  if (type === 'tls-exporter' && socket.getProtocol() === 'TLSv1.3') {
    // RFC 9266 §2: 32 bytes, label "EXPORTER-Channel-Binding", empty context.
    return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  }
  return undefined;
}
