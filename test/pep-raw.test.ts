// XEP-0163 PEP over raw XML, element by element: auto-create and publish-options
// (XEP-0060 §7.1.5), access models on every read (§6.5.9), notifications filtered
// by verified XEP-0115 caps and the last item on initial presence (XEP-0163 §4.3),
// owner operations (§8), limits, XEP-0049 private storage with XEP-0402/XEP-0048
// bookmark sync, XEP-0398 avatar to vCard, and account deletion.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import type { RawClient } from './support/raw-client.js';
import { NS } from '../src/xml/namespaces.js';
import { x, type Element } from '../src/xml/element.js';
import { capsHash, verificationString } from '../src/modules/pep/caps.js';

const PUBSUB = 'http://jabber.org/protocol/pubsub';
const OWNER = 'http://jabber.org/protocol/pubsub#owner';
const EVENT = 'http://jabber.org/protocol/pubsub#event';
const ERRORS = 'http://jabber.org/protocol/pubsub#errors';
const DATA = 'jabber:x:data';
const CAPS = 'http://jabber.org/protocol/caps';
const PRIVATE = 'jabber:iq:private';
const TUNE = 'http://jabber.org/protocol/tune';

let srv: TestServer;
let alice: LoggedIn;
let bob: LoggedIn;
let carol: LoggedIn;
let dave: LoggedIn;

const contact = (jid: string) => ({ jid, subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: ['friends'] });

before(async () => {
  srv = await startTestServer({ pep: { max_nodes: 12, max_item_bytes: 4096, private_max_bytes: 2048, private_max_entries: 3 } });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await srv.addUser(u, `${u}-pass`);
  // alice <-> bob and alice <-> dave are contacts (both ways); carol is a stranger.
  const roster = srv.server.storage.roster;
  await roster.setItem('localhost', 'alice', contact('bob@localhost'));
  await roster.setItem('localhost', 'bob', contact('alice@localhost'));
  await roster.setItem('localhost', 'alice', { ...contact('dave@localhost'), groups: [] });
  await roster.setItem('localhost', 'dave', contact('alice@localhost'));
  alice = await login(srv.port, 'alice', 'alice-pass');
  bob = await login(srv.port, 'bob', 'bob-pass');
  carol = await login(srv.port, 'carol', 'carol-pass');
  dave = await login(srv.port, 'dave', 'dave-pass');
  // alice asks for tune notifications (her own), bob for tune, dave for nothing but a marker node.
  await online(alice, [`${TUNE}+notify`, 'urn:xmpp:bookmarks:1+notify', 'urn:example:open:transient+notify']);
  await online(bob, [`${TUNE}+notify`, 'urn:example:open+notify']);
  await online(dave, ['urn:example:marker+notify']);
  carol.client.send('<presence/>');
  await roundTrip(carol.client);
});
after(async () => {
  for (const c of [alice, bob, carol, dave]) c.client.close();
  await srv.stop();
});

let seq = 0;
const nextId = (p: string) => `${p}-${++seq}`;

async function roundTrip(c: RawClient): Promise<void> {
  const id = nextId('rt');
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  await c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, 'ping result');
}

function discoInfo(features: string[]): Element {
  return x('query', NS.DISCO_INFO, {}, x('identity', NS.DISCO_INFO, { category: 'client', type: 'pc', name: 'raw' }), ...[NS.DISCO_INFO, CAPS, ...features].map((v) => x('feature', NS.DISCO_INFO, { var: v })));
}

/** Available presence with caps for `features`; answers the server's disco#info query about them (XEP-0115 §6.2). */
async function online(who: LoggedIn, features: string[], client: RawClient = who.client): Promise<void> {
  const info = discoInfo(features);
  const ver = capsHash('sha-1', verificationString(info)!)!;
  client.send(`<presence><c xmlns='${CAPS}' hash='sha-1' node='urn:test:raw' ver='${ver}'/></presence>`);
  const q = await client.waitFor((el) => el.name === 'iq' && el.attrs.type === 'get' && el.getChild('query', NS.DISCO_INFO) !== undefined, 'the caps query');
  assert.equal(q.getChild('query', NS.DISCO_INFO)!.attrs.node, `urn:test:raw#${ver}`);
  const answer = info.clone();
  answer.attrs.node = `urn:test:raw#${ver}`;
  client.send(x('iq', NS.CLIENT, { type: 'result', id: q.attrs.id, to: q.attrs.from }, answer).toString());
  await roundTrip(client);
}

