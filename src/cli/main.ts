#!/usr/bin/env node
// The `shoal` command: start the server, manage accounts, check a configuration.
import { Command, Option } from 'commander';
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { loadConfig, ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { checkCertificate, loadOrCreateTlsMaterial } from '../config/tls.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { XmppServer } from '../server.js';
import { openStorage } from '../storage/index.js';
import { Jid, JidError } from '../jid/jid.js';
import { deriveAllScramCredentials, preparePassword } from '../sasl/credentials.js';
import { deriveLegacySecrets, legacyMechanismsIn } from '../sasl/legacy-credentials.js';
import { hashToken, issueToken, parseDuration } from '../auth/local-tokens.js';
import { JwtTokenVerifier } from '../auth/jwt.js';
import { readPassword } from './prompt.js';
import { explainStartError } from './start-errors.js';
import { SERVER_VERSION } from '../version.js';
import { dataOwners } from '../modules/data.js';
import { exportData, importData, migrateOwners, TransferError, type TransferSummary } from '../storage/sql/transfer.js';
import { SqlMamStore } from '../modules/mam/store.js';
import { SqlUploadStore } from '../modules/upload/store.js';
import { purgeExpired, removeUserUploads } from '../modules/upload/purge.js';
import { uploadDir } from '../modules/upload/upload.js';
import { clusterStatus } from '../router/cluster.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

interface GlobalOpts {
  config?: string;
  logLevel?: LogLevel;
}

function load(opts: GlobalOpts): Config {
  return loadConfig({ file: opts.config });
}

/** A user JID must be a bare JID on one of our hosts. */
function accountJid(config: Config, s: string): Jid {
  let jid: Jid;
  try {
    jid = Jid.parse(s);
  } catch (err) {
    if (err instanceof JidError) throw new UsageError(`invalid JID '${s}': ${err.message}`);
    throw err;
  }
  if (jid.local === '' || jid.resource !== '') throw new UsageError(`'${s}' is not a bare user JID (user@host)`);
  if (!config.hosts.includes(jid.domain)) throw new UsageError(`${jid.domain} is not one of the configured hosts (${config.hosts.join(', ')})`);
  return jid;
}

class UsageError extends Error {}

/** The server could not start for a reason the operator can fix (a readable line, exit 1). */
class StartError extends Error {}

async function passwordFrom(opt: string | undefined): Promise<string> {
  const raw = opt ?? (process.stdin.isTTY ? await readPassword('Password: ', true) : readFileSync(0, 'utf8').replace(/\r?\n$/, ''));
  if (raw === '') throw new UsageError('empty password');
  try {
    preparePassword(raw);
  } catch {
    throw new UsageError('the password contains characters SASLprep prohibits');
  }
  return raw;
}

async function withStorage<T>(config: Config, fn: (s: Awaited<ReturnType<typeof openStorage>>) => Promise<T>): Promise<T> {
  let storage: Awaited<ReturnType<typeof openStorage>>;
  try {
    storage = await openStorage(config.storage);
  } catch (err) {
    // A database that cannot be opened (PostgreSQL down, a locked SQLite file): one readable line.
    const why = explainStartError(err, config);
    if (why === undefined) throw err;
    throw new StartError(why);
  }
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

async function start(opts: GlobalOpts): Promise<void> {
  const config = load(opts);
  const log = createLogger({ level: opts.logLevel ?? config.log.level, format: config.log.format });
  let server: XmppServer | undefined;
  try {
    server = await XmppServer.create({ config, log, reloadConfig: () => load(opts) });
    await server.listen();
  } catch (err) {
    const why = explainStartError(err, config);
    if (why === undefined) throw err;
    await server?.stop().catch(() => undefined);
    throw new StartError(why);
  }
  const running = server;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'signal', signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: the configuration's limits and the TLS certificate again, without a restart.
  process.on('SIGHUP', () => {
    log.info({ event: 'signal', signal: 'SIGHUP' }, 'reloading the configuration');
    running.reload().catch((err: unknown) => log.error({ err }, 'reload failed'));
  });
  // A forgotten rejection in one handler must not take every other user's session down
  // with it: log it loudly and keep serving.
  process.on('unhandledRejection', (err) => log.error({ err, event: 'unhandled-rejection' }, 'unhandled promise rejection'));
}

async function check(opts: GlobalOpts): Promise<number> {
  const config = load(opts);
  const problems: string[] = [];
  console.log(`configuration OK: hosts ${config.hosts.join(', ')}, c2s ${config.c2s.host}:${config.c2s.port}, storage ${config.storage.driver}`);
  if (config.tls) {
    const material = await loadOrCreateTlsMaterial(config.tls, config.data_dir, config.hosts);
    problems.push(...checkCertificate(material.cert, config.hosts));
    const which = config.tls.cert !== undefined
      ? `configured certificate ${config.tls.cert}`
      : `self-signed certificate ${material.generated ? 'generated now' : 'generated earlier'} under ${config.data_dir}/tls (clients must accept it once; set tls.cert and tls.key for a trusted one)`;
    console.log(`TLS: required (${which})`);
  } else {
    console.log('TLS: not configured; streams are not encrypted and PLAIN is not offered');
  }
  problems.push(...(await checkAuthentication(config)));
  for (const p of problems) console.log(`problem: ${p}`);
  return problems.length === 0 ? 0 : 1;
}

/** Token verifier, account backend, and accounts that cannot use the enabled MD5 mechanisms yet. */
async function checkAuthentication(config: Config): Promise<string[]> {
  const problems: string[] = [];
  const mechanisms = config.sasl.mechanisms;
  const tokenMechanisms = mechanisms.filter((m) => m === 'X-OAUTH2' || m === 'OAUTHBEARER');
  if (config.auth.backend === 'http') {
    console.log(`accounts: checked by ${config.auth.http!.url} (PLAIN passwords and tokens)`);
    const unusable = mechanisms.filter((m) => m.startsWith('SCRAM-') || m === 'CRAM-MD5' || m === 'DIGEST-MD5');
    if (unusable.length > 0) console.log(`note: with auth.backend http these mechanisms are not offered: ${unusable.join(', ')}`);
    if (!config.tls && !config.sasl.allow_plain_without_tls) {
      problems.push('auth.backend http without TLS offers no mechanism (PLAIN, X-OAUTH2, OAUTHBEARER need TLS unless sasl.allow_plain_without_tls)');
    }
  } else if (tokenMechanisms.length > 0) {
    console.log(`tokens: ${config.tokens.verifier} (${tokenMechanisms.join(', ')})`);
    if (config.tokens.verifier === 'jwt') {
      try {
        new JwtTokenVerifier(config.tokens.jwt!);
      } catch (err) {
        problems.push(`tokens.jwt: cannot load the key: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  const legacy = legacyMechanismsIn(mechanisms);
  // Secrets for CRAM-MD5/DIGEST-MD5 are derived from the password when it is set, so
  // accounts whose password predates enabling them cannot use them until it is set again.
  if (legacy.length > 0 && config.auth.backend === 'internal' && (config.storage.driver !== 'sqlite' || existsSync(config.storage.path))) {
    await withStorage(config, async (s) => {
      for (const host of config.hosts) {
        for (const mechanism of legacy) {
          const missing = await s.legacySecrets.accountsWithout(host, mechanism, mechanism === 'DIGEST-MD5' ? host : undefined);
          if (missing.length === 0) continue;
          const shown = missing.slice(0, 10).map((u) => `${u}@${host}`).join(', ');
          console.log(
            `warning: ${missing.length} account(s) cannot use ${mechanism} until their password is set again ` +
              `(shoal user passwd JID): ${shown}${missing.length > 10 ? ', ...' : ''}`,
          );
        }
      }
    });
  }
  return problems;
}

function describeToken(t: { id: string; createdAt: Date; expiresAt?: Date; revokedAt?: Date; scope: string[] }, now: Date): string {
  const status = t.revokedAt !== undefined ? 'revoked' : t.expiresAt !== undefined && t.expiresAt <= now ? 'expired' : 'active';
  const scope = t.scope.length > 0 ? t.scope.join(' ') : '-';
  return `${t.id}  ${status}  created ${t.createdAt.toISOString()}  expires ${t.expiresAt?.toISOString() ?? 'never'}  scope ${scope}`;
}

/** Rows per table on stderr (stdout may be the export itself). */
function report(what: string, summary: TransferSummary): void {
  for (const t of summary.tables) console.error(`${t.table}: ${t.rows}`);
  console.error(`${what} ${summary.rows} rows in ${summary.tables.length} tables`);
}

export function buildProgram(): Command {
  const program = new Command('shoal')
    .description('Shoal XMPP server')
    .version(SERVER_VERSION)
    .option('-c, --config <file>', 'configuration file (default: $SHOAL_CONFIG or ./shoal.yaml)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LEVELS));

  program.command('start').description('start the server').action(() => start(program.opts<GlobalOpts>()));

  program
    .command('check')
    .description('validate the configuration and the TLS certificate')
    .action(async () => {
      process.exitCode = await check(program.opts<GlobalOpts>());
    });

  program
    .command('migrate')
    .description('bring the database schema up to date (every module\'s tables too), then exit')
    .action(async () => {
      const config = load(program.opts<GlobalOpts>());
      await withStorage(config, (s) => migrateOwners(s, dataOwners()));
      console.log(`the ${config.storage.driver} database is up to date`);
    });

  program
    .command('export <file>')
    .description('write every stored account, roster, message... to FILE (JSON lines; - for stdout) for `shoal import`')
    .action(async (file: string) => {
      const config = load(program.opts<GlobalOpts>());
      const toStdout = file === '-';
      if (!toStdout && existsSync(file)) throw new UsageError(`${file} exists; choose a new file`);
      // The file holds SCRAM keys and token hashes: readable by the owner only.
      const out = toStdout ? process.stdout : createWriteStream(file, { mode: 0o600, flags: 'wx' });
      try {
        const summary = await withStorage(config, (s) => exportData(s, dataOwners(), out));
        if (!toStdout) {
          out.end();
          await finished(out);
        }
        report('exported', summary);
      } catch (err) {
        if (!toStdout) {
          out.destroy();
          rmSync(file, { force: true });
        }
        throw err;
      }
    });

  program
    .command('import <file>')
    .description('load a `shoal export` FILE (- for stdin) into the configured database, which must be empty and not in use')
    .action(async (file: string) => {
      const config = load(program.opts<GlobalOpts>());
      if (file !== '-' && !existsSync(file)) throw new UsageError(`${file} does not exist`);
      const input = file === '-' ? process.stdin : createReadStream(file);
      const summary = await withStorage(config, (s) => importData(s, dataOwners(), input));
      report('imported', summary);
    });

  const user = program.command('user').description('manage accounts');
  user
    .command('add <jid>')
    .option('-p, --password <password>', 'password (prompted when omitted on a terminal, else read from stdin)')
    .action(async (jidArg: string, o: { password?: string }) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      const password = await passwordFrom(o.password);
      // CRAM-MD5/DIGEST-MD5 secrets only when those mechanisms are enabled: they are password equivalents.
      const legacy = deriveLegacySecrets(jid.domain, jid.local, password, config.sasl.mechanisms);
      const created = await withStorage(config, (s) => s.accounts.create(jid.domain, jid.local, deriveAllScramCredentials(password), legacy));
      if (!created) throw new UsageError(`${jid.toString()} already exists`);
      console.log(`created ${jid.toString()}`);
    });
  user
    .command('passwd <jid>')
    .option('-p, --password <password>', 'new password (prompted when omitted on a terminal, else read from stdin)')
    .action(async (jidArg: string, o: { password?: string }) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      const password = await passwordFrom(o.password);
      const legacy = deriveLegacySecrets(jid.domain, jid.local, password, config.sasl.mechanisms);
      const ok = await withStorage(config, (s) => s.accounts.setCredentials(jid.domain, jid.local, deriveAllScramCredentials(password), legacy));
      if (!ok) throw new UsageError(`${jid.toString()} does not exist`);
      console.log(`password changed for ${jid.toString()}`);
    });
  user
    .command('del <jid>')
    .action(async (jidArg: string) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      const ok = await withStorage(config, async (s) => {
        if (!(await s.accounts.exists(jid.domain, jid.local))) return false;
        // The archive first, in batches: a large one deleted by the account's cascade would hold
        // the database's write lock for as long as that takes, and a running server waits on it.
        await (await SqlMamStore.open(s.sql)).purge(jid.domain, jid.local);
        // The uploaded files (their rows would go with the account; the files would stay behind).
        if (config.upload !== false) await removeUserUploads(await SqlUploadStore.open(s.sql), uploadDir(config, config.upload), jid.domain, jid.local);
        return s.accounts.remove(jid.domain, jid.local);
      });
      if (!ok) throw new UsageError(`${jid.toString()} does not exist`);
      console.log(`deleted ${jid.toString()}`);
    });
  user
    .command('list <host>')
    .action(async (host: string) => {
      const config = load(program.opts<GlobalOpts>());
      const h = host.toLowerCase();
      if (!config.hosts.includes(h)) throw new UsageError(`${host} is not one of the configured hosts`);
      const accounts = await withStorage(config, (s) => s.accounts.list(h));
      for (const a of accounts) console.log(`${a.username}@${a.host}`);
    });

  // Access tokens for X-OAUTH2 / OAUTHBEARER with `tokens: local`.
  const token = program.command('token').description('manage access tokens (tokens: local)');
  token
    .command('issue <jid>')
    .description('issue a token; prints it once (only its hash is stored)')
    .option('--ttl <duration>', 'lifetime: 3600, 90s, 15m, 1h, 7d (default: tokens.default_ttl)')
    .option('--scope <scope...>', 'scope values (space- or comma-separated)')
    .action(async (jidArg: string, o: { ttl?: string; scope?: string[] }) => {
      const config = load(program.opts<GlobalOpts>());
      if (config.tokens.verifier !== 'local' || config.auth.backend !== 'internal') {
        throw new UsageError('tokens issued here are only accepted with tokens.verifier local and auth.backend internal');
      }
      const jid = accountJid(config, jidArg);
      const ttl = o.ttl === undefined ? config.tokens.default_ttl : parseDuration(o.ttl);
      if (ttl === undefined) throw new UsageError(`invalid --ttl '${o.ttl ?? ''}' (e.g. 3600, 15m, 1h, 7d)`);
      const scope = (o.scope ?? []).flatMap((v) => v.split(/[\s,]+/)).filter((v) => v !== '');
      if (scope.some((v) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(v))) throw new UsageError('invalid scope value (RFC 6749 §3.3)');
      const issued = await withStorage(config, async (s) => {
        if (!(await s.accounts.exists(jid.domain, jid.local))) throw new UsageError(`${jid.toString()} does not exist`);
        return issueToken(s.tokens, { host: jid.domain, username: jid.local, ttlSeconds: ttl, scope });
      });
      // The token alone on stdout (for scripts); the details on stderr.
      console.log(issued.text);
      console.error(`issued token ${issued.token.id} for ${jid.toString()}, expires ${issued.token.expiresAt?.toISOString() ?? 'never'}`);
    });
  token
    .command('revoke <token-or-id>')
    .description('revoke a token, given its id (see `token list`) or the token itself')
    .action(async (arg: string) => {
      const config = load(program.opts<GlobalOpts>());
      const ok = await withStorage(config, async (s) => {
        const id = arg.includes('.') ? (await s.tokens.findByHash(hashToken(arg)))?.id : arg;
        return id !== undefined && (await s.tokens.revoke(id));
      });
      if (!ok) throw new UsageError(`no active token ${arg.includes('.') ? 'matches the one given' : arg}`);
      console.log('revoked');
    });
  token
    .command('list <jid>')
    .description("list an account's tokens (never the tokens themselves)")
    .action(async (jidArg: string) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      const tokens = await withStorage(config, (s) => s.tokens.list(jid.domain, jid.local));
      const now = new Date();
      for (const t of tokens) console.log(describeToken(t, now));
    });
  // XEP-0313 message archives.
  const upload = program.command('upload').description('manage uploaded files (XEP-0363)');
  upload
    .command('purge')
    .description('delete uploaded files older than upload.expire_after_days, or stored before a date, and slots never used')
    .option('--before <date>', 'delete files stored before this date instead (ISO 8601, e.g. 2024-01-31 or 2024-01-31T12:00:00Z)')
    .action(async (o: { before?: string }) => {
      const config = load(program.opts<GlobalOpts>());
      if (config.upload === false) throw new UsageError('upload is turned off in the configuration');
      const cfg = config.upload;
      let before = Date.now() - cfg.expire_after_days * 86_400_000;
      if (o.before !== undefined) {
        const text = /^\d{4}-\d{2}-\d{2}$/.test(o.before) ? `${o.before}T00:00:00Z` : o.before;
        before = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : NaN;
        if (!Number.isFinite(before)) throw new UsageError(`invalid --before '${o.before}' (e.g. 2024-01-31 or 2024-01-31T12:00:00Z)`);
      }
      const deleted = await withStorage(config, async (s) => purgeExpired(await SqlUploadStore.open(s.sql), uploadDir(config, cfg), new Date(before)));
      console.log(`deleted ${deleted} upload(s) stored before ${new Date(before).toISOString()}`);
    });

  const cluster = program.command('cluster').description('a cluster of nodes routed through Redis');
  cluster
    .command('status')
    .description('the nodes of the cluster: alive or not, their last heartbeat, their sessions')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const config = load(program.opts<GlobalOpts>());
      if (!config.cluster) throw new UsageError('the configuration has no cluster section');
      const nodes = await clusterStatus(config.cluster);
      if (o.json) {
        console.log(JSON.stringify(nodes));
        return;
      }
      if (nodes.length === 0) console.log('no node has joined');
      for (const n of nodes) {
        const beat = n.lastBeatMs === undefined ? 'no heartbeat' : `last heartbeat ${n.lastBeatMs} ms ago`;
        console.log(`${n.node}\t${n.alive ? 'alive' : 'DEAD'}\t${beat}\t${n.sessions} session(s)\tsince ${n.since.toISOString()}\trun ${n.epoch}`);
      }
    });

  const mam = program.command('mam').description('manage message archives (XEP-0313)');
  mam
    .command('purge <jid>')
    .description("delete an account's archived messages, all of them or those archived before a date")
    .option('--before <date>', 'only messages archived before this date (ISO 8601, e.g. 2024-01-31 or 2024-01-31T12:00:00Z)')
    .action(async (jidArg: string, o: { before?: string }) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      let before: number | undefined;
      if (o.before !== undefined) {
        // A date alone means midnight UTC; anything else must carry its time zone.
        const text = /^\d{4}-\d{2}-\d{2}$/.test(o.before) ? `${o.before}T00:00:00Z` : o.before;
        before = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : NaN;
        if (!Number.isFinite(before)) throw new UsageError(`invalid --before '${o.before}' (e.g. 2024-01-31 or 2024-01-31T12:00:00Z)`);
      }
      const deleted = await withStorage(config, async (s) => {
        if (!(await s.accounts.exists(jid.domain, jid.local))) throw new UsageError(`${jid.toString()} does not exist`);
        const store = await SqlMamStore.open(s.sql);
        // Batches: a running server sharing the database waits for one batch at a time, not for all.
        return store.purge(jid.domain, jid.local, before);
      });
      console.log(`deleted ${deleted} archived message(s) of ${jid.toString()}${before === undefined ? '' : ` archived before ${new Date(before).toISOString()}`}`);
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      console.error(`shoal: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof TransferError) {
      console.error(`shoal: ${err.message}`);
      process.exitCode = 1;
      return;
    }
    if (err instanceof StartError) {
      console.error(`shoal: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

await main(process.argv);
