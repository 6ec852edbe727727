// The PEP module's own tables: each account's nodes with their configuration,
// the items of each node, and XEP-0049 private XML. Rows go with their account
// (foreign keys with cascade: `shoal user del` removes them).
import { sql, type Kysely } from 'kysely';
import type { Migration, SqlHandle } from '../../storage/sql/owned.js';
import { ownedData, type DataOwner } from '../../storage/sql/transfer.js';
import { loadConfig, storeConfig, type NodeConfig } from './node-config.js';

export interface StoredItem {
  id: string;
  /** The item's payload element(s), serialised ('' for an item without payload). */
  payload: string;
  /** The full JID that published it. */
  publisher: string;
  /** ISO 8601, UTC. */
  publishedAt: string;
}

export interface StoredNode {
  node: string;
  config: NodeConfig;
}

/** Limits a write is checked against, inside its transaction. */
export interface ItemLimits {
  /** Items the node keeps: the oldest beyond are removed. */
  keep: number;
  /** Bytes of item payloads the whole account may hold. */
  maxAccountBytes: number;
}

export type PublishOutcome = { stored: true; removed: string[] } | { stored: false; reason: 'account-full' };

export interface PepStore {
  getNode(host: string, username: string, node: string): Promise<NodeConfig | undefined>;
  listNodes(host: string, username: string): Promise<StoredNode[]>;
  /** The nodes named `nodes` of the accounts `usernames` of `host`, in a few queries whatever the number of accounts. */
  nodesOf(host: string, usernames: readonly string[], nodes: readonly string[]): Promise<(StoredNode & { username: string })[]>;
  /** 'limit' when the account already has `maxNodes` nodes. */
  createNode(host: string, username: string, node: string, config: NodeConfig, maxNodes: number): Promise<'created' | 'exists' | 'limit'>;
  /** Replaces the configuration; the items beyond what it keeps are removed (their ids returned). */
  setConfig(host: string, username: string, node: string, config: NodeConfig, keep: number): Promise<string[] | undefined>;
  deleteNode(host: string, username: string, node: string): Promise<boolean>;
  /** Stores (or replaces, making it the newest) an item, then keeps only the newest `limits.keep`. */
  publish(host: string, username: string, node: string, item: StoredItem, limits: ItemLimits): Promise<PublishOutcome>;
  /** The newest `max` items (all when undefined), oldest first; or those with the given ids. */
  items(host: string, username: string, node: string, query: { max?: number; ids?: readonly string[] }): Promise<StoredItem[]>;
  /** The newest item, if any. */
  lastItem(host: string, username: string, node: string): Promise<StoredItem | undefined>;
  retract(host: string, username: string, node: string, id: string): Promise<boolean>;
  purge(host: string, username: string, node: string): Promise<number>;

  getPrivate(host: string, username: string, key: string): Promise<string | undefined>;
  /** 'limit' when the account already holds `maxEntries` other entries. */
  setPrivate(host: string, username: string, key: string, xml: string, maxEntries: number): Promise<'stored' | 'limit'>;
}

interface PepTables {
  pep_nodes: {
    host: string;
    username: string;
    node: string;
    /** NodeConfig as JSON. */
    config: string;
    created_at: string;
  };
  pep_items: {
    host: string;
    username: string;
    node: string;
    item_id: string;
    payload: string;
    publisher: string;
    published_at: string;
    /** Publication order within the node: higher is newer. */
    seq: number;
    /** UTF-8 length of payload. */
    bytes: number;
  };
  private_xml: {
    host: string;
    username: string;
    /** '{namespace}name' of the stored element (XEP-0049 §2: one per name and namespace). */
    key: string;
    xml: string;
    updated_at: string;
  };
}

