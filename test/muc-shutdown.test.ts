// XEP-0045 §15.6.2: when the service shuts down, every occupant is told it was
// removed with status 332 (and 110: it is about itself), before its stream ends
// with system-shutdown (RFC 6120 §4.9.3.22). Its own server: the test stops it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from './support/server.js';
import { SERVICE, codes, createInstant, isPresenceFrom, join, online } from './support/muc.js';

test('server shutdown: each occupant gets its own unavailable presence with 110 and 332, then system-shutdown', async () => {
  const srv = await startTestServer();
  let stopped = false;
  try {
    for (const u of ['alice', 'bob']) await srv.addUser(u, `${u}-pass`);
    const alice = await online(srv.port, 'alice');
    const bob = await online(srv.port, 'bob');
    const room = `closing@${SERVICE}`;
    await createInstant(alice.client, room, 'A');
    await join(bob.client, room, 'B');
    await alice.client.waitFor(isPresenceFrom(`${room}/B`), 'bob entered');

    const stopping = srv.stop();
    for (const [c, nick] of [[alice.client, 'A'], [bob.client, 'B']] as const) {
      const gone = await c.waitFor(isPresenceFrom(`${room}/${nick}`, 'unavailable'), `${nick} removed`);
      assert.deepEqual(codes(gone).sort(), [110, 332]);
      assert.equal(await c.streamError(), 'system-shutdown', 'the stream ends after the room said why');
    }
    // One presence per occupant, about itself: nobody was told about the other leaving (no n² burst).
    await assert.rejects(alice.client.waitFor(isPresenceFrom(`${room}/B`, 'unavailable'), 'bob leaving', 200));
    await stopping;
    stopped = true;
  } finally {
    if (!stopped) await srv.stop();
  }
});
