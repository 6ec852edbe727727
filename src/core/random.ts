// Unpredictable tokens for the hot path (stream ids, RFC 6120 §4.7.3; SCRAM nonces, RFC 5802
// §5.1; connection tags) from a pool the CSPRNG fills in blocks: every byte is used once, so a
// token is as unpredictable as with a call per token, without a call into OpenSSL for each
// (Node pools its randomUUID() the same way).
import { randomBytes, randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let used = POOL_SIZE;

/** `bytes` random bytes, encoded. */
export function randomToken(bytes: number, encoding: 'hex' | 'base64' | 'base64url'): string {
  if (bytes > POOL_SIZE / 4) return randomBytes(bytes).toString(encoding);
  if (used + bytes > POOL_SIZE) {
    randomFillSync(pool);
    used = 0;
  }
  const token = pool.toString(encoding, used, used + bytes);
  used += bytes;
  return token;
}
