// XEP-0352 Client State Indication: a client says <inactive/> when its user is not looking
// (a phone with the screen off) and <active/> when they are back. While a client is
// inactive, what can wait is held here, so that a radio is not woken for every presence
// change of every contact: presence (only the latest per contact), standalone chat states
// (only the latest per contact), receipts, markers and other content-less messages. What
// the user should see now (a message with a body, a subscription request, an error) goes
// out at once, after everything held before it, so the client still sees one ordered
// stream; what the client itself asked for (IQ results, its presence echo) goes out at
// once too. <active/> sends everything held, in order. classify.ts says what is what.
//
// Held stanzas are taken by an outgoing filter that runs after every other one except
// stream management's (XEP-0198), and released past this filter: stream management counts
// a stanza when it is really written, never while it waits here.
import { x, type Element } from '../../xml/element.js';
import { StreamError } from '../../core/errors.js';
import { Priority } from '../../core/hooks.js';
import type { ServerApi } from '../../core/api.js';
import type { OutgoingFilter, Session } from '../../core/session.js';
import type { Module } from '../api.js';
import type { CsiApi } from './api.js';
import { classify } from './classify.js';

/** XEP-0352 §4.1 / §9 (schema). */
export const NS_CSI = 'urn:xmpp:csi:0';
const NS_DELAY = 'urn:xmpp:delay';

/**
 * Where the filter stands: after every other outgoing filter (blocking, carbons, archiving
 * decide first what the client gets at all), before stream management's at Priority.LAST.
 */
export const CSI_FILTER_PRIORITY = Priority.LAST + 100;

export interface CsiLimits {
  /** Senders whose latest presence or chat state is held for one session. */
  readonly maxLatest: number;
  /** Other stanzas held for one session. */
  readonly maxOther: number;
}

/**
 * Memory per inactive session stays bounded: past either limit everything held is sent (in
 * order) rather than dropped: a client with that much waiting for it is better woken than
 * left with a gap.
 */
export const DEFAULT_CSI_LIMITS: CsiLimits = { maxLatest: 500, maxOther: 100 };

interface Entry {
  readonly stanza: Element;
  /** When it was held (ms), for the XEP-0203 delay it gets when released. */
  readonly at: number;
}

/** What is held for one inactive session. */
class Held {
  /**
   * In the order they are to be written. Keys: a string per sender for the kinds of which only
   * the latest counts (re-inserted when replaced, so the latest stands where it came), a number
   * for the rest.
   */
  readonly entries = new Map<string | number, Entry>();
  latest = 0;
  other = 0;
  private seq = 0;

  nextKey(): number {
    return this.seq++;
  }

  /** Takes everything out, in order. */
  takeAll(): Entry[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    this.latest = 0;
    this.other = 0;
    return all;
  }

  /** Takes out, in order, what came from `from`. */
  takeFrom(from: string): Entry[] {
    const out: Entry[] = [];
    for (const [key, e] of this.entries) {
      if (e.stanza.attrs.from !== from) continue;
      this.entries.delete(key);
      if (typeof key === 'string') this.latest--;
      else this.other--;
      out.push(e);
    }
    return out;
  }
}

export class CsiModule implements CsiApi {
  /** The sessions whose client is inactive; a session not here is active (XEP-0352 §5: the default). */
  private readonly inactive = new Map<Session, Held>();

  /** The filter, kept so that released stanzas can be sent past it (Session.send's `after`). */
  readonly filter: OutgoingFilter = (session, stanza) => {
    const held = this.inactive.get(session);
    // An active session's stanzas cost one lookup here.
    return held === undefined ? stanza : this.whileInactive(session, held, stanza);
  };

  constructor(
    private readonly server: ServerApi,
    private readonly limits: CsiLimits = DEFAULT_CSI_LIMITS,
  ) {}

  start(): void {
    const server = this.server;
    // XEP-0352 §4.1: offered in the stream features once the client has authenticated.
    server.addStreamFeature(x('csi', NS_CSI));
    server.handleNonza(NS_CSI, (session, el) => this.indicate(session, el));
    server.addOutgoingFilter(this.filter, CSI_FILTER_PRIORITY);
    server.on('session-ended', (session) => this.ended(session));
    // XEP-0352 §5.2: a resumed stream starts active, as a new one does (what was held goes out).
    server.on('session-resumed', (session) => this.activate(session));
  }

