// Puts the pieces together: storage, the session registry, the hub, the
// modules, and the listeners the configuration asks for.
//
//   socket → transport → framing → negotiation (c2s.ts) → ClientSession
//          → hub (core/dispatcher.ts: hooks, IQ handlers, routing) → modules → storage
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { configSchema, type Config } from './config/schema.js';
import { loadOrCreateTlsMaterial } from './config/tls.js';
import type { Logger } from './log/logger.js';
import { openStorage } from './storage/index.js';
import type { Storage } from './storage/types.js';
import type { Router } from './core/router.js';
import { StreamError } from './core/errors.js';
import { Dispatcher } from './core/dispatcher.js';
import type { AuthServices } from './core/credentials.js';
import { LocalRouter } from './router/local.js';
import { ClusterRouter } from './router/cluster.js';
import { C2SStream, type C2SContext } from './stream/c2s.js';
import { ComponentDomains, ComponentStream, type ComponentContext } from './stream/component.js';
import { TcpFraming } from './stream/framing.js';
import { TcpTransport, type TlsSettings } from './stream/transport.js';
import { ListenerRegistry, listenTcp, type Listener } from './stream/listeners.js';
import { listenHttp } from './stream/http/server.js';
import { Metrics } from './core/metrics.js';
import type { OfflineApi } from './modules/offline/api.js';
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
  /** Reads the configuration again, for reload() (SIGHUP); without it reload() only reloads the TLS files. */
  reloadConfig?: () => Config;
}

/** Sections reload() applies to the running server; changes to any other need a restart. */
const RELOADABLE = ['limits', 'offline', 'roster', 'vcard', 'push', 'tls'] as const;

