// XEP-0357 in process: the harness's hub and client streams, a real store (SQLite; PostgreSQL
// under SHOAL_TEST_STORAGE=postgres), and a service domain standing in for the app server's pubsub service.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { hub, hubOnMockedClock, startModules, type FakeTransport, type Hub } from '../../../test/support/harness.js';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Priority } from '../../core/hooks.js';
import { credentials, item, testStorage } from '../../storage/sql/testutil.js';
import { MAX_TRANSIENT_ERRORS, NS_DATA, NS_PUBSUB, NS_PUSH, PUBLISH_OPTIONS, PUSH_SUMMARY, pushModule } from './push.js';
import { SqlPushStore } from './store.js';

const SERVICE = 'push.example';

/** What the app server answers to a publish: a result, or an error with this condition and type. */
type Answer = { error: string; type: string } | 'result' | 'none';

/** A hub with the push module on a fresh SQLite file, accounts alice and bob, and a push service. */
async function setup(t: TestContext, settings: Record<string, unknown> = {}, mocked = false) {
  const config = { push: { min_interval: 0, ...settings } };
  const h: Hub & { tick?: (ms: number) => void } = mocked ? hubOnMockedClock(t, config) : hub(config);
  const ts = await testStorage();
  for (const u of ['alice', 'bob']) await ts.storage.accounts.create('localhost', u, [credentials('SHA-256', 1)]);
  h.accounts.add('alice@localhost', 'bob@localhost');
  const modules = await startModules(h, [pushModule], ts.storage);
  const store = await SqlPushStore.open(ts.storage.sql);
  const published: Element[] = [];
  const state = { answer: 'result' as Answer };
  h.dispatcher.registerService(SERVICE, ({ stanza }) => {
    if (stanza.name !== 'iq') return;
    published.push(stanza);
    const answer = state.answer;
    if (answer === 'none') return;
    const reply = x('iq', NS.CLIENT, { type: answer === 'result' ? 'result' : 'error', id: stanza.attrs.id, from: SERVICE, to: stanza.attrs.from });
    if (answer !== 'result') reply.append(x('error', NS.CLIENT, { type: answer.type }, x(answer.error, NS.STANZA_ERRORS)));
    setImmediate(() => void h.dispatcher.route(reply));
  });
  // Every client connection is closed at the end (their ping timers would keep the process alive).
  const transports: FakeTransport[] = [];
  const login = h.login.bind(h);
  h.login = async (user) => {
    const r = await login(user);
    transports.push(r.tr);
    return r;
  };
  t.after(async () => {
    for (const tr of transports) if (!tr.ended) tr.close();
    await modules.stop(() => undefined);
    await h.dispatcher.drain();
    await ts.cleanup();
  });
  return { h, store, storage: ts.storage, published, state, tick: h.tick };
}

const turn = () => new Promise((r) => setImmediate(r));

/**
 * Turns of the event loop until `cond` holds (storage work is asynchronous: PostgreSQL's takes
 * many turns), for at most 10 s of real time (performance.now: the mocked clock mocks Date).
 */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (cond()) return;
    await turn();
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The IQ answer with this id that the client received. */
const answerTo = (tr: FakeTransport, id: string): Element | undefined => tr.received.find((e) => e.name === 'iq' && e.attrs.id === id);
const conditionOf = (iq: Element | undefined): string | undefined =>
  iq?.getChild('error')?.getChildren().find((c) => c.xmlns === NS.STANZA_ERRORS)?.name;

const optionsForm = (secret: string) =>
  `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>${PUBLISH_OPTIONS}</value></field><field var='secret'><value>${secret}</value></field></x>`;

async function ask(tr: FakeTransport, id: string, payload: string, to?: string): Promise<Element> {
  tr.send(`<iq type='set' id='${id}'${to ? ` to='${to}'` : ''}>${payload}</iq>`);
  await until(() => answerTo(tr, id) !== undefined, `the answer to ${id}`);
  return answerTo(tr, id)!;
}

async function enable(tr: FakeTransport, id: string, node: string, form = ''): Promise<Element> {
  return ask(tr, id, `<enable xmlns='${NS_PUSH}' jid='${SERVICE}' node='${node}'>${form}</enable>`);
}

/** The summary form's fields of a published notification. */
function summaryOf(iq: Element): Record<string, string> {
  const item = iq.getChild('pubsub', NS_PUBSUB)?.getChild('publish', NS_PUBSUB)?.getChild('item', NS_PUBSUB);
  const form = item?.getChild('notification', NS_PUSH)?.getChild('x', NS_DATA);
  assert.ok(form, 'a notification with a data form');
  const fields: Record<string, string> = {};
  for (const f of form.getChildren('field', NS_DATA)) fields[f.attrs.var!] = f.getChildText('value', NS_DATA) ?? '';
  return fields;
}

