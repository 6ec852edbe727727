// What bench/soak's runner and its server child (bench/soak/server.ts) say to each
// other over the IPC channel: periodic samples from inside the server process,
// and requests answered by id.

/** One interval of the server process, measured from inside it. */
export interface ServerSample {
  /** Wall clock (Date.now()) when taken. */
  at: number;
  /** process.memoryUsage(), bytes. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** heapUsed right after the last major (mark-sweep-compact) GC of the interval: the live heap, without garbage. */
  heapAfterMajorGc?: number;
  /** Event-loop delay in the interval (perf_hooks.monitorEventLoopDelay), ms. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** CPU time (user + system, all threads) in the interval, % of one core. */
  cpuPercent: number;
  /** Client connections held. */
  connections: number;
  /** A forced GC (a 'gc' request) ran in the interval: its pause is in the lag figures. */
  forcedGc: boolean;
  /**
   * Only in forced-GC samples, bytes: where the resident memory is. `rssAnon` and `rssFile`
   * from /proc/self/status (anonymous memory: V8's heap, malloc (OpenSSL, sockets, SQLite's
   * cache); file-backed: the node binary, libraries); `spaces` is V8's committed size per heap
   * space (v8.getHeapSpaceStatistics), which heapTotal adds up.
   */
  breakdown?: { rssAnon: number; rssFile: number; spaces: Record<string, number> };
}

export type SoakCommand = { cmd: 'gc' } | { cmd: 'snapshot'; file: string } | { cmd: 'offline-count'; users: string[] } | { cmd: 'stop' };
export type SoakRequest = SoakCommand & { id: number };

export type SoakReply =
  | { kind: 'ready'; port: number }
  | { kind: 'sample'; sample: ServerSample }
  | { kind: 'gc'; id: number; sample: ServerSample; gcMs: number }
  | { kind: 'snapshot'; id: number; file: string }
  | { kind: 'offline-count'; id: number; stored: number }
  | { kind: 'stopped'; id: number }
  | { kind: 'error'; id: number; message: string };
