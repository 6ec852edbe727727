// Fuzz target: the XML stream parser (src/xml/parser.ts) with its default limits,
// fed arbitrary bytes in arbitrary chunks, as a TCP peer can send them.
//
// Input layout (so the fuzzer also chooses how the bytes arrive):
//   byte 0, bits 0-2: n, the number of chunk-size bytes that follow (0-7)
//   byte 0, bits 3-7: k, call stop() from the handler of the k-th event (0: never)
//   bytes 1..n:       chunk sizes, used in turn (0: everything that is left)
//   the rest:         the bytes written to the parser
//
// Invariants:
//   - write() never throws (its contract: problems go to handler.error);
//   - at most one stream header, first; nothing after an error, after stop() or
//     after the stream end (RFC 6120 §4.4: the closing tag ends the stream);
//   - every error condition is one the parser defines (RFC 6120 §4.9.3);
//   - a twin parser that gives up its tokenizer after every write (compact(), what an idle
//     stream does) reports the same elements, errors and end (whitespace keepalives aside:
//     compaction drops whitespace kept back after the last element);
//   - every element is at most DEFAULT_MAX_DEPTH deep, and serialises to text that
//     parses, in a fresh stream, to an equal element: once as the server forwards it
//     to a client (toString with the content namespace) and once as it stores it
//     (storeXml/loadXml, offline messages). The parser declares the prefixes that
//     attributes use on the element itself (Namespaces in XML 1.0, "Prefix
//     Declared"), so an element must stand alone.
import { DEFAULT_MAX_DEPTH, StreamParser, type ParseErrorCondition } from '../../src/xml/parser.js';
import type { Element, Node } from '../../src/xml/element.js';
import { NS } from '../../src/xml/namespaces.js';
import { loadXml, storeXml } from '../../src/xml/stored.js';
import { check, syncTarget } from '../harness.js';

/** limits.max_stanza_bytes default (src/config/schema.ts). */
const MAX_STANZA_BYTES = 262144;

const CONDITIONS: ReadonlySet<ParseErrorCondition> = new Set([
  'bad-format',
  'not-well-formed',
  'policy-violation',
  'restricted-xml',
  'bad-namespace-prefix',
  'unsupported-encoding',
]);

const CLIENT_HEADER = `<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`;

function depth(el: Element): number {
  let max = 0;
  for (const c of el.children) if (typeof c !== 'string') max = Math.max(max, depth(c));
  return max + 1;
}

/** Where two trees differ, or undefined when they are equal (attribute order aside). */
function difference(a: Node, b: Node, path: string): string | undefined {
  if (typeof a === 'string' || typeof b === 'string') {
    return a === b ? undefined : `${path}: text ${JSON.stringify(a)} became ${JSON.stringify(b)}`;
  }
  const here = `${path}/${a.name}`;
  if (a.name !== b.name) return `${here}: name became ${JSON.stringify(b.name)}`;
  if (a.xmlns !== b.xmlns) return `${here}: namespace ${JSON.stringify(a.xmlns)} became ${JSON.stringify(b.xmlns)}`;
  const ak = Object.keys(a.attrs).sort();
  const bk = Object.keys(b.attrs).sort();
  if (ak.join('\0') !== bk.join('\0')) return `${here}: attributes ${JSON.stringify(ak)} became ${JSON.stringify(bk)}`;
  for (const k of ak) {
    if (a.attrs[k] !== b.attrs[k]) return `${here}: @${k} ${JSON.stringify(a.attrs[k])} became ${JSON.stringify(b.attrs[k])}`;
  }
  if (a.children.length !== b.children.length) return `${here}: ${a.children.length} children became ${b.children.length}`;
  for (let i = 0; i < a.children.length; i++) {
    const d = difference(a.children[i]!, b.children[i]!, `${here}[${i}]`);
    if (d !== undefined) return d;
  }
  return undefined;
}

/** Parses `xml` as the only element of a fresh client stream, the way a receiving client would. */
function reparse(xml: string): Element {
  const elements: Element[] = [];
  const errors: string[] = [];
  const p = new StreamParser(
    {
      streamStart: () => undefined,
      element: (el) => elements.push(el),
      whitespace: () => undefined,
      streamEnd: () => undefined,
      error: (condition, text) => errors.push(`${condition}: ${text}`),
    },
    // As loadXml: the text holds the declarations the parser added, so no attribute limit.
    { maxStanzaSize: xml.length + 1024, maxAttributes: Infinity },
  );
  p.write(CLIENT_HEADER);
  p.write(xml);
  check(errors.length === 0, `serialised element does not parse: ${errors[0]}\n${xml}`);
  check(elements.length === 1, `serialised element parses to ${elements.length} elements\n${xml}`);
  return elements[0]!;
}

