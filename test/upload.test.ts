// XEP-0363 HTTP file upload against a real server: the service in disco, slots,
// the PUT and GET URLs over real HTTP (byte-identical, ranges, headers), every
// refusal (size, quota, length, type, a second PUT, a bad signature, an expired
// URL), quota kept across a restart, the expiry job, `shoal upload purge` and
// `shoal user del` removing files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { iq, stanzaErrorCondition as condition } from './support/raw-client.js';
import { waitUntil, waitUntilAsync } from './support/xmppjs.js';
import { runShoal, shoalOk } from './support/cli.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { UploadApi } from '../src/modules/upload/api.js';

const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const MAX = 4000;
const QUOTA = 10_000;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request with exactly these headers and body (fetch would set Content-Length itself). */
function request(url: string, method: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    // The server may answer and close before reading a body it refuses.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
    req.end(body);
  });
}

async function slotRequest(c: LoggedIn, attrs: Record<string, string>, to = 'upload.localhost'): Promise<Element> {
  const a = Object.entries(attrs)
    .map(([k, v]) => `${k}='${v}'`)
    .join(' ');
  return iq(c.client, `type='get' to='${to}'`, `<request xmlns='${NS_UPLOAD}' ${a}/>`);
}

async function slot(c: LoggedIn, filename: string, size: number, type?: string): Promise<{ put: string; get: string }> {
  const r = await slotRequest(c, { filename, size: String(size), ...(type ? { 'content-type': type } : {}) });
  assert.equal(r.attrs.type, 'result', r.toString());
  const s = r.getChild('slot', NS_UPLOAD);
  const put = s?.getChild('put', NS_UPLOAD)?.attrs.url;
  const get = s?.getChild('get', NS_UPLOAD)?.attrs.url;
  assert.ok(put && get, r.toString());
  return { put, get };
}

function put(url: string, body: Buffer, type?: string, length = body.length): Promise<Reply> {
  return request(url, 'PUT', { 'Content-Length': String(length), ...(type ? { 'Content-Type': type } : {}) }, body);
}

let srv: TestServer;
let alice: LoggedIn;
before(async () => {
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 }, upload: { max_file_bytes: MAX, quota_bytes: QUOTA } });
  for (const u of ['alice', 'bob', 'quinn', 'dora']) await srv.addUser(u, `${u}-pass`);
  alice = await login(srv.port, 'alice', 'alice-pass');
});
after(async () => {
  alice.client.close();
  await srv.stop();
});

test('disco: the host lists upload.localhost; its info has store/file, the feature and max-file-size (§2)', async () => {
  const items = await iq(alice.client, `type='get' to='localhost'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
  const jids = items.getChild('query', NS.DISCO_ITEMS)?.getChildren('item').map((i) => i.attrs.jid) ?? [];
  assert.ok(jids.includes('upload.localhost'), items.toString());
  const info = await iq(alice.client, `type='get' to='upload.localhost'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
  const q = info.getChild('query', NS.DISCO_INFO)!;
  const identity = q.getChild('identity')!;
  assert.deepEqual([identity.attrs.category, identity.attrs.type], ['store', 'file']);
  assert.ok(q.getChildren('feature').some((f) => f.attrs.var === NS_UPLOAD));
  const form = q.getChild('x', 'jabber:x:data')!;
  const field = (v: string): string | undefined => form.getChildren('field').find((f) => f.attrs.var === v)?.getChildText('value');
  assert.equal(field('FORM_TYPE'), NS_UPLOAD);
  assert.equal(field('max-file-size'), String(MAX));
});

test('slot, PUT, GET byte-identical, HEAD, ranges, headers', async () => {
  const data = randomBytes(3000);
  const { put: putUrl, get: getUrl } = await slot(alice, 'très cool.png', data.length, 'image/png');
  assert.match(getUrl, /^http:\/\/127\.0\.0\.1:\d+\/upload\/[A-Za-z0-9_-]{22}\/[A-Za-z0-9_-]+\/tr%C3%A8s%20cool\.png$/);
  assert.ok(putUrl.startsWith(getUrl + '?'));
  // Not there before the PUT.
  assert.equal((await request(getUrl, 'GET')).status, 404);
  const stored = await put(putUrl, data, 'image/png');
  assert.equal(stored.status, 201);

  const got = await request(getUrl, 'GET', { Origin: 'https://web.example' });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(data), 'byte-identical');
  assert.equal(got.headers['content-type'], 'image/png');
  assert.equal(got.headers['content-length'], '3000');
  assert.equal(got.headers['accept-ranges'], 'bytes');
  assert.equal(got.headers['content-disposition'], `inline; filename="tr_s cool.png"; filename*=UTF-8''tr%C3%A8s%20cool.png`);
  assert.equal(got.headers['x-content-type-options'], 'nosniff');
  assert.equal(got.headers['access-control-allow-origin'], '*');

  const head = await request(getUrl, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '3000');
  assert.equal(head.body.length, 0);

  // RFC 9110 §14: one range, an open one, a suffix, and one past the end.
  const part = await request(getUrl, 'GET', { Range: 'bytes=100-199' });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], 'bytes 100-199/3000');
  assert.equal(part.headers['content-length'], '100');
  assert.ok(part.body.equals(data.subarray(100, 200)));
  const tail = await request(getUrl, 'GET', { Range: 'bytes=2990-' });
  assert.ok(tail.body.equals(data.subarray(2990)));
  const suffix = await request(getUrl, 'GET', { Range: 'bytes=-5' });
  assert.equal(suffix.headers['content-range'], 'bytes 2995-2999/3000');
  assert.ok(suffix.body.equals(data.subarray(2995)));
  const beyond = await request(getUrl, 'GET', { Range: 'bytes=3000-' });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers['content-range'], 'bytes */3000');

  // CORS preflight for a PUT from a web page (the rest of the HTTP server's rules).
  const pre = await request(putUrl, 'OPTIONS', { Origin: 'https://web.example', 'Access-Control-Request-Method': 'PUT' });
  assert.equal(pre.status, 204);
  assert.match(String(pre.headers['access-control-allow-methods']), /PUT/);

  // A second PUT to the same slot is refused and changes nothing.
  assert.equal((await put(putUrl, randomBytes(3000), 'image/png')).status, 409);
  assert.ok((await request(getUrl, 'GET')).body.equals(data));
});

