import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Jid } from '../jid/jid.js';
import { x } from '../xml/element.js';
import { ClientSession, type SessionConnection, type SessionHost } from '../core/session.js';
import { LocalRouter } from './local.js';

const host: SessionHost = {
  filterOutgoing: (_s, el) => el,
  undeliverable: () => undefined,
  congested: () => undefined,
  drained: () => undefined,
  keepDetached: () => false,
  ended: () => undefined,
  written: () => undefined,
  idle: () => undefined,
};
const conn: SessionConnection = { write: () => true, close: () => undefined, congested: false, drained: () => Promise.resolve(true) };
const session = (full: string): ClientSession => {
  const j = Jid.parse(full);
  return new ClientSession(host, j, conn);
};

describe('LocalRouter', () => {
  test('registers full JIDs once, finds them by full and bare JID, unregisters idempotently', async () => {
    const r = new LocalRouter();
    const a1 = session('a@h/1');
    const a2 = session('a@h/2');
    assert.equal(await r.register(a1), true);
    assert.equal(await r.register(a2), true);
    assert.equal(await r.register(session('a@h/1')), false, 'a taken full JID is refused');
    assert.equal(r.size, 2);
    assert.equal(r.getSession('a@h/1'), a1);
    assert.deepEqual(r.getSessions('a@h'), [a1, a2]);
    assert.equal(r.hasResource('a@h', '2'), true);
    r.unregister(session('a@h/1'));
    assert.equal(r.getSession('a@h/1'), a1, 'another object with the same JID does not unregister it');
    r.unregister(a1);
    r.unregister(a1);
    assert.deepEqual(r.getSessions('a@h'), [a2]);
    r.unregister(a2);
    assert.deepEqual(r.getSessions('a@h'), []);
    assert.equal(r.size, 0);
    assert.deepEqual([...r.all()], []);
  });

  test('presence and roster interest change only through the router, and only for registered sessions', async () => {
    const r = new LocalRouter();
    const s = session('b@h/x');
    const p = x('presence', 'jabber:client', { from: 'b@h/x' }, x('priority', 'jabber:client', {}, '5'));
    r.setPresence(s, { presence: p, priority: 5 });
    assert.equal(s.available, false, 'not registered: no change');
    await r.register(s);
    r.setPresence(s, { presence: p, priority: 5 });
    assert.deepEqual([s.available, s.priority, s.presence], [true, 5, p]);
    r.setInterested(s, true);
    assert.equal(s.interested, true);
    r.setPresence(s, { presence: undefined, priority: 0 });
    assert.deepEqual([s.available, s.presence, s.priority], [false, undefined, 5], 'unavailable keeps the last priority');
    r.unregister(s);
    r.setPresence(s, { presence: p, priority: 1 });
    assert.equal(s.available, false, 'an ended session is not revived');
  });
});
