// OAUTHBEARER (RFC 7628), server side: a GS2 header, then key/value pairs
// separated by ^A, the token in "auth=Bearer <token>". A refused token gets the
// error JSON of §3.2.2 as a challenge; the client answers with a single ^A (or
// aborts) and only then does the exchange fail (§3.2.3). The token travels in the
// clear inside the stream, so TLS is required (§3, §5).
import type { TokenFailure } from '../core/credentials.js';
import type { SaslContext, SaslExchange, SaslFailureCondition, SaslMechanism, SaslStep } from '../core/sasl.js';
import { decodeUtf8, emptyChallenge, failure } from './common.js';
import { decodeSaslname } from './scram.js';
import { verifyToken } from './token-common.js';
import { claimedLocalpart } from '../core/identity.js';

const KVSEP = '\x01';
// RFC 7628 §3.1: key = 1*(ALPHA); value = *(VCHAR / SP / HTAB / CR / LF)
const KVPAIR = /^([A-Za-z]+)=([\x21-\x7e \t\r\n]*)$/;
// RFC 6750 §2.1: b64token
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** RFC 7628 §3.2.2 status values (from RFC 6750 §3.1). */
type ErrorStatus = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

export interface ParsedClientResponse {
  /** The authzid of the GS2 header, decoded (RFC 5801 §4), if any. */
  authzid?: string;
  /** Every key/value pair, keys as sent. */
  pairs: Map<string, string>;
}

/**
 * RFC 7628 §3.1 client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep. Returns
 * 'kvsep' for the lone ^A and undefined when the message does not parse.
 */
export function parseClientResponse(text: string): ParsedClientResponse | 'kvsep' | undefined {
  if (text === KVSEP) return 'kvsep';
  // RFC 5801 §4 gs2-header = [gs2-nonstd-flag ","] gs2-cb-flag "," [gs2-authzid] ","
  const first = text.indexOf(',');
  const second = first < 0 ? -1 : text.indexOf(',', first + 1);
  if (second < 0) return undefined;
  const flag = text.slice(0, first);
  const authzidText = text.slice(first + 1, second);
  // OAUTHBEARER has no channel binding: a client asking for it ("p=") cannot be served.
  if (flag !== 'n' && flag !== 'y') return undefined;
  let authzid: string | undefined;
  if (authzidText !== '') {
    if (!authzidText.startsWith('a=')) return undefined;
    authzid = decodeSaslname(authzidText.slice(2));
    if (authzid === undefined) return undefined;
  }
  const body = text.slice(second + 1);
  if (!body.startsWith(KVSEP) || !body.endsWith(KVSEP) || body.length < 2) return undefined;
  const fields = body.slice(1, -1).split(KVSEP);
  // Every kvpair ends with its own kvsep, so the last field is the empty one after it.
  if (fields.pop() !== '') return undefined;
  const pairs = new Map<string, string>();
  for (const field of fields) {
    const m = KVPAIR.exec(field);
    if (m === null || pairs.has(m[1]!)) return undefined;
    pairs.set(m[1]!, m[2]!);
  }
  return authzid === undefined ? { pairs } : { authzid, pairs };
}

/** The host a client says it connected to must be this domain or a name under it (RFC 7628 §3.2). */
function hostMatches(value: string, domain: string): boolean {
  const h = value.toLowerCase().replace(/\.$/, '');
  return h === domain || h.endsWith(`.${domain}`);
}

function statusFor(reason: TokenFailure): ErrorStatus {
  return reason === 'insufficient-scope' ? 'insufficient_scope' : 'invalid_token';
}

export function oauthBearerMechanism(): SaslMechanism {
  return {
    name: 'OAUTHBEARER',
    requiresTls: true,
    strength: 20,
    credential: 'token',
    available: (ctx) => ctx.tokens !== undefined,
    start: (ctx) => new OauthBearerExchange(ctx),
  };
}

class OauthBearerExchange implements SaslExchange {
  private state: 'initial' | 'awaiting-response' | 'awaiting-dummy' | 'done' = 'initial';
  /** The failure to report once the client has acknowledged the error JSON. */
  private pendingFailure: SaslFailureCondition = 'not-authorized';
  authcid: string | undefined;

  constructor(private readonly ctx: SaslContext) {}

  async step(response: Buffer | undefined): Promise<SaslStep> {
    const state = this.state;
    if (state === 'initial' && response === undefined) {
      this.state = 'awaiting-response';
      return emptyChallenge();
    }
    if (state === 'awaiting-dummy') {
      this.state = 'done';
      // §3.2.3: the client must answer the error with a single ^A; anything else fails the same way.
      return failure(this.pendingFailure);
    }
    this.state = 'done';
    if (state === 'done' || response === undefined) return failure('malformed-request', 'Unexpected OAUTHBEARER message');
    const result = await this.check(response);
    if (result.kind === 'challenge') this.state = 'awaiting-dummy';
    return result;
  }

  /** §3.2.2: the error JSON as a challenge; the exchange fails after the client's dummy response. */
  private error(status: ErrorStatus, then: SaslFailureCondition): SaslStep {
    this.pendingFailure = then;
    const body: Record<string, string> = { status };
    const { requiredScope, openidConfiguration } = this.ctx.tokens ?? {};
    if (requiredScope !== undefined) body.scope = requiredScope;
    if (openidConfiguration !== undefined) body['openid-configuration'] = openidConfiguration;
    return { kind: 'challenge', data: Buffer.from(JSON.stringify(body), 'utf8') };
  }

  private async check(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    const parsed = text === undefined ? undefined : parseClientResponse(text);
    // §3.1: a lone ^A as the first message carries nothing to answer with discovery data.
    if (parsed === undefined || parsed === 'kvsep') return failure('malformed-request', 'Bad OAUTHBEARER message');
    const host = this.ctx.host;
    let claimed: string | undefined;
    if (parsed.authzid !== undefined) {
      claimed = claimedLocalpart(parsed.authzid, host);
      if (claimed === undefined) return this.error('invalid_token', 'not-authorized');
      this.authcid = claimed;
    }
    // §3.2: values the server knows otherwise must match; the port is not checked, since
    // the client may have reached us through a proxy or an SRV target on another port.
    const hostValue = parsed.pairs.get('host');
    if (hostValue !== undefined && !hostMatches(hostValue, host)) return this.error('invalid_request', 'not-authorized');
    const auth = parsed.pairs.get('auth');
    if (auth === undefined) return this.error('invalid_request', 'malformed-request');
    const bearer = BEARER.exec(auth);
    // §4.3: an empty (or non-bearer) authorization is how a client asks what it needs.
    if (bearer === null) return this.error('invalid_token', 'not-authorized');

    const verdict = await verifyToken(this.ctx, bearer[1]!, claimed);
    if (!verdict.ok) {
      if (verdict.reason === 'unavailable') return failure('temporary-auth-failure');
      return this.error(statusFor(verdict.reason), 'not-authorized');
    }
    this.authcid ??= verdict.username;
    // The token must be the named user's (RFC 6120 §6.3.8: no acting for another account).
    if (claimed !== undefined && verdict.username !== claimed) return this.error('invalid_token', 'not-authorized');
    return { kind: 'success', username: verdict.username };
  }
}
