// Namespaces of the protocols the PEP module speaks.

/** XEP-0060 §18 */
export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
/** XEP-0060 §17.4.4: the FORM_TYPE of node configuration. */
export const FORM_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
/** XEP-0060 §7.1.5: the FORM_TYPE of publish options. */
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
/** XEP-0004 */
export const NS_DATA = 'jabber:x:data';
/** XEP-0115 */
export const NS_CAPS = 'http://jabber.org/protocol/caps';
/** XEP-0033 (the replyto address on notifications, XEP-0163 §4.3.1). */
export const NS_ADDRESS = 'http://jabber.org/protocol/address';
/** XEP-0203 */
export const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0049 */
export const NS_PRIVATE = 'jabber:iq:private';
/** XEP-0048 */
export const NS_BOOKMARKS_LEGACY = 'storage:bookmarks';
/** XEP-0402 */
export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
export const FEATURE_BOOKMARKS_COMPAT = 'urn:xmpp:bookmarks:1#compat';
/** XEP-0084 */
export const NS_AVATAR_DATA = 'urn:xmpp:avatar:data';
export const NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata';
/** XEP-0398 */
export const FEATURE_AVATAR_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0';

/** XEP-0060 §11: the pubsub features a PEP service offers (advertised as `${NS_PUBSUB}#name`). */
export const PUBSUB_FEATURES = [
  'access-open',
  'access-presence',
  'access-roster',
  'access-whitelist',
  'auto-create',
  'auto-subscribe',
  'config-node',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'filtered-notifications',
  'item-ids',
  'last-published',
  'multi-items',
  'persistent-items',
  'presence-notifications',
  'publish',
  'publish-options',
  'purge-nodes',
  'retract-items',
  'retrieve-items',
];