const chat = (tr: FakeTransport, id: string, body?: string, to = 'alice@localhost') =>
  tr.send(`<message to='${to}' type='chat' id='${id}'>${body === undefined ? `<composing xmlns='http://jabber.org/protocol/chatstates'/>` : `<body>${body}</body>`}</message>`);

describe('XEP-0357 push notifications', () => {
  test('the account advertises urn:xmpp:push:0 (XEP-0357 §4.1)', async (t) => {
    const { h } = await setup(t);
    assert.ok(h.dispatcher.features('account').includes(NS_PUSH));
    assert.ok(!h.dispatcher.features('server').includes(NS_PUSH), 'the account, not the server domain');
  });

  test('enable and disable are checked: jid, node, form, who asks, how many', async (t) => {
    const { h, store } = await setup(t, { max_per_account: 2 });
    const { tr } = await h.login('alice');
    const cases: [string, string, string][] = [
      ['no-jid', `<enable xmlns='${NS_PUSH}' node='n'/>`, 'bad-request'],
      ['bad-jid', `<enable xmlns='${NS_PUSH}' jid='a@b@c' node='n'/>`, 'jid-malformed'],
      ['no-node', `<enable xmlns='${NS_PUSH}' jid='${SERVICE}'/>`, 'bad-request'],
      ['local', `<enable xmlns='${NS_PUSH}' jid='bob@localhost' node='n'/>`, 'not-acceptable'],
      ['form-type', `<enable xmlns='${NS_PUSH}' jid='${SERVICE}' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>`, 'bad-request'],
      ['form-form', `<enable xmlns='${NS_PUSH}' jid='${SERVICE}' node='n'><x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>${PUBLISH_OPTIONS}</value></field></x></enable>`, 'bad-request'],
      ['big-form', `<enable xmlns='${NS_PUSH}' jid='${SERVICE}' node='n'>${optionsForm('s'.repeat(5000))}</enable>`, 'not-acceptable'],
      ['other', `<other xmlns='${NS_PUSH}'/>`, 'bad-request'],
      ['disable-no-jid', `<disable xmlns='${NS_PUSH}'/>`, 'bad-request'],
    ];
    for (const [id, payload, condition] of cases) assert.equal(conditionOf(await ask(tr, id, payload)), condition, id);
    assert.equal(conditionOf(await ask(tr, 'for-bob', `<enable xmlns='${NS_PUSH}' jid='${SERVICE}' node='n'/>`, 'bob@localhost')), 'forbidden', 'only for one\'s own account');
    assert.deepEqual(await store.list('localhost', 'alice'), [], 'nothing stored by a refused request');
    assert.deepEqual(await store.list('localhost', 'bob'), []);

    assert.equal((await enable(tr, 'e1', 'n1', optionsForm('s1'))).attrs.type, 'result');
    assert.equal((await enable(tr, 'e2', 'n2')).attrs.type, 'result');
    assert.equal(conditionOf(await enable(tr, 'e3', 'n3')), 'policy-violation', 'max_per_account');
    assert.equal((await enable(tr, 'e4', 'n1', optionsForm('s2'))).attrs.type, 'result', 'the same node again replaces its options');
    const regs = await store.list('localhost', 'alice');
    assert.deepEqual(regs.map((r) => r.node).sort(), ['n1', 'n2']);
    assert.match(regs.find((r) => r.node === 'n1')?.options ?? '', /s2/);
    assert.equal((await ask(tr, 'd1', `<disable xmlns='${NS_PUSH}' jid='${SERVICE}' node='n1'/>`)).attrs.type, 'result');
    assert.deepEqual((await store.list('localhost', 'alice')).map((r) => r.node), ['n2']);
    await enable(tr, 'e5', 'n3');
    assert.equal((await ask(tr, 'd2', `<disable xmlns='${NS_PUSH}' jid='${SERVICE}'/>`)).attrs.type, 'result');
    assert.deepEqual(await store.list('localhost', 'alice'), [], 'without a node: every node of the service (XEP-0357 §6)');
  });

  test('no session: a message publishes the summary from the server domain, with the publish options; counts add up', async (t) => {
    const { h, published } = await setup(t);
    const alice = await h.login('alice');
    await enable(alice.tr, 'e', 'node-1', optionsForm('top-secret'));
    alice.tr.close();
    await until(() => h.router.getSessions('alice@localhost').length === 0, 'alice gone');
    const bob = await h.login('bob');

    chat(bob.tr, 'm1', 'Wherefore art thou?');
    await until(() => published.length === 1, 'the first notification');
    const iq = published[0]!;
    assert.equal(iq.attrs.type, 'set');
    assert.equal(iq.attrs.from, 'localhost', 'XEP-0357 §7: from the user\'s server');
    assert.equal(iq.attrs.to, SERVICE);
    assert.equal(iq.getChild('pubsub', NS_PUBSUB)?.getChild('publish', NS_PUBSUB)?.attrs.node, 'node-1');
    assert.deepEqual(summaryOf(iq), { FORM_TYPE: PUSH_SUMMARY, 'message-count': '1', 'last-message-sender': bob.session.jid.toString() });
    const options = iq.getChild('pubsub', NS_PUBSUB)?.getChild('publish-options', NS_PUBSUB)?.getChild('x', NS_DATA);
    assert.ok(options, 'publish-options carried');
    assert.deepEqual(
      options.getChildren('field', NS_DATA).map((f) => `${f.attrs.var}=${f.getChildText('value', NS_DATA)}`),
      [`FORM_TYPE=${PUBLISH_OPTIONS}`, 'secret=top-secret'],
    );

    // A typing notification wakes nobody and is not counted.
    chat(bob.tr, 'typing');
    await h.settled();
    assert.equal(published.length, 1);
    chat(bob.tr, 'm2', 'second');
    await until(() => published.length === 2, 'the second notification');
    assert.equal(summaryOf(published[1]!)['message-count'], '2');

    // Back online: the count starts again; connected, nothing is published.
    const back = await h.login('alice');
    chat(bob.tr, 'm3', 'seen live');
    await h.settled();
    assert.equal(published.length, 2, 'a connected session (even without presence) gets no push');
    back.tr.close();
    await until(() => h.router.getSessions('alice@localhost').length === 0, 'alice gone again');
    chat(bob.tr, 'm4', 'after');
    await until(() => published.length === 3, 'the third notification');
    assert.equal(summaryOf(published[2]!)['message-count'], '1', 'counted from the last connection');
  });

  test('push.include_body adds last-message-body', async (t) => {
    const { h, published } = await setup(t, { include_body: true });
    const alice = await h.login('alice');
    await enable(alice.tr, 'e', 'n');
    alice.tr.close();
    const bob = await h.login('bob');
    chat(bob.tr, 'm1', 'the body');
    await until(() => published.length === 1, 'a notification');
    assert.equal(summaryOf(published[0]!)['last-message-body'], 'the body');
  });

  test('all sessions kept without a connection (stream management): a delivered message is pushed, once', async (t) => {
    const { h, published } = await setup(t);
    // What XEP-0198 will do: keep a session whose connection is lost, and queue what it is sent.
    h.dispatcher.hookDetach(() => true, Priority.DEFAULT);
    const held: Element[] = [];
    h.dispatcher.addOutgoingFilter((s, el) => {
      if (s.attached) return el;
      held.push(el);
      return null;
    }, Priority.FIRST);
    const alice = await h.login('alice');
    h.router.setPresence(alice.session, { presence: x('presence', NS.CLIENT, { from: alice.session.jid.toString() }), priority: 0 });
    await enable(alice.tr, 'e', 'n');
    const bob = await h.login('bob');

    chat(bob.tr, 'live', 'while attached');
    await h.settled();
    assert.equal(published.length, 0, 'an attached session got it');

    alice.tr.close();
    assert.equal(alice.session.attached, false);
    assert.equal(h.router.getSessions('alice@localhost').length, 1, 'kept for resumption');
    chat(bob.tr, 'm1', 'while hibernating');
    await until(() => published.length === 1, 'a notification');
    assert.equal(held.length, 1, 'the session took the message');
    assert.deepEqual(summaryOf(published[0]!)['message-count'], '1');
    chat(bob.tr, 'm2', 'again');
    await until(() => published.length === 2, 'a second notification');
    await h.settled();
    assert.equal(published.length, 2, 'each message counted once');
    assert.equal(summaryOf(published[1]!)['message-count'], '2');
  });

  test('a subscription request for a user with no connection is pushed; a repeat is not', async (t) => {
    const { h, published, storage } = await setup(t);
    const alice = await h.login('alice');
    await enable(alice.tr, 'e', 'n');
    alice.tr.close();
    const bob = await h.login('bob');
    bob.tr.send(`<presence to='alice@localhost' type='subscribe'/>`);
    await until(() => published.length === 1, 'a notification');
    assert.deepEqual(summaryOf(published[0]!), { FORM_TYPE: PUSH_SUMMARY, 'message-count': '0', 'pending-subscription-count': '1' });
    // Not a request: nothing.
    bob.tr.send(`<presence to='alice@localhost' type='unsubscribe'/>`);
    await h.settled();
    assert.equal(published.length, 1);
    // Nothing new for alice: bob's request is already pending, or bob already subscribed.
    await storage.roster.setItem('localhost', 'alice', item('bob@localhost', { pendingIn: true }));
    bob.tr.send(`<presence to='alice@localhost' type='subscribe'/>`);
    await storage.roster.setItem('localhost', 'alice', item('bob@localhost', { subscription: 'from' }));
    bob.tr.send(`<presence to='alice@localhost' type='subscribe'/>`);
    await h.settled();
    assert.equal(published.length, 1, 'a repeat or an existing subscription is not pushed');
    await storage.roster.removeItem('localhost', 'alice', 'bob@localhost');
    bob.tr.send(`<presence to='alice@localhost' type='subscribe' id='marker'/>`);
    await until(() => published.length === 2, 'a new request pushed again');
    assert.equal(summaryOf(published[1]!)['pending-subscription-count'], '2');
  });

  test('an error answer disables the registration (XEP-0357 §7.1); transient ones only after several in a row', async (t) => {
    const { h, published, state, store } = await setup(t);
    const alice = await h.login('alice');
    await enable(alice.tr, 'e1', 'kept');
    alice.tr.close();
    const bob = await h.login('bob');

    state.answer = { error: 'service-unavailable', type: 'cancel' };
    for (let i = 1; i < MAX_TRANSIENT_ERRORS; i++) {
      chat(bob.tr, `t${i}`, 'x');
      await until(() => published.length === i, `notification ${i}`);
      await h.settled(); // its answer handled before the next
    }
    await h.settled();
    assert.equal((await store.list('localhost', 'alice')).length, 1, 'kept through transient errors');
    state.answer = 'result';
    chat(bob.tr, 'ok', 'x');
    await until(() => published.length === MAX_TRANSIENT_ERRORS, 'a successful one');
    await h.settled();
    state.answer = { error: 'service-unavailable', type: 'cancel' };
    for (let i = 1; i < MAX_TRANSIENT_ERRORS; i++) {
      chat(bob.tr, `u${i}`, 'x');
      await until(() => published.length === MAX_TRANSIENT_ERRORS + i, `notification after success ${i}`);
      await h.settled();
    }
    await h.settled();
    assert.equal((await store.list('localhost', 'alice')).length, 1, 'a success resets the errors in a row');
    state.answer = { error: 'resource-constraint', type: 'wait' };
    chat(bob.tr, 'last-straw', 'x');
    await until(() => published.length === 2 * MAX_TRANSIENT_ERRORS, 'one more transient error');
    await h.settled();
    assert.deepEqual(await store.list('localhost', 'alice'), [], `disabled after ${MAX_TRANSIENT_ERRORS} in a row`);

    await enable((await h.login('alice')).tr, 'e2', 'refusing');
    for (const s of h.router.getSessions('alice@localhost')) s.close();
    await until(() => h.router.getSessions('alice@localhost').length === 0, 'alice gone');
    state.answer = { error: 'item-not-found', type: 'cancel' };
    const before = published.length;
    chat(bob.tr, 'refused', 'x');
    await until(() => published.length === before + 1, 'the refused notification');
    assert.equal(published[before]!.getChild('pubsub', NS_PUBSUB)?.getChild('publish', NS_PUBSUB)?.attrs.node, 'refusing');
    await h.settled();
    assert.deepEqual(await store.list('localhost', 'alice'), [], 'disabled');
    chat(bob.tr, 'marker', 'x');
    await h.settled();
    assert.equal(published.length, before + 1, 'nothing published to a disabled node');
  });

  test('no answer does not disable, and shutdown does not wait for one', async (t) => {
    const { h, published, state, store } = await setup(t, { timeout: 2 });
    const alice = await h.login('alice');
    await enable(alice.tr, 'e1', 'n');
    alice.tr.close();
    const bob = await h.login('bob');
    state.answer = 'none';
    chat(bob.tr, 'm1', 'x');
    await until(() => published.length === 1, 'the notification');
    const start = Date.now();
    await h.dispatcher.drain();
    assert.ok(Date.now() - start < 1500, 'tracked work (what shutdown waits for) does not include the answer');
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal((await store.list('localhost', 'alice')).length, 1);
  });

  test('push.min_interval: within the pause, one later notification carries the latest count', async (t) => {
    const { h, published, tick } = await setup(t, { min_interval: 5 }, true);
    const alice = await h.login('alice');
    await enable(alice.tr, 'e', 'n');
    alice.tr.close();
    const bob = await h.login('bob');
    chat(bob.tr, 'm1', 'one');
    await until(() => published.length === 1, 'the first notification at once');
    chat(bob.tr, 'm2', 'two');
    chat(bob.tr, 'm3', 'three');
    await h.settled();
    assert.equal(published.length, 1, 'nothing more within the pause');
    tick!(4999);
    await h.settled();
    assert.equal(published.length, 1);
    tick!(1);
    await until(() => published.length === 2, 'the coalesced notification');
    assert.equal(summaryOf(published[1]!)['message-count'], '3');
    await h.settled();
    assert.equal(published.length, 2);
  });
});
