// The PEP module: XEP-0163 personal eventing on every account's bare JID, the
// XEP-0115 caps that say which resources want which notifications, and what is
// built on it: XEP-0084 avatars (converted to the vCard, XEP-0398), XEP-0402
// bookmarks with XEP-0048 compatibility, XEP-0223 private nodes, and XEP-0049
// private XML storage. Its data is in its own tables (store.ts).
import { x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Priority } from '../../core/hooks.js';
import type { Module } from '../api.js';
import type { DiscoApi } from '../disco/api.js';
import { AvatarConversion } from './avatar.js';
import { Interest } from './interest.js';
import { FEATURE_AVATAR_CONVERSION, FEATURE_BOOKMARKS_COMPAT, NS_PRIVATE, NS_PUBSUB, NS_PUBSUB_OWNER, PUBSUB_FEATURES } from './ns.js';
import { PrivateStorage } from './private.js';
import { PepService } from './pubsub.js';
import { SqlPepStore } from './store.js';

export const pepModule: Module = {
  name: 'pep',
  depends: ['disco'],
  async start({ server, storage, use }) {
    const cfg = server.config.pep;
    const store = await SqlPepStore.open(storage.sql);
    const interest = new Interest(server, cfg.caps_cache_size, cfg.caps_timeout * 1000);
    const pep = new PepService(server, storage, store, interest);
    const priv = new PrivateStorage(server, store, pep);
    new AvatarConversion(server, storage, pep).start();

    // XEP-0163 §6.1: the account is a pubsub/pep service with the XEP-0060 features it offers.
    const disco = use<DiscoApi>('disco');
    disco.addAccountIdentity({ category: 'pubsub', type: 'pep' });
    // XEP-0163 §6.2: only the nodes the requester may read.
    disco.addAccountItems(async (requester, account) =>
      (await pep.visibleNodes(requester, account)).map((node) => x('item', NS.DISCO_ITEMS, { jid: account.toString(), node })),
    );
    server.addFeature('account', NS_PUBSUB);
    for (const f of PUBSUB_FEATURES) server.addFeature('account', `${NS_PUBSUB}#${f}`);
    server.addFeature('account', NS_PRIVATE);
    server.addFeature('account', FEATURE_BOOKMARKS_COMPAT);
    server.addFeature('account', FEATURE_AVATAR_CONVERSION);

    server.handleIq('account', NS_PUBSUB, 'get', (req) => pep.pubsubGet(req));
    server.handleIq('account', NS_PUBSUB, 'set', (req) => pep.pubsubSet(req));
    server.handleIq('account', NS_PUBSUB_OWNER, 'get', (req) => pep.ownerGet(req));
    server.handleIq('account', NS_PUBSUB_OWNER, 'set', (req) => pep.ownerSet(req));
    server.handleIq('account', NS_PRIVATE, 'get', (req) => priv.get(req));
    server.handleIq('account', NS_PRIVATE, 'set', (req) => priv.set(req));

    // Presence a resource broadcasts: its caps say what it wants (XEP-0163 §4.2); a first available
    // presence, or caps asking for more, gets the last items (§4.3.4). Observed only, before the
    // presence module handles it (HANDLER); nothing here delays the presence.
    server.hookOutbound(
      'presence',
      ({ stanza, session, to }) => {
        if (!session || to !== undefined) return false;
        const type = stanza.attrs.type;
        if (type === 'unavailable') interest.forget(session);
        else if (type === undefined) {
          server.track(
            interest.presence(session, stanza).then((nodes) => pep.sendLastItems(session, nodes)),
            'PEP last items on presence',
          );
        }
        return false;
      },
      Priority.DEFAULT,
    );
    // XEP-0163 §4.3.4: a new subscriber gets the last items. The owner's roster already says so when
    // its 'subscribed' reaches the subscriber (RFC 6121 §3.1.5: the owner's server updates it first).
    server.hookInbound(
      'presence',
      ({ stanza, from, to }) => {
        if (stanza.attrs.type === 'subscribed' && from.local !== '' && server.isLocalDomain(from.domain)) {
          server.track(pep.newSubscriber(from.bare, to.bare), 'PEP last items for a new subscriber');
        }
        return false;
      },
      Priority.DEFAULT,
    );
  },
};
