import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenVerifier } from '../core/credentials.js';
import type { SaslContext } from '../core/sasl.js';
import { oauthBearerMechanism, parseClientResponse } from './oauthbearer.js';
import { HOST, condition, ok, saslContext, tokenTable } from './testing.js';

// RFC 7628 §4.1 (IMAP and SMTP) initial client responses and §4.3 failed exchange, base64 as in the RFC.
const RFC_41_IMAP =
  'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB';
const RFC_41_SMTP =
  'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB';
const RFC_43_CLIENT = 'bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9AQE=';
const RFC_43_SERVER =
  'eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWcifQ==';
const RFC_TOKEN = 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==';

const ctx = (tokens?: TokenVerifier): SaslContext => saslContext(tokens && { tokens });

const b64 = (s: string): Buffer => Buffer.from(s, 'base64');

test('RFC 7628 §4.1: the IMAP and SMTP initial responses succeed as user@example.com', async () => {
  for (const message of [RFC_41_IMAP, RFC_41_SMTP]) {
    const tokens = tokenTable({ [RFC_TOKEN]: ok('user') });
    const exchange = oauthBearerMechanism().start(ctx(tokens));
    assert.deepEqual(await exchange.step(b64(message)), { kind: 'success', username: 'user' });
    assert.deepEqual(tokens.calls, [[RFC_TOKEN, HOST, 'user']]);
    assert.equal(exchange.authcid, 'user');
  }
});

test('RFC 7628 §4.3: an empty auth gets the error JSON (byte for byte), then the dummy ^A ends it with a failure', async () => {
  const tokens = tokenTable({}, { requiredScope: 'example_scope', openidConfiguration: 'https://example.com/.well-known/openid-config' });
  const exchange = oauthBearerMechanism().start(ctx(tokens));
  const error = await exchange.step(b64(RFC_43_CLIENT));
  assert.equal(error.kind, 'challenge');
  if (error.kind === 'challenge') assert.equal(error.data.toString('base64'), RFC_43_SERVER);
  assert.equal(condition(await exchange.step(b64('AQ=='))), 'not-authorized');
  assert.deepEqual(tokens.calls, []);
});

test('a token the verifier refuses: invalid_token, or insufficient_scope, then not-authorized', async () => {
  const message = (token: string): Buffer => Buffer.from(`n,,\x01auth=Bearer ${token}\x01\x01`);
  for (const [reason, status] of [
    ['expired', 'invalid_token'],
    ['revoked', 'invalid_token'],
    ['wrong-audience', 'invalid_token'],
    ['insufficient-scope', 'insufficient_scope'],
  ] as const) {
    const exchange = oauthBearerMechanism().start(ctx(tokenTable({ t0k3n: { ok: false, reason } })));
    const error = await exchange.step(message('t0k3n'));
    assert.equal(error.kind, 'challenge', reason);
    if (error.kind === 'challenge') assert.deepEqual(JSON.parse(error.data.toString()), { status });
    assert.equal(condition(await exchange.step(Buffer.from('\x01'))), 'not-authorized');
  }
});

test("the token's user must be the one named in the authzid", async () => {
  const tokens = tokenTable({ juliets: ok('juliet') });
  const named = oauthBearerMechanism().start(ctx(tokens));
  const error = await named.step(Buffer.from('n,a=romeo@example.com,\x01auth=Bearer juliets\x01\x01'));
  assert.equal(error.kind, 'challenge');
  assert.equal(condition(await named.step(Buffer.from('\x01'))), 'not-authorized');
  // Without an authzid the token decides who logs in; a bare localpart authzid works too.
  assert.deepEqual(await oauthBearerMechanism().start(ctx(tokens)).step(Buffer.from('n,,\x01auth=Bearer juliets\x01\x01')), { kind: 'success', username: 'juliet' });
  assert.deepEqual(await oauthBearerMechanism().start(ctx(tokens)).step(Buffer.from('y,a=Juliet,\x01auth=bearer juliets\x01\x01')), { kind: 'success', username: 'juliet' });
  // An authzid on another domain names no one here.
  const elsewhere = oauthBearerMechanism().start(ctx(tokens));
  assert.equal((await elsewhere.step(Buffer.from('n,a=juliet@example.net,\x01auth=Bearer juliets\x01\x01'))).kind, 'challenge');
});

