// The offline module's own table (XEP-0160): messages kept as XML text in
// arrival order. Delivery reads them oldest first and removes each one only
// after it was handed to an open connection, so a session that ends halfway
// leaves the rest for the next login.
import type { Generated, Kysely } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';

/** XEP-0160: one message kept for a user who had no available resource. */
export interface OfflineMessage {
  /** Increases with arrival order for one user; opaque otherwise. */
  id: string;
  /** The whole message stanza, serialised as XML. */
  stanza: string;
  storedAt: Date;
}

export interface OfflineStore {
  /**
   * Appends a message unless the user already has `limit` stored (XEP-0160 §2: a full queue
   * means service-unavailable); returns whether it was stored. Throws for an unknown account.
   */
  push(host: string, username: string, stanza: string, limit: number): Promise<boolean>;
  /** The oldest `limit` stored messages, oldest first (nothing is removed). */
  list(host: string, username: string, limit: number): Promise<OfflineMessage[]>;
  /** Removes these messages; returns how many were still there (each is removed by one call only). */
  remove(host: string, username: string, ids: readonly string[]): Promise<number>;
  count(host: string, username: string): Promise<number>;
}

interface OfflineTables {
  offline_messages: {
    /** Assigned by the database, increasing. */
    id: Generated<number>;
    host: string;
    username: string;
    /** The message stanza as XML text. */
    stanza: string;
    /** ISO 8601, UTC. */
    stored_at: string;
  };
}

/**
 * The table existed before the module owned it (central migration 0002 created it, and still
 * does on a new database), so the first migration only creates what is missing.
 */
export function offlineMigrations(dialect: SqlHandle['dialect']): Record<string, Migration> {
  return {
    '0001_offline_messages': {
      async up(db: Kysely<unknown>): Promise<void> {
        // The id gives the delivery order. SQLite: an INTEGER PRIMARY KEY is the rowid, always
        // above every existing row's; PostgreSQL: an identity column.
        await db.schema
          .createTable('offline_messages')
          .ifNotExists()
          .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey(),
          )
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('stanza', 'text', (c) => c.notNull())
          .addColumn('stored_at', 'text', (c) => c.notNull())
          // Messages go with their account.
          .addForeignKeyConstraint('offline_messages_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
            fk.onDelete('cascade'),
          )
          .execute();
        await db.schema.createIndex('offline_messages_user_idx').ifNotExists().on('offline_messages').columns(['host', 'username', 'id']).execute();
      },
    },
  };
}

export class SqlOfflineStore implements OfflineStore {
  private constructor(private readonly db: Kysely<OfflineTables>) {}

  /** Brings the table up to date and returns the store. */
  static async open(sql: SqlHandle): Promise<SqlOfflineStore> {
    await sql.migrate('offline', offlineMigrations(sql.dialect));
    return new SqlOfflineStore(sql.db<OfflineTables>());
  }

  async push(host: string, username: string, stanza: string, limit: number): Promise<boolean> {
    if (limit <= 0) return false;
    return this.db.transaction().execute(async (trx) => {
      // Counting inside the transaction: on SQLite (one connection, serialised
      // transactions) the limit is exact; on PostgreSQL concurrent pushes can at
      // worst overshoot it by the number of concurrent senders.
      const row = await trx
        .selectFrom('offline_messages')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(row?.n ?? 0) >= limit) return false;
      await trx.insertInto('offline_messages').values({ host, username, stanza, stored_at: new Date().toISOString() }).execute();
      return true;
    });
  }

  async list(host: string, username: string, limit: number): Promise<OfflineMessage[]> {
    const rows = await this.db
      .selectFrom('offline_messages')
      .select(['id', 'stanza', 'stored_at'])
      .where('host', '=', host)
      .where('username', '=', username)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: String(r.id), stanza: r.stanza, storedAt: new Date(r.stored_at) }));
  }

  async remove(host: string, username: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db
      .deleteFrom('offline_messages')
      .where('host', '=', host)
      .where('username', '=', username)
      .where(
        'id',
        'in',
        ids.map((id) => Number(id)),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async count(host: string, username: string): Promise<number> {
    const row = await this.db
      .selectFrom('offline_messages')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
