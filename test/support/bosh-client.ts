// A raw BOSH client for tests (XEP-0124/0206): builds each <body/> by hand, posts
// it, and parses the answer with the server's own parser, so every rid rule and
// terminal condition can be checked request by request.
import { parseBoshBody, type BoshRequest } from '../../src/stream/http/bosh.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';

export interface BoshAnswer extends BoshRequest {
  /** The answer as received. */
  text: string;
  status: number;
}

/** Posts a raw request body; resolves with the parsed answer. */
export async function postRaw(url: string, body: string, headers: Record<string, string> = {}): Promise<BoshAnswer> {
  const res = await fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'text/xml; charset=utf-8', ...headers } });
  const text = await res.text();
  const parsed = parseBoshBody(Buffer.from(text), { maxStanzaSize: 10 * 1024 * 1024 });
  if (typeof parsed === 'string') return { attrs: {}, elements: [], text, status: res.status };
  return { ...parsed, text, status: res.status };
}

function attrString(attrs: Record<string, string | number | undefined>): string {
  let s = '';
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) s += ` ${k}='${String(v)}'`;
  return s;
}

export class BoshRaw {
  sid = '';
  rid: number;
  creation: BoshAnswer | undefined;

  constructor(
    readonly url: string,
    firstRid = 1_000_000 + Math.floor(Math.random() * 1_000_000),
  ) {
    this.rid = firstRid;
  }

  /** XEP-0206 §3: the session creation request. */
  async create(attrs: Record<string, string | number> = {}): Promise<BoshAnswer> {
    const answer = await postRaw(
      this.url,
      `<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='${NS_XBOSH}'${attrString({ rid: this.rid++, to: 'localhost', wait: 10, hold: 1, 'xml:lang': 'en', 'xmpp:version': '1.0', ver: '1.11', ...attrs })}/>`,
    );
    this.sid = answer.attrs.sid ?? '';
    this.creation = answer;
    return answer;
  }

  /** The body for the next rid (not sent): to send out of order. */
  body(payload = '', attrs: Record<string, string | number | undefined> = {}, rid = this.rid++): { rid: number; text: string } {
    return { rid, text: `<body xmlns='${NS_HTTPBIND}' xmlns:xmpp='${NS_XBOSH}'${attrString({ sid: this.sid, rid, ...attrs })}>${payload}</body>` };
  }

  /** Sends the next request and waits for its answer. */
  send(payload = '', attrs: Record<string, string | number | undefined> = {}): Promise<BoshAnswer> {
    return postRaw(this.url, this.body(payload, attrs).text);
  }

  /** SASL PLAIN (BOSH on loopback counts as encrypted), restart, bind: the bound JID. */
  async login(user: string, password: string): Promise<string> {
    const auth = Buffer.from(`\0${user}\0${password}`).toString('base64');
    const success = await this.until((a) => a.elements.some((e) => e.name === 'success'), `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    void success;
    await this.until((a) => a.elements.some((e) => e.name === 'features'), '', { 'xmpp:restart': 'true', to: 'localhost' });
    const bound = await this.until(
      (a) => a.elements.some((e) => e.name === 'iq' && e.attrs.id === 'bind1'),
      "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    );
    const iq = bound.elements.find((e) => e.name === 'iq')!;
    return iq.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind')!.getChildText('jid')!;
  }

  /** Sends `payload`, then empty requests, until an answer satisfies `pred` (at most `ms`). */
  async until(pred: (a: BoshAnswer) => boolean, payload = '', attrs: Record<string, string | number | undefined> = {}, ms = 10_000): Promise<BoshAnswer> {
    const deadline = Date.now() + ms;
    let answer = await this.send(payload, attrs);
    while (!pred(answer)) {
      if (answer.attrs.type === 'terminate') throw new Error(`session terminated: ${answer.text}`);
      if (Date.now() > deadline) throw new Error(`timed out; last answer: ${answer.text}`);
      answer = await this.send();
    }
    return answer;
  }
}
