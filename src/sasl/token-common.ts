// What X-OAUTH2 and OAUTHBEARER share: turning the identity a client names into
// an account of this host, and asking the configured token verifier.
import { tryParseJid } from '../jid/jid.js';
import type { TokenVerdict } from '../auth/types.js';
import type { SaslContext } from './mechanism.js';
import { authzidMatches, prepareUsername } from './common.js';

/**
 * The prepared localpart an identity names: a bare localpart, or a bare JID of this
 * host (RFC 6120 §6.3.8). Undefined when it names nothing here.
 */
export function claimedLocalpart(identity: string, host: string): string | undefined {
  if (identity.includes('@') || identity.includes('/')) {
    const jid = tryParseJid(identity);
    if (jid === undefined || jid.local === '' || !authzidMatches(identity, jid.local, host)) return undefined;
    return jid.local;
  }
  return prepareUsername(identity);
}

/** Verifies `token`; a verifier that throws counts as unavailable (temporary-auth-failure). */
export async function verifyToken(ctx: SaslContext, token: string, claimed: string | undefined): Promise<TokenVerdict> {
  if (ctx.tokens === undefined) return { ok: false, reason: 'unavailable' };
  try {
    return await ctx.tokens.verify(token, ctx.host, claimed);
  } catch {
    return { ok: false, reason: 'unavailable' };
  }
}