async function iq(c: RawClient, type: 'get' | 'set', payload: string, to?: string): Promise<Element> {
  const id = nextId('iq');
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ''}>${payload}</iq>`);
  return c.waitFor((el) => el.name === 'iq' && el.attrs.id === id, `answer to ${id}`);
}

function assertError(r: Element, condition: string, pubsubCondition?: string): void {
  assert.equal(r.attrs.type, 'error', r.toString());
  const err = r.getChild('error', NS.CLIENT)!;
  assert.ok(err.getChild(condition, NS.STANZA_ERRORS), `${condition} in ${r.toString()}`);
  if (pubsubCondition) assert.ok(err.getChild(pubsubCondition, ERRORS), `${pubsubCondition} in ${r.toString()}`);
}

const options = (fields: Record<string, string>) =>
  `<publish-options><x xmlns='${DATA}' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field>${Object.entries(fields)
    .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
    .join('')}</x></publish-options>`;

function publish(c: RawClient, node: string, payload: string, id?: string, opts?: Record<string, string>): Promise<Element> {
  return iq(c, 'set', `<pubsub xmlns='${PUBSUB}'><publish node='${node}'><item${id ? ` id='${id}'` : ''}>${payload}</item></publish>${opts ? options(opts) : ''}</pubsub>`);
}

function items(c: RawClient, node: string, to: string, extra = '', inner = ''): Promise<Element> {
  return iq(c, 'get', `<pubsub xmlns='${PUBSUB}'><items node='${node}'${extra}>${inner}</items></pubsub>`, to);
}

const itemIds = (r: Element): string[] => r.getChild('pubsub', PUBSUB)!.getChild('items', PUBSUB)!.getChildren('item', PUBSUB).map((i) => i.attrs.id!);
const eventFor = (node: string, pred: (items: Element) => boolean = () => true) => (el: Element) => {
  const its = el.name === 'message' ? el.getChild('event', EVENT)?.getChild('items', EVENT) : undefined;
  return its !== undefined && its.attrs.node === node && pred(its);
};

describe('publishing (XEP-0060 §7.1, XEP-0163 §3)', () => {
  test('auto-create, a server-generated item id, items read back; the owner and a contact with +notify get the event, a contact without does not', async () => {
    const r = await publish(alice.client, TUNE, `<tune xmlns='${TUNE}'><artist>Finzi</artist></tune>`);
    assert.equal(r.attrs.type, 'result', r.toString());
    const id = r.getChild('pubsub', PUBSUB)!.getChild('publish', PUBSUB)!.getChild('item', PUBSUB)!.attrs.id!;
    assert.ok(id.length > 0);
    const ev = await bob.client.waitFor(eventFor(TUNE, (its) => its.getChild('item', EVENT)?.attrs.id === id), 'the tune event at bob');
    assert.equal(ev.attrs.from, 'alice@localhost');
    assert.equal(ev.attrs.to, bob.jid);
    assert.equal(ev.attrs.type, 'headline');
    assert.equal(ev.getChild('event', EVENT)!.getChild('items', EVENT)!.getChild('item', EVENT)!.getChild('tune', TUNE)!.getChildText('artist', TUNE), 'Finzi');
    assert.equal(ev.getChild('addresses', 'http://jabber.org/protocol/address')?.getChild('address', 'http://jabber.org/protocol/address')?.attrs.jid, alice.jid, 'replyto the publisher (XEP-0163 §4.3.1)');
    await alice.client.waitFor(eventFor(TUNE, (its) => its.getChild('item', EVENT)?.attrs.id === id), 'the tune event at alice herself');
    // dave's caps do not ask for tunes: a marker node he does ask for arrives, the tune never did.
    await publish(alice.client, 'urn:example:marker', `<m xmlns='urn:example:marker'/>`, 'm1');
    await dave.client.waitFor(eventFor('urn:example:marker'), 'the marker at dave');
    assert.equal(dave.client.elements.filter(eventFor(TUNE)).length, 0, 'no tune event for dave');
    assert.equal(carol.client.elements.filter(eventFor(TUNE)).length, 0, 'no tune event for the stranger');
    const got = await items(bob.client, TUNE, 'alice@localhost');
    assert.deepEqual(itemIds(got), [id]);
  });

  test('max_items and items by id; a default node keeps one item, an item republished replaces it', async () => {
    const node = 'urn:example:many';
    for (const id of ['a', 'b', 'c']) assert.equal((await publish(alice.client, node, `<n xmlns='urn:example'>${id}</n>`, id, { 'pubsub#max_items': '10' })).attrs.type, 'result');
    assert.deepEqual(itemIds(await items(alice.client, node, 'alice@localhost')), ['a', 'b', 'c']);
    assert.deepEqual(itemIds(await items(alice.client, node, 'alice@localhost', " max_items='2'")), ['b', 'c']);
    assert.deepEqual(itemIds(await items(alice.client, node, 'alice@localhost', '', `<item id='a'/><item id='zz'/>`)), ['a']);
    await publish(alice.client, node, `<n xmlns='urn:example'>a2</n>`, 'a', { 'pubsub#max_items': '10' });
    assert.deepEqual(itemIds(await items(alice.client, node, 'alice@localhost')), ['b', 'c', 'a'], 'a republished item is the newest');
    const one = 'urn:example:one';
    await publish(alice.client, one, `<n xmlns='urn:example'/>`, 'x1');
    await publish(alice.client, one, `<n xmlns='urn:example'/>`, 'x2');
    assert.deepEqual(itemIds(await items(alice.client, one, 'alice@localhost')), ['x2']);
    assertError(await items(alice.client, 'urn:example:none', 'alice@localhost'), 'item-not-found');
    assertError(await items(alice.client, node, 'alice@localhost', " max_items='zero'"), 'bad-request');
  });

  test('publish-options (XEP-0060 §7.1.5): create with them, match, and conflict + precondition-not-met on a mismatch or an unknown field', async () => {
    const node = 'urn:example:opts';
    const opts = { 'pubsub#access_model': 'open', 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'on_sub_and_presence' };
    assert.equal((await publish(alice.client, node, `<o xmlns='urn:example'/>`, '1', opts)).attrs.type, 'result');
    assert.equal((await publish(alice.client, node, `<o xmlns='urn:example'/>`, '2', opts)).attrs.type, 'result', 'the same options match');
    const conf = await iq(alice.client, 'get', `<pubsub xmlns='${OWNER}'><configure node='${node}'/></pubsub>`);
    const fields = new Map(conf.getChild('pubsub', OWNER)!.getChild('configure', OWNER)!.getChild('x', DATA)!.getChildren('field', DATA).map((f) => [f.attrs.var, f.getChildText('value', DATA)]));
    assert.equal(fields.get('pubsub#access_model'), 'open');
    assert.equal(fields.get('pubsub#max_items'), '256', "'max' is the server's limit");
    const bad = await publish(alice.client, node, `<o xmlns='urn:example'/>`, '3', { 'pubsub#access_model': 'presence' });
    assertError(bad, 'conflict', 'precondition-not-met');
    assert.equal(bad.getChild('error', NS.CLIENT)!.attrs.type, 'cancel');
    assertError(await publish(alice.client, node, `<o xmlns='urn:example'/>`, '3', { 'pubsub#max_items': '5' }), 'conflict', 'precondition-not-met');
    assertError(await publish(alice.client, node, `<o xmlns='urn:example'/>`, '3', { 'pubsub#frobnicate': '1' }), 'conflict', 'precondition-not-met');
    assertError(await publish(alice.client, 'urn:example:new', `<o xmlns='urn:example'/>`, '3', { 'pubsub#access_model': 'authorize' }), 'conflict', 'precondition-not-met');
    assert.deepEqual(itemIds(await items(alice.client, node, 'alice@localhost')), ['1', '2'], 'nothing was published by the refused requests');
  });

  test('persist_items=false keeps the last item only; deliver_payloads=false notifies without the payload', async () => {
    const node = 'urn:example:open:transient';
    const opts = { 'pubsub#access_model': 'open', 'pubsub#persist_items': 'false', 'pubsub#max_items': '5', 'pubsub#deliver_payloads': 'false' };
    for (const id of ['t1', 't2', 't3']) assert.equal((await publish(alice.client, node, `<t xmlns='urn:example'>${id}</t>`, id, opts)).attrs.type, 'result');
    const got = await items(carol.client, node, 'alice@localhost');
    assert.deepEqual(itemIds(got), ['t3']);
    assert.ok(got.getChild('pubsub', PUBSUB)!.getChild('items', PUBSUB)!.getChild('item', PUBSUB)!.getChild('t', 'urn:example'), 'a read returns the payload');
    const ev = await alice.client.waitFor(eventFor(node, (its) => its.getChild('item', EVENT)?.attrs.id === 't3'), 'the event at alice');
    assert.equal(ev.getChild('event', EVENT)!.getChild('items', EVENT)!.getChild('item', EVENT)!.children.length, 0, 'no payload in the notification');
  });

  test('only the owner publishes; an empty item and a payload over max_item_bytes are refused', async () => {
    assertError(await iq(bob.client, 'set', `<pubsub xmlns='${PUBSUB}'><publish node='${TUNE}'><item><tune xmlns='${TUNE}'/></item></publish></pubsub>`, 'alice@localhost'), 'forbidden');
    assertError(await publish(alice.client, TUNE, ''), 'bad-request', 'payload-required');
    assertError(await publish(alice.client, TUNE, `<big xmlns='urn:example'>${'x'.repeat(5000)}</big>`), 'not-acceptable', 'payload-too-big');
  });
});

describe('access models on every read (XEP-0060 §6.5.9, XEP-0163 §4.1)', () => {
  test('open: anyone; presence: contacts only (not-authorized + presence-subscription-required); roster: the groups; whitelist: the owner only (not-allowed + closed-node)', async () => {
    await publish(alice.client, 'urn:example:open', `<o xmlns='urn:example'/>`, 'o', { 'pubsub#access_model': 'open' });
    await publish(alice.client, 'urn:example:presence', `<p xmlns='urn:example'/>`, 'p');
    await publish(alice.client, 'urn:example:white', `<w xmlns='urn:example'/>`, 'w', { 'pubsub#access_model': 'whitelist' });
    await iq(alice.client, 'set', `<pubsub xmlns='${PUBSUB}'><create node='urn:example:roster'/><configure><x xmlns='${DATA}' type='submit'><field var='pubsub#access_model'><value>roster</value></field><field var='pubsub#roster_groups_allowed'><value>friends</value></field></x></configure></pubsub>`);
    await publish(alice.client, 'urn:example:roster', `<r xmlns='urn:example'/>`, 'r');

    assert.deepEqual(itemIds(await items(carol.client, 'urn:example:open', 'alice@localhost')), ['o']);
    assertError(await items(carol.client, 'urn:example:presence', 'alice@localhost'), 'not-authorized', 'presence-subscription-required');
    assertError(await items(carol.client, 'urn:example:roster', 'alice@localhost'), 'not-authorized', 'not-in-roster-group');
    assertError(await items(carol.client, 'urn:example:white', 'alice@localhost'), 'not-allowed', 'closed-node');

    assert.deepEqual(itemIds(await items(bob.client, 'urn:example:presence', 'alice@localhost')), ['p']);
    assert.deepEqual(itemIds(await items(bob.client, 'urn:example:roster', 'alice@localhost')), ['r'], 'bob is in the group friends');
    assertError(await items(dave.client, 'urn:example:roster', 'alice@localhost'), 'not-authorized', 'not-in-roster-group');
    assertError(await items(bob.client, 'urn:example:white', 'alice@localhost'), 'not-allowed', 'closed-node');
    assert.deepEqual(itemIds(await items(alice.client, 'urn:example:white', 'alice@localhost')), ['w']);
    // The open node's event reached bob (he asks for it); the stranger carol never gets events.
    await bob.client.waitFor(eventFor('urn:example:open'), 'the open node event at bob');
  });

  test('disco: pubsub/pep and publish-options for the owner; a contact sees only the nodes it may read; a stranger gets service-unavailable', async () => {
    const info = await iq(alice.client, 'get', `<query xmlns='${NS.DISCO_INFO}'/>`, 'alice@localhost');
    const q = info.getChild('query', NS.DISCO_INFO)!;
    assert.ok(q.getChildren('identity', NS.DISCO_INFO).some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'));
    const features = q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attrs.var);
    for (const f of [`${PUBSUB}#publish-options`, `${PUBSUB}#auto-create`, `${PUBSUB}#access-open`, PRIVATE, 'urn:xmpp:bookmarks:1#compat', 'urn:xmpp:pep-vcard-conversion:0']) {
      assert.ok(features.includes(f), f);
    }
    const bobItems = await iq(bob.client, 'get', `<query xmlns='${NS.DISCO_ITEMS}'/>`, 'alice@localhost');
    const nodes = bobItems.getChild('query', NS.DISCO_ITEMS)!.getChildren('item', NS.DISCO_ITEMS).map((i) => i.attrs.node);
    assert.ok(nodes.includes('urn:example:presence') && nodes.includes('urn:example:open') && nodes.includes('urn:example:roster'), nodes.join());
    assert.ok(!nodes.includes('urn:example:white'), 'a whitelist node is not listed to a contact');
    assertError(await iq(carol.client, 'get', `<query xmlns='${NS.DISCO_ITEMS}'/>`, 'alice@localhost'), 'service-unavailable');
    assertError(await iq(carol.client, 'get', `<query xmlns='${NS.DISCO_INFO}'/>`, 'alice@localhost'), 'service-unavailable');
  });
});

