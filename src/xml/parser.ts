// Incremental parser for one XML stream (RFC 6120 §4): emits the stream header,
// then one Element per top-level child (stanza or nonza), then the stream end.
//
// Tokenising is done by saxes (a strict, namespace-aware, well-formedness
// checking SAX parser); this file only builds elements and enforces what
// RFC 6120 §11 restricts: no DTD, comments, processing instructions or entity
// declarations ('restricted-xml'), and the limits that keep one peer from
// making the server buffer or work without bound (RFC 6120 §13.12): the size
// of everything up to the end of the stream header, the size and depth of a
// stanza, and the number of attributes on an element ('policy-violation',
// RFC 6120 §4.9.3.14). It also makes every element it builds declare the
// prefixes its attributes use, so that each stands alone wherever it goes.
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { Element, escapeAttr } from './element.js';
import { NS } from './namespaces.js';
import { Utf8Stream } from './utf8.js';

/**
 * The stream error conditions (RFC 6120 §4.9.3) the parser itself can detect; the
 * stream layer sends them as stream errors. Kept here so that xml/ depends on nothing above it.
 */
export type ParseErrorCondition = 'bad-format' | 'bad-namespace-prefix' | 'internal-server-error' | 'not-well-formed' | 'policy-violation' | 'restricted-xml' | 'unsupported-encoding';

/**
 * Most characters of input (XML declaration and anything else before the header
 * included) up to and including the '>' of the stream header's start tag. Every
 * new parser, so every stream restart, starts counting again. A real header is a
 * few hundred characters; without this bound saxes buffers a header that never
 * ends (or a comment, DTD or PI before it) for as long as the peer sends it.
 */
export const MAX_HEADER_SIZE = 8192;
/** Most attributes on the stream header, namespace declarations included (a client sends five or six). */
export const MAX_HEADER_ATTRIBUTES = 32;
/** Deepest nesting in a stanza: the stanza element itself is level 1. */
export const DEFAULT_MAX_DEPTH = 64;
/** Most attributes, namespace declarations included, written on one element of a stanza. */
export const DEFAULT_MAX_ATTRIBUTES = 128;

export interface StreamHeader {
  /** Local name of the root element (must be 'stream'). */
  name: string;
  /** Namespace of the root element (must be the streams namespace). */
  uri: string;
  /** Default namespace declared on the header: the content namespace (jabber:client). */
  contentNs: string;
  /** Attributes other than namespace declarations (to, from, version, xml:lang, id). */
  attrs: Record<string, string>;
}

export interface StreamParserHandler {
  streamStart(header: StreamHeader): void;
  element(el: Element): void;
  /** Whitespace between top-level elements: a keepalive (RFC 6120 §4.6.1). */
  whitespace(): void;
  streamEnd(): void;
  error(condition: ParseErrorCondition, text: string): void;
}

export interface StreamParserOptions {
  /** Largest top-level element, in UTF-8 bytes of the input as received (limits.max_stanza_bytes). */
  maxStanzaSize: number;
  /** Deepest element nesting in a stanza, the stanza itself being level 1 (default DEFAULT_MAX_DEPTH). */
  maxDepth?: number;
  /** Most attributes written on one element of a stanza (default DEFAULT_MAX_ATTRIBUTES). */
  maxAttributes?: number;
}

const WS_ONLY = /^[ \t\r\n]*$/;
const LEADING_WS = /^[ \t\r\n]+/;
/** The start of an XML declaration (XML 1.0 §2.8), as opposed to a PI whose target merely begins with "xml". */
const XML_DECL_START = /^<\?xml[ \t\r\n?]/;
/**
 * Whether `local` starts with what may continue a name but not start one (XML 1.0 §2.3:
 * NameChar minus NameStartChar). The local part of a prefixed name is an NCName
 * (Namespaces in XML 1.0 §4), so it cannot; saxes checks only the first character of the
 * whole name, and `<q:0uery xmlns:q='…'/>` was forwarded as `<0uery/>`, which no parser reads.
 */
