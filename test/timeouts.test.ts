// Dead-connection detection and clean-up (seed "Timeouts"; RFC 6120 §4.6;
// XEP-0199 §4.1 server-to-client pings): the pre-authentication limit, the idle
// ping and its timeout, whitespace keepalives, and that every way a session
// ends removes it from the registry and emits 'session-ended' exactly once.
//
// Two layers: a real server on loopback with sub-second timeouts, where every
// assertion waits for an event (the ping, the stream error, the close) and only
// checks lower bounds on elapsed time; and the C2S state machine on a fake
// transport under a mocked clock, for what real time cannot pin down exactly
// ("whitespace more often than ping_after is never pinged", a timer that fires late).
import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { startTestServer, type TestServer } from './support/server.js';
import { RawClient, STREAM_OPEN } from './support/raw-client.js';
import { login, scramAuth } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { EndReason } from '../src/core/session.js';
import { flush, hubOnMockedClock, type FakeTransport } from './support/harness.js';
import type { XmppServer } from '../src/server.js';
import { until } from './support/until.js';

/**
 * Timers count from libuv's loop time, cached when the current loop turn began, so one armed
 * late in a busy turn can fire a little before Date.now() says it is due. Lower bounds below
 * allow for that; the exact timing is pinned down on the mocked clock at the end of this file.
 */
const EARLY_MS = 25;

function isPing(el: Element): boolean {
  return el.name === 'iq' && el.xmlns === NS.CLIENT && el.attrs.type === 'get' && el.getChild('ping', NS.PING) !== undefined;
}

function isStreamError(el: Element): boolean {
  return el.name === 'error' && el.xmlns === NS.STREAM;
}

/** Polls a condition on the server side that has no event of its own (e.g. the connection count). */
interface Ended {
  id: string;
  jid: string;
  reason: EndReason;
  /** Whether the registry still held the session when the event fired (it must not). */
  stillRegistered: boolean;
}

/** Records every 'session-ended' event of a server. */
class SessionEnds {
  readonly events: Ended[] = [];
  private waiters: (() => void)[] = [];

