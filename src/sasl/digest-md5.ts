// DIGEST-MD5 (RFC 2831), server side, authentication only (qop=auth). The
// password never crosses the wire and the server proves it knows the secret too
// (rspauth), but a captured exchange allows an offline dictionary attack, and the
// server must keep H(username:realm:password), a password equivalent for
// DIGEST-MD5 in that realm (legacy-credentials.ts). RFC 6331 moved it to Historic.
import { createHash, randomBytes } from 'node:crypto';
import type { SaslContext, SaslMechanism, SaslStep } from '../core/sasl.js';
import { decodeUtf8, failure, sameBytes } from './common.js';
import { authzidMatches, prepareUsername } from '../core/identity.js';
import { SingleResponseExchange } from './single-response.js';

export interface DigestMd5Options {
  /** Produces the nonce; defaults to 18 random bytes in base64. Tests inject the RFC's. */
  nonce?: () => string;
}

/** The values that go into response-value (RFC 2831 §2.1.2.1), as strings from the digest-response. */
export interface DigestResponseInput {
  nonce: string;
  cnonce: string;
  nc: string;
  qop: string;
  digestUri: string;
  authzid?: string;
}

const md5 = (data: Buffer | string): Buffer => createHash('md5').update(data).digest();
const hex = (b: Buffer): string => b.toString('hex');

/**
 * RFC 2831 §2.1.2.1 response-value, from the stored H(username:realm:password):
 * HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2)))) with
 * A1 = H(user:realm:pw) ":" nonce ":" cnonce [":" authzid] and A2 = prefix ":" digest-uri.
 * `a2Prefix` is "AUTHENTICATE" for the client's response and "" for rspauth (§2.1.3).
 */
export function digestMd5Response(userHash: Buffer, input: DigestResponseInput, a2Prefix: 'AUTHENTICATE' | ''): string {
  const tail = `:${input.nonce}:${input.cnonce}${input.authzid !== undefined ? `:${input.authzid}` : ''}`;
  const ha1 = hex(md5(Buffer.concat([userHash, Buffer.from(tail, 'utf8')])));
  const ha2 = hex(md5(`${a2Prefix}:${input.digestUri}`));
  return hex(md5(`${ha1}:${input.nonce}:${input.nc}:${input.cnonce}:${input.qop}:${ha2}`));
}

/**
 * Parses an RFC 2831 §7.1 list of `name=value` directives, values a token or a
 * quoted-string (with "\" quoting the next character). Names are case-insensitive.
 * Undefined for a syntax error or a directive given twice (§2.1.2: each at most once).
 */
export function parseDirectives(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  let i = 0;
  const n = text.length;
  const skipLws = (): void => {
    while (i < n && ' \t\r\n'.includes(text[i]!)) i++;
  };
  while (i < n) {
    skipLws();
    // #rule lists may contain empty elements.
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (i >= n) break;
    const nameStart = i;
    while (i < n && /[A-Za-z0-9_-]/.test(text[i]!)) i++;
    const name = text.slice(nameStart, i).toLowerCase();
    if (name === '') return undefined;
    skipLws();
    if (text[i] !== '=') return undefined;
    i++;
    skipLws();
    let value = '';
    if (text[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const ch = text[i]!;
        if (ch === '\\') {
          if (i + 1 >= n) return undefined;
          value += text[i + 1];
          i += 2;
        } else if (ch === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += ch;
          i++;
        }
      }
      if (!closed) return undefined;
    } else {
      const start = i;
      while (i < n && !',"\\ \t\r\n'.includes(text[i]!)) i++;
      value = text.slice(start, i);
    }
    if (out.has(name)) return undefined;
    out.set(name, value);
    skipLws();
    if (i < n && text[i] !== ',') return undefined;
  }
  return out;
}

/** RFC 2831 §7.2: a quoted-string, with '"' and '\' escaped. */
function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function defaultNonce(): string {
  // RFC 2831 §2.1.1: at least 64 bits of entropy; base64 has no character that needs quoting.
  return randomBytes(18).toString('base64');
}

export function digestMd5Mechanism(opts: DigestMd5Options = {}): SaslMechanism {
  return {
    name: 'DIGEST-MD5',
    // The password is not sent; RFC 2831 predates the TLS-only rule for PLAIN.
    requiresTls: false,
    strength: 30,
    credential: 'stored',
    available: () => true,
    start: (ctx) => new DigestMd5Exchange(ctx, (opts.nonce ?? defaultNonce)()),
  };
}

