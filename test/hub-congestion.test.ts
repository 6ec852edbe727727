// A client that is not reading (its output buffer over the limit) in one process,
// on the fake transport: what others send it is kept elsewhere, held or refused,
// never pushed into its buffer; its own traffic still gets answers; reading from
// it pauses; when it drains, what was held follows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NS } from '../src/xml/namespaces.js';
import { x } from '../src/xml/element.js';
import { Priority } from '../src/core/hooks.js';
import type { AddressedStanza } from '../src/core/api.js';
import { flush, hub } from './support/harness.js';

test('a congested session diverts messages, holds presence, refuses requests from others; its own requests are answered; drain releases', async () => {
  const h = hub();
  h.dispatcher.handleIq('server', NS.PING, 'get', () => undefined);
  const alice = await h.login('alice');
  const bob = await h.login('bob');
  // Both available (no presence module here: the router is told directly).
  for (const s of [alice.session, bob.session]) h.router.setPresence(s, { presence: x('presence', NS.CLIENT, { from: s.jid.toString() }), priority: 0 });
  const kept: AddressedStanza[] = [];
  h.dispatcher.hookUndeliverable((ev) => {
    kept.push(ev);
    return true;
  }, Priority.DEFAULT);
  const drains: string[] = [];
  h.dispatcher.on('session-drained', (s) => drains.push(s.jid.toString()));

  // alice stops reading: her output buffer is over the limit (4 x max_stanza_bytes).
  alice.tr.pendingBytes = h.config.limits.max_stanza_bytes * 5;
  const before = alice.tr.received.length;
  bob.tr.send(`<message to='alice@localhost' type='chat' id='m1'><body>one</body></message>`);
  bob.tr.send(`<presence to='${alice.session.jid.toString()}'><status>first</status></presence>`);
  bob.tr.send(`<presence to='${alice.session.jid.toString()}'><status>latest</status></presence>`);
  bob.tr.send(`<iq type='get' id='q1' to='${alice.session.jid.toString()}'><query xmlns='${NS.VERSION}'/></iq>`);
  await flush(6);
  assert.equal(alice.tr.received.length, before, 'nothing from others was written to the full buffer');
  assert.deepEqual(
    kept.map((k) => k.stanza.attrs.id),
    ['m1'],
    'the message went where a message for an unreachable resource goes (offline storage here)',
  );
  const refused = bob.tr.received.find((el) => el.attrs.id === 'q1');
  assert.equal(refused?.attrs.type, 'error');
  assert.ok(refused?.getChild('error')?.getChild('resource-constraint', NS.STANZA_ERRORS), 'IQ request: resource-constraint (wait)');
  assert.equal(refused?.getChild('error')?.attrs.type, 'wait');
  assert.equal(alice.tr.paused, true, "reading from alice is paused: her own requests would only add replies");
  assert.ok(h.router.getSession(alice.session.jid.toString()), 'alice is not disconnected');
  assert.equal(alice.tr.streamErrors().length, 0);

  // Her own requests (already read before the pause) are still answered: they are hers, not others'.
  await h.dispatcher.handleStanza(alice.session, x('iq', NS.CLIENT, { type: 'get', id: 'own', from: alice.session.jid.toString() }, x('ping', NS.PING)));
  assert.ok(alice.tr.received.some((el) => el.attrs.id === 'own' && el.attrs.type === 'result'));

  // She reads everything: reading resumes, the latest presence from bob follows, the event fires.
  alice.tr.drain();
  await flush();
  assert.equal(alice.tr.paused, false);
  const presences = alice.tr.received.slice(before).filter((el) => el.name === 'presence' && el.attrs.from === bob.session.jid.toString());
  assert.deepEqual(
    presences.map((p) => p.getChildText('status')),
    ['latest'],
    'only the latest presence per sender was held',
  );
  assert.deepEqual(drains, [alice.session.jid.toString()]);
  // Not congested any more: messages go straight in again.
  bob.tr.send(`<message to='alice@localhost' type='chat' id='m2'><body>two</body></message>`);
  await flush();
  assert.ok(alice.tr.received.some((el) => el.attrs.id === 'm2'));
});

test('a client that does not read even its own answers is closed at the hard limit', async () => {
  const h = hub();
  const alice = await h.login('alice');
  alice.tr.pendingBytes = h.config.limits.max_stanza_bytes * 17;
  alice.tr.send(`<iq type='get' id='p'><ping xmlns='${NS.PING}'/></iq>`);
  await flush();
  const [err] = alice.tr.streamErrors();
  assert.ok(err?.getChild('policy-violation', NS.STREAM_ERRORS));
  assert.equal(h.router.size, 0);
});
