// The room (issue 12: N occupants in one MUC room) and ws (issue 13: login and
// chat over RFC 7395 WebSocket) scenarios of bench:compare: run after the TCP
// scenarios, each server in turn, a fresh server process each time, the
// generator (room-ws-cli.ts) pinned apart from the server; their own table in
// RESULTS.md.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { sampleProcess } from '../load/proc.js';
import type { RoomReport } from './room.js';
import { children, repoRoot, wrap, type Launch, type ServerKind } from './servers.js';
import type { WsReport } from './ws.js';

export const EXTRA_SCENARIOS = ['room', 'ws'] as const;
export type ExtraName = (typeof EXTRA_SCENARIOS)[number];

export interface ExtraPlan {
  name: ExtraName;
  clients: number;
  /** room: messages per occupant; ws: messages in all. */
  messages: number;
  /** ws: other accounts logged in and out first, unmeasured (as in the login scenario). */
  warmup?: number;
}

export interface ExtraResults {
  plans: ExtraPlan[];
  servers: Partial<Record<ServerKind['key'], { name: string; room?: RoomReport; ws?: WsReport; serverCpuS: Partial<Record<ExtraName, number>> }>>;
  errors: Record<string, string>;
}

/** The plans for the scenarios asked for (all when `only` is undefined), scaled like the others. */
export function extraPlans(v: Record<string, string | boolean | undefined>, only: string[] | undefined, scale: number): ExtraPlan[] {
  const n = (key: string, def: number): number => Math.max(1, Math.round(Number(v[key] ?? def) * (v[key] === undefined ? scale : 1)));
  const wsClients = Math.max(2, n('ws-clients', 1000));
  const plans: ExtraPlan[] = [
    // 200 occupants each sending 20 messages: 4,000 messages, 796,000 deliveries to others.
    { name: 'room', clients: Math.max(2, n('room-occupants', 200)), messages: Math.max(1, Number(v['room-messages'] ?? 20)) },
    // As in the login scenario, as many other accounts in and out first (0 for a cold server).
    { name: 'ws', clients: wsClients, messages: n('ws-messages', 20000), warmup: v['ws-warmup'] === undefined ? wsClients : Math.max(0, Math.round(Number(v['ws-warmup'])) || 0) },
  ];
  return plans.filter((p) => !only || only.includes(p.name));
}

function runGenerator(args: string[], launch: Launch, timeoutMs: number, log: (l: string) => void): Promise<unknown> {
  const [cmd, argv] = wrap(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'compare', 'room-ws-cli.ts'), ...args], launch);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim()) log(`  ${line.trim()}`);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`generator ended (${code ?? signal}) without a report: ${err.split('\n').slice(-5).join(' | ')}`));
      }
    });
  });
}