test('host must name this domain (RFC 7628 §3.2); the port is not checked', async () => {
  const tokens = tokenTable({ t: ok('user') });
  assert.equal(condition(await oauthBearerMechanism().start(ctx(tokens)).step(Buffer.from('n,,\x01host=example.com\x01port=5222\x01auth=Bearer t\x01\x01'))), 'success');
  const exchange = oauthBearerMechanism().start(ctx(tokens));
  const error = await exchange.step(Buffer.from('n,,\x01host=evil.example\x01auth=Bearer t\x01\x01'));
  assert.equal(error.kind, 'challenge');
  if (error.kind === 'challenge') assert.deepEqual(JSON.parse(error.data.toString()), { status: 'invalid_request' });
  assert.equal(condition(await exchange.step(Buffer.from('\x01'))), 'not-authorized');
});

test('a verifier that cannot decide: temporary-auth-failure at once', async () => {
  const exchange = oauthBearerMechanism().start(ctx(tokenTable({ t: { ok: false, reason: 'unavailable' } })));
  assert.equal(condition(await exchange.step(Buffer.from('n,,\x01auth=Bearer t\x01\x01'))), 'temporary-auth-failure');
  const throwing: TokenVerifier = { verify: () => Promise.reject(new Error('boom')) };
  assert.equal(condition(await oauthBearerMechanism().start(ctx(throwing)).step(Buffer.from('n,,\x01auth=Bearer t\x01\x01'))), 'temporary-auth-failure');
});

test('malformed messages fail at once; a missing auth key gets invalid_request', async () => {
  const tokens = tokenTable({ t: ok('user') });
  for (const bad of ['\x01', 'n,,auth=Bearer t\x01\x01', 'p=tls-exporter,,\x01auth=Bearer t\x01\x01', 'n,a=x=ZZ,\x01auth=Bearer t\x01\x01', 'n,,\x01auth=Bearer t\x01', 'n,,\x011auth=x\x01\x01', 'n,,\x01auth=Bearer t\x01auth=Bearer t\x01\x01']) {
    assert.equal(condition(await oauthBearerMechanism().start(ctx(tokens)).step(Buffer.from(bad))), 'malformed-request', JSON.stringify(bad));
  }
  // RFC 7628 §4.4's "n,user=...," is not an RFC 5801 gs2-header (the authzid is "a=").
  const smtp44 = 'bix1c2VyPXNvbWV1c2VyQGV4YW1wbGUuY29tLAFhdXRoPUJlYXJlciB2RjlkZnQ0cW1UYzJOdmIzUmxja0JoZEhSaGRtbHpkR0V1WTI5dENnPT0BAQ==';
  assert.equal(condition(await oauthBearerMechanism().start(ctx(tokens)).step(b64(smtp44))), 'malformed-request');
  const exchange = oauthBearerMechanism().start(ctx(tokens));
  const error = await exchange.step(Buffer.from('n,,\x01host=example.com\x01\x01'));
  assert.equal(error.kind, 'challenge');
  if (error.kind === 'challenge') assert.equal(JSON.parse(error.data.toString()).status, 'invalid_request');
  assert.equal(condition(await exchange.step(Buffer.from('\x01'))), 'malformed-request');
});

test('without an initial response: an empty challenge first; unknown keys are ignored', async () => {
  const exchange = oauthBearerMechanism().start(ctx(tokenTable({ t: ok('user') })));
  const first = await exchange.step(undefined);
  assert.equal(first.kind === 'challenge' && first.data.length, 0);
  assert.equal(condition(await exchange.step(Buffer.from('n,,\x01mthd=POST\x01auth=Bearer t\x01\x01'))), 'success');
});

test('parseClientResponse', () => {
  assert.equal(parseClientResponse('\x01'), 'kvsep');
  const parsed = parseClientResponse('n,a=a=2Cb,\x01k=v w\x01\x01');
  assert.ok(typeof parsed === 'object');
  assert.equal(parsed.authzid, 'a,b');
  assert.deepEqual([...parsed.pairs], [['k', 'v w']]);
  assert.deepEqual(parseClientResponse('n,,\x01\x01'), { pairs: new Map() });
});

test('TLS only, and only offered when a token verifier is configured', () => {
  const m = oauthBearerMechanism();
  assert.equal(m.requiresTls, true);
  assert.equal(m.credential, 'token');
  assert.equal(m.available(ctx()), false);
  assert.equal(m.available(ctx(tokenTable({}))), true);
});
