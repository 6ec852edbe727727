import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { DEFAULT_MAX_ATTRIBUTES, DEFAULT_MAX_DEPTH, MAX_HEADER_ATTRIBUTES, MAX_HEADER_SIZE, StreamParser, internNs, sweepIdleParsers, type StreamParserOptions } from './parser.js';
import type { Element } from './element.js';
import { collected } from '../../test/support/gc.js';

const HEADER = `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;

function run(chunks: (string | Buffer)[], max = 10_000, compactEach = false) {
  const out: { elements: Element[]; errors: string[]; ws: number; ended: boolean; started: boolean } = { elements: [], errors: [], ws: 0, ended: false, started: false };
  const p = new StreamParser(
    {
      streamStart: () => (out.started = true),
      element: (el) => out.elements.push(el),
      whitespace: () => out.ws++,
      streamEnd: () => (out.ended = true),
      error: (c) => out.errors.push(c),
    },
    { maxStanzaSize: max },
  );
  for (const c of chunks) {
    p.write(c);
    if (compactEach) p.compact();
  }
  return out;
}

test('stanzas, whitespace keepalives and stream end', () => {
  const r = run([HEADER, '<message to="a@b"><body>x &amp; y</body></message>\r\n ', '<presence/></stream:stream>']);
  assert.equal(r.started, true);
  assert.deepEqual(r.elements.map((e) => e.name), ['message', 'presence']);
  assert.equal(r.elements[0]!.getChildText('body'), 'x & y');
  assert.equal(r.elements[0]!.xmlns, 'jabber:client');
  assert.equal(r.ws, 1);
  assert.equal(r.ended, true);
  assert.deepEqual(r.errors, []);
});

test('input split anywhere, including inside a UTF-8 sequence', () => {
  const whole = Buffer.from(HEADER + '<message><body>héllo 日本</body></message>');
  for (let cut = 1; cut < whole.length; cut += 7) {
    const r = run([whole.subarray(0, cut), whole.subarray(cut)]);
    assert.deepEqual(r.errors, [], `cut at ${cut}`);
    assert.equal(r.elements[0]?.getChildText('body'), 'héllo 日本', `cut at ${cut}`);
  }
});

test('prefixed elements get their resolved namespace', () => {
  const r = run([HEADER, `<iq type='get' id='1'><q:query xmlns:q='jabber:iq:roster'/></iq>`]);
  const q = r.elements[0]!.firstElement()!;
  assert.equal(q.name, 'query');
  assert.equal(q.xmlns, 'jabber:iq:roster');
});

test('restricted XML: DTD, entity declarations, comments, processing instructions', () => {
  assert.deepEqual(run([`<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a "aaaa">]>` + HEADER]).errors, ['restricted-xml']);
  assert.deepEqual(run([HEADER, '<!-- hi -->']).errors, ['restricted-xml']);
  assert.deepEqual(run([HEADER, '<?pi x?>']).errors, ['restricted-xml']);
});

test('a stanza before a comment is still delivered; a mismatched stanza never is', () => {
  const r1 = run([HEADER, '<presence/><!-- x -->']);
  assert.deepEqual(r1.elements.map((e) => e.name), ['presence']);
  const r2 = run([HEADER, '<message><body>hi</body></mesage>']);
  assert.deepEqual(r2.elements, []);
  assert.deepEqual(r2.errors, ['not-well-formed']);
});

test('not well-formed, undefined entity, bad encoding', () => {
  assert.deepEqual(run([HEADER, '<message><body>&foo;</body></message>']).errors, ['not-well-formed']);
  assert.deepEqual(run([HEADER, '<a><b></a>']).errors, ['not-well-formed']);
  assert.deepEqual(run([HEADER, Buffer.from([0x3c, 0x61, 0xff, 0xfe, 0x3e])]).errors, ['unsupported-encoding']);
  assert.deepEqual(run([`<?xml version='1.0' encoding='ISO-8859-1'?>` + HEADER]).errors, ['unsupported-encoding']);
  // saxes reports character data when the next markup starts.
  assert.deepEqual(run([HEADER, 'text between stanzas<presence/>']).errors, ['bad-format']);
});

test('size limit: a large stanza, and one that never ends, are both stopped', () => {
  const big = `<message><body>${'x'.repeat(20_000)}</body></message>`;
  assert.deepEqual(run([HEADER, big]).errors, ['policy-violation']);
  const r = run([HEADER, '<message><body>', 'y'.repeat(6000), 'y'.repeat(6000)]);
  assert.deepEqual(r.errors, ['policy-violation']);
  // Just under the limit is fine, and the count restarts for every stanza.
  const ok = `<message><body>${'z'.repeat(9000)}</body></message>`;
  assert.deepEqual(run([HEADER, ok, ok, ok]).errors, []);
});

test('size limit: stanzas that arrive together in one large chunk are each measured on their own', () => {
  // saxes' own position runs a chunk ahead between writes; the check at the end of a chunk must not use it.
  const msg = `<message><body>${'b'.repeat(9000)}</body></message>`;
  assert.deepEqual(run([HEADER + msg.repeat(3)]).errors, []);
  assert.deepEqual(run([HEADER, msg.repeat(2) + `<message><body>${'c'.repeat(8000)}`]).errors, []);
});

// --- Hardening: bounds on the header, attributes and depth; namespace-well-formed elements ---

interface Recorded {
  parser: StreamParser;
  /** Every event in order: 'start', 'element:<name>', 'ws', 'end', 'error:<condition>'. */
  events: string[];
  elements: Element[];
  errors: string[];
}

function recorder(opts: Partial<StreamParserOptions> = {}, onEvent?: (p: StreamParser, event: string) => void): Recorded {
  const r: Recorded = { parser: undefined as unknown as StreamParser, events: [], elements: [], errors: [] };
  const note = (e: string): void => {
    r.events.push(e);
    onEvent?.(r.parser, e);
  };
  r.parser = new StreamParser(
    {
      streamStart: () => note('start'),
      element: (el) => {
        r.elements.push(el);
        note(`element:${el.name}`);
      },
      whitespace: () => note('ws'),
      streamEnd: () => note('end'),
      error: (c) => {
        r.errors.push(c);
        note(`error:${c}`);
      },
    },
    { maxStanzaSize: 10_000, ...opts },
  );
  return r;
}

/**
 * Writes `head`, then `filler` over and over in chunks of about `chunk` characters, until the
 * parser reports an error or `limit` characters were written. Returns the errors and how
 * many characters had been written when the first one came.
 */
function feedUntilError(head: string, filler: string, chunk = 1024, limit = 1 << 20): { errors: string[]; written: number } {
  const r = recorder();
  const piece = filler.repeat(Math.ceil(chunk / filler.length));
  r.parser.write(head);
  let written = head.length;
  while (r.errors.length === 0 && written < limit) {
    r.parser.write(piece);
    written += piece.length;
  }
  return { errors: r.errors, written };
}

/** HEADER with more attributes. */
const headerWith = (extra: string): string => HEADER.slice(0, -1) + extra + '>';

/** A client header padded with a `pad` attribute to exactly `size` characters, XML declaration included. */
function headerOfSize(size: number): string {
  const bare = headerWith(` pad=''`);
  assert.ok(size >= bare.length);
  return headerWith(` pad='${'p'.repeat(size - bare.length)}'`);
}

/** `n` distinct attributes: ` a0='' a1='' ...`. */
function attrs(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ` a${i}=''`;
  return s;
}

test('size limit in UTF-8 bytes, at the stanza boundary (hardening 8): multi-byte text counts as bytes, not characters', () => {
  const max = 10_000;
  // A stanza of exactly `max` bytes whatever its characters: "€" is 3 bytes in UTF-8.
  const stanza = (bytes: number, ch: string): string => {
    const open = '<message><body>';
    const close = '</body></message>';
    const room = bytes - Buffer.byteLength(open + close);
    const unit = Buffer.byteLength(ch);
    return open + ch.repeat(Math.floor(room / unit)) + 'x'.repeat(room % unit) + close;
  };
  for (const ch of ['a', '€', '日', '😀']) {
    const exact = stanza(max, ch);
    assert.equal(Buffer.byteLength(exact), max);
    // Whole, and in one chunk with others after it (the boundary is the stanza's, not the chunk's).
    assert.deepEqual(run([HEADER, exact], max).errors, [], `${ch}: exactly the limit`);
    assert.deepEqual(run([HEADER + exact + '<presence/>' + exact], max).errors, [], `${ch}: several in one chunk`);
    assert.deepEqual(run([HEADER, Buffer.from(exact).subarray(0, 7000), Buffer.from(exact).subarray(7000)], max).errors, [], `${ch}: split in two reads`);
    const over = stanza(max + 1, ch);
    assert.deepEqual(run([HEADER, over], max).errors, ['policy-violation'], `${ch}: one byte over`);
  }
  // What the issue found: a third of the limit in characters of "€" is over the limit in bytes.
  const euros = `<message><body>${'€'.repeat(Math.ceil(max / 3))}</body></message>`;
  assert.ok(euros.length < max && Buffer.byteLength(euros) > max);
  assert.deepEqual(run([HEADER, euros], max).errors, ['policy-violation']);
});

describe('A: everything up to the end of the stream header is bounded (RFC 6120 §13.12)', () => {
  test('a header of exactly MAX_HEADER_SIZE characters is accepted, one character more is refused', () => {
    const exact = headerOfSize(MAX_HEADER_SIZE);
    assert.equal(exact.length, MAX_HEADER_SIZE);
    for (const chunks of [[exact], [exact.slice(0, 100), exact.slice(100, 5000), exact.slice(5000)]]) {
      const ok = recorder();
      for (const c of chunks) ok.parser.write(c);
      ok.parser.write('<presence/>');
      assert.deepEqual(ok.events, ['start', 'element:presence']);
    }
    const over = recorder();
    over.parser.write(headerOfSize(MAX_HEADER_SIZE + 1));
    assert.deepEqual(over.events, ['error:policy-violation'], 'refused before the header is reported');
  });

  test('the bound covers only the header: a large first chunk carrying stanzas after it is fine', () => {
    const r = recorder();
    r.parser.write(HEADER + `<message><body>${'b'.repeat(9000)}</body></message>`.repeat(3));
    assert.deepEqual(r.events, ['start', 'element:message', 'element:message', 'element:message']);
  });

  test('a header that never ends is refused within one chunk of crossing the bound', () => {
    for (const [what, head, filler] of [
      ['attributes', `<stream:stream to='localhost'`, " a=''"],
      ['an attribute value', `<stream:stream to='`, 'x'],
      ['the element name', '<stream', 's'],
      ['whitespace before the header', '', ' '],
      ['an unfinished XML declaration', `<?xml version='1.`, '0'],
    ] as const) {
      const { errors, written } = feedUntilError(head, filler);
      assert.deepEqual(errors, ['policy-violation'], what);
      assert.ok(written <= MAX_HEADER_SIZE + 1024, `${what}: error after ${written} characters`);
    }
  });

  test('an unterminated comment, DOCTYPE or processing instruction before the header is restricted-xml', () => {
    for (const [what, head, filler] of [
      ['comment', `<?xml version='1.0'?><!--`, 'c'],
      ['DOCTYPE', `<?xml version='1.0'?>\n<!DOCTYPE stream:stream [`, ' '],
      ['processing instruction', `<?xml version='1.0'?><?pi `, 'p'],
      ['processing instruction, no XML declaration', `<?xml-stylesheet `, 'p'],
    ] as const) {
      const { errors, written } = feedUntilError(head, filler);
      assert.deepEqual(errors, ['restricted-xml'], what);
      assert.ok(written <= MAX_HEADER_SIZE + 1024, `${what}: error after ${written} characters`);
    }
  });

  test('16 MB in the header in one write: refused after that one write', () => {
    for (const [what, text] of [
      ['attribute value', `<stream:stream to='${'x'.repeat(16 << 20)}`],
      ['element name', `<${'s'.repeat(16 << 20)}`],
    ] as const) {
      const r = recorder();
      r.parser.write(text);
      assert.deepEqual(r.events, ['error:policy-violation'], what);
    }
  });

  test(`at most MAX_HEADER_ATTRIBUTES attributes on the header`, () => {
    // to, version, xmlns, xmlns:stream: namespace declarations are attributes too.
    const base = (HEADER.slice(HEADER.indexOf('<stream:stream')).match(/ [\w:]+='/g) ?? []).length;
    assert.equal(base, 4);
    const ok = recorder();
    ok.parser.write(headerWith(attrs(MAX_HEADER_ATTRIBUTES - base)));
    assert.deepEqual(ok.events, ['start']);
    const over = recorder();
    over.parser.write(headerWith(attrs(MAX_HEADER_ATTRIBUTES - base + 1)));
    assert.deepEqual(over.events, ['error:policy-violation']);
  });

  test('at most DEFAULT_MAX_ATTRIBUTES attributes on an element of a stanza (or maxAttributes)', () => {
    const ok = recorder();
    ok.parser.write(HEADER + `<message><x${attrs(DEFAULT_MAX_ATTRIBUTES)}/></message>`);
    assert.deepEqual(ok.events, ['start', 'element:message']);
    const over = recorder();
    over.parser.write(HEADER + `<message><x${attrs(DEFAULT_MAX_ATTRIBUTES + 1)}/></message>`);
    assert.deepEqual(over.events, ['start', 'error:policy-violation']);
    const own = recorder({ maxAttributes: 2 });
    own.parser.write(HEADER + `<presence a='1' b='2'/><presence a='1' b='2' c='3'/>`);
    assert.deepEqual(own.events, ['start', 'element:presence', 'error:policy-violation']);
  });
});

