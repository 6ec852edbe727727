// BlockingStore on any Kysely dialect (XEP-0191). Entries are canonical JID
// strings; a lookup asks for the (at most four) entries that would match a JID
// (XEP-0191 §6), which the primary key answers directly.
import type { Kysely } from 'kysely';
import { blocklistKeysFor, type BlockingStore } from '../types.js';
import type { Database } from './schema.js';
import { prepare } from './prepared.js';

export class SqlBlockingStore implements BlockingStore {
  /** Read at every login (the list is kept while the user is online), compiled once. */
  private readonly listQuery;

  constructor(private readonly db: Kysely<Database>) {
    this.listQuery = prepare(db, (d, p) => d.selectFrom('blocklist').select('jid').where('host', '=', p('host')).where('username', '=', p('username')).orderBy('jid'));
  }

  async list(host: string, username: string): Promise<string[]> {
    const rows = await this.listQuery.execute({ host, username });
    return rows.map((r) => r.jid);
  }

  async block(host: string, username: string, jids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(jids)];
    if (unique.length === 0) return [];
    // ON CONFLICT DO NOTHING ... RETURNING yields only the rows actually inserted.
    const rows = await this.db
      .insertInto('blocklist')
      .values(unique.map((jid) => ({ host, username, jid })))
      .onConflict((oc) => oc.columns(['host', 'username', 'jid']).doNothing())
      .returning('jid')
      .execute();
    const added = new Set(rows.map((r) => r.jid));
    return unique.filter((j) => added.has(j));
  }

  async unblock(host: string, username: string, jids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(jids)];
    if (unique.length === 0) return [];
    const rows = await this.db
      .deleteFrom('blocklist')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('jid', 'in', unique)
      .returning('jid')
      .execute();
    const removed = new Set(rows.map((r) => r.jid));
    return unique.filter((j) => removed.has(j));
  }

  async unblockAll(host: string, username: string): Promise<string[]> {
    const rows = await this.db.deleteFrom('blocklist').where('host', '=', host).where('username', '=', username).returning('jid').execute();
    return rows.map((r) => r.jid).sort();
  }

  async isBlocked(host: string, username: string, jid: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('blocklist')
      .select('jid')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('jid', 'in', blocklistKeysFor(jid))
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}
