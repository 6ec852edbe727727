// The element-at-a-time framing shared by WebSocket (RFC 7395) and BOSH (XEP-0206):
// the stream header and footer are elements of their own (<open/>, <close/>), and
// every stanza arrives complete and standalone. The input side parses one message
// as one XML element with the hardened stream parser (xml/parser.ts), so every
// limit of a TCP stream (size, depth, attributes, restricted XML) holds here too.
import { escapeAttr, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StreamParser, type ParseErrorCondition, type StreamParserHandler, type StreamParserOptions } from '../../xml/parser.js';
import type { StreamError } from '../../core/errors.js';
import type { FrameParser, Framing, HeaderFields } from '../framing.js';

/** RFC 7395 §3.3.2 */
export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

/**
 * A message is parsed as the only child of a wrapper that declares nothing, so a message
 * must declare every namespace it uses (RFC 7395 §3.3.3: each is a standalone document).
 */
const WRAP_OPEN = '<m>';
const WRAP_CLOSE = '</m>';

type ParseOutcome = { el: Element } | { condition: ParseErrorCondition; text: string };

/**
 * Parses messages one at a time, each of which must be exactly one complete XML element, with
 * one parser kept while the messages are good (StreamParser.reset()): a stream's messages
 * cost one tokenizer, not one each. A message that fails leaves nothing behind to reuse.
 */
export class ElementReader {
  private parser: StreamParser | undefined;
  private readonly els: Element[] = [];
  private ended = false;
  private error: { condition: ParseErrorCondition; text: string } | undefined;
  private readonly handler: StreamParserHandler = {
    streamStart: () => undefined,
    element: (el) => this.els.push(el),
    whitespace: () => undefined,
    streamEnd: () => {
      this.ended = true;
    },
    error: (condition, text) => {
      this.error ??= { condition, text };
    },
  };

  constructor(private readonly opts: StreamParserOptions) {}

  read(data: Buffer | string): ParseOutcome {
    this.els.length = 0;
    this.ended = false;
    this.error = undefined;
    const parser = (this.parser ??= new StreamParser(this.handler, this.opts));
    const outcome = this.outcome(parser, data);
    // A good message ended its document cleanly, which is what reset() needs.
    if ('el' in outcome) parser.reset();
    else this.parser = undefined;
    this.els.length = 0;
    return outcome;
  }

  private outcome(parser: StreamParser, data: Buffer | string): ParseOutcome {
    parser.write(WRAP_OPEN);
    parser.write(data);
    // The message itself closed the wrapper: it had an end tag without its start.
    if (this.ended && !this.error) this.error = { condition: 'not-well-formed', text: 'end tag without a start tag' };
    if (!this.error) parser.write(WRAP_CLOSE);
    if (this.error) return this.error;
    // RFC 7395 §3.3.1: one complete element per message, neither part of one nor several.
    if (!this.ended) return { condition: 'not-well-formed', text: 'a message must hold one complete XML element' };
    if (this.els.length !== 1) return { condition: 'bad-format', text: `a message must hold exactly one XML element, not ${this.els.length}` };
    return { el: this.els[0]! };
  }
}

/** Parses one message that must be exactly one complete XML element. */
export function parseOneElement(data: Buffer | string, opts: StreamParserOptions): ParseOutcome {
  return new ElementReader(opts).read(data);
}

/**
 * Turns messages into stream events: <open/> is the stream header (as <stream:stream> would be
 * over TCP), <close/> its end, anything else a stanza or nonza. One parser serves one stream;
 * after a restart (RFC 7395 §3.5) a new one waits for the next <open/>.
 */
export class ElementFrameParser implements FrameParser {
  private opened = false;
  private stopped = false;
  private readonly reader: ElementReader;

  constructor(
    private readonly handler: StreamParserHandler,
    opts: StreamParserOptions,
  ) {
    this.reader = new ElementReader(opts);
  }

  /** One whole message. */
  write(data: Buffer | string): void {
    if (this.stopped) return;
    const outcome = this.reader.read(data);
    if ('condition' in outcome) {
      this.stopped = true;
      this.handler.error(outcome.condition, outcome.text);
      return;
    }
    const el = outcome.el;
    const framing = el.xmlns === NS_FRAMING;
    if (!this.opened) {
      this.opened = true;
      // The first element is the header; one that is not <open/> is refused by the stream
      // (invalid-namespace) exactly as a TCP stream whose root is not <stream:stream>.
      const isOpen = framing && el.name === 'open';
      this.handler.streamStart({
        name: isOpen ? 'stream' : el.name,
        // A TCP stream root (<stream:stream/>) is no WebSocket header either.
        uri: isOpen ? NS.STREAM : el.xmlns === NS.STREAM ? '' : el.xmlns,
        contentNs: NS.CLIENT,
        attrs: headerAttrs(el),
      });
      return;
    }
    if (framing && el.name === 'close') {
      this.stopped = true;
      this.handler.streamEnd();
      return;
    }
    if (framing) {
      // RFC 7395 §3.5: a new <open/> only after a restart (which makes a new parser).
      this.stopped = true;
      this.handler.error('bad-format', `<${el.name}/> of the framing namespace in the middle of a stream`);
      return;
    }
    this.handler.element(el);
  }

  stop(): void {
    this.stopped = true;
  }
}

function headerAttrs(el: Element): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attrs)) if (v !== undefined && !k.startsWith('xmlns')) attrs[k] = v;
  return attrs;
}

/** A streams-namespace element written with the `stream` prefix declared on itself (RFC 7395 §3.3.3). */
export function standaloneStreamElement(name: string, el: Element): string {
  let s = `<stream:${name} xmlns:stream='${NS.STREAM}'>`;
  for (const c of el.children) s += typeof c === 'string' ? '' : c.toString();
  return s + `</stream:${name}>`;
}

/** RFC 7395 §3.3: every message is one standalone element. */
export class WebSocketFraming implements Framing {
  readonly contentNs = NS.CLIENT;

  /** RFC 7395 §3.4: the server's <open/> carries what the TCP stream header would. */
  header(f: HeaderFields): string {
    let s = `<open xmlns='${NS_FRAMING}' id='${escapeAttr(f.id)}' from='${escapeAttr(f.from)}'`;
    if (f.to !== undefined) s += ` to='${escapeAttr(f.to)}'`;
    if (f.version !== undefined) s += ` version='${escapeAttr(f.version)}'`;
    return s + ` xml:lang='${escapeAttr(f.lang)}'/>`;
  }

  /** RFC 7395 §3.6 */
  footer(): string {
    return `<close xmlns='${NS_FRAMING}'/>`;
  }

  features(features: Element): string {
    return standaloneStreamElement('features', features);
  }

  error(error: StreamError): string {
    return standaloneStreamElement('error', error.toElement());
  }

  /** Written with its namespace: there is no stream header whose default it could inherit. */
  element(el: Element): string {
    return el.toString();
  }

  parser(handler: StreamParserHandler, options: StreamParserOptions): FrameParser {
    return new ElementFrameParser(handler, options);
  }
}
