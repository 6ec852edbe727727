// `tokens: jwt`: JWT access tokens (RFC 7519) signed by an identity provider,
// verified with jose against keys configured here: an HS256 shared secret, a PEM
// public key, or a JWKS file. The server stores no token and no user secret; it
// checks the signature with an allowed algorithm only (RFC 8725 §3.1), then exp
// (required), nbf, iss and aud (RFC 7519 §4.1), and maps one claim to the account.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { JwtConfig } from '../config/schema.js';
import type { AccountDirectory } from '../core/credentials.js';
import { claimedLocalpart } from '../core/identity.js';
import type { TokenFailure, TokenVerdict, TokenVerifier } from '../core/credentials.js';

type Key = Uint8Array | KeyObject | JWTVerifyGetKey;

export interface JwtVerifierOptions {
  /** When given, the account a token names must exist (tokens do not create accounts). */
  accounts?: AccountDirectory;
  /** The current time (tests). */
  now?: () => Date;
}

function loadKey(cfg: JwtConfig): { key: Key; algorithms: string[] } {
  if (cfg.secret !== undefined || cfg.secret_file !== undefined) {
    const secret = cfg.secret ?? readFileSync(cfg.secret_file!, 'utf8').replace(/\r?\n$/, '');
    // RFC 7518 §3.2: an HMAC key at least as long as the hash output.
    if (Buffer.byteLength(secret, 'utf8') < 32) throw new Error('the HS256 secret must be at least 32 bytes');
    return { key: new TextEncoder().encode(secret), algorithms: cfg.algorithms ?? ['HS256'] };
  }
  if (cfg.public_key !== undefined) {
    // A public key (SPKI) or a certificate, in PEM.
    const key = createPublicKey(readFileSync(cfg.public_key, 'utf8'));
    const byType = key.asymmetricKeyType === 'ec' ? ['ES256'] : ['RS256'];
    return { key, algorithms: cfg.algorithms ?? byType };
  }
  const jwks = JSON.parse(readFileSync(cfg.jwks!, 'utf8')) as Parameters<typeof createLocalJWKSet>[0];
  return { key: createLocalJWKSet(jwks), algorithms: cfg.algorithms ?? ['RS256', 'ES256'] };
}

function failureFor(err: unknown): TokenFailure {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'not-yet-valid';
    if (err.claim === 'iss') return 'wrong-issuer';
    if (err.claim === 'aud') return 'wrong-audience';
    return 'malformed';
  }
  if (
    err instanceof errors.JWSSignatureVerificationFailed ||
    err instanceof errors.JOSEAlgNotAllowed ||
    err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWKSMultipleMatchingKeys
  ) {
    return 'bad-signature';
  }
  return 'malformed';
}

/** RFC 8693 §4.2 'scope' (space-separated), or the common 'scp' array. */
function scopeOf(payload: JWTPayload): string[] {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter((s) => s !== '');
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string');
  if (typeof payload.scp === 'string') return payload.scp.split(' ').filter((s) => s !== '');
  return [];
}

export class JwtTokenVerifier implements TokenVerifier {
  private readonly key: Key;
  private readonly options: JWTVerifyOptions;

  /** Reads the key material now, so a bad key file stops the server at start. */
  constructor(
    private readonly cfg: JwtConfig,
    private readonly opts: JwtVerifierOptions = {},
  ) {
    const { key, algorithms } = loadKey(cfg);
    this.key = key;
    this.options = {
      algorithms,
      clockTolerance: cfg.clock_tolerance,
      // A token that never expires cannot be an access token (RFC 9068 §2.2).
      requiredClaims: ['exp'],
      ...(cfg.issuer !== undefined && { issuer: cfg.issuer }),
      ...(cfg.audience !== undefined && { audience: cfg.audience }),
    };
  }

  async verify(token: string, host: string): Promise<TokenVerdict> {
    let payload: JWTPayload;
    try {
      const options = this.opts.now ? { ...this.options, currentDate: this.opts.now() } : this.options;
      const key = this.key;
      payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
    } catch (err) {
      return { ok: false, reason: failureFor(err) };
    }
    const value = payload[this.cfg.claim];
    if (typeof value !== 'string' || value === '') return { ok: false, reason: 'malformed' };
    // The claim is a bare JID of this host or a localpart on it (RFC 7622 §3.3 preparation).
    const username = claimedLocalpart(value, host);
    if (username === undefined) return { ok: false, reason: value.includes('@') ? 'wrong-host' : 'malformed' };
    if (this.opts.accounts !== undefined && !(await this.opts.accounts.exists(host, username))) return { ok: false, reason: 'no-account' };
    return { ok: true, username, scope: scopeOf(payload) };
  }
}
