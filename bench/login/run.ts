// bench/login: how long the seed's full login takes (TLS, SCRAM-SHA-1, bind,
// session, roster get, initial presence until every online contact's presence
// has arrived) for a user with 0, 100 and 1,000 contacts, half of them online.
//
//   npm run bench:login -- [--sizes 0,100,1000] [--runs 15]
//
// A benchmark, not a test: it prints a table and asserts nothing but completion.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../../src/config/load.js';
import { XmppServer } from '../../src/server.js';
import { silentLogger } from '../../src/log/logger.js';
import { deriveAllScramCredentials } from '../../src/sasl/credentials.js';
import { login, type LoggedIn } from '../../test/support/login.js';
import { NS } from '../../src/xml/namespaces.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '0,100,1000' },
    runs: { type: 'string', default: '15' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const runs = Number(values.runs);

const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-login-'));
const config = parseConfig(
  { hosts: ['localhost'], c2s: { host: '127.0.0.1', port: 0 }, data_dir: join(dir, 'data'), tls: {}, limits: { max_connections_per_ip: 0 }, log: { level: 'error' } },
  dir,
);
const server = await XmppServer.create({ config, log: silentLogger() });
await server.listen();
const { accounts, roster } = server.storage;
// One set of credentials for every account: derivation is the slow part of provisioning.
const credentials = deriveAllScramCredentials('bench-pass');

interface Row {
  contacts: number;
  online: number;
  p50: number;
  p90: number;
  rosterBytes: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

const rows: Row[] = [];
const keep: LoggedIn[] = [];
for (const n of sizes) {
  const user = `user${n}`;
  await accounts.create('localhost', user, credentials);
  for (let i = 0; i < n; i++) {
    const contact = `c${n}x${i}`;
    await accounts.create('localhost', contact, credentials);
    const item = (jid: string) => ({ jid, subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: ['Bench'] });
    await roster.setItem('localhost', user, item(`${contact}@localhost`));
    await roster.setItem('localhost', contact, item(`${user}@localhost`));
  }
  // Half of the contacts online, each with initial presence sent.
  const online = Math.floor(n / 2);
  for (let i = 0; i < online; i++) {
    const c = await login(server.port, `c${n}x${i}`, 'bench-pass', { hash: 'SHA-1' });
    c.client.send('<presence/>');
    keep.push(c);
  }
  const times: number[] = [];
  let rosterBytes = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const s = await login(server.port, user, 'bench-pass', { hash: 'SHA-1' });
    s.client.send(`<iq type='set' id='sess'><session xmlns='${NS.SESSION}'/></iq>`);
    s.client.send(`<iq type='get' id='roster'><query xmlns='${NS.ROSTER}'/></iq>`);
    const result = await s.client.waitFor((el) => el.attrs.id === 'roster', 'roster', 60_000);
    rosterBytes = result.toString(NS.CLIENT).length;
    s.client.send('<presence/>');
    const seen = new Set<string>();
    while (seen.size < online) {
      const p = await s.client.waitFor((el) => el.name === 'presence' && el.attrs.type === undefined, 'contact presence', 60_000);
      seen.add(p.attrs.from ?? '');
    }
    times.push(performance.now() - t0);
    s.client.send(`<presence type='unavailable'/></stream:stream>`);
    await s.client.closedEvent(10_000);
  }
  rows.push({ contacts: n, online, p50: percentile(times, 50), p90: percentile(times, 90), rosterBytes });
}

const base = rows[0]?.p50 ?? 0;
console.log(`\nFull seed login (TLS + SCRAM-SHA-1 + bind + session + roster + initial presence), ${runs} runs each, Node ${process.version}\n`);
console.log('| contacts | online | p50 ms | p90 ms | roster result bytes | extra ms per contact vs 0 |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  const per = r.contacts > 0 ? ((r.p50 - base) / r.contacts).toFixed(4) : '-';
  console.log(`| ${r.contacts} | ${r.online} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.rosterBytes} | ${per} |`);
}

for (const c of keep) c.client.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });
