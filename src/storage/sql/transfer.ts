// Moving a deployment between databases (`shoal export FILE`, `shoal import FILE`),
// e.g. from SQLite to PostgreSQL. Every table of every registered owner (the central
// tables, and each module's own) is streamed as JSON lines, a page of rows at a
// time in primary key order, so memory stays bounded whatever the database holds.
//
// Format, version 1 — one JSON value per line:
//   {"format":"shoal-export","version":1,"created_at":ISO,"dialect":"sqlite",
//    "owners":[{"owner":"core","migrations":["0001_initial",...]},...]}
//   {"table":"accounts","owner":"core","columns":["host","username","created_at"]}
//   {"row":["example.org","alice","2026-01-01T00:00:00.000Z"]}            (values in column order)
//   {"end":"accounts","rows":1}
//   ...                                                                     (every table of every owner)
//   {"end":"shoal-export","tables":12,"rows":345}
// A value is a JSON string, number or null; binary data is {"$b":"<base64>"}, an integer
// beyond 2^53 {"$n":"<decimal>"}. A file without the last line is truncated and refused.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { sql, type Kysely, type Migration, type Transaction } from 'kysely';
import type { Storage } from '../types.js';
import { ownerMigrationTable, type SqlHandle } from './owned.js';
import type { SqlDialect } from './migrations.js';

export const EXPORT_FORMAT = 'shoal-export';
export const EXPORT_VERSION = 1;

/** One table an owner exports. */
export interface DataTable {
  name: string;
  /** Its primary key columns: the export pages through the table in this order. */
  key: readonly string[];
  /** A database-generated integer column (SQLite INTEGER PRIMARY KEY / PostgreSQL identity) whose values are kept. */
  identity?: string;
}

/**
 * Who owns a set of tables, for export, import and `shoal migrate`: the central storage
 * ('core', migrated when the storage opens) or a module (the owner name it gives
 * SqlHandle.migrate). Tables are listed so that a table comes after those its foreign
 * keys reference; owners after 'core'.
 */
export interface DataOwner {
  owner: string;
  /** The table Kysely's Migrator records this owner's applied migrations in. */
  migrationTable: string;
  /** Brings the owner's tables up to date. */
  migrate(sql: SqlHandle): Promise<unknown>;
  tables: readonly DataTable[];
}

/** A module's tables, migrated through SqlHandle.migrate(owner, ...). */
export function ownedData(owner: string, migrations: (dialect: SqlDialect) => Record<string, Migration>, tables: readonly DataTable[]): DataOwner {
  return {
    owner,
    migrationTable: ownerMigrationTable(owner),
    migrate: (handle) => handle.migrate(owner, migrations(handle.dialect)),
    tables,
  };
}

/** The central tables (storage/sql/migrations.ts), in foreign key order. offline_messages belongs to the offline module. */
export const coreData: DataOwner = {
  owner: 'core',
  migrationTable: 'kysely_migration',
  // Run by openStorage already.
  migrate: () => Promise.resolve(),
  tables: [
    { name: 'accounts', key: ['host', 'username'] },
    { name: 'scram_credentials', key: ['host', 'username', 'hash'] },
    { name: 'legacy_sasl_secrets', key: ['host', 'username', 'mechanism', 'realm', 'variant'] },
    { name: 'auth_tokens', key: ['id'] },
    { name: 'roster_items', key: ['host', 'username', 'jid'] },
    { name: 'roster_versions', key: ['host', 'username'] },
    { name: 'roster_changes', key: ['host', 'username', 'version'] },
    { name: 'vcards', key: ['host', 'username'] },
    { name: 'blocklist', key: ['host', 'username', 'jid'] },
  ],
};

export interface TransferSummary {
  /** Rows per table, in file order. */
  tables: { table: string; rows: number }[];
  rows: number;
}

/** A problem with the data or the file that the operator must fix (not a bug). */
export class TransferError extends Error {}

