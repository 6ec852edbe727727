// XEP-0198 with slixmpp (Debian's python3-slixmpp, plugin xep_0198): the client's
// TCP connection is reset with nothing sent while a contact sends messages; it
// reconnects and resumes; every message arrives exactly once, in order, and the
// contact never sees it go unavailable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { login } from './support/login.js';
import { PYTHON, slixmppMissing } from './support/slixmpp.js';
import { NS } from '../src/xml/namespaces.js';
import type { RawClient } from './support/raw-client.js';

const SCRIPT = join(import.meta.dirname, 'slixmpp', 'sm_client.py');
const missing = slixmppMissing();

type Event = Record<string, unknown> & { event: string };

/** test/slixmpp/sm_client.py, its events as they come, and a way to send it commands. */
class SmSlix {
  readonly events: Event[] = [];
  private waiters: (() => void)[] = [];
  private output = '';
  constructor(private readonly child: ChildProcess) {
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      partial += d.toString('utf8');
      this.output += d.toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.trim() !== '') this.events.push(JSON.parse(line) as Event);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
  }

  static start(srv: TestServer, user: string): SmSlix {
    const ca = join(srv.dir, 'data', 'tls', 'self-signed.crt');
    const child = spawn(PYTHON, [SCRIPT, '--port', String(srv.port), '--jid', `${user}@localhost`, '--password', `${user}-pass`, '--ca', ca], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new SmSlix(child);
  }

  send(cmd: Record<string, unknown>): void {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  async waitFor(pred: (e: Event) => boolean, what: string, ms = 10_000): Promise<Event> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for slixmpp ${what}; output:\n${this.output}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ stream_management: { resume_timeout: 30 } });
  for (const u of ['alice', 'bob']) await srv.addUser(u, `${u}-pass`);
  for (const [x, y] of [
    ['alice', 'bob'],
    ['bob', 'alice'],
  ] as const) {
    await srv.server.storage.roster.setItem('localhost', x, { jid: `${y}@localhost`, subscription: 'both', ask: false, pendingIn: false, approved: false, groups: [] });
  }
});
after(() => srv.stop());

async function roundTrip(c: RawClient): Promise<void> {
  c.send(`<iq type='get' id='rt' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  await c.waitFor((el) => el.name === 'iq' && el.attrs.id === 'rt', 'ping result');
}

test('slixmpp resumes after a connection reset: every message once, in order; the contact saw no unavailable', { skip: missing }, async () => {
  const alice = SmSlix.start(srv, 'alice');
  try {
    const ready = await alice.waitFor((e) => e.event === 'ready', 'ready');
    const jid = String(ready.jid);
    await alice.waitFor((e) => e.event === 'sm_enabled', 'stream management enabled');
    const bob = await login(srv.port, 'bob', 'bob-pass');
    bob.client.send('<presence/>');
    await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.from === jid, "alice's presence");
    await alice.waitFor((e) => e.event === 'presence' && String(e.from).startsWith('bob@'), "bob's presence");

    alice.send({ cmd: 'drop' });
    await alice.waitFor((e) => e.event === 'dropped', 'the reset');
    for (let i = 1; i <= 15; i++) bob.client.send(`<message to='${jid}' type='chat'><body>s${i}</body></message>`);
    await roundTrip(bob.client);
    await alice.waitFor((e) => e.event === 'resumed', 'resumed');
    await alice.waitFor((e) => e.event === 'message' && e.body === 's15', 's15');
    bob.client.send(`<message to='${jid}' type='chat'><body>marker</body></message>`);
    await alice.waitFor((e) => e.event === 'message' && e.body === 'marker', 'marker');
    const bodies = alice.events.filter((e) => e.event === 'message').map((e) => e.body);
    assert.deepEqual(bodies, [...Array.from({ length: 15 }, (_, i) => `s${i + 1}`), 'marker'], 'each once, in order');
    assert.equal(alice.events.filter((e) => e.event === 'ready').length, 1, 'resumed, not a new session');
    assert.equal(srv.server.router.getSessions('alice@localhost').length, 1);
    assert.equal(bob.client.elements.filter((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === jid).length, 0);

    alice.send({ cmd: 'stop' });
    await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === jid, 'unavailable after a clean stop');
    bob.client.close();
  } finally {
    alice.kill();
  }
});
