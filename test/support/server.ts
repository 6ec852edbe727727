// Starts a real Shoal server on an ephemeral loopback port with its own data
// directory and configuration file, the way an operator would run it.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { XmppServer } from '../../src/server.js';
import { createLogger, silentLogger, type Logger } from '../../src/log/logger.js';
import { deriveAllScramCredentials } from '../../src/sasl/credentials.js';

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
    storage: { driver: 'sqlite', path: './data/shoal.sqlite' },
    tls: {},
    sasl: { mechanisms: ['SCRAM-SHA-512-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] },
    ...settings,
  };
  for (const k of Object.keys(yaml)) if (yaml[k] === null) delete yaml[k];
  if (!reuse) writeFileSync(file, stringify(yaml));
  const config = loadConfig({ file });
  const log = opts.log ?? (process.env.SHOAL_TEST_LOG ? createLogger({ level: 'debug', format: 'json', destination: 2 }) : silentLogger());
  const server = await XmppServer.create({ config, log });
  await server.listen();
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
      if (!stopOpts.keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}
