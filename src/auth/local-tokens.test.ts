import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { testStorage, credentials, type TempStorage } from '../storage/sql/testutil.js';
import { LocalTokenVerifier, hashToken, issueToken, parseDuration } from './local-tokens.js';
import { requireScope } from './index.js';

let t: TempStorage;
before(async () => {
  t = await testStorage();
  await t.storage.accounts.create('example.com', 'juliet', [credentials('SHA-256', 1)]);
  await t.storage.accounts.create('example.com', 'romeo', [credentials('SHA-256', 2)]);
});
after(() => t.cleanup());

const T0 = new Date('2030-05-01T12:00:00Z');
const at = (ms: number) => () => new Date(T0.getTime() + ms);

test('an issued token verifies for its account until it expires', async () => {
  const { text, token } = await issueToken(t.storage.tokens, { host: 'example.com', username: 'juliet', ttlSeconds: 3600, scope: ['xmpp'], now: T0 });
  assert.match(text, /^[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/);
  assert.equal(text.startsWith(`${token.id}.`), true);
  assert.deepEqual(await new LocalTokenVerifier(t.storage.tokens, at(0)).verify(text, 'example.com'), { ok: true, username: 'juliet', scope: ['xmpp'] });
  assert.deepEqual(await new LocalTokenVerifier(t.storage.tokens, at(3_599_999)).verify(text, 'example.com'), { ok: true, username: 'juliet', scope: ['xmpp'] });
  assert.deepEqual(await new LocalTokenVerifier(t.storage.tokens, at(3_600_000)).verify(text, 'example.com'), { ok: false, reason: 'expired' });
});

test('revoked, unknown, on another domain, absurdly long', async () => {
  const verifier = new LocalTokenVerifier(t.storage.tokens, at(0));
  const { text, token } = await issueToken(t.storage.tokens, { host: 'example.com', username: 'romeo', now: T0 });
  assert.equal((await verifier.verify(text, 'example.com')).ok, true);
  assert.equal(await t.storage.tokens.revoke(token.id), true);
  assert.deepEqual(await verifier.verify(text, 'example.com'), { ok: false, reason: 'revoked' });
  assert.deepEqual(await verifier.verify(`${token.id}.not-the-secret`, 'example.com'), { ok: false, reason: 'unknown' });
  const other = await issueToken(t.storage.tokens, { host: 'example.com', username: 'romeo', now: T0 });
  assert.deepEqual(await verifier.verify(other.text, 'example.net'), { ok: false, reason: 'wrong-host' });
  assert.deepEqual(await verifier.verify('x'.repeat(5000), 'example.com'), { ok: false, reason: 'malformed' });
  assert.deepEqual(await verifier.verify('', 'example.com'), { ok: false, reason: 'malformed' });
});

test('only the SHA-256 of the token is stored', async () => {
  const { text, token } = await issueToken(t.storage.tokens, { host: 'example.com', username: 'juliet', now: T0 });
  const secret = text.split('.')[1]!;
  const rows = await sql<Record<string, unknown>>`select * from auth_tokens where id = ${token.id}`.execute(t.storage.sql.db<unknown>());
  const row = rows.rows[0]!;
  assert.deepEqual(row.token_hash, hashToken(text));
  for (const value of Object.values(row)) assert.equal(String(value).includes(secret), false);
  if (t.dialect !== 'sqlite') return;
  // The whole SQLite file: not in any page, free or not.
  const db = new BetterSqlite3(t.path, { readonly: true });
  try {
    assert.equal(db.serialize().includes(Buffer.from(secret)), false);
  } finally {
    db.close();
  }
});

test('requireScope: a token without the required scope is insufficient-scope', async () => {
  const verifier = requireScope(new LocalTokenVerifier(t.storage.tokens, at(0)), 'xmpp');
  assert.equal(verifier.requiredScope, 'xmpp');
  const scoped = await issueToken(t.storage.tokens, { host: 'example.com', username: 'juliet', scope: ['mail', 'xmpp'], now: T0 });
  const unscoped = await issueToken(t.storage.tokens, { host: 'example.com', username: 'juliet', scope: ['mail'], now: T0 });
  assert.equal((await verifier.verify(scoped.text, 'example.com')).ok, true);
  assert.deepEqual(await verifier.verify(unscoped.text, 'example.com'), { ok: false, reason: 'insufficient-scope' });
});

test('durations', () => {
  assert.equal(parseDuration('90'), 90);
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('7d'), 604800);
  assert.equal(parseDuration('1.5h'), 5400);
  for (const bad of ['', '0', '-1h', 'h', '1w', '1 hour']) assert.equal(parseDuration(bad), undefined, bad);
});
