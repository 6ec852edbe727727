// XEP-0163 PEP with real clients: slixmpp's own plugins (xep_0060, xep_0163,
// xep_0115, xep_0084, xep_0223, xep_0049, xep_0048; test/slixmpp/pep_client.py)
// and xmpp.js. OMEMO device lists and bundles (current and legacy nodes) published
// with access_model=open are read by users who are not contacts; notifications go
// to a contact whose XEP-0115 caps ask for the node and not to one whose caps do not;
// a presence-access node is refused to a stranger; publish-options mismatch; bookmarks
// both ways between XEP-0402 and XEP-0048/XEP-0049; private storage and its limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate, xml, type XmlElement } from './support/xmppjs.js';
import { IqFailure, SlixClient, XjsClient, slixmppMissing, type StanzaView } from './support/im-clients.js';

const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };
const SCRIPT = join(import.meta.dirname, 'slixmpp', 'pep_client.py');
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const OMEMO_DEVICES = 'urn:xmpp:omemo:2:devices';
const OMEMO_BUNDLES = 'urn:xmpp:omemo:2:bundles';
const AXOLOTL_DEVICES = 'eu.siacs.conversations.axolotl.devicelist';
const axolotlBundles = (id: number) => `eu.siacs.conversations.axolotl.bundles:${id}`;
const OPEN = { 'pubsub#access_model': 'open' };

let srv: TestServer;
let caFile: string;
let restoreTls: () => void;
const clients: { dispose(): Promise<void> }[] = [];

before(async () => {
  srv = await startTestServer({ sasl: NO_PLUS, pep: { private_max_bytes: 1024 } });
  for (const u of ['alice', 'bob', 'frank', 'carol', 'dave']) await srv.addUser(u, `${u}-pass`);
  // alice <-> bob and alice <-> frank are contacts; carol and dave are strangers to everyone.
  const item = (jid: string) => ({ jid, subscription: 'both' as const, ask: false, pendingIn: false, approved: false, groups: [] });
  const r = srv.server.storage.roster;
  await r.setItem('localhost', 'alice', item('bob@localhost'));
  await r.setItem('localhost', 'bob', item('alice@localhost'));
  await r.setItem('localhost', 'alice', item('frank@localhost'));
  await r.setItem('localhost', 'frank', item('alice@localhost'));
  caFile = join(srv.dir, 'data', 'tls', 'self-signed.crt');
  restoreTls = trustCertificate(serverCertificate(srv.dir));
});
after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  restoreTls();
  await srv.stop();
});

async function slix(user: string, notify: string[] = []): Promise<SlixClient> {
  const c = await SlixClient.connect({ port: srv.port, user, password: `${user}-pass`, caFile, mech: 'SCRAM-SHA-256', script: SCRIPT });
  clients.push(c);
  if (notify.length > 0) await c.command('notify', { nodes: notify });
  await c.presence();
  await c.ping();
  return c;
}

type PepView = StanzaView & { op: string; node: string; item_id: string | null };
const pepEvent =
  (node: string, op = 'publish', id?: string) =>
  (s: StanzaView): boolean => {
    const e = s as unknown as PepView;
    return (s.kind as string) === 'pep' && e.node === node && e.op === op && (id === undefined || e.item_id === id);
  };

async function refused(p: Promise<unknown>): Promise<IqFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof IqFailure) return err;
    throw err;
  }
  assert.fail('the request was not refused');
}

const items = async (c: SlixClient, jid: string, node: string, extra: Record<string, unknown> = {}) =>
  ((await c.command('items', { jid, node, ...extra })).items as { id: string; xml: string }[]);

