// Stored stanzas and payloads (offline messages, vCards) are kept as XML text;
// this reads one back with the stream parser, so stored text goes through the
// same checks as anything a client sends.
import { Element } from './element.js';
import { NS } from './namespaces.js';
import { StreamParser } from './parser.js';

/**
 * Serialises an element with its namespace declared, so the text stands alone
 * whatever stream it later appears in. An element in no namespace gets xmlns=""
 * written out too: left undeclared, it would take the default namespace of where
 * it is read (Namespaces in XML 1.0 §6.2), jabber:client in loadXml.
 */
export function storeXml(el: Element): string {
  return el.toString(el.xmlns === '' ? NS.CLIENT : '');
}

/** Parses text written by storeXml back into an element; throws on anything else. */
export function loadXml(xml: string): Element {
  let result: Element | undefined;
  let problem: string | undefined;
  const parser = new StreamParser(
    {
      streamStart: () => undefined,
      element: (el) => {
        if (result !== undefined) problem ??= 'more than one element';
        result = el;
      },
      whitespace: () => undefined,
      streamEnd: () => undefined,
      error: (condition, text) => {
        problem ??= `${condition}: ${text}`;
      },
    },
    // The text was size-checked when it was stored; the parser's limit must not refuse it now.
    // Nor its attribute limit: the text holds the namespace declarations the parser added to
    // elements whose attributes use a prefix declared further up (parser.ts, declarePrefixes),
    // which the sender never wrote, so an element may now carry more than the sender could.
    { maxStanzaSize: xml.length + 1024, maxAttributes: Infinity },
  );
  // A wrapper in the content namespace, so an element stored with xmlns='jabber:client' keeps it.
  parser.write(`<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`);
  parser.write(xml);
  parser.write('</stream:stream>');
  if (problem !== undefined) throw new Error(`stored XML is not valid: ${problem}`);
  if (result === undefined) throw new Error('stored XML holds no element');
  return result;
}
