// The message archive's own tables (XEP-0313). One row per archive (an account)
// with its message count and XEP-0441 preferences; one row per archived message,
// ordered by (ts, seq). Indexes serve what clients ask most: the latest messages
// with one contact, a page anywhere in the archive, a message by its archive id.
// Archives go with their account (foreign keys, cascading).
import { randomBytes } from 'node:crypto';
import { sql, type Generated, type Kysely, type SelectQueryBuilder } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';
import type { ArchivedMessage, ArchiveRange, ArchiveReader } from './archive.js';

/** XEP-0441 §2.1.1: the default for JIDs in neither list. */
export type PrefDefault = 'always' | 'never' | 'roster';

/** XEP-0441 §2: an account's archiving preferences. */
export interface Prefs {
  /** Undefined: the server's default (config mam.default). */
  default: PrefDefault | undefined;
  always: string[];
  never: string[];
}

/** A message to archive. */
export interface NewMessage {
  /** The other party (bare JID string, normalised), the owner's own for a message to self. */
  withBare: string;
  withResource: string;
  /** The stanza as XML (xml/stored.ts). */
  stanza: string;
  /** When it was archived (ms); the store keeps timestamps from going backwards. Default: now. */
  ts?: number;
}

interface MamTables {
  mam_archives: {
    archive: Generated<number>;
    host: string;
    username: string;
    /** How many messages the archive holds (kept with every insert and delete). */
    messages: Generated<number>;
    pref_default: string | null;
    /** JSON arrays of JID strings. */
    pref_always: Generated<string>;
    pref_never: Generated<string>;
  };
  mam_messages: {
    seq: Generated<number>;
    archive: number;
    id: string;
    ts: number;
    with_bare: string;
    with_resource: string;
    stanza: string;
  };
}

export function mamMigrations(dialect: SqlHandle['dialect']): Record<string, Migration> {
  const serial = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    '0001_archive': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('mam_archives')
          .addColumn('archive', serial, (c) => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey()))
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('messages', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('pref_default', 'text')
          .addColumn('pref_always', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('pref_never', 'text', (c) => c.notNull().defaultTo('[]'))
          .addUniqueConstraint('mam_archives_owner', ['host', 'username'])
          // Account deletion deletes the archive (and, below, its messages).
          .addForeignKeyConstraint('mam_archives_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
        // The seq is the archive order among equal timestamps. SQLite: an INTEGER PRIMARY KEY
        // (the rowid), above every existing row's; PostgreSQL: an identity column.
        await db.schema
          .createTable('mam_messages')
          .addColumn('seq', serial, (c) => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey()))
          .addColumn('archive', serial, (c) => c.notNull().references('mam_archives.archive').onDelete('cascade'))
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('ts', serial, (c) => c.notNull())
          .addColumn('with_bare', 'text', (c) => c.notNull())
          .addColumn('with_resource', 'text', (c) => c.notNull())
          .addColumn('stanza', 'text', (c) => c.notNull())
          .execute();
        // A page of the whole archive, time bounds, retention (oldest first).
        await db.schema.createIndex('mam_messages_time').on('mam_messages').columns(['archive', 'ts', 'seq']).execute();
        // A page with one contact: "the last 50 with bob" reads 51 index entries.
        await db.schema.createIndex('mam_messages_with').on('mam_messages').columns(['archive', 'with_bare', 'ts', 'seq']).execute();
        // after-id, before-id, ids, RSM after/before.
        await db.schema.createIndex('mam_messages_id').unique().on('mam_messages').columns(['archive', 'id']).execute();
      },
    },
  };
}

/** The archive's tables for `shoal export`/`import`/`migrate` (registered in modules/data.ts); both keys are identities. */
export const mamData: DataOwner = ownedData('mam', mamMigrations, [
  { name: 'mam_archives', key: ['archive'], identity: 'archive' },
  { name: 'mam_messages', key: ['seq'], identity: 'seq' },
]);

/** XEP-0313 §3 / XEP-0359 §7: unique in the archive and unpredictable (72 random bits). */
export function newArchiveId(): string {
  return randomBytes(9).toString('base64url');
}

/** One archive of the store: what queries read. */
export class SqlArchive implements ArchiveReader {
  constructor(
    private readonly db: Kysely<MamTables>,
    /** The archive's key; undefined when the account has never had one (then it is empty). */
    private readonly archive: number | undefined,
  ) {}

  private select() {
    return this.db.selectFrom('mam_messages').select(['seq', 'id', 'ts', 'with_bare', 'with_resource', 'stanza']);
  }

  async byIds(ids: readonly string[]): Promise<ArchivedMessage[]> {
    if (this.archive === undefined || ids.length === 0) return [];
    const rows = await this.select().where('archive', '=', this.archive).where('id', 'in', [...ids]).execute();
    return rows.map(toMessage);
  }

  async page(range: ArchiveRange, limit: number, fromEnd: boolean, offset?: number): Promise<ArchivedMessage[]> {
    if (this.archive === undefined || limit <= 0) return [];
    const dir = fromEnd ? 'desc' : 'asc';
    let q = filtered(this.select(), this.archive, range).orderBy('ts', dir).orderBy('seq', dir).limit(limit);
    if (!fromEnd && offset !== undefined && offset > 0) q = q.offset(offset);
    return (await q.execute()).map(toMessage);
  }

