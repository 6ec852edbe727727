// What X-OAUTH2 and OAUTHBEARER share: asking the configured token verifier
// (the identity a client names is turned into an account by core/identity.ts).
import type { TokenVerdict } from '../core/credentials.js';
import type { SaslContext } from '../core/sasl.js';

/** Verifies `token`; a verifier that throws counts as unavailable (temporary-auth-failure). */
export async function verifyToken(ctx: SaslContext, token: string, claimed: string | undefined): Promise<TokenVerdict> {
  if (ctx.tokens === undefined) return { ok: false, reason: 'unavailable' };
  try {
    return await ctx.tokens.verify(token, ctx.host, claimed);
  } catch {
    return { ok: false, reason: 'unavailable' };
  }
}
