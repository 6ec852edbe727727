import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountStore } from '../storage/types.js';
import type { SaslStep } from '../core/sasl.js';
import { deriveScramCredentials } from './credentials.js';
import { plainMechanism } from './plain.js';
import { HOST, MemoryAccounts, assertFailure, saslContext, withUser } from './testing.js';

async function plain(accounts: AccountStore, message: string | Buffer): Promise<SaslStep> {
  const exchange = plainMechanism().start(saslContext({ accounts }));
  return exchange.step(typeof message === 'string' ? Buffer.from(message, 'utf8') : message);
}

function assertSuccess(step: SaslStep, username: string): void {
  assert.equal(step.kind, 'success', step.kind === 'failure' ? step.condition : '');
  if (step.kind === 'success') assert.equal(step.username, username);
}

test('PLAIN is only for encrypted streams and always available', () => {
  const mech = plainMechanism();
  assert.equal(mech.name, 'PLAIN');
  assert.equal(mech.requiresTls, true);
  assert.equal(mech.available(saslContext({ accounts: new MemoryAccounts() })), true);
});

test('RFC 4616 §4 style messages: correct password succeeds', async () => {
  const accounts = await withUser('tim', 'tanstaaftanstaaf');
  assertSuccess(await plain(accounts, '\0tim\0tanstaaftanstaaf'), 'tim');
  // The authcid is prepared like a localpart.
  assertSuccess(await plain(accounts, '\0TIM\0tanstaaftanstaaf'), 'tim');
});

test('authzid equal to the bare JID or the username is accepted', async () => {
  const accounts = await withUser('tim', 'tanstaaftanstaaf');
  assertSuccess(await plain(accounts, 'tim@example.com\0tim\0tanstaaftanstaaf'), 'tim');
  assertSuccess(await plain(accounts, 'tim\0tim\0tanstaaftanstaaf'), 'tim');
});

test('authzid naming someone else fails with invalid-authzid', async () => {
  const accounts = await withUser('kurt', 'xipj3plmq');
  // RFC 4616 §4 example "Ursel\0Kurt\0xipj3plmq": acting as another user is not allowed here.
  assertFailure(await plain(accounts, 'Ursel\0Kurt\0xipj3plmq'), 'invalid-authzid');
  assertFailure(await plain(accounts, 'kurt@example.net\0Kurt\0xipj3plmq'), 'invalid-authzid');
  assertFailure(await plain(accounts, 'kurt@example.com/res\0Kurt\0xipj3plmq'), 'invalid-authzid');
});

test('wrong password and unknown user both fail with not-authorized', async () => {
  const accounts = await withUser('tim', 'tanstaaftanstaaf');
  assertFailure(await plain(accounts, '\0tim\0tanstaaf'), 'not-authorized');
  assertFailure(await plain(accounts, '\0tom\0tanstaaftanstaaf'), 'not-authorized');
  assertFailure(await plain(accounts, '\0tim\0bad\u0007password'), 'not-authorized');
});

test('the password is compared after SASLprep', async () => {
  const accounts = await withUser('tim', 'IX');
  assertSuccess(await plain(accounts, '\0tim\0I\u00ADX'), 'tim');
  assertSuccess(await plain(accounts, '\0tim\0\u2168'), 'tim');
});

test('the strongest stored hash is the one checked', async () => {
  const accounts = new MemoryAccounts();
  // Deliberately inconsistent credentials: only the SHA-512 ones match "right".
  await accounts.create(HOST, 'tim', [
    deriveScramCredentials('wrong', 'SHA-1'),
    deriveScramCredentials('right', 'SHA-512'),
    deriveScramCredentials('wrong', 'SHA-256'),
  ]);
  assertSuccess(await plain(accounts, '\0tim\0right'), 'tim');
  assertFailure(await plain(accounts, '\0tim\0wrong'), 'not-authorized');

  const sha1Only = new MemoryAccounts();
  await sha1Only.create(HOST, 'tim', [deriveScramCredentials('right', 'SHA-1', { iterations: 10000 })]);
  assertSuccess(await plain(sha1Only, '\0tim\0right'), 'tim');
});

test('malformed PLAIN messages', async () => {
  const accounts = await withUser('tim', 'tanstaaftanstaaf');
  for (const message of ['tim\0tanstaaftanstaaf', '\0tim\0tans\0taaf', '\0\0tanstaaftanstaaf', '\0tim\0', '']) {
    assertFailure(await plain(accounts, message), 'malformed-request');
  }
  assertFailure(await plain(accounts, Buffer.from([0, 0x74, 0xff, 0, 0x61])), 'malformed-request');
});

test('without an initial response the server sends an empty challenge, then accepts the response', async () => {
  const accounts = await withUser('tim', 'tanstaaftanstaaf');
  const exchange = plainMechanism().start(saslContext({ accounts }));
  const first = await exchange.step(undefined);
  assert.equal(first.kind, 'challenge');
  if (first.kind === 'challenge') assert.equal(first.data.length, 0);
  assertSuccess(await exchange.step(Buffer.from('\0tim\0tanstaaftanstaaf')), 'tim');
  assertFailure(await exchange.step(Buffer.from('\0tim\0tanstaaftanstaaf')), 'malformed-request');
});

test('a storage error becomes temporary-auth-failure', async () => {
  const accounts = await withUser('tim', 'tanstaaftanstaaf');
  accounts.getScramCredentials = () => Promise.reject(new Error('database is down'));
  assertFailure(await plain(accounts, '\0tim\0tanstaaftanstaaf'), 'temporary-auth-failure');
});
