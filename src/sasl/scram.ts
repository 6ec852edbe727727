// SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 and their -PLUS variants, server
// side (RFC 5802, RFC 7677; SHA-512 by the same construction). One factory makes
// all six so the message handling exists once.
import { randomBytes } from 'node:crypto';
import type { ScramCredentials, ScramHash } from '../core/credentials.js';
import { randomToken } from '../core/random.js';
import type { ChannelBindingType, SaslContext, SaslExchange, SaslMechanism, SaslStep } from '../core/sasl.js';
import { SCRAM_ITERATIONS, SCRAM_SALT_LENGTH, digest, hashLength, hmac, xor } from './credentials.js';
import { decodeBase64, decodeUtf8, emptyChallenge, failure, fakeSalt, sameBytes } from './common.js';
import { authzidMatches, prepareUsername } from '../core/identity.js';

export interface ScramOptions {
  /**
   * Produces the server's part of the nonce. Defaults to 24 random bytes in
   * base64; tests inject the RFC examples' values. Must be RFC 5802 `printable`.
   */
  serverNonce?: () => string;
}

/** Strength ordering: every -PLUS above every plain SCRAM, longer hashes above shorter ones. */
const HASH_STRENGTH: Readonly<Record<ScramHash, number>> = { 'SHA-1': 40, 'SHA-256': 50, 'SHA-512': 60 };
const PLUS_BONUS = 100;

// RFC 5802 §7 productions.
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const CB_NAME = /^[A-Za-z0-9.-]+$/;
const EXTENSION = /^[A-Za-z]=[^\0]+$/;

/** RFC 5802 §5.1 saslname: "=2C" and "=3D" stand for "," and "="; any other "=" is an error. */
export function decodeSaslname(text: string): string | undefined {
  if (text.length === 0 || text.includes('\0')) return undefined;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== '=') {
      out += ch;
      continue;
    }
    const code = text.slice(i + 1, i + 3);
    if (code === '2C') out += ',';
    else if (code === '3D') out += '=';
    else return undefined;
    i += 2;
  }
  return out;
}

