// What a message archive is, for the query code (query.ts): a per-archive reader,
// independent of who owns the archive. A user's archive (store.ts) is one; a
// group chat room's archive can be another, so the XEP-0313 query, XEP-0059
// paging and data form code serve both.

/**
 * Where a message stands in its archive: archives are ordered by (ts, seq), the order the
 * messages were archived in (XEP-0313 §3.1: never by timestamp alone, several may share one).
 */
export interface ArchivePosition {
  /** Milliseconds since the epoch: when it was archived. */
  readonly ts: number;
  /** Increases with each message archived (breaks ties between equal timestamps). */
  readonly seq: number;
}

/** One archived message. */
export interface ArchivedMessage extends ArchivePosition {
  /** The archive id (XEP-0313 §3, XEP-0359 stanza-id): unique in the archive, unpredictable. */
  readonly id: string;
  /** The bare JID the 'with' filter matches (the other party; the owner for a message to self). */
  readonly withBare: string;
  /** The resource of that JID, or '' when it had none. */
  readonly withResource: string;
  /** The message stanza, serialised as XML (xml/stored.ts). */
  readonly stanza: string;
}

/** XEP-0313 §4.1.1: the 'with' filter: a bare JID matches every resource, a full JID only itself. */
export interface WithFilter {
  readonly bare: string;
  readonly resource?: string;
}

/** The messages a query selects, before paging. Bounds are inclusive for time, exclusive for positions. */
export interface ArchiveRange {
  readonly with?: WithFilter;
  /** XEP-0313 §4.1.2: timestamp >= start (ms). */
  readonly start?: number;
  /** XEP-0313 §4.1.2: timestamp <= end (ms). */
  readonly end?: number;
  /** Strictly after this message (after-id, RSM after). */
  readonly after?: ArchivePosition;
  /** Strictly before this message (before-id, RSM before). */
  readonly before?: ArchivePosition;
}

export interface ArchiveReader {
  /** The messages with these archive ids that exist, in any order. */
  byIds(ids: readonly string[]): Promise<ArchivedMessage[]>;
  /**
   * Up to `limit` messages of the range: oldest first, starting `offset` messages into it
   * (fromEnd false), or newest first from its end (fromEnd true; offset is not used).
   */
  page(range: ArchiveRange, limit: number, fromEnd: boolean, offset?: number): Promise<ArchivedMessage[]>;
  /**
   * How many messages the range holds, or undefined when that is more than `cap` (counting
   * further would cost more than the query is worth; XEP-0059 §2.6 allows leaving it out).
   */
  count(range: ArchiveRange, cap: number): Promise<number | undefined>;
  /** How many messages the whole archive holds (kept as it changes, so this is cheap). */
  total(): Promise<number>;
  /** The first and last message of the whole archive (XEP-0313 §6 metadata), if any. */
  bounds(): Promise<{ first: ArchivedMessage; last: ArchivedMessage } | undefined>;
}

/** Whether `a` comes before `b` in archive order. */
export function precedes(a: ArchivePosition, b: ArchivePosition): boolean {
  return a.ts < b.ts || (a.ts === b.ts && a.seq < b.seq);
}

/** Whether a message is in the range (the rule the SQL of a reader implements). */
export function inRange(m: ArchivedMessage, r: ArchiveRange): boolean {
  if (r.with && (m.withBare !== r.with.bare || (r.with.resource !== undefined && m.withResource !== r.with.resource))) return false;
  if (r.start !== undefined && m.ts < r.start) return false;
  if (r.end !== undefined && m.ts > r.end) return false;
  if (r.after && !precedes(r.after, m)) return false;
  if (r.before && !precedes(m, r.before)) return false;
  return true;
}
