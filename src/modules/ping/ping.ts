// XEP-0199 XMPP Ping: the server answers pings to itself and on behalf of accounts.
// (The server's own pings to silent clients are part of the stream's idle policy.)
import { NS } from '../../xml/namespaces.js';
import type { Module } from '../api.js';

export const pingModule: Module = {
  name: 'ping',
  start({ server }) {
    // XEP-0199 §4.2 (client-to-server) and §4.4: an empty result is the pong.
    server.handleIq('server', NS.PING, 'get', () => undefined);
    server.addFeature('server', NS.PING);
  },
};
