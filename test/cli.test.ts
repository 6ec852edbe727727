// The `shoal` command run as an operator runs it: a separate process, a working
// directory holding shoal.yaml (or --config / $SHOAL_CONFIG), exit codes and
// messages, the files it leaves behind, and a server started from the same config.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import BetterSqlite3 from 'better-sqlite3';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { XmppServer } from '../src/server.js';
import { silentLogger } from '../src/log/logger.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { login } from './support/login.js';
import { runShoal, shoalOk, spawnShoal } from './support/cli.js';
import { NS } from '../src/xml/namespaces.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
  dirs.push(d);
  return d;
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

/** A configuration for tests: loopback, ephemeral port, TLS with a generated certificate. */
function writeConfig(dir: string, settings: Record<string, unknown> = {}, name = 'shoal.yaml'): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, stringify({ hosts: ['localhost', 'example.org'], c2s: { host: '127.0.0.1', port: 0 }, tls: {}, ...settings }));
  return file;
}

/** Starts a server in this process on `file`, runs `fn` against its port, stops it. */
async function withServer(file: string, fn: (port: number) => Promise<void>): Promise<void> {
  const server = await XmppServer.create({ config: loadConfig({ file }), log: silentLogger() });
  await server.listen();
  try {
    await fn(server.port);
  } finally {
    await server.stop();
  }
}

async function canLogin(port: number, user: string, password: string): Promise<boolean> {
  try {
    const a = await login(port, user, password);
    a.client.send('</stream:stream>');
    await a.client.closedEvent();
    return true;
  } catch (err) {
    if (err instanceof Error && /expected (challenge|success)/.test(err.message)) return false;
    throw err;
  }
}