/** `<a>` nested `n` deep. */
const nest = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);

describe('B: element depth is limited, and a failed parser stops at once', () => {
  test('a stanza DEFAULT_MAX_DEPTH levels deep (the stanza is level 1) is accepted; one level more is refused', () => {
    assert.equal(DEFAULT_MAX_DEPTH, 64);
    const ok = recorder();
    ok.parser.write(HEADER + `<message>${nest(DEFAULT_MAX_DEPTH - 1)}</message>`);
    assert.deepEqual(ok.events, ['start', 'element:message']);
    const over = recorder();
    over.parser.write(HEADER + `<message>${nest(DEFAULT_MAX_DEPTH)}</message>`);
    assert.deepEqual(over.events, ['start', 'error:policy-violation']);
  });

  test('maxDepth sets the limit', () => {
    const r = recorder({ maxDepth: 2 });
    r.parser.write(HEADER + '<message><body>hi</body></message><message><x><y/></x></message>');
    assert.deepEqual(r.events, ['start', 'element:message', 'error:policy-violation']);
  });

  test('100,000 nested elements in one write are refused at once, in linear time', () => {
    const r = recorder({ maxStanzaSize: 1 << 30 });
    r.parser.write(HEADER);
    const deep = '<a>'.repeat(100_000);
    const t0 = performance.now();
    r.parser.write(deep);
    const ms = performance.now() - t0;
    assert.deepEqual(r.events, ['start', 'error:policy-violation']);
    // About a millisecond; a parser that kept tokenising the chunk after failing takes seconds.
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    r.parser.write('</a>'.repeat(100_000) + '<presence/>');
    assert.deepEqual(r.events, ['start', 'error:policy-violation'], 'nothing after the error');
  });

  test('stop() from inside a handler ends the chunk at once too', () => {
    const r = recorder({ maxStanzaSize: 1 << 30 }, (p, e) => {
      if (e === 'start') p.stop();
    });
    const t0 = performance.now();
    r.parser.write(HEADER + '<message>' + '<a>'.repeat(100_000));
    const ms = performance.now() - t0;
    assert.deepEqual(r.events, ['start']);
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });

  test('after an error inside a chunk, nothing else in that chunk or later is reported', () => {
    const r = recorder();
    r.parser.write(HEADER + '<presence/><!-- c --><presence/><message/>');
    r.parser.write('<presence/>');
    assert.deepEqual(r.events, ['start', 'element:presence', 'error:restricted-xml']);
  });
});