function startsBadly(local: string): boolean {
  const c = local.charCodeAt(0);
  return c === 0x2d || c === 0x2e || (c >= 0x30 && c <= 0x39) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040;
}

/**
 * Thrown from inside saxes' callbacks to stop it in the middle of a chunk once the
 * parser has failed (or was stopped): saxes has no way to abort a write, and letting
 * it tokenise the rest of a chunk that may be 64 KB of nested tags costs time
 * quadratic in their depth. saxes catches nothing, so this reaches write(), which
 * swallows it; it never escapes the parser.
 */
const ABORT = new Error('StreamParser: aborted');

/** What a tag saxes is done with keeps instead of its attributes (saxes reads them only before `opentag`). */
const NO_ATTRIBUTES: Record<string, SaxesAttributeNS> = Object.freeze(Object.create(null) as Record<string, SaxesAttributeNS>);

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
/** XML 1.0 §2.3 S: space, tab, carriage return, line feed. */
const isWhitespace = (code: number): boolean => code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a;

/**
 * Namespace names, each kept once. What saxes hands over is a slice of the chunk it was read
 * from, and V8 keeps the whole chunk alive for as long as the slice lives: the default namespace
 * of every element comes from the stream header, so each session's stored presence kept its
 * header's text (and a stanza's own declarations, that stanza's chunk). A namespace seen for
 * the first time is copied out; there are few of them, so the table is bounded rather than
 * evicting (past the bound, and for names too long to be real ones, they are used as they
 * come): a peer inventing namespaces can make it hold at most MAX_NAMESPACES × MAX_INTERNED.
 */
const namespaces = new Map<string, string>(Object.values(NS).map((n) => [n, n]));
const MAX_NAMESPACES = 4096;
const MAX_INTERNED = 256;

export function internNs(uri: string): string {
  const known = namespaces.get(uri);
  if (known !== undefined) return known;
  if (namespaces.size >= MAX_NAMESPACES || uri.length > MAX_INTERNED) return uri;
  const copy = copied(uri);
  namespaces.set(copy, copy);
  return copy;
}

