// The room scenario of bench:compare (issue 12): N occupants in one MUC room
// (XEP-0045), each sending messages in a closed loop (its next message once the
// room has reflected its previous one to it, §7.4), every message fanned out to
// all N-1 others. Counts every delivery per (receiver, message), so a lost or
// duplicated delivery shows; measures end-to-end latency of every delivery and
// the server's CPU over the message phase.
import tls from 'node:tls';
import { LoadClient, type ClientSettings } from '../load/client.js';
import { percentiles, sleep, until, type Percentiles } from '../load/run.js';
import { sampleProcess } from '../load/proc.js';
import type { ScramCache } from '../load/scram.js';
import { child, type XmlElement } from '../load/xml.js';

const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';

export interface RoomOptions {
  host: string;
  port: number;
  domain: string;
  /** The MUC service (conference.<domain> on all three servers). */
  service: string;
  users: string;
  passwordPattern: string;
  occupants: number;
  /** Messages each occupant sends. */
  messagesPerOccupant: number;
  concurrency: number;
  cache: ScramCache;
  serverPid?: number;
  stepTimeoutMs?: number;
  /** Bound on the message phase (no progress for this long ends it). */
  stallTimeoutMs?: number;
}

export interface RoomReport {
  occupants: number;
  joined: number;
  loginFailures: string[];
  joinFailures: string[];
  messagesSent: number;
  /** Deliveries to the other occupants (fan-out), excluding the reflection to the sender. */
  deliveries: number;
  expectedDeliveries: number;
  /** (receiver, message) pairs that never arrived, and arrivals beyond the first. */
  missing: number;
  duplicates: number;
  /** Reflections to the sender (XEP-0045 §7.4) that never arrived. */
  missingReflections: number;
  elapsedMs: number;
  deliveriesPerSecond: number;
  latencyMs: Percentiles;
  server?: { cpuS: number; cpuPer100kDeliveries: number };
}

const fill = (pattern: string, i: number): string => pattern.replace(/%d/g, String(i));

