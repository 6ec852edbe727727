import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig, parseConfig } from './load.js';
import { DEFAULT_SASL_MECHANISMS, type Config } from './schema.js';

/** The documented defaults of the limits section (README, Configuration reference). */
const LIMITS_DEFAULTS = {
  max_stanza_bytes: 262144,
  max_connections_per_ip: 100,
  max_directed_presence: 1000,
  max_sessions_per_account: 10,
  subscription_requests: { burst: 20, per_minute: 1 },
  subscription_repeats: { burst: 1, per_minute: 0.1 },
  rate: {
    client: { bytes_per_second: 32768, burst_bytes: 524288, stanzas_per_second: 100, burst_stanzas: 500 },
    account: { bytes_per_second: 65536, burst_bytes: 1048576, stanzas_per_second: 200, burst_stanzas: 1000 },
    component: { bytes_per_second: 0, burst_bytes: 1, stanzas_per_second: 0, burst_stanzas: 1 },
    abuse_seconds: 60,
  },
};
const MAM_DEFAULTS = { enabled: true, default: 'always', max_page: 250, retention_interval: 3600 } as const;
const RATE_LIMIT_DEFAULTS = { enabled: true, account: { burst: 20, per_minute: 4 }, address: { burst: 40, per_minute: 20 } };

function defaults(base: string): Omit<Config, 'tls'> {
  return {
    hosts: ['localhost'],
    c2s: { host: '0.0.0.0', port: 5222 },
    data_dir: join(base, 'data'),
    storage: { driver: 'sqlite', path: join(base, 'data', 'shoal.sqlite'), busy_timeout: 5 },
    limits: { ...LIMITS_DEFAULTS, max_stanza_bytes: 262144 },
    timeouts: { pre_auth: 30, ping_after: 300, ping_timeout: 60 },
    sasl: { mechanisms: [...DEFAULT_SASL_MECHANISMS], max_attempts: 5, allow_plain_without_tls: false, tls_unique_fallback: false, rate_limit: RATE_LIMIT_DEFAULTS },
    tokens: { verifier: 'local', default_ttl: 3600 },
    auth: { backend: 'internal' },
    bind: { resource: 'generate' },
    roster: { versioning: 'diff', max_items: 1000 },
    offline: { max_per_user: 1000, max_bytes_per_user: 10485760, max_per_stranger: 100, strangers_share: 0.5 },
    stream_management: { enabled: true, resume_timeout: 300, max_unacked: 1000, request_every: 5 },
    push: { include_body: false, max_per_account: 10, min_interval: 2, timeout: 30 },
    mam: MAM_DEFAULTS,
    vcard: { max_bytes: 65536 },
    pep: { max_nodes: 100, max_items: 256, max_item_bytes: 262144, max_bytes_per_account: 16777216, private_max_bytes: 65536, private_max_entries: 100, caps_cache_size: 1000, caps_timeout: 10 },
    muc: { domain: 'conference.{host}', max_rooms_per_user: 100, max_occupants: 1000, max_history: 50 },
    upload: { domain: 'upload.{host}', max_file_bytes: 104857600, quota_bytes: 1073741824, expire_after_days: 30, put_expiry: 300, cleanup_interval: 3600 },
    log: { level: 'info', format: 'auto' },
    metrics: { enabled: true, allowed_ips: ['127.0.0.1', '::1'], event_loop_resolution_ms: 100 },
  };
}

