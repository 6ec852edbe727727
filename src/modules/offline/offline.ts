// XEP-0160 offline messages: a chat or normal message for an account with no
// available resource (RFC 6121 §8.5.2.2.1) is stored with a XEP-0203 delay and
// delivered, in order, when the user next sends non-negative initial presence.
import { x, type Element } from '../../xml/element.js';
import { Jid } from '../../jid/jid.js';
import type { Session } from '../../router/router.js';
import { blocklistKeysFor } from '../../storage/types.js';
import type { Module, ServerApi } from '../api.js';
import { loadXml, storeXml } from '../../xml/stored.js';

/** XEP-0160 §4 */
export const MSGOFFLINE_FEATURE = 'msgoffline';
/** XEP-0203 */
export const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0085 */
export const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
/** XEP-0334 */
export const NS_HINTS = 'urn:xmpp:hints';

/**
 * XEP-0085 "Syntax of Notifications" rule 3: a standalone notification holds the chat state
 * element and at most a <thread/>; "Server Handling of Notifications": SHOULD NOT be stored offline.
 */
export function isStandaloneChatState(message: Element): boolean {
  const children = message.getChildren();
  const states = children.filter((c) => c.xmlns === NS_CHATSTATES);
  return states.length > 0 && children.every((c) => c.xmlns === NS_CHATSTATES || (c.name === 'thread' && c.xmlns === message.xmlns));
}

export class OfflineModule {
  constructor(private readonly server: ServerApi) {}

  register(): void {
    this.server.addFeature('server', MSGOFFLINE_FEATURE);
    this.server.setOfflineHandler((message) => this.store(message));
    this.server.on('initial-presence', (session) => this.deliver(session));
    // XEP-0160 §2 step 5: "next sends non-negative available presence" also covers a resource
    // that went from a negative priority to a non-negative one.
    this.server.hookPresence((stanza, from) => {
      if (from && from.available && from.priority < 0 && stanza.attrs.type === undefined && stanza.attrs.to === undefined) {
        const p = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
        // After this presence is processed (the presence module records the new priority).
        if (Number.isFinite(p) && p >= 0 && p <= 127) setImmediate(() => void this.deliver(from).catch((err: unknown) => this.logDeliveryError(err)));
      }
      return false;
    });
  }

  private logDeliveryError(err: unknown): void {
    this.server.log.error({ err }, 'delivering offline messages failed');
  }

  /** Returns false when the message is not stored, so that the dispatcher bounces it (XEP-0160 §2). */
  async store(message: Element): Promise<boolean> {
    const toAttr = message.attrs.to;
    if (toAttr === undefined) return false;
    const user = Jid.parse(toAttr).bare;
    // Nothing to keep: the notification is stale by the time anyone reads it. Dropped, not bounced,
    // so the sender's client does not report a failed delivery for a typing indicator.
    if (isStandaloneChatState(message)) return true;
    // XEP-0334 'No store': the hint forbids temporary storage too; the sender then learns it was not delivered.
    if (message.getChild('no-store', NS_HINTS)) return false;

    const stored = message.clone();
    // XEP-0160 §2 / XEP-0203 §3: the delay says who stored it and when.
    stored.append(x('delay', NS_DELAY, { from: user.domain, stamp: new Date().toISOString() }, 'Offline Storage'));
    let ok: boolean;
    try {
      ok = await this.server.storage.offline.push(user.domain, user.local, storeXml(stored), this.server.config.offline.max_per_user);
    } catch (err) {
      // E.g. the account was removed meanwhile: a bounce is the honest answer.
      this.server.log.error({ err, user: user.toString() }, 'storing an offline message failed');
      return false;
    }
    if (!ok) return false;
    // A resource may have become available between the dispatcher's check and the store; it
    // would otherwise wait for the next login. `take` is atomic, so this never duplicates.
    const ready = this.server.router.getSessions(user.toString()).filter((s) => s.available && s.priority >= 0);
    let best: Session | undefined;
    for (const s of ready) if (!best || s.priority > best.priority) best = s;
    if (best) await this.deliver(best);
    return true;
  }

  /** Sends every stored message to the session, oldest first, removing them from storage. */
  async deliver(session: Session): Promise<void> {
    // XEP-0160 §2 step 5: only non-negative presence; negative-priority resources never get
    // messages for the bare JID (RFC 6121 §8.5.2.1.1).
    if (!session.available || session.priority < 0) return;
    if (this.server.router.getSession(session.jid.toString()) !== session) return;
    const user = session.jid.bare;
    const messages = await this.server.storage.offline.take(user.domain, user.local);
    if (messages.length === 0) return;
    // XEP-0191 §3.3: once a JID is blocked nothing from it is delivered, stored messages included.
    const blocked = new Set(await this.server.storage.blocking.list(user.domain, user.local));
    for (const m of messages) {
      let stanza: Element;
      try {
        stanza = loadXml(m.stanza);
      } catch (err) {
        this.server.log.error({ err, user: user.toString(), id: m.id }, 'dropping an unreadable offline message');
        continue;
      }
      const from = stanza.attrs.from;
      if (from !== undefined && blocked.size > 0 && blocklistKeysFor(from).some((k) => blocked.has(k))) continue;
      session.send(stanza);
    }
  }
}

export const offlineModule: Module = {
  name: 'offline',
  register(server) {
    new OfflineModule(server).register();
  },
};
