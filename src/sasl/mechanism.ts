// One interface for every SASL mechanism (RFC 6120 §6, RFC 4422). Each mechanism
// lives in its own file and only sees this context, so adding one never touches
// the stream layer.
import type { AccountStore } from '../storage/types.js';

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
  accounts: AccountStore;
}

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; additionalData?: Buffer }
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string };

/** One authentication exchange. `step` receives the initial response first (undefined if none was sent), then each response. */
export interface SaslExchange {
  step(response: Buffer | undefined): Promise<SaslStep>;
}

export interface SaslMechanism {
  readonly name: string;
  /** Offered only on an encrypted stream (PLAIN, -PLUS) unless config allows otherwise. */
  readonly requiresTls: boolean;
  /** Relative strength for ordering <mechanism> elements, highest first. */
  readonly strength: number;
  /** Whether the mechanism can run on this connection (e.g. -PLUS needs channel binding data). */
  available(ctx: SaslContext): boolean;
  start(ctx: SaslContext): SaslExchange;
}
