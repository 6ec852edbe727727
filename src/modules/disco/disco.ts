// XEP-0030 Service Discovery for the server's domain and for accounts.
import { x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StanzaError } from '../../core/errors.js';
import { SERVER_NAME } from '../../version.js';
import type { Module } from '../api.js';

export const discoModule: Module = {
  name: 'disco',
  start({ server }) {
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

    // XEP-0030 §3.1 / RFC 6121: the server answers for an account: identity account/registered.
    // Only the account itself (or, later, its subscribers) learns about it; others get the same
    // answer as for a non-existent account, so disco cannot probe who has an account.
    server.handleIq('account', NS.DISCO_INFO, 'get', ({ from, to, payload }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      if (!from.bare.equals(to)) throw new StanzaError('service-unavailable');
      return x(
        'query',
        NS.DISCO_INFO,
        {},
        x('identity', NS.DISCO_INFO, { category: 'account', type: 'registered' }),
        ...[...server.features('account')].sort().map((v) => x('feature', NS.DISCO_INFO, { var: v })),
      );
    });
    server.handleIq('account', NS.DISCO_ITEMS, 'get', ({ from, to, payload }) => {
      if (payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      if (!from.bare.equals(to)) throw new StanzaError('service-unavailable');
      return x('query', NS.DISCO_ITEMS);
    });
  },
};
