import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccountStore } from '../storage/types.js';
import type { ChannelBindingType, SaslContext } from '../core/sasl.js';
import { ALL_MECHANISMS, findMechanism, offeredMechanisms } from './registry.js';
import { DEFAULT_SASL_MECHANISMS } from '../config/schema.js';

const DEFAULT_MECHANISM_NAMES: readonly string[] = DEFAULT_SASL_MECHANISMS;

// The offering policy never touches storage.
const noAccounts = new Proxy({} as AccountStore, {
  get() {
    throw new Error('offeredMechanisms must not use the account store');
  },
});

function makeCtx(secure: boolean, cbTypes: ChannelBindingType[] = []): SaslContext {
  return {
    host: 'example.com',
    secure,
    channelBinding: (type) => (cbTypes.includes(type) ? Buffer.from('cb') : undefined),
    channelBindingTypes: cbTypes,
    plusAdvertised: false,
    accounts: noAccounts,
  };
}

const names = (list: { name: string }[]) => list.map((m) => m.name);
const deny = { allowPlainWithoutTls: false };
const allow = { allowPlainWithoutTls: true };

test('ALL_MECHANISMS is ordered strongest first', () => {
  const defaults = [
    'SCRAM-SHA-512-PLUS',
    'SCRAM-SHA-256-PLUS',
    'SCRAM-SHA-1-PLUS',
    'SCRAM-SHA-512',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'PLAIN',
  ];
  assert.deepEqual(names(ALL_MECHANISMS), [...defaults.slice(0, 6), 'DIGEST-MD5', 'CRAM-MD5', 'OAUTHBEARER', 'X-OAUTH2', 'PLAIN']);
  const strengths = ALL_MECHANISMS.map((m) => m.strength);
  assert.deepEqual(strengths, [...strengths].sort((a, b) => b - a));
  assert.equal(new Set(strengths).size, strengths.length);
  // The MD5 mechanisms and the token mechanisms are off unless configured; every default is implemented.
  assert.deepEqual([...DEFAULT_MECHANISM_NAMES], defaults);
  for (const name of DEFAULT_MECHANISM_NAMES) assert.equal(findMechanism(name)?.name, name);
});

test('findMechanism looks up by exact name', () => {
  assert.equal(findMechanism('SCRAM-SHA-256')?.name, 'SCRAM-SHA-256');
  assert.equal(findMechanism('scram-sha-256'), undefined);
  assert.equal(findMechanism('DIGEST-MD5')?.name, 'DIGEST-MD5');
  assert.equal(findMechanism('GSSAPI'), undefined);
});

test('unencrypted stream: no PLAIN and no -PLUS', () => {
  assert.deepEqual(names(offeredMechanisms(makeCtx(false), DEFAULT_MECHANISM_NAMES, deny)), [
    'SCRAM-SHA-512',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
  ]);
});

test('unencrypted stream with allowPlainWithoutTls: PLAIN last', () => {
  assert.deepEqual(names(offeredMechanisms(makeCtx(false), DEFAULT_MECHANISM_NAMES, allow)), [
    'SCRAM-SHA-512',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'PLAIN',
  ]);
});

test('encrypted stream without channel binding: PLAIN but no -PLUS', () => {
  assert.deepEqual(names(offeredMechanisms(makeCtx(true), DEFAULT_MECHANISM_NAMES, deny)), [
    'SCRAM-SHA-512',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'PLAIN',
  ]);
});

test('encrypted stream with channel binding: everything, strongest first', () => {
  assert.deepEqual(
    names(offeredMechanisms(makeCtx(true, ['tls-exporter']), DEFAULT_MECHANISM_NAMES, deny)),
    [...DEFAULT_MECHANISM_NAMES],
  );
});

test('only enabled mechanisms, sorted by strength whatever the configured order', () => {
  const enabled = ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256-PLUS', 'X-UNKNOWN'];
  assert.deepEqual(names(offeredMechanisms(makeCtx(true, ['tls-server-end-point']), enabled, deny)), [
    'SCRAM-SHA-256-PLUS',
    'SCRAM-SHA-1',
    'PLAIN',
  ]);
  assert.deepEqual(names(offeredMechanisms(makeCtx(false), ['PLAIN'], deny)), []);
  assert.deepEqual(names(offeredMechanisms(makeCtx(true), [], deny)), []);
});

// --- The MD5 and token mechanisms (issue 4) -----------------------------------

const ALL_NAMES = ALL_MECHANISMS.map((m) => m.name);
const withTokens = (secure: boolean, cbTypes: ChannelBindingType[] = []): SaslContext => ({
  ...makeCtx(secure, cbTypes),
  tokens: { verify: () => Promise.resolve({ ok: false, reason: 'unknown' }) },
});

test('every mechanism enabled, over TLS with channel binding: strongest first', () => {
  assert.deepEqual(names(offeredMechanisms(withTokens(true, ['tls-exporter']), ALL_NAMES, deny)), [
    'SCRAM-SHA-512-PLUS',
    'SCRAM-SHA-256-PLUS',
    'SCRAM-SHA-1-PLUS',
    'SCRAM-SHA-512',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'DIGEST-MD5',
    'CRAM-MD5',
    'OAUTHBEARER',
    'X-OAUTH2',
    'PLAIN',
  ]);
});

test('without TLS: the MD5 mechanisms (no password on the wire), not PLAIN nor the bearer-token ones', () => {
  assert.deepEqual(names(offeredMechanisms(withTokens(false), ALL_NAMES, deny)), ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'DIGEST-MD5', 'CRAM-MD5']);
  // allow_plain_without_tls covers every mechanism that sends a secret in the clear, never -PLUS.
  assert.deepEqual(names(offeredMechanisms(withTokens(false, ['tls-exporter']), ALL_NAMES, allow)), [
    'SCRAM-SHA-512',
    'SCRAM-SHA-256',
    'SCRAM-SHA-1',
    'DIGEST-MD5',
    'CRAM-MD5',
    'OAUTHBEARER',
    'X-OAUTH2',
    'PLAIN',
  ]);
});

test('token mechanisms need a token verifier', () => {
  assert.deepEqual(names(offeredMechanisms(makeCtx(true), ['OAUTHBEARER', 'X-OAUTH2', 'PLAIN'], deny)), ['PLAIN']);
});

test('with accounts in an external service, only what it can check: PLAIN and tokens', () => {
  assert.deepEqual(names(offeredMechanisms(withTokens(true, ['tls-exporter']), ALL_NAMES, { allowPlainWithoutTls: false, externalAccounts: true })), [
    'OAUTHBEARER',
    'X-OAUTH2',
    'PLAIN',
  ]);
});
