// What the disco module offers other modules (ModuleContext.use('disco')): what an
// account's disco#info and disco#items show besides the account itself (XEP-0163
// §6: a PEP service's identity and nodes on the account's bare JID).
import type { Element } from '../../xml/element.js';
import type { Jid } from '../../jid/jid.js';

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

/**
 * The items of `account` that `requester` may see (XEP-0030 §4), for a disco#items request
 * without a node. Only called for the account itself and its contacts with a presence subscription.
 */
export type AccountItemsProvider = (requester: Jid, account: Jid) => Promise<Element[]> | Element[];

export interface DiscoApi {
  /** Adds an identity to every account's disco#info (e.g. pubsub/pep). */
  addAccountIdentity(identity: DiscoIdentity): void;
  /** Adds a source of items to every account's disco#items. */
  addAccountItems(provider: AccountItemsProvider): void;
}
