// XEP-0092 Software Version, for the server's own JID.
import { x } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import type { Module } from '../api.js';
import { SERVER_NAME, SERVER_VERSION } from '../../version.js';

export const versionModule: Module = {
  name: 'version',
  start({ server }) {
    server.handleIq('server', NS.VERSION, 'get', () =>
      // XEP-0092 §2: <os/> is optional; we leave it out rather than disclose the host OS.
      x('query', NS.VERSION, {}, x('name', NS.VERSION, {}, SERVER_NAME), x('version', NS.VERSION, {}, SERVER_VERSION)),
    );
    server.addFeature('server', NS.VERSION);
  },
};