export function pepMigrations(): Record<string, Migration> {
  return {
    '0001_pep': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('pep_nodes')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('config', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('pep_nodes_pk', ['host', 'username', 'node'])
          .addForeignKeyConstraint('pep_nodes_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema
          .createTable('pep_items')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('node', 'text', (c) => c.notNull())
          .addColumn('item_id', 'text', (c) => c.notNull())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('publisher', 'text', (c) => c.notNull())
          .addColumn('published_at', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('bytes', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('pep_items_pk', ['host', 'username', 'node', 'item_id'])
          // Items go with their node, and so with their account.
          .addForeignKeyConstraint('pep_items_node_fk', ['host', 'username', 'node'], 'pep_nodes', ['host', 'username', 'node'], (fk) => fk.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('pep_items_order_idx').on('pep_items').columns(['host', 'username', 'node', 'seq']).execute();
        await db.schema
          .createTable('private_xml')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('xml', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('private_xml_pk', ['host', 'username', 'key'])
          .addForeignKeyConstraint('private_xml_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) => fk.onDelete('cascade'))
          .execute();
      },
    },
  };
}

const toItem = (r: { item_id: string; payload: string; publisher: string; published_at: string }): StoredItem => ({
  id: r.item_id,
  payload: r.payload,
  publisher: r.publisher,
  publishedAt: r.published_at,
});

/** The PEP module's tables for `shoal export`/`import`/`migrate` (registered in modules/data.ts). */
export const pepData: DataOwner = ownedData('pep', pepMigrations, [
  { name: 'pep_nodes', key: ['host', 'username', 'node'] },
  { name: 'pep_items', key: ['host', 'username', 'node', 'item_id'] },
  { name: 'private_xml', key: ['host', 'username', 'key'] },
]);

export class SqlPepStore implements PepStore {
  private constructor(
    private readonly handle: SqlHandle,
    private readonly db: Kysely<PepTables>,
  ) {}

  static async open(handle: SqlHandle): Promise<SqlPepStore> {
    await handle.migrate('pep', pepMigrations());
    return new SqlPepStore(handle, handle.db<PepTables>());
  }

  private nodeRows(db: Kysely<PepTables>, host: string, username: string, node: string) {
    return db.selectFrom('pep_items').where('host', '=', host).where('username', '=', username).where('node', '=', node);
  }

  async getNode(host: string, username: string, node: string): Promise<NodeConfig | undefined> {
    const row = await this.db
      .selectFrom('pep_nodes')
      .select('config')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('node', '=', node)
      .executeTakeFirst();
    return row === undefined ? undefined : loadConfig(row.config);
  }

  async listNodes(host: string, username: string): Promise<StoredNode[]> {
    const rows = await this.db.selectFrom('pep_nodes').select(['node', 'config']).where('host', '=', host).where('username', '=', username).orderBy('node').execute();
    return rows.map((r) => ({ node: r.node, config: loadConfig(r.config) }));
  }

  async nodesOf(host: string, usernames: readonly string[], nodes: readonly string[]): Promise<(StoredNode & { username: string })[]> {
    const out: (StoredNode & { username: string })[] = [];
    if (nodes.length === 0) return out;
    // Chunks keep each statement under SQLite's limit of bound parameters; the primary key
    // (host, username, node) answers each lookup.
    const CHUNK = 400;
    for (let i = 0; i < usernames.length; i += CHUNK) {
      const rows = await this.db
        .selectFrom('pep_nodes')
        .select(['username', 'node', 'config'])
        .where('host', '=', host)
        .where('username', 'in', usernames.slice(i, i + CHUNK))
        .where('node', 'in', nodes.slice(0, CHUNK))
        .execute();
      for (const r of rows) out.push({ username: r.username, node: r.node, config: loadConfig(r.config) });
    }
    return out;
  }

  createNode(host: string, username: string, node: string, config: NodeConfig, maxNodes: number): Promise<'created' | 'exists' | 'limit'> {
    return this.db.transaction().execute(async (trx) => {
      // Counted then inserted: one account's writes must not interleave (PostgreSQL).
      await this.handle.lockAccount(trx, host, username);
      const existing = await trx.selectFrom('pep_nodes').select('node').where('host', '=', host).where('username', '=', username).where('node', '=', node).executeTakeFirst();
      if (existing) return 'exists' as const;
      const row = await trx
        .selectFrom('pep_nodes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(row?.n ?? 0) >= maxNodes) return 'limit' as const;
      await trx.insertInto('pep_nodes').values({ host, username, node, config: storeConfig(config), created_at: new Date().toISOString() }).execute();
      return 'created' as const;
    });
  }

  setConfig(host: string, username: string, node: string, config: NodeConfig, keep: number): Promise<string[] | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('pep_nodes')
        .set({ config: storeConfig(config) })
        .where('host', '=', host)
        .where('username', '=', username)
        .where('node', '=', node)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return undefined;
      return this.trim(trx, host, username, node, keep);
    });
  }

  async deleteNode(host: string, username: string, node: string): Promise<boolean> {
    const r = await this.db.deleteFrom('pep_nodes').where('host', '=', host).where('username', '=', username).where('node', '=', node).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * Removes all but the newest `keep` items; returns the ids removed. (SQLite needs a LIMIT
   * before an OFFSET and PostgreSQL refuses LIMIT -1: a limit no node reaches suits both.)
   */
  private async trim(db: Kysely<PepTables>, host: string, username: string, node: string, keep: number): Promise<string[]> {
    const old = await this.nodeRows(db, host, username, node).select('item_id').orderBy('seq', 'desc').limit(Number.MAX_SAFE_INTEGER).offset(keep).execute();
    if (old.length === 0) return [];
    const ids = old.map((r) => r.item_id);
    await db.deleteFrom('pep_items').where('host', '=', host).where('username', '=', username).where('node', '=', node).where('item_id', 'in', ids).execute();
    return ids;
  }

  publish(host: string, username: string, node: string, item: StoredItem, limits: ItemLimits): Promise<PublishOutcome> {
    const bytes = Buffer.byteLength(item.payload, 'utf8');
    return this.db.transaction().execute(async (trx): Promise<PublishOutcome> => {
      // The account's bytes and the node's next seq are read then written: one account's
      // publishes must not interleave (PostgreSQL; SQLite runs one transaction at a time).
      await this.handle.lockAccount(trx, host, username);
      const used = await trx
        .selectFrom('pep_items')
        .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('bytes'), sql<number>`0`).as('total'))
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      const replaced = await this.nodeRows(trx, host, username, node).select('bytes').where('item_id', '=', item.id).executeTakeFirst();
      if (Number(used?.total ?? 0) - (replaced?.bytes ?? 0) + bytes > limits.maxAccountBytes) return { stored: false, reason: 'account-full' };
      const top = await this.nodeRows(trx, host, username, node)
        .select((eb) => eb.fn.max<number>('seq').as('seq'))
        .executeTakeFirst();
      const seq = Number(top?.seq ?? 0) + 1;
      const values = { payload: item.payload, publisher: item.publisher, published_at: item.publishedAt, seq, bytes };
      if (replaced) {
        await trx
          .updateTable('pep_items')
          .set(values)
          .where('host', '=', host)
          .where('username', '=', username)
          .where('node', '=', node)
          .where('item_id', '=', item.id)
          .execute();
      } else {
        await trx.insertInto('pep_items').values({ host, username, node, item_id: item.id, ...values }).execute();
      }
      return { stored: true, removed: await this.trim(trx, host, username, node, limits.keep) };
    });
  }

  async items(host: string, username: string, node: string, query: { max?: number; ids?: readonly string[] }): Promise<StoredItem[]> {
    let q = this.nodeRows(this.db, host, username, node).select(['item_id', 'payload', 'publisher', 'published_at']).orderBy('seq', 'desc');
    if (query.ids !== undefined) {
      if (query.ids.length === 0) return [];
      q = q.where('item_id', 'in', [...query.ids]);
    }
    if (query.max !== undefined) q = q.limit(query.max);
    const rows = await q.execute();
    return rows.reverse().map(toItem);
  }

  async lastItem(host: string, username: string, node: string): Promise<StoredItem | undefined> {
    const row = await this.nodeRows(this.db, host, username, node)
      .select(['item_id', 'payload', 'publisher', 'published_at'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : toItem(row);
  }

  async retract(host: string, username: string, node: string, id: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('pep_items')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('node', '=', node)
      .where('item_id', '=', id)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async purge(host: string, username: string, node: string): Promise<number> {
    const r = await this.db.deleteFrom('pep_items').where('host', '=', host).where('username', '=', username).where('node', '=', node).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async getPrivate(host: string, username: string, key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('private_xml').select('xml').where('host', '=', host).where('username', '=', username).where('key', '=', key).executeTakeFirst();
    return row?.xml;
  }

  setPrivate(host: string, username: string, key: string, xml: string, maxEntries: number): Promise<'stored' | 'limit'> {
    return this.db.transaction().execute(async (trx) => {
      await this.handle.lockAccount(trx, host, username);
      const updated_at = new Date().toISOString();
      const r = await trx
        .updateTable('private_xml')
        .set({ xml, updated_at })
        .where('host', '=', host)
        .where('username', '=', username)
        .where('key', '=', key)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) > 0) return 'stored' as const;
      const row = await trx
        .selectFrom('private_xml')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      if (Number(row?.n ?? 0) >= maxEntries) return 'limit' as const;
      await trx.insertInto('private_xml').values({ host, username, key, xml, updated_at }).execute();
      return 'stored' as const;
    });
  }
}
