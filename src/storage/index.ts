// Opens the storage backend the configuration names.
import type { StorageConfig } from '../config/schema.js';
import { openSqliteStorage } from './sqlite.js';
import type { Storage } from './types.js';

export type { Storage } from './types.js';
export { openSqliteStorage } from './sqlite.js';

/** The storage section of the configuration; options with defaults may be left out. */
export type StorageSettings = Omit<StorageConfig, 'busy_timeout'> & Partial<Pick<StorageConfig, 'busy_timeout'>>;

export async function openStorage(cfg: StorageSettings): Promise<Storage> {
  switch (cfg.driver) {
    case 'sqlite':
      return openSqliteStorage(cfg.path, cfg.busy_timeout === undefined ? {} : { busyTimeoutMs: cfg.busy_timeout * 1000 });
    default: {
      // Adding a driver to StorageConfig (e.g. 'postgres') makes this fail to compile until it is handled here.
      const unknown: never = cfg.driver;
      throw new Error(`unsupported storage driver ${String(unknown)}`);
    }
  }
}
