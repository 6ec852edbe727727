// Puts the pieces together: storage, the session registry, the hub, the
// modules, and the listeners the configuration asks for.
//
//   socket → transport → framing → negotiation (c2s.ts) → ClientSession
//          → hub (core/dispatcher.ts: hooks, IQ handlers, routing) → modules → storage
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Config } from './config/schema.js';
import { loadOrCreateTlsMaterial } from './config/tls.js';
import type { Logger } from './log/logger.js';
import { openStorage } from './storage/index.js';
import type { Storage } from './storage/types.js';
import type { Router } from './core/router.js';
import { StreamError } from './core/errors.js';
import { Dispatcher } from './core/dispatcher.js';
import type { AuthServices } from './core/credentials.js';
import { LocalRouter } from './router/local.js';
import { C2SStream, type C2SContext } from './stream/c2s.js';
import { ComponentDomains, ComponentStream, type ComponentContext } from './stream/component.js';
import { TcpFraming } from './stream/framing.js';
import { TcpTransport, type TlsSettings } from './stream/transport.js';
import { ListenerRegistry, listenTcp, type Listener } from './stream/listeners.js';
import { AccountShapers } from './stream/shaper.js';
import { certificateSignatureHash } from './stream/certificate.js';
import { findMechanism, offeredMechanisms } from './sasl/registry.js';
import { createAuthServices } from './auth/index.js';
import type { Module } from './modules/api.js';
import { RunningModules } from './modules/loader.js';
import { defaultModules } from './modules/index.js';

export interface ServerOptions {
  config: Config;
  log: Logger;
  /** Use this storage instead of opening the configured one (tests). */
  storage?: Storage;
  /** The feature modules (default: defaultModules()). */
  modules?: Module[];
  /** The session registry (default: a LocalRouter, this process only; a cluster passes its own). */
  router?: Router;
}

