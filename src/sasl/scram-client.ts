// A small SCRAM client (RFC 5802 §5) for the tests: it drives the server
// mechanisms, including -PLUS and deliberately wrong channel bindings, over raw
// SASL messages.
import { randomBytes } from 'node:crypto';
import type { ScramHash } from '../core/credentials.js';
import { credentialsFromSaltedPassword, hmac, preparePassword, saltedPassword, xor } from './credentials.js';
import { decodeBase64, sameBytes } from './common.js';
import { encodeSaslname } from './scram.js';

export interface ScramClientOptions {
  /** Channel binding type named in a "p=" gs2 header. */
  cbType?: string;
  /** Channel binding data sent in "c=" (the tests may pass wrong data on purpose). */
  cbData?: Buffer;
  /** gs2-cbind-flag; "p" when cbType is given, "n" otherwise. */
  gs2?: 'n' | 'y' | 'p';
  /** Authorization identity ("a=" in the gs2 header). */
  authzid?: string;
  /** Client nonce; random by default, fixed by tests reproducing the RFC examples. */
  nonce?: string;
}

export class ScramClient {
  private readonly gs2Header: string;
  private readonly cbData: Buffer;
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | undefined;

  constructor(
    private readonly hash: ScramHash,
    username: string,
    private readonly password: string,
    opts: ScramClientOptions = {},
  ) {
    const flag = opts.gs2 ?? (opts.cbType === undefined ? 'n' : 'p');
    if (flag === 'p' && opts.cbType === undefined) throw new Error('gs2 "p" needs a cbType');
    const authzid = opts.authzid === undefined ? '' : `a=${encodeSaslname(opts.authzid)}`;
    this.gs2Header = `${flag === 'p' ? `p=${opts.cbType}` : flag},${authzid},`;
    // RFC 5802 §6: cbind-data is only sent with "p".
    this.cbData = flag === 'p' ? (opts.cbData ?? Buffer.alloc(0)) : Buffer.alloc(0);
    this.clientNonce = opts.nonce ?? randomBytes(18).toString('base64');
    this.clientFirstBare = `n=${encodeSaslname(username)},r=${this.clientNonce}`;
  }

  /** The client-first-message. */
  first(): string {
    return this.gs2Header + this.clientFirstBare;
  }

  /** The client-final-message answering `serverFirst`; throws when the server-first-message is invalid. */
  final(serverFirst: string): string {
    const attrs = serverFirst.split(',');
    const [nonceAttr = '', saltAttr = '', iterAttr = ''] = attrs;
    if (!nonceAttr.startsWith('r=') || !saltAttr.startsWith('s=') || !iterAttr.startsWith('i=')) {
      throw new Error(`Bad server-first-message: ${serverFirst}`);
    }
    const nonce = nonceAttr.slice(2);
    // RFC 5802 §5.1 "r": the server's nonce must extend ours.
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new Error('Server nonce does not extend the client nonce');
    }
    const salt = decodeBase64(saltAttr.slice(2));
    if (salt === undefined || salt.length === 0) throw new Error('Bad salt');
    const iterText = iterAttr.slice(2);
    const iterations = Number(iterText);
    if (!/^[1-9][0-9]*$/.test(iterText) || !Number.isSafeInteger(iterations)) throw new Error('Bad iteration count');

    const salted = saltedPassword(this.hash, preparePassword(this.password), salt, iterations);
    const { storedKey, serverKey } = credentialsFromSaltedPassword(this.hash, salted, salt, iterations);
    const clientKey = hmac(this.hash, salted, 'Client Key');
    const channelBinding = Buffer.concat([Buffer.from(this.gs2Header, 'utf8'), this.cbData]).toString('base64');
    const withoutProof = `c=${channelBinding},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(this.hash, storedKey, authMessage));
    this.serverSignature = hmac(this.hash, serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Whether `serverFinal` carries the ServerSignature expected after final(). */
  verify(serverFinal: string): boolean {
    if (this.serverSignature === undefined) return false;
    const [verifier = ''] = serverFinal.split(',');
    if (!verifier.startsWith('v=')) return false;
    const signature = decodeBase64(verifier.slice(2));
    return signature !== undefined && sameBytes(signature, this.serverSignature);
  }
}
