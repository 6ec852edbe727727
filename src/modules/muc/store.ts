// The MUC module's own tables: persistent rooms (XEP-0045 §10.2
// muc#roomconfig_persistentroom) with their configuration, subject and occupant-id
// key, their affiliations, and their messages (the room archive, kept with the
// room's stanza ids so that XEP-0313 queries at the room JID can read it; a
// moderated message stays as a tombstone, XEP-0425 §5).
//
// An affiliation of a local account is tied to the account row, so that deleting
// the account deletes its affiliations; a room goes with its affiliations and
// messages.
import type { Kysely, Migration } from 'kysely';
import type { SqlHandle } from '../../storage/sql/owned.js';
import type { AffiliationRecord } from './roles.js';

export interface StoredRoom {
  /** The room's localpart. */
  name: string;
  /** RoomConfig as JSON. */
  config: string;
  subject: string;
  subjectFrom: string;
  secret: string;
  affiliations: Map<string, AffiliationRecord>;
}

export interface StoredMessage {
  id: string;
  stamp: number;
  /** The sender's real full JID. */
  sender: string;
  /** The message as broadcast (XML, no 'to'). */
  xml: string;
}

interface MucTables {
  muc_rooms: {
    service: string;
    name: string;
    config: string;
    subject: string;
    subject_from: string;
    secret: string;
    updated_at: string;
  };
  muc_affiliations: {
    service: string;
    name: string;
    jid: string;
    affiliation: string;
    nick: string | null;
    reason: string | null;
    account_host: string | null;
    account_user: string | null;
  };
  muc_messages: {
    service: string;
    name: string;
    id: string;
    stamp: number;
    sender: string;
    xml: string;
    retracted: number;
  };
  accounts: { host: string; username: string };
}