describe('D: every element declares the prefixes its attributes use (Namespaces in XML 1.0, "Prefix Declared")', () => {
  const FOO = 'urn:example:foo';
  const BAR = 'urn:example:bar';

  /** Parses `text` as the only thing in a fresh stream whose header declares nothing but the defaults. */
  function reparse(text: string): Element {
    const r = recorder();
    r.parser.write(HEADER + text);
    assert.deepEqual(r.errors, [], text);
    assert.equal(r.elements.length, 1, text);
    return r.elements[0]!;
  }

  test('a prefix declared on the stream header, used on a stanza attribute', () => {
    const r = recorder();
    r.parser.write(headerWith(` xmlns:foo='${FOO}'`) + `<message to='b@x' foo:bar='1'><body foo:lang='y'>hi</body></message>`);
    assert.deepEqual(r.errors, []);
    const msg = r.elements[0]!;
    assert.equal(msg.attrs['foo:bar'], '1');
    assert.equal(msg.attrs['xmlns:foo'], FOO);
    assert.equal(msg.getChild('body')!.attrs['xmlns:foo'], FOO);
    const text = msg.toString('jabber:client');
    assert.match(text, new RegExp(`^<message [^>]*xmlns:foo="${FOO}"`));
    const back = reparse(text);
    assert.deepEqual(back.attrs, msg.attrs);
  });

  test('a prefix declared on a stanza, used on a grandchild cloned out and serialised alone', () => {
    const r = recorder();
    r.parser.write(HEADER + `<presence type='subscribe' xmlns:b='${BAR}'><x xmlns='urn:example:ext'><item b:role='owner'/></x></presence>`);
    assert.deepEqual(r.errors, []);
    const x = r.elements[0]!.getChild('x')!;
    // What the presence module does with the children of a subscription request.
    const copy = x.clone();
    const text = copy.toString('jabber:client');
    assert.equal(text, `<x xmlns="urn:example:ext"><item b:role="owner" xmlns:b="${BAR}"/></x>`);
    const back = reparse(text);
    assert.equal(back.getChild('item')!.attrs['b:role'], 'owner');
    assert.equal(back.getChild('item')!.attrs['xmlns:b'], BAR);
  });

  test('declarations written on the element are kept as written; xml: needs none', () => {
    const r = recorder();
    r.parser.write(headerWith(` xmlns:foo='urn:header'`) + `<message xmlns:foo='urn:own' foo:a='1' xml:lang='en'><q:query xmlns:q='jabber:iq:roster'/></message>`);
    assert.deepEqual(r.errors, []);
    const msg = r.elements[0]!;
    assert.deepEqual(msg.attrs, { 'xmlns:foo': 'urn:own', 'foo:a': '1', 'xml:lang': 'en' });
    assert.deepEqual(msg.getChild('query')!.attrs, { 'xmlns:q': 'jabber:iq:roster' });
    assert.equal(reparse(msg.toString('jabber:client')).attrs['foo:a'], '1');
  });

  test('added declarations do not count towards the attribute limit', () => {
    const r = recorder({ maxAttributes: 2 });
    r.parser.write(headerWith(` xmlns:foo='${FOO}' xmlns:bar='${BAR}'`) + `<message foo:a='1' bar:b='2'/>`);
    assert.deepEqual(r.errors, []);
    assert.equal(Object.keys(r.elements[0]!.attrs).length, 4);
  });
});

