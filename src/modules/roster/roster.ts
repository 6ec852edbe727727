// RFC 6121 §2: the roster. This is the retrieval part (with versioning, §2.6);
// roster sets, pushes and subscriptions build on it.
import { randomBytes } from 'node:crypto';
import { Element, x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { StanzaError } from '../../stream/errors.js';
import type { RosterItem } from '../../storage/types.js';
import type { Module } from '../api.js';

export function rosterItemElement(item: RosterItem | { jid: string; subscription: 'remove' }): Element {
  const el = x('item', NS.ROSTER, { jid: item.jid, subscription: item.subscription });
  if ('groups' in item) {
    if (item.name !== undefined && item.name !== '') el.attrs.name = item.name;
    // RFC 6121 §2.1.2.2: ask='subscribe' shows a pending outbound request.
    if (item.ask) el.attrs.ask = 'subscribe';
    if (item.approved) el.attrs.approved = 'true';
    for (const g of item.groups) el.append(x('group', NS.ROSTER, {}, g));
  }
  return el;
}

export const rosterModule: Module = {
  name: 'roster',
  register(server) {
    // RFC 6121 §2.6.1: roster versioning is announced as a stream feature.
    server.addStreamFeature(x('ver', NS.ROSTER_VER));

    server.handleIq('account', NS.ROSTER, 'get', async ({ from, to, session, payload }) => {
      // RFC 6121 §2.1.3: only the user's own roster can be retrieved.
      if (!from.bare.equals(to)) throw new StanzaError('forbidden');
      if (session) session.interested = true;
      const { roster } = server.storage;
      const known = payload.attrs.ver;
      if (known !== undefined && server.config.roster.versioning === 'diff') {
        const diff = await roster.changesSince(to.domain, to.local, known);
        if (diff && session) {
          // RFC 6121 §2.6.3: empty result, then a push per change since the client's version.
          setImmediate(() => {
            for (const change of diff.changes) {
              session.send(
                x('iq', NS.CLIENT, { type: 'set', id: `push-${randomBytes(6).toString('hex')}`, to: session.jid.toString() },
                  x('query', NS.ROSTER, { ver: diff.version }, rosterItemElement(change))),
              );
            }
          });
          return undefined;
        }
      }
      const { version, items } = await roster.get(to.domain, to.local);
      if (known !== undefined && known === version) return undefined;
      return x('query', NS.ROSTER, { ver: version }, ...items.map(rosterItemElement));
    });
  },
};
