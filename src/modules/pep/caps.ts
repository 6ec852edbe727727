// XEP-0115 Entity Capabilities: the verification string of a disco#info answer
// (§5.1), its checks (§5.4) and a bounded cache of verified answers by hash, so
// that one disco#info query serves every resource that announces the same 'ver'.
import { createHash } from 'node:crypto';
import type { Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { NS_CAPS, NS_DATA } from './ns.js';

/** What a <c/> in presence says (XEP-0115 §4). */
export interface CapsAnnouncement {
  hash: string;
  node: string;
  ver: string;
}

/** The <c/> of a presence, when it carries the attributes of the current protocol (§4: hash, node, ver). */
export function capsOf(presence: Element | undefined): CapsAnnouncement | undefined {
  const c = presence?.getChild('c', NS_CAPS);
  const { hash, node, ver } = c?.attrs ?? {};
  // Legacy caps (no 'hash', the §13 legacy format) cannot be verified: ignored.
  if (hash === undefined || node === undefined || ver === undefined || ver === '') return undefined;
  return { hash, node, ver };
}

/**
 * XEP-0115 §5.1 (with the §5.4 checks): the verification string of a disco#info <query/>, or
 * undefined when the answer is ill-formed: two identities alike in category, type, lang and name,
 * a feature twice, two forms with the same FORM_TYPE, or a FORM_TYPE with different values.
 */
export function verificationString(query: Element): string | undefined {
  const identities = query.getChildren('identity', NS.DISCO_INFO).map(
    (i) => `${i.attrs.category ?? ''}/${i.attrs.type ?? ''}/${i.attrs['xml:lang'] ?? ''}/${i.attrs.name ?? ''}`,
  );
  if (new Set(identities).size !== identities.length) return undefined;
  const features = query.getChildren('feature', NS.DISCO_INFO).map((f) => f.attrs.var ?? '');
  if (new Set(features).size !== features.length) return undefined;
  const forms: { type: string; text: string }[] = [];
  for (const form of query.getChildren('x', NS_DATA)) {
    const fields = form.getChildren('field', NS_DATA);
    const typeField = fields.find((f) => f.attrs.var === 'FORM_TYPE');
    // §5.4 3.6: a form without FORM_TYPE, or whose FORM_TYPE is not hidden, is ignored.
    if (typeField === undefined || typeField.attrs.type !== 'hidden') continue;
    // §5.4 3.5: a FORM_TYPE with different values makes the answer ill-formed.
    const typeValues = new Set(typeField.getChildren('value', NS_DATA).map((v) => v.text()));
    if (typeValues.size > 1) return undefined;
    const type = [...typeValues][0] ?? '';
    let text = `${type}<`;
    const others = fields.filter((f) => f.attrs.var !== 'FORM_TYPE').sort((a, b) => cmp(a.attrs.var ?? '', b.attrs.var ?? ''));
    for (const f of others) {
      text += `${f.attrs.var ?? ''}<`;
      for (const v of f.getChildren('value', NS_DATA).map((e) => e.text()).sort(cmp)) text += `${v}<`;
    }
    forms.push({ type, text });
  }
  if (new Set(forms.map((f) => f.type)).size !== forms.length) return undefined;
  let s = '';
  for (const i of identities.sort(cmp)) s += `${i}<`;
  for (const f of features.sort(cmp)) s += `${f}<`;
  for (const f of forms.sort((a, b) => cmp(a.type, b.type))) s += f.text;
  return s;
}

/** §5.1 step 1: sorted by "i;octet" collation (RFC 4790 §9.3), which is byte order of the UTF-8. */
function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** §5.1 steps 9-10, for the hash functions this server verifies (sha-1, which §4 requires, and a few more). */
const HASHES: Record<string, string> = { 'sha-1': 'sha1', 'sha-224': 'sha224', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512' };

export function capsHash(hash: string, s: string): string | undefined {
  const algo = HASHES[hash];
  return algo === undefined ? undefined : createHash(algo).update(s, 'utf8').digest('base64');
}

/** §5.4: whether the answer is what `ver` says it is. */
export function verifies(caps: Pick<CapsAnnouncement, 'hash' | 'ver'>, query: Element): boolean {
  const s = verificationString(query);
  return s !== undefined && capsHash(caps.hash, s) === caps.ver;
}

/** The features of verified answers, by 'hash ver'; the least recently used goes first beyond `max`. */
export class CapsCache {
  private readonly entries = new Map<string, ReadonlySet<string>>();

  constructor(private readonly max: number) {}

  get(caps: Pick<CapsAnnouncement, 'hash' | 'ver'>): ReadonlySet<string> | undefined {
    const key = `${caps.hash} ${caps.ver}`;
    const v = this.entries.get(key);
    if (v !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(caps: Pick<CapsAnnouncement, 'hash' | 'ver'>, features: ReadonlySet<string>): void {
    const key = `${caps.hash} ${caps.ver}`;
    this.entries.delete(key);
    this.entries.set(key, features);
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}
