// RosterStore on any Kysely dialect. RFC 6121 §2.6: each user's roster has a
// version, here an integer counter rendered as a decimal string, bumped by every
// change in the same transaction that logs the change, so a client's cached
// version can be answered with only the items changed since (§2.6.3).
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { RosterItem, RosterStore, Subscription } from '../types.js';
import type { Database, RosterItemsTable } from './schema.js';
import { prepare } from './prepared.js';

/** How many changes per user are kept for §2.6.3 diffs; older versions get the full roster. */
export const ROSTER_CHANGES_KEPT = 500;

/** Bounds on the rosters kept between reads (see SqlRosterStore.get): users, and items in all. */
export const ROSTER_CACHE_USERS = 4096;
export const ROSTER_CACHE_ITEMS = 100_000;

type Roster = { version: string; items: readonly RosterItem[] };

type Db = Kysely<Database> | Transaction<Database>;
type RosterChange = RosterItem | { jid: string; subscription: 'remove' };

const ITEM_SUBSCRIPTIONS: readonly Subscription[] = ['none', 'to', 'from', 'both'];

function isItemSubscription(value: string): value is RosterItem['subscription'] {
  return (ITEM_SUBSCRIPTIONS as readonly string[]).includes(value);
}

/** A version we handed out is a non-negative decimal integer; anything else is "unknown" (§2.6.3). */
function parseVersion(version: string): number | undefined {
  if (!/^[0-9]{1,15}$/.test(version)) return undefined;
  return Number(version);
}

function parseGroups(json: string): string[] {
  try {
    const value: unknown = JSON.parse(json);
    return Array.isArray(value) ? value.filter((g): g is string => typeof g === 'string') : [];
  } catch {
    return [];
  }
}

/** What an item is made of (the row without its keys and version). */
type ItemRow = Pick<Selectable<RosterItemsTable>, 'jid' | 'name' | 'subscription' | 'ask' | 'pending_in' | 'approved' | 'groups'>;

function toItem(row: ItemRow): RosterItem {
  const item: RosterItem = {
    jid: row.jid,
    // A row can only hold what setItem validated; 'none' guards a hand-edited database.
    subscription: isItemSubscription(row.subscription) ? row.subscription : 'none',
    ask: Number(row.ask) !== 0,
    pendingIn: Number(row.pending_in) !== 0,
    approved: Number(row.approved) !== 0,
    groups: parseGroups(row.groups),
  };
  if (row.name !== null) item.name = row.name;
  return item;
}

async function currentVersion(db: Db, host: string, username: string): Promise<number> {
  const row = await db
    .selectFrom('roster_versions')
    .select('version')
    .where('host', '=', host)
    .where('username', '=', username)
    .executeTakeFirst();
  return row === undefined ? 0 : Number(row.version);
}

/** Increments the user's roster version (creating it at 1) and returns the new value. */
async function bumpVersion(trx: Transaction<Database>, host: string, username: string): Promise<number> {
  const row = await trx
    .insertInto('roster_versions')
    .values({ host, username, version: 1 })
    .onConflict((oc) =>
      oc.columns(['host', 'username']).doUpdateSet((eb) => ({ version: eb('roster_versions.version', '+', 1) })),
    )
    .returning('version')
    .executeTakeFirstOrThrow();
  return Number(row.version);
}

async function logChange(
  trx: Transaction<Database>,
  host: string,
  username: string,
  version: number,
  jid: string,
  removed: boolean,
): Promise<void> {
  await trx.insertInto('roster_changes').values({ host, username, version, jid, removed: removed ? 1 : 0 }).execute();
  // Versions of one user are consecutive, so this keeps exactly the last ROSTER_CHANGES_KEPT.
  await trx
    .deleteFrom('roster_changes')
    .where('host', '=', host)
    .where('username', '=', username)
    .where('version', '<=', version - ROSTER_CHANGES_KEPT)
    .execute();
}

