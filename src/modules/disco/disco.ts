// XEP-0030 Service Discovery for the server's domain and for accounts.
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StanzaError } from '../../core/errors.js';
import type { Jid } from '../../jid/jid.js';
import type { Storage } from '../../storage/types.js';
import { SERVER_NAME } from '../../version.js';
import type { Module } from '../api.js';
import type { AccountItemsProvider, DiscoApi, DiscoIdentity } from './api.js';

export type { DiscoApi } from './api.js';

/**
 * Whether `from` may discover `account`: the account itself, or a contact that receives its
 * presence (subscription from or both, from the account's side; XEP-0163 §6.2, RFC 6121 §2.1.2.5).
 * Anyone else gets the same answer as for a non-existent account, so disco cannot probe who has one.
 */
async function mayDiscover(storage: Storage, from: Jid, account: Jid): Promise<boolean> {
  if (from.bare.equals(account)) return true;
  const item = await storage.roster.getItem(account.domain, account.local, from.bareString());
  return item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
}

export const discoModule: Module = {
  name: 'disco',
  start({ server, storage }) {
    const identities: DiscoIdentity[] = [{ category: 'account', type: 'registered' }];
    const itemProviders: AccountItemsProvider[] = [];
    server.addFeature('server', NS.DISCO_INFO);
    server.addFeature('server', NS.DISCO_ITEMS);
    server.addFeature('account', NS.DISCO_INFO);
    server.addFeature('account', NS.DISCO_ITEMS);

    // XEP-0030 §3.1: identity and features; nodes we do not know are item-not-found (§3.2 / §7).
    server.handleIq('server', NS.DISCO_INFO, 'get', ({ payload }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return x(
        'query',
        NS.DISCO_INFO,
        {},
        x('identity', NS.DISCO_INFO, { category: 'server', type: 'im', name: SERVER_NAME }),
        ...[...server.features('server')].sort().map((v) => x('feature', NS.DISCO_INFO, { var: v })),
      );
    });
    // XEP-0030 §4: the services under this host (group chat, upload, components).
    server.handleIq('server', NS.DISCO_ITEMS, 'get', ({ payload, to }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return x('query', NS.DISCO_ITEMS, {}, ...server.services(to.domain).map((s) => x('item', NS.DISCO_ITEMS, { jid: s.domain, name: s.name })));
    });

    // XEP-0030 §3.1 / RFC 6121: the server answers for an account: identity account/registered
    // (and those other modules add, such as pubsub/pep). Only the account itself and its
    // subscribed contacts learn about it (mayDiscover).
    server.handleIq('account', NS.DISCO_INFO, 'get', async ({ from, to, payload }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      if (!(await mayDiscover(storage, from, to))) throw new StanzaError('service-unavailable');
      return x(
        'query',
        NS.DISCO_INFO,
        {},
        ...identities.map((i) => x('identity', NS.DISCO_INFO, { category: i.category, type: i.type, name: i.name })),
        ...[...server.features('account')].sort().map((v) => x('feature', NS.DISCO_INFO, { var: v })),
      );
    });
    server.handleIq('account', NS.DISCO_ITEMS, 'get', async ({ from, to, payload }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      if (!(await mayDiscover(storage, from, to))) throw new StanzaError('service-unavailable');
      const items: Element[] = [];
      for (const provider of itemProviders) items.push(...(await provider(from, to)));
      return x('query', NS.DISCO_ITEMS, {}, ...items);
    });

    const api: DiscoApi = {
      addAccountIdentity: (identity) => void identities.push(identity),
      addAccountItems: (provider) => void itemProviders.push(provider),
    };
    return { api };
  },
};
