// The upload module's own table (XEP-0363): one row per slot handed out, with the
// file's name, size and type as the slot request gave them, when the slot's PUT URL
// stops working, and when the file arrived (null until then). A user's quota is the
// sum of the sizes of its stored files and of its slots still open. Rows go with
// their account (the files are removed by whoever deletes it: see removeUserUploads).
import type { Kysely } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';

export interface UploadSlot {
  /** Random, unguessable; also the file's name on disk. */
  id: string;
  host: string;
  username: string;
  filename: string;
  size: number;
  /** As the slot request gave it (XEP-0363 §4), undefined when it gave none. */
  contentType: string | undefined;
  /** ISO 8601, UTC. */
  createdAt: string;
  /** ISO 8601, UTC: the PUT URL works until then. */
  putExpiresAt: string;
  /** ISO 8601, UTC: when the file was stored; undefined while the slot waits for its PUT. */
  storedAt: string | undefined;
}

interface UploadTables {
  upload_files: {
    id: string;
    host: string;
    username: string;
    filename: string;
    size: number;
    content_type: string | null;
    created_at: string;
    put_expires_at: string;
    stored_at: string | null;
  };
}

export function uploadMigrations(): Record<string, Migration> {
  return {
    '0001_upload_files': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('upload_files')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('filename', 'text', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('content_type', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('put_expires_at', 'text', (c) => c.notNull())
          .addColumn('stored_at', 'text')
          .addForeignKeyConstraint('upload_files_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('upload_files_account').on('upload_files').columns(['host', 'username']).execute();
        await db.schema.createIndex('upload_files_stored').on('upload_files').column('stored_at').execute();
        await db.schema.createIndex('upload_files_put_expires').on('upload_files').column('put_expires_at').execute();
      },
    },
  };
}

/** The upload module's table for `shoal export`/`import`/`migrate` (registered in modules/data.ts). */
export const uploadData: DataOwner = ownedData('upload', uploadMigrations, [{ name: 'upload_files', key: ['id'] }]);

type Row = UploadTables['upload_files'];

function fromRow(r: Row): UploadSlot {
  return {
    id: r.id,
    host: r.host,
    username: r.username,
    filename: r.filename,
    size: Number(r.size),
    contentType: r.content_type ?? undefined,
    createdAt: r.created_at,
    putExpiresAt: r.put_expires_at,
    storedAt: r.stored_at ?? undefined,
  };
}

export class SqlUploadStore {
  private constructor(
    private readonly handle: SqlHandle,
    private readonly db: Kysely<UploadTables>,
  ) {}

  /** Brings the table up to date and returns the store. */
  static async open(sql: SqlHandle): Promise<SqlUploadStore> {
    await sql.migrate('upload', uploadMigrations());
    return new SqlUploadStore(sql, sql.db<UploadTables>());
  }

  /**
   * Records a new slot unless the user's stored files and open slots (those whose PUT URL still
   * works at `slot.createdAt`) plus this one would exceed `quota` bytes: then returns the bytes
   * in use. Throws for an unknown account.
   */
  reserve(slot: Omit<UploadSlot, 'storedAt'>, quota: number): Promise<'reserved' | { used: number }> {
    return this.db.transaction().execute(async (trx) => {
      // The quota is checked then written: one user's requests must not interleave (PostgreSQL).
      await this.handle.lockAccount(trx, slot.host, slot.username);
      const row = await trx
        .selectFrom('upload_files')
        .select((eb) => eb.fn.sum<number>('size').as('used'))
        .where('host', '=', slot.host)
        .where('username', '=', slot.username)
        .where((eb) => eb.or([eb('stored_at', 'is not', null), eb('put_expires_at', '>=', slot.createdAt)]))
        .executeTakeFirst();
      const used = Number(row?.used ?? 0);
      if (used + slot.size > quota) return { used };
      await trx
        .insertInto('upload_files')
        .values({
          id: slot.id,
          host: slot.host,
          username: slot.username,
          filename: slot.filename,
          size: slot.size,
          content_type: slot.contentType ?? null,
          created_at: slot.createdAt,
          put_expires_at: slot.putExpiresAt,
          stored_at: null,
        })
        .execute();
      return 'reserved' as const;
    });
  }

  async get(id: string): Promise<UploadSlot | undefined> {
    const r = await this.db.selectFrom('upload_files').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? fromRow(r) : undefined;
  }

  /**
   * Marks the slot's file stored, with the type it was sent with when the slot request gave
   * none; false when it already was stored (a second PUT) or is gone.
   */
  async markStored(id: string, at: string, contentType: string | undefined): Promise<boolean> {
    const set: { stored_at: string; content_type?: string } = { stored_at: at };
    if (contentType !== undefined) set.content_type = contentType;
    const r = await this.db.updateTable('upload_files').set(set).where('id', '=', id).where('stored_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** When the user's oldest stored file was stored (for the retry stamp of a quota error). */
  async oldestStored(host: string, username: string): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('upload_files')
      .select((eb) => eb.fn.min<string>('stored_at').as('t'))
      .where('host', '=', host)
      .where('username', '=', username)
      .where('stored_at', 'is not', null)
      .executeTakeFirst();
    return r?.t ?? undefined;
  }

  /**
   * Up to `limit` slots to delete: files stored before `storedBefore`, and slots never used
   * whose PUT URL expired before `now`.
   */
  async expired(storedBefore: string, now: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('upload_files')
      .select('id')
      .where((eb) => eb.or([eb('stored_at', '<', storedBefore), eb.and([eb('stored_at', 'is', null), eb('put_expires_at', '<', now)])]))
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  /** The ids of every slot of a user. */
  async ofUser(host: string, username: string): Promise<string[]> {
    const rows = await this.db.selectFrom('upload_files').select('id').where('host', '=', host).where('username', '=', username).execute();
    return rows.map((r) => r.id);
  }

  async remove(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await this.db.deleteFrom('upload_files').where('id', 'in', ids).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
