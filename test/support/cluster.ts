// Starts a cluster of Shoal nodes as separate processes (`shoal start`, as an
// operator runs them) on loopback, sharing the machine's PostgreSQL (a schema
// of the run's own in the database test) and Redis (a database index and a key namespace of the run's
// own), so that runs never see each other.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { stringify } from 'yaml';
import { Redis } from 'ioredis';
import { spawnShoal } from './cli.js';
import { reserveTestSchema, type TestSchema } from '../../src/storage/sql/testutil.js';
import { openPostgresStorage } from '../../src/storage/postgres.js';
import { deriveAllScramCredentials } from '../../src/sasl/credentials.js';

export interface LogLine {
  event?: string;
  msg?: string;
  [k: string]: unknown;
}

export interface ClusterNode {
  readonly name: string;
  /** The c2s port of its current process. */
  port: number;
  /** Its process (a new one after restart()). */
  proc: ChildProcessWithoutNullStreams;
  /** Every JSON log line the current process wrote. */
  readonly logs: LogLine[];
  /** Resolves with the first log line (now or later) that matches. */
  waitLog(match: (l: LogLine) => boolean, ms?: number, what?: string): Promise<LogLine>;
  /** SIGKILL: the node dies without a word. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM: a graceful stop. Resolves with the exit code. */
  terminate(): Promise<number | null>;
  /** Starts the node's process again (same name, same configuration). */
  restart(): Promise<void>;
  /** SIGSTOP and SIGCONT: the node stops answering (as in a network partition), then goes on. */
  pause(): void;
  resume(): void;
}

export interface TestCluster {
  readonly nodes: ClusterNode[];
  readonly dir: string;
  readonly redisUrl: string;
  readonly namespace: string;
  readonly settings: { heartbeat_ms: number; dead_after_ms: number };
  addUser(local: string, password: string): Promise<void>;
  /** Many accounts with one password, derived once (the slow part of provisioning). */
  addUsers(locals: readonly string[], password: string): Promise<void>;
  /** The path of a node's configuration file (for `shoal cluster status --config`). */
  configOf(name: string): string;
  /** Redis commands processed so far (INFO stats), to count operations per stanza. */
  redisCommands(): Promise<number>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodes?: string[];
  heartbeat_ms?: number;
  dead_after_ms?: number;
  /** Merged into every node's shoal.yaml. */
  settings?: Record<string, unknown>;
  /** The Redis to share (default: the machine's at 127.0.0.1:6379, a database index of the run's own). */
  redisUrl?: string;
}

const READY_MS = 120_000;

