// How many messages each server's message archives hold, read from its own
// storage while it is stopped: the proof that the chat-mam scenario archived
// what it sent (each message once in its sender's and once in its recipient's
// archive, XEP-0313 §3 on every server here) and that the plain chat scenario
// archived nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** Shoal: the rows of its `mam_messages` table (0 when the mam module never created it). */
export async function countShoalArchive(sqlitePath: string): Promise<number> {
  if (!existsSync(sqlitePath)) return 0;
  const db = new Database(sqlitePath, { readonly: true, fileMustExist: true });
  try {
    const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'mam_messages'").get();
    if (!table) return 0;
    return (db.prepare('SELECT count(*) AS n FROM mam_messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * Prosody with `internal` storage: mod_mam's archive store ("archive") is one file per account,
 * data/<host>/archive/<user>.list, one `item(...);` line per archived message.
 */
export function countProsodyArchive(dataDir: string, host: string): number {
  const dir = join(dataDir, encodeURIComponent(host), 'archive');
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.list')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line.startsWith('item(')) n++;
  }
  return n;
}

/**
 * ejabberd with Mnesia: the size of mod_mam's `archive_msg` table (a bag, one record per archived
 * copy), read by a separate Erlang node opening the stopped server's Mnesia directory (the server
 * runs without distribution, as nonode@nohost, which is what this node is too).
 */
export function countEjabberdArchive(mnesiaDir: string): number {
  // No schema yet: the server has never run, so nothing is archived (and mnesia must not create one).
  if (!existsSync(join(mnesiaDir, 'schema.DAT'))) return 0;
  const code =
    'mnesia:start(), ' +
    'N = case lists:member(archive_msg, mnesia:system_info(tables)) of ' +
    'true -> ok = mnesia:wait_for_tables([archive_msg], 120000), mnesia:table_info(archive_msg, size); ' +
    'false -> 0 end, ' +
    'io:format("ARCHIVE-COUNT ~p~n", [N]), mnesia:stop(), halt().';
  const r = spawnSync('erl', ['-noshell', '-noinput', '-mnesia', 'dir', JSON.stringify(mnesiaDir), '-eval', code], { encoding: 'utf8', timeout: 180_000 });
  const m = /ARCHIVE-COUNT (\d+)/.exec(r.stdout ?? '');
  if (!m) throw new Error(`could not count ejabberd's archive in ${mnesiaDir}: ${(r.stdout ?? '') + (r.stderr ?? '') || r.error?.message}`.slice(0, 500));
  return Number(m[1]);
}
