// The MUC module's own tables: persistent rooms (XEP-0045 §10.2
// muc#roomconfig_persistentroom) with their configuration, subject and occupant-id
// key, their affiliations, and their messages (the room archive, kept with the
// room's stanza ids so that XEP-0313 queries at the room JID can read it; a
// moderated message stays as a tombstone, XEP-0425 §5).
//
// An affiliation of a local account is tied to the account row, so that deleting
// the account deletes its affiliations; a room goes with its affiliations and
// messages.
import { sql, type Generated, type Kysely, type Migration, type SelectQueryBuilder } from 'kysely';
import type { SqlDialect, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';
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
  /** The sender's nick when it was sent. */
  nick: string;
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
    /** The archive order with stamp (several messages may share a stamp). */
    seq: Generated<number>;
    service: string;
    name: string;
    id: string;
    nick: string;
    stamp: number;
    sender: string;
    xml: string;
    retracted: number;
  };
  accounts: { host: string; username: string };
}

/** The rooms' tables for `shoal export`/`import` (modules/data.ts), in foreign-key order. */
export const mucData: DataOwner = ownedData('muc', mucMigrations, [
  { name: 'muc_rooms', key: ['service', 'name'] },
  { name: 'muc_affiliations', key: ['service', 'name', 'jid'] },
  { name: 'muc_messages', key: ['seq'], identity: 'seq' },
]);

export function mucMigrations(dialect: SqlDialect): Record<string, Migration> {
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
          // SQLite: an INTEGER PRIMARY KEY is the rowid, above every existing row's; PostgreSQL: identity.
          .addColumn('seq', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey(),
          )
          .addColumn('service', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('stamp', 'bigint', (c) => c.notNull())
          .addColumn('nick', 'text', (c) => c.notNull())
          .addColumn('sender', 'text', (c) => c.notNull())
          .addColumn('xml', 'text', (c) => c.notNull())
          .addColumn('retracted', 'integer', (c) => c.notNull().defaultTo(0))
          .addForeignKeyConstraint('muc_messages_room_fk', ['service', 'name'], 'muc_rooms', ['service', 'name'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('muc_messages_id_idx').unique().on('muc_messages').columns(['service', 'name', 'id']).execute();
        // Archive order (XEP-0313 §3.1): by time, then by seq.
        await db.schema.createIndex('muc_messages_time_idx').on('muc_messages').columns(['service', 'name', 'stamp', 'seq']).execute();
      },
    },
  };
}

export class MucStore {
  private constructor(private readonly db: Kysely<MucTables>) {}

  static async open(handle: SqlHandle): Promise<MucStore> {
    await handle.migrate('muc', mucMigrations(handle.dialect));
    return new MucStore(handle.db<MucTables>());
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
    await this.db.insertInto('muc_messages').values({ service, name, id: m.id, stamp: m.stamp, nick: m.nick, sender: m.sender, xml: m.xml, retracted: 0 }).execute();
  }