describe('shoal user', () => {
  test('add, list, passwd, del with ./shoal.yaml in the working directory', async () => {
    const dir = tempDir();
    const file = writeConfig(dir);
    const o = { cwd: dir };
    assert.match(await shoalOk(['user', 'add', 'alice@localhost', '--password', 'first-pass'], o), /created alice@localhost/);
    await shoalOk(['user', 'add', 'carol@example.org', '-p', 'carol-pass'], o);
    assert.ok(existsSync(join(dir, 'data', 'shoal.sqlite')), 'data_dir is relative to the config file');

    const again = await runShoal(['user', 'add', 'alice@localhost', '--password', 'other'], o);
    assert.notEqual(again.code, 0, 'adding an existing account fails');
    assert.match(again.stderr, /alice@localhost already exists/);

    assert.deepEqual(lines(await shoalOk(['user', 'list', 'localhost'], o)), ['alice@localhost']);
    assert.deepEqual(lines(await shoalOk(['user', 'list', 'EXAMPLE.org'], o)), ['carol@example.org'], 'host compared case-insensitively');

    assert.match(await shoalOk(['user', 'passwd', 'alice@localhost', '--password', 'second-pass'], o), /password changed/);
    await withServer(file, async (port) => {
      assert.equal(await canLogin(port, 'alice', 'second-pass'), true, 'the new password works');
      assert.equal(await canLogin(port, 'alice', 'first-pass'), false, 'the old one no longer does');
    });

    assert.match(await shoalOk(['user', 'del', 'alice@localhost'], o), /deleted alice@localhost/);
    assert.deepEqual(lines(await shoalOk(['user', 'list', 'localhost'], o)), []);
    for (const args of [
      ['user', 'del', 'alice@localhost'],
      ['user', 'passwd', 'alice@localhost', '--password', 'x'],
    ]) {
      const r = await runShoal(args, o);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /alice@localhost does not exist/);
    }
    assert.deepEqual(lines(await shoalOk(['user', 'list', 'example.org'], o)), ['carol@example.org'], 'other accounts untouched');
  });

  test('--config FILE and $SHOAL_CONFIG pick the file (in that order, before ./shoal.yaml)', async () => {
    const root = tempDir();
    const work = join(root, 'work');
    // A ./shoal.yaml that does not serve localhost, so using it by mistake makes `user add` fail.
    writeConfig(work, { hosts: ['elsewhere.example'] });
    const byFlag = writeConfig(join(root, 'flag'), {}, 'custom.yaml');
    const byEnv = writeConfig(join(root, 'env'), { hosts: ['localhost', 'env.example'] });

    // A relative --config is relative to the working directory; data_dir to the file.
    await shoalOk(['--config', '../flag/custom.yaml', 'user', 'add', 'dave@localhost', '--password', 'p'], { cwd: work });
    assert.ok(existsSync(join(root, 'flag', 'data', 'shoal.sqlite')));
    assert.ok(!existsSync(join(work, 'data')), 'nothing written next to the unused ./shoal.yaml');

    await shoalOk(['user', 'add', 'erin@env.example', '--password', 'p'], { cwd: work, env: { SHOAL_CONFIG: byEnv } });
    assert.deepEqual(lines(await shoalOk(['user', 'list', 'env.example'], { cwd: work, env: { SHOAL_CONFIG: byEnv } })), ['erin@env.example']);
    assert.ok(existsSync(join(root, 'env', 'data', 'shoal.sqlite')));

    // --config wins over $SHOAL_CONFIG.
    const both = await shoalOk(['--config', byFlag, 'user', 'list', 'localhost'], { cwd: work, env: { SHOAL_CONFIG: byEnv } });
    assert.deepEqual(lines(both), ['dave@localhost']);
    // Without either, ./shoal.yaml is used.
    const local = await runShoal(['user', 'list', 'localhost'], { cwd: work });
    assert.equal(local.code, 2);
    assert.match(local.stderr, /localhost is not one of the configured hosts/);

    for (const [args, env] of [
      [['--config', 'missing.yaml', 'user', 'list', 'localhost'], {}],
      [['user', 'list', 'localhost'], { SHOAL_CONFIG: join(root, 'missing.yaml') }],
    ] as const) {
      const r = await runShoal([...args], { cwd: work, env });
      assert.equal(r.code, 2, `${args.join(' ')} ${JSON.stringify(env)}`);
      assert.match(r.stderr, /does not exist/);
    }
  });

  test('the password is read from stdin when it is not a terminal, and is never stored in plaintext', async () => {
    const dir = tempDir();
    const file = writeConfig(dir);
    const secret = 'Stdin-Canary-p4ssw0rd-7f3a9c';
    await shoalOk(['user', 'add', 'bob@localhost'], { cwd: dir, input: `${secret}\n` });

    // No file under data/ (database, WAL, journal, TLS material) holds the password in any common encoding.
    const needles = [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le'), Buffer.from(Buffer.from(secret).toString('base64'))];
    const files = readdirSync(join(dir, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    assert.ok(files.some((e) => e.name === 'shoal.sqlite'));
    for (const e of files) {
      const bytes = readFileSync(join(e.parentPath, e.name));
      for (const n of needles) assert.equal(bytes.indexOf(n), -1, `${e.name} contains the password`);
    }
    // And no value in any table, read through SQLite itself (covers pages not yet checkpointed).
    const db = new BetterSqlite3(join(dir, 'data', 'shoal.sqlite'), { readonly: true });
    try {
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
      assert.ok(tables.length > 0);
      let values = 0;
      for (const { name } of tables) {
        for (const row of db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).all() as Record<string, unknown>[]) {
          for (const v of Object.values(row)) {
            values++;
            const s = Buffer.isBuffer(v) ? v.toString('latin1') : String(v);
            assert.ok(!s.includes(secret), `${name} holds the password`);
            if (Buffer.isBuffer(v)) for (const n of needles) assert.equal(v.indexOf(n), -1, `${name} holds the password`);
          }
        }
      }
      assert.ok(values > 0, 'the account was stored');
    } finally {
      db.close();
    }

    await withServer(file, async (port) => {
      assert.equal(await canLogin(port, 'bob', secret), true, 'login with the password given on stdin');
    });

    // passwd reads stdin the same way; a lone CRLF line ending is not part of the password.
    await shoalOk(['user', 'passwd', 'bob@localhost'], { cwd: dir, input: 'from-stdin-2\r\n' });
    await withServer(file, async (port) => {
      assert.equal(await canLogin(port, 'bob', 'from-stdin-2'), true);
    });

    const empty = await runShoal(['user', 'add', 'nobody@localhost'], { cwd: dir, input: '' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /empty password/);
  });

  test('invalid JIDs and unknown hosts exit with code 2 and say why', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const cases: [string[], RegExp][] = [
      [['user', 'add', 'a@b@c', '--password', 'p'], /invalid JID 'a@b@c'/],
      [['user', 'add', 'alice@unknown.example', '--password', 'p'], /unknown\.example is not one of the configured hosts/],
      [['user', 'add', 'alice@localhost/phone', '--password', 'p'], /not a bare user JID/],
      [['user', 'add', 'localhost', '--password', 'p'], /not a bare user JID/],
      [['user', 'passwd', 'alice@unknown.example', '--password', 'p'], /not one of the configured hosts/],
      [['user', 'del', '@localhost'], /invalid JID/],
      [['user', 'list', 'unknown.example'], /unknown\.example is not one of the configured hosts/],
    ];
    const results = await Promise.all(cases.map(([args]) => runShoal(args, { cwd: dir })));
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^shoal: /);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '');
    });
  });
});