export class XmppServer {
  readonly dispatcher: Dispatcher;
  readonly router: Router;
  /** Listener kinds; the server starts those the configuration asks for. */
  readonly listenerKinds = new ListenerRegistry();
  private readonly listeners: Listener[] = [];
  private components: ComponentDomains | undefined;
  private stopping = false;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly storage: Storage,
    private readonly tls: TlsSettings | undefined,
    /** Token verifier, external password check, rate limiter (src/auth). */
    readonly auth: AuthServices,
    router: Router,
    private modules: RunningModules | undefined,
  ) {
    this.router = router;
    this.dispatcher = new Dispatcher({ config, log, router, accounts: storage.accounts });
    this.defineListenerKinds();
  }

  static async create(opts: ServerOptions): Promise<XmppServer> {
    const { config, log } = opts;
    let tls: TlsSettings | undefined;
    if (config.tls) {
      const material = await loadOrCreateTlsMaterial(config.tls, config.data_dir, config.hosts, log);
      tls = makeTlsSettings(material.cert, material.key);
    }
    const storage = opts.storage ?? (await openStorage(config.storage));
    try {
      // Reads JWT key files now: a bad key stops the start instead of failing every login.
      const auth = createAuthServices(config, storage, log);
      const server = new XmppServer(config, log, storage, tls, auth, opts.router ?? new LocalRouter(), undefined);
      server.modules = await RunningModules.start(opts.modules ?? defaultModules(), server.dispatcher, storage);
      return server;
    } catch (err) {
      if (opts.storage === undefined) await storage.close();
      throw err;
    }
  }

  /** The public API a running module offers (ModuleContext.use for code outside the modules: tools, tests). */
  module<T>(name: string): T {
    const api = this.modules?.api(name);
    if (api === undefined) throw new Error(`module ${name} is not running or has no API`);
    return api as T;
  }

  /** The port the client listener actually listens on (useful with port 0). */
  get port(): number {
    return this.listeners.find((l) => l.kind === 'c2s')?.address.port ?? 0;
  }

  /** The port the component listener listens on, 0 when there is none. */
  get componentPort(): number {
    return this.listeners.find((l) => l.kind === 'component')?.address.port ?? 0;
  }

  /** Connections held by every listener. */
  get connectionCount(): number {
    return this.listeners.reduce((n, l) => n + l.connections, 0);
  }

  /** Starts the listeners the configuration asks for. */
  async listen(): Promise<void> {
    const cfg = this.config;
    try {
      this.listeners.push(await this.listenerKinds.start('c2s', cfg.c2s));
      if (cfg.components) this.listeners.push(await this.listenerKinds.start('component', cfg.components.listen));
    } catch (err) {
      for (const l of this.listeners.splice(0)) await l.close();
      throw err;
    }
    this.log.info({ event: 'ready', hosts: cfg.hosts, modules: this.modules?.names }, 'server ready');
  }

  /** RFC 6120 §4.9.3.22: every stream ends with system-shutdown; then modules stop and storage closes. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all(this.listeners.map((l) => l.close()));
    this.components?.close();
    await this.dispatcher.drain();
    await this.modules?.stop((name, err) => this.log.error({ err, module: name }, 'module failed to stop'));
    await this.dispatcher.drain();
    await this.storage.close();
    this.log.info({ event: 'stopped' }, 'server stopped');
  }

  private defineListenerKinds(): void {
    const log = this.log;
    const c2s = this.c2sContext();
    this.listenerKinds.define('c2s', (address) =>
      listenTcp('c2s', address, log, (socket) => new C2SStream(c2s, new TcpTransport(socket, this.tls), new TcpFraming()), {
        logFields: { hosts: this.config.hosts, tls: this.tls !== undefined },
        maxPerAddress: this.config.limits.max_connections_per_ip,
        // RFC 6120 §4.9.3.14 policy-violation, after a header so the client can read why.
        refuse: (socket) => {
          const framing = new TcpFraming();
          const error = new StreamError('policy-violation', 'too many connections from your address');
          socket.end(framing.header({ from: this.config.hosts[0]!, id: randomBytes(16).toString('base64url'), version: '1.0', lang: 'en' }) + framing.error(error) + framing.footer());
        },
      }),
    );
    this.listenerKinds.define('component', (address) => {
      const d = this.dispatcher;
      this.components ??= new ComponentDomains(
        { registerService: (domain, handler, options) => d.registerService(domain, handler, options), bounce: (stanza, error) => d.bounce(stanza, error) },
        this.config.components?.services ?? [],
      );
      const ctx: ComponentContext = {
        config: this.config,
        log,
        components: this.components,
        defaultHost: this.config.hosts[0]!,
        route: (stanza) => d.route(stanza),
      };
      // Components are trusted peers with a shared secret, not TLS clients: plain TCP (XEP-0114).
      return listenTcp('component', address, log, (socket) => new ComponentStream(ctx, new TcpTransport(socket, undefined)));
    });
  }

  private c2sContext(): C2SContext {
    const d = this.dispatcher;
    const cfg = this.config;
    return {
      config: cfg,
      log: this.log,
      router: this.router,
      sessions: d,
      defaultHost: cfg.hosts[0]!,
      tlsRequired: this.tls !== undefined,
      credentials: this.storage.accounts,
      legacySecrets: this.storage.legacySecrets,
      auth: this.auth,
      isLocalDomain: (domain) => d.isLocalDomain(domain),
      offeredMechanisms: (sctx) =>
        offeredMechanisms(sctx, cfg.sasl.mechanisms, {
          allowPlainWithoutTls: cfg.sasl.allow_plain_without_tls,
          externalAccounts: this.auth.externalAccounts,
        }),
      knownMechanism: (name) => findMechanism(name),
      streamFeatures: () => d.streamFeatures(),
      nonzaHandler: (xmlns) => d.nonzaHandler(xmlns),
      accountShapers: new AccountShapers(() => cfg.limits.rate.account),
      handleStanza: (session, stanza) => d.handleStanza(session, stanza),
      sessionBound: (session) => d.sessionBound(session),
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
