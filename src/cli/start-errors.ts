// What an operator reads when the server cannot start: one line that names the
// file or the address and what to do, instead of a JavaScript stack trace.
import type { Config } from '../config/schema.js';
import { redactUrl } from '../storage/index.js';

/** The codes found on an error and its causes (SQLite's 'SQLITE_BUSY', Node's 'EADDRINUSE', ...). */
function codes(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
  }
  return out;
}

function addressOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    const { address, port } = e as { address?: unknown; port?: unknown };
    if (typeof address === 'string' && typeof port === 'number') return `${address}:${port}`;
  }
  return undefined;
}

/** A readable explanation for a failure to start, or undefined when it is not a known kind. */
export function explainStartError(err: unknown, config: Config): string | undefined {
  const c = codes(err);
  if (config.storage.driver === 'postgres') {
    const pgWhy = explainPostgresError(c, config.storage.url, config.storage.schema);
    if (pgWhy !== undefined) return pgWhy;
  }
  const db = config.storage.driver === 'sqlite' ? config.storage.path : redactUrl(config.storage.url);
  if (c.includes('EADDRINUSE')) {
    return `cannot listen on ${addressOf(err) ?? `${config.c2s.host}:${config.c2s.port}`}: the address is already in use (is another server running?); stop it or choose another port (c2s.port)`;
  }
  if (c.includes('EADDRNOTAVAIL')) return `cannot listen on ${addressOf(err) ?? config.c2s.host}: no such address on this machine; check c2s.host`;
  if (c.includes('EACCES') && addressOf(err) !== undefined) return `cannot listen on ${addressOf(err)}: permission denied (ports below 1024 need privileges)`;
  if (c.some((k) => k === 'SQLITE_NOTADB' || k.startsWith('SQLITE_CORRUPT'))) {
    return `the SQLite database ${db} is damaged or is not a database; restore it from a backup, or move it away to start with an empty one`;
  }
  if (c.some((k) => k.startsWith('SQLITE_BUSY') || k.startsWith('SQLITE_LOCKED'))) {
    return `the SQLite database ${db} is locked by another process; stop that process (another 'shoal start'?) and try again`;
  }
  if (c.some((k) => k.startsWith('SQLITE_CANTOPEN') || k.startsWith('SQLITE_READONLY') || k.startsWith('SQLITE_PERM') || k === 'EACCES')) {
    return `cannot open the SQLite database ${db} for writing; check that the file and its directory exist and belong to the server's user`;
  }
  if (c.some((k) => k.startsWith('SQLITE_FULL')) || c.includes('ENOSPC')) return `no space left for the SQLite database ${db}; free some disk space`;
  return undefined;
}

/** PostgreSQL's SQLSTATE codes (Appendix A of its manual) and connection failures, for storage.url. */
function explainPostgresError(c: string[], url: string, schema: string | undefined): string | undefined {
  const where = redactUrl(url);
  if (c.some((k) => k === 'ECONNREFUSED' || k === 'ENOTFOUND' || k === 'EAI_AGAIN' || k === 'ETIMEDOUT' || k === 'EHOSTUNREACH')) {
    return `cannot connect to PostgreSQL at ${where} (storage.url): is the server running and is the host right?`;
  }
  if (c.includes('28P01') || c.includes('28000')) return `PostgreSQL refused the login of ${where} (storage.url): check the user and password, and pg_hba.conf`;
  if (c.includes('3D000')) return `the PostgreSQL database of ${where} (storage.url) does not exist; create it first (createdb)`;
  if (c.includes('42501')) {
    if (schema !== undefined) {
      return `the PostgreSQL user of ${where} (storage.url) may not create the schema ${schema} (storage.schema) or tables in it; create the schema for it, or grant it the rights`;
    }
    return `the PostgreSQL user of ${where} (storage.url) may not create or change tables; grant it the rights on the database`;
  }
  return undefined;
}
