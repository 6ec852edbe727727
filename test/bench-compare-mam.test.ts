// bench:compare's chat-mam scenario at a tiny size against Shoal only, through
// the runner's own code (the scenario list, the generated configs, the generator
// as its own process, the archive count in the server's storage), so that it
// cannot silently rot: with archiving on, every message must be in its sender's
// and its recipient's archive; in the plain chat scenario, nothing archived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { makeBenchData, scramCacheFor } from '../bench/compare/accounts.js';
import { provisionShoal } from '../bench/compare/provision.js';
import { measure, runGenerator, scenarios } from '../bench/compare/scenarios.js';
import { repoRoot, shoal } from '../bench/compare/servers.js';
import { makeCertificate, nofileLimit } from '../bench/shared/system.js';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

test('chat-mam against Shoal: 2 × sent copies archived (sender and recipient), none in plain chat', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-compare-mam-test-'));
  try {
    const tls = makeCertificate(dir);
    const data = await makeBenchData('localhost', { plainUsers: 4, rosterUsers: 0, contactsPerUser: 0 });
    const cacheFile = join(dir, 'scram-cache.jsonl');
    scramCacheFor(data).save(cacheFile);
    const kind = shoal(repoRoot, false);
    const sdir = join(dir, 'shoal');
    const sqlite = join(sdir, 'data', 'shoal.sqlite');
    const port = await freePort();
    await kind.prepare(sdir, tls, port, await freePort());
    await provisionShoal(data, sqlite);

    // The configs the runner starts Shoal with: archiving off but in the mam variant.
    const mamOf = (file: string): unknown => (parse(readFileSync(join(sdir, file), 'utf8')) as { mam: unknown }).mam;
    assert.deepEqual(mamOf('shoal.yaml'), { enabled: false });
    assert.deepEqual(mamOf('shoal-mam.yaml'), { enabled: true, default: 'always' });

    const list = scenarios({ scenarios: 'chat,chat-mam', 'chat-clients': '4', 'chat-messages': '20' });
    assert.deepEqual(
      list.map((s) => [s.name, s.mam === true, s.archiveCheck === true]),
      [
        ['chat', false, true],
        ['chat-mam', true, true],
      ],
    );
    const launch = { nofile: nofileLimit() };
    const quiet = (): void => undefined;
    const runs = [];
    for (const sc of list) {
      const args = (pid: number): string[] => ['--port', String(port), '--domain', 'localhost', '--server-pid', String(pid), '--scram-cache', cacheFile, ...sc.args];
      runs.push(await measure(kind, sc, launch, (pid) => runGenerator(args(pid), launch, 60_000, quiet), quiet));
    }
    const [chat, chatMam] = runs.map((r) => r.report);
    for (const r of [chat!, chatMam!]) {
      assert.equal(r.login.succeeded, 4, JSON.stringify(r.login.failures));
      assert.equal(r.messages?.sent, 20);
      assert.equal(r.messages?.received, 20);
      assert.ok(r.server && r.server.cpuMessagesS >= 0);
    }
    assert.deepEqual(chat!.archive, { archived: 0, expected: 0 });
    assert.deepEqual(chatMam!.archive, { archived: 40, expected: 40 });
    assert.ok(runs[1]!.cpu.wallS > 0);

    // What is in the archives: (user1, user2) and (user3, user4) each exchanged 10 messages, so
    // every account's archive holds 10, all with its partner, each carrying the generator's body.
    const db = new Database(sqlite, { readonly: true });
    try {
      const rows = db
        .prepare(
          'SELECT a.username AS owner, m.with_bare AS with_, count(*) AS n, sum(m.stanza LIKE \'%<body>%\') AS bodies FROM mam_messages m JOIN mam_archives a ON a.archive = m.archive GROUP BY a.username, m.with_bare ORDER BY a.username',
        )
        .all();
      assert.deepEqual(rows, [
        { owner: 'user1', with_: 'user2@localhost', n: 10, bodies: 10 },
        { owner: 'user2', with_: 'user1@localhost', n: 10, bodies: 10 },
        { owner: 'user3', with_: 'user4@localhost', n: 10, bodies: 10 },
        { owner: 'user4', with_: 'user3@localhost', n: 10, bodies: 10 },
      ]);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
