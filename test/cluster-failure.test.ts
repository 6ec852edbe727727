// Losing a node of a cluster (issue 14, "Node failure"): a node killed with
// SIGKILL is declared dead within the window; one survivor runs the seed's
// clean-up for its sessions exactly once (unavailable presence to contacts, the
// rooms' leave); what was on its way to it and what is sent to its users
// meanwhile waits in offline storage for them; a stream-management session of
// the dead node cannot be resumed elsewhere (<failed/>); the node comes back
// without its stale sessions. Then a graceful SIGTERM of a node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster } from './support/cluster.js';
import { login, scramAuth, type LoggedIn } from './support/login.js';
import { iq, RawClient, STREAM_OPEN } from './support/raw-client.js';
import { runShoal } from './support/cli.js';
import { codes, createInstant, join, isGroupchat } from './support/muc.js';
import { placeOf } from '../src/router/cluster.js';
import type { Element } from '../src/xml/element.js';

const ROSTER = 'jabber:iq:roster';
const SM = 'urn:xmpp:sm:3';

async function online(port: number, user: string): Promise<LoggedIn> {
  const s = await login(port, user, `${user}-pass`);
  await iq(s.client, `type='get'`, `<query xmlns='${ROSTER}'/>`);
  s.client.send('<presence/>');
  return s;
}

const unavailableFrom =
  (jid: string) =>
  (el: Element): boolean =>
    el.name === 'presence' && el.attrs.from === jid && el.attrs.type === 'unavailable';

async function befriend(a: LoggedIn, b: LoggedIn): Promise<void> {
  const aBare = a.jid.split('/')[0]!;
  const bBare = b.jid.split('/')[0]!;
  a.client.send(`<presence to='${bBare}' type='subscribe'/>`);
  await b.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === aBare, 'a request', 10_000);
  b.client.send(`<presence to='${aBare}' type='subscribed'/>`);
  b.client.send(`<presence to='${aBare}' type='subscribe'/>`);
  await a.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === bBare, 'a request', 10_000);
  a.client.send(`<presence to='${bBare}' type='subscribed'/>`);
  await a.client.waitFor((el) => el.name === 'presence' && el.attrs.from === b.jid && el.attrs.type === undefined, `${b.jid} available`, 10_000);
  await b.client.waitFor((el) => el.name === 'presence' && el.attrs.from === a.jid && el.attrs.type === undefined, `${a.jid} available`, 10_000);
}

/** Waits `ms` more and counts the elements matching `pred` received so far. */
async function countAfter(c: RawClient, pred: (el: Element) => boolean, ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return c.elements.filter(pred).length;
}

