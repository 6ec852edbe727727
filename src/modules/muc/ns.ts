// Namespaces of multi-user chat (XEP-0045 §19.1) and of the extensions rooms speak.
export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
export const NS_MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
/** XEP-0045 §15.5.3: the FORM_TYPE of the room configuration form. */
export const NS_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
/** XEP-0045 §15.5.4: the FORM_TYPE of the extended room information (disco#info). */
export const NS_ROOMINFO = 'http://jabber.org/protocol/muc#roominfo';
/** XEP-0004 */
export const NS_DATA = 'jabber:x:data';
/** XEP-0203 */
export const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0359 */
export const NS_SID = 'urn:xmpp:sid:0';
/** XEP-0421 */
export const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';
/** XEP-0425 */
export const NS_MODERATE = 'urn:xmpp:message-moderate:1';
/** XEP-0424 */
export const NS_RETRACT = 'urn:xmpp:message-retract:1';
/** XEP-0249 */
export const NS_CONFERENCE = 'jabber:x:conference';
/** XEP-0410: the feature a service that answers self-pings advertises. */
export const NS_SELF_PING = 'http://jabber.org/protocol/muc#self-ping-optimization';
/** XEP-0199 */
export const NS_PING = 'urn:xmpp:ping';
/** XEP-0313, for the room archive's feature (the query itself comes with the archive). */
export const NS_MAM = 'urn:xmpp:mam:2';
/** XEP-0425 version 0 (with XEP-0422 fastening), still what many clients send. */
export const NS_MODERATE_0 = 'urn:xmpp:message-moderate:0';
export const NS_RETRACT_0 = 'urn:xmpp:message-retract:0';
export const NS_FASTEN = 'urn:xmpp:fasten:0';
/** XEP-0045 §15.5.5: the FORM_TYPE of voice requests. */
export const NS_MUC_REQUEST = 'http://jabber.org/protocol/muc#request';
