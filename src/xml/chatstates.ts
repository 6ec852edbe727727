// XEP-0085 Chat State Notifications: recognising a message that carries nothing but a
// chat state, which several modules treat as ephemeral (offline storage does not keep it,
// XEP-0160; client state indication holds it while the client is inactive, XEP-0352).
import type { Element } from './element.js';

/** XEP-0085 §11 (XMPP Registrar). */
export const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';

/**
 * XEP-0085 "Syntax of Notifications" rule 3: a standalone notification holds the chat state
 * element and at most a <thread/>.
 */
export function isStandaloneChatState(message: Element): boolean {
  const children = message.getChildren();
  const states = children.filter((c) => c.xmlns === NS_CHATSTATES);
  return states.length > 0 && children.every((c) => c.xmlns === NS_CHATSTATES || (c.name === 'thread' && c.xmlns === message.xmlns));
}
