import { test } from 'node:test';
import assert from 'node:assert/strict';
import { x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { CapsCache, capsHash, capsOf, verificationString, verifies } from './caps.js';
import { NS_CAPS, NS_DATA } from './ns.js';

const identity = (attrs: Record<string, string>) => x('identity', NS.DISCO_INFO, attrs);
const feature = (v: string) => x('feature', NS.DISCO_INFO, { var: v });
const field = (v: string, values: string[], type?: string) => x('field', NS_DATA, { var: v, type }, ...values.map((s) => x('value', NS_DATA, {}, s)));

const FEATURES = ['http://jabber.org/protocol/muc', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#items'];

test('XEP-0115 §5.2 simple example: S and ver', () => {
  const q = x('query', NS.DISCO_INFO, {}, identity({ category: 'client', type: 'pc', name: 'Exodus 0.9.1' }), ...FEATURES.map(feature));
  const s = verificationString(q);
  assert.equal(
    s,
    'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
  );
  assert.equal(capsHash('sha-1', s!), 'QgayPKawpkPSDYmwT/WM94uAlu0=');
  assert.ok(verifies({ hash: 'sha-1', ver: 'QgayPKawpkPSDYmwT/WM94uAlu0=' }, q));
  assert.ok(!verifies({ hash: 'sha-1', ver: 'QgayPKawpkPSDYmwT/WM94uAlu1=' }, q));
  assert.ok(!verifies({ hash: 'md5', ver: 'QgayPKawpkPSDYmwT/WM94uAlu0=' }, q), 'an unknown hash function never verifies');
});

function complex(): ReturnType<typeof x> {
  return x(
    'query',
    NS.DISCO_INFO,
    { node: 'http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w=' },
    identity({ 'xml:lang': 'en', category: 'client', name: 'Psi 0.11', type: 'pc' }),
    identity({ 'xml:lang': 'el', category: 'client', name: 'Ψ 0.11', type: 'pc' }),
    ...FEATURES.map(feature),
    x(
      'x',
      NS_DATA,
      { type: 'result' },
      field('FORM_TYPE', ['urn:xmpp:dataforms:softwareinfo'], 'hidden'),
      field('ip_version', ['ipv6', 'ipv4'], 'text-multi'),
      field('os', ['Mac']),
      field('os_version', ['10.5.1']),
      field('software', ['Psi']),
      field('software_version', ['0.11']),
    ),
  );
}

test('XEP-0115 §5.3 complex example: identities with languages, a form sorted by var and by value', () => {
  const q = complex();
  const s = verificationString(q);
  assert.equal(
    s,
    'client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<',
  );
  assert.ok(verifies({ hash: 'sha-1', ver: 'q07IKJEyjvHSyhy//CH0CxmKi8w=' }, q));
});

test('XEP-0115 §5.4: ill-formed answers never verify; forms without a hidden FORM_TYPE are ignored', () => {
  const dupFeature = x('query', NS.DISCO_INFO, {}, identity({ category: 'client', type: 'pc' }), feature('a'), feature('a'));
  assert.equal(verificationString(dupFeature), undefined);
  const dupIdentity = x('query', NS.DISCO_INFO, {}, identity({ category: 'client', type: 'pc' }), identity({ category: 'client', type: 'pc' }));
  assert.equal(verificationString(dupIdentity), undefined);
  const form = (t: string) => x('x', NS_DATA, { type: 'result' }, field('FORM_TYPE', [t], 'hidden'));
  assert.equal(verificationString(x('query', NS.DISCO_INFO, {}, form('urn:a'), form('urn:a'))), undefined);
  const twoTypes = x('x', NS_DATA, { type: 'result' }, field('FORM_TYPE', ['urn:a', 'urn:b'], 'hidden'));
  assert.equal(verificationString(x('query', NS.DISCO_INFO, {}, twoTypes)), undefined);
  const notHidden = x('x', NS_DATA, { type: 'result' }, field('FORM_TYPE', ['urn:a']), field('f', ['v']));
  assert.equal(verificationString(x('query', NS.DISCO_INFO, {}, feature('a'), notHidden)), 'a<');
});

test('capsOf reads hash, node and ver; legacy caps without hash are ignored', () => {
  const p = x('presence', NS.CLIENT, {}, x('c', NS_CAPS, { hash: 'sha-1', node: 'n', ver: 'v=' }));
  assert.deepEqual(capsOf(p), { hash: 'sha-1', node: 'n', ver: 'v=' });
  assert.equal(capsOf(x('presence', NS.CLIENT, {}, x('c', NS_CAPS, { node: 'n', ver: '1.0' }))), undefined);
  assert.equal(capsOf(x('presence', NS.CLIENT)), undefined);
  assert.equal(capsOf(undefined), undefined);
});

test('CapsCache keeps at most max entries, dropping the least recently used', () => {
  const c = new CapsCache(2);
  c.set({ hash: 'sha-1', ver: 'a' }, new Set(['1']));
  c.set({ hash: 'sha-1', ver: 'b' }, new Set(['2']));
  assert.ok(c.get({ hash: 'sha-1', ver: 'a' }));
  c.set({ hash: 'sha-1', ver: 'c' }, new Set(['3']));
  assert.equal(c.size, 2);
  assert.equal(c.get({ hash: 'sha-1', ver: 'b' }), undefined);
  assert.deepEqual([...c.get({ hash: 'sha-1', ver: 'a' })!], ['1']);
  assert.equal(c.get({ hash: 'sha-256', ver: 'a' }), undefined, 'keyed by hash function too');
});