  async count(range: ArchiveRange, cap: number): Promise<number | undefined> {
    if (this.archive === undefined) return 0;
    // Counts at most cap + 1 index entries: the cost is bounded whatever the archive's size.
    const within = filtered(this.db.selectFrom('mam_messages').select('seq'), this.archive, range).limit(cap + 1);
    const row = await this.db
      .selectFrom(within.as('w'))
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const n = Number(row?.n ?? 0);
    return n > cap ? undefined : n;
  }

  async total(): Promise<number> {
    if (this.archive === undefined) return 0;
    const row = await this.db.selectFrom('mam_archives').select('messages').where('archive', '=', this.archive).executeTakeFirst();
    return Number(row?.messages ?? 0);
  }

  async bounds(): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined> {
    const [first] = await this.page({}, 1, false);
    const [last] = await this.page({}, 1, true);
    return first && last ? { first, last } : undefined;
  }
}

type Row = { seq: number; id: string; ts: number; with_bare: string; with_resource: string; stanza: string };

function toMessage(r: Row): ArchivedMessage {
  return { seq: Number(r.seq), id: r.id, ts: Number(r.ts), withBare: r.with_bare, withResource: r.with_resource, stanza: r.stanza };
}

/** The range's conditions, written so SQLite walks one of the indexes (row values for positions). */
function filtered<O>(q: SelectQueryBuilder<MamTables, 'mam_messages', O>, archive: number, r: ArchiveRange): SelectQueryBuilder<MamTables, 'mam_messages', O> {
  q = q.where('archive', '=', archive);
  if (r.with) {
    q = q.where('with_bare', '=', r.with.bare);
    if (r.with.resource !== undefined) q = q.where('with_resource', '=', r.with.resource);
  }
  if (r.start !== undefined) q = q.where('ts', '>=', r.start);
  if (r.end !== undefined) q = q.where('ts', '<=', r.end);
  if (r.after) q = q.where(sql<boolean>`(ts, seq) > (${r.after.ts}, ${r.after.seq})`);
  if (r.before) q = q.where(sql<boolean>`(ts, seq) < (${r.before.ts}, ${r.before.seq})`);
  return q;
}

/** An append waiting for its transaction (SqlMamStore.append). */
interface QueuedAppend {
  host: string;
  username: string;
  rows: { id: string; ts: number; with_bare: string; with_resource: string; stanza: string }[];
  done(): void;
  failed(err: unknown): void;
}

/** An archive with its message count, for the retention job. */
export interface ArchiveSize {
  archive: number;
  host: string;
  username: string;
  messages: number;
}

export class SqlMamStore {
  /** The latest timestamp given out: a clock that steps back does not reorder the archive. */
  private lastTs = 0;

  private constructor(private readonly db: Kysely<MamTables>) {}

  /** Brings the tables up to date and returns the store. */
  static async open(handle: SqlHandle): Promise<SqlMamStore> {
    await handle.migrate('mam', mamMigrations(handle.dialect));
    const store = new SqlMamStore(handle.db<MamTables>());
    const row = await store.db.selectFrom('mam_messages').select((eb) => eb.fn.max('ts').as('ts')).executeTakeFirst();
    store.lastTs = Number(row?.ts ?? 0);
    return store;
  }

  private async archiveKey(host: string, username: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('mam_archives').select('archive').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return row === undefined ? undefined : Number(row.archive);
  }

  /** The account's archive, for queries (an account that never archived anything has an empty one). */
  async reader(host: string, username: string): Promise<SqlArchive> {
    return new SqlArchive(this.db, await this.archiveKey(host, username));
  }

  /** The timestamp of a message archived now (or at `ts`): never before the last one. */
  private stamp(ts = Date.now()): number {
    this.lastTs = Math.max(this.lastTs, ts);
    return this.lastTs;
  }

  /** Appends waiting for the next write (see append()). */
  private queued: QueuedAppend[] = [];
  private flushing = false;

