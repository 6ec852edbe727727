// XEP-0313 queries against any archive (archive.ts): the query's data form
// (§4.1) and XEP-0059 result set management, the page they select, and the
// messages and <fin/> that carry it back. Nothing here knows whose archive it is:
// a user's (mam.ts) or a room's.
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { loadXml } from '../../xml/stored.js';
import { Jid, JidError } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { inRange, precedes, type ArchivedMessage, type ArchiveRange, type ArchiveReader, type WithFilter } from './archive.js';

/** XEP-0313 §10.1 */
export const NS_MAM = 'urn:xmpp:mam:2';
/** XEP-0313 §7: before-id, after-id, ids, flipped pages, metadata. */
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
/** XEP-0059 */
export const NS_RSM = 'http://jabber.org/protocol/rsm';
/** XEP-0004 */
export const NS_DATA = 'jabber:x:data';
/** XEP-0122 */
export const NS_XDATA_VALIDATE = 'http://jabber.org/protocol/xdata-validate';
/** XEP-0297 */
export const NS_FORWARD = 'urn:xmpp:forward:0';
/** XEP-0203 */
export const NS_DELAY = 'urn:xmpp:delay';

/** XEP-0059 §2: the paging part of a query. */
export interface Rsm {
  /** Page size, already capped by the server. */
  max: number;
  /** The page after this archive id. */
  after?: string;
  /** The page before this archive id; '' (an empty <before/>) asks for the last page (§2.5). */
  before?: string;
  /** XEP-0059 §2.4: a page starting this many messages into the result set. */
  index?: number;
}

/** A parsed <query/> (XEP-0313 §4). */
export interface MamQuery {
  queryId: string | undefined;
  with: WithFilter | undefined;
  start: number | undefined;
  end: number | undefined;
  afterId: string | undefined;
  beforeId: string | undefined;
  ids: string[] | undefined;
  rsm: Rsm;
  /** XEP-0313 §4.3.4: send the page newest first. */
  flip: boolean;
}

export interface PageLimits {
  /** The page size when the client asks for none. */
  defaultPage: number;
  /** The largest page sent at once, whatever the client asks (XEP-0313 §4.3.1). */
  maxPage: number;
}

/** One page of results, oldest first. */
export interface Page {
  items: ArchivedMessage[];
  /** Messages in the whole result set (XEP-0059 §2.6); undefined when too costly to count. */
  count: number | undefined;
  /** Position of items[0] in the result set (XEP-0059 §2.4). */
  index: number | undefined;
  /** XEP-0313 §4.3.2: nothing further in the paging direction. */
  complete: boolean;
}

/**
 * Index entries counted at most for <count/> and the 'index' of <first/> (XEP-0059 §2.6: they
 * may be left out when exceptionally costly): a few milliseconds on SQLite. The whole archive's
 * count is always known (kept with each change).
 */
export const COUNT_CAP = 20_000;
/** The largest RSM <index/> served (XEP-0059 §2.4): skipping into a set costs what it skips. */
export const INDEX_CAP = 50_000;

/** The form fields this implementation understands (XEP-0313 §4.1, §4.1.5). */
const FIELDS = new Set(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);

