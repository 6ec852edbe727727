// The client side of SCRAM-SHA-1 (RFC 5802), written for the load generator so
// that it depends on nothing in the server under test.
//
// RFC 5802 §5.1 lets a client cache ClientKey and ServerKey for a given salt and
// iteration count instead of running Hi() (4096 PBKDF2 rounds) at every login;
// real clients do so. The generator does the same through ScramCache, so the
// load it offers is the server's share of a login, not the client's key
// derivation. A cache can be filled ahead of time (the compare runner knows the
// salts it provisioned) or from previous logins.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { saslprep } from '@mongodb-js/saslprep';

export interface ScramKeys {
  clientKey: Buffer;
  serverKey: Buffer;
}

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha1', key).update(data).digest();

/** RFC 5802 §3: ClientKey and ServerKey from SaltedPassword. */
export function keysFromSaltedPassword(salted: Buffer): ScramKeys {
  return { clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') };
}

/** RFC 5802 §2.2 Hi() with HMAC-SHA-1, without blocking the event loop. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(Buffer.from(saslprep(password), 'utf8'), salt, iterations, 20, 'sha1', (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export class ScramCache {
  private readonly map = new Map<string, ScramKeys>();
  hits = 0;
  misses = 0;

  private static key(password: string, salt: Buffer, iterations: number): string {
    return `${salt.toString('base64')}|${iterations}|${password}`;
  }

  get size(): number {
    return this.map.size;
  }

  set(password: string, salt: Buffer, iterations: number, keys: ScramKeys): void {
    this.map.set(ScramCache.key(password, salt, iterations), keys);
  }

  async keys(password: string, salt: Buffer, iterations: number): Promise<ScramKeys> {
    const k = ScramCache.key(password, salt, iterations);
    const hit = this.map.get(k);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const keys = keysFromSaltedPassword(await saltedPassword(password, salt, iterations));
    this.map.set(k, keys);
    return keys;
  }

  /** One JSON line per entry: {s: salt base64, i: iterations, p: password, ck, sk: hex}. */
  save(file: string): void {
    const lines: string[] = [];
    for (const [k, v] of this.map) {
      const [s, i, ...p] = k.split('|');
      lines.push(JSON.stringify({ s, i: Number(i), p: p.join('|'), ck: v.clientKey.toString('hex'), sk: v.serverKey.toString('hex') }));
    }
    writeFileSync(file, lines.join('\n') + '\n');
  }

  static load(file: string): ScramCache {
    const cache = new ScramCache();
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const e = JSON.parse(line) as { s: string; i: number; p: string; ck: string; sk: string };
      cache.set(e.p, Buffer.from(e.s, 'base64'), e.i, { clientKey: Buffer.from(e.ck, 'hex'), serverKey: Buffer.from(e.sk, 'hex') });
    }
    return cache;
  }
}

/** RFC 5802 §5.1: ',' and '=' in a saslname are escaped. */
function saslname(user: string): string {
  return user.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/**
 * One SCRAM-SHA-1 exchange without channel binding (gs2 flag 'n', RFC 5802 §6):
 * first() gives client-first-message, final() the client-final-message for the
 * server-first-message, verify() checks the server's signature (§7: a client
 * must not trust a server that cannot prove it knows the ServerKey).
 */
export class ScramSha1Client {
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly firstBare: string;
  private expectedSignature: Buffer | undefined;

  constructor(
    user: string,
    private readonly password: string,
    private readonly cache: ScramCache,
  ) {
    this.firstBare = `n=${saslname(user)},r=${this.nonce}`;
  }

  first(): string {
    return `n,,${this.firstBare}`;
  }

  async final(serverFirst: string): Promise<string> {
    const a = parseAttributes(serverFirst);
    const r = a.get('r');
    const s = a.get('s');
    const i = Number(a.get('i'));
    if (a.has('m')) throw new Error('SCRAM: unsupported mandatory extension');
    if (!r || !r.startsWith(this.nonce) || r.length === this.nonce.length) throw new Error('SCRAM: bad server nonce');
    if (!s || !Number.isSafeInteger(i) || i < 1) throw new Error('SCRAM: bad salt or iteration count');
    const { clientKey, serverKey } = await this.cache.keys(this.password, Buffer.from(s, 'base64'), i);
    const withoutProof = `c=biws,r=${r}`; // biws = base64('n,,')
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const storedKey = createHash('sha1').update(clientKey).digest();
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.allocUnsafe(clientKey.length);
    for (let k = 0; k < proof.length; k++) proof[k] = clientKey[k]! ^ signature[k]!;
    this.expectedSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  verify(serverFinal: string): boolean {
    const v = parseAttributes(serverFinal).get('v');
    if (!v || !this.expectedSignature) return false;
    const got = Buffer.from(v, 'base64');
    return got.length === this.expectedSignature.length && timingSafeEqual(got, this.expectedSignature);
  }
}