/** A string of its own, not a slice that keeps the text it was cut from alive. */
function copied(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

type Saxes = SaxesParser<{ xmlns: true; position: true; forceXMLVersion: true; defaultXMLVersion: '1.0' }>;

/**
 * How often idle parsers are looked for (ms). A parser that was given no input for a whole
 * period (between one and two of them) gives up its tokenizer until its next input.
 */
export const IDLE_SWEEP_MS = 2_000;

/** Parsers written to since the last sweep, and those written to in the period before it. */
let touched = new Set<StreamParser>();
let resting = new Set<StreamParser>();
let sweeper: NodeJS.Timeout | undefined;

/**
 * Most streams are idle most of the time, and an idle stream's saxes parser (its state, tables,
 * namespace records and handler closures, ~3 KiB) is the largest thing a connection holds in
 * the heap. Every parser that received input in one period and none in the next is compacted
 * (see StreamParser.compact). Exported for tests, which call it instead of waiting.
 */
export function sweepIdleParsers(): void {
  for (const p of resting) if (!touched.has(p)) p.compact();
  resting = touched;
  touched = new Set();
  if (resting.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function touch(p: StreamParser): void {
  touched.add(p);
  if (sweeper === undefined) {
    // A process-wide timer, started only while some stream has had input lately; it never
    // keeps the process alive.
    sweeper = setInterval(sweepIdleParsers, IDLE_SWEEP_MS);
    sweeper.unref();
  }
}

export class StreamParser {
  /** The tokenizer; undefined while the stream is idle between stanzas (compact()), made again on the next input. */
  private sax: Saxes | undefined;
  /**
   * The stream header's namespace declarations (prefix to URI, '' for the default) and name:
   * what a tokenizer made again for the rest of the stream is primed with, so that it resolves
   * every name exactly as the first one did.
   */
  private headerNs: Record<string, string> | undefined;
  private headerName = '';
  /** Characters of whitespace at the end of what was fed, after the last complete element. */
  private trailingWs = 0;
  /**
   * Byte offset just after the stream header's start tag or the last complete top-level element.
   * Unlike `mark`, character data does not move it (saxes reports text only once it has read
   * the '<' after it, which is then the start of a tag it holds).
   */
  private boundary = 0;
  private decoder = new Utf8Stream();
  private readonly maxDepth: number;
  private readonly maxAttributes: number;
  private stack: Element[] = [];
  private depth = 0;
  /** Characters handed to saxes so far: between writes, saxes' own `position` counts the last chunk twice. */
  private fed = 0;
  /** UTF-8 bytes handed to saxes so far: limits are in bytes (RFC 6120 §13.12), positions in characters. */
  private fedBytes = 0;
  /** The chunk being tokenised, and where it starts in characters and bytes. */
  private chunk = '';
  private chunkChar = 0;
  private chunkByte = 0;
  private chunkAscii = true;
  /** A position inside the chunk already converted to bytes (positions only grow during a chunk). */
  private lastChar = 0;
  private lastByte = 0;
  /** Byte offset where the current top-level element (or inter-stanza gap) began. */
  private mark = 0;
  /** Until the header's start tag is complete: everything received, at most MAX_HEADER_SIZE characters. */
  private preHeader: string | undefined = '';
  /** Where the XML declaration ended, if there was one: what is unfinished at the header bound starts here. */
  private afterDecl = 0;
  private failed = false;
  private ended = false;
  /**
   * A completed top-level element not yet handed over: saxes reports a mismatched
   * close tag only after calling the close handler, so delivery waits for the next
   * event (or the end of the chunk) and a failure in between drops it.
   */
  private pending: Element | undefined;
  /**
   * The close tag of the stream header was seen at this saxes position, not yet
   * reported: like a stanza's, a mismatched one is reported (by saxes, at once)
   * only after the close handler ran, and then it is an error, not an end.
   */
  private endAt: number | undefined;

  constructor(
    private readonly handler: StreamParserHandler,
    private readonly opts: StreamParserOptions,
  ) {
    this.maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxAttributes = opts.maxAttributes ?? DEFAULT_MAX_ATTRIBUTES;
    this.sax = this.newSax();
  }

  /** A tokenizer; `primer` (a stream header's start tag) is fed to it before any handler is set. */
  private newSax(primer?: string): Saxes {
    // XMPP is an application of XML 1.0 (RFC 6120 §11.8). saxes would switch to XML 1.1
    // rules for a peer whose XML declaration says version='1.1' (or any 1.x), and so pass
    // on character references to C0 controls, which every XML 1.0 parser refuses: one
    // such message would break the stream of each client it is delivered to.
    const sax = new SaxesParser({ xmlns: true, position: true, forceXMLVersion: true, defaultXMLVersion: '1.0' });
    // saxes stores each handler under a computed property name; after the 7th `on()`
    // V8 turns the parser object into a slow dictionary and its inner loop runs ~4x
    // slower (bench/parser). Creating the slots first keeps the object's shape fast.
    // `undefined` means "no handler" to saxes, so behaviour is unchanged.
    const slots = sax as unknown as Record<string, unknown>;
    slots.openTagHandler = slots.closeTagHandler = slots.textHandler = slots.cdataHandler = slots.doctypeHandler =
      slots.commentHandler = slots.piHandler = slots.xmldeclHandler = slots.errorHandler = undefined;
    if (primer !== undefined) sax.write(primer);
    sax.on('opentag', (tag) => this.onOpen(tag));
    sax.on('closetag', (tag) => this.onClose(tag));
    sax.on('text', (t) => this.onText(t));
    sax.on('cdata', (t) => this.onText(t));
    // RFC 6120 §11.1: these MUST NOT appear in a stream.
    // A stanza completed before one of these is well-formed and is still delivered.
    sax.on('doctype', () => this.restricted('DTDs are not allowed'));
    sax.on('comment', () => this.restricted('comments are not allowed'));
    sax.on('processinginstruction', () => this.restricted('processing instructions are not allowed'));
    sax.on('xmldecl', (decl) => {
      this.enter();
      this.afterDecl = sax.position;
      // RFC 6120 §11.6: UTF-8 only.
      if (decl.encoding !== undefined && decl.encoding.toUpperCase() !== 'UTF-8') {
        this.halt('unsupported-encoding', 'only UTF-8 is supported');
      }
    });
    sax.on('error', (err) => {
      // reset() closing a finished document: anything amiss there means this tokenizer is not reused.
      if (this.resetting) throw ABORT;
      // Past a matching close tag of the stream the document is over (RFC 6120 §4.4):
      // whatever follows in the same chunk is neither an error nor anything else.
      if (this.endAt !== undefined && this.endAt !== sax.position) {
        this.flush();
        throw ABORT;
      }
      this.halt('not-well-formed', err.message.split('\n')[0] ?? 'not well-formed');
    });
    return sax;
  }

  /**
   * Gives up the tokenizer while the stream is idle: only between top-level elements, with
   * nothing but whitespace fed after the last one, so that the tokenizer holds no state of
   * its own besides the open stream header. The next input makes a new one, primed with the
   * header's start tag (its name and namespace declarations, without its other attributes,
   * which were read already). Whitespace kept back is dropped: it was only a keepalive, and
   * the connection counted the activity when it arrived.
   */
  compact(): void {
    if (this.sax === undefined) return;
    if (this.failed || this.ended) {
      this.sax = undefined;
      return;
    }
    if (this.preHeader !== undefined || this.depth !== 1 || this.stack.length > 0 || this.pending !== undefined || this.endAt !== undefined) return;
    if (this.fedBytes - this.trailingWs !== this.boundary) return;
    this.sax = undefined;
  }

  /** Set while reset() closes the tokenizer. */
  private resetting = false;

  /**
   * Makes the parser ready for a new document, as a new one would be. Only after a clean end
   * (the root closed, nothing failed), when the tokenizer is reused: closing a complete document
   * resets saxes to its initial state, handlers kept, which costs far less than making a new
   * one. For framings that parse every message as a document of its own (RFC 7395, XEP-0206:
   * stream/http/frames.ts). A tokenizer that reports anything while closing is replaced.
   */
  reset(): void {
    if (!this.ended || this.failed) throw new Error('StreamParser.reset() needs a cleanly ended document');
    let sax = this.sax;
    if (sax !== undefined) {
      this.resetting = true;
      try {
        sax.close();
      } catch {
        sax = undefined;
      } finally {
        this.resetting = false;
      }
    }
    this.headerNs = undefined;
    this.headerName = '';
    this.trailingWs = 0;
    this.boundary = 0;
    this.decoder = new Utf8Stream();
    this.stack = [];
    this.depth = 0;
    this.fed = 0;
    this.fedBytes = 0;
    this.chunk = '';
    this.chunkChar = this.chunkByte = this.lastChar = this.lastByte = 0;
    this.chunkAscii = true;
    this.mark = 0;
    this.preHeader = '';
    this.afterDecl = 0;
    this.failed = false;
    this.ended = false;
    this.pending = undefined;
    this.endAt = undefined;
    this.sax = sax ?? this.newSax();
  }

  /** Whether the tokenizer was given up (compact()), for tests. */
  get compacted(): boolean {
    return this.sax === undefined;
  }

  /** A tokenizer for the rest of the stream, in the state the last one was in when compacted. */
  private revive(): Saxes {
    let primer = `<${this.headerName}`;
    const ns = this.headerNs ?? {};
    for (const prefix in ns) primer += `${prefix === '' ? ' xmlns' : ` xmlns:${prefix}`}='${escapeAttr(ns[prefix]!)}'`;
    primer += '>';
    const sax = this.newSax(primer);
    // Positions and sizes continue from the primer (they are only ever compared with each other).
    this.fed = primer.length;
    this.fedBytes = this.mark = this.boundary = Buffer.byteLength(primer, 'utf8');
    this.trailingWs = 0;
    this.sax = sax;
    return sax;
  }

  /** Feeds raw bytes from the transport. Never throws; problems go to handler.error. */
  write(data: Buffer | string): void {
    if (this.failed || this.ended) return;
    touch(this);
    let text: string;
    if (typeof data === 'string') text = data;
    else {
      const decoded = this.decoder.decode(data);
      if (decoded === null) {
        this.fail('unsupported-encoding', 'input is not valid UTF-8');
        return;
      }
      text = decoded;
    }
    if (this.preHeader !== undefined) {
      // Until the header's start tag is complete, saxes gets at most MAX_HEADER_SIZE
      // characters in all, so it cannot buffer more; the rest of the chunk follows once
      // the header was in what it got.
      let room = MAX_HEADER_SIZE - this.preHeader.length;
      // Never between the two halves of a surrogate pair: each piece is measured in UTF-8 on its own.
      if (room > 0 && room < text.length && isHighSurrogate(text.charCodeAt(room - 1))) room--;
      const head = text.length > room ? text.slice(0, room) : text;
      text = text.length > room ? text.slice(room) : '';
      this.preHeader += head;
      this.feed(head);
      if (this.failed || this.ended) return;
      if (this.preHeader !== undefined) {
        // Input is left that the bound kept from saxes (one unit short of it, before a surrogate pair, at worst).
        if (this.preHeader.length >= MAX_HEADER_SIZE || text !== '') this.headerTooLarge(this.preHeader);
        return;
      }
    }
    if (text !== '') this.feed(text);
  }

  /**
   * Stops delivering events (after a stream error, a restart, or close). Called from a
   * handler during a write, the rest of that chunk is not even tokenised.
   */
  stop(): void {
    this.failed = true;
    this.sax = undefined;
    // A stopped parser needs no sweep, and the sweep's sets must not keep it: through its
    // handler it would keep a closed connection, its socket and its session alive for up to
    // two periods, long enough to be promoted and cost a mark-compact its marking.
    touched.delete(this);
    resting.delete(this);
  }

  private feed(text: string): void {
    const sax = this.sax ?? this.revive();
    const bytes = Buffer.byteLength(text, 'utf8');
    this.chunk = text;
    this.chunkChar = this.lastChar = this.fed;
    this.chunkByte = this.lastByte = this.fedBytes;
    this.chunkAscii = bytes === text.length;
    this.fed += text.length;
    this.fedBytes += bytes;
    let ws = 0;
    while (ws < text.length && isWhitespace(text.charCodeAt(text.length - 1 - ws))) ws++;
    this.trailingWs = ws === text.length ? this.trailingWs + ws : ws;
    try {
      sax.write(text);
    } catch (err) {
      // saxes reports bad XML through its error handler (which aborts); anything else thrown here
      // came from a handler of ours: a bug of the server, not of the peer's XML.
      if (err !== ABORT) this.fail('internal-server-error', `${(err as Error).name}: ${(err as Error).message}`);
      return;
    } finally {
      // Not kept between chunks: an idle stream would hold its last one for as long as it lives.
      this.chunk = '';
    }
    this.flush();
    // Checked after the chunk as well as per event, so a stanza that never closes
    // (or one huge text node, which saxes buffers until the next '<') is still bounded.
    if (!this.failed && this.depth >= 1 && this.fedBytes - this.mark > this.opts.maxStanzaSize) {
      this.fail('policy-violation', `stanza larger than ${this.opts.maxStanzaSize} bytes`);
    }
  }

  /**
   * The byte offset of saxes' current position (inside the chunk being tokenised), counted
   * incrementally so that a chunk of many stanzas costs its length once, not once per stanza.
   */
  private bytePosition(): number {
    const p = this.sax!.position;
    if (this.chunkAscii) return this.chunkByte + (p - this.chunkChar);
    if (p > this.lastChar) {
      this.lastByte += Buffer.byteLength(this.chunk.slice(this.lastChar - this.chunkChar, p - this.chunkChar), 'utf8');
      this.lastChar = p;
    }
    return this.lastByte;
  }

  /**
   * MAX_HEADER_SIZE characters and no complete header. Every complete comment, DTD
   * or PI has ended the stream already, so what is unfinished starts after the XML
   * declaration; when it is one of those, that is the error (RFC 6120 §11.1).
   */
  private headerTooLarge(received: string): void {
    const rest = received.slice(this.afterDecl).replace(LEADING_WS, '');
    if (rest.startsWith('<!--')) this.fail('restricted-xml', 'comments are not allowed');
    else if (rest.startsWith('<!DOCTYPE')) this.fail('restricted-xml', 'DTDs are not allowed');
    else if (rest.startsWith('<?') && !XML_DECL_START.test(rest)) this.fail('restricted-xml', 'processing instructions are not allowed');
    else this.fail('policy-violation', `no stream header within ${MAX_HEADER_SIZE} characters`);
  }

  private restricted(text: string): void {
    this.enter();
    this.halt('restricted-xml', text);
  }

  private flush(): void {
    if (this.failed) return;
    const el = this.pending;
    if (el !== undefined) {
      this.pending = undefined;
      this.handler.element(el);
    }
    if (this.endAt !== undefined && !this.failed) {
      this.endAt = undefined;
      this.ended = true;
      this.handler.streamEnd();
    }
  }

  private fail(condition: ParseErrorCondition, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.pending = undefined;
    this.endAt = undefined;
    this.handler.error(condition, text);
  }

  /** fail(), from inside a saxes callback: saxes stops at once. */
  private halt(condition: ParseErrorCondition, text: string): never {
    this.fail(condition, text);
    throw ABORT;
  }

  /**
   * Starts every saxes callback: hands over a pending element or stream end, and stops
   * saxes when the parser has failed, was stopped (possibly by a handler, during this
   * chunk) or the stream has ended.
   */
  private enter(): void {
    if (this.pending !== undefined || this.endAt !== undefined) this.flush();
    if (this.failed || this.ended) throw ABORT;
  }

  private onOpen(tag: SaxesTagNS): void {
    this.enter();
    if (this.depth === 0) {
      const attrs: Record<string, string> = {};
      let contentNs = '';
      let count = 0;
      for (const k in tag.attributes) {
        const a = tag.attributes[k]!;
        count++;
        if (a.name === 'xmlns') contentNs = a.value;
        else if (a.prefix !== 'xmlns') attrs[a.name] = a.value;
      }
      if (count > MAX_HEADER_ATTRIBUTES) this.halt('policy-violation', `more than ${MAX_HEADER_ATTRIBUTES} attributes on the stream header`);
      // saxes keeps the header's tag on its stack for the life of the stream (for its name and
      // namespace declarations) but never reads its attributes again: copied, they can go.
      tag.attributes = NO_ATTRIBUTES;
      // Kept for the life of the stream (revive()): copies, not slices of the header's chunk.
      this.headerName = tag.name === 'stream:stream' ? 'stream:stream' : copied(tag.name);
      const ns = tag.ns;
      if (ns !== undefined) for (const prefix in ns) ns[prefix] = internNs(ns[prefix]!);
      this.headerNs = ns;
      this.preHeader = undefined;
      this.depth = 1;
      this.mark = this.boundary = this.bytePosition();
      this.handler.streamStart({ name: tag.local, uri: tag.uri, contentNs, attrs });
      return;
    }
    // Also what keeps parsing linear: saxes resolves every name by walking the whole
    // stack of open elements, so unbounded depth costs time quadratic in it.
    if (this.stack.length >= this.maxDepth) this.halt('policy-violation', `elements nested deeper than ${this.maxDepth} levels`);
    // RFC 6120 §11.3: what is not namespace-well-formed is not-well-formed.
    if (tag.prefix !== '' && startsBadly(tag.local)) this.halt('not-well-formed', `malformed name: ${tag.name}`);
    // Namespaces in XML 1.0 §3: no element is named xmlns:*, and the xml namespace is never a
    // default one, so an element in it could not be written out again with xmlns='…' (found by
    // fuzzing: <xml:lace/> went out as a stanza nobody could parse).
    if (tag.prefix === 'xmlns') this.halt('not-well-formed', `malformed name: ${tag.name}`);
    if (tag.prefix === 'xml' || tag.uri === NS.XML) this.halt('bad-namespace-prefix', `no elements in the xml namespace: ${tag.name}`);
    const attrs: Record<string, string> = {};
    let count = 0;
    let prefixed: SaxesAttributeNS[] | undefined;
    for (const k in tag.attributes) {
      const a = tag.attributes[k]!;
      count++;
      if (a.name === 'xmlns') continue;
      attrs[a.name] = a.value;
      const p = a.prefix;
      if (p === '') continue;
      if (startsBadly(a.local)) this.halt('not-well-formed', `malformed name: ${a.name}`);
      if (p !== 'xml' && p !== 'xmlns') (prefixed ??= []).push(a);
    }
    if (count > this.maxAttributes) this.halt('policy-violation', `more than ${this.maxAttributes} attributes on an element`);
    if (prefixed !== undefined) declarePrefixes(attrs, prefixed);
    const el = new Element(tag.local, internNs(tag.uri), attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.children.push(el);
    this.stack.push(el);
    this.depth++;
    if (this.bytePosition() - this.mark > this.opts.maxStanzaSize) {
      this.halt('policy-violation', `stanza larger than ${this.opts.maxStanzaSize} bytes`);
    }
  }

  private onClose(tag: SaxesTagNS): void {
    this.enter();
    this.depth--;
    if (this.depth === 0) {
      this.endAt = this.sax!.position;
      return;
    }
    const el = this.stack.pop()!;
    if (this.stack.length === 0) {
      // saxes holds the last closed tag until the next one opens (on an idle stream, for good).
      tag.attributes = NO_ATTRIBUTES;
      const end = this.bytePosition();
      if (end - this.mark > this.opts.maxStanzaSize) {
        this.halt('policy-violation', `stanza larger than ${this.opts.maxStanzaSize} bytes`);
      }
      this.mark = this.boundary = end;
      this.pending = el;
    }
  }

  private onText(text: string): void {
    this.enter();
    const parent = this.stack[this.stack.length - 1];
    if (parent) {
      const last = parent.children.length - 1;
      if (last >= 0 && typeof parent.children[last] === 'string') parent.children[last] += text;
      else parent.children.push(text);
      return;
    }
    if (this.depth === 1) {
      this.mark = this.bytePosition();
      // RFC 6120 §4.6.1 whitespace keepalive; other character data at stream level is not allowed.
      if (WS_ONLY.test(text)) this.handler.whitespace();
      else this.halt('bad-format', 'character data between stanzas');
    }
  }
}

/**
 * Namespaces in XML 1.0, constraint "Prefix Declared": a prefix must be declared on the
 * element that uses it or on an ancestor. An element must stand alone when it is
 * forwarded, stored, or copied out of its parent (the presence module copies the children
 * of a subscription request into a new stanza), but a prefix its attributes use may have
 * been declared on an ancestor or on the sender's stream header, neither of which goes
 * with it. So the element gets the declaration itself, unless it already has one, which
 * is then the one saxes resolved the prefix with. `xml:` is bound by definition (same
 * constraint), and element names need nothing: elements are serialised with a default
 * namespace (element.ts).
 */
function declarePrefixes(attrs: Record<string, string>, prefixed: SaxesAttributeNS[]): void {
  for (const a of prefixed) {
    const decl = `xmlns:${a.prefix}`;
    if (attrs[decl] === undefined) attrs[decl] = a.uri;
  }
}