describe('PEP with slixmpp and xmpp.js', { skip: slixmppMissing() || undefined }, () => {
  test('OMEMO: two users who are not contacts read each other’s device lists and bundles published with access_model=open (current and legacy nodes)', async () => {
    const carol = await slix('carol');
    const dave = await slix('dave');
    for (const [c, id] of [
      [carol, 1111],
      [dave, 2222],
    ] as const) {
      await c.command('publish', { node: OMEMO_DEVICES, item_id: 'current', xml: `<devices xmlns='urn:xmpp:omemo:2'><device id='${id}' label='phone'/></devices>`, options: OPEN });
      await c.command('publish', {
        node: OMEMO_BUNDLES,
        item_id: String(id),
        xml: `<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>c3Br</spk><spks>c2ln</spks><ik>aWs=</ik><prekeys><pk id='1'>cGsx</pk></prekeys></bundle>`,
        options: { ...OPEN, 'pubsub#max_items': 'max' },
      });
      await c.command('publish', { node: AXOLOTL_DEVICES, item_id: 'current', xml: `<list xmlns='eu.siacs.conversations.axolotl'><device id='${id}'/></list>`, options: OPEN });
      await c.command('publish', {
        node: axolotlBundles(id),
        item_id: 'current',
        xml: `<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='1'>c3Br</signedPreKeyPublic><identityKey>aWs=</identityKey></bundle>`,
        options: OPEN,
      });
    }
    const devices = await items(carol, 'dave@localhost', OMEMO_DEVICES);
    assert.equal(devices.length, 1);
    assert.equal(devices[0]!.id, 'current');
    assert.match(devices[0]!.xml, /device[^>]*id="2222"/);
    assert.match((await items(dave, 'carol@localhost', OMEMO_DEVICES))[0]!.xml, /id="1111"/);
    const bundle = await items(carol, 'dave@localhost', OMEMO_BUNDLES, { ids: ['2222'] });
    assert.deepEqual(bundle.map((b) => b.id), ['2222']);
    assert.match(bundle[0]!.xml, /ik>aWs=</);
    assert.match((await items(dave, 'carol@localhost', AXOLOTL_DEVICES))[0]!.xml, /id="1111"/);
    assert.match((await items(dave, 'carol@localhost', axolotlBundles(1111), { max: 1 }))[0]!.xml, /identityKey/);
    // xmpp.js, another stranger's client, reads the same open nodes.
    const x = await XjsClient.connect({ port: srv.port, user: 'bob', password: 'bob-pass', caFile });
    clients.push(x);
    const r: XmlElement = await x.xmpp.iqCaller.request(
      xml('iq', { type: 'get', to: 'dave@localhost' }, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: OMEMO_DEVICES }))),
      5000,
    );
    const device = r.getChild('pubsub', PUBSUB)?.getChild('items')?.getChild('item')?.getChild('devices', 'urn:xmpp:omemo:2')?.getChild('device');
    assert.equal(device?.attrs.id, '2222');
    const legacy: XmlElement = await x.xmpp.iqCaller.request(
      xml('iq', { type: 'get', to: 'carol@localhost' }, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: axolotlBundles(1111) }))),
      5000,
    );
    assert.ok(legacy.getChild('pubsub', PUBSUB)?.getChild('items')?.getChild('item')?.getChild('bundle', 'eu.siacs.conversations.axolotl'));
  });

  test('a contact whose caps announce NODE+notify gets the notification, a contact whose caps do not never does; a presence node is refused to a stranger', async () => {
    const NODE = 'urn:example:mood';
    const MARK = 'urn:example:marker';
    const bob = await slix('bob', [NODE]);
    const frank = await slix('frank', [MARK]);
    const alice = await slix('alice');
    const carol = await slix('carol');
    const pub = await alice.command('publish', { node: NODE, xml: `<mood xmlns='${NODE}'><happy/></mood>` });
    const id = pub.item_id as string;
    assert.ok(id, 'the server generated an item id');
    const ev = await bob.next(pepEvent(NODE, 'publish', id), 'the notification at bob', 8000);
    assert.equal(ev.from, 'alice@localhost');
    // frank asks only for the marker: once its notification is there, a mood one would have been too.
    await alice.command('publish', { node: MARK, item_id: 'm', xml: `<m xmlns='${MARK}'/>` });
    await frank.next(pepEvent(MARK), 'the marker at frank', 8000);
    await frank.ping();
    assert.equal(frank.count(pepEvent(NODE)), 0, 'no notification for a contact without +notify');
    assert.equal(carol.count(pepEvent(NODE)), 0, 'none for a stranger');
    // The node has the default access model, presence: bob reads it, carol is refused.
    assert.deepEqual((await items(bob, 'alice@localhost', NODE)).map((i) => i.id), [id]);
    const err = await refused(carol.command('items', { jid: 'alice@localhost', node: NODE }));
    assert.equal(err.condition, 'not-authorized');
    assert.equal(err.errorType, 'auth');
    // publish-options that do not match the node: conflict (precondition-not-met), nothing published.
    const mismatch = await refused(alice.command('publish', { node: NODE, xml: `<mood xmlns='${NODE}'><sad/></mood>`, options: OPEN }));
    assert.equal(mismatch.condition, 'conflict');
    assert.deepEqual((await items(alice, 'alice@localhost', NODE)).map((i) => i.id), [id]);
    // Retraction with notify reaches bob.
    await alice.command('retract', { node: NODE, item_id: id, notify: true });
    await bob.next(pepEvent(NODE, 'retract', id), 'the retraction at bob', 8000);
  });

  test('a new resource gets the last item on its initial presence (XEP-0163 §4.3.4); a XEP-0084 avatar reaches a contact and becomes the vCard photo (XEP-0398)', async () => {
    const NODE = 'urn:example:status';
    const alice = await slix('alice');
    await alice.command('publish', { node: NODE, item_id: 'now', xml: `<s xmlns='${NODE}'>busy</s>` });
    const bob2 = await slix('bob', [NODE]);
    const last = await bob2.next(pepEvent(NODE, 'publish', 'now'), 'the last item at the new resource', 8000);
    assert.equal(last.to, bob2.jid);
    // slixmpp's xep_0084 plugin asks for avatar metadata notifications by itself.
    const image = Buffer.from('a tiny avatar image');
    const r = await alice.command('avatar', { data_b64: image.toString('base64'), type: 'image/png' });
    await bob2.next(pepEvent('urn:xmpp:avatar:metadata', 'publish', r.item_id as string), 'the avatar metadata at bob', 8000);
    let photo: string | null = null;
    // XEP-0398: the vCard is written after the metadata went out (a moment later on PostgreSQL);
    // until then alice has no vCard, which is service-unavailable (XEP-0054 §3.3).
    for (let i = 0; i < 100 && photo === null; i++) {
      photo = await bob2.vcardGet('alice@localhost').then(
        (v) => v.photo,
        (err: unknown) => {
          if (!/service-unavailable/.test(String(err))) throw err;
          return null;
        },
      );
      if (photo === null) await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(photo?.replace(/\s+/g, ''), image.toString('base64'));
  });

  test('bookmarks: XEP-0402 items read back through XEP-0048/XEP-0049, and a XEP-0049 list read back as XEP-0402 items', async () => {
    const alice = await slix('alice', ['urn:xmpp:bookmarks:1']);
    await alice.command('private_store', {
      node: 'urn:xmpp:bookmarks:1',
      item_id: 'council@conference.localhost',
      xml: `<conference xmlns='urn:xmpp:bookmarks:1' name='Council' autojoin='true'><nick>Puck</nick></conference>`,
    });
    const legacy = (await alice.command('bookmarks_get')).conferences as { jid: string; name: string; nick: string; autojoin: boolean }[];
    assert.deepEqual(legacy, [{ jid: 'council@conference.localhost', name: 'Council', nick: 'Puck', autojoin: true }]);
    await alice.command('bookmarks_set', {
      conferences: [
        { jid: 'council@conference.localhost', name: 'Council', nick: 'Puck', autojoin: true },
        { jid: 'garden@conference.localhost', name: 'Garden', nick: 'Puck', autojoin: false },
      ],
    });
    await alice.next(pepEvent('urn:xmpp:bookmarks:1', 'publish', 'garden@conference.localhost'), 'the new bookmark notified', 8000);
    const pep = (await alice.command('private_get', { node: 'urn:xmpp:bookmarks:1' })).items as { id: string; xml: string }[];
    assert.deepEqual(pep.map((i) => i.id).sort(), ['council@conference.localhost', 'garden@conference.localhost']);
    assert.match(pep.find((i) => i.id === 'garden@conference.localhost')!.xml, /name="Garden"/);
    // A contact cannot read them: the node is whitelist (XEP-0223).
    const bob = await slix('bob');
    assert.equal((await refused(bob.command('items', { jid: 'alice@localhost', node: 'urn:xmpp:bookmarks:1' }))).condition, 'not-allowed');
  });

  test('private XML storage (XEP-0049): round trip, and an element over the size limit is not-acceptable', async () => {
    const alice = await slix('alice');
    await alice.command('xml_store', { xml: `<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>` });
    const back = await alice.command('xml_get', { xml: `<prefs xmlns='urn:example:prefs'/>` });
    assert.match(back.xml as string, /theme>dark</);
    const big = await refused(alice.command('xml_store', { xml: `<big xmlns='urn:example:big'>${'y'.repeat(2000)}</big>` }));
    assert.equal(big.condition, 'not-acceptable');
  });
});
