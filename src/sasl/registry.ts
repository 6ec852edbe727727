// The mechanisms Shoal knows and the policy for which ones a stream is offered
// (RFC 6120 §6.4.1). A new mechanism is a new file plus one line in ALL_MECHANISMS.
import type { SaslContext, SaslMechanism } from '../core/sasl.js';
import { plainMechanism } from './plain.js';
import { scramMechanism } from './scram.js';
import { digestMd5Mechanism } from './digest-md5.js';
import { cramMd5Mechanism } from './cram-md5.js';
import { oauthBearerMechanism } from './oauthbearer.js';
import { xOauth2Mechanism } from './x-oauth2.js';

/** Every implemented mechanism, strongest first. */
export const ALL_MECHANISMS: SaslMechanism[] = [
  scramMechanism('SHA-512', true),
  scramMechanism('SHA-256', true),
  scramMechanism('SHA-1', true),
  scramMechanism('SHA-512', false),
  scramMechanism('SHA-256', false),
  scramMechanism('SHA-1', false),
  digestMd5Mechanism(),
  cramMd5Mechanism(),
  oauthBearerMechanism(),
  xOauth2Mechanism(),
  plainMechanism(),
];

// Which mechanisms are enabled when the configuration does not say is decided in one
// place: DEFAULT_SASL_MECHANISMS in config/schema.ts.

/** The mechanism called `name` (SASL names are upper case, RFC 4422 §3.1), if implemented. */
export function findMechanism(name: string): SaslMechanism | undefined {
  return ALL_MECHANISMS.find((m) => m.name === name);
}

export interface OfferOptions {
  /** Offer mechanisms that require TLS (PLAIN, X-OAUTH2, OAUTHBEARER) on unencrypted streams too. */
  allowPlainWithoutTls: boolean;
  /**
   * Accounts live in an external service (auth.backend: http), which can only check a
   * password or a token: mechanisms that need verifiers stored here are not offered.
   */
  externalAccounts?: boolean;
}

/**
 * What to list in <mechanisms/> on this stream, strongest first: the enabled
 * mechanisms that can run on this connection, without those that send secrets in
 * the clear unless the stream is encrypted or the configuration allows it
 * (RFC 6120 §6.4.1, §13.8).
 */
export function offeredMechanisms(
  ctx: SaslContext,
  enabled: readonly string[],
  opts: OfferOptions,
): SaslMechanism[] {
  return ALL_MECHANISMS.filter(
    (m) =>
      enabled.includes(m.name) &&
      (!m.requiresTls || ctx.secure || opts.allowPlainWithoutTls) &&
      // RFC 5802 §6: channel binding only exists on TLS, whatever else is allowed.
      // A stream counted as secure without TLS of its own (loopback HTTP, a TLS proxy) has none.
      (!m.name.endsWith('-PLUS') || (ctx.secure && ctx.channelBindingTypes.length > 0)) &&
      (!opts.externalAccounts || (m.credential ?? 'stored') !== 'stored') &&
      m.available(ctx),
  ).sort((a, b) => b.strength - a.strength);
}
