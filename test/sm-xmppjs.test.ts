// XEP-0198 with a real client library: xmpp.js (@xmpp/client enables stream
// management and resumes by itself). Its socket is destroyed without
// </stream:stream> while a contact sends messages: it reconnects and resumes,
// each message arrives exactly once and in order, and the contact never sees it
// go unavailable. Without a resume in time the messages come from offline
// storage at the next login, once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login } from './support/login.js';
import { serverCertificate, startXmppJs, trustCertificate, withTimeout, xml, type XmlElement, type XmppJsSession } from './support/xmppjs.js';
import type { RawClient } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';

let srv: TestServer;
let restoreTls: () => void;

async function befriend(server: TestServer, a: string, b: string): Promise<void> {
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    await server.server.storage.roster.setItem('localhost', x, { jid: `${y}@localhost`, subscription: 'both', ask: false, pendingIn: false, approved: false, groups: [] });
  }
}

before(async () => {
  srv = await startTestServer({ stream_management: { resume_timeout: 30 } });
  restoreTls = trustCertificate(serverCertificate(srv.dir));
  for (const u of ['alice', 'bob']) await srv.addUser(u, `${u}-pass`);
  await befriend(srv, 'alice', 'bob');
});
after(async () => {
  restoreTls();
  await srv.stop();
});

const bodyOf = (el: XmlElement): string | null => (el.name === 'message' ? el.getChildText('body') : null);

let seq = 0;
async function roundTrip(c: RawClient): Promise<void> {
  const id = `rt-${++seq}`;
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  await c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 'ping result');
}

interface Sm {
  id: string;
  enabled: boolean;
  on(event: 'resumed', fn: () => void): void;
}
const smOf = (s: XmppJsSession): Sm => (s.xmpp as unknown as { streamManagement: Sm }).streamManagement;

async function onlineWithSm(port: number, user: string): Promise<XmppJsSession> {
  const s = await startXmppJs({ port, username: user, password: `${user}-pass` });
  // xmpp.js enables stream management (with resumption) right after binding.
  const deadline = Date.now() + 5000;
  while (!smOf(s).enabled) {
    if (Date.now() > deadline) throw new Error('stream management not enabled');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(smOf(s).id, 'an SM-ID to resume with');
  return s;
}

test('xmpp.js resumes after its socket is destroyed: every message once, in order; the contact saw no unavailable', async () => {
  const alice = await onlineWithSm(srv.port, 'alice');
  await alice.xmpp.send(xml('presence'));
  const bob = await login(srv.port, 'bob', 'bob-pass');
  bob.client.send('<presence/>');
  await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid, "alice's presence");
  await alice.nextStanza((el) => el.name === 'presence' && el.attrs.from === bob.jid, "bob's presence");

  const resumed = new Promise<void>((resolve) => smOf(alice).on('resumed', resolve));
  // Reconnects (and so resumes) by itself once the socket is gone.
  alice.xmpp.reconnect.start();
  alice.xmpp.socket!.socket!.destroy();
  // Sent while alice's connection is gone or being replaced: some reach the dead socket, some wait
  // in the hibernating session.
  for (let i = 1; i <= 20; i++) bob.client.send(`<message to='${alice.jid}' type='chat' id='m${i}'><body>m${i}</body></message>`);
  await roundTrip(bob.client);
  await withTimeout(resumed, 10_000, 'xmpp.js to resume');
  assert.equal(alice.xmpp.jid?.toString(), alice.jid, 'the same full JID');
  for (let i = 1; i <= 20; i++) await alice.nextStanza((el) => bodyOf(el) === `m${i}`, `m${i}`);
  // Once each: a marker sent now is the next message.
  bob.client.send(`<message to='${alice.jid}' type='chat'><body>marker</body></message>`);
  await alice.nextStanza((el) => bodyOf(el) === 'marker', 'marker');
  const bodies = alice.stanzas.filter((el) => bodyOf(el) !== null).map(bodyOf);
  assert.deepEqual(bodies, [], `nothing else arrived (left over: ${bodies.join(',')})`);
  await roundTrip(bob.client);
  assert.equal(bob.client.elements.filter((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === alice.jid).length, 0);

  alice.xmpp.reconnect.stop();
  await alice.xmpp.stop();
  await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === alice.jid, 'unavailable after logout');
  bob.client.close();
});

test('xmpp.js does not come back in time: unavailable once, and the messages arrive from offline storage at the next login, once', async () => {
  const short = await startTestServer({ stream_management: { resume_timeout: 1 } });
  const restore = trustCertificate(serverCertificate(short.dir));
  try {
    for (const u of ['carol', 'dave']) await short.addUser(u, `${u}-pass`);
    await befriend(short, 'carol', 'dave');
    const carol = await onlineWithSm(short.port, 'carol');
    await carol.xmpp.send(xml('presence'));
    const dave = await login(short.port, 'dave', 'dave-pass');
    dave.client.send('<presence/>');
    await dave.client.waitFor((el) => el.name === 'presence' && el.attrs.from === carol.jid, "carol's presence");
    carol.xmpp.socket!.socket!.destroy();
    for (let i = 1; i <= 5; i++) dave.client.send(`<message to='${carol.jid}' type='chat'><body>o${i}</body></message>`);
    await dave.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === carol.jid, 'unavailable at expiry', 10_000);

    const again = await startXmppJs({ port: short.port, username: 'carol', password: 'carol-pass' });
    await again.xmpp.send(xml('presence'));
    for (let i = 1; i <= 5; i++) {
      const m = await again.nextStanza((el) => bodyOf(el) === `o${i}`, `o${i}`);
      assert.ok(m.getChild('delay', 'urn:xmpp:delay'), 'delivered from storage, with its delay');
    }
    dave.client.send(`<message to='carol@localhost' type='chat'><body>marker</body></message>`);
    await again.nextStanza((el) => bodyOf(el) === 'marker', 'marker');
    assert.deepEqual(
      again.stanzas.filter((el) => bodyOf(el) !== null).map(bodyOf),
      [],
      'each stored message once',
    );
    await roundTrip(dave.client);
    assert.equal(dave.client.elements.filter((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === carol.jid).length, 1);
    await again.xmpp.stop();
    dave.client.close();
  } finally {
    restore();
    await short.stop();
  }
});
