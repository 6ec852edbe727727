// X-OAUTH2, the seed's token mechanism (as Google Talk used it): a PLAIN-shaped
// message "[authzid] NUL user NUL token" carrying an access token instead of a
// password. The token travels in the clear inside the stream, so TLS is required;
// what the server stores is up to the token verifier (a hash of a local token, or
// only a key to check JWT signatures). No mutual authentication.
import type { SaslContext, SaslMechanism, SaslStep } from '../core/sasl.js';
import { decodeUtf8, failure, splitPlainMessage } from './common.js';
import { authzidMatches } from '../core/identity.js';
import { SingleResponseExchange } from './single-response.js';
import { verifyToken } from './token-common.js';
import { claimedLocalpart } from '../core/identity.js';

export function xOauth2Mechanism(): SaslMechanism {
  return {
    name: 'X-OAUTH2',
    // A bearer token is as good as a password while it is valid (RFC 6750 §5.3).
    requiresTls: true,
    strength: 15,
    credential: 'token',
    available: (ctx) => ctx.tokens !== undefined,
    start: (ctx) => new XOauth2Exchange(ctx),
  };
}

class XOauth2Exchange extends SingleResponseExchange {
  constructor(ctx: SaslContext) {
    super(ctx, 'X-OAUTH2');
  }

  protected async check(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    const fields = text === undefined ? undefined : splitPlainMessage(text);
    if (fields === undefined) return failure('malformed-request', 'Bad X-OAUTH2 message');
    const { authzid, authcid: user, secret: token } = fields;
    const host = this.ctx.host;
    const claimed = claimedLocalpart(user, host);
    if (claimed === undefined) return failure('not-authorized');
    this.authcid = claimed;
    if (authzid !== '' && !authzidMatches(authzid, claimed, host)) return failure('invalid-authzid');
    const verdict = await verifyToken(this.ctx, token, claimed);
    if (!verdict.ok) return failure(verdict.reason === 'unavailable' ? 'temporary-auth-failure' : 'not-authorized');
    // The token must be this user's: a valid token of someone else proves nothing about them.
    if (verdict.username !== claimed) return failure('not-authorized');
    return { kind: 'success', username: claimed };
  }
}
