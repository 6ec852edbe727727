// XEP-0160 offline messages: a chat or normal message for an account with no
// available resource (RFC 6121 §8.5.2.2.1), or one that a session could no longer
// take, is stored with a XEP-0203 delay and delivered, in order, when the user
// next sends non-negative initial presence. A stored message leaves storage only
// once it was handed to an open connection.
import { x, type Element } from '../../xml/element.js';
import type { Session } from '../../core/session.js';
import type { AddressedStanza, ServerApi } from '../../core/api.js';
import { Priority } from '../../core/hooks.js';
import { blocklistKeysFor, type Storage } from '../../storage/types.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import { isStandaloneChatState } from '../../xml/chatstates.js';
import type { Module } from '../api.js';
import { SqlOfflineStore, type OfflineLimits, type OfflineRefusal, type OfflineSender, type OfflineStore } from './store.js';
import { StanzaError } from '../../core/errors.js';
import type { Jid } from '../../jid/jid.js';
import type { OfflineApi } from './api.js';

/** XEP-0160 §4 */
export const MSGOFFLINE_FEATURE = 'msgoffline';
/** XEP-0203 */
export const NS_DELAY = 'urn:xmpp:delay';
/** XEP-0334 */
export const NS_HINTS = 'urn:xmpp:hints';

/** Messages read from storage per round of a delivery. */
const BATCH = 100;

/** Pauses between attempts to store a message while the store is unavailable (ms). */
const STORE_RETRIES = [50, 250, 1000];

const REFUSAL_TEXT: Record<OfflineRefusal, string> = {
  full: 'the offline storage of this user is full',
  'sender-limit': 'too many messages stored for this user from you',
  'strangers-limit': 'the offline storage of this user is full for senders not in their roster',
};