/** RFC 5802 §5.1 saslname encoding, the inverse of decodeSaslname. */
export function encodeSaslname(text: string): string {
  return text.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function defaultServerNonce(): string {
  return randomToken(24, 'base64');
}

export function scramMechanism(hash: ScramHash, plus: boolean, opts: ScramOptions = {}): SaslMechanism {
  const name = `SCRAM-${hash}${plus ? '-PLUS' : ''}`;
  return {
    name,
    // -PLUS only exists on TLS; plain SCRAM never shows the password, so it may run without.
    requiresTls: plus,
    strength: HASH_STRENGTH[hash] + (plus ? PLUS_BONUS : 0),
    available: (ctx) => !plus || ctx.channelBindingTypes.length > 0,
    start: (ctx) => new ScramServerExchange(hash, plus, ctx, opts.serverNonce ?? defaultServerNonce),
  };
}

type Gs2Flag = { kind: 'n' } | { kind: 'y' } | { kind: 'p'; cbName: string };

interface AwaitingFinal {
  gs2Header: string;
  cbData: Buffer;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  username: string;
  credentials: ScramCredentials;
  /** False for an unknown user: the exchange runs to the proof and fails there (RFC 5802 §9). */
  known: boolean;
}

class ScramServerExchange implements SaslExchange {
  private state: 'initial' | 'awaiting-first' | 'awaiting-final' | 'done' = 'initial';
  private pending: AwaitingFinal | undefined;
  authcid: string | undefined;

  constructor(
    private readonly hash: ScramHash,
    private readonly plus: boolean,
    private readonly ctx: SaslContext,
    private readonly serverNonce: () => string,
  ) {}

  async step(response: Buffer | undefined): Promise<SaslStep> {
    const state = this.state;
    let result: SaslStep;
    try {
      if (state === 'initial' && response === undefined) {
        // SCRAM is client-first; ask for the client-first-message.
        this.state = 'awaiting-first';
        return emptyChallenge();
      }
      if (state === 'done' || response === undefined) {
        result = failure('malformed-request', 'Unexpected SCRAM message');
      } else if (state === 'awaiting-final') {
        result = this.clientFinal(response);
      } else {
        result = await this.clientFirst(response);
      }
    } catch {
      result = failure('temporary-auth-failure');
    }
    this.state = result.kind === 'challenge' ? 'awaiting-final' : 'done';
    return result;
  }

  private async clientFirst(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    if (text === undefined) return failure('malformed-request', 'client-first-message is not UTF-8');
    const parts = text.split(',');
    if (parts.length < 4) return failure('malformed-request', 'Bad client-first-message');
    const [flagText = '', authzidText = '', ...bare] = parts;

    // RFC 5802 §7 gs2-header = gs2-cbind-flag "," [ authzid ] ","
    let flag: Gs2Flag;
    if (flagText === 'n' || flagText === 'y') {
      flag = { kind: flagText };
    } else if (flagText.startsWith('p=') && CB_NAME.test(flagText.slice(2))) {
      flag = { kind: 'p', cbName: flagText.slice(2) };
    } else {
      return failure('malformed-request', 'Bad gs2-cbind-flag');
    }

    let authzid: string | undefined;
    if (authzidText !== '') {
      if (!authzidText.startsWith('a=')) return failure('malformed-request', 'Bad authzid');
      authzid = decodeSaslname(authzidText.slice(2));
      if (authzid === undefined) return failure('malformed-request', 'Bad authzid');
    }

    // RFC 5802 §5.1: "m" is reserved and MUST cause authentication failure.
    if (bare.some((attr) => attr.startsWith('m='))) {
      return failure('malformed-request', 'Mandatory extensions are not supported');
    }
    const [userAttr = '', nonceAttr = '', ...extensions] = bare;
    if (!userAttr.startsWith('n=')) return failure('malformed-request', 'Missing username');
    const rawUsername = decodeSaslname(userAttr.slice(2));
    if (rawUsername === undefined) return failure('malformed-request', 'Bad username');
    if (!nonceAttr.startsWith('r=') || !PRINTABLE.test(nonceAttr.slice(2))) {
      return failure('malformed-request', 'Bad client nonce');
    }
    if (!extensions.every((attr) => EXTENSION.test(attr))) return failure('malformed-request', 'Bad extension');

    const cbData = this.channelBindingData(flag);
    if ('kind' in cbData) return cbData;

    const username = prepareUsername(rawUsername);
    if (username === undefined) return failure('not-authorized');
    this.authcid = username;
    if (authzid !== undefined && !authzidMatches(authzid, username, this.ctx.host)) {
      return failure('invalid-authzid');
    }

    const stored = await this.ctx.accounts.getScramCredentials(this.ctx.host, username, this.hash);
    const known = stored !== undefined && stored.hash === this.hash;
    // RFC 5802 §9: an unknown user gets a server-first of the same shape, with a
    // salt that stays the same across attempts, and fails only at the proof.
    const credentials: ScramCredentials = known
      ? stored
      : {
          hash: this.hash,
          salt: fakeSalt(`SCRAM-${this.hash}`, this.ctx.host, username, SCRAM_SALT_LENGTH),
          iterations: SCRAM_ITERATIONS,
          storedKey: randomBytes(hashLength(this.hash)),
          serverKey: randomBytes(hashLength(this.hash)),
        };

    const serverPart = this.serverNonce();
    if (!PRINTABLE.test(serverPart)) throw new Error('Server nonce is not RFC 5802 printable');
    const nonce = nonceAttr.slice(2) + serverPart;
    const serverFirst = `r=${nonce},s=${credentials.salt.toString('base64')},i=${credentials.iterations}`;

    this.pending = {
      gs2Header: `${flagText},${authzidText},`,
      cbData: cbData.data,
      clientFirstBare: bare.join(','),
      serverFirst,
      nonce,
      username,
      credentials,
      known,
    };
    return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  /** RFC 5802 §6: which channel binding this gs2-cbind-flag commits to, or why it is refused. */
  private channelBindingData(flag: Gs2Flag): { data: Buffer } | SaslStep {
    if (this.plus) {
      if (flag.kind !== 'p') return failure('malformed-request', 'SCRAM -PLUS requires channel binding');
      const type = flag.cbName as ChannelBindingType;
      const data = this.ctx.channelBindingTypes.includes(type) ? this.ctx.channelBinding(type) : undefined;
      if (data === undefined) return failure('not-authorized', `Unsupported channel binding type ${flag.cbName}`, 'channel-binding');
      return { data };
    }
    if (flag.kind === 'p') {
      return failure('malformed-request', 'Channel binding requested with a mechanism without -PLUS');
    }
    // "y": the client could bind but believes we cannot. If we advertised -PLUS,
    // someone stripped it from the list on the way (RFC 5802 §6 downgrade), unless this client
    // showed on this stream that it only knows a binding this connection lacks and the operator
    // lets such clients in (sasl.tls_unique_fallback).
    if (flag.kind === 'y' && this.ctx.plusAdvertised && !this.ctx.bindingFallback) {
      return failure('not-authorized', 'Channel binding downgrade', 'downgrade');
    }
    return { data: Buffer.alloc(0) };
  }

  private clientFinal(data: Buffer): SaslStep {
    const pending = this.pending;
    if (pending === undefined) return failure('malformed-request');
    const text = decodeUtf8(data);
    if (text === undefined) return failure('malformed-request', 'client-final-message is not UTF-8');
    const attrs = text.split(',');
    if (attrs.length < 3) return failure('malformed-request', 'Bad client-final-message');
    const cbAttr = attrs[0] ?? '';
    const nonceAttr = attrs[1] ?? '';
    const proofAttr = attrs[attrs.length - 1] ?? '';
    const extensions = attrs.slice(2, -1);
    if (!cbAttr.startsWith('c=') || !nonceAttr.startsWith('r=') || !proofAttr.startsWith('p=')) {
      return failure('malformed-request', 'Bad client-final-message');
    }
    if (extensions.some((attr) => attr.startsWith('m='))) {
      return failure('malformed-request', 'Mandatory extensions are not supported');
    }
    if (!extensions.every((attr) => EXTENSION.test(attr))) return failure('malformed-request', 'Bad extension');
    const cbBytes = decodeBase64(cbAttr.slice(2));
    const proof = decodeBase64(proofAttr.slice(2));
    if (cbBytes === undefined || proof === undefined) return failure('malformed-request', 'Bad base64');

    // RFC 5802 §5.1 "c": exactly the gs2-header, then the channel binding data for "p".
    const expectedCb = Buffer.concat([Buffer.from(pending.gs2Header, 'utf8'), pending.cbData]);
    if (!sameBytes(cbBytes, expectedCb)) return failure('not-authorized', 'Channel binding mismatch');
    if (nonceAttr.slice(2) !== pending.nonce) return failure('not-authorized', 'Nonce mismatch');

    // RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey.
    const { credentials } = pending;
    const withoutProof = text.slice(0, text.length - proofAttr.length - 1);
    const authMessage = `${pending.clientFirstBare},${pending.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.hash, credentials.storedKey, authMessage);
    const verified =
      proof.length === clientSignature.length &&
      sameBytes(digest(this.hash, xor(proof, clientSignature)), credentials.storedKey);
    if (!verified || !pending.known) return failure('not-authorized');

    const serverSignature = hmac(this.hash, credentials.serverKey, authMessage);
    return {
      kind: 'success',
      username: pending.username,
      additionalData: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'),
    };
  }
}
