// The pluggable checks behind the SASL mechanisms that do not use stored
// verifiers: access tokens (X-OAUTH2, OAUTHBEARER) and clear passwords (PLAIN
// with an external account service). Implementations: local.ts (tokens issued
// by `shoal token issue`), jwt.ts (JWTs), http.ts (an HTTP endpoint).

/** Why a token was refused; OAUTHBEARER maps these to its error status (RFC 7628 §3.2.2). */
export type TokenFailure =
  | 'malformed'
  | 'unknown'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'revoked'
  | 'wrong-host'
  | 'no-account'
  | 'insufficient-scope'
  /** The verifier could not decide (an HTTP endpoint down or slow): temporary-auth-failure. */
  | 'unavailable';

export type TokenVerdict =
  | { ok: true; /** Prepared localpart of the account on the stream's host. */ username: string; scope: readonly string[] }
  | { ok: false; reason: TokenFailure };

export interface TokenVerifier {
  /**
   * Checks `token` for an account of `host`. `claimed` is the prepared localpart the
   * client named, when it named one (an external service may need it); the verdict's
   * username is what the token proves, and the mechanism compares the two.
   */
  verify(token: string, host: string, claimed?: string): Promise<TokenVerdict>;
  /** The scope a token must carry (also sent in OAUTHBEARER's error JSON, RFC 7628 §3.2.2). */
  readonly requiredScope?: string;
  /** OAUTHBEARER 'openid-configuration' for clients that need to obtain a token (RFC 7628 §3.2.2). */
  readonly openidConfiguration?: string;
}

export type PasswordVerdict = 'ok' | 'wrong' | 'unavailable';

export interface PasswordVerifier {
  /** Whether `password` is right for `username@host` ('wrong' also for an unknown user). */
  verify(host: string, username: string, password: string): Promise<PasswordVerdict>;
}