describe('notifications (XEP-0163 §4.3)', () => {
  test('a new resource with +notify caps gets the last item on its initial presence, once; a resource with the same caps needs no new query', async () => {
    const bob2 = await login(srv.port, 'bob', 'bob-pass');
    try {
      // Same features as bob's first resource: same ver, already verified and cached: no disco#info query.
      const info = discoInfo([`${TUNE}+notify`, 'urn:example:open+notify']);
      const ver = capsHash('sha-1', verificationString(info)!)!;
      bob2.client.send(`<presence><c xmlns='${CAPS}' hash='sha-1' node='urn:test:raw' ver='${ver}'/></presence>`);
      const last = await bob2.client.waitFor(eventFor(TUNE), 'the last tune at the new resource');
      assert.equal(last.attrs.to, bob2.jid);
      assert.ok(last.getChild('delay', 'urn:xmpp:delay'), 'with the time it was published (XEP-0203)');
      await bob2.client.waitFor(eventFor('urn:example:open'), 'the last item of the open node');
      // A second available presence with the same caps is not an initial one: nothing again.
      bob2.client.send(`<presence><show>away</show><c xmlns='${CAPS}' hash='sha-1' node='urn:test:raw' ver='${ver}'/></presence>`);
      await roundTrip(bob2.client);
      await publish(alice.client, 'urn:example:open', `<o xmlns='urn:example'/>`, 'o2', { 'pubsub#access_model': 'open' });
      await bob2.client.waitFor(eventFor('urn:example:open', (its) => its.getChild('item', EVENT)?.attrs.id === 'o2'), 'the next open item');
      assert.equal(bob2.client.elements.filter(eventFor(TUNE)).length, 1, 'the last tune was sent once');
      assert.equal(bob2.client.elements.filter((el) => el.name === 'iq' && el.getChild('query', NS.DISCO_INFO) !== undefined).length, 0, 'no caps query for a known ver');
      // Unavailable, then available again: an initial presence again (XEP-0163 §4.3.3), the last tune again.
      bob2.client.send(`<presence type='unavailable'/>`);
      await roundTrip(bob2.client);
      bob2.client.send(`<presence><c xmlns='${CAPS}' hash='sha-1' node='urn:test:raw' ver='${ver}'/></presence>`);
      await bob2.client.waitFor((el) => bob2.client.elements.filter(eventFor(TUNE)).length === 2 && eventFor(TUNE)(el), 'the last tune once more');
    } finally {
      bob2.client.close();
    }
  });

  test('a new subscriber gets the last items once the owner approves (XEP-0163 §4.3.4)', async () => {
    await srv.addUser('gina', 'gina-pass');
    const gina = await login(srv.port, 'gina', 'gina-pass');
    try {
      await online(gina, [`${TUNE}+notify`]);
      assertError(await items(gina.client, TUNE, 'alice@localhost'), 'not-authorized', 'presence-subscription-required');
      gina.client.send(`<presence type='subscribe' to='alice@localhost'/>`);
      await alice.client.waitFor((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === 'gina@localhost', 'the request at alice');
      assert.equal(gina.client.elements.filter(eventFor(TUNE)).length, 0, 'nothing before the approval');
      alice.client.send(`<presence type='subscribed' to='gina@localhost'/>`);
      const last = await gina.client.waitFor(eventFor(TUNE), "alice's last tune at the new subscriber");
      assert.equal(last.attrs.to, gina.jid);
      assert.equal(itemIds(await items(gina.client, TUNE, 'alice@localhost')).length, 1, 'and she may read the node now');
    } finally {
      gina.client.close();
    }
  });

  test('caps whose disco#info answer does not match the hash are not used (XEP-0115 §5.4): no notifications', async () => {
    await srv.addUser('erin', 'erin-pass');
    await srv.server.storage.roster.setItem('localhost', 'alice', contact('erin@localhost'));
    await srv.server.storage.roster.setItem('localhost', 'erin', contact('alice@localhost'));
    const erin = await login(srv.port, 'erin', 'erin-pass');
    try {
      // The ver claims the features without the +notify; the answer adds it.
      const honest = discoInfo(['urn:example:lie']);
      const ver = capsHash('sha-1', verificationString(honest)!)!;
      erin.client.send(`<presence><c xmlns='${CAPS}' hash='sha-1' node='urn:test:liar' ver='${ver}'/></presence>`);
      const q = await erin.client.waitFor((el) => el.name === 'iq' && el.attrs.type === 'get' && el.getChild('query', NS.DISCO_INFO) !== undefined, 'the caps query');
      const lie = discoInfo(['urn:example:lie', `${TUNE}+notify`]);
      lie.attrs.node = `urn:test:liar#${ver}`;
      erin.client.send(x('iq', NS.CLIENT, { type: 'result', id: q.attrs.id, to: q.attrs.from }, lie).toString());
      await roundTrip(erin.client);
      const r = await publish(alice.client, TUNE, `<tune xmlns='${TUNE}'><artist>Holst</artist></tune>`, 'holst');
      assert.equal(r.attrs.type, 'result');
      await bob.client.waitFor(eventFor(TUNE, (its) => its.getChild('item', EVENT)?.attrs.id === 'holst'), 'the tune at bob');
      await roundTrip(erin.client);
      assert.equal(erin.client.elements.filter(eventFor(TUNE)).length, 0, 'no notification on the strength of a false answer');
      assert.equal(erin.client.elements.filter((el) => el.name === 'message').length, 0);
    } finally {
      erin.client.close();
    }
  });

  test('retract with notify, purge and delete are notified; configure changes who may read', async () => {
    const node = 'urn:example:open';
    // The node keeps one item (the default max_items): 'o2' replaced 'o'.
    assertError(await iq(alice.client, 'set', `<pubsub xmlns='${PUBSUB}'><retract node='${node}'><item id='o'/></retract></pubsub>`), 'item-not-found');
    const r = await iq(alice.client, 'set', `<pubsub xmlns='${PUBSUB}'><retract node='${node}' notify='true'><item id='o2'/></retract></pubsub>`);
    assert.equal(r.attrs.type, 'result');
    await bob.client.waitFor(eventFor(node, (its) => its.getChild('retract', EVENT)?.attrs.id === 'o2'), 'the retraction');
    assertError(await iq(bob.client, 'set', `<pubsub xmlns='${OWNER}'><purge node='${node}'/></pubsub>`, 'alice@localhost'), 'forbidden');
    assert.equal((await iq(alice.client, 'set', `<pubsub xmlns='${OWNER}'><purge node='${node}'/></pubsub>`)).attrs.type, 'result');
    await bob.client.waitFor((el) => el.getChild('event', EVENT)?.getChild('purge', EVENT)?.attrs.node === node, 'the purge');
    assert.deepEqual(itemIds(await items(carol.client, node, 'alice@localhost')), []);
    const set = await iq(alice.client, 'set', `<pubsub xmlns='${OWNER}'><configure node='${node}'><x xmlns='${DATA}' type='submit'><field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#node_config</value></field><field var='pubsub#access_model'><value>presence</value></field></x></configure></pubsub>`);
    assert.equal(set.attrs.type, 'result', set.toString());
    assertError(await items(carol.client, node, 'alice@localhost'), 'not-authorized', 'presence-subscription-required');
    assertError(await iq(alice.client, 'set', `<pubsub xmlns='${OWNER}'><configure node='${node}'><x xmlns='${DATA}' type='submit'><field var='pubsub#access_model'><value>authorize</value></field></x></configure></pubsub>`), 'not-acceptable', 'unsupported-access-model');
    assert.equal((await iq(alice.client, 'set', `<pubsub xmlns='${OWNER}'><delete node='${node}'/></pubsub>`)).attrs.type, 'result');
    await bob.client.waitFor((el) => el.getChild('event', EVENT)?.getChild('delete', EVENT)?.attrs.node === node, 'the deletion');
    assertError(await items(alice.client, node, 'alice@localhost'), 'item-not-found');
  });
});

describe('private storage (XEP-0049) and bookmarks (XEP-0402 with XEP-0048 compat)', () => {
  test('round trip, empty answer for nothing stored, reserved namespaces, other users, size and count limits', async () => {
    assert.equal((await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><prefs xmlns='urn:example:prefs'><nick>Al</nick></prefs></query>`)).attrs.type, 'result');
    const got = await iq(alice.client, 'get', `<query xmlns='${PRIVATE}'><prefs xmlns='urn:example:prefs'/></query>`);
    assert.equal(got.getChild('query', PRIVATE)!.getChild('prefs', 'urn:example:prefs')!.getChildText('nick', 'urn:example:prefs'), 'Al');
    const none = await iq(alice.client, 'get', `<query xmlns='${PRIVATE}'><other xmlns='urn:example:other'/></query>`);
    assert.equal(none.getChild('query', PRIVATE)!.getChild('other', 'urn:example:other')!.children.length, 0);
    assertError(await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><vCard xmlns='vcard-temp'/></query>`), 'not-acceptable');
    assertError(await iq(alice.client, 'get', `<query xmlns='${PRIVATE}'/>`), 'not-acceptable');
    assertError(await iq(bob.client, 'get', `<query xmlns='${PRIVATE}'><prefs xmlns='urn:example:prefs'/></query>`, 'alice@localhost'), 'forbidden');
    assertError(await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><big xmlns='urn:example:big'>${'x'.repeat(3000)}</big></query>`), 'not-acceptable');
    assert.equal((await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><a xmlns='urn:example:a'/></query>`)).attrs.type, 'result');
    assert.equal((await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><b xmlns='urn:example:b'/></query>`)).attrs.type, 'result');
    assertError(await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><c xmlns='urn:example:c'/></query>`), 'policy-violation');
    assert.equal((await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><a xmlns='urn:example:a'>again</a></query>`)).attrs.type, 'result', 'replacing is not one more');
  });

  test('bookmarks published with XEP-0402 read back through XEP-0049, and a XEP-0048 list becomes XEP-0402 items (notified)', async () => {
    const B = 'urn:xmpp:bookmarks:1';
    const r = await publish(alice.client, B, `<conference xmlns='${B}' name='The Play' autojoin='true'><nick>JC</nick><extensions><state xmlns='urn:example:state'/></extensions></conference>`, 'theplay@conference.localhost', {
      'pubsub#persist_items': 'true',
      'pubsub#max_items': 'max',
      'pubsub#send_last_published_item': 'never',
      'pubsub#access_model': 'whitelist',
    });
    assert.equal(r.attrs.type, 'result', r.toString());
    const legacy = await iq(alice.client, 'get', `<query xmlns='${PRIVATE}'><storage xmlns='storage:bookmarks'/></query>`);
    const confs = legacy.getChild('query', PRIVATE)!.getChild('storage', 'storage:bookmarks')!.getChildren('conference', 'storage:bookmarks');
    assert.equal(confs.length, 1);
    assert.equal(confs[0]!.attrs.jid, 'theplay@conference.localhost');
    assert.equal(confs[0]!.attrs.name, 'The Play');
    assert.equal(confs[0]!.attrs.autojoin, 'true');
    assert.equal(confs[0]!.getChildText('nick', 'storage:bookmarks'), 'JC');
    // The other way: a whole new XEP-0048 list: the play kept (renamed), a new room, nothing else.
    const set = await iq(
      alice.client,
      'set',
      `<query xmlns='${PRIVATE}'><storage xmlns='storage:bookmarks'><conference jid='theplay@conference.localhost' name='Renamed' autojoin='1'><nick>JC</nick></conference><conference jid='orchard@conference.localhost' name='Orchard'/></storage></query>`,
    );
    assert.equal(set.attrs.type, 'result', set.toString());
    await alice.client.waitFor(eventFor(B, (its) => its.getChild('item', EVENT)?.attrs.id === 'orchard@conference.localhost'), 'the new bookmark event at alice');
    const pep = await items(alice.client, B, 'alice@localhost');
    const byId = new Map(pep.getChild('pubsub', PUBSUB)!.getChild('items', PUBSUB)!.getChildren('item', PUBSUB).map((i) => [i.attrs.id, i.getChild('conference', B)!]));
    assert.deepEqual([...byId.keys()].sort(), ['orchard@conference.localhost', 'theplay@conference.localhost']);
    assert.equal(byId.get('theplay@conference.localhost')!.attrs.name, 'Renamed');
    assert.ok(byId.get('theplay@conference.localhost')!.getChild('extensions', B)?.getChild('state', 'urn:example:state'), 'extensions preserved (XEP-0402 §2)');
    // A list without the orchard retracts it, with a notification.
    await iq(alice.client, 'set', `<query xmlns='${PRIVATE}'><storage xmlns='storage:bookmarks'><conference jid='theplay@conference.localhost' name='Renamed' autojoin='1'><nick>JC</nick></conference></storage></query>`);
    await alice.client.waitFor(eventFor(B, (its) => its.getChild('retract', EVENT)?.attrs.id === 'orchard@conference.localhost'), 'the retraction at alice');
    assertError(await items(bob.client, B, 'alice@localhost'), 'not-allowed', 'closed-node');
  });
});

describe('avatars (XEP-0084 with XEP-0398) and limits', () => {
  test('a PEP avatar becomes the vCard photo, and presence carries its XEP-0153 hash', async () => {
    const image = Buffer.from('not really a png, but bytes');
    const id = createHash('sha1').update(image).digest('hex');
    const b64 = image.toString('base64');
    assert.equal((await publish(alice.client, 'urn:xmpp:avatar:data', `<data xmlns='urn:xmpp:avatar:data'>${b64}</data>`, id)).attrs.type, 'result');
    assert.equal(
      (await publish(alice.client, 'urn:xmpp:avatar:metadata', `<metadata xmlns='urn:xmpp:avatar:metadata'><info id='${id}' bytes='${image.length}' type='image/png'/></metadata>`, id)).attrs.type,
      'result',
    );
    // The conversion runs after the reply: the vCard read by another user shows it once done.
    let photo: Element | undefined;
    for (let i = 0; i < 50 && !photo; i++) {
      const v = await iq(bob.client, 'get', `<vCard xmlns='vcard-temp'/>`, 'alice@localhost');
      photo = v.getChild('vCard', NS.VCARD)?.getChild('PHOTO', NS.VCARD);
      if (!photo) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(photo, 'the vCard has a PHOTO');
    assert.equal(photo.getChildText('BINVAL', NS.VCARD), b64);
    assert.equal(photo.getChildText('TYPE', NS.VCARD), 'image/png');
    alice.client.send(`<presence><show>chat</show></presence>`);
    const p = await bob.client.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.getChildText('show') === 'chat', "alice's presence");
    assert.equal(p.getChild('x', 'vcard-temp:x:update')?.getChildText('photo', 'vcard-temp:x:update'), id);
  });

  test('a vCard photo stored with XEP-0054 is published as the PEP avatar (XEP-0398 §3.2); a refused vCard is not', async () => {
    const image = Buffer.from('another image, from a vCard');
    const id = createHash('sha1').update(image).digest('hex');
    const set = await iq(dave.client, 'set', `<vCard xmlns='vcard-temp'><FN>Dave</FN><PHOTO><TYPE>image/jpeg</TYPE><BINVAL>${image.toString('base64')}</BINVAL></PHOTO></vCard>`);
    assert.equal(set.attrs.type, 'result', set.toString());
    let meta: Element | undefined;
    for (let i = 0; i < 50 && !meta; i++) {
      const r = await items(dave.client, 'urn:xmpp:avatar:metadata', 'dave@localhost');
      meta = r.attrs.type === 'result' ? r.getChild('pubsub', PUBSUB)?.getChild('items', PUBSUB)?.getChild('item', PUBSUB) : undefined;
      if (!meta) await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(meta, 'a metadata item was published');
    assert.equal(meta.attrs.id, id);
    const info = meta.getChild('metadata', 'urn:xmpp:avatar:metadata')!.getChild('info', 'urn:xmpp:avatar:metadata')!;
    assert.deepEqual([info.attrs.id, info.attrs.type, info.attrs.bytes], [id, 'image/jpeg', String(image.length)]);
    const data = await items(dave.client, 'urn:xmpp:avatar:data', 'dave@localhost', '', `<item id='${id}'/>`);
    assert.equal(data.getChild('pubsub', PUBSUB)!.getChild('items', PUBSUB)!.getChild('item', PUBSUB)!.getChildText('data', 'urn:xmpp:avatar:data'), image.toString('base64'));
    // The vCard keeps its other fields (the PEP to vCard way does not rewrite it).
    const v = await iq(dave.client, 'get', `<vCard xmlns='vcard-temp'/>`);
    assert.equal(v.getChild('vCard', NS.VCARD)!.getChildText('FN', NS.VCARD), 'Dave');
    // A vCard the server refuses (over vcard.max_bytes) publishes nothing.
    const other = Buffer.alloc(70_000, 1);
    const refusedSet = await iq(dave.client, 'set', `<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>${other.toString('base64')}</BINVAL></PHOTO></vCard>`);
    assertError(refusedSet, 'not-acceptable');
    await roundTrip(dave.client);
    const after = await items(dave.client, 'urn:xmpp:avatar:metadata', 'dave@localhost');
    assert.deepEqual(itemIds(after), [id]);
  });

  test('one node more than max_nodes: policy-violation + max-nodes-exceeded', async () => {
    let last: Element | undefined;
    for (let i = 0; i < 15; i++) {
      last = await publish(alice.client, `urn:example:fill:${i}`, `<f xmlns='urn:example'/>`, 'f');
      if (last.attrs.type === 'error') break;
    }
    assertError(last!, 'policy-violation', 'max-nodes-exceeded');
  });
});

describe('account deletion', () => {
  test("deleting an account deletes its nodes, items and private XML", async () => {
    const db = srv.server.storage.sql.db<{ pep_nodes: { username: string }; pep_items: { username: string }; private_xml: { username: string } }>();
    const count = async (t: 'pep_nodes' | 'pep_items' | 'private_xml') =>
      Number((await db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).where('username', '=', 'alice').executeTakeFirst())?.n ?? 0);
    assert.ok((await count('pep_nodes')) > 0 && (await count('pep_items')) > 0 && (await count('private_xml')) > 0);
    alice.client.close();
    assert.equal(await srv.server.storage.accounts.remove('localhost', 'alice'), true);
    assert.equal(await count('pep_nodes'), 0);
    assert.equal(await count('pep_items'), 0);
    assert.equal(await count('private_xml'), 0);
  });
});