export async function runExtras(opts: {
  plans: ExtraPlan[];
  kinds: ServerKind[];
  ports: Map<ServerKind, { c2s: number; http: number }>;
  serverLaunch: Launch;
  genLaunch: Launch;
  cacheFile: string;
  log: (line: string) => void;
}): Promise<ExtraResults> {
  const res: ExtraResults = { plans: opts.plans, servers: {}, errors: {} };
  for (const kind of opts.kinds) res.servers[kind.key] = { name: kind.name, serverCpuS: {} };
  for (const plan of opts.plans) {
    for (const kind of opts.kinds) {
      const p = opts.ports.get(kind)!;
      let server;
      try {
        server = await kind.start({ ...opts.serverLaunch });
        opts.log(`${kind.name} / ${plan.name}: server pid ${server.pid}`);
        const cpu0 = sampleProcess(server.pid).cpuSeconds;
        const report = await runGenerator(
          ['--scenario', plan.name, '--port', String(p.c2s), '--http-port', String(p.http), '--server-pid', String(server.pid), '--scram-cache', opts.cacheFile, '--clients', String(plan.clients), '--messages', String(plan.messages), '--warmup', String(plan.warmup ?? 0)],
          opts.genLaunch,
          600_000,
          opts.log,
        );
        const s = res.servers[kind.key]!;
        s.serverCpuS[plan.name] = Number((sampleProcess(server.pid).cpuSeconds - cpu0).toFixed(3));
        if (plan.name === 'room') {
          const r = (s.room = report as RoomReport);
          opts.log(
            `${kind.name} / room: ${r.joined}/${r.occupants} joined, ${r.deliveries}/${r.expectedDeliveries} deliveries (missing ${r.missing}, duplicated ${r.duplicates}, reflections missing ${r.missingReflections}), ${r.deliveriesPerSecond.toFixed(0)}/s, p99 ${r.latencyMs.p99.toFixed(1)} ms, ${r.server?.cpuPer100kDeliveries.toFixed(2) ?? '?'} CPU s / 100k deliveries`,
          );
          const bad = [...r.loginFailures, ...r.joinFailures];
          if (r.joined === 0) res.errors[`${kind.key}/room`] = `nobody joined the room: ${bad.slice(0, 3).join('; ')}`;
        } else {
          const r = (s.ws = report as WsReport);
          opts.log(
            `${kind.name} / ws: ${r.warmup ? `warm-up ${r.warmup.succeeded} (${r.warmup.perSecond.toFixed(0)}/s, ${r.warmup.cpuPer1000Logins?.toFixed(2) ?? '?'} CPU s / 1000), then ` : ''}${r.login.succeeded}/${r.clients} logged in (${r.login.perSecond.toFixed(0)}/s, ${r.login.cpuPer1000Logins?.toFixed(2) ?? '?'} CPU s / 1000), ${r.messages.received}/${r.messages.sent} messages, ${r.messages.perSecond.toFixed(0)}/s, p99 ${r.messages.latencyMs.p99.toFixed(1)} ms`,
          );
          if (r.login.succeeded === 0) res.errors[`${kind.key}/ws`] = `no WebSocket login succeeded: ${JSON.stringify(r.login.failures)}`;
        }
      } catch (err) {
        res.errors[`${kind.key}/${plan.name}`] = (err as Error).message;
        opts.log(`${kind.name} / ${plan.name}: FAILED: ${(err as Error).message}`);
      } finally {
        await server?.stop();
      }
    }
  }
  return res;
}

const f = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

