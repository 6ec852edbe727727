// XEP-0054 vcard-temp: each account's vCard, kept by the server and answered on
// the account's behalf; XEP-0153: the SHA-1 of the vCard photo is stamped on the
// available presence the user sends, so contacts learn of avatar changes.
import { createHash } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StanzaError } from '../../core/errors.js';
import type { Jid } from '../../jid/jid.js';
import type { IqRequest, RoutedStanza, ServerApi } from '../../core/api.js';
import type { KeyedCache } from '../../core/cache.js';
import { Priority } from '../../core/hooks.js';
import type { Storage } from '../../storage/types.js';
import type { Module } from '../api.js';
import { loadXml, storeXml } from '../../xml/stored.js';

/** XEP-0153 §8 (the namespace of the presence extension). */
export const NS_VCARD_UPDATE = 'vcard-temp:x:update';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * XEP-0153 §3.1: the SHA-1 (hex) of the decoded PHOTO/BINVAL, or undefined when the vCard
 * has no image. §4.6 rule 5: whitespace inside the base64 data is ignored.
 */
export function photoHash(vcard: Element): string | undefined {
  const binval = vcard.getChild('PHOTO', NS.VCARD)?.getChild('BINVAL', NS.VCARD);
  if (!binval) return undefined;
  const data = binval.text().replace(/[\s]+/g, '');
  if (data === '' || data.length % 4 !== 0 || !BASE64.test(data)) return undefined;
  const image = Buffer.from(data, 'base64');
  if (image.length === 0) return undefined;
  return createHash('sha1').update(image).digest('hex');
}

/** The XEP-0153 update element: the hash, or an empty <photo/> for "no image" (§4.1 rule 3). */
export function vcardUpdateElement(hash: string | undefined): Element {
  return x('x', NS_VCARD_UPDATE, {}, x('photo', NS_VCARD_UPDATE, {}, hash));
}

const emptyVCard = (): Element => x('vCard', NS.VCARD);

export class VCardModule {
  /**
   * XEP-0153 hash per bare JID, kept only while the user has a session (dropped with the
   * last one) so presence is stamped without a database read per stanza.
   */
  private readonly hashes: KeyedCache<string | undefined>;

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
  ) {
    this.hashes = server.caches.define<string | undefined>('vcard-avatar-hash');
  }

  start(): void {
    const server = this.server;
    // XEP-0054 §4 (Determining Support).
    server.addFeature('server', NS.VCARD);
    server.addFeature('account', NS.VCARD);
    server.handleIq('account', NS.VCARD, 'get', (req) => this.get(req));
    server.handleIq('account', NS.VCARD, 'set', (req) => this.set(req));
    // XEP-0054 §3.3 note: the server may have a vCard of its own; it has none, and an empty
    // result is one of the two answers §3.1 allows for that.
    server.handleIq('server', NS.VCARD, 'get', ({ payload }) => {
      checkPayload(payload);
      return emptyVCard();
    });
    server.hookOutbound('presence', (ev) => this.stampPresence(ev), Priority.STAMP);
    server.on('session-ended', (session) => {
      const bare = session.jid.bareString();
      if (server.router.getSessions(bare).length === 0) this.hashes.forget(bare);
    });
  }

  private async get({ from, to, payload }: IqRequest): Promise<Element> {
    checkPayload(payload);
    const stored = await this.storage.vcard.get(to.domain, to.local);
    if (stored) return loadXml(stored.xml);
    // XEP-0054 §3.1: for one's own vCard, an empty <vCard/> is an allowed answer.
    if (from.bare.equals(to)) return emptyVCard();
    // XEP-0054 §3.3: for another user's missing vCard, an error (service-unavailable), which is
    // also what a non-existent account gets, so the answer does not tell which it is.
    throw new StanzaError('service-unavailable');
  }

  private async set({ from, to, payload }: IqRequest): Promise<void> {
    // XEP-0054 §3.2: only one's own vCard can be set.
    if (!from.bare.equals(to)) throw new StanzaError('forbidden');
    checkPayload(payload);
    const xml = storeXml(payload);
    const max = this.server.config.vcard.max_bytes;
    // XEP-0054 names no error for this; not-acceptable is what XEP-0060 §7.1.3.4 uses for a
    // payload over the size limit (RFC 6120 §8.3.3.9: the request does not meet the server's criteria).
    if (Buffer.byteLength(xml, 'utf8') > max) throw new StanzaError('not-acceptable', `vCard larger than ${max} bytes`);
    const hash = photoHash(payload);
    await this.storage.vcard.set(to.domain, to.local, hash === undefined ? { xml } : { xml, avatarHash: hash });
    // Not cached here: other nodes (a cluster) may hold the old hash all the same.
    if (this.hashes.has(to.bareString())) this.hashes.set(to.bareString(), hash);
    else this.hashes.drop(to.bareString());
  }

  /** XEP-0153 §4.1: available presence carries the photo hash; the server's knowledge replaces the client's. */
  private async stampPresence({ stanza, session: from }: RoutedStanza): Promise<boolean> {
    if (!from || stanza.attrs.type !== undefined) return false;
    let hash: string | undefined;
    try {
      hash = await this.hashFor(from.jid.bare);
    } catch (err) {
      // The presence itself must not fail for want of an avatar: it goes out as the client sent it.
      this.server.log.error({ err, user: from.jid.bareString() }, 'reading the avatar hash failed');
      return false;
    }
    stanza.removeChildren('x', NS_VCARD_UPDATE);
    stanza.append(vcardUpdateElement(hash));
    return false;
  }

  private hashFor(user: Jid): Promise<string | undefined> {
    const key = user.bareString();
    const load = (): Promise<string | undefined> => this.storage.vcard.avatarHash(user.domain, user.local);
    // Kept only while the user has a session (a failed read is not kept: the next presence asks again).
    if (this.server.router.getSessions(key).length === 0) return this.hashes.peek(key) ?? load();
    return this.hashes.get(key, load);
  }
}

/** The dispatcher routes on the namespace only; the element must be <vCard/> (XEP-0054 §3, names are case-sensitive). */
function checkPayload(payload: Element): void {
  if (payload.name !== 'vCard') throw new StanzaError('bad-request', 'expected <vCard xmlns="vcard-temp"/>');
}

export const vcardModule: Module = {
  name: 'vcard',
  start({ server, storage }) {
    new VCardModule(server, storage).start();
  },
};
