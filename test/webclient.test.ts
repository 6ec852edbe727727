// The web client served at / (http.web_client): Debian's Chromium, driven by
// Playwright, opens the page, logs in with Converse.js's own login form over
// WebSocket, receives a message from a slixmpp user on TCP and answers it in
// the chat box (the slixmpp run passes only once that answer reached it). Every request the page makes goes to this server. A screenshot
// of the conversation is saved in test/artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from './support/server.js';
import { runSlixmppScript, slixmppMissing } from './support/slixmpp.js';

const CHROMIUM = '/usr/bin/chromium';
// CI installs Chromium (.ci/run): there a missing browser is a failure, not a skip.
const skip = existsSync(CHROMIUM) || process.env.CI ? slixmppMissing() : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WAIT = 30_000;

let srv: TestServer;
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 } });
  await srv.addUser('web', 'web-pass');
  await srv.addUser('tcp', 'tcp-pass');
  const both = { subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: [] };
  await srv.server.storage.roster.setItem('localhost', 'web', { jid: 'tcp@localhost', ...both });
  await srv.server.storage.roster.setItem('localhost', 'tcp', { jid: 'web@localhost', ...both });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await srv.stop();
});

test('Converse.js from / logs in over WebSocket and chats with a slixmpp user on TCP', { skip }, async () => {
  const base = `http://127.0.0.1:${srv.server.portOf('http')}`;
  const context = await browser!.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const elsewhere: string[] = [];
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(base) && !url.startsWith(base.replace('http:', 'ws:')) && !url.startsWith('data:') && !url.startsWith('blob:')) elsewhere.push(url);
  });
  const failed: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(`${base}/`);
    // Converse's own login form.
    await page.locator('input[name="jid"]').fill('web@localhost', { timeout: WAIT });
    await page.locator('input[name="password"]').fill('web-pass');
    await page.locator('converse-login-form button[type="submit"]').first().click();

    // The server's side: a WebSocket carries the session once Converse has logged in.
    const deadline = Date.now() + WAIT;
    while (srv.server.router.getSessions('web@localhost').length === 0) {
      assert.ok(Date.now() < deadline, 'the web user never bound a session');
      await new Promise((r) => setTimeout(r, 100));
    }
    const webJid = srv.server.router.getSessions('web@localhost')[0]!.jid.toString();

    // slixmpp (TCP, STARTTLS) sends to the web user and waits for the answer typed in the page.
    const slix = runSlixmppScript(
      ['--port', String(srv.port), '--jid', 'tcp@localhost', '--password', 'tcp-pass', '--peer', 'web@localhost', '--ca', join(srv.dir, 'data', 'tls', 'self-signed.crt'),
        '--body', 'Hello from slixmpp', '--reply-timeout', String(WAIT / 1000), '--timeout', String((2 * WAIT) / 1000)],
      3 * WAIT,
    );
    // The roster re-renders as the unread message arrives: click once it shows it, until the chat opens.
    await page.locator('converse-roster').getByText('New messages').waitFor({ timeout: WAIT });
    const chatBox = page.locator('textarea.chat-textarea').first();
    for (let attempt = 0; attempt < 5 && !(await chatBox.isVisible()); attempt++) {
      await page.locator('converse-roster').getByText('tcp@localhost').first().click({ timeout: WAIT });
      await chatBox.waitFor({ timeout: 3000 }).catch(() => undefined);
    }
    await page.locator('.chat-msg__text', { hasText: 'Hello from slixmpp' }).first().waitFor({ timeout: WAIT });

    // The answer typed in the chat box reaches the slixmpp user.
    const box = page.locator('textarea.chat-textarea').first();
    await box.fill('Hello from Converse.js');
    await box.press('Enter');
    const run = await slix;
    const reply = run.get('reply');
    assert.equal(reply.body, 'Hello from Converse.js', run.output);
    assert.equal(reply.from, webJid);
    assert.equal(run.code, 0, run.output);
    await page.locator('.chat-msg__text', { hasText: 'Hello from Converse.js' }).first().waitFor({ timeout: WAIT });
    await page.screenshot({ path: join(ARTIFACTS, 'webclient-conversation.png') });

    assert.deepEqual(elsewhere, [], 'the page requested nothing from another site');
    assert.deepEqual(failed, [], 'every file the page asked for was there');
    assert.deepEqual(errors, [], 'no uncaught errors in the page');
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, 'webclient-failure.png') }).catch(() => undefined);
    throw err;
  } finally {
    await context.close();
  }
});
