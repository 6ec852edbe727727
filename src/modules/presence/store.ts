// The presence module's own table: subscription requests waiting for a user who
// was offline when they came, kept as sent (RFC 6121 §3.1.3: the contact's server
// delivers the request when the contact next becomes available; extensions such
// as a XEP-0379 pre-authentication token or a <status/> greeting go with it).
// The roster item's pendingIn flag says whether a request is pending; this keeps
// the stanza.
import type { Kysely } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';

/** A stored request larger than this keeps only its type and addresses (one per contact and user). */
export const MAX_STORED_REQUEST_BYTES = 8192;

interface PresenceTables {
  presence_pending_requests: {
    host: string;
    username: string;
    /** The bare JID that asked. */
    jid: string;
    /** The <presence type='subscribe'/> as XML text. */
    stanza: string;
    /** ISO 8601, UTC. */
    received_at: string;
  };
}

export function presenceMigrations(): Record<string, Migration> {
  return {
    '0001_pending_requests': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('presence_pending_requests')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('jid', 'text', (c) => c.notNull())
          .addColumn('stanza', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('presence_pending_requests_pk', ['host', 'username', 'jid'])
          .addForeignKeyConstraint('presence_pending_requests_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
            fk.onDelete('cascade'),
          )
          .execute();
      },
    },
  };
}

/** The presence module's tables for `shoal export`/`import`/`migrate` (registered in modules/data.ts). */
export const presenceData: DataOwner = ownedData('presence', presenceMigrations, [{ name: 'presence_pending_requests', key: ['host', 'username', 'jid'] }]);

export class PendingRequestStore {
  private constructor(private readonly db: Kysely<PresenceTables>) {}

  static async open(sql: SqlHandle): Promise<PendingRequestStore> {
    await sql.migrate('presence', presenceMigrations());
    return new PendingRequestStore(sql.db<PresenceTables>());
  }

  /** Keeps the request `jid` sent to the user (replacing an older one). */
  async put(host: string, username: string, jid: string, stanza: string): Promise<void> {
    const received_at = new Date().toISOString();
    await this.db
      .insertInto('presence_pending_requests')
      .values({ host, username, jid, stanza, received_at })
      .onConflict((oc) => oc.columns(['host', 'username', 'jid']).doUpdateSet({ stanza, received_at }))
      .execute();
  }

  /** The user's stored requests, by the bare JID that sent each. */
  async all(host: string, username: string): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('presence_pending_requests').select(['jid', 'stanza']).where('host', '=', host).where('username', '=', username).execute();
    return new Map(rows.map((r) => [r.jid, r.stanza]));
  }

  async remove(host: string, username: string, jid: string): Promise<void> {
    await this.db.deleteFrom('presence_pending_requests').where('host', '=', host).where('username', '=', username).where('jid', '=', jid).execute();
  }
}
