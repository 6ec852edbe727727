// The core's logic in one process, without sockets: a fake transport whose
// client side the test drives synchronously, a hub (Dispatcher) with a
// LocalRouter and in-memory account directory, and client streams on that
// transport. With `t.mock.timers` the whole state machine runs on a mocked
// clock, so exact timing ("no ping before ping_after") can be asserted.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import type { TestContext } from 'node:test';
import { StreamParser } from '../../src/xml/parser.js';
import type { Element } from '../../src/xml/element.js';
import { NS } from '../../src/xml/namespaces.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import { Dispatcher } from '../../src/core/dispatcher.js';
import type { AccountDirectory } from '../../src/core/credentials.js';
import type { SaslMechanism } from '../../src/core/sasl.js';
import type { EndReason, Session } from '../../src/core/session.js';
import { LocalRouter } from '../../src/router/local.js';
import { C2SStream, type C2SContext } from '../../src/stream/c2s.js';
import { TcpFraming } from '../../src/stream/framing.js';
import { AccountShapers } from '../../src/stream/shaper.js';
import type { Transport, TransportHandler } from '../../src/stream/transport.js';
import type { Module } from '../../src/modules/api.js';
import { RunningModules } from '../../src/modules/loader.js';
import type { Storage } from '../../src/storage/types.js';

export const STREAM_HEADER = (to = 'localhost'): string =>
  `<?xml version='1.0'?><stream:stream to='${to}' version='1.0' xmlns='jabber:client' xmlns:stream='${NS.STREAM}'>`;

/** A transport whose client side is driven by the test, synchronously. */
export class FakeTransport implements Transport {
  readonly remoteAddress = '192.0.2.1';
  readonly secure = false;
  readonly canStartTls = false;
  pendingBytes = 0;
  readonly channelBindingTypes = [] as const;
  /** Top-level elements the server wrote, all streams together. */
  readonly received: Element[] = [];
  /** Everything the server wrote, as text. */
  text = '';
  ended = false;
  paused = false;
  private handler!: TransportHandler;
  private parser: StreamParser | undefined;

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  write(data: string): void {
    this.text += data;
    // Each stream (after SASL the server opens a new one) starts with the XML declaration.
    if (data.startsWith('<?xml') || !this.parser) {
      this.parser = new StreamParser(
        {
          streamStart: () => undefined,
          element: (el) => this.received.push(el),
          whitespace: () => undefined,
          streamEnd: () => undefined,
          error: (c, text) => {
            throw new Error(`server wrote bad XML: ${c} ${text}`);
          },
        },
        { maxStanzaSize: 1 << 20 },
      );
    }
    this.parser.write(data);
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('no TLS here'));
  }

  channelBinding(): undefined {
    return undefined;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    this.ended = true;
  }

  /** The client sends these bytes. */
  send(s: string): void {
    this.handler.data(Buffer.from(s));
  }

  /** The OS took everything written: the output buffer is empty again. */
  drain(): void {
    this.pendingBytes = 0;
    this.handler.emptied?.();
  }

  /** The socket closes (e.g. the peer answered our end()). */
  close(hadError = false): void {
    this.handler.closed(hadError);
  }

  /** The elements received with this name (and namespace, when given). */
  named(name: string, xmlns?: string): Element[] {
    return this.received.filter((el) => el.name === name && (xmlns === undefined || el.xmlns === xmlns));
  }

  streamErrors(): Element[] {
    return this.named('error', NS.STREAM);
  }
}

