import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { x, type Element } from './element.js';
import { NS } from './namespaces.js';
import { DEFAULT_MAX_ATTRIBUTES, StreamParser } from './parser.js';
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

  // Found by the stream parser fuzz target (fuzz/targets/stream.ts): a stream header
  // without a default namespace makes its stanzas elements in no namespace.
  test('an element in no namespace stays in no namespace', () => {
    const el = x('message', '', { to: 'romeo@example.net' }, x('body', '', {}, 'hi'), x('x', 'urn:example', {}, x('y', '')));
    const text = storeXml(el);
    assert.match(text, /^<message xmlns=""/);
    assert.deepEqual(loadXml(text), el);
  });

  test('a vCard keeps its own namespace', () => {
    const card = x('vCard', NS.VCARD, {}, x('FN', NS.VCARD, {}, 'Juliet'));
    const back = loadXml(storeXml(card));
    assert.equal(back.xmlns, NS.VCARD);
    assert.equal(back.getChildText('FN', NS.VCARD), 'Juliet');
  });

  test('an element whose attributes use prefixes declared on its parent stands alone when stored', () => {
    // As many attributes as a client may write, each with a prefix declared on the stanza:
    // the parser adds one declaration per prefix, and the stored text must still load.
    let decls = '';
    let used = '';
    for (let i = 0; i < DEFAULT_MAX_ATTRIBUTES; i++) {
      decls += ` xmlns:p${i}='urn:example:${i}'`;
      used += ` p${i}:a='${i}'`;
    }
    let item: Element | undefined;
    const parser = new StreamParser(
      {
        streamStart: () => undefined,
        element: (el) => (item = el.getChild('x', 'urn:example:x')?.getChild('item')),
        whitespace: () => undefined,
        streamEnd: () => undefined,
        error: (condition, text) => assert.fail(`${condition}: ${text}`),
      },
      { maxStanzaSize: 100_000 },
    );
    parser.write(`<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'><message${decls}><x xmlns='urn:example:x'><item${used}/></x></message>`);
    assert.ok(item);
    const back = loadXml(storeXml(item.clone()));
    assert.deepEqual(back.attrs, item.attrs);
    assert.equal(back.attrs['xmlns:p7'], 'urn:example:7');
  });

  test('anything that is not exactly one well-formed element is refused', () => {
    assert.throws(() => loadXml(''), /no element/);
    assert.throws(() => loadXml('<a/><b/>'), /more than one/);
    assert.throws(() => loadXml('<a>'), /not valid|no element/);
    assert.throws(() => loadXml('<a></b>'), /not valid/);
    assert.throws(() => loadXml('<!-- c --><a/>'), /not valid/);
  });
});

// Found by the stream parser fuzz target (fuzz/targets/stream.ts).
test('whitespace from character references survives parse, store and load', () => {
  const elements: Element[] = [];
  const parser = new StreamParser(
    { streamStart: () => undefined, element: (el) => elements.push(el), whitespace: () => undefined, streamEnd: () => undefined, error: (c) => assert.fail(c) },
    { maxStanzaSize: 10_000 },
  );
  parser.write(`<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'><message id='&#10;&#x9;&#13; b'><body>cr&#13;lf&#10;tab&#9;</body></message>`);
  const msg = elements[0]!;
  assert.equal(msg.attrs.id, '\n\t\r b');
  assert.equal(msg.getChildText('body'), 'cr\rlf\ntab\t');
  assert.deepEqual(loadXml(storeXml(msg)), msg);
});