export function mucMigrations(): Record<string, Migration> {
  return {
    '0001_muc_rooms': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('muc_rooms')
          .addColumn('service', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('config', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('subject_from', 'text', (c) => c.notNull())
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('muc_rooms_pk', ['service', 'name'])
          .execute();
        await db.schema
          .createTable('muc_affiliations')
          .addColumn('service', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('jid', 'text', (c) => c.notNull())
          .addColumn('affiliation', 'text', (c) => c.notNull())
          .addColumn('nick', 'text')
          .addColumn('reason', 'text')
          // Set when the JID is an account of this server: the affiliation goes with the account.
          .addColumn('account_host', 'text')
          .addColumn('account_user', 'text')
          .addPrimaryKeyConstraint('muc_affiliations_pk', ['service', 'name', 'jid'])
          .addForeignKeyConstraint('muc_affiliations_room_fk', ['service', 'name'], 'muc_rooms', ['service', 'name'], (fk) => fk.onDelete('cascade'))
          .addForeignKeyConstraint('muc_affiliations_account_fk', ['account_host', 'account_user'], 'accounts', ['host', 'username'], (fk) =>
            fk.onDelete('cascade'),
          )
          .execute();
        await db.schema
          .createTable('muc_messages')
          .addColumn('service', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('stamp', 'bigint', (c) => c.notNull())
          .addColumn('sender', 'text', (c) => c.notNull())
          .addColumn('xml', 'text', (c) => c.notNull())
          .addColumn('retracted', 'integer', (c) => c.notNull().defaultTo(0))
          .addPrimaryKeyConstraint('muc_messages_pk', ['service', 'name', 'id'])
          .addForeignKeyConstraint('muc_messages_room_fk', ['service', 'name'], 'muc_rooms', ['service', 'name'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('muc_messages_time_idx').on('muc_messages').columns(['service', 'name', 'stamp']).execute();
      },
    },
  };
}

export class MucStore {
  private constructor(private readonly db: Kysely<MucTables>) {}

  static async open(sql: SqlHandle): Promise<MucStore> {
    await sql.migrate('muc', mucMigrations());
    return new MucStore(sql.db<MucTables>());
  }

  /** The service's persistent rooms with their affiliations. */
  async rooms(service: string): Promise<StoredRoom[]> {
    const rows = await this.db.selectFrom('muc_rooms').selectAll().where('service', '=', service).orderBy('name').execute();
    const affs = await this.db.selectFrom('muc_affiliations').selectAll().where('service', '=', service).execute();
    const byRoom = new Map<string, Map<string, AffiliationRecord>>();
    for (const a of affs) {
      let m = byRoom.get(a.name);
      if (!m) byRoom.set(a.name, (m = new Map()));
      const rec: AffiliationRecord = { affiliation: a.affiliation as AffiliationRecord['affiliation'] };
      if (a.nick !== null) rec.nick = a.nick;
      if (a.reason !== null) rec.reason = a.reason;
      m.set(a.jid, rec);
    }
    return rows.map((r) => ({
      name: r.name,
      config: r.config,
      subject: r.subject,
      subjectFrom: r.subject_from,
      secret: r.secret,
      affiliations: byRoom.get(r.name) ?? new Map(),
    }));
  }

  /** Creates or updates a room row; with `affiliations`, replaces all of them (a room just made persistent). */
  async saveRoom(service: string, room: Omit<StoredRoom, 'affiliations'>, affiliations?: Map<string, AffiliationRecord>, hosts: readonly string[] = []): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const values = { config: room.config, subject: room.subject, subject_from: room.subjectFrom, secret: room.secret, updated_at: new Date().toISOString() };
      const updated = await trx.updateTable('muc_rooms').set(values).where('service', '=', service).where('name', '=', room.name).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) await trx.insertInto('muc_rooms').values({ service, name: room.name, ...values }).execute();
      if (!affiliations) return;
      await trx.deleteFrom('muc_affiliations').where('service', '=', service).where('name', '=', room.name).execute();
      for (const [jid, rec] of affiliations) await MucStore.putAffiliation(trx, service, room.name, jid, rec, hosts);
    });
  }

  async deleteRoom(service: string, name: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('muc_messages').where('service', '=', service).where('name', '=', name).execute();
      await trx.deleteFrom('muc_affiliations').where('service', '=', service).where('name', '=', name).execute();
      await trx.deleteFrom('muc_rooms').where('service', '=', service).where('name', '=', name).execute();
    });
  }

  async setAffiliation(service: string, name: string, jid: string, rec: AffiliationRecord | undefined, hosts: readonly string[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('muc_affiliations').where('service', '=', service).where('name', '=', name).where('jid', '=', jid).execute();
      if (rec) await MucStore.putAffiliation(trx, service, name, jid, rec, hosts);
    });
  }

  private static async putAffiliation(db: Kysely<MucTables>, service: string, name: string, jid: string, rec: AffiliationRecord, hosts: readonly string[]): Promise<void> {
    let accountHost: string | null = null;
    let accountUser: string | null = null;
    const at = jid.indexOf('@');
    if (at > 0 && hosts.includes(jid.slice(at + 1))) {
      const host = jid.slice(at + 1);
      const user = jid.slice(0, at);
      const exists = await db.selectFrom('accounts').select('username').where('host', '=', host).where('username', '=', user).executeTakeFirst();
      if (exists) {
        accountHost = host;
        accountUser = user;
      }
    }
    await db
      .insertInto('muc_affiliations')
      .values({ service, name, jid, affiliation: rec.affiliation, nick: rec.nick ?? null, reason: rec.reason ?? null, account_host: accountHost, account_user: accountUser })
      .execute();
  }

  async addMessage(service: string, name: string, m: StoredMessage): Promise<void> {
    await this.db.insertInto('muc_messages').values({ service, name, id: m.id, stamp: m.stamp, sender: m.sender, xml: m.xml, retracted: 0 }).execute();
  }

  /** The newest `limit` messages that are not retracted, oldest first. */
  async recent(service: string, name: string, limit: number): Promise<StoredMessage[]> {
    if (limit <= 0) return [];
    const rows = await this.db
      .selectFrom('muc_messages')
      .select(['id', 'stamp', 'sender', 'xml'])
      .where('service', '=', service)
      .where('name', '=', name)
      .where('retracted', '=', 0)
      .orderBy('stamp', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map((r) => ({ id: r.id, stamp: Number(r.stamp), sender: r.sender, xml: r.xml }));
  }

  /** The archived message with this id, retracted or not. */
  async message(service: string, name: string, id: string): Promise<(StoredMessage & { retracted: boolean }) | undefined> {
    const r = await this.db.selectFrom('muc_messages').selectAll().where('service', '=', service).where('name', '=', name).where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, stamp: Number(r.stamp), sender: r.sender, xml: r.xml, retracted: r.retracted !== 0 };
  }

  /** XEP-0425 §5: the message becomes its tombstone. */
  async retract(service: string, name: string, id: string, tombstoneXml: string): Promise<boolean> {
    const r = await this.db
      .updateTable('muc_messages')
      .set({ xml: tombstoneXml, retracted: 1 })
      .where('service', '=', service)
      .where('name', '=', name)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}