// Found by the stream parser fuzz target (fuzz/targets/stream.ts).
describe('E: the stream end is reported only for the matching close tag, and nothing after it', () => {
  test('a close tag that does not match the stream header is not-well-formed, not an end', () => {
    const r = recorder();
    r.parser.write(HEADER + '<presence/></stream:streamx>');
    assert.deepEqual(r.events, ['start', 'element:presence', 'error:not-well-formed']);
    // The fuzzer's input: the header itself misspelt, closed by a correct-looking tag.
    const misspelt = recorder();
    misspelt.parser.write(`<?xml version="1.0"?><stream:strea- xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams"><presence/></stream:stream>`);
    assert.deepEqual(misspelt.events, ['start', 'element:presence', 'error:not-well-formed']);
  });

  test('what follows the end in the same chunk is not reported (RFC 6120 §4.4: the stream is over)', () => {
    for (const after of ['<message/>', 'text', '<!-- c -->', '</x>', '  ']) {
      const r = recorder();
      r.parser.write(HEADER + '<presence/></stream:stream>' + after);
      r.parser.write('<presence/>');
      assert.deepEqual(r.events, ['start', 'element:presence', 'end'], after);
    }
  });

  test('an end split across writes is reported once it is complete', () => {
    const r = recorder();
    r.parser.write(HEADER + '<presence/></stream:str');
    assert.deepEqual(r.events, ['start', 'element:presence']);
    r.parser.write('eam>');
    assert.deepEqual(r.events, ['start', 'element:presence', 'end']);
  });

  test('stop() from the handler of the last stanza also keeps the end back', () => {
    const r = recorder({}, (p, e) => {
      if (e === 'element:presence') p.stop();
    });
    r.parser.write(HEADER + '<presence/></stream:stream>');
    assert.deepEqual(r.events, ['start', 'element:presence']);
  });
});

