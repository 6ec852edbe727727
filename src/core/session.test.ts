// A session outlives its connection when the host keeps it (stream resumption,
// BOSH), ends exactly once, and never drops what it is handed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, x } from '../xml/element.js';
import { Jid } from '../jid/jid.js';
import { ClientSession, type EndReason, type Session, type SessionConnection, type SessionHost } from './session.js';
import { StreamError } from './errors.js';

class Conn implements SessionConnection {
  readonly got: Element[] = [];
  closedWith: StreamError | undefined | null = null;
  open = true;
  congested = false;
  drained(): Promise<boolean> {
    return Promise.resolve(this.open);
  }
  constructor(private readonly onClose?: () => void) {}
  write(el: Element): boolean {
    if (!this.open) return false;
    this.got.push(el);
    return true;
  }
  close(error?: StreamError): void {
    this.closedWith = error;
    this.open = false;
    this.onClose?.();
  }
}

class Host implements SessionHost {
  keep = false;
  readonly undelivered: Element[] = [];
  readonly endings: EndReason[] = [];
  filter: (el: Element) => Element | null = (el) => el;
  filterOutgoing(_s: Session, el: Element): Element | null {
    return this.filter(el);
  }
  undeliverable(_s: Session, el: Element): void {
    this.undelivered.push(el);
  }
  readonly diverted: Element[] = [];
  drains = 0;
  congested(_s: Session, el: Element): void {
    this.diverted.push(el);
  }
  drained(): void {
    this.drains++;
  }
  keepDetached(): boolean {
    return this.keep;
  }
  ended(_s: Session, reason: EndReason): void {
    this.endings.push(reason);
  }
  readonly writtenSeen: Element[] = [];
  written(_s: Session, el: Element): void {
    this.writtenSeen.push(el);
  }
  idle(): void {}
}

const m = (body: string): Element => x('message', 'jabber:client', { to: 'a@h/r' }, x('body', 'jabber:client', {}, body));

test('send goes through the filters to the connection; a filter may take a stanza', () => {
  const host = new Host();
  const conn = new Conn();
  const s = new ClientSession(host, Jid.parse('a@h/r'), conn);
  host.filter = (el) => (el.getChildText('body') === 'held' ? null : el.clone().setAttr('id', 'stamped'));
  assert.equal(s.send(m('one')), true);
  assert.equal(s.send(m('held')), true, 'taken by a filter counts as handled');
  assert.deepEqual(conn.got.map((e) => [e.getChildText('body'), e.attrs.id]), [['one', 'stamped']]);
});

test('a connection that cannot write hands the stanza to the host; trySend reports it instead', () => {
  const host = new Host();
  const conn = new Conn();
  const s = new ClientSession(host, Jid.parse('a@h/r'), conn);
  conn.open = false;
  assert.equal(s.trySend(m('kept-by-caller')), false);
  assert.equal(host.undelivered.length, 0, 'trySend does not re-route');
  assert.equal(s.send(m('rerouted')), false);
  assert.deepEqual(host.undelivered.map((e) => e.getChildText('body')), ['rerouted']);
});

test('without a keeper, losing the connection ends the session once', () => {
  const host = new Host();
  const conn = new Conn();
  const s = new ClientSession(host, Jid.parse('a@h/r'), conn);
  s.detach(conn, 'disconnect');
  s.detach(conn, 'error');
  s.end('timeout');
  assert.deepEqual(host.endings, ['disconnect']);
  assert.equal(s.ended, true);
  assert.equal(s.send(m('late')), false, 'an ended session delivers nothing');
  assert.deepEqual(host.undelivered.map((e) => e.getChildText('body')), ['late'], '... but loses nothing');
});

test('a kept session outlives its connection: detached it queues nothing itself, a new connection carries it', () => {
  const host = new Host();
  host.keep = true;
  const first = new Conn();
  const s = new ClientSession(host, Jid.parse('a@h/r'), first);
  s.detach(first, 'disconnect');
  assert.deepEqual(host.endings, [], 'kept');
  assert.equal(s.attached, false);
  assert.equal(s.send(m('while-detached')), false);
  assert.deepEqual(host.undelivered.map((e) => e.getChildText('body')), ['while-detached']);
  const second = new Conn();
  s.attach(second);
  assert.equal(s.send(m('resumed')), true);
  assert.deepEqual(second.got.map((e) => e.getChildText('body')), ['resumed']);
  // The old connection going away again changes nothing.
  s.detach(first, 'error');
  assert.deepEqual(host.endings, []);
  s.close(new StreamError('system-shutdown'));
  assert.equal(second.closedWith?.condition, 'system-shutdown');
  // A connection it is not attached to cannot detach it.
  const third = new ClientSession(host, Jid.parse('a@h/s'), new Conn());
  third.detach(new Conn(), 'disconnect');
  assert.equal(third.attached, true);
  // Closing a detached session ends it directly.
  const c = new Conn();
  const fourth = new ClientSession(host, Jid.parse('a@h/t'), c);
  fourth.detach(c, 'disconnect');
  fourth.close(new StreamError('system-shutdown'));
  assert.deepEqual(host.endings, ['shutdown']);
});
