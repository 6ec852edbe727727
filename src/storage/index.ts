// Opens the storage backend the configuration names.
import type { StorageConfig } from '../config/schema.js';
import { openSqliteStorage } from './sqlite.js';
import { openPostgresStorage } from './postgres.js';
import type { Storage } from './types.js';

export type { Storage } from './types.js';
export { openSqliteStorage } from './sqlite.js';
export { openPostgresStorage, redactUrl } from './postgres.js';

type SqliteConfig = Extract<StorageConfig, { driver: 'sqlite' }>;
type PostgresConfig = Extract<StorageConfig, { driver: 'postgres' }>;

/** The storage section of the configuration; options with defaults may be left out. */
export type StorageSettings =
  | (Omit<SqliteConfig, 'busy_timeout'> & Partial<Pick<SqliteConfig, 'busy_timeout'>>)
  | (Omit<PostgresConfig, 'pool'> & Partial<Pick<PostgresConfig, 'pool'>>);

export interface OpenStorageOptions {
  /** Errors that happen outside any query (a pooled PostgreSQL connection dropped while idle). */
  onBackgroundError?: (err: Error) => void;
}

export async function openStorage(cfg: StorageSettings, options: OpenStorageOptions = {}): Promise<Storage> {
  switch (cfg.driver) {
    case 'sqlite':
      return openSqliteStorage(cfg.path, cfg.busy_timeout === undefined ? {} : { busyTimeoutMs: cfg.busy_timeout * 1000 });
    case 'postgres':
      return openPostgresStorage(cfg.url, {
        ...(cfg.pool !== undefined && { pool: cfg.pool }),
        ...(cfg.schema !== undefined && { schema: cfg.schema }),
        ...(options.onBackgroundError !== undefined && { onIdleError: options.onBackgroundError }),
      });
    default: {
      // Adding a driver to StorageConfig makes this fail to compile until it is handled here.
      const unknown: never = cfg;
      throw new Error(`unsupported storage driver ${String((unknown as { driver: unknown }).driver)}`);
    }
  }
}
