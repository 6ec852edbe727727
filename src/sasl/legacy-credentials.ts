// What the server keeps for CRAM-MD5 and DIGEST-MD5 instead of the password,
// computed when the password is set (these mechanisms cannot work from SCRAM
// credentials). Both are password equivalents for their own mechanism: a stolen
// secret logs in with that mechanism, so they are only derived when the
// mechanism is enabled, and replaced whenever the password changes.
import { createHash } from 'node:crypto';
import type { LegacySaslMechanism, LegacySaslSecret } from '../core/credentials.js';
import { preparePassword } from './credentials.js';
import { MD5_BLOCK_BYTES, md5Continue, md5StateAfterBlock } from './md5.js';

export const CRAM_MD5_VARIANT = 'hmac-md5-states';
export const DIGEST_UTF8_VARIANT = 'utf-8';
export const DIGEST_LATIN1_VARIANT = 'iso-8859-1';

const IPAD = 0x36;
const OPAD = 0x5c;

/**
 * RFC 2195 §2 / RFC 2104 §4: the MD5 states after absorbing K XOR ipad and
 * K XOR opad (16 bytes each, inner first). The key is the SASLprep'ed password
 * in UTF-8; keys longer than the block are first hashed (RFC 2104 §2).
 */
export function cramMd5Secret(password: string): Buffer {
  let key = Buffer.from(preparePassword(password), 'utf8');
  if (key.length > MD5_BLOCK_BYTES) key = createHash('md5').update(key).digest();
  const inner = Buffer.alloc(MD5_BLOCK_BYTES, IPAD);
  const outer = Buffer.alloc(MD5_BLOCK_BYTES, OPAD);
  for (let i = 0; i < key.length; i++) {
    inner[i] = inner[i]! ^ key[i]!;
    outer[i] = outer[i]! ^ key[i]!;
  }
  return Buffer.concat([md5StateAfterBlock(inner), md5StateAfterBlock(outer)]);
}

/** RFC 2104 HMAC-MD5(K, text) from the states cramMd5Secret stored. */
export function hmacMd5FromSecret(secret: Buffer, text: Buffer): Buffer {
  if (secret.length !== 32) throw new RangeError('a CRAM-MD5 secret is 32 bytes');
  const innerDigest = md5Continue(secret.subarray(0, 16), MD5_BLOCK_BYTES, text);
  return md5Continue(secret.subarray(16, 32), MD5_BLOCK_BYTES, innerDigest);
}

/**
 * RFC 2831 §2.1.2.1: with charset=utf-8, a string whose characters all fit in
 * ISO 8859-1 is hashed in ISO 8859-1; any other string in UTF-8.
 */
export function rfc2831Encode(s: string): Buffer {
  for (const ch of s) if (ch.codePointAt(0)! > 0xff) return Buffer.from(s, 'utf8');
  return Buffer.from(s, 'latin1');
}

/** H({ username-value, ":", realm-value, ":", passwd }) of RFC 2831 §2.1.2.1, from byte strings. */
export function digestMd5UserHash(username: Buffer, realm: Buffer, password: Buffer): Buffer {
  return createHash('md5').update(Buffer.concat([username, Buffer.from(':'), realm, Buffer.from(':'), password])).digest();
}

/**
 * The DIGEST-MD5 secrets for one realm: the hash with the strings converted as
 * RFC 2831 §2.1.2.1 says, and, when that differs (non-ASCII text that fits in
 * ISO 8859-1), the hash over plain UTF-8, which many clients compute instead.
 */
export function digestMd5Secrets(username: string, realm: string, password: string): LegacySaslSecret[] {
  const prepared = preparePassword(password);
  const rfc = digestMd5UserHash(rfc2831Encode(username), rfc2831Encode(realm), rfc2831Encode(prepared));
  const utf8 = digestMd5UserHash(Buffer.from(username, 'utf8'), Buffer.from(realm, 'utf8'), Buffer.from(prepared, 'utf8'));
  const secrets: LegacySaslSecret[] = [{ mechanism: 'DIGEST-MD5', realm, variant: DIGEST_UTF8_VARIANT, secret: utf8 }];
  if (!rfc.equals(utf8)) secrets.push({ mechanism: 'DIGEST-MD5', realm, variant: DIGEST_LATIN1_VARIANT, secret: rfc });
  return secrets;
}

/** Which of `enabled` (configured mechanism names) need secrets stored at password time. */
export function legacyMechanismsIn(enabled: readonly string[]): LegacySaslMechanism[] {
  return (['CRAM-MD5', 'DIGEST-MD5'] as const).filter((m) => enabled.includes(m));
}

/**
 * Every CRAM-MD5/DIGEST-MD5 secret to store for `username@host` with this
 * password, for the mechanisms enabled (none when neither is). The DIGEST-MD5
 * realm is the account's domain, which is what the server announces.
 * Throws when SASLprep rejects the password.
 */
export function deriveLegacySecrets(host: string, username: string, password: string, enabled: readonly string[]): LegacySaslSecret[] {
  const out: LegacySaslSecret[] = [];
  for (const mechanism of legacyMechanismsIn(enabled)) {
    if (mechanism === 'CRAM-MD5') out.push({ mechanism, realm: '', variant: CRAM_MD5_VARIANT, secret: cramMd5Secret(password) });
    else out.push(...digestMd5Secrets(username, host, password));
  }
  return out;
}
