// Builds a synthetic but realistic client-to-server XMPP stream (RFC 6120 §4) for
// the parser benchmark: a stream header, then a seeded, reproducible mix of
// stanzas and nonzas, cut into fixed-size Buffers the way a socket hands them
// over (so chunk boundaries fall inside tags, attribute values, entities and
// multi-byte UTF-8 sequences).
//
// Besides the bytes, the generator counts what a correct parser must find, so
// run.ts can check every candidate against it: top-level elements, all elements
// inside them, and the UTF-16 length of their decoded character data.

export interface GenerateOptions {
  /** Target size of the stream in bytes; generation stops at the first stanza past it. */
  bytes: number;
  /** PRNG seed: the same seed and size always give the same bytes. */
  seed?: number;
  /** Size of each delivered chunk (a typical socket read). */
  chunkSize?: number;
}

export interface KindStats {
  count: number;
  bytes: number;
}

export interface GeneratedStream {
  chunks: Buffer[];
  /** Total bytes, header included. */
  bytes: number;
  /** Top-level elements after the stream header (stanzas and nonzas such as XEP-0198 <r/>). */
  stanzas: number;
  /** Every element inside the stream header, top-level ones included. */
  elements: number;
  /** UTF-16 length of the decoded character data inside top-level elements. */
  textChars: number;
  /** Whitespace keepalives between stanzas (RFC 6120 §4.6.1). */
  keepalives: number;
  /** Per-kind count and bytes, to describe the mix. */
  kinds: Record<string, KindStats>;
  /** Chunk boundaries that fall inside a multi-byte UTF-8 sequence. */
  splitsInUtf8: number;
  /** Chunk boundaries that fall between a '<' and its '>'. */
  splitsInTag: number;
}

export const STREAM_HEADER =
  "<?xml version='1.0'?><stream:stream from='juliet@example.com' to='example.com' version='1.0' " +
  "xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/** mulberry32: tiny, fast, and good enough to pick stanza shapes reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXT_ESC = /[&<>]/g;