/** Rows read per page on export. */
const PAGE_ROWS = 500;
/** Bind parameters per INSERT stay well below SQLite's 32766 and PostgreSQL's 65535. */
const MAX_PARAMS = 16000;

type Encoded = string | number | null | { $b: string } | { $n: string };
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tables are only known at run time
type AnyDb = Kysely<any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTrx = Transaction<any>;

function encode(value: unknown, where: string): Encoded {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return { $b: Buffer.from(value).toString('base64') };
  if (typeof value === 'bigint') return { $n: value.toString() };
  throw new TransferError(`${where}: cannot export a value of type ${typeof value} (columns must be text, integer or binary)`);
}

function decode(value: unknown, where: string): string | number | null | Buffer | bigint {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.$b === 'string') return Buffer.from(v.$b, 'base64');
    if (typeof v.$n === 'string' && /^-?[0-9]+$/.test(v.$n)) return BigInt(v.$n);
  }
  throw new TransferError(`${where}: invalid value ${JSON.stringify(value)}`);
}

function isMigrationTable(name: string): boolean {
  return name === 'kysely_migration' || name === 'kysely_migration_lock' || name.startsWith('shoal_migrations_');
}

/** The database's tables (columns in table order), without the migration bookkeeping. */
async function tablesOf(db: AnyDb): Promise<Map<string, string[]>> {
  // On PostgreSQL, the current schema's only (postgres-introspector.ts).
  const tables = await db.introspection.getTables();
  return new Map(tables.filter((t) => !isMigrationTable(t.name)).map((t) => [t.name, t.columns.map((c) => c.name)]));
}

function checkOwners(owners: readonly DataOwner[]): void {
  const seen = new Set<string>();
  for (const o of owners) {
    for (const t of o.tables) {
      if (seen.has(t.name)) throw new Error(`table ${t.name} is registered by two owners`);
      seen.add(t.name);
    }
  }
}

async function appliedMigrations(db: AnyDb | AnyTrx, owner: DataOwner): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from ${sql.table(owner.migrationTable)} order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** Brings every owner's tables up to date (the central ones were migrated by openStorage). */
export async function migrateOwners(storage: Storage, owners: readonly DataOwner[]): Promise<void> {
  for (const owner of owners) await owner.migrate(storage.sql);
}

/**
 * Writes every table of `owners` to `out`. Refuses a database holding a table no owner
 * declares: it would be left behind (register its module's DataOwner in modules/data.ts).
 */
export async function exportData(storage: Storage, owners: readonly DataOwner[], out: Writable): Promise<TransferSummary> {
  checkOwners(owners);
  await migrateOwners(storage, owners);
  const db = storage.sql.db<unknown>() as AnyDb;
  const present = await tablesOf(db);
  const declared = new Set(owners.flatMap((o) => o.tables.map((t) => t.name)));
  const unknown = [...present.keys()].filter((t) => !declared.has(t)).sort();
  if (unknown.length > 0) {
    throw new TransferError(`the database has tables no export owner declares, which would be lost: ${unknown.join(', ')} (register their module's DataOwner in src/modules/data.ts)`);
  }

  const write = async (value: unknown): Promise<void> => {
    if (!out.write(`${JSON.stringify(value)}\n`)) await once(out, 'drain');
  };
  // One snapshot of every table (a server may be running): REPEATABLE READ on PostgreSQL,
  // a read transaction on SQLite (WAL lets the server write meanwhile).
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const header = [];
      for (const owner of owners) header.push({ owner: owner.owner, migrations: await appliedMigrations(trx, owner) });
      await write({ format: EXPORT_FORMAT, version: EXPORT_VERSION, created_at: new Date().toISOString(), dialect: storage.sql.dialect, owners: header });
      const summary: TransferSummary = { tables: [], rows: 0 };
      for (const owner of owners) {
        for (const table of owner.tables) {
          const columns = present.get(table.name);
          if (columns === undefined) throw new Error(`table ${table.name} of ${owner.owner} does not exist after its migrations`);
          await write({ table: table.name, owner: owner.owner, columns });
          let rows = 0;
          let after: unknown[] | undefined;
          for (;;) {
            let q = trx.selectFrom(table.name).select(columns);
            if (after !== undefined) {
              const last = after;
              q = q.where(({ eb }) => eb(sql`(${sql.join(table.key.map((k) => sql.ref(k)))})`, '>', sql`(${sql.join(last)})`));
            }
            for (const k of table.key) q = q.orderBy(k);
            const page = (await q.limit(PAGE_ROWS).execute()) as Record<string, unknown>[];
            for (const row of page) await write({ row: columns.map((c) => encode(row[c], `${table.name}.${c}`)) });
            rows += page.length;
            if (page.length < PAGE_ROWS) break;
            const lastRow = page[page.length - 1]!;
            after = table.key.map((k) => lastRow[k]);
          }
          await write({ end: table.name, rows });
          summary.tables.push({ table: table.name, rows });
          summary.rows += rows;
        }
      }
      await write({ end: EXPORT_FORMAT, tables: summary.tables.length, rows: summary.rows });
      return summary;
    });
}

