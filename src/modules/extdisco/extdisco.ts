// XEP-0215 External Service Discovery: the STUN and TURN servers of the
// configuration, each TURN entry with credentials that expire (credentials.ts),
// so that a client can set up calls that relay (XEP-0479 requires it of A/V servers).
import { x, type Element } from '../../xml/element.js';
import { StanzaError } from '../../core/errors.js';
import type { IqRequest } from '../../core/api.js';
import type { Config } from '../../config/schema.js';
import type { Module } from '../api.js';
import { turnCredentials } from './credentials.js';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

interface ServiceEntry {
  type: 'stun' | 'turn' | 'turns';
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
  /** Whether credentials are issued for it (TURN with the shared secret). */
  restricted: boolean;
}

/** Every service the configuration names, in the order clients should try them. */
export function configuredServices(config: Config): ServiceEntry[] {
  const list: ServiceEntry[] = [];
  for (const s of config.stun ?? []) list.push({ type: 'stun', host: s.host, port: s.port, transport: 'udp', restricted: false });
  const turn = config.turn;
  if (turn !== undefined) {
    // A TURN server is a STUN server too (RFC 8656 §2).
    if (turn.stun) list.push({ type: 'stun', host: turn.host, port: turn.port, transport: 'udp', restricted: false });
    for (const transport of turn.transports) list.push({ type: 'turn', host: turn.host, port: turn.port, transport, restricted: true });
    if (turn.tls_port !== undefined) list.push({ type: 'turns', host: turn.host, port: turn.tls_port, transport: 'tcp', restricted: true });
  }
  return list;
}

export const extdiscoModule: Module = {
  name: 'extdisco',
  start({ server }) {
    const config = server.config;
    if (configuredServices(config).length === 0) return;

    /** A service as listed, with fresh credentials for this user when it takes them. */
    const describe = (s: ServiceEntry, user: string): Element => {
      const el = x('service', NS_EXTDISCO, { type: s.type, host: s.host, port: String(s.port), transport: s.transport });
      const turn = config.turn;
      if (s.restricted && turn !== undefined) {
        const c = turnCredentials(turn.secret, user, turn.ttl);
        el.attrs.username = c.username;
        el.attrs.password = c.password;
        // XEP-0082 DateTime in UTC, to the second.
        el.attrs.expires = c.expires.toISOString().replace(/\.\d{3}Z$/, 'Z');
        el.attrs.restricted = '1';
      }
      return el;
    };

    /** Only this server's own users get the list (XEP-0215 §2: forbidden otherwise). */
    const requester = (req: IqRequest): string => {
      if (req.from.local === undefined || !server.isLocalDomain(req.from.domain)) throw new StanzaError('forbidden', 'external services are for this server’s users');
      return req.from.bareString();
    };

    // XEP-0215 §3.1 and §3.2: all services, or those of one type.
    server.handleIq('server', NS_EXTDISCO, 'get', (req) => {
      const user = requester(req);
      const p = req.payload;
      if (p.name === 'services') {
        const type = p.attrs.type;
        const result = x('services', NS_EXTDISCO, { type });
        for (const s of configuredServices(server.config)) if (type === undefined || s.type === type) result.append(describe(s, user));
        return result;
      }
      if (p.name === 'credentials') {
        // XEP-0215 §3.3: the service is named by host and type (and port, when several match).
        const want = p.getChild('service', NS_EXTDISCO);
        if (want === undefined || want.attrs.host === undefined || want.attrs.type === undefined) throw new StanzaError('bad-request', 'name the service by host and type');
        const port = want.attrs.port;
        const matches = configuredServices(server.config).filter(
          (s) => s.restricted && s.host === want.attrs.host && s.type === want.attrs.type && (port === undefined || String(s.port) === port),
        );
        if (matches.length === 0) throw new StanzaError('item-not-found', 'no such service with credentials');
        return x('credentials', NS_EXTDISCO, {}, ...matches.map((s) => describe(s, user)));
      }
      throw new StanzaError('bad-request', `<${p.name}/> is not an external service request`);
    });
    server.addFeature('server', NS_EXTDISCO);
  },
};
