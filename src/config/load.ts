// Finds, parses and validates the configuration file. Every problem is
// reported at once, each with the key path it concerns, so a broken file is
// fixed in one go.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'shoal.yaml';
export const CONFIG_ENV = 'SHOAL_CONFIG';

export class ConfigError extends Error {
  constructor(
    /** One line per problem, each starting with its key path. */
    readonly problems: string[],
    /** The file the problems are in, if any. */
    readonly file?: string,
  ) {
    super(`invalid configuration${file === undefined ? '' : ` in ${file}`}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Explicit config file (e.g. from `--config`); relative to cwd. */
  file?: string;
  /** Defaults to process.cwd(). */
  cwd?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The config file to use: `opts.file`, else $SHOAL_CONFIG, else ./shoal.yaml if it
 * exists, else undefined. A file named explicitly must exist.
 */
export function findConfigFile(opts: LoadConfigOptions = {}): string | undefined {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const explicit = opts.file ?? (env[CONFIG_ENV] === '' ? undefined : env[CONFIG_ENV]);
  if (explicit !== undefined) {
    const file = resolve(cwd, explicit);
    if (!existsSync(file)) {
      const origin = opts.file !== undefined ? 'given' : `named by ${CONFIG_ENV}`;
      throw new ConfigError([`config file ${origin} does not exist`], file);
    }
    return file;
  }
  const implicit = resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(implicit) ? implicit : undefined;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  const file = findConfigFile(opts);
  if (file === undefined) {
    // No file at all: a bare `shoal start` must still be secure, so TLS is on
    // (self-signed) rather than off as for a file without a tls section; and the
    // HTTP endpoints (WebSocket, BOSH) are served on loopback only.
    return parseConfig({ tls: {}, http: { host: '127.0.0.1' } }, cwd);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read: ${err instanceof Error ? err.message : String(err)}`], file);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => `YAML: ${e.message.split('\n')[0] ?? ''}`),
      file,
    );
  }
  const data: unknown = doc.toJS();
  // An empty file is an empty mapping: all defaults, and no TLS.
  return parseConfig(data ?? {}, dirname(file), file);
}

/** Validates already-parsed config data; relative paths are resolved against `baseDir`. */
export function parseConfig(data: unknown, baseDir: string, file?: string): Config {
  const result = configSchema.safeParse(data, { error: issueMessage });
  if (!result.success) throw new ConfigError(result.error.issues.flatMap(describeIssue), file);
  return resolvePaths(result.data, baseDir);
}

function resolvePaths(config: Config, baseDir: string): Config {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const resolved: Config = {
    ...config,
    data_dir: at(config.data_dir),
    storage:
      config.storage.driver === 'sqlite'
        ? { ...config.storage, path: config.storage.path === ':memory:' ? ':memory:' : at(config.storage.path) }
        : config.storage,
  };
  const jwt = config.tokens.jwt;
  if (jwt !== undefined) {
    resolved.tokens = {
      ...config.tokens,
      jwt: {
        ...jwt,
        ...(jwt.secret_file !== undefined && { secret_file: at(jwt.secret_file) }),
        ...(jwt.public_key !== undefined && { public_key: at(jwt.public_key) }),
        ...(jwt.jwks !== undefined && { jwks: at(jwt.jwks) }),
      },
    };
  }
  if (config.tls !== undefined) {
    resolved.tls = {
      ...(config.tls.cert !== undefined && { cert: at(config.tls.cert) }),
      ...(config.tls.key !== undefined && { key: at(config.tls.key) }),
    };
  }
  return resolved;
}

function describeType(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  return typeof input;
}

// Shorter messages than zod's defaults for the common cases; others keep zod's.
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? `required ${issue.expected}` : `expected ${issue.expected}, got ${describeType(issue.input)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`;
    case 'invalid_union': {
      // A discriminated union (storage.driver) reports the values it knows.
      const { options, discriminator } = issue as { options?: unknown[]; discriminator?: string };
      if (Array.isArray(options) && discriminator !== undefined) {
        const input = issue.input;
        const got = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[discriminator] : input;
        return `expected one of ${options.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(got)}`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`);
  }
  return [`${formatPath(issue.path) || '(top level)'}: ${issue.message}`];
}