const ATTR_ESC = /[&<"']/g;
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Serialises one top-level element and counts what a parser should report for it. */
class Writer {
  s = '';
  elements = 0;
  textChars = 0;
  /** Quote style varies per stanza, as it does between real client libraries. */
  constructor(private readonly q: "'" | '"') {}

  private attrs(attrs: Record<string, string | undefined>): void {
    for (const k in attrs) {
      const v = attrs[k];
      if (v === undefined) continue;
      this.s += ' ' + k + '=' + this.q + v.replace(ATTR_ESC, (c) => ESC[c] ?? c) + this.q;
    }
  }

  open(name: string, attrs: Record<string, string | undefined> = {}): this {
    this.elements++;
    this.s += '<' + name;
    this.attrs(attrs);
    this.s += '>';
    return this;
  }

  empty(name: string, attrs: Record<string, string | undefined> = {}): this {
    this.elements++;
    this.s += '<' + name;
    this.attrs(attrs);
    this.s += '/>';
    return this;
  }

  close(name: string): this {
    this.s += '</' + name + '>';
    return this;
  }

  text(raw: string): this {
    this.textChars += raw.length;
    this.s += raw.replace(TEXT_ESC, (c) => ESC[c] ?? c);
    return this;
  }

  /** <name attrs>raw text</name> */
  leaf(name: string, raw: string, attrs: Record<string, string | undefined> = {}): this {
    return this.open(name, attrs).text(raw).close(name);
  }
}

// Words from several scripts so bodies mix 1-, 2-, 3- and 4-byte UTF-8 sequences,
// and fragments that must be escaped (&, <, >) as people type them.
const WORDS = [
  'the', 'meeting', 'is', 'at', 'three', 'ok', 'sure', 'thanks', 'see', 'you', 'later', 'did', 'it', 'build',
  'deploy', 'server', 'again', 'lunch', 'tomorrow', 'maybe', 'yes', 'no', 'why', 'because', 'link', 'please',
  'Grüße', 'schön', 'Straße', 'déjà', 'très', 'ça', 'naïve', 'señor', 'mañana', 'Zürich', 'København',
  'привет', 'как', 'дела', 'хорошо', 'спасибо', 'Ελλάδα', 'γεια', 'שלום', 'مرحبا', 'شكرا',
  '你好', '今天', '天气很好', '谢谢', 'ありがとう', 'こんにちは', '안녕하세요', 'नमस्ते',
  '😀', '👍', '🎉', '❤️', '🙈', '🚀', '😂', '🤔',
  'R&D', 'Q&A', 'a<b', 'x > y', '<3', '->', 'Tom & Jerry', 'if (a && b)',
  'https://example.org/search?q=xmpp&lang=en', '"quoted"', "it's",
];
const NAMES = ['romeo', 'juliet', 'benvolio', 'mercutio', 'tybalt', 'nurse', 'paris', 'capulet', 'montague', 'friar',
  'françois', 'jürgen', 'zoë', 'дмитрий', '小明'];
// Roster names are free text (RFC 6121 §2.1.2.4), so they may hold characters a JID cannot.
const NICKS = ['Romeo', "O'Brien", 'Tom & Jerry', '"Doc" Brown', 'Zoë', 'Дмитрий', '小明 🐉', '<admin>'];
const DOMAINS = ['example.com', 'example.net', 'shakespeare.lit', 'montague.example', 'jabber.example.org'];
const RESOURCES = ['balcony', 'orchard', 'Conversations.x1Yz', 'gajim.7A2B', 'phone', 'laptop'];
const STATUS = ['Out for lunch', 'In a meeting — back at 3', 'Working from home 🏠', 'Do not disturb!',
  'Zzz…', 'À bientôt', 'на связи', '会議中', 'Coding & coffee', ''];
const SHOWS = ['away', 'chat', 'dnd', 'xa'];
const GROUPS = ['Friends', 'Family', 'Work', 'Colleagues & Co', 'Buddies', 'Семья', '同事'];
const FEATURES = [
  'http://jabber.org/protocol/caps', 'http://jabber.org/protocol/disco#info', 'http://jabber.org/protocol/disco#items',
  'http://jabber.org/protocol/muc', 'http://jabber.org/protocol/chatstates', 'http://jabber.org/protocol/ibb',
  'http://jabber.org/protocol/si', 'http://jabber.org/protocol/bytestreams', 'jabber:iq:version', 'jabber:iq:last',
  'urn:xmpp:ping', 'urn:xmpp:time', 'urn:xmpp:receipts', 'urn:xmpp:chat-markers:0', 'urn:xmpp:message-correct:0',
  'urn:xmpp:jingle:1', 'urn:xmpp:jingle:apps:rtp:1', 'urn:xmpp:jingle:apps:rtp:audio', 'urn:xmpp:jingle:apps:rtp:video',
  'urn:xmpp:jingle:transports:ice-udp:1', 'urn:xmpp:avatar:metadata+notify', 'urn:xmpp:bookmarks:1+notify',
  'urn:xmpp:mam:2', 'urn:xmpp:carbons:2', 'urn:xmpp:sid:0', 'eu.siacs.conversations.axolotl.devicelist+notify',
];

export function generateStream(opts: GenerateOptions): GeneratedStream {
  const rnd = prng(opts.seed ?? 0x5eed);
  const chunkSize = opts.chunkSize ?? 16 * 1024;
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const chance = (p: number): boolean => rnd() < p;

  let idSeq = 0;
  const id = (): string => (++idSeq).toString(36) + '-' + Math.floor(rnd() * 2 ** 32).toString(36);
  const jid = (): string => pick(NAMES) + '@' + pick(DOMAINS);
  const fullJid = (): string => jid() + '/' + pick(RESOURCES);
  const base64 = (bytes: number): string => {
    const b = Buffer.allocUnsafe(bytes);
    for (let i = 0; i < bytes; i++) b[i] = (rnd() * 256) | 0;
    return b.toString('base64');
  };
  const words = (n: number): string => {
    let s = pick(WORDS);
    for (let i = 1; i < n; i++) s += (chance(0.05) ? '\n' : ' ') + pick(WORDS);
    return s;
  };
  // Most chat lines are short; a few are long pastes.
  const bodyWords = (): number => {
    const r = rnd();
    if (r < 0.7) return int(1, 12);
    if (r < 0.95) return int(12, 60);
    return int(60, 600);
  };
  const caps = (w: Writer): void => {
    w.empty('c', {
      xmlns: 'http://jabber.org/protocol/caps', hash: 'sha-1',
      node: pick(['https://gajim.org', 'http://conversations.im', 'https://dino.im', 'https://psi-im.org']),
      ver: base64(20),
    });
  };

  // RFC 6120 §8 stanzas plus the nonzas a modern client sends (XEP-0198 acks).
  // Weights are relative; roughly what a busy chat client's outbound stream looks like.
  const KINDS: [string, number, (w: Writer) => void][] = [
    ['message/chat', 40, (w) => {
      w.open('message', { to: fullJid(), type: 'chat', id: id(), 'xml:lang': chance(0.3) ? 'en' : undefined });
      w.leaf('body', words(bodyWords()));
      if (chance(0.8)) w.empty('active', { xmlns: 'http://jabber.org/protocol/chatstates' });
      if (chance(0.7)) w.empty('request', { xmlns: 'urn:xmpp:receipts' });
      if (chance(0.5)) w.empty('markable', { xmlns: 'urn:xmpp:chat-markers:0' });
      w.empty('origin-id', { xmlns: 'urn:xmpp:sid:0', id: id() });
      w.close('message');
    }],
    ['message/receipt', 8, (w) => {
      w.open('message', { to: fullJid(), id: id() });
      if (chance(0.5)) w.empty('received', { xmlns: 'urn:xmpp:receipts', id: id() });
      else w.empty('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: id() });
      w.close('message');
    }],
    ['message/chatstate', 7, (w) => {
      w.open('message', { to: fullJid(), type: 'chat' });
      w.empty(pick(['composing', 'paused', 'active', 'inactive']), { xmlns: 'http://jabber.org/protocol/chatstates' });
      w.close('message');
    }],
    ['presence', 12, (w) => {
      w.open('presence', { id: id() });
      if (chance(0.6)) w.leaf('show', pick(SHOWS));
      if (chance(0.5)) w.leaf('status', pick(STATUS));
      w.leaf('priority', String(int(-1, 50)));
      caps(w);
      if (chance(0.4)) w.open('x', { xmlns: 'vcard-temp:x:update' }).leaf('photo', base64(20)).close('x');
      if (chance(0.2)) w.empty('idle', { xmlns: 'urn:xmpp:idle:1', since: '2024-05-01T10:00:00Z' });
      w.close('presence');
    }],
    ['presence/muc-join', 2, (w) => {
      w.open('presence', { to: 'room' + int(1, 40) + '@conference.example.com/' + pick(NAMES), id: id() });
      w.open('x', { xmlns: 'http://jabber.org/protocol/muc' }).empty('history', { maxstanzas: '20' }).close('x');
      caps(w);
      w.close('presence');
    }],
    ['iq/ping', 6, (w) => {
      w.open('iq', { type: 'get', to: 'example.com', id: id() });
      w.empty('ping', { xmlns: 'urn:xmpp:ping' });
      w.close('iq');
    }],
    ['iq/result', 4, (w) => {
      w.empty('iq', { type: 'result', to: 'example.com', id: id() });
    }],
    ['sm/r-a', 8, (w) => {
      if (chance(0.5)) w.empty('r', { xmlns: 'urn:xmpp:sm:3' });
      else w.empty('a', { xmlns: 'urn:xmpp:sm:3', h: String(int(0, 100000)) });
    }],
    ['iq/disco-get', 2, (w) => {
      w.open('iq', { type: 'get', to: chance(0.5) ? 'example.com' : 'conference.example.com', id: id() });
      w.empty('query', { xmlns: 'http://jabber.org/protocol/disco#' + (chance(0.7) ? 'info' : 'items') });
      w.close('iq');
    }],
    ['iq/disco-info-result', 3, (w) => {
      // A client answering another entity's caps query (XEP-0115 §6.2).
      w.open('iq', { type: 'result', to: fullJid(), id: id() });
      w.open('query', { xmlns: 'http://jabber.org/protocol/disco#info', node: 'https://gajim.org#' + base64(20) });
      w.empty('identity', { category: 'client', type: pick(['pc', 'phone']), name: pick(['Gajim', 'Conversations', 'Dino']) });
      const n = int(15, FEATURES.length);
      for (let i = 0; i < n; i++) w.empty('feature', { var: FEATURES[i]! });
      w.close('query').close('iq');
    }],
    ['iq/roster-get', 0.5, (w) => {
      w.open('iq', { type: 'get', id: id() }).empty('query', { xmlns: 'jabber:iq:roster' }).close('iq');
    }],
    ['iq/roster-items', 2, (w) => {
      // Shaped like a roster result (RFC 6121 §2.1.4): many small attribute-heavy children.
      w.open('iq', { type: 'result', id: id() });
      w.open('query', { xmlns: 'jabber:iq:roster', ver: 'ver' + int(1, 9999) });
      const n = int(3, 25);
      for (let i = 0; i < n; i++) {
        w.open('item', { jid: pick(NAMES) + i + '@' + pick(DOMAINS), name: pick(NICKS), subscription: pick(['both', 'to', 'from', 'none']) });
        const g = int(0, 2);
        for (let k = 0; k < g; k++) w.leaf('group', pick(GROUPS));
        w.close('item');
      }
      w.close('query').close('iq');
    }],
    ['iq/vcard-photo', 0.5, (w) => {
      // XEP-0054 vCard with an embedded photo: base64 wrapped at 76 columns, as clients send it.
      const name = pick(NAMES);
      w.open('iq', { type: 'set', id: id() }).open('vCard', { xmlns: 'vcard-temp' });
      w.leaf('FN', name + ' ' + pick(NAMES));
      w.open('N').leaf('FAMILY', pick(NAMES)).leaf('GIVEN', name).close('N');
      w.leaf('NICKNAME', name);
      w.open('EMAIL').empty('INTERNET').leaf('USERID', jid()).close('EMAIL');
      const photo = base64(int(2048, 8192)).replace(/.{76}/g, '$&\n');
      w.open('PHOTO').leaf('TYPE', 'image/jpeg').leaf('BINVAL', photo).close('PHOTO');
      w.close('vCard').close('iq');
    }],
  ];
  const totalWeight = KINDS.reduce((s, k) => s + k[1], 0);

  const parts: string[] = [STREAM_HEADER];
  let bytes = Buffer.byteLength(STREAM_HEADER);
  let stanzas = 0;
  let elements = 0;
  let textChars = 0;
  let keepalives = 0;
  const kinds: Record<string, KindStats> = {};
  while (bytes < opts.bytes) {
    if (chance(0.01)) {
      // RFC 6120 §4.6.1 whitespace keepalive between stanzas.
      parts.push(' ');
      bytes += 1;
      keepalives++;
    }
    let r = rnd() * totalWeight;
    let kind = KINDS[0]!;
    for (const k of KINDS) {
      r -= k[1];
      if (r < 0) {
        kind = k;
        break;
      }
    }
    const w = new Writer(chance(0.5) ? "'" : '"');
    kind[2](w);
    const n = Buffer.byteLength(w.s);
    parts.push(w.s);
    bytes += n;
    stanzas++;
    elements += w.elements;
    textChars += w.textChars;
    const ks = (kinds[kind[0]] ??= { count: 0, bytes: 0 });
    ks.count++;
    ks.bytes += n;
  }

  const all = Buffer.from(parts.join(''), 'utf8');
  const chunks: Buffer[] = [];
  let splitsInUtf8 = 0;
  let splitsInTag = 0;
  for (let off = 0; off < all.length; off += chunkSize) {
    chunks.push(all.subarray(off, Math.min(off + chunkSize, all.length)));
    if (off === 0) continue;
    if ((all[off]! & 0xc0) === 0x80) splitsInUtf8++;
    if (all.lastIndexOf(0x3c, off - 1) > all.lastIndexOf(0x3e, off - 1)) splitsInTag++;
  }
  return { chunks, bytes: all.length, stanzas, elements, textChars, keepalives, kinds, splitsInUtf8, splitsInTag };
}
