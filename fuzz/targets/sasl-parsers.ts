// Fuzz target: the parsers and identity rules the SASL mechanisms share, called
// directly, each with its round trip: src/sasl/common.ts, the directive and
// client-response parsers of DIGEST-MD5 and OAUTHBEARER, SCRAM's saslname coding,
// and src/core/identity.ts.
//
// Input: the first byte picks the function, the rest is its input:
//   b  decodeBase64     u  decodeUtf8        p  splitPlainMessage
//   d  parseDirectives  o  parseClientResponse  s  decodeSaslname / encodeSaslname
//   i  prepareUsername, authzidMatches, claimedLocalpart: lines "identity\nusername\nhost"
//      (host example.com when absent)
// Any other first byte picks one by its value.
//
// Invariants: nothing throws; what parses serialises back to something that parses
// to the same value; the strict decoders accept exactly the canonical encodings; the
// identity rules agree with each other (RFC 6120 §6.3.8).
import { isDeepStrictEqual } from 'node:util';
import { decodeBase64, decodeUtf8, splitPlainMessage } from '../../src/sasl/common.js';
import { parseDirectives } from '../../src/sasl/digest-md5.js';
import { parseClientResponse } from '../../src/sasl/oauthbearer.js';
import { decodeSaslname, encodeSaslname } from '../../src/sasl/scram.js';
import { authzidMatches, claimedLocalpart, prepareUsername } from '../../src/core/identity.js';
import { check, syncTarget } from '../harness.js';

const show = (s: string | undefined): string => (s === undefined ? 'undefined' : JSON.stringify(s));

/** RFC 4648 §4: decodeBase64 takes exactly the canonical padded encodings. */
function base64(data: Buffer): void {
  const text = data.toString('latin1');
  const decoded = decodeBase64(text);
  const canonical = Buffer.from(text, 'base64').toString('base64') === text;
  check((decoded !== undefined) === canonical, `decodeBase64(${show(text)}) ${decoded === undefined ? 'refuses' : 'accepts'} it`);
  if (decoded !== undefined) check(decoded.toString('base64') === text, `decodeBase64(${show(text)}) is not its inverse`);
  const again = decodeBase64(data.toString('base64'));
  check(again !== undefined && again.equals(data), `decodeBase64 does not invert the encoding of ${data.toString('hex')}`);
}

/** Strict UTF-8 (RFC 3629): defined exactly for well-formed input, and then lossless. */
function utf8(data: Buffer): void {
  const text = decodeUtf8(data);
  const wellFormed = Buffer.from(data.toString('utf8'), 'utf8').equals(data);
  check((text !== undefined) === wellFormed, `decodeUtf8(${data.toString('hex')}) ${text === undefined ? 'refuses' : 'accepts'} it`);
  if (text !== undefined) check(Buffer.from(text, 'utf8').equals(data), `decodeUtf8(${data.toString('hex')}) loses bytes`);
}

/** RFC 4616 §2 message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
function plain(data: Buffer): void {
  const text = data.toString('utf8');
  const fields = splitPlainMessage(text);
  const parts = text.split('\0');
  const expected = parts.length === 3 && parts[1] !== '' && parts[2] !== '';
  check((fields !== undefined) === expected, `splitPlainMessage(${show(text)}) ${fields === undefined ? 'refuses' : 'accepts'} it`);
  if (fields !== undefined) {
    check(`${fields.authzid}\0${fields.authcid}\0${fields.secret}` === text, `splitPlainMessage(${show(text)}) does not split it`);
  }
}

/** RFC 2831 §7.2 quoted-string. */
const quote = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** RFC 2831 §7.1 directives: names case-insensitive and unique; quoted-string values round-trip. */
function directives(data: Buffer): void {
  const text = data.toString('utf8');
  const d = parseDirectives(text);
  if (d === undefined) return;
  for (const k of d.keys()) check(/^[a-z0-9_-]+$/.test(k), `parseDirectives(${show(text)}) gives the name ${show(k)}`);
  const written = [...d].map(([k, v]) => `${k}=${quote(v)}`).join(',');
  const back = parseDirectives(written);
  check(back !== undefined && isDeepStrictEqual(back, d), `parseDirectives(${show(text)}) does not round-trip through ${show(written)}`);
}