export class XmppServer {
  readonly dispatcher: Dispatcher;
  readonly router: Router;
  /** Listener kinds; the server starts those the configuration asks for. */
  readonly listenerKinds = new ListenerRegistry();
  private readonly listeners: Listener[] = [];
  private components: ComponentDomains | undefined;
  private stopping = false;
  private readonly watchers: FSWatcher[] = [];
  private tlsReload: NodeJS.Timeout | undefined;
  private reloadConfig: (() => Config) | undefined;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly storage: Storage,
    private tls: TlsSettings | undefined,
    /** Token verifier, external password check, rate limiter (src/auth). */
    readonly auth: AuthServices,
    router: Router,
    private modules: RunningModules | undefined,
  ) {
    this.router = router;
    this.dispatcher = new Dispatcher({ config, log, router, accounts: storage.accounts });
    if (config.metrics.enabled) this.metrics = this.startMetrics();
    this.defineListenerKinds();
  }

  static async create(opts: ServerOptions): Promise<XmppServer> {
    const { config, log } = opts;
    let tls: TlsSettings | undefined;
    if (config.tls) {
      const material = await loadOrCreateTlsMaterial(config.tls, config.data_dir, config.hosts, log);
      tls = makeTlsSettings(material.cert, material.key);
    }
    const storage =
      opts.storage ??
      (await openStorage(config.storage, {
        onBackgroundError: (err) => log.warn({ err, event: 'storage-connection-error' }, 'a pooled database connection failed; it is replaced when needed'),
      }));
    try {
      // Reads JWT key files now: a bad key stops the start instead of failing every login.
      const auth = createAuthServices(config, storage, log);
      const router = opts.router ?? (config.cluster ? new ClusterRouter(config.cluster, log) : new LocalRouter());
      const server = new XmppServer(config, log, storage, tls, auth, router, undefined);
      server.reloadConfig = opts.reloadConfig;
      server.modules = await RunningModules.start(opts.modules ?? defaultModules(), server.dispatcher, storage);
      // After the modules: a cluster router delivers what other nodes send as soon as it joins.
      try {
        await router.start(server.dispatcher);
      } catch (err) {
        await server.modules.stop((name, e) => log.error({ err: e, module: name }, 'module failed to stop'));
        throw err;
      }
      server.watchTlsFiles();
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

  /** The port a listener of this kind listens on, 0 when there is none. */
  portOf(kind: 'c2s' | 'component' | 'http' | 'https' | 'c2s_direct_tls'): number {
    return this.listeners.find((l) => l.kind === kind)?.address.port ?? 0;
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
      if (cfg.c2s_direct_tls) this.listeners.push(await this.listenerKinds.start('c2s_direct_tls', cfg.c2s_direct_tls));
      if (cfg.http?.listen) this.listeners.push(await this.listenerKinds.start('http', cfg.http));
      if (cfg.https) this.listeners.push(await this.listenerKinds.start('https', cfg.https));
    } catch (err) {
      for (const l of this.listeners.splice(0)) await l.close();
      throw err;
    }
    this.dispatcher.http.setBaseUrl((host) => this.httpBaseUrl(host));
    this.log.info({ event: 'ready', hosts: cfg.hosts, modules: this.modules?.names }, 'server ready');
  }

  /**
   * Applies a changed configuration without a restart (SIGHUP): the limits, offline, roster,
   * vCard and push settings, and the TLS certificate (new connections get it; open ones keep theirs).
   * A configuration that does not validate changes nothing. Returns what was reloaded.
   */
  async reload(): Promise<string[]> {
    let next: Config = this.config;
    if (this.reloadConfig) {
      try {
        next = this.reloadConfig();
      } catch (err) {
        this.log.error({ event: 'reload-failed', err: err instanceof Error ? err.message : String(err) }, 'the new configuration is not valid; nothing changed');
        return [];
      }
    }
    const applied: string[] = [];
    for (const key of RELOADABLE) {
      if (key === 'tls') continue;
      if (JSON.stringify(next[key]) !== JSON.stringify(this.config[key])) {
        assignDeep(this.config[key] as Record<string, unknown>, next[key] as Record<string, unknown>);
        applied.push(key);
      }
    }
    const needRestart = (Object.keys(next) as (keyof Config)[]).filter(
      (k) => !(RELOADABLE as readonly string[]).includes(k) && JSON.stringify(next[k]) !== JSON.stringify(this.config[k]),
    );
    if (needRestart.length > 0) this.log.warn({ event: 'reload-needs-restart', keys: needRestart }, 'these changes take effect at the next start');
    if (JSON.stringify(next.tls) !== JSON.stringify(this.config.tls)) {
      if (next.tls !== undefined && this.config.tls !== undefined) this.config.tls = next.tls;
      else this.log.warn({ event: 'reload-needs-restart', keys: ['tls'] }, 'turning TLS on or off takes effect at the next start');
    }
    if (await this.reloadTls()) applied.push('tls');
    this.log.info({ event: 'reloaded', applied }, 'configuration reloaded');
    return applied;
  }

  /** Reads the certificate and key again; true when they changed. A pair that does not load changes nothing. */
  async reloadTls(): Promise<boolean> {
    if (!this.config.tls || !this.tls) return false;
    try {
      const material = await loadOrCreateTlsMaterial(this.config.tls, this.config.data_dir, this.config.hosts, this.log);
      const next = makeTlsSettings(material.cert, material.key);
      if (next.serverEndPoint.equals(this.tls.serverEndPoint)) return false;
      this.tls = next;
      this.log.info({ event: 'tls-reloaded', cert: this.config.tls.cert ?? 'self-signed' }, 'TLS certificate reloaded');
      this.watchTlsFiles();
      return true;
    } catch (err) {
      this.log.error({ event: 'tls-reload-failed', err: err instanceof Error ? err.message : String(err) }, 'the TLS certificate could not be reloaded; the old one stays');
      return false;
    }
  }

  /**
   * Watches the configured certificate and key (their directories, as renewals such as Let's
   * Encrypt's replace files or symlinks) and reloads them shortly after they change.
   */
  private watchTlsFiles(): void {
    for (const w of this.watchers.splice(0)) w.close();
    const tls = this.config.tls;
    if (!tls?.cert || !tls.key) return;
    const names = new Set([basename(tls.cert), basename(tls.key)]);
    for (const dir of new Set([dirname(tls.cert), dirname(tls.key)])) {
      try {
        const w = watch(dir, (_event, file) => {
          if (file !== null && !names.has(file.toString())) return;
          if (this.tlsReload) clearTimeout(this.tlsReload);
          // Both files of a renewal arrive one after the other: wait for the second.
          this.tlsReload = setTimeout(() => void this.reloadTls(), 500);
        });
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ event: 'tls-watch-failed', dir, err: err instanceof Error ? err.message : String(err) }, 'cannot watch the certificate; reload with SIGHUP');
      }
    }
  }

  /** RFC 6120 §4.9.3.22: modules hear 'server-stopping', every stream ends with system-shutdown; then modules stop and storage closes. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const w of this.watchers.splice(0)) w.close();
    if (this.tlsReload) clearTimeout(this.tlsReload);
    // Last words before the streams close: what modules route now is written before the stream error.
    this.dispatcher.emit('server-stopping');
    await this.dispatcher.drain();
    await Promise.all(this.listeners.map((l) => l.close()));
    this.components?.close();
    await this.dispatcher.drain();
    // A cluster node leaves once its sessions ended; what was on its way here is re-routed.
    await this.router.stop();
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
        maxPerAddress: () => this.config.limits.max_connections_per_ip,
        // RFC 6120 §4.9.3.14 policy-violation, after a header so the client can read why.
        refuse: (socket) => {
          const framing = new TcpFraming();
          const error = new StreamError('policy-violation', 'too many connections from your address');
          socket.end(framing.header({ from: this.config.hosts[0]!, id: randomBytes(16).toString('base64url'), version: '1.0', lang: 'en' }) + framing.error(error) + framing.footer());
        },
      }),
    );
    // XEP-0368: TLS from the first byte; the stream then offers SASL at once, never STARTTLS.
    this.listenerKinds.define('c2s_direct_tls', (address) =>
      listenTcp('c2s_direct_tls', address, log, (socket) => new C2SStream(c2s, new TcpTransport(socket, this.tls, true), new TcpFraming()), {
        logFields: { hosts: this.config.hosts, tls: true },
        maxPerAddress: () => this.config.limits.max_connections_per_ip,
        tls: { settings: () => this.tls!, alpn: ['xmpp-client'] },
      }),
    );
    // Over HTTP, whether the connection counts as encrypted is the HTTP layer's to say
    // (TLS, loopback, a trusted TLS proxy); STARTTLS does not exist there.
    const web: C2SContext = { ...c2s, tlsRequired: false };
    for (const kind of ['http', 'https'] as const) {
      this.listenerKinds.define(kind, (address) =>
        listenHttp({
          kind,
          address,
          log,
          tls: () => this.tls,
          secureListener: kind === 'https',
          settings: () => this.httpSettings(),
          maxStanzaBytes: () => this.config.limits.max_stanza_bytes,
          maxPerAddress: () => this.config.limits.max_connections_per_ip,
          defaultDomain: this.config.hosts[0]!,
          openStream: (transport, framing) => new C2SStream(web, transport, framing),
          metrics: () =>
            this.metrics && this.config.metrics.enabled
              ? { text: () => this.metrics!.text(), contentType: this.metrics.contentType, allowedIps: this.config.metrics.allowed_ips }
              : undefined,
          routes: (path) => this.dispatcher.http.find(path),
        }),
      );
    }
    this.listenerKinds.define('component', (address) => {
      const d = this.dispatcher;
      this.components ??= new ComponentDomains(
        {
          registerService: (domain, handler, options) => d.registerService(domain, handler, options),
          bounce: (stanza, error) => d.bounce(stanza, error),
          announce: (domain, on) => this.router.announceService(domain, on),
          forward: (domain, stanza) => {
            const node = this.router.serviceNode(domain);
            node?.route(stanza);
            return node !== undefined;
          },
        },
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

  /**
   * Where clients reach the HTTP listeners for `host` (XEP-0363 slot URLs): http.public_url when
   * set; else the https listener (by the host's name, which its certificate carries); else the
   * plain one, by its address unless it listens on every address.
   */
  private httpBaseUrl(host: string): string | undefined {
    const publicUrl = this.config.http?.public_url;
    if (publicUrl !== undefined) return publicUrl.replace(/\/+$/, '');
    const secure = this.listeners.find((l) => l.kind === 'https');
    if (secure) return `https://${host}:${secure.address.port}`;
    const plain = this.listeners.find((l) => l.kind === 'http');
    if (!plain) return undefined;
    const a = plain.address.host;
    const name = a === '0.0.0.0' || a === '::' ? host : a.includes(':') ? `[${a}]` : a;
    return `http://${name}:${plain.address.port}`;
  }

  /** The http section's settings, its defaults when only https is configured. */
  private httpSettings(): NonNullable<Config['http']> {
    this.defaultHttp ??= configSchema.parse({ http: {} }).http!;
    return this.config.http ?? this.defaultHttp;
  }

  private defaultHttp: NonNullable<Config['http']> | undefined;

  /** The operator's numbers (/metrics on the HTTP listeners), unless metrics.enabled is false. */
  readonly metrics: Metrics | undefined;

  private startMetrics(): Metrics {
    const metrics = new Metrics({ eventLoopResolutionMs: this.config.metrics.event_loop_resolution_ms });
    const transportOf: Record<string, string> = { c2s: 'tcp', c2s_direct_tls: 'direct_tls', component: 'component' };
    metrics.setSources({
      connections: () => {
        const counts: Record<string, number> = { tcp: 0, direct_tls: 0, websocket: 0, bosh: 0, component: 0 };
        for (const l of this.listeners) {
          const by = l.byTransport?.() ?? { [transportOf[l.kind] ?? l.kind]: l.connections };
          for (const [t, n] of Object.entries(by)) counts[t] = (counts[t] ?? 0) + n;
        }
        return counts;
      },
      sessions: () => this.router.size,
      offline: async () => {
        const offline = this.modules?.api('offline') as OfflineApi | undefined;
        return offline?.totals();
      },
    });
    // Every stanza written to a client's connection.
    this.dispatcher.observeWritten((_session, stanza) => metrics.stanzaOut(stanza.name));
    return metrics;
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
      preBindHandler: (xmlns) => d.preBindHandler(xmlns),
      accountShapers: new AccountShapers(() => cfg.limits.rate.account),
      handleStanza: this.metrics
        ? async (session, stanza) => {
            const metrics = this.metrics!;
            const start = process.hrtime.bigint();
            metrics.stanzaIn(stanza.name);
            await d.handleStanza(session, stanza);
            metrics.handled(stanza.name, start);
          }
        : (session, stanza) => d.handleStanza(session, stanza),
      sessionBound: (session) => d.sessionBound(session),
      countLogin: this.metrics ? (mechanism, ok) => this.metrics!.login(mechanism, ok) : undefined,
    };
  }
}

/** Copies `source` into `target`, recursing into plain objects, so that holders of `target`'s sub-objects see the change. */
function assignDeep(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(source)) {
    const t = target[k];
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && t !== null && typeof t === 'object' && !Array.isArray(t)) {
      assignDeep(t as Record<string, unknown>, v as Record<string, unknown>);
    } else target[k] = v;
  }
}

function makeTlsSettings(cert: string, key: string): TlsSettings {
  // Modern TLS only (TLS 1.2+); Node's default cipher list is already AEAD-first.
  const context = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  const x509 = new X509Certificate(cert);
  // RFC 5929 §4.1: hash the certificate with its signature's hash, SHA-256 when that is MD5/SHA-1.
  const hash = certificateSignatureHash(x509.raw);
  const serverEndPoint = createHash(hash).update(x509.raw).digest();
  return { context, serverEndPoint, pem: { cert, key } };
}
