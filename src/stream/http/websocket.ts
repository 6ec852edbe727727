// XMPP over WebSocket (RFC 7395): one WebSocket connection carries one client
// stream; each text message is one element (frames.ts), and the client stream
// itself (SASL, bind, limits) is the same C2SStream as over TCP.
import type { TLSSocket } from 'node:tls';
import type { WebSocket } from 'ws';
import type { ChannelBindingType } from '../../core/sasl.js';
import { tlsChannelBinding, tlsChannelBindingTypes, type TlsSettings, type Transport, type TransportHandler } from '../transport.js';

/** What the HTTP layer learnt about the request that opened the connection. */
export interface PeerInfo {
  /** The client's address (the proxy's report of it, behind a trusted proxy). */
  remoteAddress: string;
  /** Whether the connection counts as encrypted (TLS here, loopback, or a trusted TLS proxy). */
  secure: boolean;
  /** The TLS connection itself, when this server terminated TLS (channel binding). */
  tlsSocket?: TLSSocket;
}

/** RFC 6455 §7.4.1: 1003, a type of data the endpoint cannot accept (RFC 7395 §3.2: text only). */
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_NORMAL = 1000;

export class WebSocketTransport implements Transport {
  private handler: TransportHandler | undefined;
  private closedOnce = false;
  private alive = true;
  private readonly pinger: NodeJS.Timeout;
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly canStartTls = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly peer: PeerInfo,
    private readonly tls: TlsSettings | undefined,
    pingIntervalMs: number,
  ) {
    this.remoteAddress = peer.remoteAddress;
    this.secure = peer.secure;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.alive = true;
      if (isBinary) {
        ws.close(CLOSE_UNSUPPORTED_DATA, 'XMPP messages are text');
        return;
      }
      this.handler?.data(data);
    });
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('error', (err) => this.onClosed(true, err));
    ws.on('close', () => this.onClosed(false));
    // RFC 6455 §5.5.2: a ping the peer must answer; a connection that answered nothing
    // (no pong, no message) since the last one is dead and is dropped.
    this.pinger = setInterval(() => {
      if (!this.alive) {
        ws.terminate();
        return;
      }
      this.alive = false;
      ws.ping();
    }, pingIntervalMs);
    this.pinger.unref();
  }

  get pendingBytes(): number {
    return this.ws.bufferedAmount;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  private onClosed(hadError: boolean, error?: Error): void {
    if (this.linger !== undefined) {
      clearTimeout(this.linger);
      this.linger = undefined;
    }
    if (this.closedOnce) return;
    this.closedOnce = true;
    clearInterval(this.pinger);
    this.handler?.closed(hadError, error);
  }

  /** One call, one message (RFC 7395 §3.3.1). */
  write(data: string): void {
    if (this.closedOnce || data === '' || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(data, () => {
      if (this.ws.bufferedAmount === 0) this.handler?.emptied?.();
    });
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not part of XMPP over WebSocket'));
  }

  get channelBindingTypes(): readonly ChannelBindingType[] {
    return tlsChannelBindingTypes(this.peer.tlsSocket);
  }

  channelBinding(type: ChannelBindingType): Buffer | undefined {
    return tlsChannelBinding(this.peer.tlsSocket, this.tls, type);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** RFC 7395 §3.6: after our <close/>, the WebSocket closing handshake; a peer that never answers it is cut off. */
  end(): void {
    if (this.closedOnce) return;
    this.ws.close(CLOSE_NORMAL);
    // Cleared once the WebSocket has closed: it holds the closed connection and its session.
    this.linger ??= setTimeout(WebSocketTransport.lingered, 5_000, this).unref();
  }

  /** Set by end(): cuts off a peer that has not answered the closing handshake by then. */
  private linger: NodeJS.Timeout | undefined;

  private static lingered(this: void, transport: WebSocketTransport): void {
    transport.linger = undefined;
    transport.ws.terminate();
  }

  destroy(): void {
    this.ws.terminate();
  }
}