/** The problems a ConfigError lists, for assert.rejects/throws. */
function sqlitePath(config: Config): string | undefined {
  return config.storage.driver === 'sqlite' ? config.storage.path : undefined;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const p of err.problems) assert.ok(err.message.includes(p), 'the message lists every problem');
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  let root: string;
  let n = 0;
  /** A fresh empty directory per test. */
  const freshDir = async (): Promise<string> => {
    const dir = join(root, `t${n++}`);
    await mkdir(dir, { recursive: true });
    return dir;
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-config-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('without any file: all defaults, TLS on with a self-signed certificate, HTTP on loopback:5280', async () => {
    const cwd = await freshDir();
    const config = loadConfig({ cwd, env: {} });
    const { http, ...rest } = config;
    assert.deepEqual(rest, { ...defaults(cwd), tls: {} });
    assert.equal(http?.host, '127.0.0.1');
    assert.equal(http?.port, 5280);
    assert.equal(http?.listen, true);
    assert.equal(config.https, undefined);
    assert.equal(config.c2s_direct_tls, undefined);
  });

  test('a file: no HTTP, HTTPS or direct TLS listener unless its section is there; those over TLS need tls', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'hosts: [example.org]\n');
    const plain = loadConfig({ cwd, env: {} });
    assert.equal(plain.http, undefined);
    await writeFile(join(cwd, 'shoal.yaml'), 'tls: {}\nhttp:\nhttps:\nc2s_direct_tls:\n');
    const all = loadConfig({ cwd, env: {} });
    assert.equal(all.http?.port, 5280);
    assert.equal(all.https?.port, 5281);
    assert.equal(all.c2s_direct_tls?.port, 5223);
    await writeFile(join(cwd, 'shoal.yaml'), 'https: {}\nc2s_direct_tls: {}\nhttp: { allowed_origins: [example.com], trust_proxy: [nope] }\n');
    assert.throws(
      () => loadConfig({ cwd, env: {} }),
      (err: Error) =>
        /https: https needs a tls section/.test(err.message) &&
        /c2s_direct_tls: c2s_direct_tls needs a tls section/.test(err.message) &&
        /http\.allowed_origins\[0\]/.test(err.message) &&
        /http\.trust_proxy\[0\]/.test(err.message),
    );
  });

  test('a file without a tls section turns TLS off; an empty file is all defaults', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'hosts: [example.org]\n');
    const config = loadConfig({ cwd, env: {} });
    assert.equal(config.tls, undefined);
    assert.ok(!('tls' in config));
    assert.deepEqual(config.hosts, ['example.org']);

    await writeFile(join(cwd, 'shoal.yaml'), '');
    assert.deepEqual(loadConfig({ cwd, env: {} }), defaults(cwd));
    await writeFile(join(cwd, 'shoal.yaml'), '# only a comment\n');
    assert.deepEqual(loadConfig({ cwd, env: {} }), defaults(cwd));
  });

  test('every key of the documented file is read', async () => {
    const cwd = await freshDir();
    await writeFile(
      join(cwd, 'shoal.yaml'),
      [
        'hosts: [Example.org, chat.example.org]',
        'c2s: { host: 127.0.0.1, port: 15222 }',
        'data_dir: /var/lib/shoal',
        'storage: { driver: sqlite, path: /srv/db/shoal.sqlite }',
        'tls: { cert: /etc/shoal/cert.pem, key: /etc/shoal/key.pem }',
        'limits: { max_stanza_bytes: 65536 }',
        'timeouts: { pre_auth: 2.5, ping_after: 0.25, ping_timeout: 1 }',
        'sasl:',
        '  mechanisms: [SCRAM-SHA-256, plain, X-OAUTH2]',
        '  max_attempts: 3',
        '  allow_plain_without_tls: true',
        'bind: { resource: client }',
        'roster: { versioning: full }',
        'log: { level: debug, format: json }',
        '',
      ].join('\n'),
    );
    assert.deepEqual(loadConfig({ cwd, env: {} }), {
      hosts: ['example.org', 'chat.example.org'],
      c2s: { host: '127.0.0.1', port: 15222 },
      data_dir: '/var/lib/shoal',
      storage: { driver: 'sqlite', path: '/srv/db/shoal.sqlite', busy_timeout: 5 },
      tls: { cert: '/etc/shoal/cert.pem', key: '/etc/shoal/key.pem' },
      limits: { ...LIMITS_DEFAULTS, max_stanza_bytes: 65536 },
      timeouts: { pre_auth: 2.5, ping_after: 0.25, ping_timeout: 1 },
      sasl: { mechanisms: ['SCRAM-SHA-256', 'PLAIN', 'X-OAUTH2'], max_attempts: 3, allow_plain_without_tls: true, tls_unique_fallback: false, rate_limit: RATE_LIMIT_DEFAULTS },
      tokens: { verifier: 'local', default_ttl: 3600 },
      auth: { backend: 'internal' },
      bind: { resource: 'client' },
      roster: { versioning: 'full', max_items: 1000 },
      offline: { max_per_user: 1000, max_bytes_per_user: 10485760, max_per_stranger: 100, strangers_share: 0.5 },
      stream_management: { enabled: true, resume_timeout: 300, max_unacked: 1000, request_every: 5 },
      push: { include_body: false, max_per_account: 10, min_interval: 2, timeout: 30 },
      mam: MAM_DEFAULTS,
      vcard: { max_bytes: 65536 },
      pep: { max_nodes: 100, max_items: 256, max_item_bytes: 262144, max_bytes_per_account: 16777216, private_max_bytes: 65536, private_max_entries: 100, caps_cache_size: 1000, caps_timeout: 10 },
      muc: { domain: 'conference.{host}', max_rooms_per_user: 100, max_occupants: 1000, max_history: 50 },
      upload: { domain: 'upload.{host}', max_file_bytes: 104857600, quota_bytes: 1073741824, expire_after_days: 30, put_expiry: 300, cleanup_interval: 3600 },
      log: { level: 'debug', format: 'json' },
      metrics: { enabled: true, allowed_ips: ['127.0.0.1', '::1'], event_loop_resolution_ms: 100 },
    } satisfies Config);
  });

  test('partial sections keep the defaults of the keys left out', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'c2s: { port: 5223 }\nsasl: { max_attempts: 2 }\nlog:\n');
    const config = loadConfig({ cwd, env: {} });
    assert.deepEqual(config.c2s, { host: '0.0.0.0', port: 5223 });
    assert.deepEqual(config.sasl, { ...defaults(cwd).sasl, max_attempts: 2 });
    assert.deepEqual(config.log, { level: 'info', format: 'auto' });
  });

  test('file choice: opts.file, then SHOAL_CONFIG, then ./shoal.yaml', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'hosts: [cwd.example]\n');
    await writeFile(join(cwd, 'env.yaml'), 'hosts: [env.example]\n');
    await writeFile(join(cwd, 'opt.yaml'), 'hosts: [opt.example]\n');
    assert.deepEqual(loadConfig({ cwd, env: {} }).hosts, ['cwd.example']);
    assert.deepEqual(loadConfig({ cwd, env: { SHOAL_CONFIG: 'env.yaml' } }).hosts, ['env.example']);
    assert.deepEqual(loadConfig({ cwd, env: { SHOAL_CONFIG: join(cwd, 'env.yaml') } }).hosts, ['env.example']);
    assert.deepEqual(loadConfig({ cwd, env: { SHOAL_CONFIG: 'env.yaml' }, file: 'opt.yaml' }).hosts, ['opt.example']);
  });

  test('a file named explicitly must exist', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'hosts: [cwd.example]\n');
    const viaEnv = problemsOf(() => loadConfig({ cwd, env: { SHOAL_CONFIG: 'missing.yaml' } }));
    assert.match(viaEnv.join('\n'), /SHOAL_CONFIG/);
    problemsOf(() => loadConfig({ cwd, env: {}, file: 'missing.yaml' }));
  });

  test('an unknown key is an error naming its path', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'c2s:\n  port: 5222\n  prot: 1\nlimit: {}\n');
    const problems = problemsOf(() => loadConfig({ cwd, env: {} }));
    assert.deepEqual(problems.sort(), ['c2s.prot: unknown key', 'limit: unknown key']);
  });

  test('a wrong type is an error naming its path; all problems are listed at once', async () => {
    const cwd = await freshDir();
    await writeFile(
      join(cwd, 'shoal.yaml'),
      'c2s: { port: "5222" }\nsasl: { allow_plain_without_tls: yes, mechanisms: [SCRAM-SHA-256, FOO] }\nhosts: example.org\n',
    );
    let error: unknown;
    try {
      loadConfig({ cwd, env: {} });
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof ConfigError);
    assert.equal(error.file, join(cwd, 'shoal.yaml'));
    assert.match(error.message, /c2s\.port: expected number/);
    assert.match(error.message, /sasl\.allow_plain_without_tls: expected boolean/);
    assert.match(error.message, /sasl\.mechanisms\[1\]: expected one of .*got "FOO"/);
    assert.match(error.message, /hosts: expected array/);
    assert.equal(error.problems.length, 4);
  });

  test('value checks', () => {
    const cwd = '/base';
    const bad = (data: unknown) => problemsOf(() => parseConfig(data, cwd)).join('\n');
    assert.match(bad({ hosts: [] }), /^hosts: at least one host/);
    assert.match(bad({ hosts: ['a.example', 'A.example'] }), /^hosts\[1\]: duplicate host a\.example/);
    assert.match(bad({ hosts: [''] }), /^hosts\[0\]: must not be empty/);
    assert.match(bad({ hosts: ['user@example.org'] }), /^hosts\[0\]: not a domain name/);
    assert.match(bad({ c2s: { port: 70000 } }), /^c2s\.port:/);
    assert.match(bad({ c2s: { port: 52.5 } }), /^c2s\.port:/);
    assert.match(bad({ limits: { max_stanza_bytes: 9999 } }), /^limits\.max_stanza_bytes:/);
    assert.match(bad({ timeouts: { ping_after: 0 } }), /^timeouts\.ping_after:/);
    assert.match(bad({ metrics: { event_loop_resolution_ms: 0 } }), /^metrics\.event_loop_resolution_ms:/);
    assert.match(bad({ sasl: { mechanisms: [] } }), /^sasl\.mechanisms: at least one/);
    assert.match(bad({ sasl: { mechanisms: ['PLAIN', 'plain'] } }), /^sasl\.mechanisms\[1\]: duplicate/);
    assert.match(bad({ sasl: { max_attempts: 0 } }), /^sasl\.max_attempts:/);
    assert.match(bad({ bind: { resource: 'random' } }), /^bind\.resource: expected one of "generate", "client"/);
    assert.match(bad({ roster: { versioning: 'yes' } }), /^roster\.versioning:/);
    assert.match(bad({ log: { level: 'verbose' } }), /^log\.level:/);
    assert.match(bad({ log: { format: 'xml' } }), /^log\.format:/);
    assert.match(bad({ storage: { driver: 'mysql' } }), /^storage\.driver: expected one of "sqlite", "postgres", got "mysql"/);
    assert.match(bad({ storage: { path: '' } }), /^storage\.path:/);
    assert.match(bad({ storage: { driver: 'postgres' } }), /^storage\.url: required string/);
    assert.match(bad({ storage: { driver: 'postgres', url: 'mysql://db/x' } }), /^storage\.url: expected a postgresql:\/\/ URL/);
    assert.match(bad({ storage: { driver: 'postgres', url: 'postgresql://db/x', pool: 0 } }), /^storage\.pool:/);
    assert.match(bad({ storage: { driver: 'postgres', url: 'postgresql://db/x', path: 'x.sqlite' } }), /^storage\.path: unknown key/);
    for (const schema of ['', 'Shoal', 'node-1', '1node', 'pg_shoal', 'a"b', 'x'.repeat(64), 7]) {
      assert.match(bad({ storage: { driver: 'postgres', url: 'postgresql://db/x', schema } }), /^storage\.schema: /, `schema ${JSON.stringify(schema)}`);
    }
    assert.match(bad({ storage: { driver: 'sqlite', schema: 'node_1' } }), /^storage\.schema: unknown key/);
    assert.match(bad({ tls: { cert: 'c.pem' } }), /^tls: cert and key must be given together/);
    assert.match(bad({ tls: { cert: 'c.pem', key: 'k.pem', ca: 'x' } }), /^tls\.ca: unknown key/);
    assert.match(bad([1, 2]), /^\(top level\): expected object, got array/);

    // Accepted: host normalisation, mechanisms of later issues, port 0, `tls:` with no value.
    const ok = parseConfig(
      { hosts: ['Example.ORG.'], c2s: { port: 0 }, sasl: { mechanisms: ['OAUTHBEARER', 'CRAM-MD5', 'DIGEST-MD5'] }, tls: null },
      cwd,
    );
    assert.deepEqual(ok.hosts, ['example.org']);
    assert.equal(ok.c2s.port, 0);
    assert.deepEqual(ok.tls, {});

    // PostgreSQL: the URL as given (no path resolution), a pool of 10 by default.
    const pg = parseConfig({ storage: { driver: 'postgres', url: 'postgresql://shoal@db.example:5432/xmpp' } }, cwd);
    assert.deepEqual(pg.storage, { driver: 'postgres', url: 'postgresql://shoal@db.example:5432/xmpp', pool: 10 });
    assert.deepEqual(parseConfig({ storage: { driver: 'postgres', url: 'postgres://h/d', pool: 3 } }, cwd).storage, { driver: 'postgres', url: 'postgres://h/d', pool: 3 });
    assert.deepEqual(parseConfig({ storage: { driver: 'postgres', url: 'postgres://h/d', schema: 'node_1' } }, cwd).storage, { driver: 'postgres', url: 'postgres://h/d', pool: 10, schema: 'node_1' });
    assert.equal(parseConfig({ storage: { driver: 'postgres', url: 'postgres://h/d', schema: `_${'x'.repeat(62)}` } }, cwd).storage.driver, 'postgres', '63 characters');
  });

  test('relative paths resolve against the config file directory, or cwd without a file', async () => {
    const cwd = await freshDir();
    const confDir = join(cwd, 'etc', 'shoal');
    await mkdir(confDir, { recursive: true });
    await writeFile(
      join(confDir, 'shoal.yaml'),
      'data_dir: ../../var\ntls: { cert: certs/cert.pem, key: /abs/key.pem }\n',
    );
    const config = loadConfig({ cwd, env: {}, file: 'etc/shoal/shoal.yaml' });
    assert.equal(config.data_dir, join(cwd, 'var'));
    assert.equal(sqlitePath(config), join(cwd, 'var', 'shoal.sqlite'), 'the default database follows data_dir');
    assert.deepEqual(config.tls, { cert: join(confDir, 'certs', 'cert.pem'), key: '/abs/key.pem' });

    await writeFile(join(confDir, 'shoal.yaml'), 'storage: { path: db/x.sqlite }\n');
    const other = loadConfig({ cwd, env: {}, file: 'etc/shoal/shoal.yaml' });
    assert.equal(other.data_dir, join(confDir, 'data'));
    assert.equal(sqlitePath(other), join(confDir, 'db', 'x.sqlite'));

    const noFile = parseConfig({ data_dir: 'state', storage: { path: ':memory:' } }, cwd);
    assert.equal(noFile.data_dir, join(cwd, 'state'));
    assert.equal(sqlitePath(noFile), ':memory:');
  });

  test('YAML syntax errors and duplicate keys are ConfigErrors', async () => {
    const cwd = await freshDir();
    await writeFile(join(cwd, 'shoal.yaml'), 'c2s: { port: 5222\n');
    assert.match(problemsOf(() => loadConfig({ cwd, env: {} }))[0] ?? '', /^YAML: /);
    await writeFile(join(cwd, 'shoal.yaml'), 'data_dir: a\ndata_dir: b\n');
    assert.match(problemsOf(() => loadConfig({ cwd, env: {} }))[0] ?? '', /^YAML: .*unique/i);
  });
});
