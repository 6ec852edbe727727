// PLAIN (RFC 4616). The password is checked against the stored SCRAM credentials:
// SaltedPassword is recomputed with the stored salt and iteration count and the
// resulting StoredKey compared, so no clear password is ever kept.
import type { ScramCredentials, ScramHash } from '../core/credentials.js';
import type { SaslContext, SaslMechanism, SaslStep } from '../core/sasl.js';
import {
  SCRAM_ITERATIONS,
  SCRAM_SALT_LENGTH,
  credentialsFromSaltedPassword,
  preparePassword,
  saltedPasswordAsync,
} from './credentials.js';
import { decodeUtf8, failure, fakeSalt, sameBytes, splitPlainMessage } from './common.js';
import { authzidMatches, prepareUsername } from '../core/identity.js';
import { SingleResponseExchange } from './single-response.js';

/** Strongest first: the hash whose credentials PLAIN checks against. */
const PREFERRED_HASHES: readonly ScramHash[] = ['SHA-512', 'SHA-256', 'SHA-1'];

export function plainMechanism(): SaslMechanism {
  return {
    name: 'PLAIN',
    // RFC 4616 §5 / RFC 6120 §6.4.6: the password travels in the clear, so only over TLS.
    requiresTls: true,
    strength: 10,
    credential: 'password',
    available: () => true,
    start: (ctx) => new PlainExchange(ctx),
  };
}

class PlainExchange extends SingleResponseExchange {
  constructor(ctx: SaslContext) {
    super(ctx, 'PLAIN');
  }

  protected async check(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    if (text === undefined) return failure('malformed-request', 'PLAIN message is not UTF-8');
    const fields = splitPlainMessage(text);
    if (fields === undefined) return failure('malformed-request', 'Bad PLAIN message');
    const { authzid, authcid, secret: password } = fields;

    const username = prepareUsername(authcid);
    if (username === undefined) return failure('not-authorized');
    this.authcid = username;
    if (authzid !== '' && !authzidMatches(authzid, username, this.ctx.host)) return failure('invalid-authzid');

    if (this.ctx.passwords !== undefined) {
      // auth.backend: http: the account service checks the password as the client sent it.
      const verdict = await this.ctx.passwords.verify(this.ctx.host, username, password);
      if (verdict === 'ok') return { kind: 'success', username };
      return failure(verdict === 'wrong' ? 'not-authorized' : 'temporary-auth-failure');
    }

    const { host, accounts } = this.ctx;
    const found = await Promise.all(PREFERRED_HASHES.map((hash) => accounts.getScramCredentials(host, username, hash)));
    const stored = found.find((c): c is ScramCredentials => c !== undefined);

    // An unknown user costs the same key derivation as a known one, so timing
    // does not tell them apart (RFC 4616 §6 leaves this to the server; we follow
    // the same rule as SCRAM, RFC 5802 §9).
    const reference = stored ?? {
      hash: 'SHA-512' as const,
      salt: fakeSalt('PLAIN', host, username, SCRAM_SALT_LENGTH),
      iterations: SCRAM_ITERATIONS,
    };
    let prepared: string;
    try {
      prepared = preparePassword(password);
    } catch {
      // SASLprep refused the password (RFC 4013 §2.3): no stored password can match it.
      return failure('not-authorized');
    }
    const salted = await saltedPasswordAsync(reference.hash, prepared, reference.salt, reference.iterations);
    const derived = credentialsFromSaltedPassword(reference.hash, salted, reference.salt, reference.iterations);
    if (stored === undefined || !sameBytes(derived.storedKey, stored.storedKey)) return failure('not-authorized');
    return { kind: 'success', username };
  }
}
