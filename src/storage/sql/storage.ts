// A Storage over one Kysely instance; the driver-specific openers (sqlite.ts,
// postgres.ts) only set up the connection and run the migrations.
import type { Kysely } from 'kysely';
import type { Storage } from '../types.js';
import { SqlAccountStore } from './accounts.js';
import { SqlRosterStore } from './roster.js';
import { SqlVCardStore } from './vcard.js';
import { SqlBlockingStore } from './blocking.js';
import { SqlLegacySecretStore } from './legacy-secrets.js';
import { SqlTokenStore } from './tokens.js';
import type { Database } from './schema.js';
import type { SqlDialect } from './migrations.js';
import { sqlHandle } from './owned.js';

export function createSqlStorage(db: Kysely<Database>, dialect: SqlDialect): Storage {
  let closing: Promise<void> | undefined;
  return {
    accounts: new SqlAccountStore(db),
    legacySecrets: new SqlLegacySecretStore(db),
    tokens: new SqlTokenStore(db),
    roster: new SqlRosterStore(db),
    vcard: new SqlVCardStore(db),
    blocking: new SqlBlockingStore(db),
    sql: sqlHandle(db as Kysely<unknown>, dialect),
    close(): Promise<void> {
      closing ??= db.destroy();
      return closing;
    },
  };
}
