// The hub's routing decisions, in process: sessions here are ClientSessions on a
// recording connection, registered in a LocalRouter.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { Element, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import { Jid } from '../jid/jid.js';
import { parseConfig } from '../config/load.js';
import { silentLogger } from '../log/logger.js';
import { LocalRouter } from '../router/local.js';
import { Dispatcher } from './dispatcher.js';
import { ClientSession, type SessionConnection } from './session.js';
import { StanzaError } from './errors.js';
import { Priority } from './hooks.js';
import type { AddressedStanza } from './api.js';

class Recorder implements SessionConnection {
  readonly got: Element[] = [];
  open = true;
  congested = false;
  drained(): Promise<boolean> {
    return Promise.resolve(this.open);
  }
  write(stanza: Element): boolean {
    if (!this.open) return false;
    this.got.push(stanza);
    return true;
  }
  close(): void {
    this.open = false;
  }
}

function setup(accounts: string[] = ['alice@localhost', 'bob@localhost']) {
  const config = parseConfig({ hosts: ['localhost'] }, tmpdir());
  const router = new LocalRouter();
  const known = new Set(accounts);
  const d = new Dispatcher({ config, log: silentLogger(), router, accounts: { exists: (h, u) => Promise.resolve(known.has(`${u}@${h}`)) } });
  const online = async (full: string, presence?: { priority: number }) => {
    const conn = new Recorder();
    const s = new ClientSession(d, Jid.parse(full), conn);
    assert.equal(await router.register(s), true);
    if (presence) router.setPresence(s, { presence: x('presence', NS.CLIENT, { from: full }), priority: presence.priority });
    return { s, conn };
  };
  return { d, router, online };
}

const msg = (from: string, to: string, body: string, type = 'chat'): Element =>
  x('message', NS.CLIENT, { from, to, type, id: body }, x('body', NS.CLIENT, {}, body));
const bodies = (c: Recorder): string[] => c.got.filter((e) => e.name === 'message' && e.attrs.type !== 'error').map((e) => e.getChildText('body') ?? '');
const errors = (c: Recorder): string[] =>
  c.got.filter((e) => e.attrs.type === 'error').map((e) => e.getChild('error')?.getChildren().find((k) => k.xmlns === NS.STANZA_ERRORS)?.name ?? '');

