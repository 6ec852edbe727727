// XEP-0280 Message Carbons: a resource that enabled carbons gets a copy of the
// messages its account's other resources send (<sent/>, §8) and of the messages
// delivered to the account that reached another resource (<received/>, §7).
//
// Per message, an account that has never enabled carbons on this node costs one Map
// lookup. Whether a session enabled them is a mark in the session registry
// (Router.setMark), so that in a cluster every node sees the resources of the other
// nodes that want copies (§4: the state is per session, and ends with it).
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
  /**
   * `<peer bare JID> <id>` of the latest eligible messages exchanged while carbons were on,
   * oldest first: an error with the same id from or to that peer answers one of them (§6.1).
   */
  readonly recent: Set<string>;
}

export class CarbonsModule {
  /** Accounts one of whose sessions (on any node) has had carbons enabled. */
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
    server.on('remote-session-ended', (session) => this.forget(session));
  }

  /** Whether this session has carbons enabled (for tests and other modules' curiosity). */
  isEnabled(session: Session): boolean {
    return session.marks.has(NS_CARBONS);
  }

  /** How many accounts have a carbons-enabled session now. */
  get enabledAccounts(): number {
    let n = 0;
    for (const bare of this.accounts.keys()) if (this.enabledSessions(bare).length > 0) n++;
    return n;
  }

  /** The account's sessions, on every node, that enabled carbons (§4). */
  private enabledSessions(bare: string): Session[] {
    return this.server.router.getSessions(bare).filter((s) => s.marks.has(NS_CARBONS));
  }

  /** The account's state, when one of its sessions has carbons enabled (remembered for copies made on this node). */
  private account(bare: string): Account | undefined {
    let account = this.accounts.get(bare);
    if (account === undefined) {
      if (!this.server.router.getSessions(bare).some((s) => s.marks.has(NS_CARBONS))) return undefined;
      this.accounts.set(bare, (account = { recent: new Set() }));
    }
    return account;
  }

  // --- §4 / §5: enable and disable -------------------------------------------------------

  private toggle({ from, to, payload, session }: IqRequest): void {
    // §4.1 / §5.1: only a client of this server, for its own session.
    if (!session || !from.bare.equals(to)) throw new StanzaError('not-allowed');
    if (payload.name === 'enable') {
      // §9.1: enabling twice is not an error.
      this.server.router.setMark(session, NS_CARBONS, true);
      return;
    }
    // §9.1: neither is disabling twice.
    if (payload.name === 'disable') {
      this.server.router.setMark(session, NS_CARBONS, false);
      return this.forget(session);
    }
    throw new StanzaError('bad-request', 'expected <enable/> or <disable/>');
  }

  /** Forgets the account once none of its sessions (on any node) has carbons enabled. */
  private forget(session: Session): void {
    const key = session.jid.bareString();
    if (this.accounts.has(key) && !this.enabledSessions(key).some((s) => s !== session)) this.accounts.delete(key);
  }

  // --- §8: what a client sends -------------------------------------------------------------

  private sent(ev: RoutedStanza): false {
    const { session, to, stanza } = ev;
    if (!session || !to) return false;
    const account = this.account(ev.from.bareString());
    if (!account) return false;
    // To the user's own account: the copies are <received/> ones, made on delivery (§7),
    // so that each other resource gets one copy, not a <sent/> and a <received/>.
    if (to.bare.equals(ev.from.bare)) return false;
    if (!this.eligible(account, stanza, 'sent', ev.from, to)) return false;
    const own = ev.from.bare;
    // §8: every carbons-enabled resource except the sender, whether or not the sender enabled carbons.
    for (const s of this.enabledSessions(own.toString())) {
      if (s !== session && s.available) s.send(carbon('sent', stanza, own, s.jid));
    }
    return false;
  }

  // --- §7: what the account receives ------------------------------------------------------

  private received(ev: AddressedStanza, recipients: readonly Session[]): void {
    const account = this.account(ev.to.bareString());
    if (!account) return;
    const { stanza } = ev;
    if (!this.eligible(account, stanza, 'received', ev.from, ev.from)) return;
    const own = ev.to.bare;
    for (const s of this.enabledSessions(own.toString())) {
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
