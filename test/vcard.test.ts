// XEP-0054 vcard-temp and XEP-0153 avatar hashes over raw XML.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { NS } from '../src/xml/namespaces.js';
import type { Element } from '../src/xml/element.js';
import { iq, stanzaErrorCondition as condition } from './support/raw-client.js';

const NS_UPDATE = 'vcard-temp:x:update';
const MAX_BYTES = 2000;

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ vcard: { max_bytes: MAX_BYTES } });
  for (const u of ['alice', 'bob', 'carol']) await srv.addUser(u, `${u}-pass`);
});
after(() => srv.stop());

// A small "image": the hash is of these bytes, not of their base64 (XEP-0153 §3.1).
const IMAGE = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff));
const IMAGE_SHA1 = createHash('sha1').update(IMAGE).digest('hex');
/** RFC 2045 line breaks inside BINVAL must be ignored (XEP-0153 §4.6 rule 5). */
const WRAPPED = (IMAGE.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
const VCARD = `<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N><PHOTO><TYPE>image/png</TYPE><BINVAL>\n${WRAPPED}\n</BINVAL></PHOTO></vCard>`;

test('disco: vcard-temp on the server and on the account (XEP-0054 §4)', async () => {
  const a = await login(srv.port, 'carol', 'carol-pass');
  for (const to of ['localhost', 'carol@localhost']) {
    const r = await iq(a.client, `type='get' to='${to}'`, `<query xmlns='${NS.DISCO_INFO}'/>`);
    const features = r.getChild('query', NS.DISCO_INFO)?.getChildren('feature').map((f) => f.attrs.var) ?? [];
    assert.ok(features.includes('vcard-temp'), to);
  }
  a.client.close();
});

test('get, set, get for self and others; errors', async () => {
  const alice = await login(srv.port, 'alice', 'alice-pass');
  const bob = await login(srv.port, 'bob', 'bob-pass');

  // §3.1: no vCard yet: one's own is an empty <vCard/>.
  const empty = await iq(alice.client, `type='get'`, `<vCard xmlns='vcard-temp'/>`);
  assert.equal(empty.attrs.type, 'result');
  const emptyCard = empty.getChild('vCard', NS.VCARD);
  assert.ok(emptyCard);
  assert.equal(emptyCard.children.length, 0);
  // §3.3: someone else's missing vCard, or a missing account: service-unavailable, alike.
  assert.equal(condition(await iq(bob.client, `type='get' to='alice@localhost'`, `<vCard xmlns='vcard-temp'/>`)), 'service-unavailable');
  assert.equal(condition(await iq(bob.client, `type='get' to='nobody@localhost'`, `<vCard xmlns='vcard-temp'/>`)), 'service-unavailable');

  // §3.2: set one's own.
  const set = await iq(alice.client, `type='set'`, VCARD);
  assert.equal(set.attrs.type, 'result');
  assert.equal(set.children.length, 0);
  for (const [c, attrs] of [
    [alice.client, `type='get'`],
    [alice.client, `type='get' to='alice@localhost'`],
    [bob.client, `type='get' to='alice@localhost'`],
  ] as const) {
    const r = await iq(c, attrs, `<vCard xmlns='vcard-temp'/>`);
    assert.equal(r.attrs.type, 'result');
    const card = r.getChild('vCard', NS.VCARD);
    assert.ok(card, attrs);
    assert.equal(card.getChildText('FN', NS.VCARD), 'Alice Liddell');
    assert.equal(card.getChild('N', NS.VCARD)?.getChildText('GIVEN', NS.VCARD), 'Alice');
    const binval = card.getChild('PHOTO', NS.VCARD)?.getChildText('BINVAL', NS.VCARD) ?? '';
    assert.ok(Buffer.from(binval.replace(/\s+/g, ''), 'base64').equals(IMAGE));
  }
  // The server answers on the account's behalf (XEP-0054 §3.3: "MUST respond ... and not forward").
  const fromAlice = await iq(bob.client, `type='get' to='alice@localhost'`, `<vCard xmlns='vcard-temp'/>`);
  assert.equal(fromAlice.attrs.from, 'alice@localhost');

  // §3.2: someone else's: forbidden, and nothing changes.
  assert.equal(condition(await iq(bob.client, `type='set' to='alice@localhost'`, `<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>`)), 'forbidden');
  // Over vcard.max_bytes: not-acceptable, nothing changes.
  const big = `<vCard xmlns='vcard-temp'><DESC>${'x'.repeat(MAX_BYTES)}</DESC></vCard>`;
  const tooBig = await iq(alice.client, `type='set'`, big);
  assert.equal(condition(tooBig), 'not-acceptable');
  assert.equal(tooBig.getChild('error')?.attrs.type, 'modify');
  // Element names are case-sensitive (XEP-0054 §8).
  assert.equal(condition(await iq(alice.client, `type='set'`, `<VCARD xmlns='vcard-temp'/>`)), 'bad-request');
  const still = await iq(bob.client, `type='get' to='alice@localhost'`, `<vCard xmlns='vcard-temp'/>`);
  assert.equal(still.getChild('vCard', NS.VCARD)?.getChildText('FN', NS.VCARD), 'Alice Liddell');

  // A vCard just under the limit is taken.
  const fits = `<vCard xmlns="vcard-temp"><DESC>${'y'.repeat(MAX_BYTES - 60)}</DESC></vCard>`;
  assert.ok(Buffer.byteLength(fits) <= MAX_BYTES);
  assert.equal((await iq(bob.client, `type='set'`, fits)).attrs.type, 'result');
  const bobs = await iq(alice.client, `type='get' to='bob@localhost'`, `<vCard xmlns='vcard-temp'/>`);
  assert.equal(bobs.getChild('vCard', NS.VCARD)?.getChildText('DESC', NS.VCARD), 'y'.repeat(MAX_BYTES - 60));

  alice.client.close();
  bob.client.close();
});

const photoOf = (presence: Element): { count: number; photo: string | undefined } => {
  const xs = presence.getChildren('x', NS_UPDATE);
  const photo = xs[0]?.getChild('photo', NS_UPDATE);
  return { count: xs.length, photo: photo ? photo.text() : undefined };
};

async function twoResources(user: string): Promise<[LoggedIn, LoggedIn]> {
  const first = await login(srv.port, user, `${user}-pass`);
  first.client.send('<presence/>');
  const second = await login(srv.port, user, `${user}-pass`);
  return [first, second];
}

test('XEP-0153: available presence carries the server-computed photo hash', async () => {
  // alice has the vCard with a photo from the previous test; her other resource sees her presence (RFC 6121 §4.4.2).
  const [a1, a2] = await twoResources('alice');
  a2.client.send(`<presence><show>away</show><x xmlns='vcard-temp:x:update'><photo>0000000000000000000000000000000000000000</photo></x></presence>`);
  const seen = await a1.client.waitFor((el) => el.name === 'presence' && el.attrs.from === a2.jid, "the other resource's presence");
  assert.deepEqual(photoOf(seen), { count: 1, photo: IMAGE_SHA1 }, "the client's stale hash is replaced");
  assert.equal(seen.getChildText('show'), 'away', 'the rest is untouched');

  // A new vCard without photo: the next presence says "no image" with an empty <photo/> (§4.1 rule 3).
  assert.equal((await iq(a2.client, `type='set'`, `<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>`)).attrs.type, 'result');
  a2.client.send('<presence/>');
  const next = await a1.client.waitFor((el) => el.name === 'presence' && el.attrs.from === a2.jid);
  assert.deepEqual(photoOf(next), { count: 1, photo: '' });

  // And with a photo again, the new hash at once.
  assert.equal((await iq(a1.client, `type='set'`, VCARD)).attrs.type, 'result');
  a2.client.send('<presence><status>back</status></presence>');
  const third = await a1.client.waitFor((el) => el.name === 'presence' && el.attrs.from === a2.jid);
  assert.deepEqual(photoOf(third), { count: 1, photo: IMAGE_SHA1 });

  // Unavailable presence carries nothing added.
  a2.client.send(`<presence type='unavailable'/>`);
  const gone = await a1.client.waitFor((el) => el.name === 'presence' && el.attrs.from === a2.jid && el.attrs.type === 'unavailable');
  assert.equal(gone.getChild('x', NS_UPDATE), undefined);
  a1.client.close();
  a2.client.close();
});

test('XEP-0153: a user without vCard advertises an empty photo', async () => {
  const [c1, c2] = await twoResources('carol');
  c2.client.send('<presence/>');
  const seen = await c1.client.waitFor((el) => el.name === 'presence' && el.attrs.from === c2.jid);
  assert.deepEqual(photoOf(seen), { count: 1, photo: '' });
  c1.client.close();
  c2.client.close();
});
