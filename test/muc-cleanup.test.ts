// The seed's clean-up for group chat beyond a plain logout or dropped socket
// (test/muc-raw.test.ts): a client that entered a room without ever sending
// initial presence and then drops (presence alone would not tell the room), a
// stream-management session whose hibernation runs out (the user stays in the
// room while the session can be resumed, and leaves when it ends), one user with
// two clients under one nick, and a client cut off by the ping timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login } from './support/login.js';
import { SERVICE, codes, createInstant, isGroupchat, isPresenceFrom, join, online } from './support/muc.js';

const SM = 'urn:xmpp:sm:3';
const RESUME_TIMEOUT = 1;
let srv: TestServer;
before(async () => {
  srv = await startTestServer({ stream_management: { resume_timeout: RESUME_TIMEOUT } });
  for (const u of ['alice', 'bob', 'carol']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

test('a client that never sent initial presence and drops its socket leaves the room', async () => {
  const alice = await online(srv.port, 'alice');
  const room = `nopresence@${SERVICE}`;
  await createInstant(alice.client, room, 'A');
  const bob = await login(srv.port, 'bob', 'bob-pass'); // no <presence/>
  await join(bob.client, room, 'B');
  await alice.client.waitFor(isPresenceFrom(`${room}/B`), 'bob entered');
  bob.client.socket.destroy();
  const left = await alice.client.waitFor(isPresenceFrom(`${room}/B`, 'unavailable'), 'bob left');
  assert.deepEqual(codes(left), [], 'not 332: the service is not shutting down');
  alice.client.send(`<message to='${room}' type='groupchat'><body>marker</body></message>`);
  await alice.client.waitFor(isGroupchat('marker'));
  assert.equal(alice.client.elements.filter(isPresenceFrom(`${room}/B`, 'unavailable')).length, 1);
  alice.client.close();
});

test('stream management: a hibernating user stays in the room until the session ends, then leaves once', async () => {
  const alice = await online(srv.port, 'alice');
  const room = `hibernate@${SERVICE}`;
  await createInstant(alice.client, room, 'A');
  const carol = await online(srv.port, 'carol');
  carol.client.send(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await carol.client.waitFor((el) => el.xmlns === SM && el.name === 'enabled', 'sm enabled');
  assert.equal(enabled.attrs.resume, 'true');
  await join(carol.client, room, 'C');
  await alice.client.waitFor(isPresenceFrom(`${room}/C`), 'carol entered');
  const dropped = Date.now();
  carol.client.socket.destroy();
  // While hibernating, carol is still an occupant: messages to the room still go to her session.
  alice.client.send(`<message to='${room}' type='groupchat'><body>while you sleep</body></message>`);
  await alice.client.waitFor(isGroupchat('while you sleep'));
  assert.equal(alice.client.elements.filter(isPresenceFrom(`${room}/C`, 'unavailable')).length, 0, 'no unavailable while the session can resume');
  const left = await alice.client.waitFor(isPresenceFrom(`${room}/C`, 'unavailable'), 'carol left when hibernation ended', 10_000);
  assert.ok(Date.now() - dropped >= RESUME_TIMEOUT * 1000 - 100, 'not before the resume timeout');
  assert.deepEqual(codes(left), []);
  alice.client.send(`<message to='${room}' type='groupchat'><body>marker</body></message>`);
  await alice.client.waitFor(isGroupchat('marker'));
  assert.equal(alice.client.elements.filter(isPresenceFrom(`${room}/C`, 'unavailable')).length, 1);
  alice.client.close();
});

test('two clients of one user under one nick: one drops, the user stays; the other logs out, the user leaves once', async () => {
  const bob = await online(srv.port, 'bob');
  const room = `devices@${SERVICE}`;
  await createInstant(bob.client, room, 'B');
  const laptop = await online(srv.port, 'alice');
  const phone = await online(srv.port, 'alice');
  await join(laptop.client, room, 'Alice');
  await bob.client.waitFor(isPresenceFrom(`${room}/Alice`), 'alice entered');
  await join(phone.client, room, 'Alice');
  laptop.client.socket.destroy();
  bob.client.send(`<message to='${room}' type='groupchat'><body>still there?</body></message>`);
  await phone.client.waitFor(isGroupchat('still there?'), 'the phone still gets the room');
  await bob.client.waitFor(isGroupchat('still there?'));
  assert.equal(bob.client.elements.filter(isPresenceFrom(`${room}/Alice`, 'unavailable')).length, 0, 'alice is still in through her phone');
  assert.equal(bob.client.elements.filter(isPresenceFrom(`${room}/Alice`)).length, 1, "bob saw alice's presence once, not once per client");
  phone.client.send(`<presence type='unavailable'/></stream:stream>`);
  await bob.client.waitFor(isPresenceFrom(`${room}/Alice`, 'unavailable'), 'alice left with her last client');
  bob.client.send(`<message to='${room}' type='groupchat'><body>marker</body></message>`);
  await bob.client.waitFor(isGroupchat('marker'));
  assert.equal(bob.client.elements.filter(isPresenceFrom(`${room}/Alice`, 'unavailable')).length, 1);
  bob.client.close();
});

test('a client that stops answering (ping timeout) leaves the room', async () => {
  const quick = await startTestServer({ timeouts: { ping_after: 0.5, ping_timeout: 0.5 } });
  try {
    for (const u of ['alice', 'bob']) await quick.addUser(u, `${u}-pass`);
    const alice = await online(quick.port, 'alice');
    const room = `timeout@${SERVICE}`;
    await createInstant(alice.client, room, 'A');
    const bob = await online(quick.port, 'bob');
    await join(bob.client, room, 'B');
    await alice.client.waitFor(isPresenceFrom(`${room}/B`), 'bob entered');
    // alice keeps her connection busy (whitespace keepalives); bob goes silent and ignores the server's ping.
    const keepalive = setInterval(() => alice.client.send(' '), 100);
    try {
      const left = await alice.client.waitFor(isPresenceFrom(`${room}/B`, 'unavailable'), 'bob timed out', 10_000);
      assert.deepEqual(codes(left), []);
      assert.ok(bob.client.received.includes('connection-timeout'), 'bob was cut off for the timeout');
    } finally {
      clearInterval(keepalive);
    }
    alice.client.close();
    bob.client.close();
  } finally {
    await quick.stop();
  }
});
