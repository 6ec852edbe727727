// The three ways in, side by side on one server: a TCP user (xmpp.js), a
// WebSocket user (xmpp.js over ws://, RFC 7395) and a BOSH user (Strophe.js,
// XEP-0206). Each logs in, sees the others' presence, exchanges messages with
// both, and logs out; closing the WebSocket sends unavailable presence to the
// contacts at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { WebSocket } from 'ws';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, startXmppJs, trustCertificate, withTimeout, xml, type XmppJsSession } from './support/xmppjs.js';

// Strophe's BOSH transport uses the browser's XMLHttpRequest (xhr2 is one for Node, but
// without responseXML, which Strophe reads: it is added here with the DOMParser Strophe's
// Node build uses), and xmpp.js the WebSocket global of browsers (and of Node 22); Node 20
// has neither.
const require = createRequire(import.meta.url);
const Xhr2 = require('xhr2') as new () => { readyState: number; responseText: string };
const { DOMParser } = require('@xmldom/xmldom') as { DOMParser: new () => { parseFromString(text: string, type: string): unknown } };
class XhrWithXml extends Xhr2 {
  get responseXML(): unknown {
    return this.readyState === 4 && this.responseText ? new DOMParser().parseFromString(this.responseText, 'text/xml') : null;
  }
}
(globalThis as Record<string, unknown>).XMLHttpRequest ??= XhrWithXml;
(globalThis as Record<string, unknown>).WebSocket ??= WebSocket;
const STROPHE = 'strophe.js';
// Imported after the globals are in place; through a variable, as its Node types pull in DOM ones.
const { Strophe, $msg, $pres } = (await import(STROPHE)) as StropheModule;

interface StropheElement {
  getAttribute(name: string): string | null;
  getElementsByTagName(name: string): { length: number; item(i: number): { textContent: string | null } | null };
  tagName: string;
}
interface StropheConnection {
  jid: string;
  connect(jid: string, pass: string, cb: (status: number, condition?: string) => void): void;
  disconnect(reason?: string): void;
  send(el: unknown): void;
  addHandler(fn: (el: StropheElement) => boolean, ns: string | null, name: string | null, type?: string | null): unknown;
}
interface StropheModule {
  Strophe: { Connection: new (url: string, opts?: Record<string, unknown>) => StropheConnection; Status: Record<"CONNECTED" | "DISCONNECTED" | "AUTHFAIL" | "CONNFAIL", number> };
  $msg(attrs: Record<string, string>): { c(name: string, attrs?: Record<string, string>): { t(text: string): unknown } };
  $pres(attrs?: Record<string, string>): unknown;
}

let srv: TestServer;
let restoreTls: () => void;
const WAIT = 10_000;

before(async () => {
  // No XEP-0198 resumption: a dropped connection ends its session at once (with resumption the
  // session would wait resume_timeout for its client, as over TCP).
  srv = await startTestServer({ http: { host: '127.0.0.1', port: 0 }, stream_management: { resume_timeout: 0 } });
  const both = { subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: [] };
  const users = ['tcp', 'web', 'bosh'];
  for (const u of users) {
    await srv.addUser(u, `${u}-pass`);
    for (const other of users) if (other !== u) await srv.server.storage.roster.setItem('localhost', u, { jid: `${other}@localhost`, ...both });
  }
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  restoreTls();
  await srv.stop();
});

/** A Strophe.js client over BOSH, with what it received. */
class StropheUser {
  readonly conn: StropheConnection;
  readonly stanzas: StropheElement[] = [];
  private waiters: (() => void)[] = [];
  statuses: number[] = [];

  constructor(url: string) {
    this.conn = new Strophe.Connection(url);
    this.conn.addHandler(
      (el) => {
        this.stanzas.push(el);
        for (const w of this.waiters.splice(0)) w();
        return true;
      },
      null,
      null,
    );
  }