/** Markdown: one table per scenario, a row per figure, a column per server; correctness counts flagged when not 0. */
export function extrasMarkdown(res: ExtraResults): string {
  const servers = Object.values(res.servers);
  const head = `| figure | ${servers.map((s) => s.name).join(' | ')} |\n|---|${servers.map(() => '---:').join('|')}|`;
  const row = (label: string, cell: (s: (typeof servers)[number]) => string): string => `| ${label} | ${servers.map(cell).join(' | ')} |`;
  const check = (v: number | undefined): string => (v === undefined ? '—' : v === 0 ? '0' : `**${v}** ⚠`);
  const out: string[] = [];
  const room = res.plans.find((p) => p.name === 'room');
  if (room) {
    const r = (s: (typeof servers)[number]): RoomReport | undefined => s.room;
    out.push(
      `### Room (XEP-0045): ${room.clients} occupants in one room, ${room.messages} messages each`,
      '',
      `Each occupant logs in over TCP (STARTTLS, SCRAM-SHA-1), joins \`bench@conference.localhost\` (no history; the first creates it as an instant room), then all send at once, each with one message in flight (the next once the room has reflected the previous one back to it). A delivery is one message reaching one of the other ${room.clients - 1} occupants; latency is send to receipt, per delivery; CPU is the server's over the message phase.`,
      '',
      head,
      row('occupants joined', (s) => f(r(s)?.joined, 0)),
      row('deliveries/s (fan-out included)', (s) => f(r(s)?.deliveriesPerSecond, 0)),
      row('messages sent/s', (s) => f(r(s) ? (r(s)!.messagesSent / r(s)!.elapsedMs) * 1000 : undefined, 0)),
      row('delivery latency p50 (ms)', (s) => f(r(s)?.latencyMs.p50, 1)),
      row('delivery latency p99 (ms)', (s) => f(r(s)?.latencyMs.p99, 1)),
      row('server CPU s per 100,000 deliveries', (s) => f(r(s)?.server?.cpuPer100kDeliveries, 2)),
      row('deliveries (expected)', (s) => (r(s) ? `${f(r(s)!.deliveries, 0)} (${f(r(s)!.expectedDeliveries, 0)})` : '—')),
      row('deliveries missing (must be 0)', (s) => check(r(s)?.missing)),
      row('deliveries duplicated (must be 0)', (s) => check(r(s)?.duplicates)),
      row('reflections to the sender missing (must be 0)', (s) => check(r(s)?.missingReflections)),
      row('login or join failures (must be 0)', (s) => check(r(s) ? r(s)!.occupants - r(s)!.joined : undefined)),
      '',
    );
  }
  const ws = res.plans.find((p) => p.name === 'ws');
  if (ws) {
    const r = (s: (typeof servers)[number]): WsReport | undefined => s.ws;
    const warm = ws.warmup ?? 0;
    out.push(
      `### WebSocket (RFC 7395): ${ws.clients} logins${warm > 0 ? ` after ${warm} others in and out` : ''}, then ${ws.messages} chat messages between pairs`,
      '',
      "The seed's login over `ws://127.0.0.1:<http port>/xmpp-websocket` (subprotocol `xmpp`, one element per WebSocket message): `<open/>`, SCRAM-SHA-1, `<open/>` again, bind, roster get, initial presence, a ping; 200 at a time. Then clients (1,2), (3,4), ... exchange chat messages, each sender one in flight. Plain ws:// on loopback, which each server is told to treat as encrypted (Prosody `consider_websocket_secure`; Shoal and ejabberd do so for loopback / by default)." +
        (warm > 0 ? ` As in the login scenario, ${warm} other accounts log in and out first, unmeasured, and the server is let settle (below 5% of a core): their figures are the "first after start" rows (\`--ws-warmup 0\` measures a cold server instead).` : ''),
      '',
      head,
      row(warm > 0 ? 'logins/s, after the warm-up' : 'logins/s', (s) => f(r(s)?.login.perSecond, 0)),
      ...(warm > 0 ? [row(`logins/s, the ${warm} first after start (warm-up)`, (s) => f(r(s)?.warmup?.perSecond, 0))] : []),
      row('login latency p50 (ms)', (s) => f(r(s)?.login.latencyMs.p50, 1)),
      row('login latency p99 (ms)', (s) => f(r(s)?.login.latencyMs.p99, 1)),
      row(warm > 0 ? 'server CPU s per 1,000 logins, after the warm-up' : 'server CPU s per 1,000 logins', (s) => f(r(s)?.login.cpuPer1000Logins, 2)),
      ...(warm > 0 ? [row('server CPU s per 1,000 logins, first logins after start (warm-up)', (s) => f(r(s)?.warmup?.cpuPer1000Logins, 2))] : []),
      row('messages/s', (s) => f(r(s)?.messages.perSecond, 0)),
      row('message latency p50 (ms)', (s) => f(r(s)?.messages.latencyMs.p50, 1)),
      row('message latency p99 (ms)', (s) => f(r(s)?.messages.latencyMs.p99, 1)),
      row('server CPU s per 100,000 messages', (s) => f(r(s)?.messages.cpuPer100kMessages, 2)),
      row('failed logins (must be 0)', (s) => check(r(s)?.login.failed)),
      ...(warm > 0 ? [row('failed warm-up logins (must be 0)', (s) => check(r(s)?.warmup?.failed))] : []),
      row('messages lost (must be 0)', (s) => check(r(s)?.messages.lost)),
      '',
    );
  }
  if (Object.keys(res.errors).length > 0) out.push('Errors:', '', ...Object.entries(res.errors).map(([k, e]) => `- ${k}: ${e.split('\n')[0]}`), '');
  return out.join('\n');
}

/** Correctness counts that are not 0, as lines for the log. */
export function extraFailedChecks(res: ExtraResults): string[] {
  const out: string[] = [];
  for (const s of Object.values(res.servers)) {
    if (s.room) {
      const r = s.room;
      if (r.missing) out.push(`${s.name} room: ${r.missing} deliveries missing`);
      if (r.duplicates) out.push(`${s.name} room: ${r.duplicates} deliveries duplicated`);
      if (r.missingReflections) out.push(`${s.name} room: ${r.missingReflections} reflections missing`);
      if (r.joined < r.occupants) out.push(`${s.name} room: ${r.occupants - r.joined} occupants not joined (${[...r.loginFailures, ...r.joinFailures].slice(0, 2).join('; ')})`);
    }
    if (s.ws) {
      if (s.ws.login.failed) out.push(`${s.name} ws: ${s.ws.login.failed} failed logins (${Object.keys(s.ws.login.failures).slice(0, 2).join('; ')})`);
      if (s.ws.warmup?.failed) out.push(`${s.name} ws: ${s.ws.warmup.failed} failed warm-up logins (${Object.keys(s.ws.warmup.failures).slice(0, 2).join('; ')})`);
      if (s.ws.messages.lost) out.push(`${s.name} ws: ${s.ws.messages.lost} messages lost`);
    }
  }
  return out;
}
