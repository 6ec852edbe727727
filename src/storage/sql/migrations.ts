// Schema migrations, run in name order by Kysely's Migrator and recorded in its
// table, so an existing database is brought up to date on start. Every
// statement uses the schema builder; the only difference between the SQL
// dialects here is the name of the binary column type.
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export type SqlDialect = 'sqlite' | 'postgres';

function binaryType(dialect: SqlDialect): 'blob' | 'bytea' {
  return dialect === 'postgres' ? 'bytea' : 'blob';
}

/** All migrations, keyed by name; names sort in the order they must run. Never edit a released one: add another. */
export function migrations(dialect: SqlDialect): Record<string, Migration> {
  const binary = binaryType(dialect);
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('accounts')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('accounts_pk', ['host', 'username'])
          .execute();

        await db.schema
          .createTable('scram_credentials')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addColumn('salt', binary, (c) => c.notNull())
          .addColumn('iterations', 'integer', (c) => c.notNull())
          .addColumn('stored_key', binary, (c) => c.notNull())
          .addColumn('server_key', binary, (c) => c.notNull())
          .addPrimaryKeyConstraint('scram_credentials_pk', ['host', 'username', 'hash'])
          // Credentials never outlive their account. Roster tables carry no such
          // key: AccountStore.remove deletes them explicitly in its transaction.
          .addForeignKeyConstraint('scram_credentials_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
            fk.onDelete('cascade'),
          )
          .execute();

        await db.schema
          .createTable('roster_items')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('jid', 'text', (c) => c.notNull())
          .addColumn('name', 'text')
          .addColumn('subscription', 'text', (c) => c.notNull())
          .addColumn('ask', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('pending_in', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('approved', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('version', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('roster_items_pk', ['host', 'username', 'jid'])
          .execute();

        await db.schema
          .createTable('roster_versions')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('roster_versions_pk', ['host', 'username'])
          .execute();

        await db.schema
          .createTable('roster_changes')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('jid', 'text', (c) => c.notNull())
          .addColumn('removed', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('roster_changes_pk', ['host', 'username', 'version'])
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        for (const table of ['roster_changes', 'roster_versions', 'roster_items', 'scram_credentials', 'accounts']) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    // XEP-0160 offline messages, XEP-0054 vCards, XEP-0191 blocklists. Each row belongs to an
    // account and goes with it (ON DELETE CASCADE), so AccountStore.remove needs no change.
    '0002_offline_vcard_blocking': {
      async up(db: Kysely<unknown>): Promise<void> {
        // The id gives the delivery order. SQLite: an INTEGER PRIMARY KEY is the rowid, always
        // above every existing row's; PostgreSQL: an identity column.
        await db.schema
          .createTable('offline_messages')
          .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey(),
          )
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('stanza', 'text', (c) => c.notNull())
          .addColumn('stored_at', 'text', (c) => c.notNull())
          .addForeignKeyConstraint('offline_messages_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
            fk.onDelete('cascade'),
          )
          .execute();
        await db.schema.createIndex('offline_messages_user_idx').on('offline_messages').columns(['host', 'username', 'id']).execute();

        await db.schema
          .createTable('vcards')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('vcard', 'text', (c) => c.notNull())
          .addColumn('avatar_hash', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('vcards_pk', ['host', 'username'])
          .addForeignKeyConstraint('vcards_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();

        await db.schema
          .createTable('blocklist')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('jid', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('blocklist_pk', ['host', 'username', 'jid'])
          .addForeignKeyConstraint('blocklist_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        for (const table of ['blocklist', 'vcards', 'offline_messages']) await db.schema.dropTable(table).ifExists().execute();
      },
    },
    // CRAM-MD5/DIGEST-MD5 secrets (RFC 2195, RFC 2831) and the hashes of locally issued access
    // tokens. Both belong to an account and go with it (ON DELETE CASCADE).
    '0003_sasl_secrets_tokens': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('legacy_sasl_secrets')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('mechanism', 'text', (c) => c.notNull())
          .addColumn('realm', 'text', (c) => c.notNull())
          .addColumn('variant', 'text', (c) => c.notNull())
          .addColumn('secret', binary, (c) => c.notNull())
          .addPrimaryKeyConstraint('legacy_sasl_secrets_pk', ['host', 'username', 'mechanism', 'realm', 'variant'])
          .addForeignKeyConstraint('legacy_sasl_secrets_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
            fk.onDelete('cascade'),
          )
          .execute();

        await db.schema
          .createTable('auth_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('token_hash', binary, (c) => c.notNull().unique())
          .addColumn('scope', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text')
          .addColumn('revoked_at', 'text')
          .addForeignKeyConstraint('auth_tokens_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('auth_tokens_user_idx').on('auth_tokens').columns(['host', 'username']).execute();
      },
      async down(db: Kysely<unknown>): Promise<void> {
        for (const table of ['auth_tokens', 'legacy_sasl_secrets']) await db.schema.dropTable(table).ifExists().execute();
      },
    },
  };
}

class InCodeMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: SqlDialect) {}
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve(migrations(this.dialect));
  }
}

/**
 * The PostgreSQL schema the tables live in: the current one (the first of the search_path that
 * exists, where unqualified names are created and found); undefined on SQLite, or when no schema
 * of the search_path exists. Kysely's Migrator must be told it: given none, it takes a table of
 * its name in any schema of the database for its own (another Shoal's, in a shared database).
 */
export async function currentSchema<DB>(db: Kysely<DB>, dialect: SqlDialect): Promise<string | undefined> {
  if (dialect !== 'postgres') return undefined;
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  return rows[0]?.schema ?? undefined;
}

/** Applies every pending migration; throws (after rolling the failed one back) if one fails. Returns the names applied. */
export async function migrateToLatest<DB>(db: Kysely<DB>, dialect: SqlDialect): Promise<string[]> {
  const schema = await currentSchema(db, dialect);
  const migrator = new Migrator({ db, provider: new InCodeMigrationProvider(dialect), ...(schema !== undefined && { migrationTableSchema: schema }) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