  /**
   * Archives messages for an account, in order; resolves with their archive ids once they are
   * stored. Appends made while the event loop handles one batch of input are written together,
   * in the order they were made, in one transaction: a transaction per message would hold the
   * one SQLite connection (and cost a commit) for every copy, and every other query would wait
   * behind it. Rejects for an unknown account (a foreign key error) and when the database fails;
   * one failing append does not fail the others written with it.
   */
  append(host: string, username: string, messages: readonly NewMessage[]): Promise<string[]> {
    if (messages.length === 0) return Promise.resolve([]);
    const rows = messages.map((m) => ({ id: newArchiveId(), ts: this.stamp(m.ts), with_bare: m.withBare, with_resource: m.withResource, stanza: m.stanza }));
    return new Promise((resolve, reject) => {
      this.queued.push({ host, username, rows, done: () => resolve(rows.map((r) => r.id)), failed: reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Writes what is queued, then what was queued meanwhile, until nothing is left. */
  private async flush(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const batch = this.queued;
        this.queued = [];
        try {
          await this.db.transaction().execute(async (trx) => {
            for (const a of batch) await SqlMamStore.write(trx, a);
          });
          for (const a of batch) a.done();
        } catch {
          // One bad append (e.g. an account deleted meanwhile) must not lose the others: each alone.
          for (const a of batch) {
            try {
              await this.db.transaction().execute((trx) => SqlMamStore.write(trx, a));
              a.done();
            } catch (err) {
              a.failed(err);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private static async write(trx: Kysely<MamTables>, a: QueuedAppend): Promise<void> {
    const { archive } = await trx
      .insertInto('mam_archives')
      .values({ host: a.host, username: a.username, messages: a.rows.length })
      .onConflict((oc) => oc.columns(['host', 'username']).doUpdateSet((eb) => ({ messages: eb('mam_archives.messages', '+', a.rows.length) })))
      .returning('archive')
      .executeTakeFirstOrThrow();
    // SQLite limits the variables of one statement; 6 per row.
    for (let i = 0; i < a.rows.length; i += 150) {
      await trx
        .insertInto('mam_messages')
        .values(a.rows.slice(i, i + 150).map((r) => ({ ...r, archive: Number(archive) })))
        .execute();
    }
  }

  async getPrefs(host: string, username: string): Promise<Prefs> {
    const row = await this.db
      .selectFrom('mam_archives')
      .select(['pref_default', 'pref_always', 'pref_never'])
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return {
      default: (row?.pref_default ?? undefined) as PrefDefault | undefined,
      always: row ? (JSON.parse(row.pref_always) as string[]) : [],
      never: row ? (JSON.parse(row.pref_never) as string[]) : [],
    };
  }

  /** Stores the preferences. Throws for an unknown account. */
  async setPrefs(host: string, username: string, prefs: Prefs): Promise<void> {
    const values = { pref_default: prefs.default ?? null, pref_always: JSON.stringify(prefs.always), pref_never: JSON.stringify(prefs.never) };
    await this.db
      .insertInto('mam_archives')
      .values({ host, username, ...values })
      .onConflict((oc) => oc.columns(['host', 'username']).doUpdateSet(values))
      .execute();
  }

  /** How many messages the account's archive holds. */
  async size(host: string, username: string): Promise<number> {
    const row = await this.db.selectFrom('mam_archives').select('messages').where('host', '=', host).where('username', '=', username).executeTakeFirst();
    return Number(row?.messages ?? 0);
  }

  /** Archives in key order after `after`, `limit` at a time (the retention job walks them). */
  async archives(after: number, limit: number): Promise<ArchiveSize[]> {
    const rows = await this.db
      .selectFrom('mam_archives')
      .select(['archive', 'host', 'username', 'messages'])
      .where('archive', '>', after)
      .orderBy('archive')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ archive: Number(r.archive), host: r.host, username: r.username, messages: Number(r.messages) }));
  }

  /**
   * Deletes up to `limit` of the archive's oldest messages, those archived before `before` (ms)
   * when given: always from the start, so no gap opens in the archive (XEP-0313 §3.2).
   * Returns how many were deleted.
   */
  async deleteOldest(archive: number, limit: number, before?: number): Promise<number> {
    if (limit <= 0) return 0;
    return this.db.transaction().execute(async (trx) => {
      let oldest = trx.selectFrom('mam_messages').select('seq').where('archive', '=', archive);
      if (before !== undefined) oldest = oldest.where('ts', '<', before);
      const doomed = oldest.orderBy('ts').orderBy('seq').limit(limit);
      const result = await trx.deleteFrom('mam_messages').where('seq', 'in', doomed).executeTakeFirst();
      const n = Number(result.numDeletedRows);
      if (n > 0) {
        await trx
          .updateTable('mam_archives')
          .set((eb) => ({ messages: eb('messages', '-', n) }))
          .where('archive', '=', archive)
          .execute();
      }
      return n;
    });
  }

  /**
   * Deletes one message by its archive id (a message the account refused after it was archived:
   * XEP-0313 §7.1, it must not stay in the archive); false when it is not there.
   */
  async remove(host: string, username: string, id: string): Promise<boolean> {
    const archive = await this.archiveKey(host, username);
    if (archive === undefined) return false;
    return this.db.transaction().execute(async (trx) => {
      const result = await trx.deleteFrom('mam_messages').where('archive', '=', archive).where('id', '=', id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      await trx
        .updateTable('mam_archives')
        .set((eb) => ({ messages: eb('messages', '-', 1) }))
        .where('archive', '=', archive)
        .execute();
      return true;
    });
  }

  /**
   * Deletes an account's messages archived before `before` (all without it), `batch` per
   * transaction, calling `pause` between batches (to let other work run). Returns how many.
   */
  async purge(host: string, username: string, before?: number, batch = 1000, pause?: () => Promise<void>): Promise<number> {
    const archive = await this.archiveKey(host, username);
    if (archive === undefined) return 0;
    let total = 0;
    for (;;) {
      const n = await this.deleteOldest(archive, batch, before);
      total += n;
      if (n < batch) return total;
      await pause?.();
    }
  }
}
