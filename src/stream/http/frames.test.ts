// RFC 7395 §3.3.1: one message, one complete standalone element.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElementFrameParser, NS_FRAMING, parseOneElement } from './frames.js';
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
