// The mam module in process: the harness's hub and client streams, a real store (SQLite;
// PostgreSQL under SHOAL_TEST_STORAGE=postgres).
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { hub, startModules, type FakeTransport } from '../../../test/support/harness.js';
import { until } from '../../../test/support/until.js';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { credentials, item, testStorage } from '../../storage/sql/testutil.js';
import { mamModule } from './mam.js';
import { NS_MAM } from './query.js';
import { NS_SID } from './policy.js';
import { SqlMamStore } from './store.js';

async function setup(t: TestContext, mam: Record<string, unknown> = {}) {
  const h = hub({ mam });
  const ts = await testStorage();
  for (const u of ['alice', 'bob', 'carol']) {
    await ts.storage.accounts.create('localhost', u, [credentials('SHA-256', 1)]);
    h.accounts.add(`${u}@localhost`);
  }
  const modules = await startModules(h, [mamModule], ts.storage);
  const store = await SqlMamStore.open(ts.storage.sql);
  const transports: FakeTransport[] = [];
  const login = async (user: string) => {
    const r = await h.login(user);
    transports.push(r.tr);
    // Available (what the presence module would record), so that messages to the bare JID reach it.
    h.router.setPresence(r.session, { presence: x('presence', NS.CLIENT, { from: r.session.jid.toString() }), priority: 0 });
    return r;
  };
  t.after(async () => {
    for (const tr of transports) if (!tr.ended) tr.close();
    await modules.stop(() => undefined);
    await h.dispatcher.drain();
    await ts.cleanup();
  });
  return { h, store, storage: ts.storage, login };
}

const withBody = (tr: FakeTransport, body: string): Element | undefined =>
  tr.received.find((e) => e.name === 'message' && e.getChildText('body') === body);

/** Sends a marker after what is being checked; once it arrived, what came before it has been handled. */
async function marker(from: FakeTransport, to: FakeTransport, toJid: string, text: string): Promise<void> {
  from.send(`<message to='${toJid}' type='chat'><body>${text}</body></message>`);
  await until(() => withBody(to, text) !== undefined, text);
}

const bodies = async (store: SqlMamStore, user: string) =>
  (await (await store.reader('localhost', user)).page({}, 1000, false)).map((m) => /<body>([^<]*)</.exec(m.stanza)?.[1] ?? '(no body)');