describe('shoal check', () => {
  test('a valid configuration: exit 0', async () => {
    const dir = tempDir();
    writeConfig(dir);
    const out = await shoalOk(['check'], { cwd: dir });
    assert.match(out, /configuration OK: hosts localhost, example.org/);
    assert.match(out, /TLS: required/);
  });

  test('an unknown key or a wrong type: exit 2, naming each key path', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'shoal.yaml'),
      ['hosts: [localhost]', 'c2s:', '  prot: 5222', 'timeouts:', '  ping_after: soon', 'tsl: {}', ''].join('\n'),
    );
    const r = await runShoal(['check'], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /c2s\.prot: unknown key/);
    assert.match(r.stderr, /timeouts\.ping_after: expected number, got string/);
    assert.match(r.stderr, /tsl: unknown key/);
    assert.ok(r.stderr.includes(join(dir, 'shoal.yaml')), 'names the file');
    // Every command validates the same way.
    const add = await runShoal(['user', 'add', 'alice@localhost', '--password', 'p'], { cwd: dir });
    assert.equal(add.code, 2);
    assert.match(add.stderr, /c2s\.prot: unknown key/);
    assert.ok(!existsSync(join(dir, 'data')), 'nothing created from an invalid configuration');
  });
});

describe('shoal start', () => {
  test('with no configuration at all: data/ with SQLite and a self-signed certificate, listens on 5222, SIGTERM shuts down cleanly', async (t) => {
    const dir = tempDir();
    const child = spawnShoal(['start'], { cwd: dir });
    child.stdin.end();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // 'close' rather than 'exit': stderr is complete by then.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    // stdout is a pipe, not a TTY, so the log is JSON lines.
    const logs: Record<string, unknown>[] = [];
    const listening = new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout });
      rl.on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          reject(new Error(`log line is not JSON: ${line}`));
          return;
        }
        logs.push(entry);
        if (entry.event === 'listen') resolve(entry);
      });
      rl.on('close', () => resolve(undefined));
      setTimeout(() => reject(new Error(`no 'listen' log line within 30 s; stderr: ${stderr}`)), 30_000).unref();
    });
    const listen = await listening;
    if (listen === undefined) {
      const { code } = await exited;
      if (/EADDRINUSE|EACCES/.test(stderr)) {
        t.skip(`port 5222 is not available on this machine (${/EADDRINUSE/.test(stderr) ? 'in use' : 'not permitted'})`);
        return;
      }
      assert.fail(`shoal start exited (${code}) without listening: ${stderr}`);
    }
    assert.equal(listen.port, 5222);
    assert.equal(listen.tls, true, 'TLS is on without a configuration file');
    assert.deepEqual(listen.hosts, ['localhost']);

    assert.ok(existsSync(join(dir, 'data', 'shoal.sqlite')), 'data/shoal.sqlite created');
    const cert = new X509Certificate(readFileSync(join(dir, 'data', 'tls', 'self-signed.crt')));
    assert.equal(cert.checkHost('localhost'), 'localhost', 'the certificate covers localhost');
    assert.ok(existsSync(join(dir, 'data', 'tls', 'self-signed.key')));
    assert.ok(!existsSync(join(dir, 'shoal.yaml')), 'no configuration file is written');

    const c = await RawClient.connect(5222);
    c.send(STREAM_OPEN());
    await c.header();
    const features = await c.element('features');
    assert.ok(features.getChild('starttls', NS.TLS)?.getChild('required', NS.TLS), 'STARTTLS required');

    child.kill('SIGTERM');
    // RFC 6120 §4.9.3.22
    assert.equal(await c.streamError(10_000), 'system-shutdown');
    await c.streamEnd();
    await c.closedEvent(10_000);
    assert.deepEqual(await exited, { code: 0, signal: null });
    assert.ok(logs.some((l) => l.event === 'signal' && l.signal === 'SIGTERM'));
  });
});