export async function startCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const names = opts.nodes ?? ['a', 'b', 'c'];
  const dir = mkdtempSync(join(tmpdir(), 'shoal-cluster-'));
  // A schema of the run's own in the shared test database; the first node creates it.
  const db: TestSchema = await reserveTestSchema();
  const namespace = `t${process.pid}${randomBytes(4).toString('hex')}`;
  const redisUrl = opts.redisUrl ?? `redis://127.0.0.1:6379/${1 + (process.pid % 15)}`;
  const clusterSettings = { heartbeat_ms: opts.heartbeat_ms ?? 200, dead_after_ms: opts.dead_after_ms ?? 1500 };
  // One certificate for all: a load balancer hands a client any node, under one name.
  const data = join(dir, 'data');
  const nodes: ClusterNode[] = [];
  const storage = await openPostgresStorage(db.url, { pool: 2, schema: db.schema });
  const configOf = (name: string): string => join(dir, `${name}.yaml`);
  for (const name of names) {
    const yaml = {
      hosts: ['localhost'],
      c2s: { host: '127.0.0.1', port: 0 },
      data_dir: data,
      storage: { driver: 'postgres', url: db.url, pool: 4, schema: db.schema },
      tls: {},
      log: { level: 'info', format: 'json' },
      sasl: { mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] },
      cluster: { node: name, redis: redisUrl, namespace, ...clusterSettings },
      ...opts.settings,
    };
    writeFileSync(configOf(name), stringify(yaml));
  }

  const startNode = (node: MutableNode): Promise<void> => {
    node.logs.length = 0;
    const proc = spawnShoal(['--config', configOf(node.name), 'start'], { cwd: dir });
    node.proc = proc;
    let buffer = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffer += d;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          continue;
        }
        node.logs.push(parsed);
        for (const w of [...node.waiters]) {
          if (w.match(parsed)) {
            node.waiters.delete(w);
            w.resolve(parsed);
          }
        }
      }
    });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.on('exit', (code) => {
      for (const w of [...node.waiters]) {
        node.waiters.delete(w);
        w.reject(new Error(`node ${node.name} exited (${code}) while waiting for ${w.what}: ${stderr.slice(-2000)}`));
      }
    });
    return node.waitLog((l) => l.event === 'ready', READY_MS, 'ready').then(() => {
      const listen = node.logs.find((l) => l.event === 'listen' && l.kind === 'c2s');
      node.port = Number(listen?.port);
    });
  };

  interface Waiter {
    match: (l: LogLine) => boolean;
    resolve: (l: LogLine) => void;
    reject: (e: Error) => void;
    what: string;
  }
  type MutableNode = ClusterNode & { waiters: Set<Waiter> };

  try {
    for (const name of names) {
      const node: MutableNode = {
        name,
        port: 0,
        proc: undefined as unknown as ChildProcessWithoutNullStreams,
        logs: [],
        waiters: new Set(),
        waitLog(match, ms = 10_000, what = 'a log line') {
          const found = node.logs.find(match);
          if (found) return Promise.resolve(found);
          return new Promise((resolve, reject) => {
            const w: Waiter = {
              match,
              what,
              resolve: (l) => {
                clearTimeout(timer);
                resolve(l);
              },
              reject: (e) => {
                clearTimeout(timer);
                reject(e);
              },
            };
            const timer = setTimeout(() => {
              node.waiters.delete(w);
              reject(new Error(`node ${name}: no ${what} within ${ms} ms`));
            }, ms);
            node.waiters.add(w);
          });
        },
        async kill() {
          if (node.proc.exitCode !== null || node.proc.signalCode !== null) return;
          const gone = new Promise<void>((r) => node.proc.once('exit', () => r()));
          node.proc.kill('SIGKILL');
          await gone;
        },
        async terminate() {
          if (node.proc.exitCode !== null || node.proc.signalCode !== null) return node.proc.exitCode;
          const gone = new Promise<number | null>((r) => node.proc.once('exit', (code) => r(code)));
          node.proc.kill('SIGTERM');
          return gone;
        },
        restart: () => startNode(node),
        pause: () => void node.proc.kill('SIGSTOP'),
        resume: () => void node.proc.kill('SIGCONT'),
      };
      nodes.push(node);
    }
    // The first alone (it makes the shared certificate and runs the migrations), then the rest together.
    await startNode(nodes[0] as MutableNode);
    await Promise.all(nodes.slice(1).map((n) => startNode(n as MutableNode)));
  } catch (err) {
    for (const n of nodes) await n.kill().catch(() => undefined);
    await storage.close();
    await db.drop();
    throw err;
  }

  return {
    nodes,
    dir,
    redisUrl,
    namespace,
    settings: clusterSettings,
    async addUser(local, password) {
      await storage.accounts.create('localhost', local, deriveAllScramCredentials(password));
    },
    async addUsers(locals, password) {
      const credentials = deriveAllScramCredentials(password);
      for (const local of locals) await storage.accounts.create('localhost', local, credentials);
    },
    configOf,
    async redisCommands() {
      const r = new Redis(redisUrl);
      try {
        const info = await r.info('stats');
        return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
      } finally {
        r.disconnect();
      }
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.terminate().catch(() => undefined)));
      await storage.close();
      await db.drop();
      const r = new Redis(redisUrl);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await r.del(...keys);
        } while (cursor !== '0');
      } finally {
        r.disconnect();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
