// A raw RFC 7395 client for tests: one WebSocket, each message parsed as one
// standalone element with the server's own parser, so every framing rule and
// error path can be checked message by message.
import { WebSocket, type ClientOptions } from 'ws';
import type { Element } from '../../src/xml/element.js';
import { parseOneElement } from '../../src/stream/http/frames.js';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
export const OPEN = (to = 'localhost'): string => `<open xmlns='${NS_FRAMING}' to='${to}' version='1.0' xml:lang='en'/>`;

export class WsClient {
  readonly elements: Element[] = [];
  /** Every message as received. */
  readonly messages: string[] = [];
  closeCode: number | undefined;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      this.messages.push(text);
      const parsed = parseOneElement(text, { maxStanzaSize: 10 * 1024 * 1024 });
      // A message that is not one element stays in `messages` only (and fails a test waiting for an element).
      if ('el' in parsed) this.elements.push(parsed.el);
      this.wake();
    });
    ws.on('close', (code: number) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static connect(url: string, protocols: string[] = ['xmpp'], options: ClientOptions = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      const client = new WsClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(text: string | Buffer, binary = false): void {
    this.ws.send(text, { binary });
  }

  /** Waits for the next element that `pred` accepts (consumed from the list). */
  async next(pred: (el: Element) => boolean, what: string, ms = 5000): Promise<Element> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.elements.findIndex(pred);
      if (i >= 0) return this.elements.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got: ${this.messages.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the WebSocket to be closed, and returns its close code. */
  async closed(ms = 5000): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.closeCode === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for the WebSocket to close; got: ${this.messages.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closeCode;
  }
}
