// What a stanza to an inactive client is worth (XEP-0352 §3.2 leaves the choice to the
// server; this follows the common practice of Prosody's mod_csi_simple): whether it may
// wait until the client is active again, and if so whether only the latest of its kind
// from the same sender matters.
import type { Element } from '../../xml/element.js';
import { isStandaloneChatState } from '../../xml/chatstates.js';

/**
 * - 'pass': goes out at once, without releasing what is held for others: what the client
 *   itself asked for or must answer (IQs, its own presence echo, errors to its presence).
 * - 'urgent': goes out at once, after everything held (so the client sees stanzas in the
 *   order they came): messages with content, subscription requests, failures of what the
 *   user sent.
 * - 'presence': held; only the latest presence of each sender (full JID) is kept.
 * - 'chatstate': held; only the latest standalone chat state of each sender is kept.
 * - 'hold': held, in order (receipts, markers, PEP notifications, other content-less messages).
 */
export type Verdict = 'pass' | 'urgent' | 'presence' | 'chatstate' | 'hold';

const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

/**
 * Payloads that make a message worth waking the client for even without a body: content we
 * cannot read (XEP-0380 EME, XEP-0384 OMEMO, XEP-0373 OpenPGP, XEP-0027), invitations
 * (XEP-0249) and calls ringing (XEP-0353 Jingle Message Initiation).
 */
const URGENT_PAYLOADS: ReadonlySet<string> = new Set([
  'urn:xmpp:eme:0',
  'eu.siacs.conversations.axolotl',
  'urn:xmpp:omemo:2',
  'urn:xmpp:openpgp:0',
  'jabber:x:encrypted',
  'jabber:x:conference',
  'urn:xmpp:jingle-message:0',
  'urn:xmpp:jingle-message:1',
]);

/** What to do with `stanza` for an inactive client whose full JID is `own`. */
export function classify(stanza: Element, own: string): Verdict {
  switch (stanza.name) {
    case 'presence':
      return classifyPresence(stanza, own);
    case 'message':
      return classifyMessage(stanza);
    default:
      // RFC 6120 §8.2.3: an IQ request must be answered, and a result or an error is what the
      // client asked for. Neither releases anything: no held stanza is their context.
      return 'pass';
  }
}

function classifyPresence(stanza: Element, own: string): Verdict {
  const type = stanza.attrs.type;
  if (type === undefined || type === 'unavailable') {
    // RFC 6121 §4.2.2 / §4.4.2: the server echoes the user's presence to the sending
    // resource: the client's own action, and how it knows its presence went out.
    if (stanza.attrs.from === own) return 'pass';
    // XEP-0045 §7.1 / §7.2.2: the room's presence for the user's own occupant (status 110) ends
    // a join the client asked for; the occupants held before it go first.
    if (isMucSelfPresence(stanza)) return 'urgent';
    // XEP-0352 §3.2: presence updates can wait until the client is active again, and
    // only the latest of each contact matters then.
    return 'presence';
  }
  // RFC 6121 §3: a subscription request waits for the user's decision, and the other
  // subscription states change the roster: worth waking the client for (Prosody agrees).
  if (type === 'subscribe' || type === 'subscribed' || type === 'unsubscribe' || type === 'unsubscribed') return 'urgent';
  // An error answers presence the client sent (RFC 6120 §8.3); probes never reach clients.
  return 'pass';
}

function isMucSelfPresence(stanza: Element): boolean {
  const x = stanza.getChild('x', NS_MUC_USER);
  return x !== undefined && x.getChildren('status', NS_MUC_USER).some((s) => s.attrs.code === '110');
}

function classifyMessage(stanza: Element): Verdict {
  // RFC 6120 §8.3: a message the user sent could not be delivered: the client should know now.
  if (stanza.attrs.type === 'error') return 'urgent';
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    // XEP-0313 §4.2: archive results come because the client queried; holding them would let
    // the IQ result that ends the query overtake them.
    if (child.name === 'result' && child.xmlns.startsWith('urn:xmpp:mam:')) return 'pass';
  }
  // XEP-0280 §7/§8: a carbon copy is worth what the message it carries is worth.
  const carbon = stanza.getChild('received', NS_CARBONS) ?? stanza.getChild('sent', NS_CARBONS);
  if (carbon !== undefined) {
    const inner = carbon.getChild('forwarded', NS_FORWARD)?.getChild('message', stanza.xmlns);
    return inner !== undefined && hasContent(inner) ? 'urgent' : 'hold';
  }
  if (hasContent(stanza)) return 'urgent';
  // XEP-0352 §3.2 names standalone chat states (XEP-0085) as what an inactive client does not
  // need at once; a newer state of the same sender replaces the older one (typing, then paused).
  if (isStandaloneChatState(stanza)) return 'chatstate';
  // Receipts (XEP-0184), markers (XEP-0333), PEP notifications (XEP-0163, §3.2 again) and
  // anything else without content: they wait, in order.
  return 'hold';
}

/** What a user reads: a body, a subject (a room's subject ends a join, XEP-0045 §7.2.15), or a payload in URGENT_PAYLOADS. */
function hasContent(message: Element): boolean {
  for (const child of message.children) {
    if (typeof child === 'string') continue;
    if (child.xmlns === message.xmlns && (child.name === 'body' || child.name === 'subject')) return true;
    if (URGENT_PAYLOADS.has(child.xmlns)) return true;
    // XEP-0045 §7.8.2: a mediated invitation.
    if (child.name === 'x' && child.xmlns === NS_MUC_USER && child.getChild('invite', NS_MUC_USER) !== undefined) return true;
  }
  return false;
}
