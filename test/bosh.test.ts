// BOSH (XEP-0124 + XEP-0206) on raw HTTP: session creation, login with a
// restart, the rid rules (in-order processing of out-of-order requests, a
// repeated rid answered from the cache, a rid too far ahead terminated), wait,
// hold, pause, polling, terminate, inactivity, and the terminal conditions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { BoshRaw, NS_HTTPBIND, NS_XBOSH, postRaw, type BoshAnswer } from './support/bosh-client.js';
import { waitUntil } from './support/xmppjs.js';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_STREAM = 'http://etherx.jabber.org/streams';

let srv: TestServer;
let url: string;

before(async () => {
  srv = await startTestServer({
    http: { host: '127.0.0.1', port: 0, bosh: { max_wait: 20, max_hold: 2, inactivity: 1, max_pause: 3, polling: 2 } },
  });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  url = `http://127.0.0.1:${srv.server.portOf('http')}/http-bind`;
});
after(async () => {
  await srv.stop();
});

const sessionsOf = (bare: string): number => srv.server.router.getSessions(bare).length;
const ids = (a: BoshAnswer): string[] => a.elements.map((e) => e.attrs.id ?? e.name);
const ping = (id: string): string => `<iq xmlns='jabber:client' type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`;

describe('session creation and login', () => {
  test('the creation answer carries the session attributes and the first stream features', async () => {
    const c = new BoshRaw(url);
    const a = await c.create({ wait: 60, hold: 5, ack: 1 });
    assert.equal(a.status, 200);
    assert.ok(a.attrs.sid && a.attrs.sid.length >= 20, 'an unguessable sid');
    // XEP-0124 §7.1: the server lowers wait and hold to its maxima; requests is hold + 1.
    assert.equal(a.attrs.wait, '20');
    assert.equal(a.attrs.hold, '2');
    assert.equal(a.attrs.requests, '3');
    assert.equal(a.attrs.inactivity, '1');
    assert.equal(a.attrs.polling, '2');
    assert.equal(a.attrs.maxpause, '3');
    assert.equal(a.attrs.from, 'localhost');
    // XEP-0124 §9.1: acknowledging is on, the creation answer acks its own rid.
    assert.equal(a.attrs.ack, String(c.rid - 1));
    // XEP-0206 §3: the version and restart logic; the stream id as authid.
    assert.equal(a.attrs['xmpp:version'], '1.0');
    assert.equal(a.attrs['xmpp:restartlogic'], 'true');
    assert.ok(a.attrs.authid);
    const features = a.elements.find((e) => e.name === 'features' && e.xmlns === NS_STREAM);
    assert.ok(features, a.text);
    const mechs = features.getChild('mechanisms', NS_SASL)!.getChildren('mechanism').map((m) => m.text());
    // On loopback BOSH counts as encrypted: PLAIN is offered, but not -PLUS (no TLS to bind to).
    assert.ok(mechs.includes('PLAIN'));
    assert.ok(!mechs.some((m) => m.endsWith('-PLUS')));
    await c.send('', { type: 'terminate' });
  });

  test('login: SASL, restart with xmpp:restart, bind; then terminate logs out', async () => {
    const c = new BoshRaw(url);
    await c.create();
    const jid = await c.login('alice', 'alice-pass');
    assert.match(jid, /^alice@localhost\//);
    assert.equal(sessionsOf('alice@localhost'), 1);
    const bye = await c.send("<presence xmlns='jabber:client' type='unavailable'/>", { type: 'terminate' });
    assert.equal(bye.attrs.type, 'terminate');
    await waitUntil(() => sessionsOf('alice@localhost') === 0, 'the session to end');
    // XEP-0124 §17.2: the session is over.
    const after = await c.send();
    assert.equal(after.attrs.type, 'terminate');
  });

  test('a creation request without to, a body without rid, bad XML and another root are bad-request', async () => {
    const noTo = await postRaw(url, `<body xmlns='${NS_HTTPBIND}' rid='5' xmlns:xmpp='${NS_XBOSH}' xmpp:version='1.0'/>`);
    assert.equal(noTo.attrs.condition, 'bad-request');
    const noRid = await postRaw(url, `<body xmlns='${NS_HTTPBIND}' to='localhost'/>`);
    assert.equal(noRid.attrs.condition, 'bad-request');
    const bad = await postRaw(url, `<body xmlns='${NS_HTTPBIND}' rid='1' to='localhost'>`);
    assert.equal(bad.attrs.condition, 'bad-request');
    const other = await postRaw(url, `<stream xmlns='${NS_HTTPBIND}' rid='1' to='localhost'/>`);
    assert.equal(other.attrs.condition, 'bad-request');
  });

  test('an unknown sid is item-not-found', async () => {
    const a = await postRaw(url, `<body xmlns='${NS_HTTPBIND}' sid='nope' rid='7'/>`);
    assert.equal(a.attrs.type, 'terminate');
    assert.equal(a.attrs.condition, 'item-not-found');
  });

  test('a host this server does not serve ends the stream: remote-stream-error with host-unknown', async () => {
    const c = new BoshRaw(url);
    const a = await c.create({ to: 'elsewhere.example' });
    assert.equal(a.attrs.type, 'terminate');
    assert.equal(a.attrs.condition, 'remote-stream-error');
    const err = a.elements.find((e) => e.name === 'error' && e.xmlns === NS_STREAM);
    assert.ok(err?.getChild('host-unknown', 'urn:ietf:params:xml:ns:xmpp-streams'), a.text);
  });

  test('a stream error during the session ends it with remote-stream-error and the error inside', async () => {
    const c = new BoshRaw(url);
    await c.create();
    await c.login('alice', 'alice-pass');
    const a = await c.until(
      (x) => x.attrs.type === 'terminate' || x.elements.length > 0,
      "<message xmlns='jabber:client' from='mallory@localhost' to='bob@localhost'><body>x</body></message>",
    ).catch((e: Error) => e);
    const text = a instanceof Error ? a.message : a.text;
    assert.match(text, /remote-stream-error/);
    assert.match(text, /invalid-from/);
    await waitUntil(() => sessionsOf('alice@localhost') === 0, 'the session to end');
  });
});

describe('rid rules (XEP-0124 §14)', () => {
  test('requests that arrive out of order are processed, and answered, in rid order', async () => {
    const c = new BoshRaw(url);
    await c.create({ hold: 1 });
    await c.login('alice', 'alice-pass');
    const first = c.body(ping('first'));
    const second = c.body(ping('second'));
    // The later rid arrives first: it waits for the missing one.
    const late = postRaw(url, second.text);
    let lateDone = false;
    void late.then(() => (lateDone = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lateDone, false, 'the request after a gap is not answered before the gap is filled');
    const early = await postRaw(url, first.text);
    const answers = [early, await late];
    const seen = answers.flatMap(ids);
    let more: BoshAnswer | undefined;
    if (!seen.includes('second')) more = await c.until((a) => ids(a).includes('second'));
    const all = [...seen, ...(more ? ids(more) : [])];
    assert.ok(all.indexOf('first') >= 0 && all.indexOf('first') < all.indexOf('second'), all.join());
    await c.send('', { type: 'terminate' });
  });

  test('a repeated rid is answered with the same answer, from the cache', async () => {
    const c = new BoshRaw(url);
    await c.create({ hold: 1 });
    await c.login('alice', 'alice-pass');
    const req = c.body(ping('cached'));
    const answer = await postRaw(url, req.text);
    let text = answer.text;
    if (!ids(answer).includes('cached')) text = (await c.until((a) => ids(a).includes('cached'))).text;
    void text;
    const again = await postRaw(url, req.text);
    assert.equal(again.text, answer.text);
    // And it was not processed twice: no second result comes.
    const next = await c.send(ping('after'));
    const later = ids(next).includes('after') ? next : await c.until((a) => ids(a).includes('after'));
    assert.ok(!ids(later).includes('cached'));
    await c.send('', { type: 'terminate' });
  });

  test('a rid too far ahead of the window ends the session with item-not-found', async () => {
    const c = new BoshRaw(url);
    const created = await c.create({ hold: 1 });
    assert.equal(created.attrs.requests, '2');
    c.rid += 2; // requests = 2: the window is [next, next + 1]
    const a = await c.send();
    assert.equal(a.attrs.type, 'terminate');
    assert.equal(a.attrs.condition, 'item-not-found');
    const gone = await postRaw(url, `<body xmlns='${NS_HTTPBIND}' sid='${c.sid}' rid='${c.rid - 3}'/>`);
    assert.equal(gone.attrs.type, 'terminate');
  });

  test('a gap never filled ends the session after inactivity; the request waiting behind it is answered', async () => {
    const c = new BoshRaw(url);
    await c.create({ hold: 1 });
    c.rid++; // the next request skips one rid
    const t0 = Date.now();
    const a = await c.send();
    assert.equal(a.attrs.type, 'terminate');
    // inactivity is 1 s on this server.
    assert.ok(Date.now() - t0 >= 900, `answered after ${Date.now() - t0} ms`);
  });

  test('an old rid no longer cached is item-not-found', async () => {
    const c = new BoshRaw(url);
    await c.create({ hold: 1, wait: 1 });
    const start = c.rid;
    for (let i = 0; i < 4; i++) await c.send('', {}).catch(() => undefined);
    const old = await postRaw(url, `<body xmlns='${NS_HTTPBIND}' sid='${c.sid}' rid='${start - 1}'/>`);
    assert.equal(old.attrs.condition, 'item-not-found');
  });
});

describe('wait, hold, pause, polling, inactivity', () => {
  test('a held request is answered empty after wait seconds', async () => {
    const c = new BoshRaw(url);
    await c.create({ wait: 1, hold: 1 });
    const t0 = Date.now();
    const a = await c.send();
    const took = Date.now() - t0;
    assert.equal(a.elements.length, 0);
    assert.equal(a.attrs.type, undefined);
    assert.ok(took >= 900 && took < 5000, `answered after ${took} ms`);
    await c.send('', { type: 'terminate' });
  });

  test('beyond hold, the oldest held request is answered at once', async () => {
    const c = new BoshRaw(url);
    await c.create({ wait: 20, hold: 1 });
    const first = postRaw(url, c.body().text);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const second = postRaw(url, c.body().text);
    await first;
    assert.ok(Date.now() - t0 < 2000, 'the first was answered when the second arrived');
    // Terminating answers the second.
    await c.send('', { type: 'terminate' });
    await second;
  });

  test('pause answers every held request and keeps the session beyond inactivity', async () => {
    const c = new BoshRaw(url);
    await c.create({ wait: 20, hold: 1 });
    await c.login('bob', 'bob-pass');
    const held = postRaw(url, c.body().text);
    await new Promise((r) => setTimeout(r, 100));
    const p = await c.send('', { pause: 3 });
    await held;
    assert.equal(p.attrs.type, undefined);
    // Longer than inactivity (1 s), well within the pause (3 s).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(sessionsOf('bob@localhost'), 1, 'the session survives the pause');
    const back = await c.until((a) => ids(a).includes('back'), ping('back'));
    assert.ok(back);
    await c.send('', { type: 'terminate' });
    await waitUntil(() => sessionsOf('bob@localhost') === 0, 'the session to end');
  });

  test('a polling client (hold 0) that polls faster than polling seconds is policy-violation', async () => {
    const c = new BoshRaw(url);
    const created = await c.create({ hold: 0 });
    assert.equal(created.attrs.hold, '0');
    const first = await c.send();
    assert.equal(first.attrs.type, undefined);
    const second = await c.send();
    assert.equal(second.attrs.type, 'terminate');
    assert.equal(second.attrs.condition, 'policy-violation');
  });

  test('an expired session runs the clean-up of a dropped connection: the contact sees it go', async () => {
    const roster = srv.server.storage.roster;
    const both = { subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: [] };
    await roster.setItem('localhost', 'alice', { jid: 'bob@localhost', ...both });
    await roster.setItem('localhost', 'bob', { jid: 'alice@localhost', ...both });
    const watcher = new BoshRaw(url);
    await watcher.create({ wait: 20, hold: 1 });
    await watcher.login('bob', 'bob-pass');
    await watcher.send("<presence xmlns='jabber:client'/>");
    const leaver = new BoshRaw(url);
    await leaver.create({ wait: 1, hold: 1 });
    const jid = await leaver.login('alice', 'alice-pass');
    await leaver.send("<presence xmlns='jabber:client'/>");
    await watcher.until((a) => a.elements.some((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === undefined));
    // alice stops polling; inactivity is 1 s.
    const gone = await watcher.until((a) => a.elements.some((e) => e.name === 'presence' && e.attrs.from === jid && e.attrs.type === 'unavailable'));
    assert.ok(gone);
    assert.equal(sessionsOf('alice@localhost'), 0);
    const late = await leaver.send();
    assert.equal(late.attrs.type, 'terminate');
    await watcher.send('', { type: 'terminate' });
    await roster.removeItem('localhost', 'alice', 'bob@localhost');
    await roster.removeItem('localhost', 'bob', 'alice@localhost');
  });
});

describe('HTTP around BOSH', () => {
  test('CORS: a preflight is answered, and answers carry Access-Control-Allow-Origin', async () => {
    const pre = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://chat.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
    const res = await fetch(url, { method: 'POST', body: `<body xmlns='${NS_HTTPBIND}' sid='x' rid='1'/>`, headers: { Origin: 'https://chat.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('content-type') ?? '', /^text\/xml/);
  });

  test('GET is not BOSH; a body larger than twice max_stanza_bytes is refused with 413', async () => {
    assert.equal((await fetch(url)).status, 405);
    const big = await fetch(url, { method: 'POST', body: 'x'.repeat(2 * 262144 + 10) }).catch(() => undefined);
    assert.ok(big === undefined || big.status === 413);
  });
});
