// RFC 7395 §3.3.1: one message, one complete standalone element.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElementFrameParser, ElementReader, NS_FRAMING, parseOneElement } from './frames.js';
import type { StreamHeader } from '../../xml/parser.js';
import type { Element } from '../../xml/element.js';

const opts = { maxStanzaSize: 1000 };

test('one element with its namespace is accepted, whitespace around it too', () => {
  const r = parseOneElement(" <message xmlns='jabber:client' to='a@b'><body>x</body></message>\n", opts);
  assert.ok('el' in r);
  assert.equal(r.el.name, 'message');
  assert.equal(r.el.xmlns, 'jabber:client');
});

test('what is not one complete element is refused, each with its condition', () => {
  const cases: [string, string][] = [
    ['', 'bad-format'],
    ['   ', 'bad-format'],
    ['text', 'bad-format'],
    ["<a xmlns='x'/><b xmlns='x'/>", 'bad-format'],
    ["<a xmlns='x'>", 'not-well-formed'],
    ["<a xmlns='x'/></m><c/>", 'not-well-formed'],
    ['</m>', 'not-well-formed'],
    ['<p:a/>', 'not-well-formed'],
    ["<a xmlns='x'><!-- c --></a>", 'restricted-xml'],
    // An XML declaration is only allowed at the start of a document: inside the message wrapper it is not well-formed.
    ["<?xml version='1.0'?><a xmlns='x'/>", 'not-well-formed'],
    [`<a xmlns='x'>${'y'.repeat(2000)}</a>`, 'policy-violation'],
  ];
  for (const [input, condition] of cases) {
    const r = parseOneElement(input, opts);
    assert.ok('condition' in r, `accepted: ${input}`);
    assert.equal(r.condition, condition, input);
  }
});

test('the parser turns <open/> into the stream header and <close/> into its end', () => {
  const events: string[] = [];
  let header: StreamHeader | undefined;
  const p = new ElementFrameParser(
    {
      streamStart: (h) => {
        header = h;
        events.push('start');
      },
      element: (el: Element) => events.push(el.name),
      whitespace: () => undefined,
      streamEnd: () => events.push('end'),
      error: (c) => events.push(`error:${c}`),
    },
    opts,
  );
  p.write(`<open xmlns='${NS_FRAMING}' to='example.org' version='1.0' xml:lang='de'/>`);
  p.write("<presence xmlns='jabber:client'/>");
  p.write(`<close xmlns='${NS_FRAMING}'/>`);
  p.write("<presence xmlns='jabber:client'/>");
  assert.deepEqual(events, ['start', 'presence', 'end']);
  assert.deepEqual(header, { name: 'stream', uri: 'http://etherx.jabber.org/streams', contentNs: 'jabber:client', attrs: { to: 'example.org', version: '1.0', 'xml:lang': 'de' } });
});

test('one reader, many messages: each parsed as a document of its own, as a new parser would', () => {
  const reader = new ElementReader({ maxStanzaSize: 200 });
  // Every case of the test above, each after a good message on the same reader, gets the same answer.
  const good = "<message xmlns='jabber:client' to='a@b'><body>x</body></message>";
  for (let i = 0; i < 3; i++) {
    const r = reader.read(good);
    assert.ok('el' in r, `message ${i}`);
    assert.equal(r.el.toString(), '<message xmlns="jabber:client" to="a@b"><body>x</body></message>');
  }
  // A prefix declared in one message is not declared for the next (RFC 7395 §3.3.3: standalone).
  const declared = reader.read("<p:a xmlns:p='urn:x'/>");
  assert.ok('el' in declared && declared.el.xmlns === 'urn:x');
  const undeclared = reader.read('<p:a/>');
  assert.ok('condition' in undeclared && undeclared.condition === 'not-well-formed');
  // After a refused message the reader starts afresh.
  const again = reader.read(good);
  assert.ok('el' in again && again.el.name === 'message');
  // Limits count per message: 150 bytes each, many times over the 200-byte bound in all.
  const sized = `<a xmlns='x'>${'y'.repeat(130)}</a>`;
  for (let i = 0; i < 10; i++) assert.ok('el' in reader.read(sized), `sized message ${i}`);
  const big = reader.read(`<a xmlns='x'>${'y'.repeat(250)}</a>`);
  assert.ok('condition' in big && big.condition === 'policy-violation');
  // A message closing the wrapper, then a good one.
  assert.ok('condition' in reader.read('</m>'));
  assert.ok('el' in reader.read(good));
  // Text and an XML declaration as the first thing of a later message are refused as in the first.
  assert.ok('condition' in reader.read('text'));
  assert.ok('el' in reader.read(good));
  assert.ok('condition' in reader.read("<?xml version='1.0'?><a xmlns='x'/>"));
});

test('StreamParser.reset(): only after a clean end', async () => {
  const { StreamParser } = await import('../../xml/parser.js');
  const p = new StreamParser({ streamStart: () => undefined, element: () => undefined, whitespace: () => undefined, streamEnd: () => undefined, error: () => undefined }, { maxStanzaSize: 100 });
  p.write("<m><a xmlns='x'/>");
  assert.throws(() => p.reset(), /cleanly ended/);
  p.write('</m>');
  p.reset();
  p.write("<m><b xmlns='x'/></m>");
  p.reset();
});