export class OfflineModule {
  /** One delivery at a time per account, so two sessions never both get the same message. */
  private readonly delivering = new Map<string, Promise<void>>();
  /** Accounts with messages stored while a session of theirs was available (it had fallen behind). */
  private readonly waiting = new Set<string>();

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    private readonly store: OfflineStore,
  ) {}

  start(): void {
    this.server.addFeature('server', MSGOFFLINE_FEATURE);
    this.server.hookUndeliverable((ev) => (ev.kind === 'message' ? this.keep(ev) : false), Priority.DEFAULT);
    this.server.on('initial-presence', (session) => this.deliver(session));
    // A session that had fallen behind (its messages were kept here meanwhile) has caught up.
    this.server.on('session-drained', (session) => (this.waiting.has(session.jid.bareString()) ? this.deliver(session) : undefined));
    // XEP-0160 §2 step 5: "next sends non-negative available presence" also covers a resource
    // that went from a negative priority to a non-negative one. Runs before the presence
    // module's handler; the delivery waits for it to record the new priority.
    this.server.hookOutbound(
      'presence',
      ({ stanza, session: from }) => {
        if (from && from.available && from.priority < 0 && stanza.attrs.type === undefined && stanza.attrs.to === undefined) {
          const p = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
          if (Number.isFinite(p) && p >= 0 && p <= 127) setImmediate(() => this.server.track(this.deliver(from), 'delivering offline messages'));
        }
        return false;
      },
      Priority.STAMP,
    );
  }

  /** Keeps a message nobody could take; false when it is not stored, so that the sender gets an error (XEP-0160 §2). */
  private async keep(ev: AddressedStanza): Promise<boolean> {
    const message = ev.stanza;
    const user = ev.to.bare;
    // XEP-0085 "Server Handling of Notifications": a standalone notification is stale by the time
    // anyone reads it, and XEP-0334 §4.2 'no-store' forbids temporary storage too. Both are dropped
    // silently, not bounced: an error would make the sender's client report a failed delivery for
    // a typing indicator (XEP-0160 §2: only messages the server chooses to store matter).
    if (isStandaloneChatState(message) || message.getChild('no-store', NS_HINTS)) return true;

    const stored = message.clone();
    // XEP-0160 §2 / XEP-0203 §3: the delay says who stored it and when; a message this server
    // already stamped (stream management: when it was first sent to a session that then went
    // away) keeps that earlier time.
    if (!message.getChildren().some((c) => c.name === 'delay' && c.xmlns === NS_DELAY && c.attrs.from === user.domain)) {
      stored.append(x('delay', NS_DELAY, { from: user.domain, stamp: new Date().toISOString() }, 'Offline Storage'));
    }
    const sender = ev.from.bare;
    // Contacts (who may see the user's presence: subscription 'from' or 'both') are not held to
    // the strangers' share, so that strangers cannot fill the store and crowd them out.
    const item = sender.equals(user) ? undefined : await this.storage.roster.getItem(user.domain, user.local, sender.toString());
    const contact = sender.equals(user) || item?.subscription === 'from' || item?.subscription === 'both';
    const outcome = await this.push(user, storeXml(stored), { jid: sender.toString(), stranger: !contact });
    if (outcome === 'no-account') return false;
    if (outcome !== 'stored') {
      this.server.log.info({ event: 'offline-refused', user: user.toString(), sender: sender.toString(), why: outcome }, 'offline message refused');
      // XEP-0160 §2: a full store bounces the message; the text says which limit.
      throw new StanzaError('service-unavailable', REFUSAL_TEXT[outcome]);
    }
    // A resource may have become available between the dispatcher's check and the store, or the
    // only one was not reading its stream: the message follows as soon as it can take it.
    const ready = this.server.router.getSessions(user.toString()).filter((s) => s.available && s.priority >= 0);
    let best: Session | undefined;
    for (const s of ready) if (!best || s.priority > best.priority) best = s;
    if (best) {
      this.waiting.add(user.toString());
      this.server.track(this.deliver(best), 'delivering offline messages');
    }
    return true;
  }

  /**
   * Stores with the configured limits, retrying a store that is briefly unavailable (a lock held
   * by another process): a message is never bounced as undeliverable for that. After the retries,
   * resource-constraint of type wait (RFC 6120 §8.3.3.18): the sender may try again later.
   */
  private async push(user: Jid, xml: string, sender: OfflineSender): Promise<'stored' | 'no-account' | OfflineRefusal> {
    const cfg = this.server.config.offline;
    const limits: OfflineLimits = {
      maxMessages: cfg.max_per_user,
      maxBytes: cfg.max_bytes_per_user,
      maxPerStranger: cfg.max_per_stranger,
      strangersShare: cfg.strangers_share,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.push(user.domain, user.local, xml, sender, limits);
      } catch (err) {
        // The account was removed meanwhile: a bounce is the honest answer.
        if (/FOREIGN KEY/i.test(String((err as Error).message))) return 'no-account';
        if (attempt >= STORE_RETRIES.length) {
          this.server.log.error({ err, user: user.toString() }, 'storing an offline message failed');
          throw new StanzaError('resource-constraint', 'the message store is unavailable; try again later');
        }
        this.server.log.warn({ err, user: user.toString(), attempt: attempt + 1 }, 'storing an offline message failed; retrying');
        await new Promise((r) => setTimeout(r, STORE_RETRIES[attempt]));
      }
    }
  }

  /** Sends every stored message to the session, oldest first, removing each once it went out. */
  deliver(session: Session): Promise<void> {
    const key = session.jid.bareString();
    const previous = this.delivering.get(key) ?? Promise.resolve();
    const run = previous.then(() => this.deliverNow(session));
    const settled = run.catch(() => undefined);
    this.delivering.set(key, settled);
    void settled.then(() => {
      if (this.delivering.get(key) === settled) this.delivering.delete(key);
    });
    return run;
  }

  private async deliverNow(session: Session): Promise<void> {
    // XEP-0160 §2 step 5: only non-negative presence; negative-priority resources never get
    // messages for the bare JID (RFC 6121 §8.5.2.1.1).
    if (!session.available || session.priority < 0) return;
    if (this.server.router.getSession(session.jid.toString()) !== session) return;
    const user = session.jid.bare;
    this.waiting.delete(user.toString());
    // XEP-0191 §3.3: once a JID is blocked nothing from it is delivered, stored messages included.
    // Read once there is something to deliver (most logins find nothing stored).
    let blocked: Set<string> | undefined;
    for (;;) {
      const batch = await this.store.list(user.domain, user.local, BATCH);
      if (batch.length > 0) blocked ??= new Set(await this.storage.blocking.list(user.domain, user.local));
      const blocks = blocked;
      const done: string[] = [];
      let stopped = false;
      for (const m of batch) {
        let stanza: Element;
        try {
          stanza = loadXml(m.stanza);
        } catch (err) {
          this.server.log.error({ err, user: user.toString(), id: m.id }, 'dropping an unreadable offline message');
          done.push(m.id);
          continue;
        }
        const from = stanza.attrs.from;
        if (from === undefined || blocks === undefined || blocks.size === 0 || !blocklistKeysFor(from).some((k) => blocks.has(k))) {
          // Paced by the client's reading: a large backlog is written as fast as it is read, never
          // piled into the connection's buffer. Before waiting, what was written leaves storage;
          // what is not written stays for the next login.
          const ready = session.writable();
          if (ready !== true) {
            await this.store.remove(user.domain, user.local, done.splice(0));
            if (!(await ready)) {
              stopped = true;
              break;
            }
          }
          if (!session.trySend(stanza)) {
            stopped = true;
            break;
          }
        }
        done.push(m.id);
      }
      await this.store.remove(user.domain, user.local, done);
      if (stopped || batch.length < BATCH) return;
    }
  }
}

export const offlineModule: Module = {
  name: 'offline',
  async start({ server, storage }) {
    const store = await SqlOfflineStore.open(storage.sql);
    new OfflineModule(server, storage, store).start();
    const api: OfflineApi = { count: (host, username) => store.count(host, username), totals: () => store.totals() };
    return { api };
  },
};
