// XEP-0313 message archives with real clients on a real server: xmpp.js
// (@xmpp/client, stanzas built by hand) and slixmpp's own xep_0313, xep_0441 and
// xep_0359 plugins (test/slixmpp/mam_client.py). What must not arrive is checked
// with a marker sent after it on the same path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate, waitUntil, xml, type XmlElement, type XmppJsClient } from './support/xmppjs.js';
import { XjsClient, slixmppMissing } from './support/im-clients.js';
import { PYTHON, scriptEvents, type ScriptEvent } from './support/slixmpp.js';

const NS_MAM = 'urn:xmpp:mam:2';
const NS_RSM = 'http://jabber.org/protocol/rsm';
const NS_DATA = 'jabber:x:data';
const NS_SID = 'urn:xmpp:sid:0';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DELAY = 'urn:xmpp:delay';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
/** Without -PLUS, so that slixmpp 1.8 can use SCRAM (see test/slixmpp.test.ts). */
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };
const MAM_SCRIPT = join(import.meta.dirname, 'slixmpp', 'mam_client.py');
const WAIT = 10_000;

let srv: TestServer;
let caFile: string;
let restoreTls: () => void;
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'mallory'];

before(async () => {
  srv = await startTestServer({ sasl: NO_PLUS });
  for (const u of USERS) await srv.addUser(u, `${u}-pass`);
  caFile = join(srv.dir, 'data', 'tls', 'self-signed.crt');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

/** Every stanza an xmpp.js client received, to wait for and to inspect. */
class Received {
  readonly all: XmlElement[] = [];
  private waiters: (() => void)[] = [];

  constructor(xmpp: XmppJsClient) {
    xmpp.on('stanza', (el: XmlElement) => {
      this.all.push(el);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async next(pred: (el: XmlElement) => boolean, what: string): Promise<XmlElement> {
    const deadline = Date.now() + WAIT;
    for (;;) {
      const hit = this.all.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${WAIT} ms waiting for ${what}; got:\n  ${this.all.map(String).join('\n  ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

interface Xjs {
  c: XjsClient;
  got: Received;
  jid: string;
}

const open: XjsClient[] = [];
async function cleanup(): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.dispose()));
  await waitUntil(() => USERS.every((u) => srv.server.router.getSessions(`${u}@localhost`).length === 0), 'every session to end', WAIT);
}

/** An xmpp.js client, online (initial presence) unless `available` is false. */
async function xjs(user: string, available = true): Promise<Xjs> {
  const c = await XjsClient.connect({ port: srv.port, user, password: `${user}-pass`, caFile });
  open.push(c);
  const got = new Received(c.xmpp);
  if (available) await c.presence();
  await c.ping();
  return { c, got, jid: c.jid };
}

const bodyIs = (body: string) => (el: XmlElement) => el.is('message') && el.getChildText('body') === body;
const stanzaIds = (el: XmlElement) => el.getChildren('stanza-id', NS_SID).map((s) => ({ by: s.attrs.by, id: s.attrs.id }));

interface Fields {
  with?: string;
  start?: string;
  'after-id'?: string;
  'before-id'?: string;
  ids?: string[];
}
interface Paging {
  max?: number;
  after?: string;
  before?: string;
}

interface QueryAnswer {
  results: XmlElement[];
  fin: XmlElement;
  set: XmlElement;
}

let queries = 0;
/** A MAM query of `who`'s own archive: the result messages with its queryid, and the <fin/>. */
async function mam(who: Xjs, fields: Fields = {}, paging: Paging = {}, extra: XmlElement[] = []): Promise<QueryAnswer> {
  const queryid = `q${++queries}`;
  const form = xml('x', { xmlns: NS_DATA, type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_MAM)));
  for (const [k, v] of Object.entries(fields)) form.children.push(xml('field', { var: k }, ...(Array.isArray(v) ? v : [v]).map((s: string) => xml('value', {}, s))));
  const set = xml('set', { xmlns: NS_RSM });
  if (paging.max !== undefined) set.children.push(xml('max', {}, String(paging.max)));
  if (paging.after !== undefined) set.children.push(xml('after', {}, paging.after));
  if (paging.before !== undefined) set.children.push(xml('before', {}, paging.before));
  const res = await who.c.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_MAM, queryid }, form, set, ...extra)), WAIT);
  const fin = res.getChild('fin', NS_MAM);
  assert.ok(fin, 'the IQ result holds <fin/>');
  // XEP-0313 §4.2: the results came before the IQ result, on the same stream.
  const results = who.got.all.filter((el) => el.is('message') && el.getChild('result', NS_MAM)?.attrs.queryid === queryid);
  return { results, fin, set: fin.getChild('set', NS_RSM)! };
}

const resultId = (r: XmlElement) => r.getChild('result', NS_MAM)!.attrs.id!;
const inner = (r: XmlElement) => r.getChild('result', NS_MAM)!.getChild('forwarded', NS_FORWARD)!.getChild('message')!;
const bodiesOf = (a: QueryAnswer) => a.results.map((r) => inner(r).getChildText('body'));

/** The error condition of a failed IQ request (xmpp.js rejects with a StanzaError). */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { condition?: string }).condition ?? String(err);
  }
  return 'no error';
}

