// Writes the same accounts and rosters into each server's own storage, the
// fastest reliable way for each, before the server is started:
// - Shoal: its storage API (accounts.create with SCRAM-SHA-1 credentials, roster.setItem);
// - Prosody: its "internal" storage files (data/<host>/accounts|roster/<user>.dat, Lua tables);
// - ejabberd: an Erlang term file of passwd/roster records, written into Mnesia by the
//   server itself at start (see servers.ts), after a sentinel account registered through
//   ejabberd's own API has been checked to have the same record shape.
// This is the only part of the benchmark that imports Shoal's code, and only its storage.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStorage } from '../../src/storage/index.js';
import { ITERATIONS, type BenchData } from './accounts.js';

export async function provisionShoal(data: BenchData, sqlitePath: string): Promise<void> {
  const storage = await openStorage({ driver: 'sqlite', path: sqlitePath });
  try {
    for (const a of data.accounts) {
      await storage.accounts.create(data.domain, a.user, [
        { hash: 'SHA-1', salt: Buffer.from(a.salt, 'ascii'), iterations: ITERATIONS, storedKey: a.storedKey, serverKey: a.serverKey },
      ]);
    }
    for (const [user, contacts] of data.rosters) {
      for (const c of contacts) {
        await storage.roster.setItem(data.domain, user, {
          jid: `${c}@${data.domain}`,
          subscription: 'both',
          ask: false,
          pendingIn: false,
          approved: false,
          groups: [],
        });
      }
    }
  } finally {
    await storage.close();
  }
}

/** A Lua string literal (Prosody's data files are Lua chunks returning a table). */
const lua = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** Prosody's datamanager escapes every non-alphanumeric byte of a file name as %xx. */
const prosodyName = (s: string): string => s.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export function provisionProsody(data: BenchData, dataPath: string): void {
  const hostDir = join(dataPath, prosodyName(data.domain));
  const accounts = join(hostDir, 'accounts');
  const roster = join(hostDir, 'roster');
  mkdirSync(accounts, { recursive: true });
  mkdirSync(roster, { recursive: true });
  for (const a of data.accounts) {
    // mod_auth_internal_hashed's record: hex keys, the salt as a string.
    writeFileSync(
      join(accounts, `${prosodyName(a.user)}.dat`),
      `return {\n\t["iteration_count"] = ${ITERATIONS};\n\t["salt"] = ${lua(a.salt)};\n\t["server_key"] = ${lua(a.serverKey.toString('hex'))};\n\t["stored_key"] = ${lua(a.storedKey.toString('hex'))};\n};\n`,
    );
  }
  for (const [user, contacts] of data.rosters) {
    // core.rostermanager: items keyed by bare JID, metadata under [false].
    const items = contacts.map((c) => `\t[${lua(`${c}@${data.domain}`)}] = { ["subscription"] = "both"; ["groups"] = {}; };`);
    writeFileSync(join(roster, `${prosodyName(user)}.dat`), `return {\n\t[false] = { ["version"] = 1; ["pending"] = {}; };\n${items.join('\n')}\n};\n`);
  }
}

const bin = (s: string): string => `<<"${s.replace(/[\\"]/g, (c) => `\\${c}`)}">>`;

/** Erlang terms for file:consult/1: #passwd{} with #scram{} (base64 fields, as ejabberd stores them) and #roster{}. */
export function ejabberdTerms(data: BenchData, file: string): number {
  const d = bin(data.domain);
  const lines: string[] = [];
  for (const a of data.accounts) {
    const scram = `{scram,${bin(a.storedKey.toString('base64'))},${bin(a.serverKey.toString('base64'))},${bin(Buffer.from(a.salt, 'ascii').toString('base64'))},sha,${ITERATIONS}}`;
    lines.push(`{passwd,{${bin(a.user)},${d}},${scram}}.`);
  }
  for (const [user, contacts] of data.rosters) {
    const u = bin(user);
    for (const c of contacts) {
      const ljid = `{${bin(c)},${d},<<>>}`;
      lines.push(`{roster,{${u},${d},${ljid}},{${u},${d}},${ljid},<<>>,both,none,[],<<>>,[]}.`);
    }
  }
  writeFileSync(file, lines.join('\n') + '\n');
  return lines.length;
}