  login(jid: string, pass: string): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve, reject) => {
        this.conn.connect(jid, pass, (status, condition) => {
          this.statuses.push(status);
          if (status === Strophe.Status.CONNECTED) resolve();
          else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL) reject(new Error(`Strophe: status ${status} ${condition ?? ''}`));
        });
      }),
      WAIT,
      'Strophe to connect over BOSH',
    );
  }

  logout(): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (this.statuses.includes(Strophe.Status.DISCONNECTED)) {
            clearInterval(check);
            resolve();
          }
        }, 20);
        this.conn.disconnect('bye');
      }),
      WAIT,
      'Strophe to disconnect',
    );
  }

  async next(pred: (el: StropheElement) => boolean, what: string): Promise<StropheElement> {
    const deadline = Date.now() + WAIT;
    for (;;) {
      const i = this.stanzas.findIndex(pred);
      if (i >= 0) return this.stanzas.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
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

const bodyOf = (el: StropheElement): string | null => el.getElementsByTagName('body').item(0)?.textContent ?? null;
const presenceFrom = (session: XmppJsSession, jid: string, type?: string) =>
  session.nextStanza((el) => el.is('presence') && el.attrs.from === jid && el.attrs.type === type, `presence${type ? ` ${type}` : ''} from ${jid}`, WAIT);

test('a TCP, a WebSocket and a BOSH user see each other and chat; the WebSocket and BOSH users leave', async () => {
  const httpPort = srv.server.portOf('http');
  const tcp = await startXmppJs({ port: srv.port, username: 'tcp', password: 'tcp-pass' });
  const web = await startXmppJs({ port: httpPort, service: `ws://127.0.0.1:${httpPort}/xmpp-websocket`, username: 'web', password: 'web-pass' });
  const bosh = new StropheUser(`http://127.0.0.1:${httpPort}/http-bind`);
  try {
    await tcp.xmpp.send(xml('presence'));
    await web.xmpp.send(xml('presence'));
    await bosh.login('bosh@localhost', 'bosh-pass');
    const boshJid = bosh.conn.jid;
    assert.match(boshJid, /^bosh@localhost\//);
    bosh.conn.send($pres());

    // Presence: everyone sees everyone (RFC 6121 §4.2: the initial presence goes to the contacts).
    await presenceFrom(tcp, web.jid);
    await presenceFrom(tcp, boshJid);
    await presenceFrom(web, tcp.jid);
    await presenceFrom(web, boshJid);
    await bosh.next((el) => el.tagName === 'presence' && el.getAttribute('from') === tcp.jid, 'presence of the TCP user at BOSH');
    await bosh.next((el) => el.tagName === 'presence' && el.getAttribute('from') === web.jid, 'presence of the WebSocket user at BOSH');

    // Messages across every pair.
    bosh.conn.send($msg({ to: tcp.jid, type: 'chat', id: 'b2t' }).c('body').t('bosh to tcp'));
    bosh.conn.send($msg({ to: web.jid, type: 'chat', id: 'b2w' }).c('body').t('bosh to web'));
    await web.xmpp.send(xml('message', { to: boshJid, type: 'chat', id: 'w2b' }, xml('body', {}, 'web to bosh')));
    await web.xmpp.send(xml('message', { to: tcp.jid, type: 'chat', id: 'w2t' }, xml('body', {}, 'web to tcp')));
    await tcp.xmpp.send(xml('message', { to: boshJid, type: 'chat', id: 't2b' }, xml('body', {}, 'tcp to bosh')));
    await tcp.xmpp.send(xml('message', { to: web.jid, type: 'chat', id: 't2w' }, xml('body', {}, 'tcp to web')));
    assert.equal((await tcp.nextStanza((el) => el.attrs.id === 'b2t', 'b2t', WAIT)).getChildText('body'), 'bosh to tcp');
    assert.equal((await web.nextStanza((el) => el.attrs.id === 'b2w', 'b2w', WAIT)).getChildText('body'), 'bosh to web');
    assert.equal((await tcp.nextStanza((el) => el.attrs.id === 'w2t', 'w2t', WAIT)).getChildText('body'), 'web to tcp');
    assert.equal((await web.nextStanza((el) => el.attrs.id === 't2w', 't2w', WAIT)).getChildText('body'), 'tcp to web');
    assert.equal(bodyOf(await bosh.next((el) => el.getAttribute('id') === 'w2b', 'w2b at BOSH')), 'web to bosh');
    assert.equal(bodyOf(await bosh.next((el) => el.getAttribute('id') === 't2b', 't2b at BOSH')), 'tcp to bosh');

    // Closing the WebSocket (no <close/>, no unavailable presence) is a dropped connection: contacts hear at once.
    const webJid = web.jid;
    (web.xmpp.socket as unknown as { socket: WebSocket }).socket.terminate();
    await presenceFrom(tcp, webJid, 'unavailable');
    await bosh.next((el) => el.tagName === 'presence' && el.getAttribute('from') === webJid && el.getAttribute('type') === 'unavailable', 'unavailable from the WebSocket user at BOSH');

    // Strophe's logout: unavailable presence and a terminate body.
    await bosh.logout();
    await presenceFrom(tcp, boshJid, 'unavailable');
    assert.equal(srv.server.router.getSessions('bosh@localhost').length, 0);
  } finally {
    await web.xmpp.stop().catch(() => undefined);
    await tcp.xmpp.stop();
  }
});
