// RFC 6121 §2: the roster: retrieval with versioning (§2.6), add/update (§2.4),
// delete (§2.5), and pushes to every interested resource (§2.1.6).
import { randomBytes } from 'node:crypto';
import { Element, x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StanzaError } from '../../core/errors.js';
import { Jid, JidError } from '../../jid/jid.js';
import type { RosterItem } from '../../storage/types.js';
import type { ServerApi } from '../../core/api.js';
import type { Session } from '../../core/session.js';
import type { Module } from '../api.js';
import type { RemovalHook, RosterApi, RosterChange } from './api.js';

/** RFC 6121 §2.3.3: limits a server may set on names and groups. */
const MAX_NAME_LENGTH = 1024;
const MAX_GROUP_LENGTH = 1024;

/** An item that only records an inbound request the user has not answered: not part of the visible roster. */
export function isPendingOnly(item: RosterItem): boolean {
  return item.subscription === 'none' && !item.ask && !item.approved && item.pendingIn && item.name === undefined && item.groups.length === 0;
}

export function rosterItemElement(item: RosterChange): Element {
  const el = x('item', NS.ROSTER, { jid: item.jid, subscription: item.subscription });
  if ('groups' in item) {
    if (item.name !== undefined && item.name !== '') el.attrs.name = item.name;
    // RFC 6121 §2.1.2.2: ask='subscribe' shows a pending outbound request.
    if (item.ask) el.attrs.ask = 'subscribe';
    // RFC 6121 §2.1.2.1 / §3.4: pre-approval is shown to the user.
    if (item.approved) el.attrs.approved = 'true';
    for (const g of item.groups) el.append(x('group', NS.ROSTER, {}, g));
  }
  return el;
}

/** RFC 6121 §2.1.6: one roster push, to one resource. */
function sendRosterPush(session: Session, change: RosterChange, version: string): void {
  session.send(
    x('iq', NS.CLIENT, { type: 'set', id: `push-${randomBytes(6).toString('hex')}`, to: session.jid.toString() },
      x('query', NS.ROSTER, { ver: version }, rosterItemElement(change))),
  );
}

/** RFC 6121 §2.1.6: a roster push to every resource that asked for the roster. */
function pushRosterChange(server: ServerApi, user: Jid, change: RosterChange, version: string): void {
  for (const s of server.router.getSessions(user.bareString())) if (s.interested) sendRosterPush(s, change, version);
}

export const rosterModule: Module = {
  name: 'roster',
  start({ server, storage }) {
    // RFC 6121 §2.6.1: roster versioning is announced as a stream feature.
    server.addStreamFeature(x('ver', NS.ROSTER_VER));
    const { roster } = storage;
    const removalHooks: RemovalHook[] = [];

    server.handleIq('account', NS.ROSTER, 'get', async ({ from, to, session, payload, afterReply }) => {
      // RFC 6121 §2.1.3: only the user's own roster can be retrieved.
      if (!from.bare.equals(to)) throw new StanzaError('forbidden');
      if (session) server.router.setInterested(session, true);
      const known = payload.attrs.ver;
      if (known !== undefined && server.config.roster.versioning === 'diff') {
        const diff = await roster.changesSince(to.domain, to.local, known);
        if (diff && session) {
          // RFC 6121 §2.6.3: empty result, then one push per change since the client's version.
          afterReply(() => {
            for (const change of diff.changes) {
              if ('groups' in change && isPendingOnly(change)) continue;
              sendRosterPush(session, change, diff.version);
            }
          });
          return undefined;
        }
      }
      const { version, items } = await roster.get(to.domain, to.local);
      if (known !== undefined && known === version) return undefined;
      return x('query', NS.ROSTER, { ver: version }, ...items.filter((i) => !isPendingOnly(i)).map(rosterItemElement));
    });

    // RFC 6121 §2.1.5 / §2.3.2: the result goes to the requesting resource first, then the pushes
    // to every interested resource (Prosody and ejabberd answer in this order too).
    server.handleIq('account', NS.ROSTER, 'set', async ({ from, to, payload, afterReply }) => {
      // RFC 6121 §2.1.5: only the user may change the roster.
      if (!from.bare.equals(to)) throw new StanzaError('forbidden');
      const items = payload.getChildren('item', NS.ROSTER);
      // RFC 6121 §2.3.3: exactly one item per roster set.
      if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set carries exactly one item');
      const el = items[0]!;
      let contact: Jid;
      try {
        contact = Jid.parse(el.attrs.jid ?? '');
      } catch (err) {
        if (err instanceof JidError) throw new StanzaError('bad-request', 'invalid jid');
        throw err;
      }
      if (contact.resource !== '') throw new StanzaError('bad-request', 'roster items are bare JIDs');
      if (contact.equals(to)) throw new StanzaError('not-allowed', 'the user cannot be in their own roster');
      const current = await roster.getItem(to.domain, to.local, contact.toString());

      if (el.attrs.subscription === 'remove') {
        // RFC 6121 §2.5.3: removing an item that does not exist.
        if (!current || isPendingOnly(current)) throw new StanzaError('item-not-found');
        const version = await roster.removeItem(to.domain, to.local, contact.toString());
        afterReply(async () => {
          if (version !== undefined) pushRosterChange(server, to, { jid: contact.toString(), subscription: 'remove' }, version);
          for (const hook of removalHooks) await hook(to, current);
        });
        return undefined;
      }

      const name = el.attrs.name;
      if (name !== undefined && name.length > MAX_NAME_LENGTH) throw new StanzaError('not-acceptable', 'name too long');
      const groups: string[] = [];
      for (const g of el.getChildren('group', NS.ROSTER)) {
        const text = g.text();
        if (text === '') throw new StanzaError('not-acceptable', 'empty group name');
        if (text.length > MAX_GROUP_LENGTH) throw new StanzaError('not-acceptable', 'group name too long');
        if (groups.includes(text)) throw new StanzaError('bad-request', 'duplicate group');
        groups.push(text);
      }
      // RFC 6121 §2.1.2.5 / §2.4.2: the client cannot set subscription state or 'ask';
      // those attributes are ignored and the server keeps its own.
      const item: RosterItem = {
        jid: contact.toString(),
        name: name === '' ? undefined : name,
        subscription: current?.subscription ?? 'none',
        ask: current?.ask ?? false,
        pendingIn: current?.pendingIn ?? false,
        approved: current?.approved ?? false,
        groups,
      };
      // RFC 6121 §2.3.3: a server may limit the roster's size; adding beyond it is refused.
      const max = server.config.roster.max_items;
      if (current === undefined && (await roster.count(to.domain, to.local)) >= max) {
        throw new StanzaError('not-allowed', `the roster is full (${max} items)`);
      }
      const version = await roster.setItem(to.domain, to.local, item);
      afterReply(() => pushRosterChange(server, to, item, version));
      return undefined;
    });

    const api: RosterApi = {
      push: (user, change, version) => pushRosterChange(server, user, change, version),
      onItemRemoved: (hook) => void removalHooks.push(hook),
      isPendingOnly,
    };
    return { api };
  },
};
