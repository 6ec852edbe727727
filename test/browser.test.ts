// A real browser: Debian's Chromium, driven by Playwright (playwright-core,
// which downloads no browser), loads a page with Strophe.js's browser build that
// logs in over WebSocket (RFC 7395) and then over BOSH (XEP-0206), and chats
// with an xmpp.js user on TCP. A screenshot of each conversation is saved in
// test/artifacts/ (not committed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, startXmppJs, trustCertificate, xml, type XmppJsSession } from './support/xmppjs.js';

const CHROMIUM = '/usr/bin/chromium';
// CI installs Chromium (.ci/run): there a missing browser is a failure, not a skip.
const skip = existsSync(CHROMIUM) || process.env.CI ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const WAIT = 15_000;

let srv: TestServer;
let page: http.Server;
let pageBase: string;
let browser: Browser | undefined;
let restoreTls: () => void;
let tcp: XmppJsSession;

before(async () => {
  if (skip) return;
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 } });
  await srv.addUser('browser', 'browser-pass');
  await srv.addUser('tcp', 'tcp-pass');
  const both = { subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: [] };
  await srv.server.storage.roster.setItem('localhost', 'browser', { jid: 'tcp@localhost', ...both });
  await srv.server.storage.roster.setItem('localhost', 'tcp', { jid: 'browser@localhost', ...both });
  restoreTls = trustCertificate(serverCertificate(srv.dir));
  tcp = await startXmppJs({ port: srv.port, username: 'tcp', password: 'tcp-pass' });
  await tcp.xmpp.send(xml('presence'));
  // The page and Strophe's browser build, from another origin than the XMPP endpoints (CORS applies).
  const html = readFileSync(join(import.meta.dirname, 'browser', 'page.html'));
  const strophe = readFileSync(join(import.meta.dirname, '..', 'node_modules', 'strophe.js', 'dist', 'strophe.umd.min.js'));
  page = http.createServer((req, res) => {
    if (req.url?.startsWith('/strophe.umd.min.js')) res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(strophe);
    else if (req.url?.startsWith('/page.html')) res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  pageBase = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await tcp.xmpp.stop();
  page.close();
  restoreTls();
  await srv.stop();
});

interface PageState {
  status: string;
  jid: string | null;
  error: string | null;
}
interface Received {
  name: string;
  from: string | null;
  type: string | null;
  id: string | null;
  body: string | null;
}

describe('Chromium', { skip }, () => {
  for (const [name, path] of [
    ['WebSocket', '/xmpp-websocket'],
    ['BOSH', '/http-bind'],
  ] as const) {
    test(`a page logs in over ${name} and chats with a TCP user`, async () => {
      const httpPort = srv.server.portOf('http');
      const scheme = name === 'WebSocket' ? 'ws' : 'http';
      const service = `${scheme}://127.0.0.1:${httpPort}${path}`;
      const context = await browser!.newContext();
      const tab = await context.newPage();
      const consoleErrors: string[] = [];
      tab.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      try {
        const query = new URLSearchParams({ service, jid: 'browser@localhost', password: 'browser-pass' });
        await tab.goto(`${pageBase}/page.html?${query.toString()}`);
        await tab.waitForFunction(() => (globalThis as unknown as { state: PageState }).state.status === 'CONNECTED' || (globalThis as unknown as { state: PageState }).state.error !== null, undefined, { timeout: WAIT });
        const state = (await tab.evaluate(() => (globalThis as unknown as { state: PageState }).state)) as PageState;
        assert.equal(state.error, null, `login failed: ${state.error}; console: ${consoleErrors.join(' | ')}`);
        assert.match(state.jid ?? '', /^browser@localhost\//);
        const browserJid = state.jid!;

        // The TCP user sees the page come online, and they exchange messages.
        await tcp.nextStanza((el) => el.is('presence') && el.attrs.from === browserJid && el.attrs.type === undefined, 'the page online', WAIT);
        const id = `from-page-${name}`;
        await tab.evaluate(
          ({ to, mid, text }) => (globalThis as unknown as { sendChat(a: string, b: string, c: string): void }).sendChat(to, mid, text),
          { to: tcp.jid, mid: id, text: `hello from Chromium over ${name}` },
        );
        const atTcp = await tcp.nextStanza((el) => el.is('message') && el.attrs.id === id, 'the page message at the TCP user', WAIT);
        assert.equal(atTcp.getChildText('body'), `hello from Chromium over ${name}`);
        assert.equal(atTcp.attrs.from, browserJid);
        const replyId = `to-page-${name}`;
        await tcp.xmpp.send(xml('message', { to: browserJid, type: 'chat', id: replyId }, xml('body', {}, `hello browser (${name})`)));
        await tab.waitForFunction((rid) => (globalThis as unknown as { received: Received[] }).received.some((r) => r.id === rid), replyId, { timeout: WAIT });
        const got = (await tab.evaluate(() => (globalThis as unknown as { received: Received[] }).received)) as Received[];
        assert.equal(got.find((r) => r.id === replyId)?.body, `hello browser (${name})`);
        await tab.screenshot({ path: join(ARTIFACTS, `browser-${name.toLowerCase()}.png`), fullPage: true });

        // The page logs out (unavailable presence, then the stream's end): the TCP user sees it leave.
        await tab.evaluate(() => (globalThis as unknown as { conn: { disconnect(r: string): void } }).conn.disconnect('test over'));
        await tcp.nextStanza((el) => el.is('presence') && el.attrs.from === browserJid && el.attrs.type === 'unavailable', 'the page offline', WAIT);
      } finally {
        await context.close();
      }
    });
  }
});