/**
 * Deletes a user's roster (for account removal), inside the caller's transaction.
 * The version counter is kept and bumped past the deleted history with an empty
 * log, so a client still caching a version of the old roster is sent the full
 * (new) roster rather than a diff against items it should no longer have.
 */
export async function deleteRoster(trx: Transaction<Database>, host: string, username: string): Promise<void> {
  await trx.deleteFrom('roster_items').where('host', '=', host).where('username', '=', username).execute();
  await trx.deleteFrom('roster_changes').where('host', '=', host).where('username', '=', username).execute();
  await trx
    .updateTable('roster_versions')
    .set((eb) => ({ version: eb('version', '+', 1) }))
    .where('host', '=', host)
    .where('username', '=', username)
    .execute();
}

function checkItem(item: RosterItem): void {
  if (item.jid === '') throw new Error('roster item without a JID');
  if (!isItemSubscription(item.subscription)) throw new Error(`invalid roster subscription ${String(item.subscription)}`);
}

export class SqlRosterStore implements RosterStore {
  /**
   * The last roster read per user, by bare JID, oldest first. A login reads the roster two or
   * three times (the client's roster get, the initial presence broadcast and probes, the
   * unavailable broadcast at the end): the first read of the items serves the others as long as
   * the stored version is still the one read with them (RFC 6121 §2.6: every change bumps it, in
   * the transaction that makes the change), so a change made anywhere, another process included,
   * is seen at the next read.
   */
  private readonly cache = new Map<string, { version: number; roster: Roster }>();
  private cachedItems = 0;

  /** The two reads of every login, compiled once. */
  private readonly versionQuery;
  private readonly rosterQuery;

  constructor(private readonly db: Kysely<Database>) {
    this.versionQuery = prepare(db, (d, p) => d.selectFrom('roster_versions').select('version').where('host', '=', p('host')).where('username', '=', p('username')));
    // The version and the items in one statement, so one snapshot (PostgreSQL's READ COMMITTED
    // gives each statement its own); the derived one-row table keeps a row for an empty roster.
    this.rosterQuery = prepare(db, (d, p) =>
      d
        .selectFrom(d.selectNoFrom((eb) => eb.lit(1).as('one')).as('o'))
        .leftJoin('roster_versions as v', (join) => join.on('v.host', '=', p('host')).on('v.username', '=', p('username')))
        .leftJoin('roster_items as i', (join) => join.on('i.host', '=', p('host')).on('i.username', '=', p('username')))
        .select(['v.version as roster_version', 'i.jid', 'i.name', 'i.subscription', 'i.ask', 'i.pending_in', 'i.approved', 'i.groups'])
        .orderBy('i.jid'),
    );
  }

