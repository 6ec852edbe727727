// Who may read a PEP node (XEP-0060 §4.5 access models, XEP-0163 §4.1), decided
// from the owner's roster item for the requester. The owner always may.
import type { RosterItem } from '../../storage/types.js';
import { PubsubError } from './errors.js';
import type { NodeConfig } from './node-config.js';

/** The owner's roster item for the requester, as far as access is concerned (undefined: none). */
export type Relation = { owner: true } | { owner: false; item: Pick<RosterItem, 'subscription' | 'groups'> | undefined };

/** Whether the requester receives the owner's presence: subscription from or both, from the owner's side (RFC 6121 §2.1.2.5). */
export function seesPresence(item: Pick<RosterItem, 'subscription'> | undefined): boolean {
  return item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
}

/**
 * Undefined when the requester may read the node; else the error XEP-0060 §6.5.9 names for
 * retrieving items (§6.1.3 names the same for subscribing):
 * presence: not-authorized + presence-subscription-required (§6.5.9.6);
 * roster: not-authorized + not-in-roster-group (§6.5.9.7);
 * whitelist: not-allowed + closed-node (§6.5.9.8); only the owner is on a PEP whitelist here.
 */
export function accessError(config: Pick<NodeConfig, 'accessModel' | 'rosterGroups'>, rel: Relation): PubsubError | undefined {
  if (rel.owner) return undefined;
  switch (config.accessModel) {
    case 'open':
      return undefined;
    case 'presence':
      return seesPresence(rel.item) ? undefined : new PubsubError('not-authorized', 'presence-subscription-required');
    case 'roster': {
      const item = rel.item;
      // A roster group only counts for a contact that may see the owner's presence.
      const allowed = item !== undefined && seesPresence(item) && item.groups.some((g) => config.rosterGroups.includes(g));
      return allowed ? undefined : new PubsubError('not-authorized', 'not-in-roster-group');
    }
    case 'whitelist':
      return new PubsubError('not-allowed', 'closed-node');
  }
}

export function mayRead(config: Pick<NodeConfig, 'accessModel' | 'rosterGroups'>, rel: Relation): boolean {
  return accessError(config, rel) === undefined;
}
