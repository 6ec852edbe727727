// `node --import tsx bench/login/tls-floor.ts`: what a bare Node TLS server spends per
// connection, before any XMPP: accept, the TLS handshake (the same ECDSA P-256 certificate
// as bench:compare), one small record out, close. That is the floor under every login a
// Node server handles; the server's CPU (user + system, all threads, and the main thread
// alone) is divided by the connections. The client runs in its own process (pinned to the
// other core when there is one, the server on the first), so its work is not counted.
//
// With `--login`, the connection has the shape of the seed's login in bench:compare instead:
// the same requests and round trips, STARTTLS on the accepted socket as Shoal does it, answers
// of the sizes Shoal sends, and the close, but canned answers found by a marker in the request
// and no XML parsed: what any Node server pays on this machine for that login's traffic.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { connect, createServer, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { parseArgs } from 'node:util';
import { int, parseOrUsage } from '../shared/cli.js';
import { makeCertificate } from '../shared/system.js';
import { statCpuSeconds } from '../load/proc.js';

const USAGE = `Usage: node --import tsx bench/login/tls-floor.ts [--connections N] [--concurrency C] [--warmup W] [--login]

  --connections N  measured TLS connections (default 10000)
  --concurrency C  connections in flight at once (default 10)
  --warmup W       connections made first, unmeasured (default 2000)
  --login          each connection has the login's round trips (STARTTLS, SASL, bind,
                   session, roster, presence and ping, close), with canned answers

Prints the server's CPU per connection. Run with LD_PRELOAD=... to try another malloc.
`;

interface Options {
  connections: number;
  concurrency: number;
  warmup: number;
  login: boolean;
}

function parse(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: { connections: { type: 'string' }, concurrency: { type: 'string' }, warmup: { type: 'string' }, login: { type: 'boolean' }, help: { type: 'boolean' } },
  });
  if (values.help === true) return undefined;
  return {
    connections: int(values.connections, 'connections', 10_000),
    concurrency: Math.max(1, int(values.concurrency, 'concurrency', 10)),
    warmup: int(values.warmup, 'warmup', 2_000),
    login: values.login === true,
  };
}

// --- The login's traffic (--login) -------------------------------------------------------

