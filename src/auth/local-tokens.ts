// `tokens: local`: opaque access tokens issued by `shoal token issue`. The token
// text is shown once; the server keeps only its SHA-256, which is enough to
// recognise it (the text has 256 random bits, so no slow hash is needed) and
// useless to whoever copies the database.
import { createHash, randomBytes } from 'node:crypto';
import type { StoredToken, TokenStore, TokenVerdict, TokenVerifier } from '../core/credentials.js';

/** Longer inputs cannot be ours; refusing them early bounds the work per attempt. */
const MAX_TOKEN_LENGTH = 4096;

/** SHA-256 of the token text, the only form in which tokens are stored. */
export function hashToken(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export interface IssueOptions {
  host: string;
  username: string;
  /** Lifetime in seconds; undefined for a token that does not expire. */
  ttlSeconds?: number;
  scope?: readonly string[];
  now?: Date;
}

/**
 * Creates and stores a token; returns its text (to hand to the user, never stored)
 * and its record. The text is "<id>.<secret>": the id (public, for `token list` and
 * `token revoke`) and 32 random bytes, all RFC 6750 §2.1 b64token characters.
 */
export async function issueToken(store: TokenStore, opts: IssueOptions): Promise<{ text: string; token: StoredToken }> {
  const id = randomBytes(6).toString('hex');
  const text = `${id}.${randomBytes(32).toString('base64url')}`;
  const createdAt = opts.now ?? new Date();
  const token: StoredToken = { id, host: opts.host, username: opts.username, scope: [...(opts.scope ?? [])], createdAt };
  if (opts.ttlSeconds !== undefined) token.expiresAt = new Date(createdAt.getTime() + opts.ttlSeconds * 1000);
  await store.add(token, hashToken(text));
  return { text, token };
}

/** Parses a duration such as "90", "90s", "15m", "1h", "7d" into seconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/.exec(text.trim());
  if (m === null) return undefined;
  const value = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return value > 0 && Number.isFinite(value) ? value : undefined;
}

export class LocalTokenVerifier implements TokenVerifier {
  constructor(
    private readonly store: TokenStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async verify(text: string, host: string): Promise<TokenVerdict> {
    if (text.length === 0 || text.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
    const token = await this.store.findByHash(hashToken(text));
    if (token === undefined) return { ok: false, reason: 'unknown' };
    // A token is for one account of one domain; on another domain's stream it names no one.
    if (token.host !== host) return { ok: false, reason: 'wrong-host' };
    if (token.revokedAt !== undefined) return { ok: false, reason: 'revoked' };
    if (token.expiresAt !== undefined && token.expiresAt.getTime() <= this.now().getTime()) return { ok: false, reason: 'expired' };
    return { ok: true, username: token.username, scope: token.scope };
  }
}
