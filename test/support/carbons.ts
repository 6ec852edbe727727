// XEP-0280 Message Carbons as an xmpp.js client reads them: whether a message is
// a <sent/> or <received/> copy, and the forwarded message inside (XEP-0297).
import type { XmlElement } from './xmppjs.js';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
export const NS_FORWARD = 'urn:xmpp:forward:0';

export interface Carbon {
  direction: string;
  from: string | undefined;
  to: string | undefined;
  type: string | undefined;
  inner: XmlElement;
}

/** The carbon a message is, if it is one. */
export function carbon(el: XmlElement): Carbon | undefined {
  if (!el.is('message')) return undefined;
  const wrap = el.getChild('sent', NS_CARBONS) ?? el.getChild('received', NS_CARBONS);
  const inner = wrap?.getChild('forwarded', NS_FORWARD)?.getChild('message');
  if (!wrap || !inner) return undefined;
  return { direction: wrap.name, from: el.attrs.from, to: el.attrs.to, type: el.attrs.type, inner };
}
