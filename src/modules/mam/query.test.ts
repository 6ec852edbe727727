// The XEP-0313 query code (form, RSM, paging) against the real archive store, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { x, type Element } from '../../xml/element.js';
import { StanzaError } from '../../core/errors.js';
import { credentials, storageBackends, type TempStorage } from '../../storage/sql/testutil.js';
import { NS_DATA, NS_MAM, NS_RSM, finElement, parseDateTime, parseQuery, queryForm, runQuery, sendOrder, type MamQuery } from './query.js';
import { SqlMamStore, type SqlArchive } from './store.js';
import type { ArchivedMessage } from './archive.js';

const LIMITS = { defaultPage: 50, maxPage: 250 };
const T0 = Date.parse('2024-01-01T00:00:00Z');

let ts: TempStorage;
let store: SqlMamStore;
let archive: SqlArchive;
/** The archive ids of messages 0..99, in order: even ones with bob (resources a/b), odd ones with carol. */
let ids: string[] = [];


function form(fields: Record<string, string | string[]>, type = 'submit'): Element {
  const f = x('x', NS_DATA, { type }, x('field', NS_DATA, { var: 'FORM_TYPE', type: 'hidden' }, x('value', NS_DATA, {}, NS_MAM)));
  for (const [k, v] of Object.entries(fields)) f.append(x('field', NS_DATA, { var: k }, ...(Array.isArray(v) ? v : [v]).map((s) => x('value', NS_DATA, {}, s))));
  return f;
}

function rsm(opts: { max?: number; after?: string; before?: string; index?: number }): Element {
  const set = x('set', NS_RSM);
  if (opts.max !== undefined) set.append(x('max', NS_RSM, {}, String(opts.max)));
  if (opts.after !== undefined) set.append(x('after', NS_RSM, {}, opts.after));
  if (opts.before !== undefined) set.append(x('before', NS_RSM, {}, opts.before));
  if (opts.index !== undefined) set.append(x('index', NS_RSM, {}, String(opts.index)));
  return set;
}

function parse(fields?: Record<string, string | string[]>, set?: Element, flip = false): MamQuery {
  return parseQuery(x('query', NS_MAM, { queryid: 'q1' }, fields ? form(fields) : undefined, set, flip ? x('flip-page', NS_MAM) : undefined), LIMITS);
}

const bodies = (items: ArchivedMessage[]) => items.map((m) => Number(/<body>m(\d+)</.exec(m.stanza)![1]));
const range = (from: number, to: number, step = 1) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

function condition(err: unknown): string {
  assert.ok(err instanceof StanzaError, `expected a StanzaError, got ${String(err)}`);
  return err.condition;
}

