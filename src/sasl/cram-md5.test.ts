import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { LegacySecretStore } from '../storage/types.js';
import type { SaslContext } from '../core/sasl.js';
import { cramMd5Mechanism } from './cram-md5.js';
import { condition, legacySecretsFor, saslContext } from './testing.js';

// RFC 2195 §2, the example exchange (base64 as in the RFC).
const RFC_CHALLENGE_B64 = 'PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+';
const RFC_RESPONSE_B64 = 'dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw';
const RFC_CHALLENGE = '<1896.697170952@postoffice.reston.mci.net>';
const HOST = 'postoffice.reston.mci.net';

/** Secrets as `shoal user add` stores them, for CRAM-MD5 only. */
const secretsFor = (users: Record<string, string>): LegacySecretStore => legacySecretsFor(HOST, users, ['CRAM-MD5']);

const ctx = (legacySecrets?: LegacySecretStore): SaslContext => saslContext({ host: HOST, secure: false, ...(legacySecrets && { legacySecrets }) });

const rfcMechanism = () => cramMd5Mechanism({ challenge: () => RFC_CHALLENGE });

test('RFC 2195 §2 example: the challenge, and "tim b913a602c7eda7a495b4e6e7334d3890" succeeds', async () => {
  const exchange = rfcMechanism().start(ctx(secretsFor({ tim: 'tanstaaftanstaaf' })));
  const challenge = await exchange.step(undefined);
  assert.equal(challenge.kind, 'challenge');
  if (challenge.kind === 'challenge') {
    assert.equal(challenge.data.toString('base64'), RFC_CHALLENGE_B64);
    assert.equal(challenge.data.toString(), RFC_CHALLENGE);
  }
  const response = Buffer.from(RFC_RESPONSE_B64, 'base64');
  assert.equal(response.toString(), 'tim b913a602c7eda7a495b4e6e7334d3890');
  const result = await exchange.step(response);
  assert.deepEqual(result, { kind: 'success', username: 'tim' });
  assert.equal(exchange.authcid, 'tim');
});

test('an empty initial response is the same as none; the digest may be upper case', async () => {
  const exchange = rfcMechanism().start(ctx(secretsFor({ tim: 'tanstaaftanstaaf' })));
  assert.equal((await exchange.step(Buffer.alloc(0))).kind, 'challenge');
  assert.equal(condition(await exchange.step(Buffer.from('tim B913A602C7EDA7A495B4E6E7334D3890'))), 'success');
});

test('wrong password, unknown user, account without CRAM-MD5 secrets: not-authorized', async () => {
  const secrets = secretsFor({ tim: 'tanstaaftanstaaf' });
  const wrong = createHmac('md5', 'tanstaaf').update(RFC_CHALLENGE).digest('hex');
  for (const [store, message] of [
    [secrets, `tim ${wrong}`],
    [secrets, 'tom b913a602c7eda7a495b4e6e7334d3890'],
    [undefined, 'tim b913a602c7eda7a495b4e6e7334d3890'],
  ] as const) {
    const exchange = rfcMechanism().start(ctx(store));
    await exchange.step(undefined);
    assert.equal(condition(await exchange.step(Buffer.from(message))), 'not-authorized', message);
  }
});

test('a response to another challenge does not pass (each challenge is used once)', async () => {
  const secrets = secretsFor({ tim: 'tanstaaftanstaaf' });
  const exchange = cramMd5Mechanism().start(ctx(secrets));
  const challenge = await exchange.step(undefined);
  assert.equal(challenge.kind, 'challenge');
  if (challenge.kind === 'challenge') assert.match(challenge.data.toString(), new RegExp(`^<\\d+\\.\\d+@${HOST.replace(/\./g, '\\.')}>$`));
  assert.equal(condition(await exchange.step(Buffer.from('tim b913a602c7eda7a495b4e6e7334d3890'))), 'not-authorized');
  const other = cramMd5Mechanism().start(ctx(secrets));
  const c2 = await other.step(undefined);
  if (challenge.kind === 'challenge' && c2.kind === 'challenge') assert.notEqual(c2.data.toString(), challenge.data.toString());
});

test('malformed exchanges', async () => {
  const secrets = secretsFor({ tim: 'tanstaaftanstaaf' });
  // Server-first: an initial response is refused.
  assert.equal(condition(await rfcMechanism().start(ctx(secrets)).step(Buffer.from('tim x'))), 'malformed-request');
  for (const message of ['timb913a602c7eda7a495b4e6e7334d3890', 'tim b913a602c7eda7a495b4e6e7334d389', 'tim  ', '']) {
    const exchange = rfcMechanism().start(ctx(secrets));
    await exchange.step(undefined);
    assert.equal(condition(await exchange.step(Buffer.from(message))), 'malformed-request', message);
  }
  const exchange = rfcMechanism().start(ctx(secrets));
  await exchange.step(undefined);
  await exchange.step(Buffer.from(RFC_RESPONSE_B64, 'base64'));
  assert.equal(condition(await exchange.step(Buffer.from(RFC_RESPONSE_B64, 'base64'))), 'malformed-request');
});

test('a storage error becomes temporary-auth-failure', async () => {
  const exchange = rfcMechanism().start(ctx({ get: () => Promise.reject(new Error('down')), accountsWithout: async () => [] }));
  await exchange.step(undefined);
  assert.equal(condition(await exchange.step(Buffer.from(RFC_RESPONSE_B64, 'base64'))), 'temporary-auth-failure');
});

test('offered without TLS (the password is not sent), off by default elsewhere', () => {
  const m = cramMd5Mechanism();
  assert.equal(m.name, 'CRAM-MD5');
  assert.equal(m.requiresTls, false);
  assert.equal(m.credential, 'stored');
});
