// VCardStore on any Kysely dialect (XEP-0054, with the XEP-0153 photo hash kept
// beside the vCard so presence can be stamped without reading the vCard).
import type { Kysely } from 'kysely';
import type { StoredVCard, VCardStore } from '../types.js';
import type { Database } from './schema.js';
import { prepare } from './prepared.js';

export class SqlVCardStore implements VCardStore {
  /** Read at every login (XEP-0153 hash in presence), compiled once. */
  private readonly hashQuery;

  constructor(private readonly db: Kysely<Database>) {
    this.hashQuery = prepare(db, (d, p) => d.selectFrom('vcards').select('avatar_hash').where('host', '=', p('host')).where('username', '=', p('username')));
  }

  async get(host: string, username: string): Promise<StoredVCard | undefined> {
    const row = await this.db
      .selectFrom('vcards')
      .select(['vcard', 'avatar_hash'])
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const stored: StoredVCard = { xml: row.vcard };
    if (row.avatar_hash !== null) stored.avatarHash = row.avatar_hash;
    return stored;
  }

  async set(host: string, username: string, vcard: StoredVCard): Promise<void> {
    const values = { vcard: vcard.xml, avatar_hash: vcard.avatarHash ?? null, updated_at: new Date().toISOString() };
    await this.db
      .insertInto('vcards')
      .values({ host, username, ...values })
      .onConflict((oc) => oc.columns(['host', 'username']).doUpdateSet(values))
      .execute();
  }

  async remove(host: string, username: string): Promise<boolean> {
    const deleted = await this.db.deleteFrom('vcards').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return Number(deleted.numDeletedRows) > 0;
  }

  async avatarHash(host: string, username: string): Promise<string | undefined> {
    const row = await this.hashQuery.first({ host, username });
    return row?.avatar_hash ?? undefined;
  }
}
