// XEP-0280 §6: which messages are carbon-copied. A pure function of the stanza,
// the direction it travels relative to the carbons-enabled account, and its
// sender; the module decides the one case that needs memory (error replies).
import type { Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { Jid } from '../../jid/jid.js';

/** XEP-0280 §11.1 */
export const NS_CARBONS = 'urn:xmpp:carbons:2';
/** XEP-0297 */
export const NS_FORWARD = 'urn:xmpp:forward:0';
/** XEP-0334 */
export const NS_HINTS = 'urn:xmpp:hints';
/** XEP-0045 */
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
/** XEP-0249 direct invitation */
export const NS_CONFERENCE = 'jabber:x:conference';

/** XEP-0280 §6.1 "payload elements typically used in IM": XEP-0184, XEP-0085, XEP-0333. */
const IM_PAYLOADS: ReadonlySet<string> = new Set(['urn:xmpp:receipts', 'http://jabber.org/protocol/chatstates', 'urn:xmpp:chat-markers:0']);

/**
 * 'sent': a local client sends it (copies go to the sender's other resources, §8).
 * 'received': it is delivered to a local account (copies go to the recipient's other resources, §7).
 */
export type Direction = 'sent' | 'received';

/**
 * 'copy': eligible. 'if-answering-eligible': an error, eligible when it answers a message that
 * was (§6.1, fourth rule); the caller knows which messages those were. 'no': not eligible.
 */
export type Eligibility = 'copy' | 'if-answering-eligible' | 'no';

export function eligibility(stanza: Element, direction: Direction, from: Jid): Eligibility {
  let body = false;
  let imPayload = false;
  let invitation = false;
  let mucUser = false;
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    const ns = c.xmlns;
    if (ns === NS_CARBONS) {
      // §8: <private/> keeps the message from every carbons-enabled resource, on both sides.
      // A <sent/> or <received/> is already a carbon (or a forged one, §12): never wrapped again.
      if (c.name === 'private' || c.name === 'sent' || c.name === 'received') return 'no';
    } else if (ns === NS_HINTS) {
      // XEP-0334 §4.3: not copied to addresses other than the one it is addressed to.
      if (c.name === 'no-copy') return 'no';
    } else if (ns === NS.CLIENT) {
      if (c.name === 'body') body = true;
    } else if (IM_PAYLOADS.has(ns)) {
      imPayload = true;
    } else if (c.name === 'x') {
      if (ns === NS_CONFERENCE) invitation = true; // §6.1: XEP-0249 invitations are copied
      else if (ns === NS_MUC_USER) {
        mucUser = true;
        if (c.getChild('invite', NS_MUC_USER)) invitation = true; // §6.1: mediated invitations are copied
      }
    }
  }
  const type = stanza.attrs.type ?? 'normal';
  // §6.1: groupchat is never copied (the room sends it to every joined resource).
  if (type === 'groupchat') return 'no';
  // §6.1: a private message from a MUC participant (received from an occupant's full JID) is
  // not copied: the room already sends it to every joined resource. We have no MUC presence
  // tracking, so the muc#user element is what marks it (§6.1 allows either). A private message
  // a local user sends to an occupant is copied like any chat message (§6.1).
  if (direction === 'received' && mucUser && !invitation && from.resource !== '') return 'no';
  if (type === 'error') return 'if-answering-eligible';
  if (type === 'chat') return 'copy';
  if (type === 'normal' && body) return 'copy';
  if (imPayload || invitation) return 'copy';
  return 'no';
}