// Found by the stream parser fuzz target (fuzz/targets/stream.ts).
describe('F: the stream is XML 1.0 whatever the XML declaration says (RFC 6120 §11.8)', () => {
  const header11 = HEADER.replace("version='1.0'?>", "version='1.1'?>");
  test('a character reference to a C0 control is not-well-formed even after version 1.1 or 1.7', () => {
    for (const header of [header11, HEADER.replace("version='1.0'?>", "version='1.7'?>")]) {
      const r = recorder();
      r.parser.write(header + '<message to="a@b"><body>bell &#x7;</body></message>');
      assert.deepEqual(r.events, ['start', 'error:not-well-formed']);
    }
  });

  test('a 1.1 declaration is accepted, and the text is read by XML 1.0 rules', () => {
    const r = recorder();
    r.parser.write(header11 + '<message to="a@b"><body>next\u0085line\u2028sep</body></message>');
    assert.deepEqual(r.events, ['start', 'element:message']);
    // XML 1.1 §2.11 would have turned U+0085 and U+2028 into newlines.
    assert.equal(r.elements[0]!.getChildText('body'), 'next\u0085line\u2028sep');
  });
});

// Found by the stream parser fuzz target (fuzz/targets/stream.ts).
describe('G: the local part of a prefixed name is an NCName (Namespaces in XML 1.0 §4)', () => {
  test('an element or attribute whose local part starts with a digit, "-", "." or a combining mark is not-well-formed', () => {
    for (const stanza of [
      `<message><q:0uery xmlns:q='http://jabber.org/protocol/disco#info'/></message>`,
      `<message xmlns:q='urn:q'><q:-x/></message>`,
      `<message xmlns:q='urn:q'><q:\u0301x/></message>`,
      `<message xmlns:q='urn:q' q:9a='1'/>`,
      `<message xmlns:q='urn:q'><x q:.a='1'/></message>`,
      `<message xmlns:0q='urn:q'/>`,
    ]) {
      const r = recorder();
      r.parser.write(HEADER + stanza);
      assert.deepEqual(r.events, ['start', 'error:not-well-formed'], stanza);
    }
  });

  test('digits and the like after the first character are fine', () => {
    const r = recorder();
    r.parser.write(HEADER + `<message xmlns:q2='urn:q' q2:a-1.b='1'><q2:x9-y.z/></message>`);
    assert.deepEqual(r.events, ['start', 'element:message']);
    const msg = r.elements[0]!;
    assert.equal(msg.attrs['q2:a-1.b'], '1');
    assert.equal(msg.getChild('x9-y.z', 'urn:q')?.name, 'x9-y.z');
  });
});

