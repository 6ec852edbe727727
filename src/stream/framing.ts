// How one transport frames an XML stream: the header and footer, how stream
// features and stream errors are written, how stanzas are serialised, and how
// the incoming bytes are parsed. The TCP framing (RFC 6120 §4) is one XML
// document per stream; WebSocket (RFC 7395: <open/>/<close/>, one element per
// message) and BOSH (XEP-0206: <body/> wrappers) frame the same stream otherwise.
import { escapeAttr, type Element } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import { StreamParser, type StreamParserHandler, type StreamParserOptions } from '../xml/parser.js';
import type { StreamError } from '../core/errors.js';

/** The attributes of the server's stream header (RFC 6120 §4.7). */
export interface HeaderFields {
  from: string;
  /** RFC 6120 §4.7.3: fresh and unpredictable for every header. */
  id: string;
  to?: string;
  /** Absent when the peer sent no version (RFC 6120 §4.7.5). */
  version?: string;
  lang: string;
}

/** Turns incoming bytes into stream events. */
export interface FrameParser {
  write(data: Buffer | string): void;
  /** Stops delivering events (after a stream error, a restart, or close). */
  stop(): void;
}

export interface Framing {
  /** The content namespace of the stream (RFC 6120 §4.8.2), e.g. jabber:client. */
  readonly contentNs: string;
  header(fields: HeaderFields): string;
  footer(): string;
  /** RFC 6120 §4.3.2 */
  features(features: Element): string;
  /** RFC 6120 §4.9 */
  error(error: StreamError): string;
  /** A stanza or nonza, as it appears in the stream. */
  element(el: Element): string;
  /** A parser for a new stream (the first one, and after every restart). */
  parser(handler: StreamParserHandler, options: StreamParserOptions): FrameParser;
}

/**
 * RFC 6120 §4 over TCP: one XML document, `<stream:stream>` with the streams namespace
 * bound to the `stream` prefix on the header, so features and errors are written as
 * `<stream:features>` and `<stream:error>`, which is what clients (and several that match
 * the qualified name literally) expect. Stanzas are written in the content namespace;
 * internally every stanza is in jabber:client, so a stream with another content namespace
 * (jabber:component:accept) gets them unqualified, i.e. in its own.
 */
export class TcpFraming implements Framing {
  constructor(readonly contentNs: string = NS.CLIENT) {}

  header(f: HeaderFields): string {
    let s = `<?xml version='1.0'?><stream:stream xmlns='${this.contentNs}' xmlns:stream='${NS.STREAM}' id='${escapeAttr(f.id)}' from='${escapeAttr(f.from)}'`;
    if (f.to !== undefined) s += ` to='${escapeAttr(f.to)}'`;
    if (f.version !== undefined) s += ` version='${escapeAttr(f.version)}'`;
    return s + ` xml:lang='${escapeAttr(f.lang)}'>`;
  }

  footer(): string {
    return '</stream:stream>';
  }

  features(features: Element): string {
    return this.prefixed('features', features);
  }

  error(error: StreamError): string {
    return this.prefixed('error', error.toElement());
  }

  element(el: Element): string {
    return el.toString(NS.CLIENT);
  }

  parser(handler: StreamParserHandler, options: StreamParserOptions): FrameParser {
    return new StreamParser(handler, options);
  }

  /** An element of the streams namespace written with the header's `stream:` prefix; its children in the content namespace's scope. */
  private prefixed(name: string, el: Element): string {
    let s = `<stream:${name}>`;
    for (const c of el.children) s += typeof c === 'string' ? '' : c.toString(NS.CLIENT);
    return s + `</stream:${name}>`;
  }
}
