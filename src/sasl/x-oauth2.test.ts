import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenVerdict } from '../core/credentials.js';
import type { SaslContext, SaslStep } from '../core/sasl.js';
import { xOauth2Mechanism } from './x-oauth2.js';
import { HOST, condition, ok, saslContext, tokenTable } from './testing.js';

const ctx = (table: Record<string, TokenVerdict>): SaslContext => saslContext({ tokens: tokenTable(table) });
const run = async (c: SaslContext, message: string): Promise<SaslStep> => xOauth2Mechanism().start(c).step(Buffer.from(message, 'utf8'));

test("the seed's message \\0user\\0token, the user as a localpart or a bare JID", async () => {
  const tokens = tokenTable({ tok: ok('juliet') });
  const c = saslContext({ tokens });
  assert.deepEqual(await run(c, '\0juliet\0tok'), { kind: 'success', username: 'juliet' });
  assert.deepEqual(await run(c, '\0Juliet@Example.com\0tok'), { kind: 'success', username: 'juliet' });
  assert.deepEqual(await run(c, 'juliet@example.com\0juliet\0tok'), { kind: 'success', username: 'juliet' });
  assert.deepEqual(tokens.calls[0], ['tok', HOST, 'juliet']);
});

test("another user's valid token, an unknown, expired or revoked token: not-authorized", async () => {
  const c = ctx({ juliets: ok('juliet'), old: { ok: false, reason: 'expired' }, gone: { ok: false, reason: 'revoked' } });
  for (const message of ['\0romeo\0juliets', '\0juliet\0nope', '\0juliet\0old', '\0juliet\0gone', '\0juliet@example.net\0juliets']) {
    assert.equal(condition(await run(c, message)), 'not-authorized', JSON.stringify(message));
  }
});

test('an authzid naming someone else: invalid-authzid; the verifier cannot decide: temporary-auth-failure', async () => {
  assert.equal(condition(await run(ctx({ t: ok('juliet') }), 'romeo\0juliet\0t')), 'invalid-authzid');
  assert.equal(condition(await run(ctx({ t: { ok: false, reason: 'unavailable' } }), '\0juliet\0t')), 'temporary-auth-failure');
});

test('malformed messages; an empty challenge without an initial response', async () => {
  const c = ctx({ t: ok('juliet') });
  for (const bad of ['juliet\0t', '\0\0t', '\0juliet\0', '\0juliet\0t\0x']) assert.equal(condition(await run(c, bad)), 'malformed-request', JSON.stringify(bad));
  const exchange = xOauth2Mechanism().start(c);
  const first = await exchange.step(undefined);
  assert.equal(first.kind === 'challenge' && first.data.length, 0);
  assert.equal(condition(await exchange.step(Buffer.from('\0juliet\0t'))), 'success');
  assert.equal(condition(await exchange.step(Buffer.from('\0juliet\0t'))), 'malformed-request');
});

test('TLS only; needs a token verifier', () => {
  const m = xOauth2Mechanism();
  assert.equal(m.requiresTls, true);
  assert.equal(m.credential, 'token');
  const { tokens: _unused, ...without } = ctx({});
  assert.equal(m.available(without), false);
});
