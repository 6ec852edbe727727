// The server under soak: a real XmppServer in its own process (started by
// bench/soak/soak.ts with `node --expose-gc --import tsx`), so that the memory,
// CPU and event-loop lag it reports are the server's alone. Every interval it
// sends a ServerSample to the parent over IPC; on request it forces a GC and
// samples at once, writes a heap snapshot, counts stored offline messages, or stops.
//
//   argv: <shoal.yaml> <sample interval ms>
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { loadConfig } from '../../src/config/load.js';
import { XmppServer } from '../../src/server.js';
import { createLogger } from '../../src/log/logger.js';
import type { OfflineApi } from '../../src/modules/offline/api.js';
import type { ServerSample, SoakReply, SoakRequest } from './protocol.js';

const [configFile, intervalArg] = process.argv.slice(2);
if (!configFile) throw new Error('usage: server.ts <shoal.yaml> <sample interval ms>');
const intervalMs = Number(intervalArg ?? '2000');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const config = loadConfig({ file: configFile });
// As in production: pino at the configured level, as JSON on stderr (the parent keeps it in a file).
const server = await XmppServer.create({ config, log: createLogger({ level: config.log.level, format: 'json', destination: 2 }) });
await server.listen();

const send = (r: SoakReply): void => void process.send!(r);

// The delay histogram and CPU counter are reset at every periodic sample: each sample covers one interval.
// The histogram records the time between the ticks of a RESOLUTION_MS timer, the period
// included: lag is what exceeds it.
const RESOLUTION_MS = 10;
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
delay.enable();
let cpuMark = process.cpuUsage();
let cpuAt = performance.now();
let afterMajorGc: number | undefined;
let forcedGc = false;
// The heap right after a major GC is the live heap: a leak shows as a rising floor there even
// while heapUsed saws up and down with garbage.
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (((e as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) afterMajorGc = process.memoryUsage().heapUsed;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });

function sample(reset: boolean): ServerSample {
  const m = process.memoryUsage();
  const now = performance.now();
  const cpu = process.cpuUsage(cpuMark);
  const ms = (ns: number): number => (Number.isFinite(ns) && ns > 0 ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : 0);
  const s: ServerSample = {
    at: Date.now(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    heapAfterMajorGc: afterMajorGc,
    lagP50Ms: ms(delay.percentile(50)),
    lagP99Ms: ms(delay.percentile(99)),
    lagMaxMs: ms(delay.max),
    cpuPercent: ((cpu.user + cpu.system) / 1000 / Math.max(1, now - cpuAt)) * 100,
    connections: server.connectionCount,
    forcedGc,
  };
  if (reset) {
    delay.reset();
    cpuMark = process.cpuUsage();
    cpuAt = now;
    afterMajorGc = undefined;
    forcedGc = false;
  }
  return s;
}

/** Where the resident memory is (see ServerSample.breakdown). */
function breakdown(): NonNullable<ServerSample['breakdown']> {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  const spaces: Record<string, number> = {};
  for (const sp of getHeapSpaceStatistics()) spaces[sp.space_name] = sp.space_size;
  return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile'), spaces };
}

const timer = setInterval(() => send({ kind: 'sample', sample: sample(true) }), intervalMs);

async function handle(req: SoakRequest): Promise<void> {
  switch (req.cmd) {
    case 'gc': {
      const t0 = performance.now();
      // Several passes: weak references, finalizers and the old generation settle over more than one.
      for (let i = 0; i < 4; i++) gc!();
      const gcMs = performance.now() - t0;
      forcedGc = true;
      // Not a reset: the periodic sample still covers its whole interval.
      const s = sample(false);
      send({ kind: 'gc', id: req.id, sample: { ...s, heapAfterMajorGc: s.heapUsed, forcedGc: true, breakdown: breakdown() }, gcMs });
      return;
    }
    case 'snapshot':
      // Right after a forced GC (the runner asks for one first): what is in it is live.
      send({ kind: 'snapshot', id: req.id, file: writeHeapSnapshot(req.file) });
      return;
    case 'offline-count': {
      const offline = server.module<OfflineApi>('offline');
      let stored = 0;
      for (const u of req.users) stored += await offline.count(config.hosts[0]!, u);
      send({ kind: 'offline-count', id: req.id, stored });
      return;
    }
    case 'stop':
      clearInterval(timer);
      gcObserver.disconnect();
      await server.stop();
      send({ kind: 'stopped', id: req.id });
      process.disconnect();
      return;
  }
}

process.on('message', (req: SoakRequest) => {
  handle(req).catch((err: unknown) => send({ kind: 'error', id: req.id, message: (err as Error).stack ?? String(err) }));
});
// The parent is gone (ended or killed): do not linger with 10,000 sockets.
process.on('disconnect', () => process.exit(0));

send({ kind: 'ready', port: server.port });
