// The session registry of a single process (core/router.ts says what a Router is).
import type { NodeLink, Router, PresenceChange } from '../core/router.js';
import { NO_MARKS, withMark, type LocalSession, type Session } from '../core/session.js';

export class LocalRouter implements Router {
  private readonly byBare = new Map<string, LocalSession[]>();
  private readonly byFull = new Map<string, LocalSession>();

  get size(): number {
    return this.byFull.size;
  }

  hasResource(bare: string, resource: string): boolean {
    return this.byFull.has(bare + '/' + resource);
  }

  register(session: LocalSession): Promise<boolean> {
    return Promise.resolve(this.add(session));
  }

  private add(session: LocalSession): boolean {
    const full = session.jid.toString();
    if (this.byFull.has(full)) return false;
    this.byFull.set(full, session);
    const bare = session.jid.bareString();
    const list = this.byBare.get(bare);
    if (list) list.push(session);
    else this.byBare.set(bare, [session]);
    return true;
  }

  unregister(session: Session): void {
    const full = session.jid.toString();
    if (this.byFull.get(full) !== session) return;
    this.byFull.delete(full);
    // An ended session keeps no marks (carbons end with the session, XEP-0280 §4).
    if (session.marks.size > 0) (session as LocalSession).applyState({ marks: NO_MARKS });
    const bare = session.jid.bareString();
    const list = this.byBare.get(bare);
    if (!list) return;
    const i = list.indexOf(session as LocalSession);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byBare.delete(bare);
  }

  getSession(fullJid: string): Session | undefined {
    return this.byFull.get(fullJid);
  }

  getSessions(bareJid: string): readonly Session[] {
    return this.byBare.get(bareJid) ?? [];
  }

  setPresence(session: Session, change: PresenceChange): void {
    const local = this.registered(session);
    if (!local) return;
    if (change.presence === undefined) local.applyState({ available: false, presence: undefined });
    else local.applyState({ available: true, presence: change.presence, priority: change.priority });
  }

  setInterested(session: Session, interested: boolean): void {
    this.registered(session)?.applyState({ interested });
  }

  setMark(session: Session, mark: string, on: boolean): void {
    const local = this.registered(session);
    if (!local || local.marks.has(mark) === on) return;
    local.applyState({ marks: withMark(local.marks, mark, on) });
  }

  hostOf(): NodeLink | undefined {
    return undefined;
  }

  announceService(): void {
    // One process: the component is here or nowhere.
  }

  serviceNode(): NodeLink | undefined {
    return undefined;
  }

  isLocal(session: Session): boolean {
    return this.registered(session) !== undefined;
  }

  retain(): void {
    // One process: the session's own queue is all there is.
  }

  release(): void {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  all(): Iterable<Session> {
    return this.byFull.values();
  }

  /** The registered session behind `session` (the same object here), if it is still registered. */
  private registered(session: Session): LocalSession | undefined {
    const local = this.byFull.get(session.jid.toString());
    return local === session ? local : undefined;
  }
}
