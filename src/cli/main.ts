#!/usr/bin/env node
// The `shoal` command: start the server, manage accounts, check a configuration.
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { loadConfig, ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { checkCertificate, loadOrCreateTlsMaterial } from '../config/tls.js';
import { createLogger, type LogLevel } from '../log/logger.js';
import { XmppServer } from '../server.js';
import { openStorage } from '../storage/index.js';
import { Jid, JidError } from '../jid/jid.js';
import { deriveAllScramCredentials, preparePassword } from '../sasl/credentials.js';
import { readPassword } from './prompt.js';
import { SERVER_VERSION } from '../version.js';

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
  const storage = await openStorage(config.storage);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

async function start(opts: GlobalOpts): Promise<void> {
  const config = load(opts);
  const log = createLogger({ level: opts.logLevel ?? config.log.level, format: config.log.format });
  const server = await XmppServer.create({ config, log });
  await server.listen();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'signal', signal }, 'shutting down');
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function check(opts: GlobalOpts): Promise<number> {
  const config = load(opts);
  const problems: string[] = [];
  console.log(`configuration OK: hosts ${config.hosts.join(', ')}, c2s ${config.c2s.host}:${config.c2s.port}, storage ${config.storage.driver}`);
  if (config.tls) {
    const material = await loadOrCreateTlsMaterial(config.tls, config.data_dir, config.hosts);
    problems.push(...checkCertificate(material.cert, config.hosts));
    console.log(`TLS: required (${material.generated ? 'self-signed certificate' : 'configured certificate'})`);
  } else {
    console.log('TLS: not configured; streams are not encrypted and PLAIN is not offered');
  }
  for (const p of problems) console.log(`problem: ${p}`);
  return problems.length === 0 ? 0 : 1;
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

  const user = program.command('user').description('manage accounts');
  user
    .command('add <jid>')
    .option('-p, --password <password>', 'password (prompted when omitted on a terminal, else read from stdin)')
    .action(async (jidArg: string, o: { password?: string }) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      const password = await passwordFrom(o.password);
      const created = await withStorage(config, (s) => s.accounts.create(jid.domain, jid.local, deriveAllScramCredentials(password)));
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
      const ok = await withStorage(config, (s) => s.accounts.setCredentials(jid.domain, jid.local, deriveAllScramCredentials(password)));
      if (!ok) throw new UsageError(`${jid.toString()} does not exist`);
      console.log(`password changed for ${jid.toString()}`);
    });
  user
    .command('del <jid>')
    .action(async (jidArg: string) => {
      const config = load(program.opts<GlobalOpts>());
      const jid = accountJid(config, jidArg);
      const ok = await withStorage(config, (s) => s.accounts.remove(jid.domain, jid.local));
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
    throw err;
  }
}

await main(process.argv);
