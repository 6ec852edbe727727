// The upload service's HTTP side, at /upload/<id>/<signature>/<name> on the server's
// HTTP listeners: PUT stores a slot's file once, streamed to a temporary file and
// renamed into place when exactly the promised bytes arrived; GET and HEAD serve it
// with its type, length, byte ranges and a safe Content-Disposition.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { HttpHandler, HttpRequestInfo } from '../../core/api.js';
import type { Logger } from '../../log/logger.js';
import type { SqlUploadStore, UploadSlot } from './store.js';
import { contentDisposition, parseRange, UrlSigner, validContentType } from './files.js';

export const UPLOAD_PREFIX = '/upload/';

export interface UploadHttpOptions {
  store: SqlUploadStore;
  /** Where the files are; temporary ones in its tmp/ folder. */
  dir: string;
  signer: UrlSigner;
  /** How long a stored file is served (ms). */
  expireMs(): number;
  log: Logger;
}

/** The path of a slot's URLs (name percent-encoded, RFC 3986; XEP-0363 §4). */
export function slotPath(id: string, signature: string, filename: string): string {
  return `${UPLOAD_PREFIX}${id}/${signature}/${encodeURIComponent(filename)}`;
}

class TooLarge extends Error {}

/** Passes bytes on, failing once more than `limit` went through. */
class Counter extends Transform {
  bytes = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) return cb(new TooLarge());
    cb(null, chunk);
  }
}

