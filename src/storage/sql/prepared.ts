// Queries the server runs on every login (credentials, roster, blocklist, avatar hash,
// offline messages), built and compiled to SQL once instead of on every call: Kysely
// builds a tree of frozen nodes and compiles it each time, which costs more than SQLite
// takes to run these statements. The query is built with a placeholder per parameter;
// each run swaps in the values, in the order the compiled SQL wants them.
import type { CompiledQuery, Kysely } from 'kysely';

/**
 * Runs a compiled read at once and returns its rows, or returns undefined when it cannot
 * now (the query then goes through Kysely as usual). SQLite's (sqlite.ts) runs only while
 * Kysely has nothing in flight or waiting on the connection: the read then sees exactly
 * what it would have seen through Kysely, without its connection queue and promise chain.
 */
export type DirectReader = (sql: string, parameters: readonly unknown[]) => unknown[] | undefined;

const directReaders = new WeakMap<object, DirectReader>();

/** Lets the prepared queries of `db` run through `reader` when it can (see DirectReader). */
export function readDirectly<DB>(db: Kysely<DB>, reader: DirectReader): void {
  directReaders.set(db, reader);
}

/** A placeholder no real value can equal (NUL cannot be in a JID, a hash name or a number). */
const MARK = '\0shoal-parameter:';

/** A query with named parameters, compiled once for one database. */
export class PreparedQuery<P extends string, R> {
  private readonly compiled: CompiledQuery<R>;
  /** Where each parameter of the compiled query comes from: a named value, or a constant of the query itself. */
  private readonly slots: ({ name: P } | { value: unknown })[];
  private readonly direct: DirectReader | undefined;

  constructor(
    private readonly db: Kysely<never>,
    build: (param: <T = string>(name: P) => T) => { compile(): CompiledQuery<R> },
  ) {
    this.compiled = build(<T,>(name: P) => `${MARK}${name}` as T).compile();
    if (this.compiled.sql.includes(MARK)) throw new Error('a parameter of a prepared query was written into its SQL');
    this.direct = directReaders.get(db);
    this.slots = this.compiled.parameters.map((v) => (typeof v === 'string' && v.startsWith(MARK) ? { name: v.slice(MARK.length) as P } : { value: v }));
  }

  /** Runs the query with these values; the rows. */
  async execute(values: Readonly<Record<P, unknown>>): Promise<R[]> {
    const parameters = this.slots.map((s) => ('name' in s ? values[s.name] : s.value));
    const rows = this.direct?.(this.compiled.sql, parameters);
    if (rows !== undefined) return rows as R[];
    const result = await this.db.executeQuery<R>({ ...this.compiled, parameters });
    return result.rows;
  }

  /** The first row, if any. */
  async first(values: Readonly<Record<P, unknown>>): Promise<R | undefined> {
    return (await this.execute(values))[0];
  }
}

/** Builds `build` against `db` and compiles it once (see PreparedQuery). */
export function prepare<DB, P extends string, R>(
  db: Kysely<DB>,
  build: (db: Kysely<DB>, param: <T = string>(name: P) => T) => { compile(): CompiledQuery<R> },
): PreparedQuery<P, R> {
  return new PreparedQuery<P, R>(db as unknown as Kysely<never>, (param) => build(db, param));
}