describe('XEP-0313 query form and RSM parsing', () => {
  test('fields, bare and full with, times, ids, flip-page, RSM', () => {
    const q = parse({ with: 'Bob@LocalHost', start: '2024-01-01T00:00:01Z', end: '2024-01-01T00:00:05.5+01:00', 'after-id': 'a', 'before-id': 'b', ids: ['x', 'y', 'x'] }, rsm({ max: 10, after: 'z' }), true);
    assert.equal(q.queryId, 'q1');
    assert.deepEqual(q.with, { bare: 'bob@localhost' }, 'normalised; a bare JID matches all resources');
    assert.equal(q.start, T0 + 1000);
    assert.equal(q.end, T0 + 5500 - 3600_000);
    assert.deepEqual([q.afterId, q.beforeId, q.ids], ['a', 'b', ['x', 'y']]);
    assert.deepEqual(q.rsm, { max: 10, after: 'z' });
    assert.equal(q.flip, true);
    assert.deepEqual(parse({ with: 'bob@localhost/a' }).with, { bare: 'bob@localhost', resource: 'a' });
    assert.deepEqual(parse().rsm, { max: 50 }, 'the default page');
    assert.equal(parse(undefined, rsm({ max: 100000 })).rsm.max, 250, 'capped by the server');
    assert.deepEqual(parse(undefined, rsm({ before: '' })).rsm, { max: 50, before: '' }, 'an empty before: the last page');
    assert.equal(parse(undefined, rsm({ index: 7 })).rsm.index, 7);
  });

  test('malformed queries are refused with the condition the spec names', () => {
    const cases: [string, () => unknown, string][] = [
      ['unknown field (§4.1.5)', () => parse({ 'include-groupchat': 'true' }), 'feature-not-implemented'],
      ['wrong FORM_TYPE', () => parseQuery(x('query', NS_MAM, {}, x('x', NS_DATA, { type: 'submit' }, x('field', NS_DATA, { var: 'FORM_TYPE' }, x('value', NS_DATA, {}, 'urn:other')))), LIMITS), 'bad-request'],
      ['form of type form', () => parseQuery(x('query', NS_MAM, {}, form({}, 'form')), LIMITS), 'bad-request'],
      ['bad start', () => parse({ start: 'yesterday' }), 'bad-request'],
      ['bad with', () => parse({ with: 'a@b@c' }), 'bad-request'],
      ['two values for with', () => parse({ with: ['a@b', 'c@d'] }), 'bad-request'],
      ['negative max', () => parse(undefined, x('set', NS_RSM, {}, x('max', NS_RSM, {}, '-1'))), 'bad-request'],
      ['after and before', () => parse(undefined, rsm({ after: 'a', before: 'b' })), 'bad-request'],
      ['empty after', () => parse(undefined, rsm({ after: '' })), 'bad-request'],
      ['too many ids', () => parse({ ids: range(0, 300).map(String) }), 'policy-violation'],
      ['a pubsub node', () => parseQuery(x('query', NS_MAM, { node: 'n' }), LIMITS), 'item-not-found'],
    ];
    for (const [what, fn, cond] of cases) assert.equal(condition((() => { try { fn(); } catch (e) { return e; } })()), cond, what);
  });

  test('XEP-0082 DateTime', () => {
    assert.equal(parseDateTime('2024-01-01T00:00:00Z'), T0);
    assert.equal(parseDateTime('2024-01-01T00:00:00.123456Z'), T0 + 123);
    assert.equal(parseDateTime('2024-01-01T02:00:00+02:00'), T0);
    assert.equal(parseDateTime('2024-01-01'), undefined);
    assert.equal(parseDateTime('2024-13-45T00:00:00Z'), undefined);
  });

  test('the form lists every field, ids as an open list (§4.1.5)', () => {
    const f = queryForm().getChild('x', NS_DATA)!;
    assert.equal(f.attrs.type, 'form');
    assert.deepEqual(f.getChildren('field', NS_DATA).map((e) => e.attrs.var), ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
    assert.ok(f.getChildren('field', NS_DATA).every((e) => e.getChild('required', NS_DATA) === undefined), 'no field is required');
  });
});

for (const backend of storageBackends()) describe(`XEP-0313 paging over a 100-message archive (${backend.dialect})`, { skip: backend.skip }, () => {
before(async () => {
  ts = await backend.open();
  await ts.storage.accounts.create('localhost', 'alice', [credentials('SHA-256', 1)]);
  store = await SqlMamStore.open(ts.storage.sql);
  const msgs = Array.from({ length: 100 }, (_, i) => ({
    withBare: i % 2 === 0 ? 'bob@localhost' : 'carol@localhost',
    withResource: i % 2 === 0 ? (i % 4 === 0 ? 'a' : 'b') : '',
    stanza: `<message xmlns="jabber:client" type="chat" to="alice@localhost"><body>m${i}</body></message>`,
    // Ten messages share each second: order among them is by arrival.
    ts: T0 + Math.floor(i / 10) * 1000,
  }));
  ids = await store.append('localhost', 'alice', msgs);
  archive = await store.reader('localhost', 'alice');
});
after(async () => ts.cleanup());

  test('forward with RSM after: every message once, in order, complete at the end', async () => {
    const seen: number[] = [];
    let afterId: string | undefined;
    for (let round = 0; round < 20; round++) {
      const page = await runQuery(archive, parse(undefined, rsm({ max: 15, after: afterId })));
      seen.push(...bodies(page.items));
      assert.equal(page.count, 100);
      assert.equal(page.index, round * 15);
      afterId = page.items.at(-1)?.id;
      if (page.complete) break;
    }
    assert.deepEqual(seen, range(0, 99));
  });

  test('backward from the last page with RSM before, with a with filter', async () => {
    const seen: number[] = [];
    let beforeId = '';
    for (let round = 0; round < 20; round++) {
      const page = await runQuery(archive, parse({ with: 'bob@localhost' }, rsm({ max: 7, before: beforeId })));
      assert.equal(page.count, 50);
      seen.unshift(...bodies(page.items));
      assert.equal(page.index, 50 - seen.length, 'the first item\'s position in the set');
      beforeId = page.items[0]!.id;
      if (page.complete) break;
    }
    assert.deepEqual(seen, range(0, 98, 2));
  });

  test('a full JID with matches that resource only; start and end are inclusive', async () => {
    assert.deepEqual(bodies((await runQuery(archive, parse({ with: 'bob@localhost/a' }, rsm({ max: 100 })))).items), range(0, 96, 4));
    const page = await runQuery(archive, parse({ start: '2024-01-01T00:00:02Z', end: '2024-01-01T00:00:03Z' }, rsm({ max: 100 })));
    assert.deepEqual(bodies(page.items), range(20, 39));
    assert.equal(page.complete, true);
  });

  test('after-id and before-id bound the result set; RSM pages within it', async () => {
    const q = parse({ 'after-id': ids[10]!, 'before-id': ids[30]!, with: 'carol@localhost' }, rsm({ max: 4 }));
    const page = await runQuery(archive, q);
    assert.deepEqual(bodies(page.items), [11, 13, 15, 17]);
    assert.equal(page.count, 10);
    assert.equal(page.complete, false);
    const last = await runQuery(archive, parse({ 'after-id': ids[10]!, 'before-id': ids[30]! , with: 'carol@localhost' }, rsm({ max: 4, before: '' })));
    assert.deepEqual(bodies(last.items), [23, 25, 27, 29]);
    assert.equal(last.index, 6);
    const next = await runQuery(archive, parse({ 'after-id': ids[10]!, 'before-id': ids[30]!, with: 'carol@localhost' }, rsm({ max: 4, after: ids[25]! })));
    assert.deepEqual(bodies(next.items), [27, 29]);
    assert.equal(next.index, 8, 'counted from the start of the set, not of the page');
    assert.equal(next.complete, true);
  });

  test('ids fetches those messages, in archive order, within the other filters', async () => {
    const page = await runQuery(archive, parse({ ids: [ids[42]!, ids[7]!, ids[8]!] }));
    assert.deepEqual(bodies(page.items), [7, 8, 42]);
    assert.equal(page.count, 3);
    assert.equal(page.complete, true);
    assert.deepEqual(bodies((await runQuery(archive, parse({ ids: [ids[42]!, ids[7]!], with: 'bob@localhost' }))).items), [42]);
  });

  test('an id not in the archive is item-not-found, wherever it is named (§4.1.3, §4.3.2)', async () => {
    const cases: MamQuery[] = [
      parse({ 'after-id': 'nope' }),
      parse({ 'before-id': 'nope' }),
      parse({ ids: [ids[1]!, 'nope'] }),
      parse(undefined, rsm({ after: 'nope' })),
      parse(undefined, rsm({ before: 'nope' })),
    ];
    for (const q of cases) await assert.rejects(runQuery(archive, q), (e) => condition(e) === 'item-not-found');
    // Another account's archive does not hold alice's ids.
    await ts.storage.accounts.create('localhost', 'dave', [credentials('SHA-256', 2)]);
    await store.append('localhost', 'dave', [{ withBare: 'x@y', withResource: '', stanza: '<message xmlns="jabber:client"><body>d</body></message>' }]);
    await assert.rejects(runQuery(await store.reader('localhost', 'dave'), parse({ ids: [ids[0]!] })), (e) => condition(e) === 'item-not-found');
  });

  test('max 0 gives the count only; RSM index skips into the set; flip-page reverses the sending only', async () => {
    const counted = await runQuery(archive, parse({ with: 'carol@localhost' }, rsm({ max: 0 })));
    assert.deepEqual(counted.items, []);
    assert.equal(counted.count, 50);
    const fin = finElement(counted).getChild('set', NS_RSM)!;
    assert.equal(fin.getChild('first', NS_RSM), undefined, 'no first/last for an empty page (XEP-0059 §2.7)');
    assert.equal(fin.getChildText('count', NS_RSM), '50');

    const indexed = await runQuery(archive, parse(undefined, rsm({ max: 3, index: 95 })));
    assert.deepEqual(bodies(indexed.items), [95, 96, 97]);
    assert.equal(indexed.index, 95);

    const q = parse(undefined, rsm({ max: 5, before: '' }), true);
    const page = await runQuery(archive, q);
    assert.deepEqual(bodies(sendOrder(page, q.flip)), [99, 98, 97, 96, 95]);
    const set = finElement(page).getChild('set', NS_RSM)!;
    assert.equal(set.getChildText('first', NS_RSM), ids[95], 'first and last stay chronological');
    assert.equal(set.getChild('first', NS_RSM)!.attrs.index, '95');
    assert.equal(set.getChildText('last', NS_RSM), ids[99]);
    assert.equal(finElement(page).attrs.complete, undefined, 'not the start of the archive');
  });

  test('count and index are left out past the counting cap, except for the whole archive (kept count)', async () => {
    const capped = await runQuery(archive, parse({ with: 'bob@localhost' }, rsm({ max: 5, after: ids[50]! })), 10);
    assert.deepEqual(bodies(capped.items), [52, 54, 56, 58, 60]);
    assert.equal(capped.count, undefined);
    assert.equal(capped.index, undefined);
    const set = finElement(capped).getChild('set', NS_RSM)!;
    assert.equal(set.getChild('count', NS_RSM), undefined);
    assert.equal(set.getChild('first', NS_RSM)!.attrs.index, undefined);
    const whole = await runQuery(archive, parse(undefined, rsm({ max: 5, after: ids[3]! })), 10);
    assert.equal(whole.count, 100, 'the archive\'s own count');
    assert.equal(whole.index, 4, 'within the cap');
    const far = await runQuery(archive, parse(undefined, rsm({ max: 5, after: ids[50]! })), 10);
    assert.equal(far.index, undefined, 'beyond the cap');
    const small = await runQuery(archive, parse({ with: 'carol@localhost', start: '2024-01-01T00:00:09Z' }), 10);
    assert.equal(small.count, 5, 'a set within the cap is counted');
  });

  test('an empty archive answers complete and empty; metadata bounds', async () => {
    await ts.storage.accounts.create('localhost', 'erin', [credentials('SHA-256', 3)]);
    const empty = await store.reader('localhost', 'erin');
    const page = await runQuery(empty, parse());
    assert.deepEqual(page.items, []);
    assert.equal(page.complete, true);
    assert.equal(finElement(page).attrs.complete, 'true');
    assert.equal(await empty.bounds(), undefined);
    const b = await archive.bounds();
    assert.deepEqual([b?.first.id, b?.last.id], [ids[0], ids[99]]);
  });
});
