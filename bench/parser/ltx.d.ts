// ltx 3.x ships no type declarations; these cover only what the benchmark uses.

declare module 'ltx/src/parsers/ltx.js' {
  import { EventEmitter } from 'node:events';
  /** ltx's own hand-written tokenizer (the one @xmpp/xml builds on); not namespace-aware. */
  export default class SaxLtx extends EventEmitter {
    write(data: string | Buffer): void;
    end(data?: string): void;
    on(event: 'startElement', listener: (name: string, attrs: Record<string, string>) => void): this;
    on(event: 'endElement', listener: (name: string, selfClosing: boolean) => void): this;
    on(event: 'text', listener: (text: string) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
  }
}

declare module 'ltx/src/Element.js' {
  export default class Element {
    constructor(name: string, attrs?: Record<string, string> | string);
    name: string;
    parent: Element | null;
    attrs: Record<string, string>;
    children: (Element | string)[];
    cnode(child: Element): Element;
    t(text: string): this;
  }
}
