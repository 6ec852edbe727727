// Which malformed or restricted inputs each candidate parser notices, as a
// markdown table for the README's "Why Shoal uses saxes" section. RFC 6120 §11
// needs both: well-formedness errors (not-well-formed) and events for
// comments, processing instructions and DTDs (restricted-xml).
//
// Run: node --import tsx bench/parser/strictness.ts
import { SaxesParser } from 'saxes';
import sax from 'sax';
import SaxLtx from 'ltx/src/parsers/ltx.js';

const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

const CASES: [label: string, xml: string][] = [
  ['`<a></b>`', '<a></b>'],
  ["`<a x='1' x='2'/>`", "<a x='1' x='2'/>"],
  ['`<a>&foo;</a>`', '<a>&foo;</a>'],
  ['U+0001 in text', '<a>\u0001</a>'],
  ['`<p:a/>`, prefix not declared', '<p:a/>'],
  ['`<a b=1/>`', '<a b=1/>'],
  ['`<a>x < y</a>`', '<a>x < y</a>'],
  ['`]]>` in text', '<a>]]></a>'],
  ['`<1a/>`', '<1a/>'],
  ['comment', '<!-- c --><a/>'],
  ['processing instruction', '<?pi x?><a/>'],
  ['`<!DOCTYPE a>` inside the stream', '<!DOCTYPE a><a/>'],
];

type Outcome = Set<'error' | 'event' | 'throws'>;

function describe(o: Outcome): string {
  if (o.size === 0) return 'accepted';
  return [...o].join(' and ');
}

function saxes(xml: string): Outcome {
  const o: Outcome = new Set();
  const p = new SaxesParser({ xmlns: true });
  p.on('error', () => o.add('error'));
  p.on('comment', () => o.add('event'));
  p.on('processinginstruction', () => o.add('event'));
  p.on('doctype', () => o.add('event'));
  try {
    p.write(HEADER + xml);
  } catch {
    o.add('throws');
  }
  return o;
}

function saxjs(xml: string): Outcome {
  const o: Outcome = new Set();
  const p = sax.parser(true, { xmlns: true });
  p.onerror = () => {
    o.add('error');
    p.resume();
  };
  p.oncomment = () => o.add('event');
  p.onprocessinginstruction = () => o.add('event');
  p.ondoctype = () => o.add('event');
  try {
    p.write(HEADER + xml);
  } catch {
    o.add('throws');
  }
  return o;
}

function ltx(xml: string): Outcome {
  const o: Outcome = new Set();
  const p = new SaxLtx();
  p.on('error', () => o.add('error'));
  try {
    p.write(HEADER + xml);
  } catch {
    o.add('throws');
  }
  return o;
}

console.log('| input | saxes (xmlns) | sax (strict, xmlns) | ltx tokenizer |');
console.log('| --- | --- | --- | --- |');
for (const [label, xml] of CASES) {
  console.log(`| ${label} | ${describe(saxes(xml))} | ${describe(saxjs(xml))} | ${describe(ltx(xml))} |`);
}