test('a type that is not shown inline is an attachment; a slot without type gets the PUT type', async () => {
  const html = Buffer.from('<script>alert(1)</script>');
  const a = await slot(alice, '../../evil&#9;.html', html.length, 'text/html');
  assert.match(a.get, /\/evil\.html$/, 'path and control characters stripped from the name');
  assert.equal((await put(a.put, html, 'text/html')).status, 201);
  const got = await request(a.get, 'GET');
  assert.equal(got.headers['content-type'], 'text/html');
  assert.match(String(got.headers['content-disposition']), /^attachment; filename="evil.html"/);
  assert.match(String(got.headers['content-security-policy']), /sandbox/);
  const svg = await slot(alice, 'x.svg', 5, 'image/svg+xml');
  assert.equal((await put(svg.put, Buffer.from('<svg/'), 'image/svg+xml')).status, 201);
  assert.match(String((await request(svg.get, 'GET')).headers['content-disposition']), /^attachment;/);
  const untyped = await slot(alice, 'notes.txt', 3);
  assert.equal((await put(untyped.put, Buffer.from('abc'), 'text/plain')).status, 201);
  assert.equal((await request(untyped.get, 'GET')).headers['content-type'], 'text/plain');
});

test('over-size: file-too-large with the limit (§5); bad requests', async () => {
  const r = await slotRequest(alice, { filename: 'big.bin', size: String(MAX + 1) });
  assert.equal(condition(r), 'not-acceptable');
  assert.equal(r.getChild('error')?.attrs.type, 'modify');
  assert.equal(r.getChild('error')?.getChild('file-too-large', NS_UPLOAD)?.getChildText('max-file-size', NS_UPLOAD), String(MAX));
  assert.equal(condition(await slotRequest(alice, { filename: 'a.bin' })), 'bad-request');
  assert.equal(condition(await slotRequest(alice, { filename: 'a.bin', size: '-1' })), 'bad-request');
  assert.equal(condition(await slotRequest(alice, { filename: 'a.bin', size: '1', 'content-type': 'not a type' })), 'bad-request');
  // Only IQ-get with a request: anything else is not served.
  assert.equal(condition(await iq(alice.client, `type='set' to='upload.localhost'`, `<request xmlns='${NS_UPLOAD}' filename='a' size='1'/>`)), 'service-unavailable');
});