describe('mam module', () => {
  test('only content is archived: not chat states, headlines, errors, groupchat or no-store', async (t) => {
    const { store, login } = await setup(t);
    const alice = await login('alice');
    const bob = await login('bob');
    const to = alice.session.jid.toString();
    bob.tr.send(`<message to='alice@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    bob.tr.send(`<message to='alice@localhost' type='headline'><body>headline</body></message>`);
    bob.tr.send(`<message to='${to}' type='groupchat'><body>groupchat</body></message>`);
    bob.tr.send(`<message to='alice@localhost' type='error'><body>error</body></message>`);
    bob.tr.send(`<message to='alice@localhost' type='chat'><body>hinted</body><no-store xmlns='urn:xmpp:hints'/></message>`);
    bob.tr.send(`<message to='alice@localhost' type='chat'><body>kept</body></message>`);
    await marker(bob.tr, alice.tr, 'alice@localhost', 'marker');
    assert.deepEqual(await bodies(store, 'alice'), ['kept', 'marker']);
    assert.deepEqual(await bodies(store, 'bob'), ['kept', 'marker']);
    assert.equal(withBody(alice.tr, 'headline')?.getChild('stanza-id', NS_SID), undefined, 'no archive id on what is not archived');
    assert.equal(withBody(alice.tr, 'kept')?.getChild('stanza-id', NS_SID)?.attrs.by, 'alice@localhost');
  });

  test('a message to one\'s own account is archived once, and found with with=own JID', async (t) => {
    const { store, login } = await setup(t);
    const alice = await login('alice');
    alice.tr.send(`<message to='alice@localhost' type='chat'><body>note</body></message>`);
    await until(() => withBody(alice.tr, 'note') !== undefined, 'the note');
    assert.deepEqual(await bodies(store, 'alice'), ['note']);
    const [m] = await (await store.reader('localhost', 'alice')).page({ with: { bare: 'alice@localhost' } }, 10, false);
    assert.equal(m?.id, withBody(alice.tr, 'note')?.getChild('stanza-id', NS_SID)?.attrs.id);
  });

  test('mam.default roster: only contacts are archived, on both sides; the user\'s always list adds one', async (t) => {
    const { store, storage, login } = await setup(t, { default: 'roster' });
    await storage.roster.setItem('localhost', 'alice', item('bob@localhost', { subscription: 'both' }));
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    bob.tr.send(`<message to='alice@localhost' type='chat'><body>from a contact</body></message>`);
    carol.tr.send(`<message to='alice@localhost' type='chat'><body>from a stranger</body></message>`);
    alice.tr.send(`<message to='carol@localhost' type='chat'><body>to a stranger</body></message>`);
    await marker(bob.tr, alice.tr, 'alice@localhost', 'm1');
    await until(() => withBody(carol.tr, 'to a stranger') !== undefined, 'alice to carol');
    assert.deepEqual(await bodies(store, 'alice'), ['from a contact', 'm1']);
    assert.deepEqual(await bodies(store, 'carol'), [], 'carol\'s roster is empty too');

    alice.tr.send(`<iq type='set' id='p1'><prefs xmlns='${NS_MAM}' default='roster'><always><jid>carol@localhost</jid></always><never/></prefs></iq>`);
    await until(() => alice.tr.received.some((e) => e.attrs.id === 'p1'), 'the prefs result');
    carol.tr.send(`<message to='alice@localhost' type='chat'><body>now kept</body></message>`);
    // Two senders: their messages may reach alice (and her archive) in either order (RFC 6120
    // §10.1 orders only one sender's stanzas), so the marker goes once carol's has arrived.
    await until(() => withBody(alice.tr, 'now kept') !== undefined, 'carol\'s kept message');
    await marker(bob.tr, alice.tr, 'alice@localhost', 'm2');
    assert.deepEqual(await bodies(store, 'alice'), ['from a contact', 'm1', 'now kept', 'm2']);
  });

  test('a message archived and then refused (bounced) leaves the archive, and the bounce shows no archive id', async (t) => {
    const { store, login } = await setup(t);
    // No session for alice and no offline storage in this hub: the message comes back as an error.
    const bob = await login('bob');
    bob.tr.send(`<message to='alice@localhost' type='chat' id='lost'><body>nobody home</body></message>`);
    await until(() => bob.tr.received.some((e) => e.attrs.id === 'lost' && e.attrs.type === 'error'), 'the bounce');
    const bounce = bob.tr.received.find((e) => e.attrs.id === 'lost')!;
    assert.equal(bounce.getChildText('body'), 'nobody home', 'the payload comes back');
    assert.deepEqual(bounce.getChildren('stanza-id', NS_SID), [], 'but not alice\'s archive id');
    await until(async () => (await store.size('localhost', 'alice')) === 0, 'the refused copy to leave alice\'s archive');
    assert.deepEqual(await bodies(store, 'alice'), [], 'refused: not in the recipient\'s archive');
    assert.deepEqual(await bodies(store, 'bob'), ['nobody home'], 'the sender did send it');
  });

  test('an error a client sends cannot remove another account\'s archived message, nor show its id', async (t) => {
    const { store, login } = await setup(t);
    const alice = await login('alice');
    const bob = await login('bob');
    const carol = await login('carol');
    bob.tr.send(`<message to='carol@localhost' type='chat'><body>for carol</body></message>`);
    await until(() => withBody(carol.tr, 'for carol') !== undefined, 'carol\'s message');
    const id = withBody(carol.tr, 'for carol')!.getChild('stanza-id', NS_SID)!.attrs.id!;
    bob.tr.send(`<message to='${alice.session.jid.toString()}' type='error' id='e1'><stanza-id xmlns='${NS_SID}' by='carol@localhost' id='${id}'/><error type='cancel'><undefined-condition xmlns='${NS.STANZA_ERRORS}'/></error></message>`);
    await until(() => alice.tr.received.some((e) => e.attrs.id === 'e1'), 'the error at alice');
    assert.deepEqual(alice.tr.received.find((e) => e.attrs.id === 'e1')!.getChildren('stanza-id', NS_SID), [], 'carol\'s id is not shown to alice');
    await marker(bob.tr, carol.tr, 'carol@localhost', 'after');
    assert.deepEqual(await bodies(store, 'carol'), ['for carol', 'after'], 'still in carol\'s archive');
  });

  test('results reach the querying resource before the IQ result; malformed prefs are refused', async (t) => {
    const { login } = await setup(t);
    const alice = await login('alice');
    const bob = await login('bob');
    for (let i = 0; i < 3; i++) bob.tr.send(`<message to='alice@localhost' type='chat'><body>b${i}</body></message>`);
    await marker(bob.tr, alice.tr, 'alice@localhost', 'done');
    const start = alice.tr.received.length;
    alice.tr.send(`<iq type='set' id='q1'><query xmlns='${NS_MAM}' queryid='Q'/></iq>`);
    await until(() => alice.tr.received.some((e) => e.attrs.id === 'q1'), 'the query result');
    const after = alice.tr.received.slice(start);
    assert.deepEqual(after.map((e) => e.name), ['message', 'message', 'message', 'message', 'iq']);
    assert.ok(after.slice(0, 4).every((e) => e.getChild('result', NS_MAM)?.attrs.queryid === 'Q'));
    assert.equal(after[4]!.getChild('fin', NS_MAM)?.attrs.complete, 'true');

    alice.tr.send(`<iq type='set' id='p1'><prefs xmlns='${NS_MAM}' default='sometimes'/></iq>`);
    alice.tr.send(`<iq type='set' id='x1'><other xmlns='${NS_MAM}'/></iq>`);
    await until(() => ['p1', 'x1'].every((id) => alice.tr.received.some((e) => e.attrs.id === id)), 'the answers');
    for (const id of ['p1', 'x1']) {
      const err = alice.tr.received.find((e) => e.attrs.id === id)!;
      assert.equal(err.attrs.type, 'error');
      assert.ok(err.getChild('error')?.getChild('bad-request', NS.STANZA_ERRORS), id);
    }
  });
});