test('no element in the xml namespace or named xmlns:* (found by fuzzing: <xml:lace/> could not be written out again)', () => {
  assert.deepEqual(run([HEADER, '<xml:lace/>']).errors, ['bad-namespace-prefix']);
  assert.deepEqual(run([HEADER, "<message><x:y xmlns:x='http://www.w3.org/XML/1998/namespace'/></message>"]).errors.length, 1);
  assert.deepEqual(run([HEADER, '<xmlns:a/>']).errors.length, 1);
  // Attributes in the xml namespace stay fine.
  assert.deepEqual(run([HEADER, "<message xml:lang='en'><body>x</body></message>"]).errors, []);
});

describe('H: an idle stream gives up its tokenizer and reads on as before', () => {
  const FOO = 'urn:example:foo';
  const header = `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:foo='${FOO}'>`;
  const euro = `<message to='a@b'><body>${'€'.repeat(3000)}</body></message>`;
  const cases: (string | Buffer)[][] = [
    [header, '<presence/>', '<message><body>hi</body></message>', '</stream:stream>'],
    [header, '<presence/>\r\n ', ' ', '<presence/>', '</stream:stream>'],
    [header, `<message foo:bar='1'><body foo:x='y'>prefix from the header</body></message>`, `<iq type='get' id='2'><q:query xmlns:q='jabber:iq:roster'/></iq>`],
    [header, '<presence/>', '</stream:streamx>'],
    [header, '<presence/>', 'text between stanzas', '<presence/>'],
    [header, '<presence/>', '</stream:stream><message/>'],
    [header, '<presence/>', '<message><body>', 'unfinished', '</body></message>'],
    [header, '<presence/>', '<!-- comment -->'],
    [header, '<presence/>', '<xml:lace/>'],
    [header, '<presence/>', `<message><body>${'x'.repeat(9900)}</body></message>`, `<message><body>${'x'.repeat(9950)}</body></message>`],
    [header, '<presence/>', `<message><body>${'x'.repeat(20_000)}</body></message>`],
    [header, `<message><body>${'x'.repeat(9900)}</body></message>`, `<message><body>${'x'.repeat(9900)}</body></message>`, `<message><body>${'x'.repeat(10_000)}</body></message>`],
    [header, '<presence/>', '<message><body>', 'y'.repeat(6000), 'y'.repeat(6000)],
    [header, euro, euro, euro],
    [Buffer.from(header + '<presence/>'), Buffer.from(euro).subarray(0, 7001), Buffer.from(euro).subarray(7001), Buffer.from('<presence/>')],
    [header, '<presence/>', '<a>'.repeat(DEFAULT_MAX_DEPTH + 1)],
    [header, '<presence/>', '</stream:str', 'eam>'],
    [header.slice(0, 40), header.slice(40), '<presence/>'],
    // Found by the fuzzer: saxes reports the whitespace only once it has read the '<' after it.
    [header, '<presence/>', ' \t', '\r\n<', "iq type='get' id='1'/>"],
  ];

  test('the same elements, errors and end with the tokenizer given up after every read', () => {
    for (const chunks of cases) {
      const plain = run(chunks);
      const compacted = run(chunks, 10_000, true);
      const what = chunks.map((c) => String(c).slice(0, 40)).join(' | ');
      assert.deepEqual(
        compacted.elements.map((e) => e.toString('jabber:client')),
        plain.elements.map((e) => e.toString('jabber:client')),
        what,
      );
      assert.deepEqual(compacted.errors, plain.errors, what);
      assert.equal(compacted.ended, plain.ended, what);
      assert.equal(compacted.started, plain.started, what);
    }
  });

  test('only between stanzas, with nothing but whitespace after the last one', () => {
    const p = recorder().parser;
    p.compact();
    assert.equal(p.compacted, false, 'not before the header');
    p.write(header.slice(0, 50));
    p.compact();
    assert.equal(p.compacted, false, 'not in the middle of the header');
    p.write(header.slice(50) + '<presence/>');
    p.compact();
    assert.equal(p.compacted, true, 'between stanzas');
    p.write('<message><body>');
    p.compact();
    assert.equal(p.compacted, false, 'not in the middle of a stanza');
    p.write('x</body></message>\n');
    p.compact();
    assert.equal(p.compacted, true, 'whitespace after the last stanza is no state');
    p.write('<pres');
    p.compact();
    assert.equal(p.compacted, false, 'not in the middle of a tag');
  });

  test('a parser with no input for a whole sweep period is compacted by the sweep', () => {
    const idle = recorder();
    const busy = recorder();
    for (const r of [idle, busy]) r.parser.write(header + '<presence/>');
    sweepIdleParsers();
    busy.parser.write('<presence/>');
    sweepIdleParsers();
    assert.equal(idle.parser.compacted, true);
    assert.equal(busy.parser.compacted, false, 'it had input in the last period');
    sweepIdleParsers();
    assert.equal(busy.parser.compacted, true);
    busy.parser.write(`<message foo:a='1'/>`);
    assert.deepEqual(busy.errors, []);
    assert.equal(busy.elements.at(-1)!.attrs['xmlns:foo'], FOO, "the header's declarations still apply");
  });
});

