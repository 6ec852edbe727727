// Puts the pieces together: storage, router, modules, and the client listener.
import net from 'node:net';
import { createHash, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Config } from './config/schema.js';
import { loadOrCreateTlsMaterial } from './config/tls.js';
import type { Logger } from './log/logger.js';
import { openStorage } from './storage/index.js';
import type { Storage } from './storage/types.js';
import { LocalRouter, type Router } from './router/router.js';
import { Dispatcher } from './router/dispatcher.js';
import { C2SConnection } from './stream/connection.js';
import { TcpTransport, type TlsSettings } from './stream/transport.js';
import type { C2SContext } from './stream/context.js';
import { StreamError } from './stream/errors.js';
import { findMechanism, offeredMechanisms } from './sasl/registry.js';
import type { Module } from './modules/api.js';
import { defaultModules } from './modules/index.js';
import { certificateSignatureHash } from './stream/certificate.js';
import { createAuthServices, type AuthServices } from './auth/index.js';

export interface ServerOptions {
  config: Config;
  log: Logger;
  /** Use this storage instead of opening the configured one (tests). */
  storage?: Storage;
  modules?: Module[];
}

export class XmppServer {
  readonly dispatcher: Dispatcher;
  readonly router: Router;
  private listener: net.Server | undefined;
  private readonly connections = new Set<C2SConnection>();
  private stopping = false;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly storage: Storage,
    private readonly tls: TlsSettings | undefined,
    modules: Module[],
    /** Token verifier, external password check, rate limiter (src/auth). */
    readonly auth: AuthServices,
  ) {
    this.router = new LocalRouter();
    this.dispatcher = new Dispatcher(config, log, storage, this.router);
    for (const m of modules) m.register(this.dispatcher);
  }

  static async create(opts: ServerOptions): Promise<XmppServer> {
    const { config, log } = opts;
    let tls: TlsSettings | undefined;
    if (config.tls) {
      const material = await loadOrCreateTlsMaterial(config.tls, config.data_dir, config.hosts, log);
      tls = makeTlsSettings(material.cert, material.key);
    }
    const storage = opts.storage ?? (await openStorage(config.storage));
    let auth: AuthServices;
    try {
      // Reads JWT key files now: a bad key stops the start instead of failing every login.
      auth = createAuthServices(config, storage, log);
    } catch (err) {
      if (opts.storage === undefined) await storage.close();
      throw err;
    }
    return new XmppServer(config, log, storage, tls, opts.modules ?? defaultModules(), auth);
  }

  /** The port actually listened on (useful with port 0). */
  get port(): number {
    const addr = this.listener?.address();
    return addr && typeof addr === 'object' ? addr.port : 0;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(): Promise<void> {
    const ctx = this.c2sContext();
    const server = net.createServer((socket) => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      const conn = new C2SConnection(ctx, new TcpTransport(socket, this.tls));
      this.connections.add(conn);
    });
    this.listener = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.c2s.port, this.config.c2s.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.log.info({ event: 'listen', host: this.config.c2s.host, port: this.port, hosts: this.config.hosts, tls: this.tls !== undefined }, 'listening for clients');
  }

  /** RFC 6120 §4.9.3.22: every stream ends with system-shutdown, then storage closes. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.listener?.close();
    const closed = [...this.connections].map(
      (c) =>
        new Promise<void>((resolve) => {
          c.onFinished(resolve);
          c.close(new StreamError('system-shutdown'));
        }),
    );
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 3_000).unref())]);
    await this.dispatcher.drain();
    await this.storage.close();
    this.log.info({ event: 'stopped' }, 'server stopped');
  }

  private c2sContext(): C2SContext {
    const d = this.dispatcher;
    const cfg = this.config;
    return {
      config: cfg,
      log: this.log,
      storage: this.storage,
      router: this.router,
      defaultHost: cfg.hosts[0]!,
      tlsRequired: this.tls !== undefined,
      auth: this.auth,
      isLocalDomain: (domain) => d.isLocalDomain(domain),
      offeredMechanisms: (sctx) =>
        offeredMechanisms(sctx, cfg.sasl.mechanisms, {
          allowPlainWithoutTls: cfg.sasl.allow_plain_without_tls,
          externalAccounts: this.auth.externalAccounts,
        }),
      knownMechanism: (name) => findMechanism(name),
      streamFeatures: () => d.streamFeatures(),
      handleStanza: (session, stanza) => d.handleStanza(session, stanza),
      sessionBound: (session) => d.sessionBound(session),
      sessionEnded: (session, reason) => d.sessionEnded(session, reason),
      connectionClosed: (conn) => this.connections.delete(conn as C2SConnection),
    };
  }
}

function makeTlsSettings(cert: string, key: string): TlsSettings {
  // Modern TLS only (TLS 1.2+); Node's default cipher list is already AEAD-first.
  const context = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  const x509 = new X509Certificate(cert);
  // RFC 5929 §4.1: hash the certificate with its signature's hash, SHA-256 when that is MD5/SHA-1.
  const hash = certificateSignatureHash(x509.raw);
  const serverEndPoint = createHash(hash).update(x509.raw).digest();
  return { context, serverEndPoint };
}