describe('a cluster node dies (issue 14)', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({ nodes: ['a', 'b', 'c'], heartbeat_ms: 200, dead_after_ms: 1500 });
    for (const u of ['alice', 'bob', 'carol', 'dan', 'eve', 'frank', 'grace']) await cluster.addUser(u, `${u}-pass`);
  });
  after(async () => {
    await cluster?.stop();
  });

  test('kill -9: contacts and rooms see its users leave once, within the window; offline messages wait for them; no resumption elsewhere; no resurrection', async () => {
    const [a, b, c] = cluster.nodes as [TestCluster['nodes'][0], TestCluster['nodes'][0], TestCluster['nodes'][0]];
    const alice = await online(a.port, 'alice');
    const carol = await online(c.port, 'carol');
    // bob on node b, with stream management (XEP-0198) enabled for resumption.
    const bob = await login(b.port, 'bob', 'bob-pass');
    await iq(bob.client, `type='get'`, `<query xmlns='${ROSTER}'/>`);
    bob.client.send(`<enable xmlns='${SM}' resume='true'/>`);
    const enabled = await bob.client.waitFor((el) => el.name === 'enabled', 'sm enabled');
    const previd = enabled.attrs.id!;
    bob.client.send('<presence/>');
    await befriend(alice, bob);
    await befriend(carol, bob);

    // A room hosted on a node that survives, with occupants on all three nodes.
    let room = '';
    for (let i = 0; room === ''; i++) if (placeOf(['a', 'b', 'c'], `r${i}@conference.localhost`) !== 'b') room = `r${i}@conference.localhost`;
    await createInstant(alice.client, room, 'alice');
    await join(bob.client, room, 'bob');
    await join(carol.client, room, 'carol');
    bob.client.send(`<message to='${room}' type='groupchat' id='g1'><body>before the crash</body></message>`);
    await alice.client.waitFor(isGroupchat('before the crash'), 'the room message', 10_000);
    await carol.client.waitFor(isGroupchat('before the crash'), 'the room message', 10_000);

    // Delivered on b but never acknowledged (XEP-0198): it must not die with b.
    alice.client.send(`<message to='${bob.jid}' type='chat' id='unacked'><body>read but not acknowledged</body></message>`);
    await bob.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'unacked', 'the unacknowledged message', 10_000);

    const killedAt = Date.now();
    await b.kill();
    // Sent at once, before anyone knows: it waits in the dead node's stream, then offline storage.
    alice.client.send(`<message to='${bob.jid}' type='chat' id='during'><body>sent while b was dying</body></message>`);

    const window = cluster.settings.dead_after_ms + 2 * cluster.settings.heartbeat_ms;
    await alice.client.waitFor(unavailableFrom(bob.jid), 'bob unavailable at alice', window + 5000);
    await carol.client.waitFor(unavailableFrom(bob.jid), 'bob unavailable at carol', window + 5000);
    const seenAfter = Date.now() - killedAt;
    assert.ok(seenAfter < window + 3000, `seen after ${seenAfter} ms`);
    const leftRoom = (el: Element): boolean => el.name === 'presence' && el.attrs.from === `${room}/bob` && el.attrs.type === 'unavailable';
    await alice.client.waitFor(leftRoom, 'bob leaving the room at alice', 5000);
    await carol.client.waitFor(leftRoom, 'bob leaving the room at carol', 5000);
    // Exactly once, even after the second drain and more heartbeats.
    const settle = 2 * cluster.settings.dead_after_ms;
    assert.equal(await countAfter(alice.client, unavailableFrom(bob.jid), settle), 1, 'one unavailable for bob at alice');
    assert.equal(carol.client.elements.filter(unavailableFrom(bob.jid)).length, 1, 'one unavailable for bob at carol');
    assert.equal(alice.client.elements.filter(leftRoom).length, 1, 'bob left the room once (alice)');
    assert.equal(carol.client.elements.filter(leftRoom).length, 1, 'bob left the room once (carol)');

    // Meanwhile: to his bare JID (no resource left anywhere: offline storage).
    alice.client.send(`<message to='bob@localhost' type='chat' id='after'><body>sent while b was dead</body></message>`);
    await new Promise((r) => setTimeout(r, 300));

    // bob comes back on node c and tries to resume his old session: the state died with b.
    const again = await RawClient.connect(c.port);
    again.send(STREAM_OPEN());
    await again.header();
    await again.element('features');
    await again.startTls();
    await again.restart();
    await scramAuth(again, 'bob', 'bob-pass');
    await again.restart();
    again.send(`<resume xmlns='${SM}' h='0' previd='${previd}'/>`);
    const failed = await again.waitFor((el) => el.name === 'failed' || el.name === 'resumed', 'the resumption answer');
    assert.equal(failed.name, 'failed', failed.toString());
    again.send(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    await again.waitFor((el) => el.name === 'iq' && el.attrs.id === 'bind', 'bound');
    again.send('<presence/>');
    const during = await again.waitFor((el) => el.name === 'message' && el.attrs.id === 'during', 'the message sent while b was dying', 10_000);
    assert.equal(during.getChildText('body'), 'sent while b was dying');
    await again.waitFor((el) => el.name === 'message' && el.attrs.id === 'after', 'the message sent while b was dead', 10_000);
    await again.waitFor((el) => el.name === 'message' && el.attrs.id === 'unacked', 'the message b had not seen acknowledged', 10_000);
    for (const id of ['during', 'after', 'unacked']) {
      assert.equal(again.elements.filter((el) => el.name === 'message' && el.attrs.id === id).length, 1, `${id} once`);
    }
    again.close();

    // b comes back: a new run, with none of its old sessions.
    await b.restart();
    const status = await runShoal(['--config', cluster.configOf('a'), 'cluster', 'status', '--json'], { cwd: cluster.dir });
    assert.equal(status.code, 0, status.stderr);
    const nodes = JSON.parse(status.stdout) as { node: string; alive: boolean; sessions: number }[];
    assert.deepEqual(
      nodes.map((n) => [n.node, n.alive, n.sessions]).filter(([n]) => n === 'b'),
      [['b', true, 0]],
    );
    // Nothing of bob's old session came back to his contacts.
    const bobOld = (el: Element): boolean => el.name === 'presence' && el.attrs.from === bob.jid && el.attrs.type === undefined;
    const before = alice.client.elements.filter(bobOld).length;
    assert.equal(await countAfter(alice.client, bobOld, 1000), before);
    // The room lives on: a message from carol reaches alice.
    carol.client.send(`<message to='${room}' type='groupchat' id='g2'><body>still here</body></message>`);
    await alice.client.waitFor(isGroupchat('still here'), 'the room still works', 10_000);
    assert.ok(codes(alice.client.elements.find(leftRoom)!).length >= 0);
    alice.client.close();
    carol.client.close();
  });

  test('a node declared dead while it was only paused closes its stale sessions when it goes on, with no second unavailable', async () => {
    const [a, b] = cluster.nodes as [TestCluster['nodes'][0], TestCluster['nodes'][0]];
    const frank = await online(b.port, 'frank');
    const grace = await online(a.port, 'grace');
    await befriend(frank, grace);
    b.pause();
    try {
      await grace.client.waitFor(unavailableFrom(frank.jid), 'frank unavailable', cluster.settings.dead_after_ms + 5000);
      grace.client.send(`<message to='frank@localhost' type='chat' id='paused'><body>while b was away</body></message>`);
      // By whichever survivor won it.
      await Promise.any(cluster.nodes.filter((n) => n !== b).map((n) => n.waitLog((l) => l.event === 'cluster-node-cleaned' && l.node === 'b', 5000, 'the clean-up of b')));
    } finally {
      b.resume();
    }
    // b finds out at its next heartbeat: frank's stale stream ends.
    assert.equal(await frank.client.streamError(10_000), 'reset');
    await b.waitLog((l) => l.event === 'cluster-fenced', 5000, 'b fenced');
    const frankOld = (el: Element): boolean => el.name === 'presence' && el.attrs.from === frank.jid;
    await countAfter(grace.client, frankOld, 2 * cluster.settings.heartbeat_ms + 500);
    const seen = grace.client.elements.filter(frankOld);
    assert.equal(seen.filter(unavailableFrom(frank.jid)).length, 1, 'one unavailable for the old frank');
    assert.equal(seen.at(-1)!.attrs.type, 'unavailable', 'nothing of the old frank after it');
    const status = await runShoal(['--config', cluster.configOf('a'), 'cluster', 'status', '--json'], { cwd: cluster.dir });
    const nodes = JSON.parse(status.stdout) as { node: string; alive: boolean; sessions: number }[];
    assert.deepEqual(nodes.find((n) => n.node === 'b'), { ...nodes.find((n) => n.node === 'b'), alive: true, sessions: 0 });
    // frank logs in again (on b, a new run of it) and gets what was sent meanwhile.
    const back = await online(b.port, 'frank');
    await back.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'paused', 'the message sent while b was away', 10_000);
    // b's new run knows the sessions of the other nodes again: grace's presence answers frank's probe.
    await back.client.waitFor((el) => el.name === 'presence' && el.attrs.from === grace.jid && el.attrs.type === undefined, "grace's presence through b's registry", 10_000);
    back.client.close();
    grace.client.close();
  });

  test('SIGTERM: the node ends its streams with system-shutdown and leaves; its users reconnect to the others', async () => {
    const [a, , c] = cluster.nodes as [TestCluster['nodes'][0], TestCluster['nodes'][0], TestCluster['nodes'][0]];
    const dan = await online(c.port, 'dan');
    const eve = await online(a.port, 'eve');
    await befriend(dan, eve);
    const code = await c.terminate();
    assert.equal(code, 0);
    assert.equal(await dan.client.streamError(), 'system-shutdown');
    await eve.client.waitFor(unavailableFrom(dan.jid), 'dan unavailable', 5000);
    const status = await runShoal(['--config', cluster.configOf('a'), 'cluster', 'status', '--json'], { cwd: cluster.dir });
    const nodes = JSON.parse(status.stdout) as { node: string }[];
    assert.deepEqual(
      nodes.map((n) => n.node),
      ['a', 'b'],
      'c left the member list',
    );
    const back = await online(a.port, 'dan');
    await eve.client.waitFor((el) => el.name === 'presence' && el.attrs.from === back.jid && el.attrs.type === undefined, 'dan back', 5000);
    assert.equal(eve.client.elements.filter(unavailableFrom(dan.jid)).length, 1);
    back.client.close();
    eve.client.close();
  });
});
