// Helpers shared by the mechanisms: decoding, identity preparation and the
// authorization identity rule. Kept apart so each mechanism file stays about its
// own exchange.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { JidError, prepDomainpart, prepLocalpart, tryParseJid } from '../jid/jid.js';
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

/**
 * Prepares a SASL simple user name (RFC 6120 §6.3.7): the authentication identity
 * is the localpart of the account's JID, so it gets exactly the localpart
 * preparation (RFC 7622 §3.3, UsernameCaseMapped of RFC 8265 §3.3), the same one
 * account names and JIDs get. Undefined when the name cannot be a localpart.
 */
export function prepareUsername(raw: string): string | undefined {
  try {
    return prepLocalpart(raw);
  } catch (e) {
    if (e instanceof JidError) return undefined;
    throw e;
  }
}

function prepareDomain(host: string): string | undefined {
  try {
    return prepDomainpart(host);
  } catch (e) {
    if (e instanceof JidError) return undefined;
    throw e;
  }
}

/**
 * RFC 6120 §6.3.8: a client may only ask to act as itself. The authzid is accepted
 * when it names the authenticated account, either as its bare JID
 * (localpart@host) or as the bare localpart.
 */
export function authzidMatches(authzid: string, username: string, host: string): boolean {
  if (!authzid.includes('@') && !authzid.includes('/')) return prepareUsername(authzid) === username;
  const jid = tryParseJid(authzid);
  return jid !== undefined && jid.isBare() && jid.local === username && jid.domain === prepareDomain(host);
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

/** The three fields of a PLAIN-shaped message; authcid and secret are never empty. */
export interface PlainFields {
  authzid: string;
  authcid: string;
  secret: string;
}

/**
 * RFC 4616 §2 message = [authzid] UTF8NUL authcid UTF8NUL passwd, the shape X-OAUTH2
 * reuses with a token as the secret. Undefined unless there are exactly three fields
 * and authcid and secret are not empty.
 */
export function splitPlainMessage(text: string): PlainFields | undefined {
  const parts = text.split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid = '', authcid = '', secret = ''] = parts;
  if (authcid === '' || secret === '') return undefined;
  return { authzid, authcid, secret };
}

export function failure(condition: SaslFailureCondition, text?: string): SaslStep {
  return text === undefined ? { kind: 'failure', condition } : { kind: 'failure', condition, text };
}

/** RFC 6120 §6.4.2: without an initial response the server answers with an empty challenge. */
export function emptyChallenge(): SaslStep {
  return { kind: 'challenge', data: Buffer.alloc(0) };
}
