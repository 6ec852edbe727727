// The numbers an operator watches, in the Prometheus text format (prom-client):
// connections by transport, sessions, logins and failures by mechanism, stanzas
// in and out by kind, how long a stanza takes to be handled, offline storage,
// and the process (event-loop lag, memory, CPU). One registry per server, so
// servers in one process (tests) do not mix their numbers.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the gauges read when scraped; the server fills these in. */
export interface MetricsSources {
  /** Open connections (streams) by transport: tcp, direct_tls, websocket, bosh, component. */
  connections(): Record<string, number>;
  /** Bound client sessions. */
  sessions(): number;
  /** Messages and bytes in offline storage, all accounts together (undefined: no offline module). */
  offline(): Promise<{ messages: number; bytes: number } | undefined>;
}

/** See metrics.event_loop_resolution_ms. */
export const DEFAULT_EVENT_LOOP_RESOLUTION_MS = 100;

export class Metrics {
  readonly registry = new Registry();
  private readonly logins: Counter<'mechanism'>;
  private readonly loginFailures: Counter<'mechanism'>;
  private readonly stanzas: Counter<'direction' | 'kind'>;
  private readonly latency: Histogram<'kind'>;
  private sources: MetricsSources | undefined;

  /** `eventLoopResolutionMs`: how often the event-loop delay is sampled (metrics.event_loop_resolution_ms). */
  constructor(options: { eventLoopResolutionMs?: number } = {}) {
    const registers = [this.registry];
    // Event-loop lag, heap and RSS, CPU, handles: prom-client's process metrics. The lag comes
    // from a timer that fires every eventLoopMonitoringPrecision ms for as long as the process
    // runs (perf_hooks.monitorEventLoopDelay), so its period is what an idle server wakes up for.
    collectDefaultMetrics({ register: this.registry, prefix: 'shoal_', eventLoopMonitoringPrecision: options.eventLoopResolutionMs ?? DEFAULT_EVENT_LOOP_RESOLUTION_MS });
    this.logins = new Counter({ name: 'shoal_logins_total', help: 'Successful SASL authentications, by mechanism', labelNames: ['mechanism'], registers });
    this.loginFailures = new Counter({ name: 'shoal_login_failures_total', help: 'Failed SASL authentications, by mechanism', labelNames: ['mechanism'], registers });
    this.stanzas = new Counter({ name: 'shoal_stanzas_total', help: 'Stanzas from clients (in) and to clients (out), by kind', labelNames: ['direction', 'kind'], registers });
    this.latency = new Histogram({
      name: 'shoal_stanza_processing_seconds',
      help: 'Time from a client stanza being read to it being handled (routed, stored or answered)',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    // The gauges' collect() has the gauge as `this`; the sources are reached through this arrow.
    const sources = (): MetricsSources | undefined => this.sources;
    new Gauge({
      name: 'shoal_connections',
      help: 'Open client and component connections, by transport',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        for (const [transport, n] of Object.entries(sources()?.connections() ?? {})) this.set({ transport }, n);
      },
    });
    new Gauge({
      name: 'shoal_sessions',
      help: 'Bound client sessions (resumable ones included)',
      registers,
      collect() {
        this.set(sources()?.sessions() ?? 0);
      },
    });
    new Gauge({
      name: 'shoal_offline_messages',
      help: 'Messages in offline storage',
      registers,
      async collect() {
        const o = await sources()?.offline();
        if (o !== undefined) this.set(o.messages);
      },
    });
    new Gauge({
      name: 'shoal_offline_bytes',
      help: 'Bytes of messages in offline storage',
      registers,
      async collect() {
        const o = await sources()?.offline();
        if (o !== undefined) this.set(o.bytes);
      },
    });
  }

  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  login(mechanism: string, ok: boolean): void {
    (ok ? this.logins : this.loginFailures).inc({ mechanism });
  }

  stanzaIn(kind: string): void {
    this.stanzas.inc({ direction: 'in', kind });
  }

  stanzaOut(kind: string): void {
    this.stanzas.inc({ direction: 'out', kind });
  }

  /** Seconds since `startNs` (process.hrtime.bigint()) for a stanza of this kind. */
  handled(kind: string, startNs: bigint): void {
    this.latency.observe({ kind }, Number(process.hrtime.bigint() - startNs) / 1e9);
  }

  /** The text exposition format (version 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
