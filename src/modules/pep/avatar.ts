// XEP-0398: a PEP avatar (XEP-0084) published by the user becomes the PHOTO of the
// user's vCard, so that XEP-0153 hashes in presence (stamped by the vcard module)
// and vCard readers (group chats) show the same image.
import { createHash } from 'node:crypto';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import type { Jid } from '../../jid/jid.js';
import type { ServerApi } from '../../core/api.js';
import type { Storage } from '../../storage/types.js';
import { NS_AVATAR_DATA, NS_AVATAR_METADATA } from './ns.js';
import type { PepService } from './pubsub.js';

/** The vcard module's cache of XEP-0153 hashes (src/modules/vcard), dropped for a user whose photo changed here. */
const VCARD_HASH_CACHE = 'vcard-avatar-hash';

export class AvatarConversion {
  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    private readonly pep: PepService,
  ) {}

  start(): void {
    this.pep.onNode(NS_AVATAR_METADATA, async (owner, change) => {
      if (change.kind === 'publish' && change.payload) await this.metadataPublished(owner, change.payload);
    });
  }

  /**
   * XEP-0398 §3.1: the info without an external URL names an item of the data node; its image
   * (checked against the SHA-1 the id says it has) goes into the vCard. An empty <metadata/>
   * (XEP-0084 §4.4: no avatar) removes the photo.
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
