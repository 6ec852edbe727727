// Opens the storage backend the configuration names.
import type { StorageConfig } from '../config/schema.js';
import { openSqliteStorage } from './sqlite.js';
import type { Storage } from './types.js';

export type { Storage } from './types.js';
export { openSqliteStorage } from './sqlite.js';

export async function openStorage(cfg: StorageConfig): Promise<Storage> {
  switch (cfg.driver) {
    case 'sqlite':
      return openSqliteStorage(cfg.path);
    default: {
      // Adding a driver to StorageConfig (e.g. 'postgres') makes this fail to compile until it is handled here.
      const unknown: never = cfg.driver;
      throw new Error(`unsupported storage driver ${String(unknown)}`);
    }
  }
}
