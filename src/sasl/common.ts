// Helpers shared by the mechanisms: decoding, identity preparation and the
// authorization identity rule. Kept apart so each mechanism file stays about its
// own exchange.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { saslprep } from '@mongodb-js/saslprep';
import type { SaslStep, SaslFailureCondition } from './mechanism.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 decoding: undefined for ill-formed input instead of U+FFFD replacement. */
export function decodeUtf8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64 (RFC 4648 §4, padded): undefined for anything Buffer.from would
 * silently skip or truncate, and for non-canonical trailing bits.
 */
export function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Constant-time equality that also accepts buffers of different lengths (then false). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// RFC 7622 §3.3.1: characters a localpart can never contain.
const LOCALPART_FORBIDDEN = /["&'/:<>@\s]/u;
const LOCALPART_MAX_BYTES = 1023;

/**
 * Prepares a SASL simple user name as an XMPP localpart (RFC 6120 §6.3.7): the
 * authentication identity is the localpart of the account. Uses SASLprep (RFC
 * 4013) followed by lowercasing, in the spirit of the UsernameCaseMapped profile
 * of RFC 8265 §3.3; undefined when the name cannot be a localpart.
 *
 * TODO(jid): switch to prepLocalpart from ../jid/jid.js once it exists, so that
 * SASL and JIDs share one definition of a localpart.
 */
export function prepareUsername(raw: string): string | undefined {
  let prepared: string;
  try {
    prepared = saslprep(raw).toLowerCase();
  } catch {
    return undefined;
  }
  if (prepared.length === 0 || LOCALPART_FORBIDDEN.test(prepared)) return undefined;
  if (Buffer.byteLength(prepared, 'utf8') > LOCALPART_MAX_BYTES) return undefined;
  return prepared;
}

/**
 * RFC 6120 §6.3.8: a client may only ask to act as itself. The authzid is accepted
 * when it names the authenticated account, either as its bare JID
 * (localpart@host) or as the bare localpart.
 */
export function authzidMatches(authzid: string, username: string, host: string): boolean {
  if (authzid.includes('/')) return false;
  const at = authzid.indexOf('@');
  const local = at === -1 ? authzid : authzid.slice(0, at);
  if (at !== -1) {
    const domain = authzid.slice(at + 1).replace(/\.$/, '');
    if (domain.toLowerCase() !== host.toLowerCase()) return false;
  }
  return prepareUsername(local) === username;
}

// A per-process secret for the fake salts of unknown users (RFC 5802 §9 asks the
// server not to reveal whether a user exists; a salt that changed on every
// attempt would).
const FAKE_SALT_SECRET = randomBytes(32);

/** A salt that is stable for (label, host, username) within this process and reveals nothing. */
export function fakeSalt(label: string, host: string, username: string, length: number): Buffer {
  return createHmac('sha256', FAKE_SALT_SECRET)
    .update(`${label}\0${host}\0${username}`)
    .digest()
    .subarray(0, length);
}

export function failure(condition: SaslFailureCondition, text?: string): SaslStep {
  return text === undefined ? { kind: 'failure', condition } : { kind: 'failure', condition, text };
}

/** RFC 6120 §6.4.2: without an initial response the server answers with an empty challenge. */
export function emptyChallenge(): SaslStep {
  return { kind: 'challenge', data: Buffer.alloc(0) };
}
