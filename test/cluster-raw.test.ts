// A cluster of three Shoal node processes sharing PostgreSQL and Redis (issue 14),
// driven with raw XML: the registry, delivery across nodes, presence, resource
// uniqueness, rooms placed on one node, and a node killed with SIGKILL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster } from './support/cluster.js';
import { login, type LoggedIn } from './support/login.js';
import { iq } from './support/raw-client.js';
import { runShoal } from './support/cli.js';
import { loadXmppJsComponent } from './support/xmppjs.js';
import type { Element } from '../src/xml/element.js';

const ROSTER = 'jabber:iq:roster';
const BOT = 'bot.localhost';

async function online(port: number, user: string, resource?: string): Promise<LoggedIn> {
  const s = await login(port, user, `${user}-pass`, resource !== undefined ? { resource } : {});
  // RFC 6121 §2.1.6: the roster first, then initial presence (an interested, available resource).
  await iq(s.client, `type='get'`, `<query xmlns='${ROSTER}'/>`);
  s.client.send('<presence/>');
  return s;
}

const isPresence =
  (from: string, type?: string) =>
  (el: Element): boolean =>
    el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;

/** alice and bob subscribe to each other (RFC 6121 §3), wherever they are. */
async function befriend(a: LoggedIn, b: LoggedIn, aBare: string, bBare: string): Promise<void> {
  a.client.send(`<presence to='${bBare}' type='subscribe'/>`);
  await b.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'a subscription request', 10_000);
  b.client.send(`<presence to='${aBare}' type='subscribed'/>`);
  b.client.send(`<presence to='${aBare}' type='subscribe'/>`);
  await a.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe', 'a subscription request', 10_000);
  a.client.send(`<presence to='${bBare}' type='subscribed'/>`);
  await a.client.waitFor(isPresence(b.jid), `${b.jid} available`, 10_000);
  await b.client.waitFor(isPresence(a.jid), `${a.jid} available`, 10_000);
}

describe('a cluster of three nodes (issue 14)', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startCluster({
      nodes: ['a', 'b', 'c'],
      settings: { bind: { resource: 'client' }, components: { listen: { host: '127.0.0.1', port: 0 }, services: [{ domain: BOT, secret: 'cluster-bot-secret' }] } },
    });
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await cluster.addUser(u, `${u}-pass`);
  });
  after(async () => {
    await cluster?.stop();
  });

  test('subscribe, presence and chat between users on different nodes', async () => {
    const [a, b] = cluster.nodes;
    const alice = await online(a!.port, 'alice');
    const bob = await online(b!.port, 'bob');
    await befriend(alice, bob, 'alice@localhost', 'bob@localhost');
    alice.client.send(`<message to='bob@localhost' type='chat' id='m1'><body>hello from a</body></message>`);
    const m = await bob.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'm1', 'the message', 10_000);
    assert.equal(m.attrs.from, alice.jid);
    assert.equal(m.getChildText('body'), 'hello from a');
    // To the full JID on the other node, and back.
    bob.client.send(`<message to='${alice.jid}' type='chat' id='m2'><body>hi from b</body></message>`);
    await alice.client.waitFor((el) => el.name === 'message' && el.attrs.id === 'm2', 'the reply', 10_000);
    // An unavailable broadcast crosses nodes too.
    bob.client.send(`<presence type='unavailable'/>`);
    await alice.client.waitFor(isPresence(bob.jid, 'unavailable'), 'bob unavailable', 10_000);
    alice.client.close();
    bob.client.close();
  });

  test('a client-chosen resource stays unique across nodes (RFC 6120 §7.7.2.2)', async () => {
    const [a, b] = cluster.nodes;
    const first = await login(a!.port, 'carol', 'carol-pass', { resource: 'phone' });
    assert.equal(first.jid, 'carol@localhost/phone');
    const second = await login(b!.port, 'carol', 'carol-pass', { resource: 'phone' });
    assert.notEqual(second.jid, 'carol@localhost/phone');
    assert.match(second.jid, /^carol@localhost\/phone\./);
    first.client.close();
    second.client.close();
  });

  test('an external component (XEP-0114, xmpp.js) connected to one node serves users on the others, until it leaves', async () => {
    const [a, , c] = cluster.nodes;
    const { component: makeComponent, xml } = await loadXmppJsComponent();
    const port = Number(a!.logs.find((l) => l.event === 'listen' && l.kind === 'component')?.port);
    const bot = makeComponent({ service: `xmpp://127.0.0.1:${port}`, domain: BOT, password: 'cluster-bot-secret' });
    bot.reconnect.stop();
    bot.on('error', () => undefined);
    bot.on('stanza', (async (stanza: { is(n: string): boolean; attrs: Record<string, string>; getChildText(n: string): string | null }) => {
      const body = stanza.is('message') ? stanza.getChildText('body') : null;
      if (body === null) return;
      await bot.send(xml('message', { from: `echo@${BOT}`, to: stanza.attrs.from!, type: 'chat', id: `echo-${stanza.attrs.id}` }, xml('body', {}, `echo: ${body}`)));
    }) as never);
    await bot.start();
    const erin = await online(c!.port, 'erin');
    // The other nodes hear of the component through Redis: retried until they have.
    let answer: Element | undefined;
    for (let i = 0; answer === undefined && i < 50; i++) {
      erin.client.send(`<message to='echo@${BOT}' type='chat' id='e${i}'><body>hello bot</body></message>`);
      answer = await erin.client
        .waitFor((el) => el.name === 'message' && (el.attrs.id === `echo-e${i}` || (el.attrs.type === 'error' && el.attrs.id === `e${i}`)), 'an answer', 5000)
        .then((el) => (el.attrs.type === 'error' ? undefined : el));
      if (answer === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(answer?.getChildText('body'), 'echo: hello bot');
    assert.equal(answer?.attrs.from, `echo@${BOT}`);
    await bot.stop();
    // Gone from every node: a message to it is answered service-unavailable, not lost in Redis.
    let condition = '';
    for (let i = 0; condition !== 'service-unavailable' && i < 50; i++) {
      erin.client.send(`<message to='echo@${BOT}' type='chat' id='gone${i}'><body>anyone?</body></message>`);
      const reply = await erin.client.waitFor((el) => el.name === 'message' && (el.attrs.id === `gone${i}` || el.attrs.id === `echo-gone${i}`), 'an answer', 5000);
      condition = reply.attrs.type === 'error' ? (reply.getChild('error')?.children.find((ch) => typeof ch !== 'string')?.name ?? '') : '';
    }
    assert.equal(condition, 'service-unavailable');
    erin.client.close();
  });

  test('shoal cluster status lists the three nodes alive with their sessions', async () => {
    const s = await online(cluster.nodes[2]!.port, 'dave');
    const r = await runShoal(['--config', cluster.configOf('a'), 'cluster', 'status', '--json'], { cwd: cluster.dir });
    assert.equal(r.code, 0, r.stderr);
    const nodes = JSON.parse(r.stdout) as { node: string; alive: boolean; sessions: number }[];
    assert.deepEqual(
      nodes.map((n) => [n.node, n.alive]),
      [
        ['a', true],
        ['b', true],
        ['c', true],
      ],
    );
    assert.ok(nodes.find((n) => n.node === 'c')!.sessions >= 1);
    s.client.close();
  });
});
