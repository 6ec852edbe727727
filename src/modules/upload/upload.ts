// XEP-0363 HTTP File Upload: a service domain per host (upload.{host} by default,
// listed in the host's disco#items) that hands local users slots: a signed PUT URL
// that stores one file of the requested size and type, and a signed GET URL that
// serves it until it expires. The files live under upload.path; a job deletes the
// expired ones. On whenever an http or https listener is on, unless upload: false.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Module } from '../api.js';
import type { AddressedStanza, ServerApi } from '../../core/api.js';
import { StanzaError } from '../../core/errors.js';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { UploadConfig } from '../../config/schema.js';
import { SqlUploadStore } from './store.js';
import { newSlotId, sanitiseFilename, UrlSigner, validContentType } from './files.js';
import { slotPath, UPLOAD_PREFIX, uploadHttpHandler } from './http.js';
import { uploadSecret } from './secret.js';
import { purgeExpired } from './purge.js';
import type { UploadApi } from './api.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const NS_DATA = 'jabber:x:data';
const DAY_MS = 86_400_000;

/** An error with XEP-0363's own child beside the condition (§5: file-too-large, retry). */
class UploadError extends StanzaError {
  constructor(
    condition: ConstructorParameters<typeof StanzaError>[0],
    text: string,
    private readonly extra: Element,
  ) {
    super(condition, text);
  }
  override toElement(contentNs?: string): Element {
    return super.toElement(contentNs).append(this.extra);
  }
}

/** Where the files of this configuration are kept. */
export function uploadDir(config: { data_dir: string }, upload: UploadConfig): string {
  return resolve(upload.path ?? join(config.data_dir, 'uploads'));
}

