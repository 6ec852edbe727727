// MD5 (RFC 1321) with access to the intermediate state, which node:crypto does
// not give. CRAM-MD5 secrets are stored as the two HMAC-MD5 states (RFC 2104 §4:
// "precompute ... K XOR ipad and K XOR opad ... and store them as the
// intermediate results"), so the server can answer a CRAM-MD5 challenge from
// them without ever holding the password. Everything else uses node:crypto.

/** RFC 1321 §3.4: T[i] = floor(2^32 * abs(sin(i))), i = 1..64. */
const T = Uint32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

/** Per-step rotation amounts of the four rounds (RFC 1321 §3.4). */
const S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

/** RFC 1321 §3.3: the initial buffer A, B, C, D. */
export const MD5_INITIAL_STATE: readonly number[] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

export const MD5_BLOCK_BYTES = 64;

const rotl = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;

/** Processes one 64-byte block (RFC 1321 §3.4) into `state` (4 words, updated in place). */
function compress(state: Uint32Array, block: Buffer, offset: number): void {
  const X = new Uint32Array(16);
  for (let j = 0; j < 16; j++) X[j] = block.readUInt32LE(offset + 4 * j);
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let k: number;
    const round = i >>> 4;
    if (round === 0) {
      f = (b & c) | (~b & d);
      k = i;
    } else if (round === 1) {
      f = (b & d) | (c & ~d);
      k = (5 * i + 1) & 15;
    } else if (round === 2) {
      f = b ^ c ^ d;
      k = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      k = (7 * i) & 15;
    }
    const sum = (a + (f >>> 0) + T[i]! + X[k]!) >>> 0;
    a = d;
    d = c;
    c = b;
    b = (b + rotl(sum, S[(round << 2) | (i & 3)]!)) >>> 0;
  }
  state[0] = (state[0]! + a) >>> 0;
  state[1] = (state[1]! + b) >>> 0;
  state[2] = (state[2]! + c) >>> 0;
  state[3] = (state[3]! + d) >>> 0;
}

/** A state as 16 bytes: A, B, C, D, each little-endian (RFC 1321 §3.5 byte order). */
export function encodeMd5State(state: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) out.writeUInt32LE(state[i]! >>> 0, 4 * i);
  return out;
}

export function decodeMd5State(bytes: Buffer): Uint32Array {
  if (bytes.length !== 16) throw new RangeError('an MD5 state is 16 bytes');
  return Uint32Array.from({ length: 4 }, (_, i) => bytes.readUInt32LE(4 * i));
}

/** The state after absorbing exactly one block (`block` must be 64 bytes), starting from the initial state. */
export function md5StateAfterBlock(block: Buffer): Buffer {
  if (block.length !== MD5_BLOCK_BYTES) throw new RangeError('md5StateAfterBlock needs one 64-byte block');
  const state = Uint32Array.from(MD5_INITIAL_STATE);
  compress(state, block, 0);
  return encodeMd5State(state);
}

/**
 * Finishes an MD5 computation that was left at `state` after `processedBytes`
 * bytes (a multiple of 64), by absorbing `data` and the padding of RFC 1321
 * §3.1-3.2 for the total length. Returns the 16-byte digest.
 */
export function md5Continue(state: Buffer, processedBytes: number, data: Buffer): Buffer {
  if (processedBytes % MD5_BLOCK_BYTES !== 0) throw new RangeError('processedBytes must be a multiple of 64');
  const words = decodeMd5State(state);
  const total = processedBytes + data.length;
  // RFC 1321 §3.1: a 1 bit, zeros up to 56 mod 64, then the bit length as 64-bit little-endian.
  const padLength = ((55 - (total % 64) + 64) % 64) + 1;
  const message = Buffer.alloc(data.length + padLength + 8);
  data.copy(message, 0);
  message[data.length] = 0x80;
  const bits = BigInt(total) * 8n;
  message.writeBigUInt64LE(bits & 0xffffffffffffffffn, data.length + padLength);
  for (let offset = 0; offset < message.length; offset += MD5_BLOCK_BYTES) compress(words, message, offset);
  return encodeMd5State(words);
}

/** MD5 of `data` (same as node:crypto's; used to test md5Continue). */
export function md5(data: Buffer): Buffer {
  return md5Continue(encodeMd5State(MD5_INITIAL_STATE), 0, data);
}