describe('XEP-0313 with xmpp.js', () => {
  test('disco features on the account, the query form, metadata, and nobody reads another\'s archive', async (t) => {
    t.after(cleanup);
    const alice = await xjs('alice');
    const info = await alice.c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: NS_DISCO_INFO })), WAIT);
    const features = info.getChild('query', NS_DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [NS_MAM, `${NS_MAM}#extended`, NS_SID]) assert.ok(features.includes(f), `${f} in ${String(features)}`);

    const form = await alice.c.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_MAM })), WAIT);
    const fields = form.getChild('query', NS_MAM)!.getChild('x', NS_DATA)!.getChildren('field').map((f) => f.attrs.var);
    assert.deepEqual(fields, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);

    const meta = await alice.c.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('metadata', { xmlns: NS_MAM })), WAIT);
    assert.ok(meta.getChild('metadata', NS_MAM), 'a metadata answer');

    const q = xml('iq', { type: 'set', to: 'bob@localhost' }, xml('query', { xmlns: NS_MAM }));
    assert.equal(await failure(alice.c.xmpp.iqCaller.request(q, WAIT)), 'forbidden');
  });

  test('the live stanza-id is the archive id in each archive; a forged one is stripped; origin-id stays; the sent carbon has the sender\'s', async (t) => {
    t.after(cleanup);
    const alice = await xjs('alice');
    const b1 = await xjs('bob');
    const b2 = await xjs('bob');
    await b2.c.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS_CARBONS })), WAIT);

    await b1.c.xmpp.send(
      xml('message', { to: 'alice@localhost', type: 'chat', id: 'live1' }, xml('body', {}, 'live one'),
        xml('stanza-id', { xmlns: NS_SID, by: 'alice@localhost', id: 'forged' }),
        xml('stanza-id', { xmlns: NS_SID, by: 'bob@localhost', id: 'forged-too' }),
        xml('origin-id', { xmlns: NS_SID, id: 'origin-live1' })),
    );
    const live = await alice.got.next(bodyIs('live one'), 'the message at alice');
    const ids = stanzaIds(live);
    assert.equal(ids.length, 1, `one stanza-id, the recipient's archive's: ${String(live)}`);
    assert.equal(ids[0]!.by, 'alice@localhost');
    assert.notEqual(ids[0]!.id, 'forged');
    assert.equal(live.getChild('origin-id', NS_SID)?.attrs.id, 'origin-live1', 'origin-id kept (XEP-0359 §3)');

    const mine = await mam(alice, { ids: [ids[0]!.id!] });
    assert.equal(mine.results.length, 1);
    assert.equal(resultId(mine.results[0]!), ids[0]!.id);
    assert.equal(inner(mine.results[0]!).getChildText('body'), 'live one');
    assert.equal(inner(mine.results[0]!).getChildren('stanza-id', NS_SID).length, 0, 'the archived copy has no forged id either');

    // The sender's archive has its own copy, under its own id: the one on the sent carbon.
    const carbon = await b2.got.next((el) => el.getChild('sent', NS_CARBONS) !== undefined, 'the sent carbon at b2');
    const sentCopy = carbon.getChild('sent', NS_CARBONS)!.getChild('forwarded', NS_FORWARD)!.getChild('message')!;
    const sentIds = stanzaIds(sentCopy).filter((s) => s.by === 'bob@localhost');
    assert.equal(sentIds.length, 1, 'the sent carbon carries the sender\'s archive id (XEP-0313 §3.5), the forged one is gone');
    assert.notEqual(sentIds[0]!.id, 'forged-too');
    const bobs = await mam(b1, { with: 'alice@localhost' }, { max: 1, before: '' });
    assert.equal(resultId(bobs.results[0]!), sentIds[0]!.id);
    assert.equal(inner(bobs.results[0]!).getChildText('body'), 'live one');
    assert.notEqual(sentIds[0]!.id, ids[0]!.id);
  });

  test('paging 100 messages both ways with a with filter; flip-page; count, index, complete', async (t) => {
    t.after(cleanup);
    const alice = await xjs('alice');
    const carol = await xjs('carol');
    const dave = await xjs('dave');
    for (let i = 0; i < 100; i++) {
      await carol.c.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, `carol ${i}`)));
      if (i % 10 === 0) await dave.c.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, `dave ${i}`)));
      // Chat states alone are not archived.
      if (i % 25 === 0) await carol.c.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    }
    await alice.got.next(bodyIs('carol 99'), 'the last message at alice');
    const expected = Array.from({ length: 100 }, (_, i) => `carol ${i}`);

    const forward: string[] = [];
    let afterId: string | undefined;
    for (let page = 0; page < 10; page++) {
      const a = await mam(alice, { with: 'carol@localhost' }, { max: 30, after: afterId });
      forward.push(...bodiesOf(a).map(String));
      assert.equal(a.set.getChildText('count'), '100');
      assert.equal(a.set.getChild('first')?.attrs.index, String(page * 30));
      assert.equal(a.set.getChildText('first'), resultId(a.results[0]!));
      assert.equal(a.set.getChildText('last'), resultId(a.results.at(-1)!));
      for (const r of a.results) {
        assert.equal(r.attrs.from, 'alice@localhost', 'results come from the archive (the bare JID)');
        assert.equal(r.attrs.to, alice.jid, 'to the querying resource');
        assert.ok(r.getChild('result', NS_MAM)!.getChild('forwarded', NS_FORWARD)!.getChild('delay', NS_DELAY)?.attrs.stamp, 'a delay stamp');
      }
      afterId = a.set.getChildText('last') ?? undefined;
      if (a.fin.attrs.complete === 'true') {
        assert.equal(page, 3, 'complete on the last page only');
        break;
      }
    }
    assert.deepEqual(forward, expected);

    const backward: string[] = [];
    let beforeId = '';
    for (let page = 0; page < 10; page++) {
      const a = await mam(alice, { with: 'carol@localhost' }, { max: 30, before: beforeId });
      backward.unshift(...bodiesOf(a).map(String));
      beforeId = a.set.getChildText('first')!;
      if (a.fin.attrs.complete === 'true') break;
    }
    assert.deepEqual(backward, expected);

    const flipped = await mam(alice, { with: 'carol@localhost' }, { max: 5, before: '' }, [xml('flip-page', { xmlns: NS_MAM })]);
    assert.deepEqual(bodiesOf(flipped), ['carol 99', 'carol 98', 'carol 97', 'carol 96', 'carol 95']);

    const all = await mam(alice, {}, { max: 0 });
    assert.ok(Number(all.set.getChildText('count')) >= 110, 'max 0: the count alone');
    assert.equal(all.results.length, 0);
  });

  test('preferences: a never JID is not archived and gets no stanza-id; prefs read back', async (t) => {
    t.after(cleanup);
    const alice = await xjs('alice');
    const mallory = await xjs('mallory');
    const set = await alice.c.xmpp.iqCaller.request(
      xml('iq', { type: 'set' }, xml('prefs', { xmlns: NS_MAM, default: 'always' }, xml('always'), xml('never', {}, xml('jid', {}, 'mallory@localhost')))),
      WAIT,
    );
    assert.equal(set.getChild('prefs', NS_MAM)?.getChild('never')?.getChildText('jid'), 'mallory@localhost');
    const got = await alice.c.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('prefs', { xmlns: NS_MAM })), WAIT);
    assert.equal(got.getChild('prefs', NS_MAM)?.attrs.default, 'always');
    assert.deepEqual(got.getChild('prefs', NS_MAM)?.getChild('never')?.getChildren('jid').map((j) => j.text()), ['mallory@localhost']);

    await mallory.c.xmpp.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'do not keep this')));
    const live = await alice.got.next(bodyIs('do not keep this'), 'mallory\'s message');
    assert.deepEqual(stanzaIds(live), [], 'not archived: no archive id');
    const a = await mam(alice, { with: 'mallory@localhost' });
    assert.deepEqual(bodiesOf(a), []);
    // Mallory's own archive is mallory's business: there it is.
    assert.deepEqual(bodiesOf(await mam(mallory, { with: 'alice@localhost' })), ['do not keep this']);
    // Back to the default, so that other tests see alice archive everything.
    await alice.c.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('prefs', { xmlns: NS_MAM, default: 'always' })), WAIT);
  });

  test('an unknown id is item-not-found wherever it is named', async (t) => {
    t.after(cleanup);
    const alice = await xjs('alice');
    assert.equal(await failure(mam(alice, { 'after-id': 'nope' })), 'item-not-found');
    assert.equal(await failure(mam(alice, { 'before-id': 'nope' })), 'item-not-found');
    assert.equal(await failure(mam(alice, { ids: ['nope'] })), 'item-not-found');
    assert.equal(await failure(mam(alice, {}, { after: 'nope' })), 'item-not-found');
    assert.equal(await failure(mam(alice, {}, { before: 'nope' })), 'item-not-found');
    assert.equal(await failure(mam(alice, { 'include-groupchat': 'true' } as Fields)), 'feature-not-implemented');
  });

  test('a message that waited in offline storage is in the archive, under the id it is delivered with', async (t) => {
    t.after(cleanup);
    const bob = await xjs('bob');
    await bob.c.xmpp.send(xml('message', { to: 'dave@localhost', type: 'chat', id: 'away1' }, xml('body', {}, 'while you were away')));
    await bob.c.ping();
    // Dave connects without presence: nothing is delivered yet, but the archive has it.
    const dave = await xjs('dave', false);
    const a = await mam(dave, { with: 'bob@localhost' }, { max: 1, before: '' });
    assert.deepEqual(bodiesOf(a), ['while you were away']);
    await dave.c.presence();
    const delivered = await dave.got.next((el) => el.is('message') && el.attrs.id === 'away1', 'the offline message');
    assert.deepEqual(stanzaIds(delivered), [{ by: 'dave@localhost', id: resultId(a.results[0]!) }]);
    assert.ok(delivered.getChild('delay', NS_DELAY), 'with its offline delay');
  });
});