test('PUT refused: wrong length, too long, wrong type, bad signatures, unknown slot', async () => {
  const data = randomBytes(1000);
  const s = await slot(alice, 'a.bin', 1000, 'application/octet-stream');
  assert.equal((await put(s.put, data.subarray(0, 999), 'application/octet-stream')).status, 400, 'short Content-Length');
  assert.equal((await put(s.put, Buffer.concat([data, data.subarray(0, 1)]), 'application/octet-stream')).status, 413, 'long Content-Length');
  assert.equal((await put(s.put, data, 'image/png')).status, 400, 'other Content-Type');
  assert.equal((await put(s.put, data)).status, 400, 'no Content-Type');
  assert.equal((await request(s.put, 'PUT', { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' }, data)).status, 411);
  // The PUT URL's signature binds its expiry; the path's signature binds the slot and name.
  const u = new URL(s.put);
  u.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 3600));
  assert.equal((await put(u.toString(), data, 'application/octet-stream')).status, 403, 'expiry changed');
  const noSig = new URL(s.put);
  noSig.search = '';
  assert.equal((await put(noSig.toString(), data, 'application/octet-stream')).status, 403, 'no PUT signature');
  const tampered = s.put.replace(/\/upload\/([^/]+)\/([^/]+)\//, (_m, id: string, sig: string) => `/upload/${id}/${sig.slice(0, -2)}AA/`);
  assert.equal((await put(tampered, data, 'application/octet-stream')).status, 403, 'path signature changed');
  const renamed = s.get.replace(/a\.bin$/, 'b.bin');
  assert.equal((await request(renamed, 'GET')).status, 403, 'name changed');
  assert.equal((await request(s.get.replace(/\/upload\/[^/]{22}\//, `/upload/${'A'.repeat(22)}/`), 'GET')).status, 403, 'other id');
  // After all that, the right PUT still works, once.
  assert.equal((await put(s.put, data, 'application/octet-stream')).status, 201);
  assert.ok((await request(s.get, 'GET')).body.equals(data));
  assert.equal((await request(s.get, 'DELETE')).status, 405);
});

test('an upload cut off half-way leaves no file behind; the slot can then be used', async () => {
  const data = randomBytes(MAX);
  const s = await slot(alice, 'cut.bin', MAX, 'application/octet-stream');
  const dir = srv.server.module<UploadApi>('upload').dir;
  await new Promise<void>((resolve) => {
    const req = http.request(s.put, { method: 'PUT', headers: { 'Content-Length': String(MAX), 'Content-Type': 'application/octet-stream' } });
    req.on('error', () => resolve());
    // The first bytes, then (once the server is writing them to its temporary file) the connection drops.
    req.write(data.subarray(0, 1000), () => {
      waitUntil(() => readdirSync(join(dir, 'tmp')).length === 1, 'the upload to start').then(
        () => {
          req.destroy();
          resolve();
        },
        () => resolve(),
      );
    });
  });
  await waitUntil(() => readdirSync(join(dir, 'tmp')).length === 0, 'the temporary file to be removed');
  const id = new URL(s.get).pathname.split('/')[2]!;
  assert.ok(!existsSync(join(dir, id)));
  assert.equal((await request(s.get, 'GET')).status, 404);
  assert.equal((await put(s.put, data, 'application/octet-stream')).status, 201);
  assert.ok((await request(s.get, 'GET')).body.equals(data));
});

test('over-quota: resource-constraint (wait) with a retry stamp; kept across a restart', async () => {
  const q = await login(srv.port, 'quinn', 'quinn-pass');
  const stored: { get: string }[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await slot(q, `f${i}.bin`, MAX, 'application/octet-stream');
    assert.equal((await put(s.put, randomBytes(MAX), 'application/octet-stream')).status, 201);
    stored.push(s);
  }
  // An open slot counts too: 4000 + 4000 + 1500 = 9500.
  await slot(q, 'open.bin', 1500);
  const r = await slotRequest(q, { filename: 'more.bin', size: '1000' });
  assert.equal(condition(r), 'resource-constraint');
  assert.equal(r.getChild('error')?.attrs.type, 'wait');
  const stamp = r.getChild('error')?.getChild('retry', NS_UPLOAD)?.attrs.stamp;
  assert.ok(stamp && Date.parse(stamp) > Date.now() + 29 * 86_400_000, `retry stamp ${stamp}`);
  // Another user has a quota of their own.
  await slot(alice, 'fine.bin', 1000);
  q.client.close();
  alice.client.close();

  await srv.stop({ keep: true });
  srv = await startTestServer({}, { dir: srv.dir });
  alice = await login(srv.port, 'alice', 'alice-pass');
  const q2 = await login(srv.port, 'quinn', 'quinn-pass');
  assert.equal(condition(await slotRequest(q2, { filename: 'more.bin', size: '1000' })), 'resource-constraint');
  // The signing key is kept in data_dir: URLs given before the restart still work (on the new port).
  const port = srv.server.portOf('http');
  const again = await request(stored[0]!.get.replace(/:\d+\//, `:${port}/`), 'GET');
  assert.equal(again.status, 200);
  assert.equal(again.body.length, MAX);
  q2.client.close();
});

test('shoal user del removes the account\'s files and rows; shoal upload purge --before', async () => {
  const d = await login(srv.port, 'dora', 'dora-pass');
  const s = await slot(d, 'd.txt', 4, 'text/plain');
  assert.equal((await put(s.put, Buffer.from('dora'), 'text/plain')).status, 201);
  d.client.close();
  const dir = srv.server.module<UploadApi>('upload').dir;
  const id = new URL(s.get).pathname.split('/')[2]!;
  assert.ok(existsSync(join(dir, id)));
  await shoalOk(['user', 'del', 'dora@localhost'], { cwd: srv.dir });
  assert.ok(!existsSync(join(dir, id)), 'file removed');
  assert.equal((await request(s.get, 'GET')).status, 404);

  // purge --before a future date: every stored file goes; a bad date is a usage error.
  const files = readdirSync(dir).filter((f) => f !== 'tmp');
  assert.ok(files.length > 0);
  const bad = await runShoal(['upload', 'purge', '--before', 'yesterday'], { cwd: srv.dir });
  assert.equal(bad.code, 2, bad.stderr);
  const out = await shoalOk(['upload', 'purge', '--before', '2999-01-01'], { cwd: srv.dir });
  assert.match(out, /^deleted \d+ upload\(s\) stored before 2999-01-01T00:00:00.000Z/);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f !== 'tmp'),
    [],
  );
  // Quota is free again.
  const q = await login(srv.port, 'quinn', 'quinn-pass');
  await slot(q, 'after-purge.bin', 1000);
  q.client.close();
});

test('the expiry job deletes files once expire_after_days have passed', async () => {
  // One second of life, PUT URLs valid for three seconds (at least, whatever the time of the
  // request: the window between the unused slot and the quota check below must not close on a
  // loaded machine), a job every 200 ms.
  const short = await startTestServer({ http: { host: '127.0.0.1', port: 0 }, upload: { expire_after_days: 1 / 86400, cleanup_interval: 0.2, put_expiry: 3, quota_bytes: 15 } });
  try {
    await short.addUser('eve', 'eve-pass');
    const e = await login(short.port, 'eve', 'eve-pass');
    const s = await slot(e, 'e.bin', 10, 'application/octet-stream');
    assert.equal((await put(s.put, randomBytes(10), 'application/octet-stream')).status, 201);
    const dir = short.server.module<UploadApi>('upload').dir;
    const id = new URL(s.get).pathname.split('/')[2]!;
    assert.ok(existsSync(join(dir, id)));
    assert.equal((await request(s.get, 'GET')).status, 200);
    await waitUntil(() => !existsSync(join(dir, id)), 'the expired file to be deleted by the job', 5000);
    assert.equal((await request(s.get, 'GET')).status, 404);
    // Its row went too: a pass finds nothing more. The first call may join the job's own pass,
    // still in flight when the file is gone (it removes the row after the file), and return what
    // that pass removed; the pass after it must find nothing. (The quota check below shows the
    // expired file's bytes no longer count.)
    const upload = short.server.module<UploadApi>('upload');
    await upload.cleanup();
    assert.equal(await upload.cleanup(), 0);
    // A PUT URL stops working after put_expiry (403), and its unused slot no longer holds quota.
    const unused = await slot(e, 'late.bin', 15, 'application/octet-stream');
    assert.equal(condition(await slotRequest(e, { filename: 'x', size: '1' })), 'resource-constraint');
    // Until it expires, a PUT with the wrong type gets 400; from then on, 403 before any other check.
    await waitUntilAsync(async () => (await put(unused.put, randomBytes(15), 'text/plain')).status === 403, 'the PUT URL to expire', 10_000);
    assert.equal((await put(unused.put, randomBytes(15), 'application/octet-stream')).status, 403);
    await slot(e, 'x', 15);
    e.client.close();
  } finally {
    await short.stop();
  }
});

test('upload: false, or no HTTP listener: no service', async () => {
  const off = await startTestServer({ http: { host: '127.0.0.1', port: 0 }, upload: false });
  try {
    await off.addUser('amy', 'amy-pass');
    const a = await login(off.port, 'amy', 'amy-pass');
    const items = await iq(a.client, `type='get' to='localhost'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
    assert.ok(!items.toString().includes('upload.localhost'));
    assert.equal(condition(await slotRequest(a, { filename: 'a', size: '1' })), 'remote-server-not-found');
    a.client.close();
  } finally {
    await off.stop();
  }
  const plain = await startTestServer({});
  try {
    await plain.addUser('amy', 'amy-pass');
    const a = await login(plain.port, 'amy', 'amy-pass');
    const items = await iq(a.client, `type='get' to='localhost'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
    assert.ok(!items.toString().includes('upload.localhost'));
    assert.ok(!existsSync(join(plain.dir, 'data', 'uploads')));
    a.client.close();
  } finally {
    await plain.stop();
  }
});