  async get(host: string, username: string): Promise<Roster> {
    const key = `${username}@${host}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      const row = await this.versionQuery.first({ host, username });
      if ((row === undefined ? 0 : Number(row.version)) === cached.version) {
        // Most recently used last.
        this.cache.delete(key);
        this.cache.set(key, cached);
        return cached.roster;
      }
      this.forget(key);
    }
    const rows = await this.rosterQuery.execute({ host, username });
    const version = rows[0]?.roster_version == null ? 0 : Number(rows[0].roster_version);
    const items: RosterItem[] = [];
    for (const row of rows) {
      // The one row of an empty roster has no item; a joined item has all its NOT NULL columns.
      if (row.jid !== null) items.push(toItem(row as ItemRow));
    }
    const roster: Roster = { version: String(version), items };
    this.remember(key, version, roster);
    return roster;
  }

  private remember(key: string, version: number, roster: Roster): void {
    this.forget(key);
    this.cache.set(key, { version, roster });
    this.cachedItems += roster.items.length;
    for (const [oldest, entry] of this.cache) {
      if (this.cache.size <= ROSTER_CACHE_USERS && this.cachedItems <= ROSTER_CACHE_ITEMS) break;
      this.cache.delete(oldest);
      this.cachedItems -= entry.roster.items.length;
    }
  }

  private forget(key: string): void {
    const entry = this.cache.get(key);
    if (entry === undefined) return;
    this.cache.delete(key);
    this.cachedItems -= entry.roster.items.length;
  }

  async getItem(host: string, username: string, jid: string): Promise<RosterItem | undefined> {
    const row = await this.db
      .selectFrom('roster_items')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .where('jid', '=', jid)
      .executeTakeFirst();
    return row === undefined ? undefined : toItem(row);
  }

  async count(host: string, username: string): Promise<number> {
    const row = await this.db
      .selectFrom('roster_items')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async setItem(host: string, username: string, item: RosterItem): Promise<string> {
    checkItem(item);
    // Stale from now on (its version says so too): not worth keeping.
    this.forget(`${username}@${host}`);
    return this.db.transaction().execute(async (trx) => {
      const version = await bumpVersion(trx, host, username);
      const values = {
        name: item.name ?? null,
        subscription: item.subscription,
        ask: item.ask ? 1 : 0,
        pending_in: item.pendingIn ? 1 : 0,
        approved: item.approved ? 1 : 0,
        groups: JSON.stringify(item.groups),
        version,
      };
      await trx
        .insertInto('roster_items')
        .values({ host, username, jid: item.jid, ...values })
        .onConflict((oc) => oc.columns(['host', 'username', 'jid']).doUpdateSet(values))
        .execute();
      await logChange(trx, host, username, version, item.jid, false);
      return String(version);
    });
  }

  async removeItem(host: string, username: string, jid: string): Promise<string | undefined> {
    this.forget(`${username}@${host}`);
    return this.db.transaction().execute(async (trx) => {
      const deleted = await trx
        .deleteFrom('roster_items')
        .where('host', '=', host)
        .where('username', '=', username)
        .where('jid', '=', jid)
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 0) return undefined;
      const version = await bumpVersion(trx, host, username);
      await logChange(trx, host, username, version, jid, true);
      return String(version);
    });
  }

  async changesSince(
    host: string,
    username: string,
    version: string,
  ): Promise<{ version: string; changes: RosterChange[] } | undefined> {
    const since = parseVersion(version);
    if (since === undefined) return undefined;
    return this.db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
      const current = await currentVersion(trx, host, username);
      if (since > current) return undefined;
      if (since === current) return { version: String(current), changes: [] };

      const oldest = await trx
        .selectFrom('roster_changes')
        .select((eb) => eb.fn.min('version').as('oldest'))
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      const oldestKept = oldest?.oldest == null ? undefined : Number(oldest.oldest);
      // Every version after `since` must still be in the log, else the diff would miss changes.
      if (oldestKept === undefined || since < oldestKept - 1) return undefined;

      const log = await trx
        .selectFrom('roster_changes')
        .select(['jid', 'removed'])
        .where('host', '=', host)
        .where('username', '=', username)
        .where('version', '>', since)
        .orderBy('version')
        .execute();
      // Only each JID's latest state matters (§2.6.3 "the roster items that have
      // changed"), in the order of their last change.
      const latest = new Map<string, boolean>();
      for (const entry of log) {
        latest.delete(entry.jid);
        latest.set(entry.jid, Number(entry.removed) !== 0);
      }
      const present = [...latest].filter(([, removed]) => !removed).map(([jid]) => jid);
      const rows =
        present.length === 0
          ? []
          : await trx
              .selectFrom('roster_items')
              .selectAll()
              .where('host', '=', host)
              .where('username', '=', username)
              .where('jid', 'in', present)
              .execute();
      const items = new Map(rows.map((r) => [r.jid, toItem(r)]));
      const changes: RosterChange[] = [...latest.keys()].map(
        (jid) => items.get(jid) ?? { jid, subscription: 'remove' as const },
      );
      return { version: String(current), changes };
    });
  }
}
