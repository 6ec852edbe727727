// Helpers shared by the mechanisms: decoding, constant-time comparison, fake
// salts and message splitting (identity rules are in core/identity.ts). Kept
// apart so each mechanism file stays about its own exchange.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SaslStep, SaslFailureCondition } from '../core/sasl.js';

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

export function failure(condition: SaslFailureCondition, text?: string, mismatch?: 'channel-binding' | 'downgrade' | 'malformed'): SaslStep {
  const step: SaslStep = text === undefined ? { kind: 'failure', condition } : { kind: 'failure', condition, text };
  if (mismatch !== undefined) step.mismatch = mismatch;
  return step;
}

/** RFC 6120 §6.4.2: without an initial response the server answers with an empty challenge. */
export function emptyChallenge(): SaslStep {
  return { kind: 'challenge', data: Buffer.alloc(0) };
}
