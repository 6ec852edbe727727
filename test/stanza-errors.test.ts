// Stanza errors and the server's own answers over raw XML (RFC 6120 §8.3,
// §10; RFC 6121 §8.5; XEP-0030; XEP-0092). Every error reply is checked for the
// rules of RFC 6120 §8.3.1: same kind of stanza, type='error', the original id,
// 'from' and 'to' swapped, one <error/> with a defined condition.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import type { RawClient } from './support/raw-client.js';
import { SERVER_NAME, SERVER_VERSION } from '../src/version.js';

let srv: TestServer;
let alice: LoggedIn;
let bob: LoggedIn;

before(async () => {
  srv = await startTestServer();
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  alice = await login(srv.port, 'alice', 'alice-pass');
  bob = await login(srv.port, 'bob', 'bob-pass');
  // RFC 6121 §4.2: both become available, so messages to their bare JIDs are delivered.
  alice.client.send('<presence/>');
  bob.client.send('<presence/>');
  await roundTrip(alice.client);
  await roundTrip(bob.client);
});
after(async () => {
  alice.client.close();
  bob.client.close();
  await srv.stop();
});

let seq = 0;

/** A ping to the server and its answer: everything the client sent before has been processed. */
async function roundTrip(c: RawClient): Promise<void> {
  const id = `rt-${++seq}`;
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  const r = await c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 'ping result');
  assert.equal(r.attrs.type, 'result');
}

/** Sends `xml` and waits for the stanza carrying `id` back. */
async function request(c: RawClient, xml: string, id: string, name = 'iq'): Promise<Element> {
  c.send(xml);
  return c.waitFor((el) => el.name === name && el.attrs.id === id, `<${name} id='${id}'/>`);
}

/** RFC 6120 §8.3.2 syntax of an error reply, with the expected addresses. */
function assertError(
  reply: Element,
  expected: { name: string; id: string | undefined; from: string | undefined; to: string; condition: string; type: string },
): void {
  assert.equal(reply.name, expected.name);
  assert.equal(reply.attrs.type, 'error');
  assert.equal(reply.attrs.id, expected.id, 'the original id (RFC 6120 §8.3.1 rule 3)');
  assert.equal(reply.attrs.from, expected.from, "'from' is the original 'to'");
  assert.equal(reply.attrs.to, expected.to, "'to' is the original sender's full JID");
  const errors = reply.getChildren('error', NS.CLIENT);
  assert.equal(errors.length, 1, 'exactly one <error/> (RFC 6120 §8.3.1 rule 4)');
  const error = errors[0]!;
  assert.equal(error.attrs.type, expected.type);
  const conditions = error.getChildren().filter((e) => e.xmlns === NS.STANZA_ERRORS && e.name !== 'text');
  assert.deepEqual(
    conditions.map((e) => e.name),
    [expected.condition],
  );
}

/**
 * Asserts that `c` receives no stanza with this id: a round trip made after the
 * stanza that could have produced it is answered first (the server handles each
 * client's stanzas in order and writes to a socket in order).
 */
async function assertNothingWithId(c: RawClient, id: string, after: RawClient = c): Promise<void> {
  const probe = `probe-${++seq}`;
  after.send(`<iq type='get' id='${probe}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  await after.waitFor((el) => el.attrs.id === probe, 'probe result');
  if (after !== c) await roundTrip(c);
  // Anything for `id` arrived before those answers and is already queued: look without waiting.
  const stray = await c.waitFor((el) => el.attrs.id === id, 'stray', 0).catch(() => undefined);
  assert.equal(stray, undefined, `no stanza with id ${id} was delivered: ${stray?.toString() ?? ''}`);
}

describe('IQs addressed to the server (RFC 6120 §10.3.3)', () => {
  test('an unknown namespace: service-unavailable', async () => {
    const r = await request(alice.client, `<iq type='get' id='u1' to='localhost'><foo xmlns='urn:example:unknown'/></iq>`, 'u1');
    assertError(r, { name: 'iq', id: 'u1', from: 'localhost', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
    assert.ok(r.getChild('foo', 'urn:example:unknown'), 'the original payload may be included (rule 6)');
  });

  test('an unknown namespace in a set without to (handled for the account): service-unavailable', async () => {
    const r = await request(alice.client, `<iq type='set' id='u2'><foo xmlns='urn:example:unknown'/></iq>`, 'u2');
    assertError(r, { name: 'iq', id: 'u2', from: undefined, to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });

  test('two payload children: bad-request (RFC 6120 §8.2.3)', async () => {
    const r = await request(alice.client, `<iq type='get' id='b1' to='localhost'><ping xmlns='${NS.PING}'/><query xmlns='${NS.VERSION}'/></iq>`, 'b1');
    assertError(r, { name: 'iq', id: 'b1', from: 'localhost', to: alice.jid, condition: 'bad-request', type: 'modify' });
  });

  test('no payload at all: bad-request', async () => {
    const r = await request(alice.client, `<iq type='get' id='b2' to='localhost'/>`, 'b2');
    assertError(r, { name: 'iq', id: 'b2', from: 'localhost', to: alice.jid, condition: 'bad-request', type: 'modify' });
  });

  test('an unknown type: bad-request', async () => {
    const r = await request(alice.client, `<iq type='fetch' id='b3' to='localhost'><ping xmlns='${NS.PING}'/></iq>`, 'b3');
    assertError(r, { name: 'iq', id: 'b3', from: 'localhost', to: alice.jid, condition: 'bad-request', type: 'modify' });
  });

  test('no id: bad-request (the reply has no id to copy)', async () => {
    alice.client.send(`<iq type='get' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
    const r = await alice.client.waitFor((el) => el.name === 'iq' && el.attrs.type === 'error' && el.attrs.id === undefined, 'error without id');
    assertError(r, { name: 'iq', id: undefined, from: 'localhost', to: alice.jid, condition: 'bad-request', type: 'modify' });
  });

  test('an IQ of type error or result is never answered (RFC 6120 §8.3.1 rule 8, §8.2.3)', async () => {
    alice.client.send(`<iq type='error' id='e1' to='localhost'><error type='cancel'><bad-request xmlns='${NS.STANZA_ERRORS}'/></error></iq>`);
    alice.client.send(`<iq type='result' id='e2' to='localhost'/>`);
    alice.client.send(`<iq type='error' id='e3' to='nobody@localhost/x'><error type='cancel'><bad-request xmlns='${NS.STANZA_ERRORS}'/></error></iq>`);
    await assertNothingWithId(alice.client, 'e1');
    await assertNothingWithId(alice.client, 'e2');
    await assertNothingWithId(alice.client, 'e3');
  });
});

