// The HTTP listener (plain or TLS): XMPP over WebSocket at /xmpp-websocket
// (RFC 7395), BOSH at /http-bind (XEP-0124/0206), and connection discovery at
// /.well-known/host-meta[.json] (XEP-0156). Node's own http/https servers carry
// it; `ws` does the WebSocket protocol. Who the client is (address, whether its
// connection is encrypted) is decided once here, with http.trust_proxy.
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../log/logger.js';
import { addressKey } from '../../core/address.js';
import type { HttpHandler } from '../../core/http.js';
import type { Framing } from '../framing.js';
import { closeStreams, type HeldConnection, type ListenAddress, type Listener } from '../listeners.js';
import type { TlsSettings, Transport } from '../transport.js';
import { WebSocketFraming } from './frames.js';
import { WebSocketTransport, type PeerInfo } from './websocket.js';
import { BoshSessions, isCreation, parseBoshBody, type BoshSettings } from './bosh.js';
import { BOSH_PATH_NAME, WEBSOCKET_PATH_NAME } from './paths.js';
import { CONVERSE_PREFIX, converseDist, indexHtml, initScript, preScript, serveConverseFile } from './webclient.js';

export const WEBSOCKET_PATH = WEBSOCKET_PATH_NAME;
export const BOSH_PATH = BOSH_PATH_NAME;

/** The http section of the configuration, as this listener uses it. */
export interface HttpSettings {
  /** Origins allowed to use the endpoints from a web page ('*': any). */
  allowed_origins: readonly string[];
  /** Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed. */
  trust_proxy: readonly string[];
  /** The base URL clients reach this server at (XEP-0156), when not the request's own. */
  public_url?: string;
  /** Seconds between WebSocket pings (RFC 6455 §5.5.2). */
  websocket_ping: number;
  /** Serve the Converse.js web client at /. */
  web_client: boolean;
  bosh: BoshSettings;
}

export interface HttpListenerOptions {
  kind: string;
  address: ListenAddress;
  log: Logger;
  /** Present for https: the certificate (read at each connection, so a reload applies). */
  tls: () => TlsSettings | undefined;
  secureListener: boolean;
  settings: () => HttpSettings;
  maxStanzaBytes: () => number;
  /** Connections (WebSockets and BOSH sessions) one client address may hold; 0: no limit. */
  maxPerAddress: () => number;
  /** Starts a client stream (C2SStream) over a transport. */
  openStream(transport: Transport, framing: Framing): HeldConnection;
  /** The domain the web client logs in to by default. */
  defaultDomain: string;
  /** /metrics, when metrics are on: the exposition text and who may read it. */
  metrics?: () => MetricsEndpoint | undefined;
  /** Paths served by modules (core/http.ts: XEP-0363 uploads), looked up by path. */
  routes?: (path: string) => HttpHandler | undefined;
}