export async function runRoom(o: RoomOptions): Promise<RoomReport> {
  const n = o.occupants;
  const m = o.messagesPerOccupant;
  const room = `bench@${o.service}`;
  const secureContext = tls.createSecureContext({});
  const total = n * m;
  // seen[r][msg]: receiver r got message msg (msg = sender * m + seq). Bounded: n * n * m bytes.
  const seen = Array.from({ length: n }, () => new Uint8Array(total));
  let deliveries = 0;
  let duplicates = 0;
  let lastProgress: number;
  const latencies = new Float64Array(total * Math.max(0, n - 1));
  let lat = 0;
  const reflected = new Uint8Array(total);
  let reflections = 0;
  const nextSend: (() => void)[] = new Array(n);
  const selfPresence: ((el: XmlElement) => void)[] = new Array(n);
  const clients: LoadClient[] = [];
  for (let i = 0; i < n; i++) {
    const settings: ClientSettings = {
      host: o.host,
      port: o.port,
      domain: o.domain,
      user: fill(o.users, i + 1),
      password: fill(o.passwordPattern, i + 1),
      cache: o.cache,
      secureContext,
      verify: false,
      stepTimeoutMs: o.stepTimeoutMs ?? 30_000,
    };
    clients.push(
      new LoadClient(settings, {
        message: (_c, el) => {
          if (el.attrs.type !== 'groupchat') return;
          const body = child(el, 'body')?.text;
          if (!body || !body.startsWith('rb ')) return;
          const [, s, q, t] = body.split(' ');
          const sender = Number(s);
          const msg = sender * m + Number(q);
          if (!(msg >= 0 && msg < total)) return;
          lastProgress = performance.now();
          if (sender === i) {
            if (reflected[msg] === 0) {
              reflected[msg] = 1;
              reflections++;
              nextSend[i]?.();
            }
            return;
          }
          if (seen[i]![msg] === 1) {
            duplicates++;
            return;
          }
          seen[i]![msg] = 1;
          deliveries++;
          latencies[lat++] = performance.now() - Number(t);
        },
        presence: (_c, el) => {
          const x = el.children.find((c) => c.name === 'x' && c.attrs.xmlns === MUC_USER);
          if (el.attrs.from?.startsWith(`${room}/`) && x?.children.some((c) => c.name === 'status' && c.attrs.code === '110')) selfPresence[i]?.(el);
          else if (el.attrs.from?.startsWith(`${room}/`) && el.attrs.type === 'error') selfPresence[i]?.(el);
        },
      }),
    );
  }

  // --- Login, c at a time ---
  const loginFailures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, n) }, async () => {
      while (next < n) {
        const c = clients[next++]!;
        try {
          await c.login();
        } catch (err) {
          loginFailures.push(`${c.settings.user}: ${(err as Error).message}`);
        }
      }
    }),
  );

  // --- Join (XEP-0045 §7.2): the first occupant creates the room (an instant room, §10.1.2), then the rest, c at a time ---
  const joinFailures: string[] = [];
  const join = (i: number): Promise<XmlElement> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no self-presence within the step timeout')), o.stepTimeoutMs ?? 30_000);
      selfPresence[i] = (el) => {
        clearTimeout(timer);
        selfPresence[i] = () => undefined;
        if (el.attrs.type === 'error') reject(new Error(`join refused: ${el.children.find((c) => c.name === 'error')?.children[0]?.name ?? '?'}`));
        else resolve(el);
      };
      // No history on entry: only this run's messages are counted.
      clients[i]!.send(`<presence to='${room}/o${i + 1}'><x xmlns='${MUC}'><history maxstanzas='0'/></x></presence>`);
    });
  const joined = new Uint8Array(n);
  if (clients[0]!.online) {
    try {
      const self = await join(0);
      const x = self.children.find((c) => c.name === 'x' && c.attrs.xmlns === MUC_USER);
      if (x?.children.some((c) => c.name === 'status' && c.attrs.code === '201')) {
        // §10.1.2: a new room stays locked until the owner accepts the default configuration.
        const r = await clients[0]!.request(`<iq type='set' id='%ID%' to='${room}'><query xmlns='${MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
        if (r.attrs.type !== 'result') throw new Error('the instant room configuration was refused');
      }
      joined[0] = 1;
    } catch (err) {
      joinFailures.push(`o1: ${(err as Error).message}`);
    }
  }
  if (joined[0]) {
    next = 1;
    await Promise.all(
      Array.from({ length: Math.min(o.concurrency, n) }, async () => {
        while (next < n) {
          const i = next++;
          if (!clients[i]!.online) continue;
          try {
            await join(i);
            joined[i] = 1;
          } catch (err) {
            joinFailures.push(`o${i + 1}: ${(err as Error).message}`);
          }
        }
      }),
    );
  }
  const inRoom = joined.reduce((a, b) => a + b, 0);
  // Every join's presence broadcast handled before the clock starts: a ping from each occupant.
  await Promise.all(clients.map((c, i) => (joined[i] ? c.ping(o.stepTimeoutMs ?? 30_000) : Promise.resolve(false))));

  // --- Messages: every occupant in a closed loop (one in flight), all at once ---
  const cpu0 = o.serverPid ? sampleProcess(o.serverPid).cpuSeconds : 0;
  const t0 = performance.now();
  let sent = 0;
  lastProgress = t0;
  const sentBy = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (!joined[i]) continue;
    nextSend[i] = () => {
      const q = sentBy[i]!;
      if (q >= m) return;
      sentBy[i] = q + 1;
      sent++;
      clients[i]!.send(`<message to='${room}' type='groupchat'><body>rb ${i} ${q} ${performance.now().toFixed(3)}</body></message>`);
    };
    nextSend[i]!();
  }
  const expectedDeliveries = inRoom * m * (inRoom - 1);
  const stall = o.stallTimeoutMs ?? 30_000;
  while (deliveries < expectedDeliveries || reflections < inRoom * m) {
    if (performance.now() - lastProgress > stall) break;
    await sleep(20);
  }
  const elapsedMs = performance.now() - t0;
  const cpu1 = o.serverPid ? sampleProcess(o.serverPid).cpuSeconds : 0;
  let missingReflections = 0;
  for (let i = 0; i < n; i++) if (joined[i]) for (let q = 0; q < m; q++) if (!reflected[i * m + q]) missingReflections++;

  await Promise.all(clients.map((c) => (c.online ? c.close(5000).catch(() => c.destroy()) : Promise.resolve(c.destroy()))));
  await until(() => clients.every((c) => c.closed), 5000);
  const cpuS = cpu1 - cpu0;
  return {
    occupants: n,
    joined: inRoom,
    loginFailures: loginFailures.slice(0, 20),
    joinFailures: joinFailures.slice(0, 20),
    messagesSent: sent,
    deliveries,
    expectedDeliveries,
    missing: expectedDeliveries - deliveries,
    duplicates,
    missingReflections,
    elapsedMs,
    deliveriesPerSecond: elapsedMs > 0 ? (deliveries / elapsedMs) * 1000 : 0,
    latencyMs: percentiles(latencies.subarray(0, lat)),
    server: o.serverPid ? { cpuS, cpuPer100kDeliveries: deliveries > 0 ? (cpuS / deliveries) * 100_000 : 0 } : undefined,
  };
}
