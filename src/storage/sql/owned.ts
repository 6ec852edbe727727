// Tables a feature module owns. A module that keeps data of its own (offline
// messages now; the archive, PEP nodes, rooms later) declares its tables and
// migrations beside its code and brings them up to date at start through this
// handle, instead of adding fields to the central Storage interface. Each owner
// has its own migration table, so owners never see each other's migrations.
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type Transaction } from 'kysely';
import { currentSchema, type SqlDialect } from './migrations.js';

export type { Migration } from 'kysely';
export type { SqlDialect } from './migrations.js';

/** The shared SQL database, as a module that owns tables sees it. */
export interface SqlHandle {
  readonly dialect: SqlDialect;
  /** The connection, typed with the caller's own tables (it must only touch those). */
  db<Tables>(): Kysely<Tables>;
  /**
   * Applies `migrations` (names sort in the order they run; never edit a released one) that
   * `owner` has not applied yet. Throws, after rolling the failed one back, if one fails.
   */
  migrate(owner: string, migrations: Record<string, Migration>): Promise<string[]>;
  /**
   * Inside a transaction: takes the account's row lock, held until the transaction ends, so
   * that check-then-write sequences for one account (a count against a quota, then an insert)
   * never interleave. PostgreSQL runs transactions concurrently (READ COMMITTED: two could both
   * pass the check); SQLite runs one at a time on its one connection, so there it does nothing.
   */
  lockAccount<Tables>(trx: Transaction<Tables>, host: string, username: string): Promise<void>;
}

const OWNER = /^[a-z][a-z0-9_]{0,40}$/;

/** The table Kysely's Migrator records `owner`'s applied migrations in. */
export function ownerMigrationTable(owner: string): string {
  return `shoal_migrations_${owner}`;
}

export function sqlHandle(db: Kysely<unknown>, dialect: SqlDialect): SqlHandle {
  return {
    dialect,
    db<Tables>(): Kysely<Tables> {
      return db as unknown as Kysely<Tables>;
    },
    async lockAccount(trx, host, username) {
      if (dialect !== 'postgres') return;
      // FOR NO KEY UPDATE: concurrent inserts that only reference the account (foreign keys take
      // FOR KEY SHARE) are not blocked; only other lockAccount calls for the same account wait.
      await sql`select 1 from accounts where host = ${host} and username = ${username} for no key update`.execute(trx);
    },
    async migrate(owner, migrations) {
      if (!OWNER.test(owner)) throw new Error(`invalid migration owner ${owner}`);
      const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };
      const schema = await currentSchema(db, dialect);
      const migrator = new Migrator({
        db,
        provider,
        migrationTableName: ownerMigrationTable(owner),
        migrationLockTableName: `shoal_migrations_${owner}_lock`,
        ...(schema !== undefined && { migrationTableSchema: schema }),
      });
      const { error, results } = await migrator.migrateToLatest();
      if (error !== undefined) {
        const failed = results?.find((r) => r.status === 'Error')?.migrationName;
        throw new Error(`database migration ${owner}/${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
  };
}