test('a stopped parser is not kept by the idle sweep: its connection can be collected at once', async () => {
  // The sweep's sets held every parser that had input in the last two periods, stopped or not,
  // and through its handler the closed connection, its socket and its session (2 to 4 s).
  const make = (): WeakRef<object> => {
    const handler = { streamStart() {}, element() {}, whitespace() {}, streamEnd() {}, error() {} };
    const p = new StreamParser(handler, { maxStanzaSize: 10_000 });
    p.write(HEADER + '<presence/>');
    sweepIdleParsers(); // now in the set of the period before, as well
    p.write('<presence/>');
    p.stop();
    return new WeakRef(handler);
  };
  assert.equal(await collected(make()), true);
});

test('namespace names are kept once, as copies (not slices that keep their chunk alive), within bounds', () => {
  const made = `urn:example:${'n'.repeat(20)}`;
  const a = internNs(`${made}x`.slice(0, made.length));
  assert.equal(a, made);
  assert.equal(internNs(made), a);
  const r = recorder();
  r.parser.write(HEADER + `<iq type='get' id='1'><query xmlns='${made}'/></iq><presence/>`);
  assert.equal(r.elements[0]!.firstElement()!.xmlns, made);
  assert.equal(r.elements[1]!.xmlns, 'jabber:client');
  const long = `urn:example:${'l'.repeat(300)}`;
  assert.equal(internNs(long), long, 'a name too long for the table is used as it is');
});

