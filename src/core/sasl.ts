// One interface for every SASL mechanism (RFC 6120 §6, RFC 4422). Each mechanism
// lives in its own file under sasl/ and only sees this context, so adding one
// never touches the stream layer, which knows mechanisms only through this file.
import type { CredentialStore, LegacySecretSource, PasswordVerifier, TokenVerifier } from './credentials.js';

/** RFC 6120 §6.5 failure conditions. */
export type SaslFailureCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

/** RFC 5929 / RFC 9266 channel binding types we can offer. */
export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point';

export interface SaslContext {
  /** The served domain the stream is for. */
  host: string;
  /** Whether the stream is encrypted (after STARTTLS). */
  secure: boolean;
  /** Channel binding data for this TLS connection, or undefined when not available. */
  channelBinding(type: ChannelBindingType): Buffer | undefined;
  /** Channel binding types available on this connection (empty without TLS). */
  channelBindingTypes: readonly ChannelBindingType[];
  /** Whether the server advertised any -PLUS mechanism on this stream (RFC 5802 §6 downgrade check). */
  plusAdvertised: boolean;
  /**
   * The client asked this stream for a channel binding type it does not offer (tls-unique, which
   * TLS 1.3 lacks), and the operator allows such clients to fall back (sasl.tls_unique_fallback):
   * a later 'y' flag from it is not treated as a downgrade.
   */
  bindingFallback?: boolean;
  accounts: CredentialStore;
  /** The client's IP address (logs, rate limiting); absent in unit tests. */
  remoteAddress?: string;
  /** CRAM-MD5/DIGEST-MD5 secrets; those mechanisms find no account without it. */
  legacySecrets?: LegacySecretSource;
  /** Checks access tokens for X-OAUTH2 and OAUTHBEARER; those mechanisms are unavailable without it. */
  tokens?: TokenVerifier;
  /** Checks PLAIN passwords instead of the stored SCRAM credentials (auth.backend: http). */
  passwords?: PasswordVerifier;
}

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; additionalData?: Buffer }
  | {
      kind: 'failure';
      condition: SaslFailureCondition;
      text?: string;
      /**
       * Set when the failure is a protocol mismatch, not a check of credentials (a channel binding
       * the stream does not have, a downgrade signal, a malformed message): it is not counted
       * against the client's attempts on the stream nor by the brute-force limits.
       */
      mismatch?: 'channel-binding' | 'downgrade' | 'malformed';
    };

/** One authentication exchange. `step` receives the initial response first (undefined if none was sent), then each response. */
export interface SaslExchange {
  step(response: Buffer | undefined): Promise<SaslStep>;
  /**
   * The account (prepared localpart) the client claimed, once the exchange got
   * that far, whatever the outcome: failed attempts are rate-limited per account.
   */
  readonly authcid?: string;
}

/**
 * What a mechanism checks the client against: verifiers stored for the account
 * (SCRAM, CRAM-MD5, DIGEST-MD5), the password itself (PLAIN), or an access token.
 * Only the last two can be checked by an external account service.
 */
export type SaslCredentialKind = 'stored' | 'password' | 'token';

export interface SaslMechanism {
  readonly name: string;
  /** Offered only on an encrypted stream (PLAIN, -PLUS) unless config allows otherwise. */
  readonly requiresTls: boolean;
  /** Relative strength for ordering <mechanism> elements, highest first. */
  readonly strength: number;
  /** Absent means 'stored'. */
  readonly credential?: SaslCredentialKind;
  /** Whether the mechanism can run on this connection (e.g. -PLUS needs channel binding data). */
  available(ctx: SaslContext): boolean;
  start(ctx: SaslContext): SaslExchange;
}
