// AccountStore on any Kysely dialect (SQLite, PostgreSQL).
import type { Kysely, Transaction } from 'kysely';
import {
  LEGACY_SASL_MECHANISMS,
  SCRAM_HASHES,
  type Account,
  type AccountStore,
  type LegacySaslSecret,
  type ScramCredentials,
  type ScramHash,
} from '../types.js';
import type { Database } from './schema.js';
import { prepare } from './prepared.js';
import { deleteRoster } from './roster.js';

function isScramHash(value: string): value is ScramHash {
  return (SCRAM_HASHES as readonly string[]).includes(value);
}

function checkCredentials(credentials: ScramCredentials[]): void {
  const seen = new Set<ScramHash>();
  for (const c of credentials) {
    if (!isScramHash(c.hash)) throw new Error(`unsupported SCRAM hash ${String(c.hash)}`);
    if (seen.has(c.hash)) throw new Error(`credentials for ${c.hash} given twice`);
    if (!Number.isInteger(c.iterations) || c.iterations < 1) throw new Error(`invalid SCRAM iteration count ${c.iterations}`);
    seen.add(c.hash);
  }
}

async function insertCredentials(
  trx: Transaction<Database>,
  host: string,
  username: string,
  credentials: ScramCredentials[],
): Promise<void> {
  if (credentials.length === 0) return;
  await trx
    .insertInto('scram_credentials')
    .values(
      credentials.map((c) => ({
        host,
        username,
        hash: c.hash,
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.storedKey,
        server_key: c.serverKey,
      })),
    )
    .execute();
}

function checkLegacySecrets(secrets: LegacySaslSecret[]): void {
  const seen = new Set<string>();
  for (const s of secrets) {
    if (!LEGACY_SASL_MECHANISMS.includes(s.mechanism)) throw new Error(`unsupported mechanism ${String(s.mechanism)}`);
    const key = `${s.mechanism}\0${s.realm}\0${s.variant}`;
    if (seen.has(key)) throw new Error(`${s.mechanism} secret for realm '${s.realm}' (${s.variant}) given twice`);
    seen.add(key);
  }
}

/** Writes `secrets` in place of every CRAM-MD5/DIGEST-MD5 secret the account had. */
async function replaceLegacySecrets(trx: Transaction<Database>, host: string, username: string, secrets: LegacySaslSecret[]): Promise<void> {
  await trx.deleteFrom('legacy_sasl_secrets').where('host', '=', host).where('username', '=', username).execute();
  if (secrets.length === 0) return;
  await trx
    .insertInto('legacy_sasl_secrets')
    .values(secrets.map((s) => ({ host, username, mechanism: s.mechanism, realm: s.realm, variant: s.variant, secret: s.secret })))
    .execute();
}

export class SqlAccountStore implements AccountStore {
  /** Read at every SCRAM login (RFC 5802 §5.1: the stored keys, no PBKDF2 per login), compiled once. */
  private readonly credentialsQuery;

  constructor(private readonly db: Kysely<Database>) {
    this.credentialsQuery = prepare(db, (d, p) =>
      d
        .selectFrom('scram_credentials')
        .select(['hash', 'salt', 'iterations', 'stored_key', 'server_key'])
        .where('host', '=', p('host'))
        .where('username', '=', p('username'))
        .where('hash', '=', p('hash')),
    );
  }

  async create(host: string, username: string, credentials: ScramCredentials[], legacy: LegacySaslSecret[] = []): Promise<boolean> {
    checkCredentials(credentials);
    checkLegacySecrets(legacy);
    return this.db.transaction().execute(async (trx) => {
      // ON CONFLICT DO NOTHING rather than a prior SELECT: two concurrent
      // registrations of one name must not both pass a check.
      const inserted = await trx
        .insertInto('accounts')
        .values({ host, username, created_at: new Date().toISOString() })
        .onConflict((oc) => oc.columns(['host', 'username']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      await insertCredentials(trx, host, username, credentials);
      await replaceLegacySecrets(trx, host, username, legacy);
      return true;
    });
  }

  async setCredentials(host: string, username: string, credentials: ScramCredentials[], legacy: LegacySaslSecret[] = []): Promise<boolean> {
    checkCredentials(credentials);
    checkLegacySecrets(legacy);
    return this.db.transaction().execute(async (trx) => {
      const account = await trx
        .selectFrom('accounts')
        .select('username')
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      if (account === undefined) return false;
      await trx.deleteFrom('scram_credentials').where('host', '=', host).where('username', '=', username).execute();
      await insertCredentials(trx, host, username, credentials);
      // A CRAM-MD5/DIGEST-MD5 secret of the old password would still log in with it.
      await replaceLegacySecrets(trx, host, username, legacy);
      return true;
    });
  }

  async remove(host: string, username: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('scram_credentials').where('host', '=', host).where('username', '=', username).execute();
      await deleteRoster(trx, host, username);
      const deleted = await trx
        .deleteFrom('accounts')
        .where('host', '=', host)
        .where('username', '=', username)
        .executeTakeFirst();
      return Number(deleted.numDeletedRows) > 0;
    });
  }

  async exists(host: string, username: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('accounts')
      .select('username')
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return row !== undefined;
  }

  async list(host: string): Promise<Account[]> {
    const rows = await this.db
      .selectFrom('accounts')
      .select(['host', 'username', 'created_at'])
      .where('host', '=', host)
      .orderBy('username')
      .execute();
    return rows.map((r) => ({ host: r.host, username: r.username, createdAt: new Date(r.created_at) }));
  }

  async getScramCredentials(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined> {
    const row = await this.credentialsQuery.first({ host, username, hash });
    if (row === undefined || !isScramHash(row.hash)) return undefined;
    return {
      hash: row.hash,
      salt: Buffer.from(row.salt),
      iterations: Number(row.iterations),
      storedKey: Buffer.from(row.stored_key),
      serverKey: Buffer.from(row.server_key),
    };
  }
}