// Hardening item 9: what an operator reads when the server cannot start.
describe('shoal start: failures an operator can fix are one readable line, exit 1', () => {
  /** Runs `shoal start`, which must exit on its own (a server that starts is killed after 20 s and fails the test). */
  async function failedStart(dir: string): Promise<{ code: number | null; line: string; stderr: string }> {
    const child = spawnShoal(['start'], { cwd: dir });
    child.stdin.end();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(killer);
    const lines = stderr.trim().split('\n');
    return { code, line: lines[lines.length - 1] ?? '', stderr };
  }

  function assertReadable(r: { code: number | null; line: string; stderr: string }, pattern: RegExp): void {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.line, pattern);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }

  test('a corrupt or truncated SQLite file names the file and what to do', async () => {
    const junk = tempDir();
    writeConfig(junk, { storage: { path: './db.sqlite' } });
    writeFileSync(join(junk, 'db.sqlite'), 'this is not a database at all, just some text that is long enough to have a header');
    assertReadable(await failedStart(junk), /the SQLite database .*db\.sqlite is damaged or is not a database; restore it from a backup/);

    const truncated = tempDir();
    writeConfig(truncated, { storage: { path: './db.sqlite' } });
    await withServer(join(truncated, 'shoal.yaml'), async () => undefined);
    const whole = readFileSync(join(truncated, 'db.sqlite'));
    writeFileSync(join(truncated, 'db.sqlite'), whole.subarray(0, 1000));
    for (const f of readdirSync(truncated)) if (f.startsWith('db.sqlite-')) rmSync(join(truncated, f));
    assertReadable(await failedStart(truncated), /damaged or is not a database/);
  });

  test('a SQLite file locked by another process names the file', async () => {
    const dir = tempDir();
    writeConfig(dir, { storage: { path: './db.sqlite', busy_timeout: 0.2 } });
    await withServer(join(dir, 'shoal.yaml'), async () => undefined);
    // A process that keeps the file to itself (as `sqlite3` with locking_mode=EXCLUSIVE does).
    const holder = new BetterSqlite3(join(dir, 'db.sqlite'));
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN EXCLUSIVE');
    try {
      assertReadable(await failedStart(dir), /the SQLite database .*db\.sqlite is locked by another process/);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });

  test('a port already in use names the address', async () => {
    const dir = tempDir();
    const busy = await new Promise<import('node:net').Server>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const port = (busy.address() as { port: number }).port;
      writeConfig(dir, { c2s: { host: '127.0.0.1', port } });
      assertReadable(await failedStart(dir), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    } finally {
      busy.close();
    }
  });

  test('shoal check says which certificate it is', async () => {
    const dir = tempDir();
    writeConfig(dir);
    assert.match(await shoalOk(['check'], { cwd: dir }), /TLS: required \(self-signed certificate generated now under .*tls/);
    assert.match(await shoalOk(['check'], { cwd: dir }), /TLS: required \(self-signed certificate generated earlier under/);
    const crt = join(dir, 'data', 'tls', 'self-signed.crt');
    const key = join(dir, 'data', 'tls', 'self-signed.key');
    const configured = tempDir();
    writeConfig(configured, { tls: { cert: crt, key } });
    assert.match(await shoalOk(['check'], { cwd: configured }), new RegExp(`TLS: required \\(configured certificate ${crt.replace(/[.]/g, '\\.')}\\)`));
  });
});
