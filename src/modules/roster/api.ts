// What the roster module offers other modules (ModuleContext.use('roster')).
import type { Jid } from '../../jid/jid.js';
import type { RosterItem } from '../../storage/types.js';

export type RosterChange = RosterItem | { jid: string; subscription: 'remove' };

/** Runs when the user removes an item (RFC 6121 §2.5.2: the subscriptions must be cancelled). */
export type RemovalHook = (user: Jid, removed: RosterItem) => Promise<void>;

export interface RosterApi {
  /** RFC 6121 §2.1.6: a roster push of `change` at `version` to every interested resource of `user`. */
  push(user: Jid, change: RosterChange, version: string): void;
  onItemRemoved(hook: RemovalHook): void;
  /** An item that only records an inbound request the user has not answered: not part of the visible roster. */
  isPendingOnly(item: RosterItem): boolean;
}