  constructor(private readonly server: XmppServer) {
    server.dispatcher.on('session-ended', (s, reason) => {
      const jid = s.jid.toString();
      this.events.push({ id: s.id, jid, reason, stillRegistered: server.router.getSession(jid) === s });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  of(jid: string): Ended[] {
    return this.events.filter((e) => e.jid === jid);
  }

  /** Waits for the session bound to `jid` to end; returns its single event. */
  async waitFor(jid: string, timeoutMs = 5000): Promise<Ended> {
    const deadline = Date.now() + timeoutMs;
    while (this.of(jid).length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for session-ended of ${jid}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const evs = this.of(jid);
    assert.equal(evs.length, 1, `session-ended fired once for ${jid}`);
    assert.equal(evs[0]!.stillRegistered, false, 'the session left the registry before session-ended fired');
    assert.equal(this.server.router.getSession(jid), undefined);
    return evs[0]!;
  }

  /** Every session ended exactly once (no id twice). */
  assertEachOnce(): void {
    const ids = this.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `a session ended twice: ${JSON.stringify(this.events)}`);
  }
}

// ---------------------------------------------------------------------------
// Before authentication

describe('pre-authentication timeout (timeouts.pre_auth)', () => {
  const PRE_AUTH = 0.4;
  let srv: TestServer;
  let ends: SessionEnds;
  before(async () => {
    srv = await startTestServer({ timeouts: { pre_auth: PRE_AUTH, ping_after: 300, ping_timeout: 60 } });
    await srv.addUser('alice', 'alice-pass');
    ends = new SessionEnds(srv.server);
  });
  after(async () => {
    await srv.stop();
    // Nothing here was ever bound, so no session can have ended.
    assert.deepEqual(ends.events, []);
  });

  /** Connects and opens a stream up to its features; with `startTls`, also STARTTLS and the restarted stream's features. */
  async function openStream({ startTls }: { startTls: boolean }): Promise<RawClient> {
    const c = await RawClient.connect(srv.port);
    c.send(STREAM_OPEN());
    await c.header();
    await c.element('features');
    if (startTls) {
      await c.startTls();
      await c.restart();
    }
    return c;
  }

  async function expectTimeout(c: RawClient, since: number): Promise<void> {
    assert.equal(await c.streamError(5000), 'connection-timeout');
    assert.ok(Date.now() - since >= PRE_AUTH * 1000 - EARLY_MS, 'not before pre_auth elapsed');
    await c.streamEnd();
    await c.closedEvent();
    await until(() => srv.server.connectionCount === 0, 'the server to forget the connection');
    assert.equal(srv.server.router.size, 0);
  }

  test('a client that opens a stream and never authenticates is closed with connection-timeout', async () => {
    const since = Date.now();
    const c = await openStream({ startTls: false });
    await expectTimeout(c, since);
  });

  test('a client that connects and sends nothing gets a stream header, then connection-timeout', async () => {
    const since = Date.now();
    const c = await RawClient.connect(srv.port);
    // RFC 6120 §4.9.1.1: the error is sent inside a stream, so the server opens one first.
    const h = await c.header();
    assert.equal(h.attrs.from, 'localhost');
    await expectTimeout(c, since);
  });

  test('STARTTLS does not restart the pre-authentication clock', async () => {
    const since = Date.now();
    const c = await openStream({ startTls: true });
    await expectTimeout(c, since);
  });

  test('authenticated but never bound: still closed, and no session-ended (nothing was bound)', async () => {
    const since = Date.now();
    const c = await openStream({ startTls: true });
    await scramAuth(c, 'alice', 'alice-pass');
    const f = await c.restart();
    assert.ok(f.getChild('bind', NS.BIND));
    await expectTimeout(c, since);
    assert.deepEqual(ends.events, []);
  });

  test('TCP keepalive is enabled on accepted sockets', async (t: TestContext) => {
    const spy = t.mock.method(net.Socket.prototype, 'setKeepAlive');
    const c = await RawClient.connect(srv.port);
    c.send(STREAM_OPEN());
    await c.header();
    const local = c.socket.localPort;
    const call = spy.mock.calls.find((k) => (k.this as net.Socket).remotePort === local);
    assert.ok(call, 'setKeepAlive was called on the server side of this connection');
    assert.equal(call.arguments[0], true);
    // Where ss(8) exists, check the kernel really arms a keepalive timer on that socket.
    let ss: string | undefined;
    try {
      ss = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${srv.port} and dport = :${local} )`], { encoding: 'utf8' });
    } catch {
      t.diagnostic('ss(8) not available: kernel-level check skipped');
    }
    if (ss !== undefined) assert.match(ss, /timer:\(keepalive/, `ss shows a keepalive timer: ${ss}`);
    c.close();
    await until(() => srv.server.connectionCount === 0, 'the server to forget the connection');
  });
});

// ---------------------------------------------------------------------------
// After binding: idle pings

describe('idle pings (timeouts.ping_after / ping_timeout) and session clean-up', () => {
  const PRE_AUTH = 1;
  const PING_AFTER = 0.3;
  const PING_TIMEOUT = 0.3;
  let srv: TestServer;
  let ends: SessionEnds;
  before(async () => {
    srv = await startTestServer({ timeouts: { pre_auth: PRE_AUTH, ping_after: PING_AFTER, ping_timeout: PING_TIMEOUT } });
    await srv.addUser('alice', 'alice-pass');
    ends = new SessionEnds(srv.server);
  });
  after(async () => {
    await srv.stop();
    ends.assertEachOnce();
  });

  test('a silent client is pinged after ping_after and stays while it answers', async () => {
    // Bounds are measured from moments the server cannot have passed yet (here: before it bound the resource).
    const since = Date.now();
    const a = await login(srv.port, 'alice', 'alice-pass');
    assert.equal(srv.server.router.size, 1);
    const ping = await a.client.element(undefined, 5000);
    assert.ok(isPing(ping), `the first thing a silent client receives is a ping, got ${ping.toString()}`);
    assert.ok(Date.now() - since >= PING_AFTER * 1000 - EARLY_MS, 'not pinged before ping_after');
    // XEP-0199 §4.1: an IQ get from the server, addressed to the full JID, with an id to answer.
    assert.equal(ping.attrs.from, 'localhost');
    assert.equal(ping.attrs.to, a.jid);
    assert.ok(ping.attrs.id);
    assert.equal(ping.getChildren().length, 1);

    // Keep answering; the next thing must always be another ping, never the timeout. Going on
    // past pre_auth also shows binding disarmed the pre-authentication timer.
    let current = ping;
    let rounds = 0;
    while (Date.now() - since <= PRE_AUTH * 1000 || rounds < 2) {
      a.client.send(`<iq type='result' id='${current.attrs.id}' to='localhost'/>`);
      const answered = Date.now();
      const next = await a.client.element(undefined, 5000);
      assert.ok(isPing(next), `an answered client is pinged again, not dropped; got ${next.toString()}`);
      assert.ok(Date.now() - answered >= PING_AFTER * 1000 - EARLY_MS, 'the answer reset the idle clock');
      assert.notEqual(next.attrs.id, current.attrs.id, 'each ping has its own id');
      current = next;
      rounds++;
    }
    assert.equal(srv.server.router.getSession(a.jid)?.jid.toString(), a.jid, 'still registered');

    // RFC 6120 §4.4: the client closes its stream; the server closes its own.
    a.client.send(`<iq type='result' id='${current.attrs.id}' to='localhost'/></stream:stream>`);
    await a.client.streamEnd();
    await a.client.closedEvent();
    const ended = await ends.waitFor(a.jid);
    assert.equal(ended.reason, 'logout');
    assert.equal(srv.server.router.size, 0);
  });

  test('an unanswered ping closes the stream with connection-timeout after ping_timeout', async () => {
    const since = Date.now();
    const a = await login(srv.port, 'alice', 'alice-pass');
    const ping = await a.client.element(undefined, 5000);
    assert.ok(isPing(ping), ping.toString());
    const next = await a.client.element(undefined, 5000);
    assert.ok(isStreamError(next), `expected the stream error, got ${next.toString()}`);
    assert.ok(next.getChild('connection-timeout', NS.STREAM_ERRORS), next.toString());
    assert.ok(Date.now() - since >= (PING_AFTER + PING_TIMEOUT) * 1000 - 2 * EARLY_MS, 'not closed before ping_after + ping_timeout');
    await a.client.streamEnd();
    await a.client.closedEvent();
    const ended = await ends.waitFor(a.jid);
    assert.equal(ended.reason, 'timeout');
    assert.equal(srv.server.router.size, 0);
    await until(() => srv.server.connectionCount === 0, 'the server to forget the connection');
  });

  test('whitespace keepalives (\\r\\n) count as activity: they answer a ping and push the next one back', async () => {
    const a = await login(srv.port, 'alice', 'alice-pass');
    const ping = await a.client.element(undefined, 5000);
    assert.ok(isPing(ping), ping.toString());
    for (let i = 0; i < 2; i++) {
      // No IQ result: only a whitespace keepalive (RFC 6120 §4.6.1).
      a.client.send('\r\n');
      const sent = Date.now();
      const next = await a.client.element(undefined, 5000);
      assert.ok(isPing(next), `whitespace kept the stream alive; got ${next.toString()}`);
      assert.ok(Date.now() - sent >= PING_AFTER * 1000 - EARLY_MS, 'the next ping comes ping_after after the whitespace');
    }
    a.client.close();
    const ended = await ends.waitFor(a.jid);
    assert.ok(ended.reason === 'disconnect' || ended.reason === 'error', ended.reason);
  });

  test('an abrupt socket destroy ends the session once, as disconnect or error', async () => {
    const a = await login(srv.port, 'alice', 'alice-pass');
    const b = await login(srv.port, 'alice', 'alice-pass');
    assert.equal(srv.server.router.size, 2);
    a.client.close();
    const ended = await ends.waitFor(a.jid);
    assert.ok(ended.reason === 'disconnect' || ended.reason === 'error', ended.reason);
    assert.equal(srv.server.router.size, 1, 'only the destroyed session left the registry');
    assert.ok(srv.server.router.getSession(b.jid));
    assert.deepEqual(ends.of(b.jid), []);
    b.client.send('</stream:stream>');
    await b.client.closedEvent();
    assert.equal((await ends.waitFor(b.jid)).reason, 'logout');
    assert.equal(srv.server.router.size, 0);
  });
});

// ---------------------------------------------------------------------------
// The same state machine under a mocked clock (test/support/harness.ts)

function pings(tr: FakeTransport): number {
  return tr.received.filter(isPing).length;
}

async function boundOnMockedClock(t: TestContext) {
  // The server's defaults: 300 s before a ping, 60 s to answer it.
  const h = hubOnMockedClock(t);
  const { tr } = await h.login('alice');
  const PA = h.config.timeouts.ping_after * 1000;
  const PT = h.config.timeouts.ping_timeout * 1000;
  return { tr, router: h.router, ended: h.ended, PA, PT, tick: h.tick };
}

describe('idle detection on a mocked clock (C2SStream)', () => {
  test('a client sending whitespace more often than ping_after is never pinged', async (t) => {
    const { tr, PA, tick } = await boundOnMockedClock(t);
    // Ten times ping_after in all, but never ping_after without a keepalive.
    for (let i = 0; i < 10; i++) {
      tick(PA - 1);
      assert.equal(pings(tr), 0, `no ping after ${i + 1} keepalive periods`);
      tr.send('\r\n');
    }
    tick(PA - 1);
    assert.equal(pings(tr), 0);
    tick(1);
    assert.equal(pings(tr), 1, 'pinged exactly ping_after after the last keepalive');
  });

  test('whitespace answers a ping; silence after a ping ends the session with connection-timeout, once', async (t) => {
    const { tr, router, ended, PA, PT, tick } = await boundOnMockedClock(t);
    tick(PA);
    assert.equal(pings(tr), 1);
    tick(PT - 1);
    tr.send('\r\n');
    tick(1);
    assert.deepEqual(tr.streamErrors(), [], 'the keepalive counted as the answer');
    tick(PA - 2);
    assert.equal(pings(tr), 1);
    tick(1);
    assert.equal(pings(tr), 2, 'next ping ping_after after the keepalive');
    tick(PT - 1);
    assert.deepEqual(tr.streamErrors(), []);
    tick(1);
    const [err] = tr.streamErrors();
    assert.ok(err?.getChild('connection-timeout', NS.STREAM_ERRORS), 'connection-timeout exactly ping_timeout after the ping');
    assert.ok(tr.ended, 'the server closes the connection');
    // The session stays registered until the socket is really closed, then leaves once.
    tr.close();
    tr.close(true);
    assert.equal(router.size, 0);
    assert.deepEqual(
      ended.map((e) => e.reason),
      ['timeout'],
    );
  });

  test('a ping answered in time is honoured even when the timer fires late (busy event loop)', async (t) => {
    const { tr, router, PA, PT, tick } = await boundOnMockedClock(t);
    tick(PA);
    assert.equal(pings(tr), 1);
    tick(5);
    tr.send(`<iq type='result' id='${tr.received.find(isPing)!.attrs.id}' to='localhost'/>`);
    await flush();
    // The event loop stalls: the ping_timeout timer runs 50 ms after it was due.
    const now = Date.now();
    t.mock.timers.setTime(now + PT + 50);
    tick(0);
    assert.deepEqual(tr.streamErrors(), [], 'the answer arrived within ping_timeout of the ping');
    assert.equal(router.size, 1);
  });
});