/** Element processing is promise-based; with no I/O involved a few turns of the loop drain it. */
export async function flush(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

/** A mechanism that accepts anyone under the name it is given, so tests reach binding without real SASL. */
export const acceptAnyone: SaslMechanism = {
  name: 'X-TEST',
  requiresTls: false,
  strength: 0,
  available: () => true,
  start: () => {
    let user = 'alice';
    return {
      get authcid() {
        return user;
      },
      step: async (data) => {
        if (data !== undefined && data.length > 0) user = data.toString('utf8');
        return { kind: 'success', username: user };
      },
    };
  },
};

/** Accounts that exist for the hub (bare-JID delivery asks). */
export class MemoryAccounts implements AccountDirectory {
  readonly users = new Set<string>();

  add(...jids: string[]): this {
    for (const j of jids) this.users.add(j);
    return this;
  }

  exists(host: string, username: string): Promise<boolean> {
    return Promise.resolve(this.users.has(`${username}@${host}`));
  }
}

export interface Hub {
  config: Config;
  dispatcher: Dispatcher;
  router: LocalRouter;
  accounts: MemoryAccounts;
  ended: { session: Session; reason: EndReason }[];
  /** A client stream on a new fake transport (not logged in). */
  connect(): FakeTransport;
  /** A client stream logged in as `user` and bound; returns its transport and session. */
  login(user: string): Promise<{ tr: FakeTransport; session: Session }>;
  /**
   * Resolves once nothing is left to do: no stanza from a client being handled and no tracked
   * work (storage writes, pushes) running, over several turns of the event loop in a row. For
   * "nothing else happened" checks, whatever the storage's latency (PostgreSQL's is many turns).
   */
  settled(): Promise<void>;
}

/** A hub in this process with the server's default configuration (plus `settings`), no storage, no modules. */
export function hub(settings: Record<string, unknown> = {}): Hub {
  const config = parseConfig(settings, tmpdir());
  const log = silentLogger();
  const router = new LocalRouter();
  const accounts = new MemoryAccounts();
  const dispatcher = new Dispatcher({ config, log, router, accounts });
  const ended: { session: Session; reason: EndReason }[] = [];
  dispatcher.on('session-ended', (session, reason) => ended.push({ session, reason }));
  /** Stanzas from clients being handled (each one's routing, before it hands work to track()), and tracked work. */
  const handling = new Set<Promise<unknown>>();
  const busy = (work: Promise<unknown>): void => {
    handling.add(work);
    void work.then(
      () => handling.delete(work),
      () => handling.delete(work),
    );
  };
  const track = dispatcher.track.bind(dispatcher);
  dispatcher.track = (work, what) => {
    busy(work);
    track(work, what);
  };
  const ctx: C2SContext = {
    config,
    log,
    router,
    sessions: dispatcher,
    defaultHost: config.hosts[0]!,
    tlsRequired: false,
    credentials: { getScramCredentials: () => Promise.resolve(undefined) },
    isLocalDomain: (d) => dispatcher.isLocalDomain(d),
    offeredMechanisms: () => [acceptAnyone],
    knownMechanism: () => undefined,
    streamFeatures: () => dispatcher.streamFeatures(),
    nonzaHandler: (xmlns) => dispatcher.nonzaHandler(xmlns),
    preBindHandler: (xmlns) => dispatcher.preBindHandler(xmlns),
    accountShapers: new AccountShapers(() => config.limits.rate.account),
    handleStanza: (session, stanza) => {
      const work = dispatcher.handleStanza(session, stanza);
      busy(work);
      return work;
    },
    sessionBound: (session) => dispatcher.sessionBound(session),
  };
  const connect = (): FakeTransport => {
    const tr = new FakeTransport();
    new C2SStream(ctx, tr, new TcpFraming());
    return tr;
  };
  return {
    config,
    dispatcher,
    router,
    accounts,
    ended,
    connect,
    async login(user) {
      const before = router.size;
      const tr = connect();
      tr.send(STREAM_HEADER(config.hosts[0]));
      tr.send(`<auth xmlns='${NS.SASL}' mechanism='X-TEST'>${Buffer.from(user).toString('base64')}</auth>`);
      await flush();
      assert.ok(tr.named('success', NS.SASL).length === 1, `authenticated as ${user}`);
      tr.send(STREAM_HEADER(config.hosts[0]));
      tr.send(`<iq type='set' id='bind'><bind xmlns='${NS.BIND}'/></iq>`);
      await flush();
      assert.equal(router.size, before + 1, `${user} bound`);
      const bound = tr.received.find((el) => el.name === 'iq' && el.attrs.id === 'bind');
      const jid = bound?.getChild('bind', NS.BIND)?.getChildText('jid', NS.BIND);
      const session = jid === undefined ? undefined : router.getSession(jid);
      assert.ok(session, 'the bound session is registered');
      accounts.add(session.jid.bareString());
      return { tr, session };
    },
    async settled() {
      // Quiet for 10 turns in a row: an element parsed in one turn is handled in the next ones.
      for (let quiet = 0; quiet < 10; ) {
        if (handling.size > 0) await Promise.allSettled([...handling]);
        await flush(1);
        quiet = handling.size === 0 ? quiet + 1 : 0;
      }
    },
  };
}

/** hub(), on a mocked clock (setTimeout and Date) starting at `now`. */
export function hubOnMockedClock(t: TestContext, settings: Record<string, unknown> = {}, now = 1_000_000): Hub & { tick(ms: number): void } {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now });
  const h = hub(settings);
  return { ...h, tick: (ms: number) => t.mock.timers.tick(ms) };
}

/** Starts modules on a hub with the given storage (a test storage, often partial). */
export function startModules(h: Hub, modules: Module[], storage: Storage): Promise<RunningModules> {
  return RunningModules.start(modules, h.dispatcher, storage);
}
