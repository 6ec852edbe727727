// TokenStore on any Kysely dialect: locally issued access tokens, kept as the
// SHA-256 of their text so a copy of the database yields no usable token.
import type { Kysely, Selectable } from 'kysely';
import type { StoredToken, TokenStore } from '../types.js';
import type { AuthTokensTable, Database } from './schema.js';

function fromRow(r: Selectable<AuthTokensTable>): StoredToken {
  const token: StoredToken = {
    id: r.id,
    host: r.host,
    username: r.username,
    scope: r.scope === '' ? [] : r.scope.split(' '),
    createdAt: new Date(r.created_at),
  };
  if (r.expires_at !== null) token.expiresAt = new Date(r.expires_at);
  if (r.revoked_at !== null) token.revokedAt = new Date(r.revoked_at);
  return token;
}

export class SqlTokenStore implements TokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async add(token: StoredToken, hash: Buffer): Promise<void> {
    await this.db
      .insertInto('auth_tokens')
      .values({
        id: token.id,
        host: token.host,
        username: token.username,
        token_hash: hash,
        scope: token.scope.join(' '),
        created_at: token.createdAt.toISOString(),
        expires_at: token.expiresAt?.toISOString() ?? null,
        revoked_at: token.revokedAt?.toISOString() ?? null,
      })
      .execute();
  }

  async findByHash(hash: Buffer): Promise<StoredToken | undefined> {
    const row = await this.db.selectFrom('auth_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  async revoke(id: string, at: Date = new Date()): Promise<boolean> {
    const updated = await this.db
      .updateTable('auth_tokens')
      .set({ revoked_at: at.toISOString() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) > 0;
  }

  async list(host: string, username: string): Promise<StoredToken[]> {
    const rows = await this.db
      .selectFrom('auth_tokens')
      .selectAll()
      .where('host', '=', host)
      .where('username', '=', username)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(fromRow);
  }
}
