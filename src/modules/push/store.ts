// The push module's own table (XEP-0357 §5, §6): the push services each account
// enabled, one row per service JID and node, with the publish-options form the
// client gave kept as XML text. Rows go with their account.
import type { Kysely } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';

/** One enabled push service of an account (XEP-0357 §5). */
export interface PushRegistration {
  /** The XMPP Push Service's JID (the app server). */
  service: string;
  /** The pubsub node on that service. */
  node: string;
  /** The publish-options data form (XEP-0004), serialised as XML; undefined when none was given. */
  options: string | undefined;
}

export interface PushStore {
  /**
   * Enables a service and node for an account, replacing the options of the same service and
   * node (XEP-0357 §5: the last request wins). 'limit' when the account already holds `max`
   * other registrations. Throws for an unknown account (and when the database fails).
   */
  put(host: string, username: string, reg: PushRegistration, max: number): Promise<'stored' | 'limit'>;
  /** The account's registrations, oldest first. */
  list(host: string, username: string): Promise<PushRegistration[]>;
  /** Removes one service and node, or (node undefined) every node of the service (XEP-0357 §6); returns how many. */
  remove(host: string, username: string, service: string, node?: string): Promise<number>;
}

interface PushTables {
  push_registrations: {
    host: string;
    username: string;
    service: string;
    node: string;
    /** The publish-options form as XML text, or null. */
    options: string | null;
    /** ISO 8601, UTC: when it was enabled (or last re-enabled). */
    enabled_at: string;
  };
}

export function pushMigrations(): Record<string, Migration> {
  return {
    '0001_push_registrations': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('push_registrations')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('service', 'text', (c) => c.notNull())
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('options', 'text')
          .addColumn('enabled_at', 'text', (c) => c.notNull())
          // XEP-0357 §5: a service may be enabled more than once, with different nodes.
          .addPrimaryKeyConstraint('push_registrations_pk', ['host', 'username', 'service', 'node'])
          .addForeignKeyConstraint('push_registrations_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
      },
    },
  };
}

/** The push module's tables for `shoal export`/`import`/`migrate` (registered in modules/data.ts). */
export const pushData: DataOwner = ownedData('push', pushMigrations, [{ name: 'push_registrations', key: ['host', 'username', 'service', 'node'] }]);

export class SqlPushStore implements PushStore {
  private constructor(
    private readonly handle: SqlHandle,
    private readonly db: Kysely<PushTables>,
  ) {}

  /** Brings the table up to date and returns the store. */
  static async open(sql: SqlHandle): Promise<SqlPushStore> {
    await sql.migrate('push', pushMigrations());
    return new SqlPushStore(sql, sql.db<PushTables>());
  }

  put(host: string, username: string, reg: PushRegistration, max: number): Promise<'stored' | 'limit'> {
    return this.db.transaction().execute(async (trx) => {
      // The limit is checked then written: one account's puts must not interleave (PostgreSQL).
      await this.handle.lockAccount(trx, host, username);
      const key = trx
        .selectFrom('push_registrations')
        .where('host', '=', host)
        .where('username', '=', username)
        .where('service', '=', reg.service)
        .where('node', '=', reg.node);
      const existing = await key.select('node').executeTakeFirst();
      const values = { options: reg.options ?? null, enabled_at: new Date().toISOString() };
      if (existing) {
        await trx
          .updateTable('push_registrations')
          .set(values)
          .where('host', '=', host)
          .where('username', '=', username)
          .where('service', '=', reg.service)
          .where('node', '=', reg.node)
          .execute();
        return 'stored' as const;
      }
      const row = await trx
        .selectFrom('push_registrations')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(row?.n ?? 0) >= max) return 'limit' as const;
      await trx
        .insertInto('push_registrations')
        .values({ host, username, service: reg.service, node: reg.node, ...values })
        .execute();
      return 'stored' as const;
    });
  }

  async list(host: string, username: string): Promise<PushRegistration[]> {
    const rows = await this.db
      .selectFrom('push_registrations')
      .select(['service', 'node', 'options'])
      .where('host', '=', host)
      .where('username', '=', username)
      .orderBy('enabled_at')
      .orderBy('service')
      .orderBy('node')
      .execute();
    return rows.map((r) => ({ service: r.service, node: r.node, options: r.options ?? undefined }));
  }

  async remove(host: string, username: string, service: string, node?: string): Promise<number> {
    let q = this.db.deleteFrom('push_registrations').where('host', '=', host).where('username', '=', username).where('service', '=', service);
    if (node !== undefined) q = q.where('node', '=', node);
    const result = await q.executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