export function uploadHttpHandler(o: UploadHttpOptions): HttpHandler {
  /** Slots whose PUT is being received: a second one at the same time is refused. */
  const receiving = new Set<string>();

  const send = (res: ServerResponse, info: HttpRequestInfo, status: number, body: string, extra: Record<string, string> = {}): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...info.cors, ...extra });
    res.end(body + '\n');
  };
  /** Refuses before reading the body: the connection closes rather than read what we do not want. */
  const refuse = (res: ServerResponse, info: HttpRequestInfo, status: number, body: string): void => send(res, info, status, body, { Connection: 'close' });

  const parse = (path: string): { id: string; signature: string; filename: string } | undefined => {
    const parts = path.slice(UPLOAD_PREFIX.length).split('/');
    if (parts.length !== 3 || !/^[A-Za-z0-9_-]{22}$/.test(parts[0]!)) return undefined;
    try {
      return { id: parts[0]!, signature: parts[1]!, filename: decodeURIComponent(parts[2]!) };
    } catch {
      return undefined;
    }
  };

  const put = async (req: IncomingMessage, res: ServerResponse, info: HttpRequestInfo, slot: UploadSlot): Promise<void> => {
    // The PUT URL's own signature: it binds the slot's size, type and expiry.
    const expires = Number(info.query.get('expires') ?? NaN);
    const sig = info.query.get('signature') ?? '';
    if (!Number.isInteger(expires) || !UrlSigner.same(sig, o.signer.putSignature(slot.id, slot.size, slot.contentType, expires))) return refuse(res, info, 403, 'bad signature');
    if (Date.now() > expires * 1000) return refuse(res, info, 403, 'this upload URL has expired');
    if (slot.storedAt !== undefined || receiving.has(slot.id)) return refuse(res, info, 409, 'this slot was already used');
    // XEP-0363 §6: the upload MUST be refused when Content-Length does not match the slot's size.
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined) return refuse(res, info, 411, 'Content-Length required');
    const length = /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : NaN;
    if (length > slot.size) return refuse(res, info, 413, `this slot takes ${slot.size} bytes`);
    if (length !== slot.size) return refuse(res, info, 400, `Content-Length must be ${slot.size}`);
    // ... and SHOULD be when the Content-Type differs from the one of the slot request.
    const type = req.headers['content-type']?.trim();
    let storeType: string | undefined;
    if (slot.contentType !== undefined) {
      if (type === undefined || type.toLowerCase() !== slot.contentType.toLowerCase()) return refuse(res, info, 400, `Content-Type must be ${slot.contentType}`);
    } else if (type !== undefined && validContentType(type)) {
      storeType = type;
    } else {
      // §6: the service MAY assume application/octet-stream when the client gave no type.
      storeType = 'application/octet-stream';
    }
    receiving.add(slot.id);
    const tmp = join(o.dir, 'tmp', `${slot.id}.${randomBytes(6).toString('hex')}`);
    const counter = new Counter(slot.size);
    try {
      await mkdir(join(o.dir, 'tmp'), { recursive: true });
      await pipeline(req, counter, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      if (counter.bytes !== slot.size) throw new Error('short');
      await rename(tmp, join(o.dir, slot.id));
      if (!(await o.store.markStored(slot.id, new Date().toISOString(), storeType))) {
        await rm(join(o.dir, slot.id), { force: true });
        return send(res, info, 409, 'this slot was already used');
      }
      o.log.info({ event: 'upload-stored', id: slot.id, bytes: slot.size, user: `${slot.username}@${slot.host}` }, 'file uploaded');
      send(res, info, 201, 'stored');
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      if (err instanceof TooLarge) return refuse(res, info, 413, `this slot takes ${slot.size} bytes`);
      if (!(err instanceof Error && err.message === 'short') && !req.destroyed) o.log.warn({ err, id: slot.id }, 'upload failed');
      refuse(res, info, 400, 'the upload did not complete');
    } finally {
      receiving.delete(slot.id);
    }
  };

  const get = async (req: IncomingMessage, res: ServerResponse, info: HttpRequestInfo, slot: UploadSlot): Promise<void> => {
    if (slot.storedAt === undefined || Date.parse(slot.storedAt) + o.expireMs() < Date.now()) return send(res, info, 404, 'not found');
    const file = join(o.dir, slot.id);
    const size = (await stat(file).catch(() => undefined))?.size;
    if (size === undefined) return send(res, info, 404, 'not found');
    const type = slot.contentType ?? 'application/octet-stream';
    const headers: Record<string, string> = {
      ...info.cors,
      'Content-Type': type,
      'Content-Disposition': contentDisposition(type, slot.filename),
      'Accept-Ranges': 'bytes',
      // The file is what its uploader sent: never sniffed, never run as a page of this origin.
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'Cache-Control': 'private, max-age=86400',
      ETag: `"${slot.id}"`,
      'Last-Modified': new Date(slot.storedAt).toUTCString(),
    };
    // RFC 9110 §14.2: a Range with If-Range that no longer matches gets the whole file.
    const ifRange = req.headers['if-range'];
    const range = ifRange === undefined || ifRange === headers.ETag ? parseRange(req.headers.range, size) : undefined;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...info.cors, 'Content-Range': `bytes */${size}`, 'Cache-Control': 'no-store' });
      return void res.end();
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = String(size === 0 ? 0 : end - start + 1);
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || size === 0) return void res.end();
    try {
      await pipeline(createReadStream(file, { start, end }), res);
    } catch {
      res.destroy();
    }
  };

  return (req, res, info) => {
    const method = req.method ?? '';
    if (method !== 'PUT' && method !== 'GET' && method !== 'HEAD') return send(res, info, 405, 'method not allowed', { Allow: 'GET, HEAD, PUT, OPTIONS', Connection: 'close' });
    const parsed = parse(info.path);
    if (parsed === undefined) return refuse(res, info, 404, 'not found');
    if (!UrlSigner.same(parsed.signature, o.signer.getSignature(parsed.id, parsed.filename))) return refuse(res, info, 403, 'bad signature');
    // An expired PUT URL is refused as such even once the job has deleted its unused slot.
    if (method === 'PUT' && Date.now() > Number(info.query.get('expires') ?? NaN) * 1000) return refuse(res, info, 403, 'this upload URL has expired');
    o.store.get(parsed.id).then(
      (slot) => {
        if (slot === undefined || slot.filename !== parsed.filename) return refuse(res, info, 404, 'not found');
        return method === 'PUT' ? put(req, res, info, slot) : get(req, res, info, slot);
      },
      (err: unknown) => {
        o.log.error({ err }, 'upload lookup failed');
        refuse(res, info, 500, 'internal error');
      },
    ).catch((err: unknown) => {
      o.log.error({ err }, 'upload request failed');
      refuse(res, info, 500, 'internal error');
    });
  };
}
