// XEP-0363 with a real client library: slixmpp's xep_0363 plugin finds the upload
// service through disco, gets a slot and PUTs a file with aiohttp, then sends the GET
// URL in a message (XEP-0066 oob); another client (raw XML) receives it and downloads
// the file over HTTP, byte-identical.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer } from './support/server.js';
import { login } from './support/login.js';
import { PYTHON, slixmppMissing, scriptEvents, type ScriptEvent } from './support/slixmpp.js';

const SCRIPT = join(import.meta.dirname, 'slixmpp', 'upload_client.py');

function runScript(args: string[]): Promise<{ code: number | null; events: ScriptEvent[]; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const backstop = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(backstop);
      const events = scriptEvents(out);
      resolve({ code, events, output: out + err });
    });
  });
}

test('slixmpp uploads a file; another client downloads it byte-identical', { skip: slixmppMissing() }, async () => {
  const srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 } });
  try {
    await srv.addUser('alice', 'alice-pass');
    await srv.addUser('bob', 'bob-pass');
    const bob = await login(srv.port, 'bob', 'bob-pass');
    bob.client.send(`<presence/>`);
    const data = randomBytes(200_000);
    const file = join(srv.dir, 'holiday photo.jpg');
    writeFileSync(file, data);
    const received = bob.client.waitFor((el) => el.name === 'message' && el.getChild('body') !== undefined, 'the message with the URL', 20_000);
    const run = await runScript([
      '--port', String(srv.port),
      '--jid', 'alice@localhost',
      '--password', 'alice-pass',
      '--ca', join(srv.dir, 'data', 'tls', 'self-signed.crt'),
      '--peer', 'bob@localhost',
      '--file', file,
    ]);
    assert.equal(run.code, 0, run.output);
    const uploaded = run.events.find((e) => e.event === 'uploaded');
    assert.ok(uploaded, run.output);
    assert.equal(uploaded.service, 'upload.localhost');
    assert.equal(uploaded.max_file_size, 100 * 1024 * 1024);
    const msg = await received;
    const url = msg.getChildText('body')!;
    assert.equal(url, uploaded.url);
    assert.equal(msg.getChild('x', 'jabber:x:oob')?.getChildText('url', 'jabber:x:oob'), url);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    // slixmpp guessed the type from the name; the server serves it back.
    assert.equal(res.headers.get('content-type'), 'image/jpeg');
    assert.match(res.headers.get('content-disposition') ?? '', /^inline; filename="holiday photo.jpg"/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(data), 'byte-identical');
    bob.client.close();
  } finally {
    await srv.stop();
  }
});
