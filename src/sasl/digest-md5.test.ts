import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { LegacySecretStore } from '../storage/types.js';
import type { SaslContext, SaslStep } from '../core/sasl.js';
import { digestMd5Mechanism, digestMd5Response, parseDirectives } from './digest-md5.js';
import { digestMd5Secrets, digestMd5UserHash } from './legacy-credentials.js';
import { condition, legacySecretsFor, saslContext } from './testing.js';

// RFC 2831 §4 example values.
const REALM = 'elwood.innosoft.com';
const NONCE = 'OA6MG9tEQGm2hh';
const CNONCE = 'OA6MHXh6VqTrRk';

test('RFC 2831 §4 example: response and rspauth for imap/elwood.innosoft.com', () => {
  const userHash = digestMd5UserHash(Buffer.from('chris'), Buffer.from(REALM), Buffer.from('secret'));
  const input = { nonce: NONCE, cnonce: CNONCE, nc: '00000001', qop: 'auth', digestUri: 'imap/elwood.innosoft.com' };
  assert.equal(digestMd5Response(userHash, input, 'AUTHENTICATE'), 'd388dad90d4bbd760a152321f2143af7');
  assert.equal(digestMd5Response(userHash, input, ''), 'ea40f60335c427b5527b84dbabcdfffd');
});

/** A client written from RFC 2831 §2.1.2.1 directly, independent of the server code. */
function clientResponse(o: { user: string; realm: string; password: string; nonce: string; cnonce: string; uri: string; authzid?: string; nc?: string }): {
  message: string;
  rspauth: string;
} {
  const H = (b: Buffer | string): Buffer => createHash('md5').update(b).digest();
  const HEX = (b: Buffer): string => b.toString('hex');
  const nc = o.nc ?? '00000001';
  const a1 = Buffer.concat([H(`${o.user}:${o.realm}:${o.password}`), Buffer.from(`:${o.nonce}:${o.cnonce}${o.authzid ? `:${o.authzid}` : ''}`)]);
  const kd = (a2: string): string => HEX(H(`${HEX(H(a1))}:${o.nonce}:${nc}:${o.cnonce}:auth:${HEX(H(a2))}`));
  const response = kd(`AUTHENTICATE:${o.uri}`);
  const fields = [
    'charset=utf-8',
    `username="${o.user}"`,
    `realm="${o.realm}"`,
    `nonce="${o.nonce}"`,
    `nc=${nc}`,
    `cnonce="${o.cnonce}"`,
    `digest-uri="${o.uri}"`,
    `response=${response}`,
    'qop=auth',
  ];
  if (o.authzid) fields.push(`authzid="${o.authzid}"`);
  return { message: fields.join(','), rspauth: kd(`:${o.uri}`) };
}

const store = (host: string, users: Record<string, string>): LegacySecretStore => legacySecretsFor(host, users, ['DIGEST-MD5', 'CRAM-MD5']);

const ctx = (host: string, legacySecrets?: LegacySecretStore): SaslContext => saslContext({ host, ...(legacySecrets && { legacySecrets }) });

async function run(host: string, secrets: LegacySecretStore | undefined, message: string | ((nonce: string) => string), nonce = NONCE): Promise<SaslStep> {
  const exchange = digestMd5Mechanism({ nonce: () => nonce }).start(ctx(host, secrets));
  const challenge = await exchange.step(undefined);
  assert.equal(challenge.kind, 'challenge');
  return exchange.step(Buffer.from(typeof message === 'string' ? message : message(nonce)));
}