  isInactive(session: Session): boolean {
    return this.inactive.has(session);
  }

  activate(session: Session): void {
    const held = this.inactive.get(session);
    if (held === undefined) return;
    this.inactive.delete(session);
    this.release(session, held.takeAll());
  }

  /**
   * XEP-0352 §4.2: <inactive/> or <active/>; no reply. Handled synchronously, so that (§5.1,
   * in-order processing) whatever <active/> releases is written before anything the client
   * sends after it is processed.
   */
  private indicate(session: Session, el: Element): void {
    if (el.name === 'inactive') {
      if (!this.inactive.has(session)) this.inactive.set(session, new Held());
      this.server.log.debug({ event: 'csi', jid: session.jid.toString(), state: 'inactive' }, 'client inactive');
      return;
    }
    if (el.name === 'active') {
      this.server.log.debug({ event: 'csi', jid: session.jid.toString(), state: 'active' }, 'client active');
      this.activate(session);
      return;
    }
    // §9 (schema): only these two; any other first-level element is not supported (RFC 6120 §4.9.3.24).
    throw new StreamError('unsupported-stanza-type', `<${el.name}/> in ${NS_CSI}`);
  }

  private whileInactive(session: Session, held: Held, stanza: Element): Element | null {
    const verdict = classify(stanza, session.jid.toString());
    switch (verdict) {
      case 'urgent':
        // Everything held came before it: written first, so the client's view stays in order.
        this.release(session, held.takeAll());
        return stanza;
      case 'pass': {
        // At once; but never ahead of what its own sender sent earlier (RFC 6120 §10.1's order
        // between one sender and one recipient), so that sender's held stanzas go first.
        const from = stanza.attrs.from;
        if (held.entries.size > 0 && from !== undefined) this.release(session, held.takeFrom(from));
        return stanza;
      }
      case 'presence':
      case 'chatstate': {
        const key = `${verdict === 'presence' ? 'p' : 'c'} ${stanza.attrs.from ?? ''}`;
        const replaced = held.entries.delete(key);
        if (!replaced && held.latest >= this.limits.maxLatest) return this.overflow(session, held, stanza);
        if (!replaced) held.latest++;
        held.entries.set(key, { stanza, at: Date.now() });
        return null;
      }
      case 'hold':
        if (held.other >= this.limits.maxOther) return this.overflow(session, held, stanza);
        held.other++;
        held.entries.set(held.nextKey(), { stanza, at: Date.now() });
        return null;
    }
  }

  /** Past a limit: everything held goes out in order, then this stanza; holding starts afresh. */
  private overflow(session: Session, held: Held, stanza: Element): Element {
    this.server.log.debug({ event: 'csi-overflow', jid: session.jid.toString(), held: held.entries.size }, 'too much held for an inactive client: sent');
    this.release(session, held.takeAll());
    return stanza;
  }

  /** Sends held stanzas past this filter (only stream management's and later filters run). */
  private release(session: Session, entries: readonly Entry[]): void {
    for (const e of entries) session.send(delayed(e, session.jid.domain), this.filter);
  }

  /**
   * The session is gone: what it held goes where a stanza for a gone resource goes (RFC 6121
   * §8.5.3.2.1, the hub's undeliverable(): a message to another resource or offline storage,
   * presence nowhere: the session's contacts' presence means nothing without it).
   */
  private ended(session: Session): void {
    const held = this.inactive.get(session);
    if (held === undefined) return;
    this.inactive.delete(session);
    for (const e of held.takeAll()) if (e.stanza.name === 'message') this.server.undeliverable(session, e.stanza);
  }
}

/**
 * XEP-0203 §2: a held stanza says when the server got it, so that the client shows the right
 * time (when a contact went away, not when the screen came on). A copy: the same element may
 * go to other sessions too. One that carries a delay already keeps it (the original time).
 */
function delayed(e: Entry, domain: string): Element {
  if (e.stanza.getChild('delay', NS_DELAY) !== undefined) return e.stanza;
  const copy = e.stanza.clone();
  copy.append(x('delay', NS_DELAY, { from: domain, stamp: new Date(e.at).toISOString() }));
  return copy;
}

export const csiModule: Module = {
  name: 'csi',
  start({ server }) {
    const csi = new CsiModule(server);
    csi.start();
    return { api: csi satisfies CsiApi };
  },
};