/** XEP-0082 DateTime. */
const DATETIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** XEP-0082 DateTime to milliseconds since the epoch (fractions beyond milliseconds dropped). */
export function parseDateTime(s: string): number | undefined {
  const m = DATETIME.exec(s.trim());
  if (!m) return undefined;
  const fraction = m[2] === undefined ? '' : m[2].slice(0, 4);
  const ms = Date.parse(`${m[1]}${fraction}${m[3]}`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** XEP-0313 §4.1.5: the query form, answered to a 'get' of the query. */
export function queryForm(): Element {
  const field = (v: string, type: string, ...children: Element[]) => x('field', NS_DATA, { var: v, type }, ...children);
  return x(
    'query',
    NS_MAM,
    {},
    x(
      'x',
      NS_DATA,
      { type: 'form' },
      field('FORM_TYPE', 'hidden', x('value', NS_DATA, {}, NS_MAM)),
      field('with', 'jid-single'),
      field('start', 'text-single'),
      field('end', 'text-single'),
      field('before-id', 'text-single'),
      field('after-id', 'text-single'),
      // §4.1.5: an open list, with a XEP-0122 validate element instead of every id.
      field('ids', 'list-multi', x('validate', NS_XDATA_VALIDATE, { datatype: 'xs:string' }, x('open', NS_XDATA_VALIDATE))),
    ),
  );
}

function singleValue(field: Element): string {
  const values = field.getChildren('value', NS_DATA);
  if (values.length !== 1) throw new StanzaError('bad-request', `field ${field.attrs.var ?? ''} takes one value`);
  return values[0]!.text();
}

function parseWith(s: string): WithFilter {
  let jid: Jid;
  try {
    jid = Jid.parse(s.trim());
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError('bad-request', `'with' is not a valid JID`);
    throw err;
  }
  // §4.1.1: a bare JID matches every resource of it; a full JID only itself.
  return jid.resource === '' ? { bare: jid.bareString() } : { bare: jid.bareString(), resource: jid.resource };
}

function parseInteger(el: Element, what: string, min: number): number {
  const s = el.text().trim();
  if (!/^\d{1,9}$/.test(s) || Number(s) < min) throw new StanzaError('bad-request', `invalid RSM <${what}/>`);
  return Number(s);
}

/** XEP-0059 §2: <set/> of a request; absent, the default page from the start. */
export function parseRsm(set: Element | undefined, limits: PageLimits): Rsm {
  if (!set) return { max: limits.defaultPage };
  const maxEl = set.getChild('max', NS_RSM);
  // §2.1: the server may return fewer items than asked for.
  const max = maxEl ? Math.min(parseInteger(maxEl, 'max', 0), limits.maxPage) : limits.defaultPage;
  const rsm: Rsm = { max };
  const after = set.getChild('after', NS_RSM);
  const before = set.getChild('before', NS_RSM);
  if (after) {
    // Archive ids hold no white space; what surrounds one is formatting.
    const id = after.text().trim();
    // §2.2: after names an item; an empty one names none.
    if (id === '') throw new StanzaError('bad-request', 'empty RSM <after/>');
    rsm.after = id;
  }
  if (before) rsm.before = before.text().trim();
  // XEP-0313 §4.3.2: before and after together are undefined by RSM: before-id/after-id do that.
  if (after && before) throw new StanzaError('bad-request', 'RSM <after/> and <before/> together: use after-id and before-id');
  const index = set.getChild('index', NS_RSM);
  if (index) {
    if (after || before) throw new StanzaError('bad-request', 'RSM <index/> with <after/> or <before/>');
    rsm.index = parseInteger(index, 'index', 0);
    // XEP-0059 §2.4: a responder that cannot page by index answers feature-not-implemented.
    if (rsm.index > INDEX_CAP) throw new StanzaError('feature-not-implemented', `RSM <index/> beyond ${INDEX_CAP}`);
  }
  return rsm;
}

/**
 * A <query/> of a 'set' (XEP-0313 §4): its form, paging and flip-page. Throws a StanzaError:
 * bad-request for a malformed form, feature-not-implemented for a field not understood (§4.1.5).
 */
export function parseQuery(query: Element, limits: PageLimits): MamQuery {
  const q: MamQuery = {
    queryId: query.attrs.queryid,
    with: undefined,
    start: undefined,
    end: undefined,
    afterId: undefined,
    beforeId: undefined,
    ids: undefined,
    rsm: parseRsm(query.getChild('set', NS_RSM), limits),
    flip: query.getChild('flip-page', NS_MAM) !== undefined,
  };
  // XEP-0442 (pubsub archives) uses 'node'; there are none here.
  if (query.attrs.node !== undefined) throw new StanzaError('item-not-found', 'no archive for that node');
  const forms = query.getChildren('x', NS_DATA);
  if (forms.length > 1) throw new StanzaError('bad-request', 'more than one data form');
  const form = forms[0];
  if (!form) return q;
  if (form.attrs.type !== undefined && form.attrs.type !== 'submit') throw new StanzaError('bad-request', 'the form must be of type submit');
  for (const field of form.getChildren('field', NS_DATA)) {
    const name = field.attrs.var ?? '';
    if (!FIELDS.has(name)) throw new StanzaError('feature-not-implemented', `unknown field ${name}`);
    switch (name) {
      case 'FORM_TYPE':
        // §4.1: the hidden FORM_TYPE is this protocol's namespace.
        if (singleValue(field) !== NS_MAM) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS_MAM}`);
        break;
      case 'with':
        q.with = parseWith(singleValue(field));
        break;
      case 'start':
      case 'end': {
        const v = parseDateTime(singleValue(field));
        if (v === undefined) throw new StanzaError('bad-request', `'${name}' is not a XEP-0082 DateTime`);
        if (name === 'start') q.start = v;
        else q.end = v;
        break;
      }
      case 'before-id':
        q.beforeId = singleValue(field);
        break;
      case 'after-id':
        q.afterId = singleValue(field);
        break;
      case 'ids': {
        const ids = field.getChildren('value', NS_DATA).map((v) => v.text());
        // More ids than a page holds would be a page larger than the server sends.
        if (ids.length > limits.maxPage) throw new StanzaError('policy-violation', `at most ${limits.maxPage} ids in one query`);
        q.ids = [...new Set(ids)];
        break;
      }
    }
  }
  return q;
}

/**
 * The page a query selects. The form's after-id/before-id/ids belong to the result set; RSM
 * after/before only page through it (XEP-0313 §8: that is how they differ). Any id that is not
 * in the archive is item-not-found (§4.1.3, §4.3.2).
 */
export async function runQuery(reader: ArchiveReader, q: MamQuery, countCap = COUNT_CAP): Promise<Page> {
  const wanted = new Set<string>();
  for (const id of [q.afterId, q.beforeId, q.rsm.after, q.rsm.before, ...(q.ids ?? [])]) if (id) wanted.add(id);
  const known = new Map<string, ArchivedMessage>();
  if (wanted.size > 0) for (const m of await reader.byIds([...wanted])) known.set(m.id, m);
  const ref = (id: string): ArchivedMessage => {
    const m = known.get(id);
    if (!m) throw new StanzaError('item-not-found', `no message ${id} in the archive`);
    return m;
  };
  const set: ArchiveRange = {
    with: q.with,
    start: q.start,
    end: q.end,
    after: q.afterId === undefined ? undefined : ref(q.afterId),
    before: q.beforeId === undefined ? undefined : ref(q.beforeId),
  };
  // The page's own bounds: the result set's, narrowed by RSM.
  let page = set;
  if (q.rsm.after !== undefined) {
    const a = ref(q.rsm.after);
    if (!set.after || precedes(set.after, a)) page = { ...page, after: a };
  }
  if (q.rsm.before) {
    const b = ref(q.rsm.before);
    if (!set.before || precedes(b, set.before)) page = { ...page, before: b };
  }
  const { max } = q.rsm;
  const backward = q.rsm.before !== undefined;

  if (q.ids !== undefined) {
    // §4.1.3 "single-item retrieval": those messages (all must exist), within the other filters.
    const matching = q.ids
      .map(ref)
      .filter((m) => inRange(m, set))
      .sort((a, b) => (precedes(a, b) ? -1 : 1));
    const within = matching.filter((m) => inRange(m, page));
    const offset = !backward && q.rsm.after === undefined ? (q.rsm.index ?? 0) : 0;
    const items = backward ? within.slice(Math.max(0, within.length - max)) : within.slice(offset, offset + max);
    const first = items[0];
    return {
      items,
      count: matching.length,
      index: first ? matching.indexOf(first) : undefined,
      complete: backward ? items.length === within.length : offset + items.length >= within.length,
    };
  }

  const unfiltered = !set.with && set.start === undefined && set.end === undefined && !set.after && !set.before;
  const count = unfiltered ? await reader.total() : await reader.count(set, countCap);
  if (max === 0) return { items: [], count, index: undefined, complete: count === 0 };
  const offset = !backward && q.rsm.after === undefined ? q.rsm.index : undefined;
  const rows = await reader.page(page, max + 1, backward, offset);
  const items = rows.slice(0, max);
  if (backward) items.reverse();
  const first = items[0];
  let index: number | undefined;
  if (first) {
    if (!backward && q.rsm.after === undefined) index = offset ?? 0;
    else if (backward && !q.rsm.before) index = count === undefined ? undefined : count - items.length;
    else if (count !== undefined) index = await reader.count({ ...set, before: first }, countCap);
  }
  return { items, count, index, complete: rows.length <= max };
}

/** XEP-0313 §4.2: one result, to the querying entity, the original in a XEP-0297 wrapper with its XEP-0203 delay. */
export function resultMessage(m: ArchivedMessage, queryId: string | undefined, from: string, to: string): Element {
  return x(
    'message',
    NS.CLIENT,
    { from, to },
    x(
      'result',
      NS_MAM,
      { queryid: queryId, id: m.id },
      x('forwarded', NS_FORWARD, {}, x('delay', NS_DELAY, { stamp: new Date(m.ts).toISOString() }), loadXml(m.stanza)),
    ),
  );
}

/** XEP-0313 §4.3: the <fin/> of the IQ result, with the XEP-0059 <set/> of the page. */
export function finElement(page: Page): Element {
  const set = x('set', NS_RSM);
  const first = page.items[0];
  const last = page.items[page.items.length - 1];
  // XEP-0059 §2.6/§2.7: first and last only when the page holds items; first and last stay
  // chronological with flip-page (flipping changes only the order of sending, §4.3.4).
  if (first && last) {
    set.append(x('first', NS_RSM, { index: page.index === undefined ? undefined : String(page.index) }, first.id));
    set.append(x('last', NS_RSM, {}, last.id));
  }
  if (page.count !== undefined) set.append(x('count', NS_RSM, {}, String(page.count)));
  return x('fin', NS_MAM, { complete: page.complete ? 'true' : undefined }, set);
}

/** The messages of a page in the order they are sent (§4.3.4: newest first when flipped). */
export function sendOrder(page: Page, flip: boolean): ArchivedMessage[] {
  return flip ? [...page.items].reverse() : page.items;
}

/** XEP-0313 §6: the archive's first and last message. */
export async function metadata(reader: ArchiveReader): Promise<Element> {
  const bounds = await reader.bounds();
  const el = x('metadata', NS_MAM);
  if (bounds) {
    el.append(x('start', NS_MAM, { id: bounds.first.id, timestamp: new Date(bounds.first.ts).toISOString() }));
    el.append(x('end', NS_MAM, { id: bounds.last.id, timestamp: new Date(bounds.last.ts).toISOString() }));
  }
  return el;
}
