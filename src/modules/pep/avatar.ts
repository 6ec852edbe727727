// XEP-0398: a PEP avatar (XEP-0084) published by the user becomes the PHOTO of the
// user's vCard, so that XEP-0153 hashes in presence (stamped by the vcard module)
// and vCard readers (group chats) show the same image; and a vCard photo the user
// stores (XEP-0054) is published as the PEP avatar, for clients that read only
// XEP-0084. A vCard set is seen on its way to the vcard module and converted once
// its result is written back to the client: only what was really stored is published.
import { createHash } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import type { Jid } from '../../jid/jid.js';
import type { ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import { Priority } from '../../core/hooks.js';
import type { Storage } from '../../storage/types.js';
import { NS_AVATAR_DATA, NS_AVATAR_METADATA } from './ns.js';
import type { PepService } from './pubsub.js';

/** The vcard module's cache of XEP-0153 hashes (src/modules/vcard), dropped for a user whose photo changed here. */
const VCARD_HASH_CACHE = 'vcard-avatar-hash';
/** vCard sets of one session waiting for their result (a client has one or two at a time; more are not converted). */
const MAX_PENDING_SETS = 4;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The image of a vCard's PHOTO (XEP-0153 §3.1), with its SHA-1 (hex) and type. */
function vcardPhoto(vcard: Element): { base64: string; hash: string; type: string; bytes: number } | undefined {
  const photo = vcard.getChild('PHOTO', NS.VCARD);
  const base64 = photo?.getChild('BINVAL', NS.VCARD)?.text().replace(/\s+/g, '');
  if (!photo || !base64 || base64.length % 4 !== 0 || !BASE64.test(base64)) return undefined;
  const image = Buffer.from(base64, 'base64');
  if (image.length === 0) return undefined;
  return { base64, hash: createHash('sha1').update(image).digest('hex'), type: photo.getChildText('TYPE', NS.VCARD) ?? 'image/png', bytes: image.length };
}

export class AvatarConversion {
  /** Per session: the vCards it set, by IQ id, until the result is written. */
  private readonly pending = new WeakMap<Session, Map<string, Element>>();

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    private readonly pep: PepService,
  ) {}

  start(): void {
    this.pep.onNode(NS_AVATAR_METADATA, async (owner, change) => {
      if (change.kind === 'publish' && change.payload) await this.metadataPublished(owner, change.payload);
    });
    // XEP-0398 §3.2 (vCard to PEP): a vCard set by the user for their own account...
    this.server.hookOutbound(
      'iq',
      ({ stanza, session, to }) => {
        const id = stanza.attrs.id;
        if (!session || stanza.attrs.type !== 'set' || id === undefined || (to !== undefined && !to.equals(session.jid.bare))) return false;
        const vcard = stanza.getChild('vCard', NS.VCARD);
        if (!vcard) return false;
        let sets = this.pending.get(session);
        if (!sets) this.pending.set(session, (sets = new Map()));
        if (sets.size >= MAX_PENDING_SETS) return false;
        sets.set(id, vcard);
        return false;
      },
      Priority.DEFAULT,
    );
    // ...converted when its result goes back (an error: nothing was stored, nothing converted).
    this.server.observeWritten((session, stanza) => {
      if (stanza.name !== 'iq') return;
      const sets = this.pending.get(session);
      const id = stanza.attrs.id;
      if (!sets || id === undefined) return;
      const vcard = sets.get(id);
      if (!vcard) return;
      sets.delete(id);
      if (stanza.attrs.type === 'result') this.server.track(this.vcardStored(session.jid, vcard), 'XEP-0398 vCard to PEP');
    });
  }

  /** XEP-0398 §3.2: the photo published to the data node (id: its SHA-1), then the metadata node. */
  private async vcardStored(publisher: Jid, vcard: Element): Promise<void> {
    const owner = publisher.bare;
    const photo = vcardPhoto(vcard);
    if (!photo) return;
    // Already the PEP avatar (this vCard may itself come from a PEP avatar): nothing to do.
    const metadata = await this.pep.ownItems(owner, NS_AVATAR_METADATA);
    if (metadata[metadata.length - 1]?.id === photo.hash) return;
    try {
      await this.pep.publish(owner, publisher, NS_AVATAR_DATA, photo.hash, x('data', NS_AVATAR_DATA, {}, photo.base64), undefined);
      const info = x('info', NS_AVATAR_METADATA, { id: photo.hash, bytes: String(photo.bytes), type: photo.type });
      await this.pep.publish(owner, publisher, NS_AVATAR_METADATA, photo.hash, x('metadata', NS_AVATAR_METADATA, {}, info), undefined);
    } catch (err) {
      // A photo over the item size limit, a full account: the vCard is kept, the PEP avatar is not made.
      this.server.log.info({ event: 'vcard-avatar-not-published', user: owner.toString(), err: err instanceof Error ? err.message : String(err) }, 'a vCard photo could not be published as a PEP avatar');
    }
  }

  /**
   * XEP-0398 §3.1: the info without an external URL names an item of the data node; its image
   * (checked against the SHA-1 the id says it has) goes into the vCard. An empty <metadata/>
   * (XEP-0084 §3.5: avatar publishing disabled) removes the photo.
   */
  private async metadataPublished(owner: Jid, metadata: Element): Promise<void> {
    if (metadata.name !== 'metadata' || metadata.xmlns !== NS_AVATAR_METADATA) return;
    const infos = metadata.getChildren('info', NS_AVATAR_METADATA);
    let photo: { type: string; base64: string; hash: string } | undefined;
    if (infos.length > 0) {
      const info = infos.find((i) => i.attrs.url === undefined && i.attrs.id !== undefined);
      if (!info) return;
      const id = info.attrs.id!;
      const [item] = (await this.pep.ownItems(owner, NS_AVATAR_DATA)).filter((i) => i.id === id);
      if (!item) return;
      const data = loadXml(item.payload);
      if (data.name !== 'data' || data.xmlns !== NS_AVATAR_DATA) return;
      const base64 = data.text().replace(/\s+/g, '');
      const hash = createHash('sha1').update(Buffer.from(base64, 'base64')).digest('hex');
      // §3.1: the hash of the image should match the id.
      if (hash !== id.toLowerCase()) {
        this.server.log.info({ event: 'avatar-hash-mismatch', user: owner.toString(), id }, 'a PEP avatar does not match its id; the vCard is left alone');
        return;
      }
      photo = { type: info.attrs.type ?? 'image/png', base64, hash };
    }
    const stored = await this.storage.vcard.get(owner.domain, owner.local);
    // The vCard already shows this image (it may be where this avatar came from).
    if (stored !== undefined && stored.avatarHash === photo?.hash && photo !== undefined) return;
    const vcard = stored ? loadXml(stored.xml) : x('vCard', NS.VCARD);
    vcard.removeChildren('PHOTO', NS.VCARD);
    if (photo) vcard.append(x('PHOTO', NS.VCARD, {}, x('TYPE', NS.VCARD, {}, photo.type), x('BINVAL', NS.VCARD, {}, photo.base64)));
    const xml = storeXml(vcard);
    const max = this.server.config.vcard.max_bytes;
    if (Buffer.byteLength(xml, 'utf8') > max) {
      this.server.log.info({ event: 'avatar-too-big-for-vcard', user: owner.toString() }, `the PEP avatar does not fit in a vCard of ${max} bytes; the vCard is left alone`);
      return;
    }
    await this.storage.vcard.set(owner.domain, owner.local, photo ? { xml, avatarHash: photo.hash } : { xml });
    this.server.caches.invalidate(VCARD_HASH_CACHE, owner.bareString());
  }
}