describe('Dispatcher routing (RFC 6121 §8.5)', () => {
  test('a message to a bare JID goes to the highest non-negative priority resources only', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    const b1 = await online('bob@localhost/1', { priority: 1 });
    const b2 = await online('bob@localhost/2', { priority: 5 });
    const b3 = await online('bob@localhost/3', { priority: 5 });
    const b4 = await online('bob@localhost/4', { priority: -1 });
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'hi'));
    assert.deepEqual([bodies(b1.conn), bodies(b2.conn), bodies(b3.conn), bodies(b4.conn)], [[], ['hi'], ['hi'], []]);
  });

  test('nobody available: the undeliverable chain runs in priority order; nobody takes it: service-unavailable', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    const order: string[] = [];
    let take = false;
    d.hookUndeliverable(() => void order.push('default'), Priority.DEFAULT);
    d.hookUndeliverable(() => {
      order.push('first');
      return take;
    }, Priority.FIRST);
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'one'));
    assert.deepEqual(order, ['first', 'default']);
    assert.deepEqual(errors(alice.conn), ['service-unavailable']);
    take = true;
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'two'));
    assert.deepEqual(order, ['first', 'default', 'first'], 'the first taker stops the chain');
    assert.deepEqual(errors(alice.conn), ['service-unavailable'], 'a kept message is not bounced');
    // Not an account: no handler is asked.
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'nobody@localhost', 'three'));
    assert.deepEqual(order, ['first', 'default', 'first']);
    assert.deepEqual(errors(alice.conn), ['service-unavailable', 'service-unavailable']);
  });

  test('a session that lost its connection: the message is re-routed to another resource, else kept, never dropped', async () => {
    const { d, router, online } = setup();
    const alice = await online('alice@localhost/a');
    const b1 = await online('bob@localhost/1', { priority: 1 });
    const b2 = await online('bob@localhost/2', { priority: 0 });
    const kept: AddressedStanza[] = [];
    d.hookUndeliverable((ev) => {
      kept.push(ev);
      return true;
    }, Priority.DEFAULT);
    b1.conn.open = false;
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'reroute'));
    await d.drain();
    assert.deepEqual(bodies(b2.conn), ['reroute'], 'the other resource got it');
    b2.conn.open = false;
    router.unregister(b1.s);
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost/2', 'keep'));
    await d.drain();
    assert.deepEqual(
      kept.map((k) => k.stanza.getChildText('body')),
      ['keep'],
    );
    // An IQ to a session that cannot take it is answered with an error, not lost in silence.
    await d.handleStanza(alice.s, x('iq', NS.CLIENT, { from: 'alice@localhost/a', to: 'bob@localhost/2', type: 'get', id: 'q' }, x('ping', NS.PING)));
    assert.deepEqual(errors(alice.conn), ['service-unavailable']);
  });

  test('outbound hooks run before inbound hooks, each in priority order, and may stop the stanza', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    const bob = await online('bob@localhost/1', { priority: 0 });
    const order: string[] = [];
    d.hookInbound('message', () => void order.push('in-default'), Priority.DEFAULT);
    d.hookInbound('message', ({ stanza }) => {
      order.push('in-policy');
      return stanza.getChildText('body') === 'stop-in';
    }, Priority.POLICY);
    d.hookOutbound('message', ({ stanza }) => {
      order.push('out');
      return stanza.getChildText('body') === 'stop-out';
    }, Priority.DEFAULT);
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'go'));
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'stop-out'));
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'stop-in'));
    assert.deepEqual(order, ['out', 'in-policy', 'in-default', 'out', 'out', 'in-policy']);
    assert.deepEqual(bodies(bob.conn), ['go']);
    // route() (a module's or a component's stanza) runs the recipient's side, not the sender's.
    order.length = 0;
    await d.route(msg('service.localhost', 'bob@localhost/1', 'from-a-module'));
    assert.deepEqual(order, ['in-policy', 'in-default']);
    assert.deepEqual(bodies(bob.conn), ['go', 'from-a-module']);
  });

  test('a hook that throws a StanzaError answers the sender with it; any other error is internal-server-error', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    d.hookOutbound('message', ({ stanza }) => {
      if (stanza.getChildText('body') === 'bad') throw new StanzaError('not-acceptable');
      if (stanza.getChildText('body') === 'bug') throw new Error('a bug');
    }, Priority.DEFAULT);
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'bad'));
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'bug'));
    assert.deepEqual(errors(alice.conn), ['not-acceptable', 'internal-server-error']);
  });

  test('service domains take their domain, and their subdomains when asked; they are listed under their host', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    const muc: string[] = [];
    const comp: string[] = [];
    d.registerService('conference.localhost', ({ to }) => void muc.push(to.toString()), { name: 'Chatrooms' });
    const off = d.registerService('bridge.localhost', ({ to }) => void comp.push(to.toString()), { subdomains: true });
    assert.throws(() => d.registerService('bridge.localhost', () => undefined), /already has a service/);
    assert.throws(() => d.registerService('localhost', () => undefined), /account host/);
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'room@conference.localhost', 'm'));
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'x@sub.conference.localhost', 'no-sub'));
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'y@deep.sub.bridge.localhost', 'sub'));
    assert.deepEqual(muc, ['room@conference.localhost']);
    assert.deepEqual(comp, ['y@deep.sub.bridge.localhost']);
    assert.deepEqual(errors(alice.conn), ['remote-server-not-found'], 'conference takes no subdomains');
    assert.deepEqual(d.services('localhost'), [
      { domain: 'bridge.localhost', name: undefined },
      { domain: 'conference.localhost', name: 'Chatrooms' },
    ]);
    off();
    assert.deepEqual(
      d.services('localhost').map((s) => s.domain),
      ['conference.localhost'],
    );
  });

  test('IQ handlers answer with their payload or their error; an unknown namespace is service-unavailable', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    d.handleIq('server', 'urn:test', 'get', () => x('answer', 'urn:test'));
    d.handleIq('account', 'urn:test', 'get', ({ to }) => {
      if (to.local === 'bob') throw new StanzaError('forbidden');
      return undefined;
    });
    assert.throws(() => d.handleIq('server', 'urn:test', 'get', () => undefined), /already registered/);
    const ask = (to: string | undefined, ns: string, id: string) =>
      d.handleStanza(alice.s, x('iq', NS.CLIENT, { from: 'alice@localhost/a', to, type: 'get', id }, x('q', ns)));
    await ask('localhost', 'urn:test', 's');
    await ask(undefined, 'urn:test', 'own');
    await ask('bob@localhost', 'urn:test', 'bob');
    await ask('nobody@localhost', 'urn:test', 'nobody');
    await ask('localhost', 'urn:unknown', 'unknown');
    const byId = (id: string) => alice.conn.got.find((e) => e.attrs.id === id)!;
    assert.equal(byId('s').attrs.type, 'result');
    assert.equal(byId('s').getChild('answer', 'urn:test') !== undefined, true);
    assert.equal(byId('s').attrs.from, 'localhost');
    assert.equal(byId('own').attrs.type, 'result');
    assert.equal(byId('own').attrs.from, undefined, 'no to, no from (RFC 6120 §8.1.2.1)');
    assert.deepEqual(errors(alice.conn), ['forbidden', 'service-unavailable', 'service-unavailable']);
  });

  test('outgoing filters run in priority order on every stanza to a session; null takes it', async () => {
    const { d, online } = setup();
    const alice = await online('alice@localhost/a');
    const bob = await online('bob@localhost/1', { priority: 0 });
    const order: string[] = [];
    d.addOutgoingFilter((_s, el) => {
      order.push('late');
      return el;
    }, Priority.LAST);
    d.addOutgoingFilter((s, el) => {
      order.push(`early:${s.jid.resource}`);
      return el.getChildText('body') === 'held' ? null : el;
    }, Priority.FIRST);
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'shown'));
    await d.handleStanza(alice.s, msg('alice@localhost/a', 'bob@localhost', 'held'));
    assert.deepEqual(order, ['early:1', 'late', 'early:1']);
    assert.deepEqual(bodies(bob.conn), ['shown']);
  });
});