describe('XEP-0313 with slixmpp', { skip: slixmppMissing() }, () => {
  test('xep_0313 pages both ways with a with filter; xep_0441 prefs; item-not-found; live stanza-id equals the archived id', async (t) => {
    t.after(cleanup);
    // 25 messages from frank while erin is offline: archived on arrival, delivered later.
    const frank = await xjs('frank');
    const carol = await xjs('carol');
    for (let i = 0; i < 25; i++) {
      await frank.c.xmpp.send(xml('message', { to: 'erin@localhost', type: 'chat' }, xml('body', {}, `frank ${i}`)));
      if (i % 5 === 0) await carol.c.xmpp.send(xml('message', { to: 'erin@localhost', type: 'chat' }, xml('body', {}, `carol ${i}`)));
    }
    await frank.c.ping();
    await carol.c.ping();

    const events = await runMamScript(['--jid', 'erin@localhost', '--password', 'erin-pass', '--with', 'frank@localhost', '--never', 'mallory@localhost', '--page', '10']);
    const get = (kind: string): ScriptEvent => {
      const e = events.find((x) => x.event === kind);
      assert.ok(e, `no ${kind} event in ${JSON.stringify(events)}`);
      return e;
    };
    assert.deepEqual(get('done'), { event: 'done', ok: true }, JSON.stringify(events));
    const expected = Array.from({ length: 25 }, (_, i) => `frank ${i}`);

    assert.deepEqual((get('form').fields as string[]).sort(), ['FORM_TYPE', 'after-id', 'before-id', 'end', 'ids', 'start', 'with']);
    type PageView = { bodies: string[]; ids: string[]; from: string[]; stamps: boolean[]; complete: string | null };
    const forward = get('forward').pages as PageView[];
    assert.deepEqual(forward.map((p) => p.bodies.length), [10, 10, 5]);
    assert.deepEqual(forward.flatMap((p) => p.bodies), expected);
    assert.deepEqual(forward.map((p) => p.complete), [null, null, 'true']);
    assert.ok(forward.every((p) => p.stamps.every(Boolean) && p.from.every((f) => f === 'erin@localhost')));
    const backward = get('backward').pages as PageView[];
    assert.deepEqual(backward.map((p) => p.bodies.length), [10, 10, 5]);
    assert.deepEqual(backward.reverse().flatMap((p) => p.bodies), expected);
    assert.deepEqual(
      backward.flatMap((p) => p.ids),
      forward.flatMap((p) => p.ids),
      'the same ids both ways',
    );

    assert.deepEqual({ ...get('unknown') }, { event: 'unknown', condition: 'item-not-found', type: 'cancel' });
    assert.deepEqual({ ...get('prefs') }, { event: 'prefs', default: 'always', always: [], never: ['mallory@localhost'] });

    const self = get('self') as ScriptEvent & { live: { stanza_ids: { by: string; id: string }[]; origin_id: string }; archived: PageView };
    assert.equal(self.live.stanza_ids.length, 1, JSON.stringify(self.live));
    assert.equal(self.live.stanza_ids[0]!.by, 'erin@localhost');
    assert.notEqual(self.live.stanza_ids[0]!.id, 'forged-by-the-client');
    assert.equal(self.live.origin_id, 'origin-1');
    assert.deepEqual(self.archived.bodies, ['note to self']);
    assert.deepEqual(self.archived.ids, [self.live.stanza_ids[0]!.id], 'the live stanza-id is the archived id');
  });
});

/** Runs mam_client.py to completion; its stdout's JSON lines. */
function runMamScript(args: string[]): Promise<ScriptEvent[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [MAM_SCRIPT, '--port', String(srv.port), '--ca', caFile, '--timeout', '20', ...(process.env.SHOAL_TEST_SLIXMPP_DEBUG ? ['--debug'] : []), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const backstop = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(backstop);
      const events = scriptEvents(out);
      if (!events.some((e) => e.event === 'done' && e.ok === true)) events.push({ event: 'stderr', stderr: err.slice(-4000) });
      resolve(events);
    });
  });
}
