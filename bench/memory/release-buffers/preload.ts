// `node --import ./bench/memory/release-buffers/preload.ts`: every secure context the process
// creates through tls.createSecureContext (Shoal's, and a tls.Server's) gets
// SSL_MODE_RELEASE_BUFFERS before any connection uses it (release_buffers.cc says how and why).
// Needs `npm run -s bench:release-buffers-addon` first; bench only.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import tls from 'node:tls';

const require = createRequire(import.meta.url);
const addon = require('./build/Release/release_buffers.node') as { releaseBuffers(context: object): number };
const original = tls.createSecureContext;
tls.createSecureContext = (options) => {
  const secure = original(options);
  addon.releaseBuffers((secure as unknown as { context: object }).context);
  return secure;
};
// ESM importers of node:tls (`import { createSecureContext } from 'node:tls'`) see the patched one too.
syncBuiltinESMExports();