class DigestMd5Exchange extends SingleResponseExchange {
  constructor(
    ctx: SaslContext,
    /** Single use: it belongs to this exchange, which accepts one digest-response. */
    private readonly nonce: string,
  ) {
    // RFC 2831 §2.1: the server starts; subsequent authentication (§2.2) is not supported.
    // RFC 2831 §2.1.1: realm, nonce, qop-options, charset and the required algorithm=md5-sess.
    const challenge = `realm=${quote(ctx.host)},nonce=${quote(nonce)},qop="auth",charset=utf-8,algorithm=md5-sess`;
    super(ctx, 'DIGEST-MD5', { serverChallenge: Buffer.from(challenge, 'utf8') });
  }

  protected async check(data: Buffer): Promise<SaslStep> {
    const text = decodeUtf8(data);
    const d = text === undefined ? undefined : parseDirectives(text);
    if (d === undefined) return failure('malformed-request', 'Bad digest-response');
    const rawUser = d.get('username');
    const nonce = d.get('nonce');
    const cnonce = d.get('cnonce');
    const nc = d.get('nc');
    const response = d.get('response');
    const digestUri = d.get('digest-uri');
    if (rawUser === undefined || nonce === undefined || cnonce === undefined || nc === undefined || response === undefined || digestUri === undefined) {
      return failure('malformed-request', 'Missing directive in digest-response');
    }
    if (!/^[0-9a-fA-F]{32}$/.test(response) || !/^[0-9a-fA-F]{8}$/.test(nc) || cnonce === '') {
      return failure('malformed-request', 'Bad digest-response');
    }
    const charset = d.get('charset');
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8') return failure('malformed-request', 'Bad charset');
    // Only authentication is offered: no integrity or confidentiality layer (§2.3, §2.4).
    const qop = d.get('qop') ?? 'auth';
    if (qop !== 'auth' || d.has('cipher')) return failure('malformed-request', 'Only qop=auth is offered');

    const username = prepareUsername(rawUser);
    if (username === undefined) return failure('not-authorized');
    this.authcid = username;

    // §2.1.2: the nonce must be the one we sent, counted once (nc=1); the realm the one we
    // announced; the digest-uri "xmpp/<domain>" (or "xmpp/<host>/<domain>", with the
    // domain as serv-name), so a response computed for another service does not pass here.
    const host = this.ctx.host;
    if (nonce !== this.nonce || Number.parseInt(nc, 16) !== 1) return failure('not-authorized', 'Stale or unknown nonce');
    if ((d.get('realm') ?? '') !== host) return failure('not-authorized', 'Wrong realm');
    if (!digestUriMatches(digestUri, host)) return failure('not-authorized', 'Wrong digest-uri');

    const authzid = d.get('authzid');
    const input: DigestResponseInput = { nonce, cnonce, nc, qop, digestUri, ...(authzid !== undefined ? { authzid } : {}) };
    const secrets = (await this.ctx.legacySecrets?.get(host, username, 'DIGEST-MD5', host)) ?? [];
    const expected = Buffer.from(response.toLowerCase(), 'utf8');
    const secret = secrets.find((s) => sameBytes(Buffer.from(digestMd5Response(s.secret, input, 'AUTHENTICATE'), 'utf8'), expected));
    if (secret === undefined) return failure('not-authorized');
    // RFC 6120 §6.3.8: only the account itself may be the authorization identity.
    if (authzid !== undefined && authzid !== '' && !authzidMatches(authzid, username, host)) return failure('invalid-authzid');
    // RFC 2831 §2.1.3 rspauth, sent as additional data with success (RFC 6120 §6.3.10).
    const rspauth = digestMd5Response(secret.secret, input, '');
    return { kind: 'success', username, additionalData: Buffer.from(`rspauth=${rspauth}`, 'utf8') };
  }
}

/** RFC 2831 §2.1.2 digest-uri = serv-type "/" host [ "/" serv-name ], here serv-type "xmpp". */
function digestUriMatches(uri: string, domain: string): boolean {
  const parts = uri.toLowerCase().split('/');
  if (parts[0] !== 'xmpp') return false;
  if (parts.length === 2) return parts[1] === domain;
  // With a serv-name, it names the service (the domain); the host part is the machine reached.
  return parts.length === 3 && parts[1] !== '' && parts[2] === domain;
}