describe('routing errors', () => {
  test('an IQ to an offline full JID: service-unavailable (RFC 6121 §8.5.3.2.1)', async () => {
    const r = await request(alice.client, `<iq type='get' id='o1' to='bob@localhost/no-such-resource'><ping xmlns='${NS.PING}'/></iq>`, 'o1');
    assertError(r, { name: 'iq', id: 'o1', from: 'bob@localhost/no-such-resource', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });

  test('a message to a non-existent local user: service-unavailable bounce (RFC 6121 §8.5.2.2.1)', async () => {
    const r = await request(alice.client, `<message to='nobody@localhost' type='chat' id='m1'><body>anyone?</body></message>`, 'm1', 'message');
    assertError(r, { name: 'message', id: 'm1', from: 'nobody@localhost', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });

  test('a message to a non-existent full JID is treated like one to its bare JID', async () => {
    const r = await request(alice.client, `<message to='nobody@localhost/res' type='normal' id='m2'><body>x</body></message>`, 'm2', 'message');
    assertError(r, { name: 'message', id: 'm2', from: 'nobody@localhost/res', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });

  test('an error message to a non-existent user is not bounced (RFC 6120 §8.3.1 rule 8)', async () => {
    alice.client.send(`<message to='nobody@localhost' type='error' id='m3'><error type='cancel'><gone xmlns='${NS.STANZA_ERRORS}'/></error></message>`);
    await assertNothingWithId(alice.client, 'm3');
  });

  for (const bad of ['@localhost', 'alice@localhost/', 'a b@localhost', 'juliet@exa mple.com']) {
    test(`a message with a malformed to (${JSON.stringify(bad)}): jid-malformed (RFC 6120 §8.3.3.8)`, async () => {
      const id = `jm-${++seq}`;
      const r = await request(alice.client, `<message to='${bad}' type='chat' id='${id}'><body>x</body></message>`, id, 'message');
      // RFC 6120 §8.3.1 rule 2: the addresses are not swapped when that would put a
      // malformed JID in 'from'; the server that found the error answers instead.
      assertError(r, { name: 'message', id, from: 'localhost', to: alice.jid, condition: 'jid-malformed', type: 'modify' });
    });
  }

  test('an IQ with a malformed to: jid-malformed', async () => {
    const r = await request(alice.client, `<iq type='get' id='jm-iq' to='@@'><ping xmlns='${NS.PING}'/></iq>`, 'jm-iq');
    assertError(r, { name: 'iq', id: 'jm-iq', from: 'localhost', to: alice.jid, condition: 'jid-malformed', type: 'modify' });
  });

  test('an IQ to a remote domain: remote-server-not-found (no server-to-server yet)', async () => {
    const r = await request(alice.client, `<iq type='get' id='rs1' to='example.net'><ping xmlns='${NS.PING}'/></iq>`, 'rs1');
    assertError(r, { name: 'iq', id: 'rs1', from: 'example.net', to: alice.jid, condition: 'remote-server-not-found', type: 'cancel' });
  });

  test('an IQ to a full JID at a remote domain: remote-server-not-found', async () => {
    const r = await request(alice.client, `<iq type='get' id='rs2' to='romeo@example.net/orchard'><ping xmlns='${NS.PING}'/></iq>`, 'rs2');
    assertError(r, { name: 'iq', id: 'rs2', from: 'romeo@example.net/orchard', to: alice.jid, condition: 'remote-server-not-found', type: 'cancel' });
  });

  test('a message to a remote user: remote-server-not-found', async () => {
    const r = await request(alice.client, `<message to='romeo@example.net' type='chat' id='rs3'><body>hi</body></message>`, 'rs3', 'message');
    assertError(r, { name: 'message', id: 'rs3', from: 'romeo@example.net', to: alice.jid, condition: 'remote-server-not-found', type: 'cancel' });
  });
});

describe("IQs to another account's bare JID are answered by the server (RFC 6120 §10.3.3, RFC 6121 §8.5.1)", () => {
  test('an unknown namespace: service-unavailable from the bare JID; the user never sees it', async () => {
    const r = await request(alice.client, `<iq type='get' id='bb1' to='bob@localhost'><foo xmlns='urn:example:unknown'/></iq>`, 'bb1');
    assertError(r, { name: 'iq', id: 'bb1', from: 'bob@localhost', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
    await assertNothingWithId(bob.client, 'bb1', alice.client);
  });

  test('an existing and a non-existent account get the same answer (no account probing)', async () => {
    const a = await request(alice.client, `<iq type='get' id='pr1' to='bob@localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`, 'pr1');
    const b = await request(alice.client, `<iq type='get' id='pr2' to='nobody@localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`, 'pr2');
    assertError(a, { name: 'iq', id: 'pr1', from: 'bob@localhost', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
    assertError(b, { name: 'iq', id: 'pr2', from: 'nobody@localhost', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });

  test('an IQ to a bound full JID is delivered, and its answer routed back', async () => {
    const r = request(alice.client, `<iq type='get' id='fj1' to='${bob.jid}'><query xmlns='${NS.VERSION}'/></iq>`, 'fj1');
    const got = await bob.client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'fj1', 'the forwarded IQ');
    assert.equal(got.attrs.from, alice.jid);
    assert.equal(got.attrs.to, bob.jid);
    bob.client.send(`<iq type='error' id='fj1' to='${alice.jid}'><error type='cancel'><service-unavailable xmlns='${NS.STANZA_ERRORS}'/></error></iq>`);
    const reply = await r;
    assertError(reply, { name: 'iq', id: 'fj1', from: bob.jid, to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });
});

describe('server answers', () => {
  test('disco#info of the server (XEP-0030 §3.1)', async () => {
    const r = await request(alice.client, `<iq type='get' id='di1' to='localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`, 'di1');
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'localhost');
    assert.equal(r.attrs.to, alice.jid);
    const q = r.getChild('query', NS.DISCO_INFO);
    assert.ok(q);
    const identity = q.getChild('identity', NS.DISCO_INFO);
    assert.equal(identity?.attrs.category, 'server');
    assert.equal(identity?.attrs.type, 'im');
    const features = q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attrs.var);
    for (const f of [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.VERSION, NS.PING]) assert.ok(features.includes(f), `feature ${f}`);
    assert.equal(new Set(features).size, features.length, 'no duplicate features');
  });

  test('disco#items of the server', async () => {
    const r = await request(alice.client, `<iq type='get' id='dit1' to='localhost'><query xmlns='${NS.DISCO_ITEMS}'/></iq>`, 'dit1');
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'localhost');
    assert.ok(r.getChild('query', NS.DISCO_ITEMS));
  });

  test('disco#info with an unknown node: item-not-found (XEP-0030 §7)', async () => {
    const r = await request(alice.client, `<iq type='get' id='di2' to='localhost'><query xmlns='${NS.DISCO_INFO}' node='nope'/></iq>`, 'di2');
    assertError(r, { name: 'iq', id: 'di2', from: 'localhost', to: alice.jid, condition: 'item-not-found', type: 'cancel' });
  });

  test("disco#info of one's own account", async () => {
    const r = await request(alice.client, `<iq type='get' id='di3' to='alice@localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`, 'di3');
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'alice@localhost');
    const identity = r.getChild('query', NS.DISCO_INFO)?.getChild('identity', NS.DISCO_INFO);
    assert.equal(identity?.attrs.category, 'account');
    assert.equal(identity?.attrs.type, 'registered');
  });

  test('software version (XEP-0092)', async () => {
    const r = await request(alice.client, `<iq type='get' id='v1' to='localhost'><query xmlns='${NS.VERSION}'/></iq>`, 'v1');
    assert.equal(r.attrs.type, 'result');
    assert.equal(r.attrs.from, 'localhost');
    assert.equal(r.attrs.to, alice.jid);
    const q = r.getChild('query', NS.VERSION);
    assert.equal(q?.getChildText('name', NS.VERSION), SERVER_NAME);
    assert.equal(q?.getChildText('version', NS.VERSION), SERVER_VERSION);
  });

  test('a version set is not supported: service-unavailable', async () => {
    const r = await request(alice.client, `<iq type='set' id='v2' to='localhost'><query xmlns='${NS.VERSION}'/></iq>`, 'v2');
    assertError(r, { name: 'iq', id: 'v2', from: 'localhost', to: alice.jid, condition: 'service-unavailable', type: 'cancel' });
  });

  test('the streams stayed up through every stanza error', async () => {
    await roundTrip(alice.client);
    await roundTrip(bob.client);
    assert.equal(alice.client.closed, false);
    assert.equal(bob.client.closed, false);
  });
});
