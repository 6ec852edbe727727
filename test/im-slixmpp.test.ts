// Issue 3 with real clients, slixmpp in the lead: every scenario of
// test/support/im-scenarios.ts with slixmpp playing the user (and the third
// party), xmpp.js the contact; then what only the slixmpp side checks.
import { before, after, describe } from 'node:test';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './support/server.js';
import { serverCertificate, trustCertificate } from './support/xmppjs.js';
import { slixmppMissing } from './support/im-clients.js';
import { NO_STREAM_MANAGEMENT, registerImScenarios, registerKeepaliveScenario, type ImEnv } from './support/im-scenarios.js';

/** Without -PLUS, so that slixmpp 1.8 can use SCRAM (see test/slixmpp.test.ts). */
const NO_PLUS = { mechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] };

const skip = slixmppMissing();
let srv: TestServer | undefined;
let env: ImEnv;
let restoreTls: (() => void) | undefined;

describe('slixmpp with xmpp.js', { skip }, () => {
  before(async () => {
    srv = await startTestServer({ sasl: NO_PLUS, ...NO_STREAM_MANAGEMENT });
    restoreTls = trustCertificate(serverCertificate(srv.dir));
    env = { srv, caFile: join(srv.dir, 'data', 'tls', 'self-signed.crt'), slixMech: 'SCRAM-SHA-256' };
  });
  after(async () => {
    restoreTls?.();
    await srv?.stop();
  });

  registerImScenarios(() => env, { a: 'slixmpp', b: 'xmpp.js', c: 'slixmpp' });
});

describe('keepalive: slixmpp goes silent (SIGSTOP), xmpp.js watches', { skip }, () => {
  registerKeepaliveScenario({ a: 'slixmpp', b: 'xmpp.js' }, { sasl: NO_PLUS, ...NO_STREAM_MANAGEMENT }, 'SCRAM-SHA-256');
});
