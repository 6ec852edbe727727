// `shoal user add/passwd` with CRAM-MD5 and DIGEST-MD5 enabled, run as an operator
// runs them: the SQLite file afterwards holds no form of the password, only the
// mechanism secrets; `shoal check` names the accounts that cannot use the MD5
// mechanisms until their password is set again; and the secrets do log in.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { XmppServer } from '../src/server.js';
import { silentLogger } from '../src/log/logger.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { runShoal, shoalOk } from './support/cli.js';
import { NS } from '../src/xml/namespaces.js';
import { cramMd5Secret } from '../src/sasl/legacy-credentials.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(mechanisms: string[]): { dir: string; write(mechanisms: string[]): void } {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-md5-'));
  dirs.push(dir);
  const write = (m: string[]): void =>
    writeFileSync(join(dir, 'shoal.yaml'), stringify({ hosts: ['localhost'], c2s: { host: '127.0.0.1', port: 0 }, data_dir: './data', sasl: { mechanisms: m } }));
  write(mechanisms);
  return { dir, write };
}

/** Every way the password could sit in a file: UTF-8, ISO 8859-1, UTF-16, hex, base64. */
function encodings(password: string): Buffer[] {
  const utf8 = Buffer.from(password, 'utf8');
  return [utf8, Buffer.from(password, 'latin1'), Buffer.from(password, 'utf16le'), Buffer.from(utf8.toString('hex')), Buffer.from(utf8.toString('base64').replace(/=+$/, ''))];
}

const PASSWORD = 'Pässwort-Geheim-42';

describe('no plaintext password is stored', () => {
  test('user add with CRAM-MD5 and DIGEST-MD5 enabled: the database holds secrets, never the password', async () => {
    const { dir } = setup(['SCRAM-SHA-256', 'DIGEST-MD5', 'CRAM-MD5', 'PLAIN']);
    await shoalOk(['user', 'add', 'alice@localhost', '--password', PASSWORD], { cwd: dir });
    const file = join(dir, 'data', 'shoal.sqlite');

    // Row by row: what is there is what should be there.
    const db = new BetterSqlite3(file, { readonly: true });
    let rows: { mechanism: string; realm: string; variant: string; secret: Buffer }[];
    try {
      rows = db.prepare("select mechanism, realm, variant, secret from legacy_sasl_secrets where username = 'alice' order by mechanism, variant").all() as typeof rows;
      const every = db.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[];
      for (const { name } of every) {
        for (const row of db.prepare(`select * from "${name}"`).all() as Record<string, unknown>[]) {
          for (const value of Object.values(row)) {
            const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
            for (const form of encodings(PASSWORD)) assert.equal(bytes.includes(form), false, `${name} holds the password`);
          }
        }
      }
    } finally {
      db.close();
    }
    assert.deepEqual(
      rows.map((r) => [r.mechanism, r.realm, r.variant, r.secret.length]),
      [
        ['CRAM-MD5', '', 'hmac-md5-states', 32],
        ['DIGEST-MD5', 'localhost', 'iso-8859-1', 16],
        ['DIGEST-MD5', 'localhost', 'utf-8', 16],
      ],
    );
    // They are the derived values of RFC 2195 / RFC 2831, not the password in disguise.
    assert.deepEqual(rows[0]!.secret, cramMd5Secret(PASSWORD));
    assert.deepEqual(rows[2]!.secret, createHash('md5').update(Buffer.from(`alice:localhost:${PASSWORD}`, 'utf8')).digest());
    assert.deepEqual(rows[1]!.secret, createHash('md5').update(Buffer.from(`alice:localhost:${PASSWORD}`, 'latin1')).digest());

    // Byte by byte: the database file, its WAL and shared-memory files.
    for (const f of [file, `${file}-wal`, `${file}-shm`].filter((p) => existsSync(p))) {
      const bytes = readFileSync(f);
      for (const form of encodings(PASSWORD)) assert.equal(bytes.includes(form), false, `${f} holds the password`);
    }
  });

  test('user passwd while the MD5 mechanisms are disabled drops the old secrets', async () => {
    const { dir, write } = setup(['SCRAM-SHA-256', 'CRAM-MD5']);
    await shoalOk(['user', 'add', 'bob@localhost', '--password', 'old-password'], { cwd: dir });
    const count = (): number => {
      const db = new BetterSqlite3(join(dir, 'data', 'shoal.sqlite'), { readonly: true });
      try {
        return (db.prepare('select count(*) as n from legacy_sasl_secrets').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    assert.equal(count(), 1);
    write(['SCRAM-SHA-256', 'PLAIN']);
    await shoalOk(['user', 'passwd', 'bob@localhost', '--password', 'new-password'], { cwd: dir });
    // Otherwise the old password would still log in over CRAM-MD5 once it is enabled again.
    assert.equal(count(), 0);
  });
});

describe('shoal check and accounts older than the MD5 mechanisms', () => {
  test('check names them until their password is set again; then CRAM-MD5 logs in', async () => {
    const { dir, write } = setup(['SCRAM-SHA-256', 'PLAIN']);
    await shoalOk(['user', 'add', 'old@localhost', '--password', 'old-pass'], { cwd: dir });
    const plain = await runShoal(['check'], { cwd: dir });
    assert.equal(plain.code, 0);
    assert.doesNotMatch(plain.stdout, /warning/);

    write(['SCRAM-SHA-256', 'DIGEST-MD5', 'CRAM-MD5', 'PLAIN']);
    await shoalOk(['user', 'add', 'new@localhost', '--password', 'new-pass'], { cwd: dir });
    const checked = await runShoal(['check'], { cwd: dir });
    assert.equal(checked.code, 0, 'a warning, not a configuration problem');
    assert.match(checked.stdout, /warning: 1 account\(s\) cannot use CRAM-MD5 until their password is set again \(shoal user passwd JID\): old@localhost\n/);
    assert.match(checked.stdout, /warning: 1 account\(s\) cannot use DIGEST-MD5 until their password is set again \(shoal user passwd JID\): old@localhost\n/);
    assert.doesNotMatch(checked.stdout, /new@localhost/);

    const file = join(dir, 'shoal.yaml');
    const cram = async (user: string, password: string): Promise<string> => {
      const server = await XmppServer.create({ config: loadConfig({ file }), log: silentLogger() });
      await server.listen();
      try {
        const c = await RawClient.connect(server.port);
        c.send(STREAM_OPEN());
        await c.header();
        await c.element('features');
        c.send(`<auth xmlns='${NS.SASL}' mechanism='CRAM-MD5'/>`);
        const challenge = Buffer.from((await c.element('challenge')).text(), 'base64').toString();
        c.send(`<response xmlns='${NS.SASL}'>${Buffer.from(`${user} ${createHmac('md5', password).update(challenge).digest('hex')}`).toString('base64')}</response>`);
        const reply = await c.waitFor((el) => el.name === 'success' || el.name === 'failure', 'SASL outcome');
        c.close();
        return reply.name;
      } finally {
        await server.stop();
      }
    };
    assert.equal(await cram('old', 'old-pass'), 'failure');
    assert.equal(await cram('new', 'new-pass'), 'success');

    await shoalOk(['user', 'passwd', 'old@localhost', '--password', 'old-pass'], { cwd: dir });
    const after = await runShoal(['check'], { cwd: dir });
    assert.doesNotMatch(after.stdout, /warning/);
    assert.equal(await cram('old', 'old-pass'), 'success');
  });
});
