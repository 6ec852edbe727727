import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import type { JwtConfig } from '../config/schema.js';
import type { AccountStore } from '../storage/types.js';
import { JwtTokenVerifier } from './jwt.js';
import { requireScope } from './index.js';

const NOW = new Date('2030-05-01T12:00:00Z');
const now = Math.floor(NOW.getTime() / 1000);
const SECRET = 'a shared secret of at least 32 characters!';
const HOST = 'example.com';

let dir: string;
let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
let otherRsa: { publicKey: CryptoKey; privateKey: CryptoKey };
const files: Record<string, string> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-jwt-'));
  rsa = await generateKeyPair('RS256');
  ec = await generateKeyPair('ES256');
  otherRsa = await generateKeyPair('RS256');
  files.rsaPem = join(dir, 'rsa.pem');
  writeFileSync(files.rsaPem, await exportSPKI(rsa.publicKey));
  files.ecPem = join(dir, 'ec.pem');
  writeFileSync(files.ecPem, await exportSPKI(ec.publicKey));
  files.jwks = join(dir, 'jwks.json');
  writeFileSync(
    files.jwks,
    JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' }] }),
  );
  files.secret = join(dir, 'secret');
  writeFileSync(files.secret, `${SECRET}\n`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(extra: Partial<JwtConfig>): JwtConfig {
  return { claim: 'sub', clock_tolerance: 30, ...extra };
}

const accounts = (...names: string[]): AccountStore => ({ exists: async (h: string, u: string) => h === HOST && names.includes(u) }) as unknown as AccountStore;

async function sign(key: CryptoKey | Uint8Array, alg: string, claims: JWTPayload, kid?: string): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg });
  return jwt.sign(key);
}

const hs = (claims: JWTPayload) => sign(new TextEncoder().encode(SECRET), 'HS256', claims);
const valid = (extra: JWTPayload = {}): JWTPayload => ({ sub: 'juliet', iat: now, exp: now + 600, ...extra });

