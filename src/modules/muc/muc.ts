// XEP-0045 Multi-User Chat: one service per served host, on the domain the
// configuration names (`muc.domain`, "conference.{host}" by default), listed in
// the host's disco#items. Rooms live in service.ts and room.ts; this module wires
// them to the server: the service domains, and the seed's clean-up, which takes a
// user out of every room when one of its sessions ends (logout, dropped
// connection, timeout, the end of a stream-management hibernation) or when it
// sends unavailable presence to the server (RFC 6121 §4.5.2 / §4.6.3: directed
// presence recipients, the rooms among them, learn it went).
import { Priority } from '../../core/hooks.js';
import type { MamApi } from '../mam/api.js';
import { StanzaError } from '../../core/errors.js';
import type { Jid } from '../../jid/jid.js';
import type { Module } from '../api.js';
import { MucService } from './service.js';
import { MucStore, type RoomArchive } from './store.js';

export { MucService } from './service.js';
export type { RoomArchive, RoomArchivedMessage, RoomArchiveRange } from './store.js';

/** What other modules may ask of the MUC services (the room archive's queries will, later). */
export interface MucApi {
  /** The service on `domain`, if there is one. */
  service(domain: string): MucService | undefined;
  /**
   * The archive of `room` (a room's bare JID) for an XEP-0313 query from `from`; throws the
   * StanzaError to answer with (item-not-found, forbidden). Its reader has the methods of the
   * mam module's ArchiveReader, so that module's query code can serve room JIDs.
   */
  roomArchive(room: Jid, from: Jid): RoomArchive;
}

/** The service domain for `host` from the configured pattern. */
export function serviceDomain(pattern: string, host: string): string {
  return pattern.split('{host}').join(host);
}

export const mucModule: Module = {
  name: 'muc',
  // XEP-0313 queries at room JIDs run on the mam module's query code (when it is enabled).
  depends: ['mam'],
  async start({ server, storage, use }) {
    const settings = server.config.muc;
    if (settings === false) return;
    const mam = server.config.mam.enabled ? use<MamApi>('mam') : undefined;
    const store = await MucStore.open(storage.sql);
    const services = new Map<string, MucService>();
    const unregister: (() => void)[] = [];
    const limits = { maxOccupants: settings.max_occupants, maxHistory: settings.max_history, maxRoomsPerUser: settings.max_rooms_per_user };
    for (const host of server.hosts) {
      const domain = serviceDomain(settings.domain, host);
      const service = new MucService(server, domain, store, limits, mam);
      await service.load();
      services.set(domain, service);
      // In a cluster each room lives on one node, and its stanzas are forwarded there.
      unregister.push(server.registerService(domain, (ev) => service.handle(ev), { name: 'Chatrooms', placed: true }));
    }

    // The seed's clean-up: 'session-ended' is emitted once per session, however it ended
    // (logout, a dropped connection, a timeout, a stream-management hibernation running out).
    // At shutdown every occupant is first told with 332 ('server-stopping', below); the
    // connections then close at once and are dropped without a broadcast.
    server.on('server-stopping', () => {
      for (const s of services.values()) server.track(s.shutdown(), 'muc shutdown');
    });
    server.on('session-ended', (session, reason) => {
      for (const s of services.values()) s.leaveAll(session.jid, undefined, reason === 'shutdown');
    });
    // In a cluster: a session of another node ended (there, or here for a node that died):
    // it leaves the rooms this node hosts.
    server.on('remote-session-ended', (session) => {
      for (const s of services.values()) s.leaveAll(session.jid);
    });
    server.on('cluster-changed', () => {
      for (const s of services.values()) server.track(s.rebalance(), 'moving rooms between cluster nodes');
    });
    // RFC 6121 §4.5.2: unavailable presence to the server itself ends the session's presence
    // in every room too (the presence module tells directed-presence recipients the same; a
    // room hears it once, whichever comes first).
    server.hookOutbound(
      'presence',
      (ev) => {
        if (ev.to === undefined && ev.session && ev.stanza.attrs.type === 'unavailable') {
          for (const s of services.values()) s.leaveAll(ev.session.jid, ev.stanza);
        }
        return false;
      },
      Priority.DEFAULT,
    );

    const api: MucApi = {
      service: (domain) => services.get(domain),
      roomArchive(room, from) {
        const service = services.get(room.domain);
        if (!service) throw new StanzaError('item-not-found', 'no such room');
        return service.archiveFor(room, from);
      },
    };
    return {
      api,
      async stop() {
        for (const u of unregister) u();
        for (const s of services.values()) await s.shutdown();
      },
    };
  },
};
