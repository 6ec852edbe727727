// The three servers under test, each configured the same way (loopback only,
// STARTTLS required with the same certificate, SCRAM-SHA-1 hashed credentials,
// roster/disco/ping, no offline storage, no s2s, logs at warn) and started as a
// child process with its own config and data under the run's temp dir — never
// through a system service, and never on a system port. Each has three configs:
// the base one, one that adds stream management (XEP-0198, resumption kept
// 300 s), which only the resume scenario uses, and one that adds message
// archiving (XEP-0313, every message archived, in the storage the server keeps
// its other data in), which only the chat-mam scenario uses.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { processTree } from '../load/proc.js';
import { has } from '../shared/system.js';
import { countEjabberdArchive, countProsodyArchive, countShoalArchive } from './archive.js';

export interface Launch {
  /** CPU list for taskset (e.g. '0'), or undefined to not pin. */
  cpus?: string;
  /** Open-file limit (soft and hard) for the process, applied with prlimit. */
  nofile: number;
}

/** What a server start may ask for beyond the launch: a CPU profile, stream management. */
export interface StartOptions extends Launch {
  cpuProfileDir?: string;
  /** Start with the config that offers XEP-0198 (resumption for 300 s); otherwise it is off. */
  streamManagement?: boolean;
  /** Start with the config that archives every message (XEP-0313); otherwise nothing is archived. */
  mam?: boolean;
}

/** Seconds a session whose connection dropped stays resumable, on every server. */
const RESUME_TIMEOUT_S = 300;
/** The configs each server gets: the base one, + stream management, + message archiving. */
type Variant = 'base' | 'sm' | 'mam';
const VARIANTS: readonly Variant[] = ['base', 'sm', 'mam'];
const variantOf = (opts: StartOptions): Variant => (opts.streamManagement ? 'sm' : opts.mam ? 'mam' : 'base');
/** shoal.yaml, shoal-sm.yaml, shoal-mam.yaml, ... */
const configName = (stem: string, v: Variant, ext: string): string => `${stem}${v === 'base' ? '' : `-${v}`}.${ext}`;

export interface RunningServer {
  /** The process measured (the server itself, not a wrapper). */
  pid: number;
  port: number;
  stop(): Promise<void>;
  logFile: string;
}

export interface ServerKind {
  name: 'Shoal' | 'Prosody' | 'ejabberd';
  key: 'shoal' | 'prosody' | 'ejabberd';
  version(): string;
  /**
   * Writes configuration and storage (once per run). `httpPort`: the HTTP listener that serves
   * XMPP over WebSocket (RFC 7395) at /xmpp-websocket (the room and ws scenarios, room-ws.ts).
   */
  prepare(dir: string, tls: TlsFiles, port: number, httpPort: number): Promise<void>;
  start(opts: StartOptions): Promise<RunningServer>;
  /**
   * Messages in the server's message archives (all accounts, each copy counted: a message is
   * in its sender's and its recipient's archive), read from its storage while it is stopped.
   */
  archived(): Promise<number>;
}

export interface TlsFiles {
  cert: string;
  key: string;
}

/** prlimit and taskset wrap the command (both exec it, so the pid stays the server's or its launcher's). */
export function wrap(cmd: string, args: string[], launch: Launch): [string, string[]] {
  let c = cmd;
  let a = args;
  if (launch.cpus !== undefined && has('taskset')) {
    a = ['-c', launch.cpus, c, ...a];
    c = 'taskset';
  }
  if (has('prlimit')) {
    a = [`--nofile=${launch.nofile}:${launch.nofile}`, '--', c, ...a];
    c = 'prlimit';
  }
  return [c, a];
}

function dpkgVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** How long a server may take to listen: a minute is not always enough on a loaded 2-core machine (Shoal took 2). */
const START_TIMEOUT_MS = 180_000;

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited during start (${child.exitCode ?? child.signalCode}); see ${logFile}:\n${tail(logFile)}`);
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server did not listen on ${port} within ${timeoutMs} ms; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
function stopChild(child: ChildProcess, pid: number, graceMs = 15_000): Promise<void> {
  return new Promise((resolveStop) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolveStop();
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
        if (child.pid !== undefined && child.pid !== pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolveStop();
    }
  });
}

/** Every child started, so that an interrupted run still stops them. */
export const children = new Set<ChildProcess>();

function launch(cmd: string, args: string[], opts: Launch, env: NodeJS.ProcessEnv, cwd: string, logFile: string): ChildProcess {
  const [c, a] = wrap(cmd, args, opts);
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(c, a, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Two sources into one file: neither may end it.
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  child.once('exit', () => out.end());
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

// --- Shoal -------------------------------------------------------------------

/**
 * Shoal's settings for a benchmark, as shoal.yaml's keys: loopback, STARTTLS required with
 * this certificate, SCRAM-SHA-1 (credentials are stored for SHA-1 only), logs at warn, data
 * under `dir`.
 */
export function shoalConfig(dir: string, port: number, tls: TlsFiles): Record<string, unknown> & { sasl: Record<string, unknown> } {
  return {
    hosts: ['localhost'],
    c2s: { host: '127.0.0.1', port },
    data_dir: join(dir, 'data'),
    storage: { driver: 'sqlite', path: join(dir, 'data', 'shoal.sqlite') },
    tls: { cert: tls.cert, key: tls.key },
    sasl: { mechanisms: ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'PLAIN'] },
    // Every load client connects from 127.0.0.1, as Prosody's and ejabberd's do (no cap there),
    // and no traffic shaping, as for the others (ejabberd's listener has no shaper).
    limits: {
      max_connections_per_ip: 0,
      rate: { client: { bytes_per_second: 0, stanzas_per_second: 0 }, account: { bytes_per_second: 0, stanzas_per_second: 0 } },
    },
    log: { level: 'warn', format: 'json' },
  };
}

/** Shoal's MUC (XEP-0045, on by default at conference.localhost) and WebSocket listener for the room and ws scenarios. */
export function shoalWebConfig(httpPort: number): Record<string, unknown> {
  return { http: { host: '127.0.0.1', port: httpPort, web_client: false }, muc: { max_occupants: 1000 } };
}

/** `useDist`: run the build in dist/ (only right after a successful build: provisioning uses src/, and both must agree on the schema). */
/** `malloc`: a malloc library to preload (LD_PRELOAD), e.g. jemalloc; glibc's when absent. */
export function shoal(repo: string, useDist: boolean, malloc?: string): ServerKind {
  let dir = '';
  let port = 0;
  let entry: string[] = [];
  return {
    name: 'Shoal',
    key: 'shoal',
    version() {
      const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
      let rev = '';
      try {
        rev = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
        const dirty = execFileSync('git', ['-C', repo, 'status', '--porcelain', 'src'], { encoding: 'utf8' }).trim() !== '';
        rev = ` (${rev}${dirty ? ', src/ modified' : ''})`;
      } catch {
        // not a git checkout
      }
      return `${pkg.version}${rev}${malloc ? `, with ${basename(malloc)} preloaded` : ''}`;
    },
    async prepare(d, tls, p, httpPort) {
      dir = d;
      port = p;
      mkdirSync(dir, { recursive: true });
      for (const v of VARIANTS) {
        // Shoal offers XEP-0198 and archives messages by default; the others do neither unless their module is loaded.
        const cfg = {
          ...shoalConfig(dir, port, tls),
          ...shoalWebConfig(httpPort),
          stream_management: v === 'sm' ? { enabled: true, resume_timeout: RESUME_TIMEOUT_S } : { enabled: false },
          mam: v === 'mam' ? { enabled: true, default: 'always' } : { enabled: false },
        };
        writeFileSync(join(dir, configName('shoal', v, 'yaml')), stringify(cfg));
      }
      const dist = join(repo, 'dist', 'cli', 'main.js');
      entry = useDist && existsSync(dist) ? [dist] : ['--import', 'tsx', join(repo, 'src', 'cli', 'main.ts')];
    },
    async start(opts) {
      const logFile = join(dir, 'shoal.log');
      const prof = opts.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfileDir] : [];
      const config = join(dir, configName('shoal', variantOf(opts), 'yaml'));
      const env = malloc ? { ...process.env, LD_PRELOAD: malloc } : process.env;
      const child = launch(process.execPath, [...prof, ...entry, 'start', '--config', config], opts, env, repo, logFile);
      await waitForPort(port, child, START_TIMEOUT_MS, logFile);
      const pid = child.pid!;
      return { pid, port, logFile, stop: () => stopChild(child, pid) };
    },
    archived: () => countShoalArchive(join(dir, 'data', 'shoal.sqlite')),
  };
}

// --- Prosody -------------------------------------------------------------------

export function prosody(): ServerKind {
  let dir = '';
  let port = 0;
  return {
    name: 'Prosody',
    key: 'prosody',
    version: () => dpkgVersion('prosody'),
    async prepare(d, tls, p, httpPort) {
      dir = d;
      port = p;
      mkdirSync(join(dir, 'data'), { recursive: true });
      const q = (s: string): string => JSON.stringify(s);
      for (const v of VARIANTS) {
        const sm = v === 'sm';
        const mam = v === 'mam';
        writeFileSync(
          join(dir, configName('prosody', v, 'cfg.lua')),
          [
            '-- Generated by bench/compare: a private instance on loopback, not the system service.',
            'run_as_root = true',
            `pidfile = ${q(join(dir, 'prosody.pid'))}`,
            `data_path = ${q(join(dir, 'data'))}`,
            `certificates = ${q(dir)}`,
            `log = { warn = ${q(join(dir, 'prosody.log'))} }`,
            `c2s_ports = { ${port} }`,
            'c2s_interfaces = { "127.0.0.1" }',
            's2s_ports = { }',
            // mod_websocket (RFC 7395) on a loopback HTTP port; plain ws:// on loopback counts as
            // encrypted, as Shoal's does, so SASL is offered over it despite c2s_require_encryption.
            `http_ports = { ${httpPort} }`,
            'http_interfaces = { "127.0.0.1" }',
            'https_ports = { }',
            'consider_websocket_secure = true',
            `modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "websocket"${sm ? '; "smacks"' : ''}${mam ? '; "mam"' : ''} }`,
            // mod_smacks ships with 0.12; its hibernation time is the resume timeout.
            ...(sm ? [`smacks_hibernation_time = ${RESUME_TIMEOUT_S}`] : []),
            // mod_mam ships with 0.12 and keeps its archive in the default storage (internal, like
            // everything else here): every message archived for every account, kept for ever
            // (Shoal's default; "1w" would add a per-message expiry bookkeeping write).
            ...(mam ? ['default_archive_policy = true', 'archive_expires_after = "never"'] : []),
            'modules_disabled = { "s2s"; "offline" }',
            'authentication = "internal_hashed"',
            'default_iteration_count = 4096',
            'c2s_require_encryption = true',
            'storage = "internal"',
            'c2s_stanza_size_limit = 262144',
            '-- The same socket settings as the others: TCP_NODELAY and a 511-deep accept queue (Node\'s default).',
            'network_settings = { tcp_backlog = 511; nagle = false }',
            `ssl = { certificate = ${q(tls.cert)}; key = ${q(tls.key)} }`,
            'VirtualHost "localhost"',
            // XEP-0045 (mod_muc ships with Prosody): the room scenario's service.
            'Component "conference.localhost" "muc"',
            '',
          ].join('\n'),
        );
      }
    },
    async start(opts) {
      const logFile = join(dir, 'prosody.out');
      const config = join(dir, configName('prosody', variantOf(opts), 'cfg.lua'));
      const child = launch('prosody', ['--config', config, '-F'], opts, process.env, dir, logFile);
      await waitForPort(port, child, START_TIMEOUT_MS, logFile);
      // prosody is a Lua script: its interpreter is the process (the wrappers exec it).
      const pid = child.pid!;
      return { pid, port, logFile: join(dir, 'prosody.log'), stop: () => stopChild(child, pid) };
    },
    archived: async () => countProsodyArchive(join(dir, 'data'), 'localhost'),
  };
}

// --- ejabberd -------------------------------------------------------------------

export function ejabberd(termsFile: () => string): ServerKind {
  let dir = '';
  let port = 0;
  let provisioned = false;
  return {
    name: 'ejabberd',
    key: 'ejabberd',
    version: () => dpkgVersion('ejabberd'),
    async prepare(d, tls, p, httpPort) {
      dir = d;
      port = p;
      rmSync(join(dir, 'db'), { recursive: true, force: true });
      mkdirSync(join(dir, 'db'), { recursive: true });
      mkdirSync(join(dir, 'logs'), { recursive: true });
      writeFileSync(join(dir, 'tls.pem'), readFileSync(tls.cert, 'utf8') + readFileSync(tls.key, 'utf8'));
      // No shaper on the listener (ejabberd's example config throttles c2s to 1000 B/s), and
      // the accept queue as deep as Node's default so bursts of connects are not dropped.
      for (const v of VARIANTS) {
        writeFileSync(
          join(dir, configName('ejabberd', v, 'yml')),
          [
            '# Generated by bench/compare: a private instance on loopback, not the system service.',
            'hosts:',
            '  - localhost',
            'loglevel: warning',
            'log_rotate_count: 0',
            'certfiles:',
            `  - ${JSON.stringify(join(dir, 'tls.pem'))}`,
            'listen:',
            '  -',
            `    port: ${port}`,
            '    ip: "127.0.0.1"',
            '    module: ejabberd_c2s',
            '    starttls_required: true',
            '    max_stanza_size: 262144',
            '    backlog: 511',
            // RFC 7395 for the ws scenario: ejabberd_http_ws on a loopback HTTP listener.
            '  -',
            `    port: ${httpPort}`,
            '    ip: "127.0.0.1"',
            '    module: ejabberd_http',
            // The same accept queue as the c2s listener (and Node's): without it, 200 connects at once overflow it.
            '    backlog: 511',
            '    request_handlers:',
            '      /xmpp-websocket: ejabberd_http_ws',
            'auth_method: [mnesia]',
            'auth_password_format: scram',
            'auth_scram_hash: sha',
            'acl:',
            '  local:',
            '    user_regexp: ""',
            'access_rules:',
            '  local:',
            '    allow: local',
            '  c2s:',
            '    allow: all',
            'modules:',
            '  mod_roster: {}',
            '  mod_disco: {}',
            '  mod_ping: {}',
            // XEP-0045 for the room scenario, at conference.localhost (the default host); room
            // size capped as Shoal's default (ejabberd's own default max_users is 200).
            '  mod_muc: { max_users: 1000 }',
            // The c2s listener's stream_management option defaults to true: loading the module is what turns XEP-0198 on.
            ...(v === 'sm' ? [`  mod_stream_mgmt: { resume_timeout: ${RESUME_TIMEOUT_S} }`] : []),
            // Every message archived for every account, in Mnesia like the accounts and rosters.
            ...(v === 'mam' ? ['  mod_mam: { db_type: mnesia, default: always }'] : []),
            '',
          ].join('\n'),
        );
      }
    },
    async start(opts) {
      const logFile = join(dir, 'logs', 'erl.out');
      const env = {
        ...process.env,
        ERL_LIBS: '/usr/lib/x86_64-linux-gnu',
        EJABBERD_CONFIG_PATH: join(dir, configName('ejabberd', variantOf(opts), 'yml')),
        EJABBERD_LOG_PATH: join(dir, 'logs', 'ejabberd.log'),
        ERL_MAX_PORTS: String(opts.nofile),
        ERL_CRASH_DUMP: join(dir, 'logs', 'erl_crash.dump'),
        ERL_CRASH_DUMP_BYTES: '0',
        HOME: dir,
      };
      // The records are written by the node itself once ejabberd has started (it creates the
      // Mnesia tables). Before that, a sentinel registered through ejabberd's own API proves the
      // stored shapes are the ones written here; any mismatch stops the node with a message.
      const provision = provisioned
        ? ''
        : `{ok, Terms} = file:consult(${JSON.stringify(termsFile())}), ` +
          `[us, password] = mnesia:table_info(passwd, attributes), ` +
          `[usj, us, jid, name, subscription, ask, groups, askmessage, xs] = mnesia:table_info(roster, attributes), ` +
          `ok = ejabberd_auth:try_register(<<"bench-sentinel">>, <<"localhost">>, <<"sentinel-pw">>), ` +
          `[{passwd, _, {scram, _, _, _, sha, 4096}}] = mnesia:dirty_read(passwd, {<<"bench-sentinel">>, <<"localhost">>}), ` +
          `ejabberd_auth:remove_user(<<"bench-sentinel">>, <<"localhost">>), ` +
          `lists:foreach(fun(T) -> ok = mnesia:dirty_write(T) end, Terms), `;
      const evalCode = `try ${provision}io:format("SHOAL-BENCH-READY~n") catch C:E -> io:format("SHOAL-BENCH-FAILED ~p:~p~n", [C, E]), halt(3) end.`;
      // A process or two per connection: room for as many as there may be sockets.
      const processes = String(Math.max(250_000, 4 * opts.nofile));
      const args = ['-noshell', '-noinput', '+K', 'true', '+P', processes, '-mnesia', 'dir', JSON.stringify(join(dir, 'db')), '-s', 'ejabberd', '-eval', evalCode];
      const child = launch('erl', args, opts, env, dir, logFile);
      await new Promise<void>((ready, fail) => {
        let seen = '';
        const timer = setTimeout(() => fail(new Error(`ejabberd did not start within 180 s; see ${logFile}`)), 180_000);
        child.stdout!.on('data', (d: Buffer) => {
          seen += d.toString();
          if (seen.includes('SHOAL-BENCH-READY')) {
            clearTimeout(timer);
            ready();
          } else if (seen.includes('SHOAL-BENCH-FAILED')) {
            clearTimeout(timer);
            fail(new Error(`ejabberd provisioning failed: ${seen.slice(seen.indexOf('SHOAL-BENCH-FAILED'))}`));
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          fail(new Error(`ejabberd exited during start (${code}); see ${logFile}:\n${tail(logFile)}`));
        });
      });
      provisioned = true;
      await waitForPort(port, child, START_TIMEOUT_MS, logFile);
      // erl execs erlexec, which runs the VM (beam.smp): that is the process to measure.
      const beam = processTree(child.pid!).find((p) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim().startsWith('beam');
        } catch {
          return false;
        }
      });
      if (beam === undefined) throw new Error('could not find the ejabberd VM process (beam.smp)');
      return { pid: beam, port, logFile: join(dir, 'logs', 'ejabberd.log'), stop: () => stopChild(child, beam) };
    },
    archived: async () => countEjabberdArchive(join(dir, 'db')),
  };
}

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
