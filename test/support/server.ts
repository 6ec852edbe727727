// Starts a real Shoal server on an ephemeral loopback port with its own data
// directory and configuration file, the way an operator would run it.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { XmppServer } from '../../src/server.js';
import { createLogger, silentLogger, type Logger } from '../../src/log/logger.js';
import { deriveAllScramCredentials } from '../../src/sasl/credentials.js';
import { dropTestSchema, reserveTestSchema, testStorageDialect, type TestSchema } from '../../src/storage/sql/testutil.js';

export interface TestServer {
  server: XmppServer;
  port: number;
  dir: string;
  host: string;
  addUser(local: string, password: string): Promise<void>;
  /** Stops the server and removes its directory, unless `keep` (to start another server on it). */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

/** Options that are not part of shoal.yaml. */
export interface TestServerOptions {
  /** Use this logger (e.g. one that records events for assertions) instead of the default. */
  log?: Logger;
  /**
   * Run in this existing directory (e.g. the `dir` of a server stopped with `keep`) with the
   * shoal.yaml already there, as an operator restarting the server would; `settings` are
   * then not used. Without it, a new temporary directory and a new shoal.yaml.
   */
  dir?: string;
  /**
   * Storage driver when `settings` give no storage section: 'postgres' runs the server on a
   * PostgreSQL schema of its own (storage.schema, in the database of SHOAL_TEST_PG_URL; dropped
   * by stop()). Default: the SHOAL_TEST_STORAGE environment variable, else 'sqlite'.
   */
  storage?: 'sqlite' | 'postgres';
}

/** Where a server on PostgreSQL keeps the name of its test schema, to drop it when it stops for good. */
const PG_SCHEMA_FILE = '.shoal-test-schema';

/**
 * The storage section a test server gets from startTestServer, for tests that write their
 * own shoal.yaml: SQLite at `path`, or (SHOAL_TEST_STORAGE=postgres) a new PostgreSQL schema,
 * whose name is then kept in `dir` for dropTestServerStorage(dir).
 */
export async function testServerStorage(dir: string, path = './data/shoal.sqlite', driver = testStorageDialect()): Promise<Record<string, unknown>> {
  if (driver === 'sqlite') return { driver: 'sqlite', path };
  const schema: TestSchema = await reserveTestSchema();
  writeFileSync(join(dir, PG_SCHEMA_FILE), schema.schema);
  return { driver: 'postgres', url: schema.url, schema: schema.schema, pool: 4 };
}

/** Drops the PostgreSQL schema testServerStorage(dir) made, if it made one. */
export async function dropTestServerStorage(dir: string): Promise<void> {
  const file = join(dir, PG_SCHEMA_FILE);
  if (existsSync(file)) await dropTestSchema(readFileSync(file, 'utf8'));
}

/** `settings` is merged into the YAML config (top-level keys replace the defaults here). */
export async function startTestServer(settings: Record<string, unknown> = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  const reuse = opts.dir !== undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'shoal-test-'));
  const file = join(dir, 'shoal.yaml');
  if (reuse && !existsSync(file)) throw new Error(`no shoal.yaml in ${dir} to restart with`);
  const yaml: Record<string, unknown> = {
    hosts: ['localhost'],
    c2s: { host: '127.0.0.1', port: 0 },
    data_dir: './data',
    tls: {},
    sasl: { mechanisms: ['SCRAM-SHA-512-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] },
    ...settings,
  };
  for (const k of Object.keys(yaml)) if (yaml[k] === null) delete yaml[k];
  if (!reuse && settings.storage === undefined) yaml.storage = await testServerStorage(dir, './data/shoal.sqlite', opts.storage);
  if (!reuse) writeFileSync(file, stringify(yaml));
  const config = loadConfig({ file });
  const log = opts.log ?? (process.env.SHOAL_TEST_LOG ? createLogger({ level: 'debug', format: 'json', destination: 2 }) : silentLogger());
  let server: XmppServer;
  try {
    server = await XmppServer.create({ config, log });
    await server.listen();
  } catch (err) {
    await dropTestServerStorage(dir);
    throw err;
  }
  return {
    server,
    port: server.port,
    dir,
    host: 'localhost',
    async addUser(local, password) {
      await server.storage.accounts.create('localhost', local, deriveAllScramCredentials(password));
    },
    async stop(stopOpts = {}) {
      await server.stop();
      if (!stopOpts.keep) {
        await dropTestServerStorage(dir);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