test('RFC 2831 §4 example adapted to XMPP (digest-uri "xmpp/elwood.innosoft.com"): challenge, success with rspauth', async () => {
  const secrets = store(REALM, { chris: 'secret' });
  const exchange = digestMd5Mechanism({ nonce: () => NONCE }).start(ctx(REALM, secrets));
  const challenge = await exchange.step(undefined);
  assert.equal(challenge.kind, 'challenge');
  if (challenge.kind === 'challenge') {
    // §4's challenge, with the qop list, charset and algorithm of §2.1.1.
    assert.equal(challenge.data.toString(), `realm="${REALM}",nonce="${NONCE}",qop="auth",charset=utf-8,algorithm=md5-sess`);
  }
  const { message, rspauth } = clientResponse({ user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}` });
  const result = await exchange.step(Buffer.from(message));
  assert.deepEqual(result, { kind: 'success', username: 'chris', additionalData: Buffer.from(`rspauth=${rspauth}`) });
  assert.equal(exchange.authcid, 'chris');
});

test('the imap digest-uri of the unmodified RFC example is refused here', async () => {
  const { message } = clientResponse({ user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `imap/${REALM}` });
  assert.equal(message.includes('response=d388dad90d4bbd760a152321f2143af7'), true);
  assert.equal(condition(await run(REALM, store(REALM, { chris: 'secret' }), message)), 'not-authorized');
});

test('digest-uri with a serv-name equal to the domain is accepted (RFC 2831 §2.1.2)', async () => {
  const { message } = clientResponse({ user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/xmpp1.innosoft.com/${REALM}` });
  assert.equal(condition(await run(REALM, store(REALM, { chris: 'secret' }), message)), 'success');
  const other = clientResponse({ user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}/other.example` });
  assert.equal(condition(await run(REALM, store(REALM, { chris: 'secret' }), other.message)), 'not-authorized');
});

test('wrong password, unknown user, wrong realm, wrong nonce, nc other than 1: not-authorized', async () => {
  const secrets = store(REALM, { chris: 'secret' });
  const base = { user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}` };
  for (const [label, o] of [
    ['password', { ...base, password: 'Secret' }],
    ['user', { ...base, user: 'nobody' }],
    ['realm', { ...base, realm: 'other.example' }],
    ['nonce', { ...base, nonce: 'somethingelse' }],
    ['nc', { ...base, nc: '00000002' }],
  ] as const) {
    assert.equal(condition(await run(REALM, secrets, clientResponse(o).message)), 'not-authorized', label);
  }
  // An account whose password predates enabling DIGEST-MD5 has no secret: the same failure.
  assert.equal(condition(await run(REALM, store(REALM, {}), clientResponse(base).message)), 'not-authorized');
});

test('nonces are single-use: a recorded response does not pass against a new nonce, nor twice', async () => {
  const secrets = store(REALM, { chris: 'secret' });
  const recorded = clientResponse({ user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}` }).message;
  // Default nonces are fresh random values.
  const exchange = digestMd5Mechanism().start(ctx(REALM, secrets));
  const challenge = await exchange.step(undefined);
  assert.equal(challenge.kind, 'challenge');
  const nonce = challenge.kind === 'challenge' ? parseDirectives(challenge.data.toString())?.get('nonce') : undefined;
  assert.ok(nonce !== undefined && nonce !== NONCE && Buffer.from(nonce, 'base64').length >= 8);
  assert.equal(condition(await exchange.step(Buffer.from(recorded))), 'not-authorized');
  // Replaying on the same exchange after success is refused too.
  const again = digestMd5Mechanism({ nonce: () => NONCE }).start(ctx(REALM, secrets));
  await again.step(undefined);
  assert.equal(condition(await again.step(Buffer.from(recorded))), 'success');
  assert.equal(condition(await again.step(Buffer.from(recorded))), 'malformed-request');
});

test('authzid: the own JID is accepted (and part of A1), another one is invalid-authzid', async () => {
  const secrets = store(REALM, { chris: 'secret' });
  const base = { user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}` };
  assert.equal(condition(await run(REALM, secrets, clientResponse({ ...base, authzid: `chris@${REALM}` }).message)), 'success');
  assert.equal(condition(await run(REALM, secrets, clientResponse({ ...base, authzid: `romeo@${REALM}` }).message)), 'invalid-authzid');
});

