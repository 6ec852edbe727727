// What the upload service decides about names, types, byte ranges and URLs, apart
// from any I/O: kept here so that each rule is tested on its own.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** C0 and C1 controls, line and paragraph separators, bidirectional overrides and isolates. */
function isControl(cp: number): boolean {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/** The longest file name kept (in UTF-16 units, after sanitising). */
const MAX_NAME = 200;

/**
 * The name a file is stored and served under: the last path segment of what the client sent,
 * without control characters, not '.' or '..', at most MAX_NAME long with its extension kept
 * (XEP-0363 §4: the service SHOULD keep the file name and especially its ending intact).
 */
export function sanitiseFilename(name: string): string {
  let n = Array.from(name.normalize('NFC'))
    .filter((c) => !isControl(c.codePointAt(0)!))
    .join('');
  n = n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1).trim();
  if (n === '' || n === '.' || n === '..') return 'file';
  if (n.length > MAX_NAME) {
    const dot = n.lastIndexOf('.');
    const ext = dot > 0 && n.length - dot <= 16 ? n.slice(dot) : '';
    n = Array.from(n.slice(0, MAX_NAME - ext.length)).join('').replace(/[\ud800-\udbff]$/, '') + ext;
  }
  return n;
}

const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(\\s*;\\s*${TOKEN}=(${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);

/** Whether a slot request's content-type is a media type (RFC 9110 §8.3.1) we can send back as a header. */
export function validContentType(t: string): boolean {
  return t.length <= 255 && MEDIA_TYPE.test(t);
}

/** The media type without parameters, lower-case. */
export function essence(t: string): string {
  return t.split(';')[0]!.trim().toLowerCase();
}

/**
 * Content-Disposition for a download (RFC 6266, filename* per RFC 8187): inline only for
 * images, audio and video a browser shows without running anything (never SVG, which can hold
 * scripts), attachment otherwise; the name quoted in ASCII and given exactly in filename*.
 */
export function contentDisposition(contentType: string, filename: string): string {
  const t = essence(contentType);
  const inline = /^(image|audio|video)\//.test(t) && t !== 'image/svg+xml';
  const ascii = filename.replace(/[^A-Za-z0-9 ._()+-]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `${inline ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export type RangeResult = { start: number; end: number } | 'unsatisfiable' | undefined;

/**
 * One byte range of a Range header (RFC 9110 §14.1.2), inclusive, within `size`. Undefined
 * (send the whole file) for no header, another unit, several ranges or a malformed one, which
 * RFC 9110 §14.2 lets a server ignore; 'unsatisfiable' for a range past the end (416).
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return undefined;
  const m = /^bytes=\s*(\d*)-(\d*)\s*$/.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    // A suffix: the last n bytes.
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** A new slot id: 128 random bits. */
export function newSlotId(): string {
  return randomBytes(16).toString('base64url');
}

/** Signs and checks the slot URLs with the server's secret (HMAC-SHA-256). */
export class UrlSigner {
  constructor(private readonly secret: Buffer) {}

  private mac(...parts: (string | number)[]): string {
    return createHmac('sha256', this.secret).update(parts.join('\n')).digest('base64url');
  }

  /** The signature in a GET URL's path: the slot and its name. */
  getSignature(id: string, filename: string): string {
    return this.mac('get', id, filename);
  }

  /** The signature of a PUT URL: the slot, its size and type, and when the URL stops working (Unix seconds). */
  putSignature(id: string, size: number, contentType: string | undefined, expires: number): string {
    return this.mac('put', id, size, contentType ?? '', expires);
  }

  static same(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }
}
