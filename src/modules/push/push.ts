// XEP-0357 Push Notifications. A client enables (and disables) push services for
// its account: an app server's pubsub service JID and node, with an optional
// publish-options form (credentials) that goes with every publish. While the user
// has no connected session (none at all, or all kept detached by stream
// management), a message or a subscription request makes the server publish a
// summary to each enabled node; an error answer disables that node.
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { loadXml, storeXml } from '../../xml/stored.js';
import { Jid, JidError } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { Priority } from '../../core/hooks.js';
import type { AddressedStanza, IqRequest, ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import type { Storage } from '../../storage/types.js';
import type { Module } from '../api.js';
import { SqlPushStore, type PushRegistration, type PushStore } from './store.js';

/** XEP-0357 §11.1 */
export const NS_PUSH = 'urn:xmpp:push:0';
/** XEP-0357 §11.3: the FORM_TYPE of the summary in a notification. */
export const PUSH_SUMMARY = 'urn:xmpp:push:summary';
/** XEP-0060 */
export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
/** XEP-0060 §7.1.5: the FORM_TYPE of publish options. */
export const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
/** XEP-0004 */
export const NS_DATA = 'jabber:x:data';

/** The largest publish-options form kept for one registration (serialised, bytes). */
export const MAX_OPTIONS_BYTES = 4096;
/**
 * XEP-0357 §7.1 allows keeping a node enabled through errors "deemed recoverable or transient,
 * until a sufficient number of errors have been received in a row": this many.
 */
export const MAX_TRANSIENT_ERRORS = 5;
/**
 * Errors that say the service could not be reached rather than that it refused: a component
 * that is not connected (service-unavailable from its domain), no route, no answer in time.
 */
const TRANSIENT_CONDITIONS = new Set(['service-unavailable', 'remote-server-not-found', 'remote-server-timeout', 'resource-constraint']);

/** What happened since the user was last connected: what a notification summarises. */
interface Summary {
  messages: number;
  subscriptions: number;
  lastSender: string | undefined;
  lastBody: string | undefined;
}

/** Per registration: the pause between notifications and the errors in a row. */
interface Pacing {
  readonly service: string;
  readonly node: string;
  lastSent: number;
  timer: NodeJS.Timeout | undefined;
  transientErrors: number;
}

/** A data form field with one value (XEP-0004 §3.2). */
const field = (name: string, value: string, type?: string): Element =>
  x('field', NS_DATA, { var: name, type }, x('value', NS_DATA, {}, value));

/** The FORM_TYPE of a data form (XEP-0068), if it has one. */
function formType(form: Element): string | undefined {
  return form
    .getChildren('field', NS_DATA)
    .find((f) => f.attrs.var === 'FORM_TYPE')
    ?.getChildText('value', NS_DATA);
}

/** XEP-0357 §7: the notification payload, with a urn:xmpp:push:summary form. */
export function notificationFor(summary: Summary, includeBody: boolean): Element {
  const form = x('x', NS_DATA, { type: 'submit' }, field('FORM_TYPE', PUSH_SUMMARY, 'hidden'), field('message-count', String(summary.messages)));
  if (summary.subscriptions > 0) form.append(field('pending-subscription-count', String(summary.subscriptions)));
  if (summary.lastSender !== undefined) form.append(field('last-message-sender', summary.lastSender));
  // XEP-0357 §9: a body goes through third parties; only when the operator allows it.
  if (includeBody && summary.lastBody !== undefined) form.append(field('last-message-body', summary.lastBody));
  return x('notification', NS_PUSH, {}, form);
}

/** A message worth waking a device for: chat or normal, with a body (not a chat state, a receipt). */
function worthPushing(message: Element): boolean {
  const type = message.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  const body = message.getChildText('body', message.xmlns);
  return body !== undefined && body.trim() !== '';
}

export class PushModule {
  /** Per account (bare JID) with push enabled: what arrived since its last connection. */
  private readonly summaries = new Map<string, Summary>();
  /** Per account (bare JID), per registration (regKey). */
  private readonly pacing = new Map<string, Map<string, Pacing>>();
  /** Messages already counted (one may be seen both as delivered to a detached session and as undeliverable). */
  private readonly counted = new WeakSet<Element>();
  private stopped = false;

  constructor(
    private readonly server: ServerApi,
    private readonly storage: Storage,
    private readonly store: PushStore,
  ) {}

  start(): void {
    const server = this.server;
    // XEP-0357 §4.1: the user's account (its bare JID) advertises support.
    server.addFeature('account', NS_PUSH);
    server.handleIq('account', NS_PUSH, 'set', (req) => this.command(req));

    // A message no session could take (offline storage comes after, at DEFAULT): observed, never
    // kept, so offline storage and its errors to the sender are unchanged.
    server.hookUndeliverable((ev) => {
      if (ev.kind === 'message' && !this.hasConnectedSession(ev.to)) this.observeMessage(ev);
      return false;
    }, Priority.DEFAULT + 10);
    // A message handed to sessions none of which has a connection: all kept by stream management.
    server.observeDelivered((ev, recipients) => {
      if (ev.kind === 'message' && recipients.length > 0 && recipients.every((s) => !s.attached)) this.observeMessage(ev);
    });
    // A subscription request (RFC 6121 §3.1.3) for a user with no connection. Below blocking
    // (POLICY), which stops requests from blocked JIDs; above the presence module (HANDLER).
    server.hookInbound(
      'presence',
      (ev) => {
        if (ev.stanza.attrs.type === 'subscribe' && !this.hasConnectedSession(ev.to)) {
          server.track(this.subscriptionRequest(ev), 'push notification for a subscription request');
        }
        return false;
      },
      Priority.DEFAULT,
    );
    // message-count counts from the user's last connection: a bind, or a resumption (XEP-0198).
    server.on('session-bound', (session) => this.connected(session));
    server.on('session-resumed', (session) => this.connected(session));
  }

  stop(): void {
    this.stopped = true;
    for (const regs of this.pacing.values()) for (const p of regs.values()) clearTimeout(p.timer);
    this.pacing.clear();
  }

  // --- Enabling and disabling (XEP-0357 §5, §6) ----------------------------------------

  private async command(req: IqRequest): Promise<void> {
    // Only the account itself manages its push services.
    if (!req.from.bare.equals(req.to)) throw new StanzaError('forbidden');
    const { payload } = req;
    if (payload.name === 'enable') return this.enable(req.to, payload);
    if (payload.name === 'disable') return this.disable(req.to, payload);
    throw new StanzaError('bad-request', 'expected enable or disable');
  }

  private async enable(account: Jid, enable: Element): Promise<void> {
    const service = serviceJid(enable.attrs.jid);
    // XEP-0357 §3.2: a push service is an app server's pubsub service, never an account here.
    if (this.server.isLocalDomain(service.domain)) throw new StanzaError('not-acceptable', 'a push service cannot be on this server');
    const node = enable.attrs.node;
    // XEP-0357 §5 "SHOULD contain a 'node'": without one there is nothing to publish to (XEP-0060 §7.1).
    if (node === undefined || node === '') throw new StanzaError('bad-request', 'missing node');
    const forms = enable.getChildren('x', NS_DATA);
    if (forms.length > 1) throw new StanzaError('bad-request', 'at most one publish-options form');
    let options: string | undefined;
    const form = forms[0];
    if (form) {
      // XEP-0357 §5: a data form whose FORM_TYPE is pubsub#publish-options.
      if (form.attrs.type !== 'submit' || formType(form) !== PUBLISH_OPTIONS) {
        throw new StanzaError('bad-request', `the form must be of type submit with FORM_TYPE ${PUBLISH_OPTIONS}`);
      }
      options = storeXml(form);
      if (Buffer.byteLength(options, 'utf8') > MAX_OPTIONS_BYTES) throw new StanzaError('not-acceptable', 'the publish options are too large');
    }
    const max = this.server.config.push.max_per_account;
    const outcome = await this.store.put(account.domain, account.local, { service: service.toString(), node, options }, max);
    if (outcome === 'limit') throw new StanzaError('policy-violation', `at most ${max} push registrations per account`);
    this.server.log.info({ event: 'push-enabled', account: account.toString(), service: service.toString(), node }, 'push notifications enabled');
  }

  private async disable(account: Jid, disable: Element): Promise<void> {
    const service = serviceJid(disable.attrs.jid);
    // XEP-0357 §6: with a node, that node only; without, every node of the service.
    const node = disable.attrs.node;
    const removed = await this.store.remove(account.domain, account.local, service.toString(), node);
    const regs = this.pacing.get(account.toString());
    for (const [key, p] of regs ?? []) {
      if (p.service === service.toString() && (node === undefined || p.node === node)) {
        clearTimeout(p.timer);
        regs?.delete(key);
      }
    }
    this.server.log.info({ event: 'push-disabled', account: account.toString(), service: service.toString(), node, removed }, 'push notifications disabled');
  }

  // --- What warrants a notification --------------------------------------------------------

  /** Whether a client of the account has a connection now (stream management may keep sessions without one). */
  private hasConnectedSession(account: Jid): boolean {
    return this.server.router.getSessions(account.bareString()).some((s: Session) => s.attached);
  }

  private observeMessage(ev: AddressedStanza): void {
    const message = ev.stanza;
    if (this.counted.has(message) || !worthPushing(message)) return;
    this.counted.add(message);
    const body = message.getChildText('body', message.xmlns);
    this.server.track(
      this.arrived(ev.to.bare, (s) => {
        s.messages++;
        s.lastSender = ev.from.toString();
        s.lastBody = body;
      }),
      'push notification for a message',
    );
  }

  private async subscriptionRequest(ev: AddressedStanza): Promise<void> {
    const user = ev.to.bare;
    const contact = ev.from.bare.toString();
    // Nothing new for the user: the contact is already subscribed (the server answers for the
    // user, RFC 6121 §3.1.3), or the same request is already pending.
    const item = await this.storage.roster.getItem(user.domain, user.local, contact);
    if (item && (item.subscription === 'from' || item.subscription === 'both' || item.pendingIn)) return;
    await this.arrived(user, (s) => void s.subscriptions++);
  }

  /** Counts what arrived for the account and notifies each of its registrations. */
  private async arrived(account: Jid, count: (s: Summary) => void): Promise<void> {
    const registrations = await this.store.list(account.domain, account.local);
    // The user may have connected meanwhile: then this is not counted (the count was reset).
    if (registrations.length === 0 || this.stopped || this.hasConnectedSession(account)) return;
    const key = account.toString();
    let summary = this.summaries.get(key);
    if (!summary) this.summaries.set(key, (summary = { messages: 0, subscriptions: 0, lastSender: undefined, lastBody: undefined }));
    count(summary);
    for (const reg of registrations) this.schedule(account, reg);
  }

  /** The user is back: nothing is pending for them any more. */
  private connected(session: Session): void {
    const account = session.jid.bare.toString();
    this.summaries.delete(account);
    for (const p of this.pacing.get(account)?.values() ?? []) {
      clearTimeout(p.timer);
      p.timer = undefined;
    }
  }

  // --- Publishing (XEP-0357 §7) ------------------------------------------------------------

  /**
   * At most one notification per registration every push.min_interval seconds: one that falls
   * within the pause waits for its end and then carries the latest summary, so a burst of
   * messages wakes the device once or twice, with the right count.
   */
  private schedule(account: Jid, reg: PushRegistration): void {
    let regs = this.pacing.get(account.toString());
    if (!regs) this.pacing.set(account.toString(), (regs = new Map()));
    let p = regs.get(regKey(reg));
    if (!p) regs.set(regKey(reg), (p = { service: reg.service, node: reg.node, lastSent: 0, timer: undefined, transientErrors: 0 }));
    if (p.timer !== undefined) return;
    const wait = p.lastSent + this.server.config.push.min_interval * 1000 - Date.now();
    if (wait <= 0) {
      this.server.track(this.publish(account, reg, p), 'publishing a push notification');
      return;
    }
    const pacing = p;
    pacing.timer = setTimeout(() => {
      pacing.timer = undefined;
      this.server.track(this.publishCurrent(account, reg), 'publishing a push notification');
    }, wait);
  }

  /** After a pause: the registration as it is now (disabled or changed meanwhile). */
  private async publishCurrent(account: Jid, reg: PushRegistration): Promise<void> {
    const current = (await this.store.list(account.domain, account.local)).find((r) => r.service === reg.service && r.node === reg.node);
    const p = this.pacing.get(account.toString())?.get(regKey(reg));
    if (current && p) await this.publish(account, current, p);
  }

  private async publish(account: Jid, reg: PushRegistration, p: Pacing): Promise<void> {
    const summary = this.summaries.get(account.toString());
    // The user came back meanwhile (the count was reset), or the server is stopping.
    if (!summary || this.stopped || this.hasConnectedSession(account)) return;
    p.lastSent = Date.now();
    const cfg = this.server.config.push;
    const publish = x('publish', NS_PUBSUB, { node: reg.node }, x('item', NS_PUBSUB, {}, notificationFor(summary, cfg.include_body)));
    const pubsub = x('pubsub', NS_PUBSUB, {}, publish);
    if (reg.options !== undefined) {
      // XEP-0357 §7: the options given when enabling go with each publish (XEP-0060 §7.1.5).
      pubsub.append(x('publish-options', NS_PUBSUB, {}, loadXml(reg.options)));
    }
    // XEP-0357 §7 example: the user's server publishes from its own domain.
    const iq = x('iq', NS.CLIENT, { type: 'set', from: account.domain, to: reg.service }, pubsub);
    // The answer is awaited outside tracked work: shutdown does not wait for a push service.
    this.server.requestIq(iq, cfg.timeout * 1000).then(
      (reply) => this.answered(account, reg, p, reply),
      (err: unknown) => {
        // No answer is not a refusal: the registration stays.
        this.server.log.warn({ event: 'push-timeout', account: account.toString(), service: reg.service, node: reg.node, err }, 'no answer to a push notification');
      },
    );
  }

  private answered(account: Jid, reg: PushRegistration, p: Pacing, reply: Element): void {
    if (this.stopped) return;
    if (reply.attrs.type !== 'error') {
      p.transientErrors = 0;
      this.server.log.debug({ event: 'push-sent', account: account.toString(), service: reg.service, node: reg.node }, 'push notification published');
      return;
    }
    this.server.track(this.failed(account, reg, p, reply), 'disabling a push registration');
  }

  /** XEP-0357 §7.1: an error disables the registration, unless it looks transient (not too often in a row). */
  private async failed(account: Jid, reg: PushRegistration, p: Pacing, reply: Element): Promise<void> {
    const error = reply.getChild('error', reply.xmlns);
    const type = error?.attrs.type;
    const condition = error?.getChildren().find((c) => c.xmlns === NS.STANZA_ERRORS)?.name ?? 'undefined-condition';
    const log = { account: account.toString(), service: reg.service, node: reg.node, type, condition };
    if ((type === 'wait' || TRANSIENT_CONDITIONS.has(condition)) && ++p.transientErrors < MAX_TRANSIENT_ERRORS) {
      this.server.log.warn({ event: 'push-error', ...log, inARow: p.transientErrors }, 'a push notification failed; the registration is kept');
      return;
    }
    await this.store.remove(account.domain, account.local, reg.service, reg.node);
    clearTimeout(p.timer);
    this.pacing.get(account.toString())?.delete(regKey(reg));
    this.server.log.info({ event: 'push-auto-disabled', ...log }, 'the push service refused a notification; it is disabled');
  }
}

/** A registration's key within its account (a JID holds no NUL). */
function regKey(reg: Pick<PushRegistration, 'service' | 'node'>): string {
  return `${reg.service}\u0000${reg.node}`;
}

/** The 'jid' attribute of enable and disable (XEP-0357 §5, §6: MUST be there). */
function serviceJid(attr: string | undefined): Jid {
  if (attr === undefined || attr === '') throw new StanzaError('bad-request', 'missing jid');
  try {
    return Jid.parse(attr);
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError('jid-malformed', 'the jid is not a valid JID');
    throw err;
  }
}

export const pushModule: Module = {
  name: 'push',
  async start({ server, storage }) {
    const store = await SqlPushStore.open(storage.sql);
    const push = new PushModule(server, storage, store);
    push.start();
    return { stop: () => push.stop() };
  },
};