interface Header {
  format: string;
  version: number;
  owners: { owner: string; migrations: string[] }[];
}

function parseLine(line: string, n: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new TransferError(`line ${n}: not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TransferError(`line ${n}: not a JSON object`);
  return value as Record<string, unknown>;
}

function checkHeader(value: Record<string, unknown>): Header {
  if (value.format !== EXPORT_FORMAT) throw new TransferError('not a Shoal export (line 1 has no "format": "shoal-export")');
  if (value.version !== EXPORT_VERSION) throw new TransferError(`export format version ${String(value.version)}; this Shoal reads version ${EXPORT_VERSION}`);
  const owners = value.owners;
  if (!Array.isArray(owners) || !owners.every((o) => typeof o === 'object' && o !== null && typeof (o as Header['owners'][number]).owner === 'string' && Array.isArray((o as Header['owners'][number]).migrations))) {
    throw new TransferError('line 1: invalid "owners"');
  }
  return value as unknown as Header;
}

/**
 * Reads an export into this (empty) database, all in one transaction: on any error nothing
 * is kept. The database must be at the same migrations as the exported one (both run
 * by the same Shoal version) and must not be in use by a server.
 */
export async function importData(storage: Storage, owners: readonly DataOwner[], input: Readable): Promise<TransferSummary> {
  checkOwners(owners);
  await migrateOwners(storage, owners);
  const dialect = storage.sql.dialect;
  const db = storage.sql.db<unknown>() as AnyDb;
  const present = await tablesOf(db);
  const byOwner = new Map(owners.map((o) => [o.owner, o]));

  for (const owner of owners) {
    for (const table of owner.tables) {
      const any = await db.selectFrom(table.name).select(sql`1`.as('x')).limit(1).executeTakeFirst();
      if (any !== undefined) throw new TransferError(`the target database is not empty (table ${table.name} has rows); import into a new database`);
    }
  }

  const lines = createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]();
  let n = 0;
  const next = async (): Promise<Record<string, unknown> | undefined> => {
    const r = await lines.next();
    if (r.done === true) return undefined;
    n++;
    return parseLine(r.value, n);
  };

  const first = await next();
  if (first === undefined) throw new TransferError('the file is empty');
  const header = checkHeader(first);
  for (const h of header.owners) {
    const owner = byOwner.get(h.owner);
    if (owner === undefined) throw new TransferError(`the export holds data of '${h.owner}', which this Shoal does not know`);
    const here = await appliedMigrations(db, owner);
    if (JSON.stringify(here) !== JSON.stringify(h.migrations)) {
      throw new TransferError(
        `'${h.owner}' was exported at migrations [${h.migrations.join(', ')}], this database is at [${here.join(', ')}]: export and import with the same Shoal version`,
      );
    }
  }

  return db.transaction().execute(async (trx) => {
    const summary: TransferSummary = { tables: [], rows: 0 };
    const done = new Set<string>();
    for (;;) {
      const line = await next();
      if (line === undefined) throw new TransferError(`the file ends at line ${n} without its last line: truncated`);
      if (line.end === EXPORT_FORMAT) {
        if (line.rows !== summary.rows || line.tables !== summary.tables.length) {
          throw new TransferError(`line ${n}: the file says ${String(line.tables)} tables and ${String(line.rows)} rows, it holds ${summary.tables.length} and ${summary.rows}`);
        }
        const missing = header.owners.flatMap((h) => byOwner.get(h.owner)!.tables.map((t) => t.name)).filter((t) => !done.has(t));
        if (missing.length > 0) throw new TransferError(`the file has no section for table(s) ${missing.join(', ')}`);
        break;
      }
      const name = line.table;
      const owner = typeof line.owner === 'string' ? byOwner.get(line.owner) : undefined;
      const table = owner?.tables.find((t) => t.name === name);
      if (typeof name !== 'string' || owner === undefined || table === undefined || !header.owners.some((h) => h.owner === owner.owner)) {
        throw new TransferError(`line ${n}: expected a table of a known owner, got ${JSON.stringify(line).slice(0, 200)}`);
      }
      if (done.has(name)) throw new TransferError(`line ${n}: table ${name} appears twice`);
      done.add(name);
      const columns = line.columns;
      const target = present.get(name);
      if (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === 'string' && target?.includes(c))) {
        throw new TransferError(`line ${n}: the columns of ${name} (${JSON.stringify(columns)}) are not all in this database's table (${target?.join(', ') ?? 'missing'})`);
      }
      const rows = await importTable(trx, dialect, name, columns as string[], next, () => n);
      summary.tables.push({ table: name, rows });
      summary.rows += rows;
      if (table.identity !== undefined && dialect === 'postgres') {
        // The identity's sequence must continue after the imported ids, never hand out one again.
        await sql`select setval(pg_get_serial_sequence(${name}, ${table.identity}), coalesce((select max(${sql.ref(table.identity)}) from ${sql.table(name)}), 0) + 1, false)`.execute(trx);
      }
    }
    return summary;
  });
}