function checkElement(el: Element): void {
  const d = depth(el);
  check(d <= DEFAULT_MAX_DEPTH, `element ${d} levels deep`);
  // As the server sends it to a client whose stream has jabber:client as content namespace.
  const forwarded = el.toString(NS.CLIENT);
  const diff1 = difference(el, reparse(forwarded), '');
  check(diff1 === undefined, `forwarding changes the element: ${diff1}\n${forwarded}`);
  // As offline storage keeps it (src/xml/stored.ts).
  const stored = storeXml(el);
  let loaded: Element;
  try {
    loaded = loadXml(stored);
  } catch (e) {
    throw new Error(`stored element does not load: ${(e as Error).message}\n${stored}`, { cause: e });
  }
  const diff2 = difference(el, loaded, '');
  check(diff2 === undefined, `storing changes the element: ${diff2}\n${stored}`);
}

export const fuzz = syncTarget((data) => {
  const control = data[0] ?? 0;
  const nSizes = control & 7;
  const stopAt = control >> 3;
  const sizes = [...data.subarray(1, 1 + nSizes)];
  const input = data.subarray(1 + nSizes);

  /** Broken invariants, collected: the parser turns an exception in a handler into an error event. */
  const problems: string[] = [];
  const elements: Element[] = [];
  let events = 0;
  let started = false;
  let failed = false;
  let stopped = false;
  let ended = false;
  let parser: StreamParser | undefined = undefined;
  /** What the parser reported (whitespace aside), and the same from the compacting twin. */
  const seen: string[] = [];
  const twinSeen: string[] = [];
  const twin =
    stopAt === 0
      ? new StreamParser(
          {
            streamStart: () => twinSeen.push('start'),
            element: (el) => twinSeen.push(el.toString(NS.CLIENT)),
            whitespace: () => undefined,
            streamEnd: () => twinSeen.push('end'),
            error: (condition) => twinSeen.push(`error:${condition}`),
          },
          { maxStanzaSize: MAX_STANZA_BYTES },
        )
      : undefined;

  const event = (kind: string): void => {
    if (failed) problems.push(`${kind} after an error`);
    if (stopped) problems.push(`${kind} after stop()`);
    if (ended) problems.push(`${kind} after the stream end`);
    if (kind !== 'error' && kind !== 'start' && !started) problems.push(`${kind} before the stream header`);
    events++;
    if (events === stopAt) {
      stopped = true;
      parser!.stop();
    }
  };

  parser = new StreamParser(
    {
      streamStart: (header) => {
        if (started) problems.push('a second stream header');
        seen.push('start');
        event('start');
        started = true;
        if (typeof header.name !== 'string' || typeof header.uri !== 'string' || typeof header.contentNs !== 'string') {
          problems.push('header fields are not strings');
        }
      },
      element: (el) => {
        seen.push(el.toString(NS.CLIENT));
        event('element');
        elements.push(el);
      },
      whitespace: () => event('whitespace'),
      streamEnd: () => {
        seen.push('end');
        event('end');
        ended = true;
      },
      error: (condition) => {
        seen.push(`error:${condition}`);
        event('error');
        failed = true;
        if (!CONDITIONS.has(condition)) problems.push(`unknown error condition ${String(condition)}`);
      },
    },
    { maxStanzaSize: MAX_STANZA_BYTES },
  );

  let offset = 0;
  let turn = 0;
  while (offset < input.length) {
    const size = sizes.length === 0 ? 0 : sizes[turn++ % sizes.length]!;
    const end = size === 0 ? input.length : Math.min(input.length, offset + size);
    try {
      parser.write(input.subarray(offset, end));
    } catch (e) {
      throw new Error(`write() threw: ${(e as Error).stack ?? String(e)}`, { cause: e });
    }
    if (twin) {
      twin.write(input.subarray(offset, end));
      twin.compact();
    }
    offset = end;
    check(problems.length === 0, problems.join('; '));
  }
  if (twin) {
    const at = seen.findIndex((s, i) => s !== twinSeen[i]);
    check(
      at < 0 && seen.length === twinSeen.length,
      `compacting after every write changes what is reported at event ${at < 0 ? seen.length : at}: ${JSON.stringify(seen[at])} became ${JSON.stringify(twinSeen[at])}`,
    );
  }
  for (const el of elements) checkElement(el);
});