describe('HS256 with issuer and audience', () => {
  const verifier = () =>
    new JwtTokenVerifier(config({ secret: SECRET, issuer: 'https://idp.example.com', audience: 'xmpp.example.com' }), { accounts: accounts('juliet'), now: () => NOW });
  const good = (extra: JWTPayload = {}) => valid({ iss: 'https://idp.example.com', aud: 'xmpp.example.com', ...extra });

  test('a valid token names its account', async () => {
    assert.deepEqual(await verifier().verify(await hs(good()), HOST), { ok: true, username: 'juliet', scope: [] });
  });
  test('expired (beyond the clock tolerance)', async () => {
    assert.deepEqual(await verifier().verify(await hs(good({ exp: now - 31 })), HOST), { ok: false, reason: 'expired' });
    assert.equal((await verifier().verify(await hs(good({ exp: now - 29 })), HOST)).ok, true);
  });
  test('not yet valid', async () => {
    assert.deepEqual(await verifier().verify(await hs(good({ nbf: now + 60 })), HOST), { ok: false, reason: 'not-yet-valid' });
    assert.equal((await verifier().verify(await hs(good({ nbf: now + 20 })), HOST)).ok, true);
  });
  test('wrong audience, also when missing', async () => {
    assert.deepEqual(await verifier().verify(await hs(good({ aud: 'mail.example.com' })), HOST), { ok: false, reason: 'wrong-audience' });
    assert.equal((await verifier().verify(await hs(good({ aud: ['mail.example.com', 'xmpp.example.com'] })), HOST)).ok, true);
    const { aud: _aud, ...noAud } = good();
    assert.deepEqual(await verifier().verify(await hs(noAud), HOST), { ok: false, reason: 'wrong-audience' });
  });
  test('wrong issuer', async () => {
    assert.deepEqual(await verifier().verify(await hs(good({ iss: 'https://evil.example' })), HOST), { ok: false, reason: 'wrong-issuer' });
  });
  test('no exp: refused (an access token must expire)', async () => {
    const { exp: _exp, ...noExp } = good();
    assert.deepEqual(await verifier().verify(await hs(noExp), HOST), { ok: false, reason: 'malformed' });
  });
  test('another key, a tampered payload, garbage', async () => {
    const forged = await sign(new TextEncoder().encode('another secret of 32 characters or more'), 'HS256', good());
    assert.deepEqual(await verifier().verify(forged, HOST), { ok: false, reason: 'bad-signature' });
    const [h, , s] = (await hs(good())).split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify(good({ sub: 'romeo' }))).toString('base64url')}.${s}`;
    assert.deepEqual(await verifier().verify(tampered, HOST), { ok: false, reason: 'bad-signature' });
    assert.deepEqual(await verifier().verify('not.a.jwt', HOST), { ok: false, reason: 'malformed' });
  });
  test('an account that does not exist', async () => {
    assert.deepEqual(await verifier().verify(await hs(good({ sub: 'nobody' })), HOST), { ok: false, reason: 'no-account' });
  });
  test('the secret may come from a file', async () => {
    const fromFile = new JwtTokenVerifier(config({ secret_file: files.secret! }), { now: () => NOW });
    assert.equal((await fromFile.verify(await hs(valid()), HOST)).ok, true);
  });
});

describe('claim mapping', () => {
  test('sub as a bare JID of this host, or a localpart (prepared like one)', async () => {
    const v = new JwtTokenVerifier(config({ secret: SECRET }), { now: () => NOW });
    assert.deepEqual(await v.verify(await hs(valid({ sub: 'Juliet@Example.com' })), HOST), { ok: true, username: 'juliet', scope: [] });
    assert.deepEqual(await v.verify(await hs(valid({ sub: 'JULIET' })), HOST), { ok: true, username: 'juliet', scope: [] });
    assert.deepEqual(await v.verify(await hs(valid({ sub: 'juliet@example.net' })), HOST), { ok: false, reason: 'wrong-host' });
    assert.deepEqual(await v.verify(await hs(valid({ sub: 'juliet@example.com/phone' })), HOST), { ok: false, reason: 'wrong-host' });
    assert.deepEqual(await v.verify(await hs(valid({ sub: 42 as unknown as string })), HOST), { ok: false, reason: 'malformed' });
  });
  test('a configured claim, and the scope claim', async () => {
    const v = new JwtTokenVerifier(config({ secret: SECRET, claim: 'xmpp_jid' }), { now: () => NOW });
    const token = await hs(valid({ sub: 'opaque-id-123', xmpp_jid: 'romeo@example.com', scope: 'openid xmpp' }));
    assert.deepEqual(await v.verify(token, HOST), { ok: true, username: 'romeo', scope: ['openid', 'xmpp'] });
    assert.deepEqual(await v.verify(await hs(valid({ sub: 'opaque' })), HOST), { ok: false, reason: 'malformed' });
    const scoped = requireScope(v, 'xmpp');
    assert.equal((await scoped.verify(token, HOST)).ok, true);
    assert.deepEqual(await scoped.verify(await hs(valid({ xmpp_jid: 'romeo', scp: ['mail'] })), HOST), { ok: false, reason: 'insufficient-scope' });
  });
});

describe('public keys', () => {
  test('RS256 from a PEM file; an HS256 token signed with the public key text is refused (algorithm confusion)', async () => {
    const v = new JwtTokenVerifier(config({ public_key: files.rsaPem! }), { now: () => NOW });
    assert.equal((await v.verify(await sign(rsa.privateKey, 'RS256', valid()), HOST)).ok, true);
    assert.deepEqual(await v.verify(await sign(otherRsa.privateKey, 'RS256', valid()), HOST), { ok: false, reason: 'bad-signature' });
    const pemAsSecret = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    assert.deepEqual(await v.verify(await sign(pemAsSecret, 'HS256', valid()), HOST), { ok: false, reason: 'bad-signature' });
  });
  test('ES256 from a PEM file', async () => {
    const v = new JwtTokenVerifier(config({ public_key: files.ecPem! }), { now: () => NOW });
    assert.equal((await v.verify(await sign(ec.privateKey, 'ES256', valid()), HOST)).ok, true);
    assert.deepEqual(await v.verify(await sign(rsa.privateKey, 'RS256', valid()), HOST), { ok: false, reason: 'bad-signature' });
  });
  test('a JWKS file: the kid picks the key', async () => {
    const v = new JwtTokenVerifier(config({ jwks: files.jwks!, audience: 'xmpp' }), { now: () => NOW });
    assert.equal((await v.verify(await sign(rsa.privateKey, 'RS256', valid({ aud: 'xmpp' }), 'rsa-1'), HOST)).ok, true);
    assert.equal((await v.verify(await sign(ec.privateKey, 'ES256', valid({ aud: 'xmpp' }), 'ec-1'), HOST)).ok, true);
    assert.deepEqual(await v.verify(await sign(otherRsa.privateKey, 'RS256', valid({ aud: 'xmpp' }), 'rsa-1'), HOST), { ok: false, reason: 'bad-signature' });
    assert.deepEqual(await v.verify(await sign(rsa.privateKey, 'RS256', valid({ aud: 'xmpp' }), 'unknown'), HOST), { ok: false, reason: 'bad-signature' });
    assert.deepEqual(await v.verify(await sign(rsa.privateKey, 'RS256', valid({ aud: 'other' }), 'rsa-1'), HOST), { ok: false, reason: 'wrong-audience' });
  });
  test('a bad key file stops construction', () => {
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, 'not a key');
    assert.throws(() => new JwtTokenVerifier(config({ public_key: bad })));
    assert.throws(() => new JwtTokenVerifier(config({ secret_file: join(dir, 'missing') })));
  });
});
