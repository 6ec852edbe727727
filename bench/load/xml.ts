// A small incremental reader for an XMPP stream as a client receives it
// (RFC 6120 §4): the stream header, then one complete element tree per
// top-level child, then the stream's close tag. It is deliberately
// independent of the server under test so the load generator can drive
// any server, and it is cheap enough that the generator is not the bottleneck.
//
// It accepts what servers send (prefixed names, both quote styles, the five
// predefined entities and character references, comments, CDATA, the XML
// declaration) and does not validate namespaces: the generator only needs
// element names, attributes and text.

export interface XmlElement {
  /** Local name (prefix removed: 'stream:features' gives 'features'). */
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
}

export interface XmlStreamHandlers {
  /** The stream header (the opening <stream:stream> tag). */
  open(attrs: Record<string, string>): void;
  /** A complete first-level child of the stream. */
  element(el: XmlElement): void;
  /** </stream:stream>. */
  close(): void;
  /** Input that is not well-formed enough to go on. */
  error(message: string): void;
}

const ATTR_RE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
const ENTITY_RE = /&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g;

function decodeEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(ENTITY_RE, (_m, ref: string) => {
    switch (ref) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10));
    }
  });
}

function localName(qname: string): string {
  const colon = qname.indexOf(':');
  return colon < 0 ? qname : qname.slice(colon + 1);
}

/** Finds the '>' closing a tag that starts at `from`, skipping quoted attribute values; -1 if not yet received. */
function tagEnd(buf: string, from: number): number {
  let quote = '';
  for (let i = from; i < buf.length; i++) {
    const c = buf[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i;
  }
  return -1;
}

export class XmlStreamReader {
  private buf = '';
  /** Open elements below the stream root; stack[0] is the first-level element being built. */
  private stack: XmlElement[] = [];
  private inStream = false;
  private failed = false;
  /** Guards against a peer that never closes a tag or element. */
  private readonly maxBuffered: number;

  constructor(
    private readonly handlers: XmlStreamHandlers,
    opts: { maxBuffered?: number } = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 16 * 1024 * 1024;
  }

  /** Forgets everything (a stream restart after STARTTLS or SASL, RFC 6120 §4.3.3). */
  reset(): void {
    this.buf = '';
    this.stack = [];
    this.inStream = false;
    this.failed = false;
  }

  write(chunk: string): void {
    if (this.failed) return;
    this.buf = this.buf.length === 0 ? chunk : this.buf + chunk;
    let pos = 0;
    const buf = this.buf;
    while (pos < buf.length && !this.failed) {
      const lt = buf.indexOf('<', pos);
      // Character data is only taken once the next tag starts, so an entity reference split
      // between two chunks is decoded whole.
      if (lt < 0) break;
      if (lt > pos) this.text(buf.slice(pos, lt));
      pos = lt;
      const next = buf[lt + 1];
      if (next === undefined) break;
      if (next === '!') {
        if (buf.startsWith('<!--', lt)) {
          const end = buf.indexOf('-->', lt + 4);
          if (end < 0) break;
          pos = end + 3;
          continue;
        }
        if (buf.startsWith('<![CDATA[', lt)) {
          const end = buf.indexOf(']]>', lt + 9);
          if (end < 0) break;
          this.rawText(buf.slice(lt + 9, end));
          pos = end + 3;
          continue;
        }
        if (buf.length - lt < 9) break;
        return this.fail('unsupported markup declaration');
      }
      if (next === '?') {
        const end = buf.indexOf('?>', lt + 2);
        if (end < 0) break;
        pos = end + 2;
        continue;
      }
      const gt = tagEnd(buf, lt + 1);
      if (gt < 0) break;
      if (next === '/') this.endTag(buf.slice(lt + 2, gt).trim());
      else {
        const selfClosing = buf[gt - 1] === '/';
        this.startTag(buf.slice(lt + 1, selfClosing ? gt - 1 : gt), selfClosing);
      }
      pos = gt + 1;
    }
    this.buf = pos >= buf.length ? '' : buf.slice(pos);
    if (this.buf.length > this.maxBuffered) this.fail('unterminated markup too large');
  }

  private fail(message: string): void {
    this.failed = true;
    this.handlers.error(message);
  }

  private text(raw: string): void {
    if (this.stack.length > 0) this.rawText(decodeEntities(raw));
  }

  private rawText(s: string): void {
    const top = this.stack[this.stack.length - 1];
    if (top) top.text += s;
  }

  private startTag(inner: string, selfClosing: boolean): void {
    let nameEnd = 0;
    while (nameEnd < inner.length && !/[\s/]/.test(inner[nameEnd]!)) nameEnd++;
    const qname = inner.slice(0, nameEnd);
    const attrs: Record<string, string> = {};
    if (nameEnd < inner.length) {
      ATTR_RE.lastIndex = nameEnd;
      for (let m = ATTR_RE.exec(inner); m; m = ATTR_RE.exec(inner)) attrs[m[1]!] = decodeEntities(m[2] ?? m[3] ?? '');
    }
    if (!this.inStream) {
      // RFC 6120 §4.2: the first element is the stream header, which stays open.
      if (localName(qname) !== 'stream') return this.fail(`expected a stream header, got <${qname}>`);
      this.inStream = true;
      this.handlers.open(attrs);
      return;
    }
    const el: XmlElement = { name: localName(qname), attrs, children: [], text: '' };
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    if (selfClosing) {
      if (!parent) this.handlers.element(el);
    } else this.stack.push(el);
  }

  private endTag(qname: string): void {
    const el = this.stack.pop();
    if (el === undefined) {
      if (this.inStream && localName(qname) === 'stream') {
        this.inStream = false;
        this.handlers.close();
        return;
      }
      return this.fail(`unexpected </${qname}>`);
    }
    if (localName(qname) !== el.name) return this.fail(`</${qname}> closes <${el.name}>`);
    if (this.stack.length === 0) this.handlers.element(el);
  }
}

/** The first child with this local name (and xmlns, when given). */
export function child(el: XmlElement, name: string, xmlns?: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name && (xmlns === undefined || c.attrs.xmlns === xmlns));
}

/** Escapes text for use in XML character data or an attribute value. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
