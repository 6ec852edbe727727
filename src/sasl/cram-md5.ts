// CRAM-MD5 (RFC 2195), server side. The server sends a unique challenge, the
// client answers "username HMAC-MD5(password, challenge)" in hex. The password
// never crosses the wire, but there is no mutual authentication, no channel
// binding, and a captured exchange allows an offline dictionary attack; the
// server needs the HMAC key, so it keeps the HMAC-MD5 inner/outer states
// (legacy-credentials.ts), which are a password equivalent for CRAM-MD5.
import { randomBytes } from 'node:crypto';
import type { SaslContext, SaslMechanism, SaslStep } from '../core/sasl.js';
import { decodeUtf8, failure, sameBytes } from './common.js';
import { prepareUsername } from '../core/identity.js';
import { hmacMd5FromSecret } from './legacy-credentials.js';
import { SingleResponseExchange } from './single-response.js';

export interface CramMd5Options {
  /** Produces the challenge; defaults to an RFC 2195 msg-id with random digits. Tests inject the RFC's. */
  challenge?: (host: string) => string;
}

/** RFC 2195 §2: "<" random digits "." timestamp "@" hostname ">", unique for every exchange. */
function defaultChallenge(host: string): string {
  return `<${randomBytes(8).readBigUInt64BE()}.${Date.now()}@${host}>`;
}

const RESPONSE = /^(.+) ([0-9a-fA-F]{32})$/s;

export function cramMd5Mechanism(opts: CramMd5Options = {}): SaslMechanism {
  return {
    name: 'CRAM-MD5',
    // The password is not sent, so TLS is not required to keep it secret (RFC 2195 §4).
    requiresTls: false,
    strength: 25,
    credential: 'stored',
    available: () => true,
    start: (ctx) => new CramMd5Exchange(ctx, (opts.challenge ?? defaultChallenge)(ctx.host)),
  };
}

class CramMd5Exchange extends SingleResponseExchange {
  constructor(
    ctx: SaslContext,
    private readonly challenge: string,
  ) {
    // Server-first (RFC 2195 §2): there is nothing a client could send first.
    super(ctx, 'CRAM-MD5', { serverChallenge: Buffer.from(challenge, 'utf8') });
  }

  protected async check(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    const match = text === undefined ? null : RESPONSE.exec(text);
    if (match === null) return failure('malformed-request', 'Expected "username digest"');
    const username = prepareUsername(match[1]!);
    if (username === undefined) return failure('not-authorized');
    this.authcid = username;
    const secrets = (await this.ctx.legacySecrets?.get(this.ctx.host, username, 'CRAM-MD5', '')) ?? [];
    const digest = Buffer.from(match[2]!.toLowerCase(), 'hex');
    // An unknown user, or one whose password predates enabling CRAM-MD5, fails like a wrong password.
    const ok = secrets.some((s) => s.secret.length === 32 && sameBytes(hmacMd5FromSecret(s.secret, Buffer.from(this.challenge, 'utf8')), digest));
    return ok ? { kind: 'success', username } : failure('not-authorized');
  }
}