export interface MetricsEndpoint {
  text(): Promise<string>;
  readonly contentType: string;
  /** Client addresses allowed to read the metrics. */
  readonly allowedIps: readonly string[];
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/i;

export function isLoopback(address: string): boolean {
  return LOOPBACK.test(address);
}

function normaliseIp(a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return (m ? m[1]! : a).toLowerCase();
}

/**
 * Who sent a request. Behind a trusted proxy the client is the last address the proxies
 * added to X-Forwarded-For that is not itself a proxy, and the connection counts as
 * encrypted unless X-Forwarded-Proto says plain http (the proxy terminates TLS); directly,
 * it is encrypted when this server terminated TLS or the client is on loopback.
 */
export function peerOf(req: http.IncomingMessage, settings: HttpSettings): PeerInfo {
  const socket = req.socket;
  const direct = socket.remoteAddress ?? 'unknown';
  const tlsSocket = socket instanceof TLSSocket ? socket : undefined;
  const trusted = new Set(settings.trust_proxy.map(normaliseIp));
  if (trusted.size > 0 && trusted.has(normaliseIp(direct))) {
    const forwarded = (headerValue(req.headers['x-forwarded-for']) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => isIP(s) !== 0);
    let client = direct;
    for (let i = forwarded.length - 1; i >= 0; i--) {
      client = forwarded[i]!;
      if (!trusted.has(normaliseIp(client))) break;
    }
    const proto = headerValue(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim().toLowerCase();
    const plain = proto === 'http' || proto === 'ws';
    return { remoteAddress: client, secure: tlsSocket !== undefined || !plain, tlsSocket };
  }
  return { remoteAddress: direct, secure: tlsSocket !== undefined || isLoopback(direct), tlsSocket };
}

function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h.join(',') : h;
}

/** Whether a page from `origin` may use the endpoints (CORS, and the WebSocket Origin check). */
function originAllowed(origin: string, settings: HttpSettings): boolean {
  return settings.allowed_origins.includes('*') || settings.allowed_origins.includes(origin);
}

function corsHeaders(req: http.IncomingMessage, settings: HttpSettings): Record<string, string> {
  const origin = req.headers.origin;
  if (origin === undefined || !originAllowed(origin, settings)) return {};
  return {
    'Access-Control-Allow-Origin': settings.allowed_origins.includes('*') ? '*' : origin,
    'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type',
    'Access-Control-Max-Age': '86400',
    Vary: 'Origin',
  };
}

/** XEP-0156 §3: the base URL, from http.public_url or from how this request reached us. */
function baseUrl(req: http.IncomingMessage, settings: HttpSettings, peer: PeerInfo, secureListener: boolean): string {
  if (settings.public_url !== undefined) return settings.public_url.replace(/\/+$/, '');
  const scheme = secureListener || (peer.secure && !isLoopback(peer.remoteAddress)) ? 'https' : 'http';
  const host = req.headers.host ?? 'localhost';
  return `${scheme}://${host}`;
}

/** XEP-0156 §3.1 (XRD) and §3.2 (JSON). */
function hostMeta(base: string, json: boolean): string {
  const bosh = `${base}${BOSH_PATH}`;
  const ws = `${base.replace(/^http/, 'ws')}${WEBSOCKET_PATH}`;
  if (json) {
    return JSON.stringify({
      links: [
        { rel: 'urn:xmpp:alt-connections:xbosh', href: bosh },
        { rel: 'urn:xmpp:alt-connections:websocket', href: ws },
      ],
    });
  }
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
  return (
    `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n` +
    `  <Link rel='urn:xmpp:alt-connections:xbosh' href='${esc(bosh)}'/>\n` +
    `  <Link rel='urn:xmpp:alt-connections:websocket' href='${esc(ws)}'/>\n</XRD>\n`
  );
}

export async function listenHttp(o: HttpListenerOptions): Promise<Listener> {
  const { log } = o;
  const held = new Set<HeldConnection>();
  const transports = { websocket: 0, bosh: 0 };
  const perAddress = new Map<string, number>();
  let closing = false;

  /** Counts a stream against its address; false when the address is over its limit. */
  const admit = (peer: PeerInfo): string | undefined => {
    const key = addressKey(peer.remoteAddress);
    const n = perAddress.get(key) ?? 0;
    const max = o.maxPerAddress();
    if (max > 0 && n >= max) {
      log.warn({ event: 'too-many-connections', kind: o.kind, ip: peer.remoteAddress, limit: max }, 'connection refused: too many from this address');
      return undefined;
    }
    perAddress.set(key, n + 1);
    return key;
  };
  const track = (conn: HeldConnection, key: string, transport: keyof typeof transports): void => {
    held.add(conn);
    transports[transport]++;
    conn.onFinished(() => {
      held.delete(conn);
      transports[transport]--;
      const n = (perAddress.get(key) ?? 1) - 1;
      if (n <= 0) perAddress.delete(key);
      else perAddress.set(key, n);
    });
  };

  const bosh = new BoshSessions(
    { settings: () => o.settings().bosh, log, maxInputBytes: () => 8 * o.maxStanzaBytes() },
    o.tls,
  );

  const dist = converseDist();
  if (o.settings().web_client && dist === undefined) log.warn({ event: 'no-web-client' }, 'http.web_client is on but the converse.js package is not installed');

  const wss = new WebSocketServer({
    noServer: true,
    // A hard cap on what is buffered at all; the stream parser enforces max_stanza_bytes
    // itself and answers a larger element with policy-violation (RFC 6120 §4.9.3.14).
    maxPayload: o.maxStanzaBytes() + 16 * 1024,
    // RFC 7395 §3.1: the subprotocol is 'xmpp'; the upgrade is refused below without it.
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    perMessageDeflate: false,
  });

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const settings = o.settings();
    const url = new URL(req.url ?? '/', 'http://x');
    const cors = corsHeaders(req, settings);
    const send = (status: number, type: string, body: string, extra: Record<string, string> = {}): void => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...cors, ...extra });
      res.end(body);
    };
    if (req.method === 'OPTIONS') return send(204, 'text/plain', '');
    const path = url.pathname;
    if (path === '/.well-known/host-meta' || path === '/.well-known/host-meta.json') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n', { Allow: 'GET, HEAD, OPTIONS' });
      const peer = peerOf(req, settings);
      const json = path.endsWith('.json');
      // XEP-0156 §3: discovery is for pages of any origin.
      const body = hostMeta(baseUrl(req, settings, peer, o.secureListener), json);
      return send(200, json ? 'application/json' : 'application/xrd+xml; charset=utf-8', body, { 'Access-Control-Allow-Origin': '*' });
    }
    if (path === BOSH_PATH) {
      if (req.method !== 'POST') return send(405, 'text/plain', 'BOSH: POST a <body/> (XEP-0124)\n', { Allow: 'POST, OPTIONS' });
      return readBosh(req, res, settings, cors);
    }
    if (path === '/metrics') {
      const m = o.metrics?.();
      if (m === undefined) return send(404, 'text/plain', 'not found\n');
      const peer = peerOf(req, settings);
      // Only from the addresses of metrics.allowed_ips (the scraper), loopback by default.
      if (!m.allowedIps.map(normaliseIp).includes(normaliseIp(peer.remoteAddress))) return send(403, 'text/plain', 'forbidden\n');
      m.text().then(
        (body) => send(200, m.contentType, body),
        (err: unknown) => {
          log.error({ err }, 'metrics collection failed');
          send(500, 'text/plain', 'metrics collection failed\n');
        },
      );
      return;
    }
    const route = o.routes?.(path);
    if (route !== undefined) return route(req, res, { path, query: url.searchParams, cors, remoteAddress: peerOf(req, settings).remoteAddress });
    if (settings.web_client && (req.method === 'GET' || req.method === 'HEAD')) {
      if (path === '/' || path === '/index.html') return send(200, 'text/html; charset=utf-8', indexHtml(), { 'X-Content-Type-Options': 'nosniff' });
      if (path === '/converse-pre.js') return send(200, 'text/javascript; charset=utf-8', preScript());
      if (path === '/converse-init.js') return send(200, 'text/javascript; charset=utf-8', initScript({ defaultDomain: o.defaultDomain }));
      if (path.startsWith(CONVERSE_PREFIX) && dist !== undefined && serveConverseFile(dist, path.slice(CONVERSE_PREFIX.length), req, res)) return;
      // OMEMO's WebAssembly is fetched relative to the page, not to the script.
      if (path === '/curve25519_compiled.wasm' && dist !== undefined && serveConverseFile(dist, 'curve25519_compiled.wasm', req, res)) return;
    }
    if (path === WEBSOCKET_PATH) return send(426, 'text/plain', 'XMPP over WebSocket (RFC 7395): upgrade with subprotocol xmpp\n', { Upgrade: 'websocket' });
    send(404, 'text/plain', 'not found\n');
  };

  /** Reads a BOSH request, bounded, and hands it to its session. */
  const readBosh = (req: http.IncomingMessage, res: http.ServerResponse, settings: HttpSettings, cors: Record<string, string>): void => {
    // A body carries a few stanzas; anything larger than two of the largest is refused.
    const limit = 2 * o.maxStanzaBytes();
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close', ...cors });
        res.end('request body too large\n');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      const peer = peerOf(req, settings);
      const reply = (body: string): void => {
        if (res.writableEnded || res.destroyed) return;
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Cache-Control': 'no-store', ...cors });
        res.end(body);
      };
      const parsed = parseBoshBody(Buffer.concat(chunks), { maxStanzaSize: o.maxStanzaBytes() });
      if (closing) return reply(`<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='system-shutdown'/>`);
      // A new session counts against the address like a TCP connection.
      if (isCreation(parsed)) {
        const key = admit(peer);
        if (key === undefined) return reply(`<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='policy-violation'/>`);
        bosh.request(parsed, peer, reply, (transport, framing) => track(o.openStream(transport, framing), key, 'bosh'));
        return;
      }
      bosh.request(parsed, peer, reply);
    });
  };

  let certificate = o.tls();
  const server = o.secureListener
    ? https.createServer(
        {
          ...certificate!.pem,
          minVersion: 'TLSv1.2',
          // The current certificate for every new connection that names a host (a reload applies at once).
          SNICallback: (_name, cb) => cb(null, o.tls()!.context),
        },
        handler,
      )
    : http.createServer(handler);
  if (o.secureListener) {
    // And for those that do not, from the next connection on (as in listeners.ts' tlsServer).
    server.on('connection', () => {
      const now = o.tls();
      if (now !== undefined && now !== certificate) {
        certificate = now;
        (server as https.Server).setSecureContext({ ...now.pem, minVersion: 'TLSv1.2' });
      }
    });
  }
  server.on('tlsClientError', (err) => log.debug({ event: 'tls-failed', kind: o.kind, err: err.message }, 'TLS handshake failed'));
  server.on('clientError', (_err, socket: Socket) => socket.destroy());

  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const settings = o.settings();
    const refuse = (status: number, reason: string): void => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${reason}\n`);
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    socket.on('error', () => undefined);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== WEBSOCKET_PATH || closing) return refuse(404, 'Not Found');
    const protocols = (headerValue(req.headers['sec-websocket-protocol']) ?? '').split(',').map((p) => p.trim());
    // RFC 7395 §3.1: a client that does not ask for the xmpp subprotocol is not speaking it.
    if (!protocols.includes('xmpp')) return refuse(400, 'Bad Request: subprotocol xmpp required (RFC 7395)');
    const origin = req.headers.origin;
    // Browsers send Origin; a page from an origin not allowed does not get a stream (RFC 6455 §10.2).
    if (origin !== undefined && !originAllowed(origin, settings)) return refuse(403, 'Forbidden: origin not allowed');
    const peer = peerOf(req, settings);
    const key = admit(peer);
    if (key === undefined) return refuse(503, 'Service Unavailable: too many connections from your address');
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const transport = new WebSocketTransport(ws, peer, o.tls(), settings.websocket_ping * 1000);
      track(o.openStream(transport, new WebSocketFraming()), key, 'websocket');
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.address.port, o.address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const actual = bound && typeof bound === 'object' ? { host: bound.address, port: bound.port } : o.address;
  log.info({ event: 'listen', kind: o.kind, host: actual.host, port: actual.port }, `listening (${o.kind}: ${WEBSOCKET_PATH}, ${BOSH_PATH}, /.well-known/host-meta)`);
  return {
    kind: o.kind,
    address: actual,
    get connections() {
      return held.size;
    },
    byTransport: () => ({ ...transports }),
    async close() {
      if (closing) return;
      closing = true;
      server.close();
      await closeStreams(held);
      bosh.closeAll();
      wss.close();
      server.closeAllConnections();
    },
  };
}
