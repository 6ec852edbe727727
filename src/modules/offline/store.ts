// The offline module's own table (XEP-0160): messages kept as XML text in
// arrival order. Delivery reads them oldest first and removes each one only
// after it was handed to an open connection, so a session that ends halfway
// leaves the rest for the next login.
import { sql, type Generated, type Kysely } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';
import { prepare } from '../../storage/sql/prepared.js';

/** XEP-0160: one message kept for a user who had no available resource. */
export interface OfflineMessage {
  /** Increases with arrival order for one user; opaque otherwise. */
  id: string;
  /** The whole message stanza, serialised as XML. */
  stanza: string;
  storedAt: Date;
}

/** Who sent a message, as far as the quotas go. */
export interface OfflineSender {
  /** The sender's bare JID. */
  jid: string;
  /** Not a contact of the user (no subscription 'from' or 'both'): held to the strangers' share. */
  stranger: boolean;
}

/** How much one user's offline storage may hold (config `offline`). */
export interface OfflineLimits {
  /** Messages in all (XEP-0160 §2: a full queue means service-unavailable). */
  maxMessages: number;
  /** Bytes of stored XML in all. */
  maxBytes: number;
  /** Messages from one stranger. */
  maxPerStranger: number;
  /** The share of both totals that strangers altogether may use (0..1): the rest is kept for contacts. */
  strangersShare: number;
}

/** Why a message was not stored. */
export type OfflineRefusal = 'full' | 'sender-limit' | 'strangers-limit';

export interface OfflineStore {
  /**
   * Appends a message unless a limit forbids it; returns 'stored' or why not. Throws for an
   * unknown account (and when the database fails).
   */
  push(host: string, username: string, stanza: string, sender: OfflineSender, limits: OfflineLimits): Promise<'stored' | OfflineRefusal>;
  /** The oldest `limit` stored messages, oldest first (nothing is removed). */
  list(host: string, username: string, limit: number): Promise<OfflineMessage[]>;
  /** Removes these messages; returns how many were still there (each is removed by one call only). */
  remove(host: string, username: string, ids: readonly string[]): Promise<number>;
  count(host: string, username: string): Promise<number>;
  totals(): Promise<{ messages: number; bytes: number }>;
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
    /** The sender's bare JID ('' for messages stored before it was kept). */
    sender: Generated<string>;
    /** UTF-8 length of `stanza`. */
    bytes: Generated<number>;
    /** 1 when the sender was not a contact of the user. */
    stranger: Generated<number>;
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
    // Quotas per sender and in bytes (hardening): who sent each message, and its size.
    '0002_sender_and_size': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema.alterTable('offline_messages').addColumn('sender', 'text', (c) => c.notNull().defaultTo('')).execute();
        await db.schema.alterTable('offline_messages').addColumn('bytes', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('offline_messages').addColumn('stranger', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        // Rows stored before: their size from the text (SQLite's length() counts characters, a lower bound).
        await sql`update offline_messages set bytes = length(stanza)`.execute(db);
      },
    },
  };
}

/** The offline module's tables for `shoal export`/`import`/`migrate` (registered in modules/data.ts). */
export const offlineData: DataOwner = ownedData('offline', offlineMigrations, [{ name: 'offline_messages', key: ['id'], identity: 'id' }]);

export class SqlOfflineStore implements OfflineStore {
  /** Read at every login (XEP-0160 §2 step 5), compiled once. */
  private readonly listQuery;

  private constructor(
    private readonly handle: SqlHandle,
    private readonly db: Kysely<OfflineTables>,
  ) {
    this.listQuery = prepare(db, (d, p) =>
      d
        .selectFrom('offline_messages')
        .select(['id', 'stanza', 'stored_at'])
        .where('host', '=', p('host'))
        .where('username', '=', p('username'))
        .orderBy('id')
        .limit(p<number>('limit')),
    );
  }

  /** Brings the table up to date and returns the store. */
  static async open(sql: SqlHandle): Promise<SqlOfflineStore> {
    await sql.migrate('offline', offlineMigrations(sql.dialect));
    return new SqlOfflineStore(sql, sql.db<OfflineTables>());
  }

  async push(host: string, username: string, stanza: string, sender: OfflineSender, limits: OfflineLimits): Promise<'stored' | OfflineRefusal> {
    const bytes = Buffer.byteLength(stanza, 'utf8');
    if (limits.maxMessages <= 0 || bytes > limits.maxBytes) return 'full';
    return this.db.transaction().execute(async (trx) => {
      // Counting inside the transaction, with the account locked on PostgreSQL (SQLite
      // serialises transactions anyway): concurrent pushes never overshoot the limits.
      await this.handle.lockAccount(trx, host, username);
      const row = await trx
        .selectFrom('offline_messages')
        .select((eb) => [
          eb.fn.countAll<number>().as('n'),
          eb.fn.coalesce(eb.fn.sum<number>('bytes'), eb.lit(0)).as('size'),
          eb.fn.coalesce(eb.fn.sum<number>('stranger'), eb.lit(0)).as('strangers'),
          eb.fn.coalesce(eb.fn.sum<number>(eb.case().when('stranger', '=', 1).then(eb.ref('bytes')).else(0).end()), eb.lit(0)).as('strangerSize'),
          eb.fn.coalesce(eb.fn.sum<number>(eb.case().when('sender', '=', sender.jid).then(1).else(0).end()), eb.lit(0)).as('fromSender'),
        ])
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      const n = Number(row?.n ?? 0);
      const size = Number(row?.size ?? 0);
      if (n >= limits.maxMessages || size + bytes > limits.maxBytes) return 'full';
      if (sender.stranger) {
        if (Number(row?.fromSender ?? 0) >= limits.maxPerStranger) return 'sender-limit';
        const shareMessages = Math.floor(limits.maxMessages * limits.strangersShare);
        const shareBytes = Math.floor(limits.maxBytes * limits.strangersShare);
        if (Number(row?.strangers ?? 0) >= shareMessages || Number(row?.strangerSize ?? 0) + bytes > shareBytes) return 'strangers-limit';
      }
      await trx
        .insertInto('offline_messages')
        .values({ host, username, stanza, stored_at: new Date().toISOString(), sender: sender.jid, bytes, stranger: sender.stranger ? 1 : 0 })
        .execute();
      return 'stored' as const;
    });
  }

  async list(host: string, username: string, limit: number): Promise<OfflineMessage[]> {
    const rows = await this.listQuery.execute({ host, username, limit });
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

  async totals(): Promise<{ messages: number; bytes: number }> {
    const row = await this.db
      .selectFrom('offline_messages')
      .select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum('bytes').as('bytes')])
      .executeTakeFirst();
    return { messages: Number(row?.n ?? 0), bytes: Number(row?.bytes ?? 0) };
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