/** RFC 7628 §3.1 client-resp; the authzid in RFC 5801 §4 saslname coding. */
function clientResponse(data: Buffer): void {
  const text = data.toString('utf8');
  const r = parseClientResponse(text);
  if (r === undefined || r === 'kvsep') {
    check(r !== 'kvsep' || text === '\x01', `parseClientResponse(${show(text)}) is a lone kvsep`);
    return;
  }
  for (const [k, v] of r.pairs) {
    check(/^[A-Za-z]+$/.test(k) && /^[\x21-\x7e \t\r\n]*$/.test(v), `parseClientResponse(${show(text)}) gives the pair ${show(k)}=${show(v)}`);
  }
  const written = `n,${r.authzid === undefined ? '' : `a=${encodeSaslname(r.authzid)}`},\x01${[...r.pairs].map(([k, v]) => `${k}=${v}\x01`).join('')}\x01`;
  const back = parseClientResponse(written);
  check(back !== undefined && isDeepStrictEqual(back, r), `parseClientResponse(${show(text)}) does not round-trip through ${show(written)}`);
}

/** RFC 5802 §5.1 saslname: "=2C" and "=3D" for "," and "=". */
function saslname(data: Buffer): void {
  const text = data.toString('utf8');
  const decoded = decodeSaslname(text);
  if (decoded !== undefined) {
    check(!decoded.includes('\0') && decoded !== '', `decodeSaslname(${show(text)}) is ${show(decoded)}`);
    check(decodeSaslname(encodeSaslname(decoded)) === decoded, `saslname ${show(decoded)} does not round-trip`);
  }
  if (text !== '' && !text.includes('\0')) {
    const encoded = encodeSaslname(text);
    check(!/,/.test(encoded), `encodeSaslname(${show(text)}) keeps a comma`);
    check(decodeSaslname(encoded) === text, `encodeSaslname(${show(text)}) does not decode back`);
  }
}

/** RFC 6120 §6.3.7 simple user names and §6.3.8 authorization identities. */
function identity(data: Buffer): void {
  const [id = '', username = '', host = 'example.com'] = data.toString('utf8').split('\n');
  const prepared = prepareUsername(id);
  if (prepared !== undefined) {
    check(prepared !== '' && !/[@/]/.test(prepared), `prepareUsername(${show(id)}) is ${show(prepared)}`);
    check(prepareUsername(prepared) === prepared, `prepareUsername is not idempotent on ${show(id)} -> ${show(prepared)}`);
  }
  const matches = authzidMatches(id, username, host);
  if (matches) check(prepareUsername(username) === username, `authzidMatches(${show(id)}) accepts the unprepared username ${show(username)}`);
  const claimed = claimedLocalpart(id, host);
  if (claimed !== undefined) {
    check(authzidMatches(id, claimed, host), `claimedLocalpart(${show(id)}) is ${show(claimed)}, which authzidMatches refuses`);
  }
  if (matches) check(claimed === username, `authzidMatches(${show(id)}, ${show(username)}) but claimedLocalpart is ${show(claimed)}`);
}

const BY_LETTER: Readonly<Record<string, (data: Buffer) => void>> = {
  b: base64,
  u: utf8,
  p: plain,
  d: directives,
  o: clientResponse,
  s: saslname,
  i: identity,
};
const ALL = Object.values(BY_LETTER);

export const fuzz = syncTarget((data) => {
  if (data.length === 0) return;
  const first = data[0]!;
  const fn = BY_LETTER[String.fromCharCode(first)] ?? ALL[first % ALL.length]!;
  fn(data.subarray(1));
});