const STREAMS = 'http://etherx.jabber.org/streams';
const CLIENT_HEADER = `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='${STREAMS}'>`;
const serverHeader = (features: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${STREAMS}' id='Wl0cX3r2m9qJ8yZbV4tK1w' from='localhost' version='1.0' xml:lang='en'><stream:features>${features}</stream:features>`;
const B64 = (n: number): string => 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3'.repeat(Math.ceil(n / 40)).slice(0, n);

/**
 * One step of the login: what the client sends (one write each), the marker a server finds in
 * the request, the answer (sizes as Shoal's), and what the client waits for before the next.
 */
interface LoginStep {
  send: string[];
  marker: string[];
  answer: string[];
  until: string;
  /** The client starts TLS on the socket once this step's answer has come. */
  starttls?: boolean;
}

const LOGIN_STEPS: LoginStep[] = [
  {
    send: [CLIENT_HEADER],
    marker: ['<stream:stream'],
    answer: [serverHeader(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>`)],
    until: '</stream:features>',
  },
  {
    send: [`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`],
    marker: ['<starttls'],
    answer: [`<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`],
    until: '<proceed',
    starttls: true,
  },
  {
    send: [CLIENT_HEADER],
    marker: ['<stream:stream'],
    answer: [
      serverHeader(
        `<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms><ver xmlns='urn:xmpp:features:rosterver'/>`,
      ),
    ],
    until: '</stream:features>',
  },
  {
    send: [`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${B64(56)}</auth>`],
    marker: ['<auth'],
    answer: [`<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${B64(112)}</challenge>`],
    until: '</challenge>',
  },
  {
    send: [`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${B64(144)}</response>`],
    marker: ['<response'],
    answer: [`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${B64(40)}</success>`],
    until: '</success>',
  },
  {
    send: [CLIENT_HEADER],
    marker: ['<stream:stream'],
    answer: [
      serverHeader(
        `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session><sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/><ver xmlns='urn:xmpp:features:rosterver'/>`,
      ),
    ],
    until: '</stream:features>',
  },
  {
    send: [`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load</resource></bind></iq>`],
    marker: ["id='b1'"],
    answer: [`<iq type='result' id='b1' to='user1@localhost/load'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user1@localhost/load</jid></bind></iq>`],
    until: "id='b1'",
  },
  {
    send: [`<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`],
    marker: ["id='s1'"],
    answer: [`<iq type='result' id='s1' to='user1@localhost/load' from='localhost'/>`],
    until: "id='s1'",
  },
  {
    send: [`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`],
    marker: ["id='r1'"],
    answer: [`<iq type='result' id='r1' to='user1@localhost/load'><query xmlns='jabber:iq:roster' ver='1'/></iq>`],
    until: "id='r1'",
  },
  {
    // Two writes, so (as the load client's) two TLS records; the answers follow each.
    send: [`<presence/>`, `<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`],
    marker: ['<presence', "id='p1'"],
    answer: [`<presence from='user1@localhost/load' to='user1@localhost/load'/>`, `<iq type='result' id='p1' to='user1@localhost/load' from='localhost'/>`],
    until: "id='p1'",
  },
  { send: ['</stream:stream>'], marker: ['</stream:stream>'], answer: ['</stream:stream>'], until: '</stream:stream>' },
];

/** The requests of LOGIN_STEPS in order, each with its answer, and whether TLS starts after it. */
const REQUESTS = LOGIN_STEPS.flatMap((step) => step.marker.map((marker, i) => ({ marker, answer: step.answer[i]!, starttls: step.starttls === true && i === step.marker.length - 1 })));

/**
 * The server side of one login-shaped connection: each request found in what arrived is
 * answered (all of one read in one write), STARTTLS wraps the accepted socket, the close
 * ends it.
 */
function serveLogin(raw: Socket, secureContext: SecureContext): void {
  let next = 0;
  const onData = (socket: Socket, chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    let from = 0;
    let out = '';
    let starttls = false;
    while (next < REQUESTS.length) {
      const request = REQUESTS[next]!;
      const at = text.indexOf(request.marker, from);
      if (at < 0) break;
      from = at + request.marker.length;
      out += request.answer;
      starttls = request.starttls;
      next++;
    }
    if (next === REQUESTS.length) {
      socket.end(out);
      return;
    }
    if (out !== '') socket.write(out);
    if (starttls) {
      raw.removeAllListeners('data');
      const secure = new TLSSocket(raw, { isServer: true, secureContext });
      secure.on('error', () => undefined);
      secure.on('data', (c: Buffer) => onData(secure, c));
    }
  };
  raw.on('error', () => undefined);
  raw.on('data', (c: Buffer) => onData(raw, c));
}

/** A client connection failed: the measurement is void. */
function clientFailed(err: Error): never {
  process.stderr.write(`tls-floor client: ${err.message}\n`);
  process.exit(1);
}

/** The client side: LOGIN_STEPS in order, each step's writes, then wait for its answer. */
function loginClient(port: number, context: SecureContext, done: () => void): void {
  const raw = netConnect({ port, host: '127.0.0.1' });
  let socket: Socket = raw;
  let step = 0;
  let got = '';
  const send = (): void => {
    for (const s of LOGIN_STEPS[step]!.send) socket.write(s);
  };
  const onData = (chunk: Buffer): void => {
    got += chunk.toString('utf8');
    const current = LOGIN_STEPS[step]!;
    if (!got.includes(current.until)) return;
    got = '';
    step++;
    if (step === LOGIN_STEPS.length) return; // the server ends the connection
    if (current.starttls) {
      raw.removeAllListeners('data');
      const secure = connect({ socket: raw, secureContext: context, rejectUnauthorized: false, servername: 'localhost' }, send);
      secure.on('data', onData);
      secure.on('error', clientFailed);
      secure.on('end', () => {
        secure.destroy();
        done();
      });
      socket = secure;
      return;
    }
    send();
  };
  raw.on('error', clientFailed);
  raw.on('data', onData);
  raw.on('connect', send);
}

/** The client process: `count` connections, `concurrency` at a time, each read to its end. */
function client(port: number, count: number, concurrency: number, login: boolean): void {
  const context = createSecureContext();
  let started = 0;
  let finished = 0;
  const next = (): void => {
    if (started >= count) return;
    started++;
    if (login) {
      loginClient(port, context, () => {
        if (++finished === count) process.exit(0);
        next();
      });
      return;
    }
    const socket = connect({ port, host: '127.0.0.1', secureContext: context, rejectUnauthorized: false });
    socket.on('data', () => undefined);
    socket.on('error', clientFailed);
    socket.on('end', () => {
      socket.destroy();
      if (++finished === count) process.exit(0);
      next();
    });
  };
  for (let i = 0; i < concurrency; i++) next();
}

/** Whether the server and the client can each have a core of their own (taskset, two cores or more). */
const pinned = availableParallelism() > 1 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

function runClient(port: number, count: number, concurrency: number, login: boolean): Promise<void> {
  const argv = [...process.execArgv, new URL(import.meta.url).pathname, 'client', String(port), String(count), String(concurrency), login ? 'login' : 'tls'];
  // The client on core 1, as bench:compare pins its generator away from the server (core 0).
  const child = pinned ? spawn('taskset', ['-c', '1', process.execPath, ...argv], { stdio: 'inherit' }) : spawn(process.execPath, argv, { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited with ${code}`))));
  });
}

async function main(opts: Options): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-tls-floor-'));
  try {
    const files = makeCertificate(dir);
    const tls = { cert: readFileSync(files.cert), key: readFileSync(files.key) };
    const secureContext = createSecureContext(tls);
    const server = opts.login
      ? createNetServer((socket) => serveLogin(socket, secureContext))
      : createServer(tls, (socket) => {
          socket.on('error', () => undefined);
          socket.end('<proceed/>');
        });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    if (pinned) spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });
    if (opts.warmup > 0) await runClient(port, opts.warmup, opts.concurrency, opts.login);
    const before = process.cpuUsage();
    const mainBefore = statCpuSeconds('/proc/thread-self/stat');
    const started = performance.now();
    await runClient(port, opts.connections, opts.concurrency, opts.login);
    const wall = (performance.now() - started) / 1000;
    const used = process.cpuUsage(before);
    const mainUsed = statCpuSeconds('/proc/thread-self/stat') - mainBefore;
    server.close();
    const per = (us: number): string => `${(us / opts.connections).toFixed(0)} µs`;
    process.stdout.write(
      `${opts.connections} TLS connections${opts.login ? ' shaped as logins' : ''} (${opts.concurrency} at a time, after ${opts.warmup} unmeasured) in ${wall.toFixed(1)} s\n` +
        `server CPU per connection: ${per(used.user + used.system)} (user ${per(used.user)}, system ${per(used.system)}); main thread ${per(mainUsed * 1e6)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'client') {
  client(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6] === 'login');
} else {
  const opts = parseOrUsage(parse, USAGE);
  if (typeof opts === 'number') process.exit(opts);
  main(opts).catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