export const uploadModule: Module = {
  name: 'upload',
  async start({ server, storage }) {
    const cfg = server.config.upload;
    if (cfg === false) return;
    // The URLs point at the HTTP listeners: without one there is nothing to upload to.
    if (!server.config.http?.listen && !server.config.https) return;
    const dir = uploadDir(server.config, cfg);
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    const store = await SqlUploadStore.open(storage.sql);
    const signer = new UrlSigner(uploadSecret(server.config.data_dir));
    const expireMs = (): number => cfg.expire_after_days * DAY_MS;

    const unregister = [server.handleHttp(UPLOAD_PREFIX, uploadHttpHandler({ store, dir, signer, expireMs, log: server.log }))];
    for (const host of server.hosts) {
      const domain = cfg.domain.split('{host}').join(host);
      unregister.push(server.registerService(domain, (ev) => handle(server, ev, host), { name: 'HTTP File Upload' }));
    }

    const slot = async (ev: AddressedStanza, host: string, request: Element): Promise<Element> => {
      const { from } = ev;
      // Only this server's users get slots (XEP-0363 §5: forbidden for those not allowed).
      if (from.local === '' || !server.isLocalDomain(from.domain)) throw new StanzaError('forbidden', 'only users of this server may upload files', 'auth');
      const rawName = request.attrs.filename;
      const rawSize = request.attrs.size;
      if (rawName === undefined || rawSize === undefined || !/^\d{1,15}$/.test(rawSize)) throw new StanzaError('bad-request', 'filename and size are required');
      const size = Number(rawSize);
      const contentType = request.attrs['content-type']?.trim() || undefined;
      if (contentType !== undefined && !validContentType(contentType)) throw new StanzaError('bad-request', 'content-type is not a media type');
      if (size > cfg.max_file_bytes) {
        // XEP-0363 §5 example 4.
        throw new UploadError(
          'not-acceptable',
          `File too large. The maximum file size is ${cfg.max_file_bytes} bytes`,
          x('file-too-large', NS_UPLOAD, {}, x('max-file-size', NS_UPLOAD, {}, String(cfg.max_file_bytes))),
        );
      }
      const base = server.httpBaseUrl(host);
      if (base === undefined) throw new StanzaError('service-unavailable', 'the HTTP listener is not running');
      const now = new Date();
      const filename = sanitiseFilename(rawName);
      const id = newSlotId();
      // Rounded up, so the URL works for at least put_expiry seconds (rounding `now` down could
      // leave it almost none).
      const expires = Math.ceil(now.getTime() / 1000 + cfg.put_expiry);
      const reserved = await store.reserve(
        { id, host: from.domain, username: from.local, filename, size, contentType, createdAt: now.toISOString(), putExpiresAt: new Date(expires * 1000).toISOString() },
        cfg.quota_bytes,
      );
      if (reserved !== 'reserved') {
        // §5: a temporary error, with when to try again (when the oldest file expires).
        const oldest = await store.oldestStored(from.domain, from.local);
        const text = `Quota reached: ${reserved.used} of ${cfg.quota_bytes} bytes in use`;
        if (oldest === undefined) throw new StanzaError('resource-constraint', text, 'wait');
        throw new UploadError('resource-constraint', text, x('retry', NS_UPLOAD, { stamp: new Date(Date.parse(oldest) + expireMs()).toISOString() }));
      }
      const path = slotPath(id, signer.getSignature(id, filename), filename);
      const putUrl = `${base}${path}?expires=${expires}&signature=${signer.putSignature(id, size, contentType, expires)}`;
      server.log.debug({ event: 'upload-slot', id, size, user: from.bareString() }, 'upload slot given');
      return x('slot', NS_UPLOAD, {}, x('put', NS_UPLOAD, { url: putUrl }), x('get', NS_UPLOAD, { url: `${base}${path}` }));
    };

    /** XEP-0363 §2: the service's identity, feature and max-file-size form. */
    const info = (): Element =>
      x(
        'query',
        NS.DISCO_INFO,
        {},
        x('identity', NS.DISCO_INFO, { category: 'store', type: 'file', name: 'HTTP File Upload' }),
        x('feature', NS.DISCO_INFO, { var: NS.DISCO_INFO }),
        x('feature', NS.DISCO_INFO, { var: NS_UPLOAD }),
        x(
          'x',
          NS_DATA,
          { type: 'result' },
          x('field', NS_DATA, { var: 'FORM_TYPE', type: 'hidden' }, x('value', NS_DATA, {}, NS_UPLOAD)),
          x('field', NS_DATA, { var: 'max-file-size' }, x('value', NS_DATA, {}, String(cfg.max_file_bytes))),
        ),
      );

    const answer = async (ev: AddressedStanza, host: string): Promise<Element | undefined> => {
      const payload = ev.stanza.firstElement();
      const type = ev.stanza.attrs.type;
      if (payload === undefined) throw new StanzaError('bad-request');
      if (type === 'get' && payload.name === 'query' && payload.xmlns === NS.DISCO_INFO) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
        return info();
      }
      if (type === 'get' && payload.name === 'query' && payload.xmlns === NS.DISCO_ITEMS) {
        if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
        return x('query', NS.DISCO_ITEMS);
      }
      if (type === 'get' && payload.name === 'request' && payload.xmlns === NS_UPLOAD) return slot(ev, host, payload);
      throw new StanzaError('service-unavailable');
    };

    async function handle(s: ServerApi, ev: AddressedStanza, host: string): Promise<void> {
      const { stanza, kind, from, to } = ev;
      if (kind === 'presence') return;
      const type = stanza.attrs.type;
      if (kind === 'message' || (type !== 'get' && type !== 'set')) {
        if (kind === 'message' && type !== 'error') s.bounce(stanza, new StanzaError('service-unavailable'));
        return;
      }
      try {
        const payload = await answer(ev, host);
        const reply = x('iq', NS.CLIENT, { type: 'result', id: stanza.attrs.id, from: to.toString(), to: from.toString() });
        if (payload) reply.append(payload);
        await s.routeTo(reply, to, from);
      } catch (err) {
        if (!(err instanceof StanzaError)) s.log.error({ err }, 'upload service failed');
        s.bounce(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
      }
    }

    // The expiry job: one pass at a time, never overlapping; its file work is asynchronous.
    let running: Promise<number> | undefined;
    const cleanup = (): Promise<number> => {
      running ??= purgeExpired(store, dir, new Date(Date.now() - expireMs()))
        .then((n) => {
          if (n > 0) server.log.info({ event: 'upload-expired', count: n }, 'expired uploads deleted');
          return n;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    };
    const timer = setInterval(() => server.track(cleanup(), 'upload expiry'), cfg.cleanup_interval * 1000);
    timer.unref();

    const api: UploadApi = { dir, cleanup };
    return {
      api,
      async stop() {
        clearInterval(timer);
        for (const u of unregister) u();
        await running?.catch(() => undefined);
      },
    };
  },
};
