import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { x } from './element.js';
import { NS } from './namespaces.js';
import { loadXml, storeXml } from './stored.js';

describe('storeXml / loadXml', () => {
  test('a message round-trips with its namespaces, attributes and escaped text', () => {
    const msg = x(
      'message',
      NS.CLIENT,
      { from: 'a@b/c', to: 'd@e', id: "q'\"<>&", 'xml:lang': 'fr' },
      x('body', NS.CLIENT, {}, '1 < 2 & 3 > 2 ✓'),
      x('x', 'jabber:x:oob', {}, x('url', 'jabber:x:oob', {}, 'https://example.org/?a=1&b=2')),
    );
    const text = storeXml(msg);
    assert.match(text, /^<message xmlns="jabber:client"/, 'the content namespace is written out');
    const back = loadXml(text);
    assert.deepEqual(back, msg);
    assert.equal(back.getChild('x', 'jabber:x:oob')?.getChildText('url', 'jabber:x:oob'), 'https://example.org/?a=1&b=2');
  });

  test('a vCard keeps its own namespace', () => {
    const card = x('vCard', NS.VCARD, {}, x('FN', NS.VCARD, {}, 'Juliet'));
    const back = loadXml(storeXml(card));
    assert.equal(back.xmlns, NS.VCARD);
    assert.equal(back.getChildText('FN', NS.VCARD), 'Juliet');
  });

  test('anything that is not exactly one well-formed element is refused', () => {
    assert.throws(() => loadXml(''), /no element/);
    assert.throws(() => loadXml('<a/><b/>'), /more than one/);
    assert.throws(() => loadXml('<a>'), /not valid|no element/);
    assert.throws(() => loadXml('<a></b>'), /not valid/);
    assert.throws(() => loadXml('<!-- c --><a/>'), /not valid/);
  });
});