test('qop other than auth, a cipher, a missing directive, or bad syntax: malformed-request', async () => {
  const secrets = store(REALM, { chris: 'secret' });
  const { message } = clientResponse({ user: 'chris', realm: REALM, password: 'secret', nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}` });
  for (const bad of [
    message.replace('qop=auth', 'qop=auth-int'),
    `${message},cipher=rc4`,
    message.replace(/,digest-uri="[^"]*"/, ''),
    message.replace(/,cnonce="[^"]*"/, ''),
    `${message},nonce="${NONCE}"`,
    message.replace('charset=utf-8', 'charset=latin1'),
    'username="chris',
    'username',
  ]) {
    assert.equal(condition(await run(REALM, secrets, bad)), 'malformed-request', bad);
  }
  // Server-first: no initial response.
  assert.equal(condition(await digestMd5Mechanism().start(ctx(REALM, secrets)).step(Buffer.from(message))), 'malformed-request');
});

test('directive parsing: quoted strings with escapes, tokens, spaces, empty list elements', () => {
  const d = parseDirectives(' username="a\\"b\\\\c" , ,realm=x.example,\tnc=00000001 ,qop="auth"');
  assert.deepEqual(Object.fromEntries(d ?? []), { username: 'a"b\\c', realm: 'x.example', nc: '00000001', qop: 'auth' });
  assert.equal(parseDirectives('a=1,a=2'), undefined);
  assert.equal(parseDirectives('a="unterminated'), undefined);
  assert.equal(parseDirectives('a=1 b=2'), undefined);
});

test('non-ASCII passwords: both the RFC 2831 ISO 8859-1 form and the plain UTF-8 form are stored and accepted', async () => {
  const password = 'pässwörd';
  const secrets = digestMd5Secrets('chris', REALM, password);
  assert.deepEqual(secrets.map((s) => s.variant).sort(), ['iso-8859-1', 'utf-8']);
  assert.deepEqual(digestMd5Secrets('chris', REALM, 'ascii').map((s) => s.variant), ['utf-8']);
  const latin1 = secrets.find((s) => s.variant === 'iso-8859-1')!;
  assert.deepEqual(latin1.secret, createHash('md5').update(Buffer.from(`chris:${REALM}:${password}`, 'latin1')).digest());

  const st = store(REALM, { chris: password });
  const base = { user: 'chris', realm: REALM, password, nonce: NONCE, cnonce: CNONCE, uri: `xmpp/${REALM}` };
  // The test client hashes its strings as UTF-8 (what slixmpp does).
  assert.equal(condition(await run(REALM, st, clientResponse(base).message)), 'success');
  // And a client following §2.1.2.1 to the letter (ISO 8859-1):
  const H = (b: Buffer | string): Buffer => createHash('md5').update(b).digest();
  const a1 = Buffer.concat([H(Buffer.from(`chris:${REALM}:${password}`, 'latin1')), Buffer.from(`:${NONCE}:${CNONCE}`)]);
  const response = H(`${H(a1).toString('hex')}:${NONCE}:00000001:${CNONCE}:auth:${H(`AUTHENTICATE:xmpp/${REALM}`).toString('hex')}`).toString('hex');
  const strict = `charset=utf-8,username="chris",realm="${REALM}",nonce="${NONCE}",nc=00000001,cnonce="${CNONCE}",digest-uri="xmpp/${REALM}",response=${response},qop=auth`;
  assert.equal(condition(await run(REALM, st, strict)), 'success');
});

test('not TLS-only (no password on the wire), strongest of the legacy mechanisms', () => {
  const m = digestMd5Mechanism();
  assert.equal(m.requiresTls, false);
  assert.equal(m.credential, 'stored');
  assert.ok(m.strength > 25 && m.strength < 40);
});