describe('Dispatcher.requestIq', () => {
  const iqFrom = (from: string, to: string, id?: string): Element => x('iq', NS.CLIENT, { type: 'set', from, to, id }, x('q', 'urn:test'));

  test('routes an IQ from the server to a service and resolves with its result or its error reply', async () => {
    const { d } = setup();
    const seen: Element[] = [];
    d.registerService('push.example', ({ stanza }) => {
      seen.push(stanza);
      const ok = stanza.getChild('q', 'urn:test')?.attrs.fail === undefined;
      const reply = ok
        ? x('iq', NS.CLIENT, { type: 'result', id: stanza.attrs.id, from: 'push.example', to: stanza.attrs.from })
        : x('iq', NS.CLIENT, { type: 'error', id: stanza.attrs.id, from: 'push.example', to: stanza.attrs.from }, x('error', NS.CLIENT, { type: 'cancel' }, x('item-not-found', NS.STANZA_ERRORS)));
      setImmediate(() => void d.route(reply));
    });
    const result = await d.requestIq(iqFrom('localhost', 'push.example'), 1000);
    assert.equal(result.attrs.type, 'result');
    assert.equal(seen.length, 1);
    assert.match(seen[0]!.attrs.id ?? '', /.+/, 'an id was given');
    assert.equal(seen[0]!.attrs.from, 'localhost');
    const failing = iqFrom('localhost', 'push.example', 'mine');
    failing.getChild('q', 'urn:test')!.attrs.fail = '1';
    const error = await d.requestIq(failing, 1000);
    assert.equal(error.attrs.type, 'error');
    assert.equal(error.attrs.id, 'mine', 'the caller\'s id is kept');
  });

  test('a reply from another entity does not count; no reply: rejects after the timeout; the error of an unknown domain resolves', async () => {
    const { d } = setup();
    d.registerService('silent.example', ({ stanza }) => {
      // Someone else answers with the same id: not the addressed entity.
      setImmediate(() => void d.route(x('iq', NS.CLIENT, { type: 'result', id: stanza.attrs.id, from: 'other.example', to: 'localhost' })));
    });
    d.registerService('other.example', () => undefined);
    await assert.rejects(d.requestIq(iqFrom('localhost', 'silent.example'), 50), /timed out/);
    // No such domain (no federation): the hub's own bounce is the reply.
    const bounced = await d.requestIq(iqFrom('localhost', 'nowhere.example'), 1000);
    assert.equal(bounced.attrs.type, 'error');
    assert.equal(bounced.getChild('error')?.getChild('remote-server-not-found', NS.STANZA_ERRORS) !== undefined, true);
  });

  test('only from one of our domains, to a valid JID', async () => {
    const { d } = setup();
    await assert.rejects(d.requestIq(iqFrom('alice@localhost', 'push.example'), 50), /our domains/);
    await assert.rejects(d.requestIq(iqFrom('elsewhere.example', 'push.example'), 50), /our domains/);
    await assert.rejects(d.requestIq(x('iq', NS.CLIENT, { type: 'get', from: 'localhost' }, x('q', 'urn:test')), 50), /our domains/);
  });
});
