// Contracts shared by the authentication layers (sasl/, auth/) and storage/:
// what a server keeps instead of passwords, the stores that read them, and the
// pluggable checks behind the mechanisms that do not use stored verifiers
// (access tokens for X-OAUTH2/OAUTHBEARER, clear passwords for PLAIN with an
// external account service). Implementations live in storage/ and auth/.

/** The hash functions SCRAM is defined for here (RFC 5802, RFC 7677, and SHA-512 by the same construction). */
export type ScramHash = 'SHA-1' | 'SHA-256' | 'SHA-512';
export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

/** RFC 5802 §3: what a server keeps instead of the password. */
export interface ScramCredentials {
  hash: ScramHash;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** Mechanisms whose secrets cannot be derived from SCRAM credentials, so they are kept beside them. */
export type LegacySaslMechanism = 'CRAM-MD5' | 'DIGEST-MD5';
export const LEGACY_SASL_MECHANISMS: readonly LegacySaslMechanism[] = ['CRAM-MD5', 'DIGEST-MD5'];

/**
 * A password-derived secret for CRAM-MD5 (RFC 2195) or DIGEST-MD5 (RFC 2831). Never
 * the password itself, but a password equivalent for that mechanism: whoever holds
 * it can log in with that mechanism (not with SCRAM or PLAIN).
 */
export interface LegacySaslSecret {
  mechanism: LegacySaslMechanism;
  /** DIGEST-MD5: the realm the hash is for (a served domain); CRAM-MD5: ''. */
  realm: string;
  /**
   * Which encoding of the strings went into the hash: DIGEST-MD5 'utf-8' or
   * 'iso-8859-1' (RFC 2831 §2.1.2.1), CRAM-MD5 'hmac-md5-states'.
   */
  variant: string;
  /** DIGEST-MD5: H(username:realm:password), 16 bytes; CRAM-MD5: HMAC-MD5 inner and outer states, 32 bytes. */
  secret: Buffer;
}

/** Whether an account exists (the router's bare-JID delivery and the external backends ask). */
export interface AccountDirectory {
  exists(host: string, username: string): Promise<boolean>;
}

/**
 * Records accounts that live in an external service (auth.backend: http) on first
 * login, so rosters and offline messages have an account to belong to.
 */
export interface AccountRecorder extends AccountDirectory {
  /** Creates the account with these SCRAM credentials (none for external accounts); false when it exists. */
  create(host: string, username: string, credentials: ScramCredentials[]): Promise<boolean>;
}

/** The SCRAM verifiers of an account (SCRAM and PLAIN check against them). */
export interface CredentialStore {
  getScramCredentials(host: string, username: string, hash: ScramHash): Promise<ScramCredentials | undefined>;
}

/** Reads the CRAM-MD5/DIGEST-MD5 secrets kept beside the SCRAM credentials. */
export interface LegacySecretSource {
  /** Every stored variant for this account, mechanism and realm (empty when there is none). */
  get(host: string, username: string, mechanism: LegacySaslMechanism, realm: string): Promise<LegacySaslSecret[]>;
}

/** An opaque access token issued by `shoal token issue` (tokens: local), as stored: never the token itself. */
export interface StoredToken {
  /** Public identifier, shown by `shoal token list` and part of the token text; not a secret. */
  id: string;
  host: string;
  username: string;
  /** OAuth-style scope values (RFC 6749 §3.3). */
  scope: string[];
  createdAt: Date;
  expiresAt?: Date;
  revokedAt?: Date;
}

export interface TokenStore {
  /** Stores a new token by the SHA-256 of its text. Throws for an unknown account. */
  add(token: StoredToken, hash: Buffer): Promise<void>;
  /** The token whose text hashes to `hash`, revoked or expired ones included (the caller decides). */
  findByHash(hash: Buffer): Promise<StoredToken | undefined>;
  /** Marks the token revoked; false when there is no such token or it was already revoked. */
  revoke(id: string, at?: Date): Promise<boolean>;
  /** The account's tokens, oldest first. */
  list(host: string, username: string): Promise<StoredToken[]>;
}

/**
 * Brute-force protection for logins: failed attempts per client address and per
 * account (auth/rate-limit.ts implements it with token buckets).
 */
export interface LoginRateLimiter {
  /** Whether attempts from `address` (and, when given, on `account`) must be refused for now. */
  isLimited(address: string, account?: string): boolean;
  /** Whether `address` has no recent failure (its owner may log in to a limited account from it). */
  isClean(address: string): boolean;
  recordFailure(address: string, account?: string): void;
}

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

/** What authentication needs besides the credential stores (built by auth/index.ts from the configuration). */
export interface AuthServices {
  tokens: TokenVerifier;
  /** Set with auth.backend: http; PLAIN then checks passwords there instead of the SCRAM credentials. */
  passwords?: PasswordVerifier;
  /** Whether accounts live outside (auth.backend: http): only PLAIN and the token mechanisms can work. */
  externalAccounts: boolean;
  limiter: LoginRateLimiter;
}
