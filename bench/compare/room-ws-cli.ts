// The generator process of the room and ws scenarios (bench/compare/room.ts, ws.ts): run by
// the bench:compare runner pinned apart from the server; prints its report as JSON on stdout.
import { parseArgs } from 'node:util';
import { ScramCache } from '../load/scram.js';
import { runRoom } from './room.js';
import { runWs } from './ws.js';

const { values: v } = parseArgs({
  options: {
    scenario: { type: 'string' },
    port: { type: 'string' },
    'http-port': { type: 'string' },
    domain: { type: 'string', default: 'localhost' },
    users: { type: 'string', default: 'user%d' },
    'password-pattern': { type: 'string', default: 'pw-%d' },
    clients: { type: 'string' },
    messages: { type: 'string' },
    warmup: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '200' },
    'server-pid': { type: 'string' },
    'scram-cache': { type: 'string' },
  },
});
const cache = v['scram-cache'] ? ScramCache.load(v['scram-cache']) : new ScramCache();
const serverPid = v['server-pid'] ? Number(v['server-pid']) : undefined;
const common = { domain: v.domain!, users: v.users!, passwordPattern: v['password-pattern']!, concurrency: Number(v.concurrency), cache, serverPid };
const report =
  v.scenario === 'room'
    ? await runRoom({ ...common, host: '127.0.0.1', port: Number(v.port), service: `conference.${v.domain}`, occupants: Number(v.clients), messagesPerOccupant: Number(v.messages) })
    : v.scenario === 'ws'
      ? await runWs({ ...common, url: `ws://127.0.0.1:${v['http-port']}/xmpp-websocket`, clients: Number(v.clients), messages: Number(v.messages), warmup: Number(v.warmup) })
      : undefined;
if (!report) throw new Error('--scenario room|ws');
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