async function importTable(
  trx: AnyTrx,
  dialect: SqlDialect,
  name: string,
  columns: string[],
  next: () => Promise<Record<string, unknown> | undefined>,
  lineNo: () => number,
): Promise<number> {
  const batchRows = Math.max(1, Math.min(500, Math.floor(MAX_PARAMS / columns.length)));
  let batch: Record<string, unknown>[] = [];
  let count = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await trx.insertInto(name).values(batch).execute();
    batch = [];
  };
  for (;;) {
    const line = await next();
    if (line === undefined) throw new TransferError(`the file ends inside table ${name}: truncated`);
    if ('end' in line) {
      if (line.end !== name || line.rows !== count) throw new TransferError(`line ${lineNo()}: table ${name} should end with ${count} rows, found ${JSON.stringify(line)}`);
      await flush();
      return count;
    }
    const values = line.row;
    if (!Array.isArray(values) || values.length !== columns.length) throw new TransferError(`line ${lineNo()}: a row of ${name} needs ${columns.length} values`);
    const row: Record<string, unknown> = {};
    columns.forEach((c, i) => {
      const v = decode(values[i], `line ${lineNo()}, ${name}.${c}`);
      // better-sqlite3 binds bigints; pg takes them as text. Both take Buffers for BLOB/bytea.
      row[c] = dialect === 'postgres' && typeof v === 'bigint' ? v.toString() : v;
    });
    batch.push(row);
    count++;
    if (batch.length >= batchRows) await flush();
  }
}
