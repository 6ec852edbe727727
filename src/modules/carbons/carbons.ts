// XEP-0280 Message Carbons: a resource that enabled carbons gets a copy of the
// messages its account's other resources send (<sent/>, §8) and of the messages
// delivered to the account that reached another resource (<received/>, §7).
//
// Per message, an account without carbons-enabled resources costs one Map lookup:
// the enabled sessions are kept by bare JID, and nothing else is looked at until
// one is found. The state is per session (§4) and forgotten when the session ends.
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { Priority } from '../../core/hooks.js';
import type { Session } from '../../core/session.js';
import type { AddressedStanza, IqRequest, RoutedStanza, ServerApi } from '../../core/api.js';
import type { Module } from '../api.js';
import { NS_CARBONS, NS_FORWARD, eligibility, type Direction } from './rules.js';

export { NS_CARBONS } from './rules.js';

/** How many recently copied messages an account remembers, to copy an error that answers one (§6.1). */
const REMEMBERED = 64;

interface Account {
  /** The account's sessions that enabled carbons (§4). */
  readonly sessions: Set<Session>;
  /**
   * `<peer bare JID> <id>` of the latest eligible messages exchanged while carbons were on,
   * oldest first: an error with the same id from or to that peer answers one of them (§6.1).
   */
  readonly recent: Set<string>;
}

export class CarbonsModule {
  private readonly accounts = new Map<string, Account>();

  constructor(private readonly server: ServerApi) {}

  start(): void {
    const server = this.server;
    // §3: the server advertises the feature (clients ask their server, not their account).
    server.addFeature('server', NS_CARBONS);
    server.handleIq('account', NS_CARBONS, 'set', (req) => this.toggle(req));
    // Below POLICY: a message blocking refuses (XEP-0191) is not routed and not copied.
    server.hookOutbound('message', (ev) => this.sent(ev), Priority.DEFAULT);
    server.observeDelivered((ev, recipients) => this.received(ev, recipients));
    server.on('session-ended', (session) => this.forget(session));
  }

  /** Whether this session has carbons enabled (for tests and other modules' curiosity). */
  isEnabled(session: Session): boolean {
    return this.accounts.get(session.jid.bareString())?.sessions.has(session) === true;
  }

  /** How many accounts have a carbons-enabled session now. */
  get enabledAccounts(): number {
    return this.accounts.size;
  }

  // --- §4 / §5: enable and disable -------------------------------------------------------

  private toggle({ from, to, payload, session }: IqRequest): void {
    // §4.1 / §5.1: only a client of this server, for its own session.
    if (!session || !from.bare.equals(to)) throw new StanzaError('not-allowed');
    if (payload.name === 'enable') {
      const key = from.bareString();
      let account = this.accounts.get(key);
      if (!account) this.accounts.set(key, (account = { sessions: new Set(), recent: new Set() }));
      // §9.1: enabling twice is not an error.
      account.sessions.add(session);
      return;
    }
    // §9.1: neither is disabling twice.
    if (payload.name === 'disable') return this.forget(session);
    throw new StanzaError('bad-request', 'expected <enable/> or <disable/>');
  }

  private forget(session: Session): void {
    const key = session.jid.bareString();
    const account = this.accounts.get(key);
    if (!account) return;
    account.sessions.delete(session);
    if (account.sessions.size === 0) this.accounts.delete(key);
  }

  // --- §8: what a client sends -------------------------------------------------------------

  private sent(ev: RoutedStanza): false {
    const account = this.accounts.get(ev.from.bareString());
    const { session, to, stanza } = ev;
    if (!account || !session || !to) return false;
    // To the user's own account: the copies are <received/> ones, made on delivery (§7),
    // so that each other resource gets one copy, not a <sent/> and a <received/>.
    if (to.bare.equals(ev.from.bare)) return false;
    if (!this.eligible(account, stanza, 'sent', ev.from, to)) return false;
    const own = ev.from.bare;
    // §8: every carbons-enabled resource except the sender, whether or not the sender enabled carbons.
    for (const s of account.sessions) {
      if (s !== session && s.available) s.send(carbon('sent', stanza, own, s.jid));
    }
    return false;
  }

  // --- §7: what the account receives ------------------------------------------------------

  private received(ev: AddressedStanza, recipients: readonly Session[]): void {
    const account = this.accounts.get(ev.to.bareString());
    if (!account) return;
    const { stanza } = ev;
    if (!this.eligible(account, stanza, 'received', ev.from, ev.from)) return;
    const own = ev.to.bare;
    for (const s of account.sessions) {
      // §7: never to a resource that got the original; and a message between the user's own
      // resources is not copied back to the one that sent it.
      if (!s.available || s === ev.session || recipients.includes(s)) continue;
      s.send(carbon('received', stanza, own, s.jid));
    }
  }

  /** §6.1 for this account; `peer` is the other party (the recipient of a sent message, the sender of a received one). */
  private eligible(account: Account, stanza: Element, direction: Direction, from: Jid, peer: Jid): boolean {
    const verdict = eligibility(stanza, direction, from);
    if (verdict === 'no') return false;
    const id = stanza.attrs.id;
    if (verdict === 'if-answering-eligible') {
      // §6.1: an error answering an eligible message; RFC 6120 §8.3.1 keeps the id in the reply.
      return id !== undefined && account.recent.has(`${peer.bareString()} ${id}`);
    }
    if (id !== undefined) remember(account.recent, `${peer.bareString()} ${id}`);
    return true;
  }
}

function remember(recent: Set<string>, key: string): void {
  recent.delete(key);
  recent.add(key);
  if (recent.size > REMEMBERED) recent.delete(recent.values().next().value as string);
}

/**
 * §7 / §8: the copy, wrapped per XEP-0297: the same type as the original, from the user's
 * bare JID (§12: clients ignore carbons from anyone else), to the resource that gets it.
 * The original keeps its own addresses.
 */
export function carbon(direction: Direction, original: Element, own: Jid, to: Jid): Element {
  return x(
    'message',
    NS.CLIENT,
    { from: own.bareString(), to: to.toString(), type: original.attrs.type },
    x(direction, NS_CARBONS, {}, x('forwarded', NS_FORWARD, {}, original.clone())),
  );
}

export const carbonsModule: Module = {
  name: 'carbons',
  start({ server }) {
    new CarbonsModule(server).start();
  },
};
