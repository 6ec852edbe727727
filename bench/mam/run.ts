// bench/mam: XEP-0313 query latency on a large SQLite archive. Fills one account's
// archive with 1,000,000 messages across 100 contacts (batched transactions
// straight through the store), then times the whole query path a client's query
// takes after parsing (archive lookup, id resolution, page, count, index):
//
//   last-50-with  the last 50 messages with one contact (RSM <before/>, 'with')
//   deep-page     50 messages after an id half-way into the archive (no filter)
//   deep-with     50 messages with one contact after an id half-way into it
//   ids           one message by its archive id ('ids' field)
//   archive-one   archiving one message (what each chat message costs)
//
//   npm run bench:mam -- [--messages 1000000] [--contacts 100] [--queries 1000] [--out bench/mam/RESULTS.md]
//
// A benchmark, not a test: it prints (and writes) a table and asserts nothing but completion.
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { openSqliteStorage } from '../../src/storage/sqlite.js';
import { x } from '../../src/xml/element.js';
import { SqlMamStore, type NewMessage } from '../../src/modules/mam/store.js';
import { NS_DATA, NS_MAM, NS_RSM, parseQuery, runQuery } from '../../src/modules/mam/query.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    contacts: { type: 'string', default: '100' },
    queries: { type: 'string', default: '1000' },
    out: { type: 'string' },
  },
});
const MESSAGES = Number(values.messages);
const CONTACTS = Number(values.contacts);
const QUERIES = Number(values.queries);
const LIMITS = { defaultPage: 50, maxPage: 250 };
/** One message every 30 s from a year ago: ages spread as in a real archive. */
const STEP_MS = 30_000;

const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-mam-'));
const path = join(dir, 'shoal.sqlite');
const storage = await openSqliteStorage(path);
await storage.accounts.create('localhost', 'owner', []);
const store = await SqlMamStore.open(storage.sql);
const contact = (i: number) => `contact${i}@example.org`;

// --- Fill ------------------------------------------------------------------------------
const t0 = Date.now() - MESSAGES * STEP_MS;
const fillStart = performance.now();
const BATCH = 10_000;
const ids: string[] = [];
for (let done = 0; done < MESSAGES; done += BATCH) {
  const batch: NewMessage[] = [];
  for (let i = done; i < Math.min(MESSAGES, done + BATCH); i++) {
    const c = i % CONTACTS;
    const incoming = i % 2 === 0;
    const from = incoming ? `${contact(c)}/phone` : 'owner@localhost/laptop';
    const to = incoming ? 'owner@localhost' : contact(c);
    batch.push({
      withBare: contact(c),
      withResource: incoming ? 'phone' : '',
      ts: t0 + i * STEP_MS,
      stanza: `<message xmlns="jabber:client" from="${from}" to="${to}" type="chat" id="m${i}"><body>Message number ${i} of the benchmark, about as long as a chat line.</body><origin-id xmlns="urn:xmpp:sid:0" id="o${i}"/></message>`,
    });
  }
  // Every 1000th id kept, to query by later.
  const got = await store.append('localhost', 'owner', batch);
  for (let j = 0; j < got.length; j += 1000) ids.push(got[j]!);
  if ((done / BATCH) % 10 === 0) process.stderr.write(`\rfilled ${done + batch.length} / ${MESSAGES}`);
}
const fillSeconds = (performance.now() - fillStart) / 1000;
process.stderr.write(`\rfilled ${MESSAGES} in ${fillSeconds.toFixed(1)} s\n`);

const loadBefore = loadavg()[0]!;

