// What bench/memory/run.ts and its child bench/memory/server.ts share: the one
// credential every account has, and the IPC messages.
export const SALT = Buffer.from('shoal-memory-bench-salt', 'ascii');
export const ITERATIONS = 4096;
export const PASSWORD = 'pw';
/** floor-login: what the server answers to each request of a login's round trips. */
export const ANSWER_BYTES = 900;

export type Request = { cmd: 'measure' } | { cmd: 'snapshot'; file: string } | { cmd: 'stop' };
export interface Measurement {
  rss: number;
  /** RSS after malloc_trim (= rss when not asked for). */
  rssTrimmed: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  connections: number;
  /** CPU time of the process so far, user + system, in microseconds (taken before the GCs of the measurement). */
  cpuMicros: number;
}
export type Reply = { kind: 'ready'; port: number } | { kind: 'measured'; m: Measurement } | { kind: 'snapshot'; file: string } | { kind: 'error'; message: string };
