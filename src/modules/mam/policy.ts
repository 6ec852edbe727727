// Which messages a user archive keeps (XEP-0313 §7.1.1, XEP-0334), the XEP-0359
// stanza-id the live message carries, and the XEP-0441 preferences.
import { x, type Element } from '../../xml/element.js';
import { Jid, JidError } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { NS_MAM } from './query.js';
import type { PrefDefault, Prefs } from './store.js';

/** XEP-0359 */
export const NS_SID = 'urn:xmpp:sid:0';
/** XEP-0334 */
export const NS_HINTS = 'urn:xmpp:hints';

/**
 * Payloads that carry a conversation's content without a readable body: end-to-end encrypted
 * messages (XEP-0384 OMEMO, both namespaces; XEP-0373 OpenPGP; XEP-0027) and direct
 * invitations (XEP-0249). XEP-0313 §7.1.1 lets a server keep "additional" messages; these are
 * what a user would miss in their history.
 */
const CONTENT_PAYLOADS: ReadonlySet<string> = new Set([
  'eu.siacs.conversations.axolotl',
  'urn:xmpp:omemo:2',
  'urn:xmpp:openpgp:0',
  'jabber:x:encrypted',
  'jabber:x:conference',
]);

/** Most preference lists a user may keep (each list). */
export const MAX_PREF_JIDS = 1000;

/**
 * XEP-0313 §7.1.1: a user archive keeps messages of type 'normal' or 'chat' with a <body/>
 * (here also the content payloads above), never errors, headlines or groupchat messages (a
 * room keeps its own archive), nor what XEP-0334 §4.1/§4.2 asks not to store. A <store/>
 * hint (XEP-0334 §4.4) keeps a chat or normal message that would otherwise not be, such as a
 * body-less receipt the client wants in its history; standalone chat states never are.
 */
export function archivable(message: Element): boolean {
  const type = message.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  let content = false;
  let storeHint = false;
  for (const child of message.children) {
    if (typeof child === 'string') continue;
    if (child.xmlns === NS_HINTS) {
      if (child.name === 'no-store' || child.name === 'no-permanent-store') return false;
      if (child.name === 'store') storeHint = true;
    } else if (child.name === 'body' && child.xmlns === message.xmlns) {
      content = true;
    } else if (CONTENT_PAYLOADS.has(child.xmlns)) {
      content = true;
    }
  }
  return content || storeHint;
}

/** Whether a 'by' attribute names this bare JID (compared in canonical form). */
function namesJid(by: string | undefined, bare: Jid): boolean {
  if (by === undefined) return false;
  try {
    return Jid.parse(by).equals(bare);
  } catch (err) {
    if (err instanceof JidError) return false;
    throw err;
  }
}

/**
 * XEP-0359 §4 rule 2: a <stanza-id/> whose 'by' is the archive this server would name must
 * go, whether or not one is added: only the server assigns ids in its own archives.
 * Returns whether anything was removed.
 */
export function stripOwnStanzaIds(message: Element, archive: Jid): boolean {
  const before = message.children.length;
  for (let i = message.children.length - 1; i >= 0; i--) {
    const c = message.children[i]!;
    if (typeof c !== 'string' && c.name === 'stanza-id' && c.xmlns === NS_SID && namesJid(c.attrs.by, archive)) message.children.splice(i, 1);
  }
  return message.children.length !== before;
}

/**
 * The <stanza-id/>s of a message naming an archive of this server other than `reader`'s: ids
 * `reader` may not see (XEP-0313 §3.5). They appear on a bounce: an error reply to a message
 * its recipient's server archived and then refused carries the payload back to the sender.
 */
export function foreignStanzaIds(message: Element, reader: Jid, isLocalDomain: (domain: string) => boolean): { el: Element; archive: Jid; id: string }[] {
  const out: { el: Element; archive: Jid; id: string }[] = [];
  for (const c of message.children) {
    if (typeof c === 'string' || c.name !== 'stanza-id' || c.xmlns !== NS_SID || c.attrs.id === undefined) continue;
    let by: Jid;
    try {
      by = Jid.parse(c.attrs.by ?? '');
    } catch (err) {
      if (err instanceof JidError) continue;
      throw err;
    }
    if (by.local !== '' && by.resource === '' && isLocalDomain(by.domain) && !by.equals(reader.bare)) out.push({ el: c, archive: by, id: c.attrs.id });
  }
  return out;
}

/** XEP-0313 §3.5 / XEP-0359 §3: the archive id the live message carries. */
export function stanzaId(archive: Jid, id: string): Element {
  return x('stanza-id', NS_SID, { by: archive.bareString(), id });
}

// --- XEP-0441 preferences ---------------------------------------------------------------

/** XEP-0441 §2.1.4: a listed bare JID matches every resource of the target; a full JID only itself. */
export function listed(list: readonly string[], target: Jid): boolean {
  const bare = target.bareString();
  const full = target.toString();
  return list.some((j) => j === bare || j === full);
}

/**
 * XEP-0441 §2.1: whether a message with `peer` is archived: 'never' wins over 'always' (the
 * user asked not to keep it); otherwise the default, where 'roster' asks `inRoster`.
 */
export async function allowedByPrefs(prefs: Prefs, fallback: PrefDefault, peer: Jid, inRoster: () => Promise<boolean>): Promise<boolean> {
  if (listed(prefs.never, peer)) return false;
  if (listed(prefs.always, peer)) return true;
  const d = prefs.default ?? fallback;
  if (d === 'always') return true;
  if (d === 'never') return false;
  return inRoster();
}

/** XEP-0441 §2.1: the <prefs/> element of a result. */
export function prefsElement(prefs: Prefs, fallback: PrefDefault): Element {
  const list = (name: string, jids: readonly string[]) => x(name, NS_MAM, {}, ...jids.map((j) => x('jid', NS_MAM, {}, j)));
  return x('prefs', NS_MAM, { default: prefs.default ?? fallback }, list('always', prefs.always), list('never', prefs.never));
}

function jidList(el: Element | undefined): string[] {
  if (!el) return [];
  const out = new Set<string>();
  for (const j of el.getChildren('jid', NS_MAM)) {
    try {
      out.add(Jid.parse(j.text().trim()).toString());
    } catch (err) {
      if (err instanceof JidError) throw new StanzaError('jid-malformed', `not a JID: ${j.text()}`);
      throw err;
    }
  }
  if (out.size > MAX_PREF_JIDS) throw new StanzaError('policy-violation', `at most ${MAX_PREF_JIDS} JIDs in a list`);
  return [...out];
}

/** XEP-0441 §2.1: a <prefs/> to set. A JID in both lists is kept in 'never' only. */
export function parsePrefs(el: Element): Prefs {
  const d = el.attrs.default;
  if (d !== 'always' && d !== 'never' && d !== 'roster') throw new StanzaError('bad-request', "default must be 'always', 'never' or 'roster'");
  const never = jidList(el.getChild('never', NS_MAM));
  const always = jidList(el.getChild('always', NS_MAM)).filter((j) => !never.includes(j));
  return { default: d, always, never };
}
