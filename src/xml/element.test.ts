import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, x, escapeAttr, escapeText } from './element.js';

test('serialises namespaces only where they change, with escaping', () => {
  const el = x('iq', 'jabber:client', { type: 'result', id: `a"<&'` }, x('query', 'jabber:iq:roster', {}, x('item', 'jabber:iq:roster', { jid: 'a@b' }, 'x<y&z')));
  assert.equal(
    el.toString('jabber:client'),
    `<iq type="result" id="a&quot;&lt;&amp;&apos;"><query xmlns="jabber:iq:roster"><item jid="a@b">x&lt;y&amp;z</item></query></iq>`,
  );
  assert.equal(el.toString(), `<iq xmlns="jabber:client" type="result" id="a&quot;&lt;&amp;&apos;"><query xmlns="jabber:iq:roster"><item jid="a@b">x&lt;y&amp;z</item></query></iq>`);
});

test('escaping is stateless across calls (no global-regex lastIndex)', () => {
  for (let i = 0; i < 3; i++) {
    assert.equal(escapeText('a&b'), 'a&amp;b');
    assert.equal(escapeAttr("'"), '&apos;');
  }
});

test('x() drops undefined attributes; clone is deep', () => {
  const el = x('message', 'jabber:client', { to: 'a@b', id: undefined }, x('body', 'jabber:client', {}, 'hi'));
  assert.deepEqual(el.attrs, { to: 'a@b' });
  const copy = el.clone();
  (copy.getChild('body') as Element).children.push('!');
  assert.equal(el.getChildText('body'), 'hi');
  assert.equal(copy.getChildText('body'), 'hi!');
});

test('namespace declarations kept in attrs are serialised and cloned', () => {
  const el = new Element('item', 'urn:example:x', { 'b:role': 'owner', 'xmlns:b': 'urn:example:b' });
  assert.equal(el.toString('jabber:client'), '<item xmlns="urn:example:x" b:role="owner" xmlns:b="urn:example:b"/>');
  assert.equal(el.clone().toString('urn:example:x'), '<item b:role="owner" xmlns:b="urn:example:b"/>');
});

// Found by the stream parser fuzz target (fuzz/targets/stream.ts): '&#10;' in an
// attribute came back as a space and '&#13;' in text as a newline after forwarding.
test('whitespace a parser would normalise is written as character references', () => {
  assert.equal(escapeAttr('a\tb\nc\rd'), 'a&#9;b&#10;c&#13;d');
  assert.equal(escapeText('a\tb\nc\rd'), 'a\tb\nc&#13;d');
  const el = x('message', 'jabber:client', { id: '\n b\t' }, x('body', 'jabber:client', {}, 'one\r\ntwo\r'));
  assert.equal(el.toString('jabber:client'), '<message id="&#10; b&#9;"><body>one&#13;\ntwo&#13;</body></message>');
});
