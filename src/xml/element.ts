// The element model every layer above the parser works with.
//
// Names are local names; `xmlns` is the resolved namespace URI of the element
// (RFC 6120 §4.8: stanzas live in the content namespace, extensions in their
// own). Serialisation writes an `xmlns` attribute only where the namespace
// differs from the parent's, so stanzas come out the way clients expect them.

export type Attrs = Record<string, string>;
export type Node = Element | string;

export class Element {
  readonly name: string;
  xmlns: string;
  readonly attrs: Attrs;
  readonly children: Node[];

  constructor(name: string, xmlns: string, attrs: Attrs = {}, children: Node[] = []) {
    this.name = name;
    this.xmlns = xmlns;
    this.attrs = attrs;
    this.children = children;
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** Sets (or with undefined, removes) an attribute; returns this for chaining. */
  setAttr(name: string, value: string | undefined): this {
    if (value === undefined) delete this.attrs[name];
    else this.attrs[name] = value;
    return this;
  }

  /** First child element with this local name (and namespace, when given). */
  getChild(name: string, xmlns?: string): Element | undefined {
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && (xmlns === undefined || c.xmlns === xmlns)) return c;
    }
    return undefined;
  }

  getChildren(name?: string, xmlns?: string): Element[] {
    const out: Element[] = [];
    for (const c of this.children) {
      if (typeof c === 'string') continue;
      if (name !== undefined && c.name !== name) continue;
      if (xmlns !== undefined && c.xmlns !== xmlns) continue;
      out.push(c);
    }
    return out;
  }

  /** The first child element, whatever its name: the payload of an IQ. */
  firstElement(): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string') return c;
    return undefined;
  }

  /** Concatenated character data of direct children. */
  text(): string {
    let s = '';
    for (const c of this.children) if (typeof c === 'string') s += c;
    return s;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  /** Appends a child element and returns it (builder style: el.c(...).c(...)). */
  c(name: string, attrs: Attrs = {}, xmlns?: string): Element {
    const child = new Element(name, xmlns ?? this.xmlns, attrs);
    this.children.push(child);
    return child;
  }

  append(...nodes: (Node | undefined)[]): this {
    for (const n of nodes) if (n !== undefined && n !== '') this.children.push(n);
    return this;
  }

  /** Appends character data; returns this. */
  t(text: string): this {
    if (text !== '') this.children.push(text);
    return this;
  }

  removeChildren(name: string, xmlns?: string): this {
    for (let i = this.children.length - 1; i >= 0; i--) {
      const c = this.children[i];
      if (c !== undefined && typeof c !== 'string' && c.name === name && (xmlns === undefined || c.xmlns === xmlns)) {
        this.children.splice(i, 1);
      }
    }
    return this;
  }

  /** A deep copy, so one stanza can be re-addressed per recipient. */
  clone(): Element {
    return new Element(
      this.name,
      this.xmlns,
      { ...this.attrs },
      this.children.map((c) => (typeof c === 'string' ? c : c.clone())),
    );
  }

  /** Serialises this element as it appears inside a stream whose content namespace is `parentNs`. */
  toString(parentNs = ''): string {
    let s = '<' + this.name;
    if (this.xmlns !== parentNs) s += ' xmlns="' + escapeAttr(this.xmlns) + '"';
    for (const k in this.attrs) {
      const v = this.attrs[k];
      if (v === undefined || k === 'xmlns') continue;
      s += ' ' + k + '="' + escapeAttr(v) + '"';
    }
    if (this.children.length === 0) return s + '/>';
    s += '>';
    for (const c of this.children) s += typeof c === 'string' ? escapeText(c) : c.toString(this.xmlns);
    return s + '</' + this.name + '>';
  }
}

/** Shorthand constructor: x('iq', 'jabber:client', { type: 'result' }, child...). */
export function x(name: string, xmlns: string, attrs: Record<string, string | undefined> = {}, ...children: (Node | undefined)[]): Element {
  const el = new Element(name, xmlns, {});
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) el.attrs[k] = v;
  }
  return el.append(...children);
}

// The test regexes are not global: a global regex keeps lastIndex between calls.
// Tab, newline and carriage return are written as character references where a
// parser would not read them back as they are: in attribute values it turns each
// into a space (XML 1.0 §3.3.3), in text a carriage return into a newline (§2.11).
const ATTR_TEST = /[&<>"'\t\n\r]/;
const ATTR_RE = /[&<>"'\t\n\r]/g;
const TEXT_TEST = /[&<>\r]/;
const TEXT_RE = /[&<>\r]/g;
const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

export function escapeAttr(s: string): string {
  return ATTR_TEST.test(s) ? s.replace(ATTR_RE, (c) => ENTITIES[c] ?? c) : s;
}

export function escapeText(s: string): string {
  return TEXT_TEST.test(s) ? s.replace(TEXT_RE, (c) => ENTITIES[c] ?? c) : s;
}