  /** The newest `limit` messages that are not retracted, oldest first. */
  async recent(service: string, name: string, limit: number): Promise<StoredMessage[]> {
    if (limit <= 0) return [];
    const rows = await this.db
      .selectFrom('muc_messages')
      .select(['id', 'stamp', 'nick', 'sender', 'xml'])
      .where('service', '=', service)
      .where('name', '=', name)
      .where('retracted', '=', 0)
      .orderBy('stamp', 'desc')
      .orderBy('seq', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map((r) => ({ id: r.id, stamp: Number(r.stamp), nick: r.nick, sender: r.sender, xml: r.xml }));
  }

  /** The archived message with this id, retracted or not. */
  async message(service: string, name: string, id: string): Promise<(StoredMessage & { retracted: boolean }) | undefined> {
    const r = await this.db.selectFrom('muc_messages').selectAll().where('service', '=', service).where('name', '=', name).where('id', '=', id).executeTakeFirst();
    return r && { id: r.id, stamp: Number(r.stamp), nick: r.nick, sender: r.sender, xml: r.xml, retracted: r.retracted !== 0 };
  }

  /** A room's archive, for XEP-0313 queries at the room JID. */
  archive(service: string, name: string): RoomArchive {
    return new RoomArchive(this.db, service, name);
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

/** Where a message stands in its room's archive: by time, then by seq (XEP-0313 §3.1). */
export interface RoomArchivePosition {
  readonly ts: number;
  readonly seq: number;
}

/**
 * One archived room message, in the shape the XEP-0313 query code reads archives in (the mam
 * module's ArchivedMessage): for a room, the 'with' filter is the sender's occupant JID.
 */
export interface RoomArchivedMessage extends RoomArchivePosition {
  readonly id: string;
  /** The room's bare JID. */
  readonly withBare: string;
  /** The sender's nick. */
  readonly withResource: string;
  /** The message as broadcast, or its tombstone (XEP-0425 §5), as XML. */
  readonly stanza: string;
}

/** The messages a query selects (the mam module's ArchiveRange). */
export interface RoomArchiveRange {
  readonly with?: { readonly bare: string; readonly resource?: string };
  readonly start?: number;
  readonly end?: number;
  readonly after?: RoomArchivePosition;
  readonly before?: RoomArchivePosition;
}

type MessageRow = { seq: number; id: string; stamp: number; nick: string; xml: string };

/**
 * One room's archive, read the way XEP-0313 queries at the room JID will read it (the same
 * methods as the mam module's ArchiveReader, so its query code can serve rooms too).
 */
export class RoomArchive {
  constructor(
    private readonly db: Kysely<MucTables>,
    private readonly service: string,
    private readonly name: string,
  ) {}

  private get roomJid(): string {
    return `${this.name}@${this.service}`;
  }

  private select() {
    return this.db.selectFrom('muc_messages').select(['seq', 'id', 'stamp', 'nick', 'xml']);
  }

  private toMessage(r: MessageRow): RoomArchivedMessage {
    return { ts: Number(r.stamp), seq: Number(r.seq), id: r.id, withBare: this.roomJid, withResource: r.nick, stanza: r.xml };
  }

  private filtered<O>(q: SelectQueryBuilder<MucTables, 'muc_messages', O>, r: RoomArchiveRange): SelectQueryBuilder<MucTables, 'muc_messages', O> | undefined {
    q = q.where('service', '=', this.service).where('name', '=', this.name);
    if (r.with) {
      // Only the room's own occupants are in its archive.
      if (r.with.bare !== this.roomJid) return undefined;
      if (r.with.resource !== undefined) q = q.where('nick', '=', r.with.resource);
    }
    if (r.start !== undefined) q = q.where('stamp', '>=', r.start);
    if (r.end !== undefined) q = q.where('stamp', '<=', r.end);
    if (r.after) q = q.where(sql<boolean>`(stamp, seq) > (${r.after.ts}, ${r.after.seq})`);
    if (r.before) q = q.where(sql<boolean>`(stamp, seq) < (${r.before.ts}, ${r.before.seq})`);
    return q;
  }

  async byIds(ids: readonly string[]): Promise<RoomArchivedMessage[]> {
    if (ids.length === 0) return [];
    const rows = await this.select().where('service', '=', this.service).where('name', '=', this.name).where('id', 'in', [...ids]).execute();
    return rows.map((r) => this.toMessage(r));
  }

  /** Up to `limit` messages of the range: oldest first from `offset`, or newest first (fromEnd). */
  async page(range: RoomArchiveRange, limit: number, fromEnd: boolean, offset?: number): Promise<RoomArchivedMessage[]> {
    const q0 = this.filtered(this.select(), range);
    if (!q0 || limit <= 0) return [];
    const dir = fromEnd ? 'desc' : 'asc';
    let q = q0.orderBy('stamp', dir).orderBy('seq', dir).limit(limit);
    if (!fromEnd && offset !== undefined && offset > 0) q = q.offset(offset);
    return (await q.execute()).map((r) => this.toMessage(r));
  }

  /** How many messages the range holds, or undefined beyond `cap` (XEP-0059 §2.6 lets it be left out). */
  async count(range: RoomArchiveRange, cap: number): Promise<number | undefined> {
    const within = this.filtered(this.db.selectFrom('muc_messages').select('seq'), range);
    if (!within) return 0;
    const row = await this.db
      .selectFrom(within.limit(cap + 1).as('w'))
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    return n > cap ? undefined : n;
  }

  async total(): Promise<number> {
    const row = await this.db
      .selectFrom('muc_messages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('service', '=', this.service)
      .where('name', '=', this.name)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async bounds(): Promise<{ first: RoomArchivedMessage; last: RoomArchivedMessage } | undefined> {
    const [first] = await this.page({}, 1, false);
    const [last] = await this.page({}, 1, true);
    return first && last ? { first, last } : undefined;
  }
}
