// BoshSession as a transport, driven directly: what the stream reads and writes
// (the handler) against what the HTTP side sees (the answers), including while
// the stream has paused reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../log/logger.js';
import { BoshSessions, NS_HTTPBIND, parseBoshBody, type BoshRequest } from './bosh.js';
import type { Transport } from '../transport.js';

const settings = { max_wait: 30, max_hold: 1, inactivity: 30, max_pause: 60, polling: 0 };

function body(attrs: string, payload = ''): BoshRequest {
  const parsed = parseBoshBody(Buffer.from(`<body xmlns='${NS_HTTPBIND}' ${attrs}>${payload}</body>`), { maxStanzaSize: 10000 });
  assert.ok(typeof parsed !== 'string', String(parsed));
  return parsed;
}

function setup(maxInput = 1000) {
  const sessions = new BoshSessions({ settings: () => settings, log: silentLogger(), maxInputBytes: () => maxInput }, () => undefined);
  const read: string[] = [];
  let transport: Transport | undefined;
  const answers: string[] = [];
  sessions.request(body("rid='10' to='localhost' hold='1' wait='30'"), { remoteAddress: '127.0.0.1', secure: true }, (b) => answers.push(b), (t) => {
    transport = t;
    t.setHandler({ data: (d) => read.push(d.toString()), closed: () => read.push('CLOSED') });
  });
  const sid = /sid='([^']+)'/.exec(answers[0]!)![1]!;
  return { sessions, read, transport: transport!, answers, sid, peer: { remoteAddress: '127.0.0.1', secure: true } };
}

test('the creation request opens the stream with the header the client asked for', () => {
  const { read, answers } = setup();
  assert.match(read[0]!, /^<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' xml:lang='en'\/>$/);
  assert.match(answers[0]!, /requests='2'/);
});

test('while the stream does not read, input waits in order and requests are still answered with output', () => {
  const { sessions, read, transport, answers, sid, peer } = setup();
  transport.pause();
  sessions.request(body(`sid='${sid}' rid='11'`, "<message xmlns='jabber:client' id='a'/>"), peer, (b) => answers.push(b));
  sessions.request(body(`sid='${sid}' rid='12'`, "<message xmlns='jabber:client' id='b'/>"), peer, (b) => answers.push(b));
  assert.equal(read.length, 1, 'nothing read while paused');
  // rid 11 was answered when 12 exceeded hold; output written now goes to 12.
  assert.equal(answers.length, 2);
  transport.write("<message xmlns='jabber:client' id='out'/>");
  return new Promise<void>((resolve) => {
    setImmediate(() => {
      assert.match(answers[2]!, /id="out"|id='out'/);
      transport.resume();
      assert.deepEqual(read.slice(1), ['<message xmlns="jabber:client" id="a"/>', '<message xmlns="jabber:client" id="b"/>']);
      transport.destroy();
      resolve();
    });
  });
});

test('a client that keeps sending while the stream does not read is cut off (bounded input)', () => {
  const { sessions, read, transport, answers, sid, peer } = setup(300);
  transport.pause();
  const big = `<message xmlns='jabber:client'><body>${'x'.repeat(150)}</body></message>`;
  sessions.request(body(`sid='${sid}' rid='11'`, big), peer, (b) => answers.push(b));
  sessions.request(body(`sid='${sid}' rid='12'`, big), peer, (b) => answers.push(b));
  assert.match(answers.at(-1)!, /type='terminate' condition='policy-violation'/);
  assert.equal(read.at(-1), 'CLOSED', 'the stream ends as if its connection dropped');
});
