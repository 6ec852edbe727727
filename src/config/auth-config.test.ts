// The authentication keys of shoal.yaml: tokens, auth, sasl.rate_limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from './load.js';

function problems(data: unknown): string[] {
  try {
    parseConfig(data, '/etc/shoal');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('defaults: local tokens, internal accounts, rate limiting on', () => {
  const c = parseConfig({}, '/etc/shoal');
  assert.deepEqual(c.tokens, { verifier: 'local', default_ttl: 3600 });
  assert.deepEqual(c.auth, { backend: 'internal' });
  assert.deepEqual(c.sasl.rate_limit, { enabled: true, account: { burst: 20, per_minute: 4 }, address: { burst: 40, per_minute: 20 } });
});

test('`tokens: jwt` shorthand needs a jwt section; key paths are relative to the config file', () => {
  assert.deepEqual(parseConfig({ tokens: 'local' }, '/etc/shoal').tokens.verifier, 'local');
  assert.match(problems({ tokens: 'jwt' }).join('\n'), /tokens\.jwt: tokens\.verifier jwt needs a jwt section/);
  const c = parseConfig({ tokens: { verifier: 'jwt', jwt: { jwks: 'keys/jwks.json', audience: 'xmpp' } } }, '/etc/shoal');
  assert.deepEqual(c.tokens.jwt, { jwks: '/etc/shoal/keys/jwks.json', audience: 'xmpp', claim: 'sub', clock_tolerance: 30 });
  assert.equal(parseConfig({ tokens: { verifier: 'jwt', jwt: { public_key: '/abs/k.pem' } } }, '/x').tokens.jwt?.public_key, '/abs/k.pem');
});

test('exactly one key source; a short HS256 secret and unknown algorithms are refused', () => {
  assert.match(problems({ tokens: { verifier: 'jwt', jwt: {} } }).join('\n'), /give exactly one of secret, secret_file, public_key, jwks/);
  assert.match(problems({ tokens: { verifier: 'jwt', jwt: { secret: 'x'.repeat(40), jwks: 'k.json' } } }).join('\n'), /exactly one/);
  assert.match(problems({ tokens: { verifier: 'jwt', jwt: { secret: 'short' } } }).join('\n'), /at least 32 characters/);
  assert.match(problems({ tokens: { verifier: 'jwt', jwt: { jwks: 'k.json', algorithms: ['none'] } } }).join('\n'), /tokens\.jwt\.algorithms\[0\]/);
  assert.match(problems({ tokens: { openid_configuration: 'http://insecure.example/' } }).join('\n'), /tokens\.openid_configuration/);
  assert.match(problems({ tokens: { required_scope: 'two scopes' } }).join('\n'), /tokens\.required_scope/);
});

test('auth.backend http needs a url; unknown keys are errors', () => {
  assert.match(problems({ auth: { backend: 'http' } }).join('\n'), /auth\.http: auth\.backend http needs auth\.http\.url/);
  const c = parseConfig({ auth: { backend: 'http', http: { url: 'http://127.0.0.1:8080/check' } } }, '/x');
  assert.deepEqual(c.auth, { backend: 'http', http: { url: 'http://127.0.0.1:8080/check', timeout: 5 } });
  assert.match(problems({ auth: { backend: 'ldap' } }).join('\n'), /auth\.backend/);
  assert.match(problems({ sasl: { rate_limit: { account: { burst: 0 } } } }).join('\n'), /sasl\.rate_limit\.account\.burst/);
  assert.match(problems({ sasl: { rate_limit: { acount: {} } } }).join('\n'), /sasl\.rate_limit\.acount: unknown key/);
});
