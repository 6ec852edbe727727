// SCRAM credentials (RFC 5802 §3) and the SCRAM primitives shared by the server
// mechanisms, PLAIN (which checks a password against the SCRAM credentials, since
// no clear password is stored) and the test client.
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes } from 'node:crypto';
import { saslprep } from '@mongodb-js/saslprep';
import type { ScramCredentials, ScramHash } from '../core/credentials.js';
import { SCRAM_HASHES } from '../core/credentials.js';

/**
 * Iteration count for new credentials. RFC 5802 §5.1 and RFC 7677 §4 ask for at
 * least 4096 for SHA-1 and SHA-256; SHA-512 uses the same count.
 */
export const SCRAM_ITERATIONS = 4096;

/** Length of a freshly generated salt, in bytes. */
export const SCRAM_SALT_LENGTH = 16;

const NODE_HASH: Readonly<Record<ScramHash, string>> = {
  'SHA-1': 'sha1',
  'SHA-256': 'sha256',
  'SHA-512': 'sha512',
};

const HASH_LENGTH: Readonly<Record<ScramHash, number>> = {
  'SHA-1': 20,
  'SHA-256': 32,
  'SHA-512': 64,
};

/** Output length of H() in bytes, which is also the length of every SCRAM key and proof. */
export function hashLength(hash: ScramHash): number {
  return HASH_LENGTH[hash];
}

/** RFC 5802 §2.2 HMAC(key, str). */
export function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(NODE_HASH[hash], key).update(data).digest();
}

/** RFC 5802 §2.2 H(str). */
export function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(NODE_HASH[hash]).update(data).digest();
}

/** Bytewise XOR of two buffers of equal length. */
export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError('xor: buffers differ in length');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/**
 * RFC 5802 §2.2 Normalize(): SASLprep (RFC 4013) with the password treated as a
 * "stored string", so unassigned code points are refused as well as prohibited
 * output (RFC 4013 §2.3) and bidi violations (§2.4). Throws in those cases, and
 * for an empty result, since RFC 4616 §2 requires a non-empty password.
 */
export function preparePassword(password: string): string {
  const prepared = saslprep(password);
  if (prepared.length === 0) throw new Error('The password is empty after SASLprep');
  return prepared;
}

/** RFC 5802 §2.2 Hi(str, salt, i) is PBKDF2 with HMAC-H and dkLen = the output length of H. */
export function saltedPassword(hash: ScramHash, preparedPassword: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(Buffer.from(preparedPassword, 'utf8'), salt, iterations, HASH_LENGTH[hash], NODE_HASH[hash]);
}

/** Same as saltedPassword without blocking the event loop (used on the login path). */
export function saltedPasswordAsync(
  hash: ScramHash,
  preparedPassword: string,
  salt: Buffer,
  iterations: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(Buffer.from(preparedPassword, 'utf8'), salt, iterations, HASH_LENGTH[hash], NODE_HASH[hash], (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** RFC 5802 §3: ClientKey, StoredKey and ServerKey from SaltedPassword. */
export function credentialsFromSaltedPassword(
  hash: ScramHash,
  salted: Buffer,
  salt: Buffer,
  iterations: number,
): ScramCredentials {
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    hash,
    salt: Buffer.from(salt),
    iterations,
    storedKey: digest(hash, clientKey),
    serverKey: hmac(hash, salted, 'Server Key'),
  };
}

export interface DeriveOptions {
  /** Salt to use; a random SCRAM_SALT_LENGTH-byte one when absent. */
  salt?: Buffer;
  /** Iteration count; SCRAM_ITERATIONS when absent. */
  iterations?: number;
}

function resolveOptions(opts: DeriveOptions | undefined): { salt: Buffer; iterations: number } {
  const salt = opts?.salt ?? randomBytes(SCRAM_SALT_LENGTH);
  const iterations = opts?.iterations ?? SCRAM_ITERATIONS;
  if (salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`Invalid SCRAM iteration count: ${iterations}`);
  }
  return { salt, iterations };
}

/** What the server stores for `password` under `hash` (RFC 5802 §3). Throws when SASLprep rejects the password. */
export function deriveScramCredentials(password: string, hash: ScramHash, opts?: DeriveOptions): ScramCredentials {
  const { salt, iterations } = resolveOptions(opts);
  const salted = saltedPassword(hash, preparePassword(password), salt, iterations);
  return credentialsFromSaltedPassword(hash, salted, salt, iterations);
}

/** deriveScramCredentials without blocking the event loop. */
export async function deriveScramCredentialsAsync(
  password: string,
  hash: ScramHash,
  opts?: DeriveOptions,
): Promise<ScramCredentials> {
  const { salt, iterations } = resolveOptions(opts);
  const salted = await saltedPasswordAsync(hash, preparePassword(password), salt, iterations);
  return credentialsFromSaltedPassword(hash, salted, salt, iterations);
}

/** Credentials for every supported hash, each with its own random salt. */
export function deriveAllScramCredentials(password: string): ScramCredentials[] {
  return SCRAM_HASHES.map((hash) => deriveScramCredentials(password, hash));
}
