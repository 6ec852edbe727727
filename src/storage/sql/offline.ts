// OfflineStore on any Kysely dialect (XEP-0160). Messages are kept as XML text
// in arrival order; delivery takes them out in one statement, so two sessions
// becoming available at once never both get the same message.
import type { Kysely } from 'kysely';
import type { OfflineMessage, OfflineStore } from '../types.js';
import type { Database } from './schema.js';

export class SqlOfflineStore implements OfflineStore {
  constructor(private readonly db: Kysely<Database>) {}

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
      await trx
        .insertInto('offline_messages')
        .values({ host, username, stanza, stored_at: new Date().toISOString() })
        .execute();
      return true;
    });
  }

  async take(host: string, username: string): Promise<OfflineMessage[]> {
    // DELETE ... RETURNING (SQLite ≥ 3.35, PostgreSQL): a row is returned to exactly one caller.
    const rows = await this.db
      .deleteFrom('offline_messages')
      .where('host', '=', host)
      .where('username', '=', username)
      .returning(['id', 'stanza', 'stored_at'])
      .execute();
    // RETURNING gives no order guarantee.
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    return rows.map((r) => ({ id: String(r.id), stanza: r.stanza, storedAt: new Date(r.stored_at) }));
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