// --- Queries ---------------------------------------------------------------------------
function query(fields: Record<string, string>, set: Record<string, string>) {
  const form = x('x', NS_DATA, { type: 'submit' }, x('field', NS_DATA, { var: 'FORM_TYPE' }, x('value', NS_DATA, {}, NS_MAM)));
  for (const [k, v] of Object.entries(fields)) form.append(x('field', NS_DATA, { var: k }, x('value', NS_DATA, {}, v)));
  const rsm = x('set', NS_RSM);
  for (const [k, v] of Object.entries(set)) rsm.append(x(k, NS_RSM, {}, v));
  return parseQuery(x('query', NS_MAM, {}, form, rsm), LIMITS);
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

interface Row {
  name: string;
  what: string;
  p50: number;
  p99: number;
  max: number;
  /** CPU time of this process per run (user + system): what the query costs, without waiting for a CPU. */
  cpu50: number;
  cpu99: number;
  results: number;
}
const rows: Row[] = [];
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

async function measure(name: string, what: string, run: () => Promise<number>): Promise<void> {
  for (let i = 0; i < 20; i++) await run(); // warm-up: statement cache, page cache
  const times: number[] = [];
  const cpu: number[] = [];
  let results = 0;
  for (let i = 0; i < QUERIES; i++) {
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    results = await run();
    times.push(performance.now() - start);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  const row = { name, what, p50: percentile(times, 50), p99: percentile(times, 99), max: Math.max(...times), cpu50: percentile(cpu, 50), cpu99: percentile(cpu, 99), results };
  rows.push(row);
  process.stderr.write(`${name}: p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms (CPU p99 ${row.cpu99.toFixed(2)} ms)\n`);
}

const middle = () => ids[Math.floor(ids.length / 4) + rand(Math.floor(ids.length / 2))]!;
await measure('last-50-with', 'last 50 with one contact (before empty, with bare JID), count and index', async () => {
  const page = await runQuery(await store.reader('localhost', 'owner'), query({ with: contact(rand(CONTACTS)) }, { max: '50', before: '' }));
  return page.items.length;
});
await measure('deep-page', '50 after an id in the middle half of the archive, no filter, count and index', async () => {
  const page = await runQuery(await store.reader('localhost', 'owner'), query({}, { max: '50', after: middle() }));
  return page.items.length;
});
await measure('deep-with', '50 with one contact after an id in the middle half, count and index', async () => {
  const page = await runQuery(await store.reader('localhost', 'owner'), query({ with: contact(rand(CONTACTS)) }, { max: '50', after: middle() }));
  return page.items.length;
});
await measure('ids', 'one message by archive id', async () => {
  const page = await runQuery(await store.reader('localhost', 'owner'), query({ ids: ids[rand(ids.length)]! }, {}));
  return page.items.length;
});
let n = MESSAGES;
await measure('archive-one', 'archiving one message (one transaction)', async () => {
  n++;
  await store.append('localhost', 'owner', [{ withBare: contact(n % CONTACTS), withResource: '', stanza: `<message xmlns="jabber:client" type="chat"><body>live ${n}</body></message>` }]);
  return 1;
});

const bytes = statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0);
await storage.close();
rmSync(dir, { recursive: true, force: true });

const loadAfter = loadavg()[0]!;
const table = [
  '| query | what | p50 (ms) | p99 (ms) | max (ms) | CPU p50 (ms) | CPU p99 (ms) | results |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.what} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} | ${r.cpu50.toFixed(2)} | ${r.cpu99.toFixed(2)} | ${r.results} |`),
].join('\n');
const report = [
  `# bench:mam results`,
  '',
  `${MESSAGES.toLocaleString('en')} messages across ${CONTACTS} contacts in one account's archive, SQLite (WAL, synchronous NORMAL), ` +
    `${QUERIES} timed runs per query after 20 warm-up runs; ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Load average (1 min) on ${cpus().length} CPUs: ${loadBefore.toFixed(1)} when the queries started, ${loadAfter.toFixed(1)} when they ended ` +
    '(other work on the machine delays a run without costing it CPU: compare the wall-clock and CPU columns).',
  '',
  `Fill: ${fillSeconds.toFixed(1)} s (${Math.round(MESSAGES / fillSeconds).toLocaleString('en')} messages/s in transactions of ${BATCH.toLocaleString('en')}); database ${(bytes / 1e6).toFixed(0)} MB.`,
  '',
  table,
  '',
].join('\n');
console.log(report);
if (values.out) writeFileSync(values.out, report);