test('reset() leaves a parser in the state of a new one, but for its tokenizer', () => {
  const handler = { streamStart: () => undefined, element: () => undefined, whitespace: () => undefined, streamEnd: () => undefined, error: () => undefined };
  const fresh = new StreamParser(handler, { maxStanzaSize: 1000 });
  const used = new StreamParser(handler, { maxStanzaSize: 1000 });
  used.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org'>");
  used.write(Buffer.from("<message to='a@b'><body>é ünïcode</body></message> \n"));
  used.write('</stream:stream>');
  used.reset();
  // Every field of a new parser, whatever is added later, must be put back by reset(): only the
  // tokenizer is kept (it is reset by saxes itself).
  const state = (p: StreamParser): Record<string, unknown> => Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'sax'));
  assert.deepEqual(state(used), state(fresh));
  // And it parses a new document as the new one does.
  const seen: string[] = [];
  const again = new StreamParser({ ...handler, element: (el) => seen.push(el.toString()), streamStart: (h) => seen.push(h.name) }, { maxStanzaSize: 1000 });
  again.write("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><presence/></stream:stream>");
  again.reset();
  again.write("<s xmlns='jabber:client'><iq type='get' id='1'/></s>");
  assert.deepEqual(seen, ['stream', '<presence xmlns="jabber:client"/>', 's', '<iq xmlns="jabber:client" type="get" id="1"/>']);
});
