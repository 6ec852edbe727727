// The RFC 6121 / XEP scenarios of issue 3, played by real clients. Each scenario
// names roles (a, b, c, ...) and the test file chooses which client library
// plays each role, so the same behaviour is checked from xmpp.js and from
// slixmpp, in mixed pairs and trios. Every scenario creates its own accounts on
// the shared server, so they do not see each other.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './server.js';
import { LogCapture, serverCertificate, trustCertificate, waitUntil, waitUntilAsync } from './xmppjs.js';
import {
  IqFailure,
  SlixClient,
  XjsClient,
  isMessage,
  isPresence,
  isPresenceOf,
  isPush,
  type AnyClient,
  type ClientKind,
  type ImClient,
  type RosterItemView,
  type StanzaView,
} from './im-clients.js';
import type { OfflineApi } from '../../src/modules/offline/api.js';

export interface ImEnv {
  srv: TestServer;
  /** The server certificate (PEM file) the clients trust. */
  caFile: string;
  /** SASL mechanism for slixmpp (see SlixClient.connect). */
  slixMech?: string;
}

/** Which library plays the first, second and third role of each scenario. */
export interface Mix {
  a: ClientKind;
  b: ClientKind;
  c: ClientKind;
}

let userSeq = 0;

/** Accounts and clients of one test, all cleaned up when it ends. */
export class Cast {
  private readonly clients: AnyClient[] = [];
  constructor(private readonly env: ImEnv) {}

  /** Creates fresh accounts named after the roles (alice-7, bob-7, ...). */
  async accounts<N extends string>(...names: N[]): Promise<Record<N, string>> {
    const n = ++userSeq;
    const out = {} as Record<N, string>;
    for (const name of names) {
      const local = `${name}-${n}`;
      await this.env.srv.addUser(local, `${local}-pass`);
      out[name] = local;
    }
    return out;
  }

  async connect(kind: ClientKind, user: string): Promise<AnyClient> {
    const opts = { port: this.env.srv.port, user, password: `${user}-pass`, caFile: this.env.caFile };
    const c = kind === 'xmpp.js' ? await XjsClient.connect(opts) : await SlixClient.connect({ ...opts, mech: this.env.slixMech });
    this.clients.push(c);
    return c;
  }

  /** Connects, gets the roster (becoming an interested resource, RFC 6121 §2.1.6) and sends initial presence. */
  async online(kind: ClientKind, user: string, presence: { status?: string; show?: string; priority?: number } = {}): Promise<AnyClient> {
    const c = await this.connect(kind, user);
    await c.rosterGet();
    await c.presence(presence);
    return c;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.dispose()));
  }
}

export function newCast(t: TestContext, env: ImEnv): Cast {
  const cast = new Cast(env);
  t.after(() => cast.dispose());
  return cast;
}

/**
 * Everything `from`'s connection caused so far has reached `to`: the server handles a
 * connection's stanzas in order (so `from`'s ping is answered after what came before it
 * was processed), and writes to `to` in order (so `to`'s ping is answered after anything
 * written to it before). Used to check that something did NOT arrive, without sleeping.
 */
export async function flush(from: ImClient, to: ImClient): Promise<void> {
  await from.ping();
  await to.ping();
}

/**
 * After `gone` left: its session is unregistered, the end-of-session work (the
 * unavailable broadcast) has finished, and whatever it sent has reached `watchers`.
 */
export async function settleDeparture(srv: TestServer, gone: ImClient, watchers: ImClient[]): Promise<void> {
  await waitUntil(() => srv.server.router.getSession(gone.jid) === undefined, `${gone.jid} to be unregistered`);
  await srv.server.dispatcher.drain();
  for (const w of watchers) await w.ping();
}

/** Mutual subscription between two online, interested clients (RFC 6121 §3.1), asserting only the outcome. */
export async function befriend(x: ImClient, y: ImClient): Promise<void> {
  await x.subscribe(y.bare);
  await y.next((s) => isPresence(x.bare, 'subscribe')(s), `subscribe from ${x.bare}`);
  await y.approve(x.bare);
  await x.next(isPush(y.bare, 'to'), `push ${y.bare} to`);
  await y.subscribe(x.bare);
  await x.next((s) => isPresence(y.bare, 'subscribe')(s), `subscribe from ${y.bare}`);
  await x.approve(y.bare);
  await x.next(isPush(y.bare, 'both'), `push ${y.bare} both`);
  await y.next(isPush(x.bare, 'both'), `push ${x.bare} both`);
}

const itemOf = (items: readonly RosterItemView[], jid: string): RosterItemView | undefined => items.find((i) => i.jid === jid);

function assertFailure(err: unknown, condition: string): true {
  assert.ok(err instanceof IqFailure, `expected an IQ error, got ${String(err)}`);
  assert.equal(err.condition, condition);
  return true;
}

const label = (m: Mix, roles: (keyof Mix)[]): string => roles.map((r) => `${r}=${m[r]}`).join(', ');

/** Registers every scenario for this mix. */
/**
 * The seed's flow, for clients without stream management: an abrupt disconnect ends the session
 * at once, and what the server wrote before a logout counts as delivered. xmpp.js enables
 * XEP-0198 on its own (and @xmpp/client 0.14 undercounts its 'h' by the stanzas that arrive
 * between <enabled/> and the end of its stream negotiation, so a server that keeps what is
 * unacknowledged stores those again at logout); these scenarios run without it, and
 * test/sm-*.test.ts test stream management.
 */
export const NO_STREAM_MANAGEMENT = { stream_management: { enabled: false } } as const;

export function registerImScenarios(env: () => ImEnv, mix: Mix): void {
  const { a: A, b: B, c: C } = mix;

  /** alice (role a), bob (b) and carol (c) online and interested, alice mutually subscribed with bob and with carol. */
  async function aliceWithTwoFriends(t: TestContext): Promise<{ alice: AnyClient; bob: AnyClient; carol: AnyClient }> {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob', 'carol');
    const alice = await cast.online(A, u.alice);
    const bob = await cast.online(B, u.bob);
    const carol = await cast.online(C, u.carol);
    await befriend(alice, bob);
    await befriend(alice, carol);
    return { alice, bob, carol };
  }

  test(`mutual subscription with approval (${label(mix, ['a', 'b'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(A, u.alice, { status: 'alice here' });
    const bob = await cast.online(B, u.bob, { status: 'bob here' });

    // RFC 6121 §3.1.2: the request leaves with alice's bare JID; her roster shows ask='subscribe'.
    await alice.subscribe(bob.bare);
    const request = await bob.next(isPresence(alice.bare, 'subscribe'), 'the subscription request');
    assert.ok(request.to === bob.bare || request.to === bob.jid, `to: ${request.to}`);
    const pending = await alice.next(isPush(bob.bare, 'none'), 'push of the pending item');
    assert.equal(pending.roster!.items[0]!.ask, 'subscribe');

    // §3.1.5: bob approves: his roster gets subscription 'from'.
    await bob.approve(alice.bare);
    const bobSide = await bob.next(isPush(alice.bare, 'from'), 'push subscription=from');
    assert.equal(bobSide.roster!.items[0]!.ask, null);
    // §3.1.6: alice's roster gets 'to', she is told, and she receives bob's current presence.
    const aliceSide = await alice.next(isPush(bob.bare, 'to'), 'push subscription=to');
    assert.equal(aliceSide.roster!.items[0]!.ask, null, 'ask cleared once approved');
    await alice.next(isPresence(bob.bare, 'subscribed'), 'subscribed from bob');
    const bobPresence = await alice.next(isPresence(bob.jid), "bob's presence after approval");
    assert.equal(bobPresence.status, 'bob here');

    // And back: both directions make 'both' on both sides.
    await bob.subscribe(alice.bare);
    await alice.next(isPresence(bob.bare, 'subscribe'), 'the request back');
    await alice.approve(bob.bare);
    await alice.next(isPush(bob.bare, 'both'), 'alice: both');
    await bob.next(isPush(alice.bare, 'both'), 'bob: both');
    await bob.next(isPresence(alice.bare, 'subscribed'), 'subscribed from alice');
    const alicePresence = await bob.next(isPresence(alice.jid), "alice's presence after approval");
    assert.equal(alicePresence.status, 'alice here');

    // RFC 6121 §2.1.3: the stored rosters say the same.
    for (const [me, other] of [[alice, bob], [bob, alice]] as const) {
      const r = await me.rosterGet('');
      const item = itemOf(r.items, other.bare);
      assert.ok(item, `${other.bare} in ${me.bare}'s roster`);
      assert.deepEqual({ subscription: item.subscription, ask: item.ask }, { subscription: 'both', ask: null });
    }
    // slixmpp's own model, built from the pushes and presence it processed.
    for (const [me, other] of [[alice, bob], [bob, alice]] as const) {
      if (!(me instanceof SlixClient)) continue;
      const state = await me.rosterState();
      const item = state.items[other.bare];
      assert.ok(item, `slixmpp's roster has ${other.bare}`);
      assert.equal(item.subscription, 'both');
      assert.equal(item.pending_out, false);
      const resource = other.jid.slice(other.bare.length + 1);
      assert.ok(resource in item.resources, `slixmpp sees ${other.jid} online: ${JSON.stringify(item.resources)}`);
    }
  });

  test(`denial of a subscription request (${label(mix, ['a', 'b'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(A, u.alice);
    const bob = await cast.online(B, u.bob, { status: 'private' });

    await alice.subscribe(bob.bare);
    await bob.next(isPresence(alice.bare, 'subscribe'), 'the request');
    await alice.next(isPush(bob.bare, 'none'), 'pending push');
    // RFC 6121 §3.2.2 / §3.2.3: bob denies; alice is told and her pending request is cleared.
    await bob.deny(alice.bare);
    await alice.next(isPresence(bob.bare, 'unsubscribed'), 'unsubscribed from bob');
    const cleared = await alice.next(isPush(bob.bare, 'none'), 'push without ask');
    assert.equal(cleared.roster!.items[0]!.ask, null);
    // §3.2.2: no subscription was granted on bob's side.
    const bobItem = itemOf((await bob.rosterGet('')).items, alice.bare);
    assert.ok(bobItem === undefined || bobItem.subscription === 'none', `bob's item for alice: ${JSON.stringify(bobItem)}`);
    const aliceItem = itemOf((await alice.rosterGet('')).items, bob.bare);
    assert.deepEqual(aliceItem && { subscription: aliceItem.subscription, ask: aliceItem.ask }, { subscription: 'none', ask: null });

    // §4.2.2 / §4.4.2: with no subscription, bob's presence never reaches alice.
    await bob.presence({ status: 'still private' });
    await flush(bob, alice);
    assert.equal(alice.count(isPresenceOf(bob.bare) as (s: StanzaView) => boolean), 0, 'no available presence from bob');
    assert.equal(alice.count((s) => s.kind === 'presence' && s.status === 'still private'), 0);
  });

  test(`a pending subscription request is delivered at each login until answered (${label(mix, ['a', 'b'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(A, u.alice);

    // RFC 6121 §3.1.3: bob is offline; the server keeps the request.
    await alice.subscribe(`${u.bob}@localhost`);
    await alice.next(isPush(`${u.bob}@localhost`, 'none'), 'pending push');

    // Binding a resource is not enough: the request comes with initial presence.
    const bob = await cast.connect(B, u.bob);
    await bob.rosterGet();
    await bob.ping();
    assert.equal(bob.count((s) => s.kind === 'presence' && s.type === 'subscribe'), 0, 'not before initial presence');
    await bob.presence();
    const first = await bob.next(isPresence(alice.bare, 'subscribe'), 'the stored request');
    assert.ok(first.to === bob.bare || first.to === bob.jid, `to: ${first.to}`);

    // Unanswered: delivered again at the next login (§3.1.3 "MUST redeliver").
    await bob.logout();
    const bob2 = await cast.online(B, u.bob, { status: 'bob is back' });
    await bob2.next(isPresence(alice.bare, 'subscribe'), 'the request again');

    // Approved now: alice gets the approval and bob's presence.
    await bob2.approve(alice.bare);
    await alice.next(isPresence(bob2.bare, 'subscribed'), 'subscribed');
    await alice.next(isPush(bob2.bare, 'to'), 'push to');
    const p = await alice.next(isPresence(bob2.jid), "bob's presence");
    assert.equal(p.status, 'bob is back');

    // Answered: not delivered a third time.
    await bob2.logout();
    const bob3 = await cast.online(B, u.bob);
    await flush(alice, bob3);
    assert.equal(bob3.count((s) => s.kind === 'presence' && s.type === 'subscribe'), 0, 'no request after it was answered');
  });

  test(`initial presence broadcast and probe answers: a third client sees both (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob', 'carol');
    // carol is a mutual contact of alice and of bob; alice and bob are strangers.
    const carol = await cast.online(C, u.carol, { status: 'carol here', show: 'chat' });
    {
      const alice0 = await cast.online(A, u.alice);
      const bob0 = await cast.online(B, u.bob);
      await befriend(alice0, carol);
      await befriend(bob0, carol);
      await alice0.logout();
      await bob0.logout();
    }
    await carol.next(isPresenceOf(`${u.alice}@localhost`, 'unavailable'), 'alice0 gone');
    await carol.next(isPresenceOf(`${u.bob}@localhost`, 'unavailable'), 'bob0 gone');

    // RFC 6121 §4.2.2: alice's initial presence reaches carol; §4.2.3: the probe of carol is
    // answered (locally) with carol's current presence.
    const alice = await cast.online(A, u.alice, { status: 'alice here' });
    const seenByCarol = await carol.next(isPresence(alice.jid), "alice's initial presence");
    assert.equal(seenByCarol.status, 'alice here');
    // RFC 6121 §4.2.2 / §4.2.3: sent to the contact's bare JID, delivered to each resource as addressed.
    assert.equal(seenByCarol.to, carol.bare);
    const probeAnswer = await alice.next(isPresence(carol.jid), "carol's presence (probe answer)");
    assert.equal(probeAnswer.status, 'carol here');
    assert.equal(probeAnswer.show, 'chat');

    const bob = await cast.online(B, u.bob, { status: 'bob here' });
    assert.equal((await carol.next(isPresence(bob.jid), "bob's initial presence")).status, 'bob here');
    assert.equal((await bob.next(isPresence(carol.jid), "carol's presence for bob")).status, 'carol here');

    // carol saw both come online, exactly once each.
    await flush(alice, carol);
    await flush(bob, carol);
    assert.equal(carol.count(isPresence(alice.jid)), 1);
    assert.equal(carol.count(isPresence(bob.jid)), 1);
    if (carol instanceof SlixClient) {
      const state = await carol.rosterState();
      for (const other of [alice, bob]) {
        const res = state.items[other.bare]?.resources ?? {};
        assert.ok(other.jid.slice(other.bare.length + 1) in res, `slixmpp's roster shows ${other.jid} online: ${JSON.stringify(res)}`);
      }
    }
    // RFC 6121 §4.3.2 / §4.2.2: strangers learn nothing of each other.
    await flush(bob, alice);
    await flush(alice, bob);
    assert.equal(alice.count(isPresenceOf(bob.bare)), 0, 'alice got no presence from bob');
    assert.equal(bob.count(isPresenceOf(alice.bare)), 0, 'bob got no presence from alice');
  });

  test(`presence update (show/status/priority) is broadcast to subscribers (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
    const { alice, bob, carol } = await aliceWithTwoFriends(t);

    // RFC 6121 §4.4.2: to every subscriber's available resources.
    await alice.presence({ show: 'away', status: 'out to lunch', priority: 5 });
    for (const w of [bob, carol]) {
      const p = await w.next((s) => isPresence(alice.jid)(s) && s.show === 'away', `alice away (${w.user})`);
      assert.equal(p.status, 'out to lunch');
      assert.equal(p.priority, 5);
    }
    await alice.presence({ show: 'dnd', status: 'in a meeting' });
    for (const w of [bob, carol]) {
      const p = await w.next((s) => isPresence(alice.jid)(s) && s.show === 'dnd', `alice dnd (${w.user})`);
      assert.equal(p.status, 'in a meeting');
    }
    // Back to plain available: no <show/>.
    await alice.presence({ status: 'back' });
    for (const w of [bob, carol]) {
      const p = await w.next((s) => isPresence(alice.jid)(s) && s.status === 'back', `alice back (${w.user})`);
      assert.equal(p.show, null);
    }
    if (bob instanceof SlixClient) {
      const res = (await bob.rosterState()).items[alice.bare]?.resources[alice.jid.slice(alice.bare.length + 1)];
      assert.equal(res?.status, 'back', "slixmpp's model tracks the latest status");
    }
  });

  for (const how of ['unavailable then </stream:stream>', '</stream:stream> alone'] as const) {
    test(`logout notification, exactly once: ${how} (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
      const { alice, bob, carol } = await aliceWithTwoFriends(t);

      // RFC 6121 §4.5.1 / §4.5.2: every subscriber hears that alice left, whether she said so or just closed.
      await alice.logout(how.startsWith('unavailable') ? { unavailable: true, status: 'gone home' } : {});
      for (const w of [bob, carol]) {
        const p = await w.next(isPresence(alice.jid, 'unavailable'), `alice unavailable (${w.user})`);
        if (how.startsWith('unavailable')) assert.equal(p.status, 'gone home', 'the client\'s own unavailable is what is broadcast');
      }
      await settleDeparture(env().srv, alice, [bob, carol]);
      for (const w of [bob, carol]) assert.equal(w.count(isPresence(alice.jid, 'unavailable')), 1, `exactly one unavailable for ${w.user}`);
      if (bob instanceof SlixClient) {
        const res = (await bob.rosterState()).items[alice.bare]?.resources ?? {};
        assert.deepEqual(Object.keys(res), [], 'slixmpp no longer lists alice online');
      }
    });
  }

  for (const mode of ['reset', 'close'] as const) {
    const how = mode === 'reset' ? 'TCP reset' : 'socket closed without a word';
    test(`abrupt disconnect (${how}): contacts get unavailable at once (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
      const { alice, bob, carol } = await aliceWithTwoFriends(t);

      // The keepalive (ping after 300 s by default) plays no part: the socket event itself
      // must end the session (RFC 6121 §4.5.2: the server then broadcasts unavailable).
      const started = Date.now();
      await alice.kill(mode);
      for (const w of [bob, carol]) {
        const p = await w.next(isPresence(alice.jid, 'unavailable'), `alice unavailable after the ${how} (${w.user})`, 3000);
        assert.equal(p.to, w.bare, 'addressed to the bare JID, as broadcast (RFC 6121 §4.5.2)');
      }
      assert.ok(Date.now() - started < 3000);
      await settleDeparture(env().srv, alice, [bob, carol]);
      for (const w of [bob, carol]) assert.equal(w.count(isPresence(alice.jid, 'unavailable')), 1, `exactly one unavailable for ${w.user}`);
    });
  }

  test(`two resources of one account: presence between them, bare-JID messages by priority (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const desk = await cast.online(A, u.alice, { status: 'desk', priority: 1 });
    const phone = await cast.online(C, u.alice, { status: 'phone', priority: 5 });
    const bob = await cast.online(B, u.bob);
    // RFC 6121 §4.2.2: each resource of the user receives the other's presence.
    assert.equal((await desk.next(isPresence(phone.jid), "phone's presence")).status, 'phone');
    assert.equal((await phone.next(isPresence(desk.jid), "desk's presence")).status, 'desk');
    await befriend(bob, phone);
    // §2.1.6: the roster push reached both interested resources.
    await desk.next(isPush(bob.bare, 'both'), 'push on the other resource');
    // bob sees both resources.
    await bob.next(isPresence(desk.jid), "desk's presence for bob");
    await bob.next(isPresence(phone.jid), "phone's presence for bob");

    // RFC 6121 §8.5.2.1.1: a message to the bare JID goes to the highest-priority resource only.
    await bob.message(phone.bare, 'to the bare JID');
    await phone.next(isMessage('to the bare JID'), 'bare-JID message on the phone (priority 5)');
    await flush(bob, desk);
    assert.equal(desk.count(isMessage('to the bare JID')), 0, 'not on the desk (priority 1)');
    // §8.5.3.1: to a full JID, that resource only.
    await bob.message(desk.jid, 'to the desk');
    await desk.next(isMessage('to the desk'), 'full-JID message');
    await flush(bob, phone);
    assert.equal(phone.count(isMessage('to the desk')), 0);
    // §4.7.2.3: a negative priority never receives bare-JID messages.
    await phone.presence({ status: 'phone', priority: -1 });
    await desk.next((s) => isPresence(phone.jid)(s) && s.priority === -1, 'the priority change');
    await bob.message(phone.bare, 'after the change');
    await desk.next(isMessage('after the change'), 'now on the desk');
    await flush(bob, phone);
    assert.equal(phone.count(isMessage('after the change')), 0);

    // One resource leaves: bob and the other resource are told, about that resource only.
    await desk.logout();
    await bob.next(isPresence(desk.jid, 'unavailable'), 'desk gone (bob)');
    await phone.next(isPresence(desk.jid, 'unavailable'), 'desk gone (phone)');
    await settleDeparture(env().srv, desk, [bob, phone]);
    assert.equal(bob.count(isPresence(phone.jid, 'unavailable')), 0, 'the phone is still online');
  });

  test(`directed presence to a non-contact is cleaned up with unavailable (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob', 'carol');
    const alice = await cast.online(A, u.alice, { status: 'broadcast' });
    const bob = await cast.online(B, u.bob);
    const carol = await cast.online(C, u.carol);

    // RFC 6121 §4.6.2: directed presence reaches a non-contact...
    await alice.presence({ to: bob.jid, status: 'just for bob' });
    assert.equal((await bob.next(isPresence(alice.jid), 'directed presence')).status, 'just for bob');
    await alice.presence({ to: carol.bare, status: 'just for carol' });
    assert.equal((await carol.next(isPresence(alice.jid), 'directed presence to the bare JID')).status, 'just for carol');
    // ...and a later broadcast does not (no subscription).
    await alice.presence({ status: 'broadcast again' });
    await flush(alice, bob);
    await flush(alice, carol);
    assert.equal(bob.count((s) => s.status === 'broadcast again'), 0);

    // §4.6.3: carol is sent directed unavailable now; at logout only bob still needs one.
    await alice.presence({ to: carol.bare, type: 'unavailable' });
    await carol.next(isPresence(alice.jid, 'unavailable'), 'directed unavailable');
    await alice.logout();
    await bob.next(isPresence(alice.jid, 'unavailable'), 'unavailable at logout (directed presence clean-up)');
    await settleDeparture(env().srv, alice, [bob, carol]);
    assert.equal(bob.count(isPresence(alice.jid, 'unavailable')), 1);
    assert.equal(carol.count(isPresence(alice.jid, 'unavailable')), 1, 'carol was already told');
  });

  test(`directed presence clean-up after an abrupt disconnect (${label(mix, ['b', 'a'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(B, u.alice);
    const bob = await cast.online(A, u.bob);
    await alice.presence({ to: bob.jid });
    await bob.next(isPresence(alice.jid), 'directed presence');
    await alice.kill();
    await bob.next(isPresence(alice.jid, 'unavailable'), 'unavailable after the reset', 3000);
  });

  test(`offline messages: stored, then delivered in order with a XEP-0203 delay at initial presence (${label(mix, ['a', 'b'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(A, u.alice);
    const bobBare = `${u.bob}@localhost`;
    const sentAfter = Date.now() - 1000;
    for (const [i, body] of ['first', 'second', 'third'].entries()) await alice.message(bobBare, body, { id: `off-${i}` });
    await alice.ping();
    assert.equal(await env().srv.server.module<OfflineApi>('offline').count('localhost', u.bob), 3);
    assert.equal(alice.count((s) => s.kind === 'message' && s.type === 'error'), 0, 'nothing bounced');

    // XEP-0160 §2: not at bind, at initial presence.
    const bob = await cast.connect(B, u.bob);
    await bob.rosterGet();
    await bob.ping();
    assert.equal(bob.count((s) => s.kind === 'message'), 0, 'nothing before initial presence');
    await bob.presence();
    const got: StanzaView[] = [];
    for (const body of ['first', 'second', 'third']) got.push(await bob.next(isMessage(body), `offline message "${body}"`));
    const order = got.map((m) => bob.history.indexOf(m));
    assert.deepEqual([...order].sort((x, y) => x - y), order, 'delivered in the order sent');
    let last = 0;
    for (const m of got) {
      assert.equal(m.from, alice.jid);
      assert.equal(m.type, 'chat');
      assert.ok(m.delay, `XEP-0203 delay on ${m.xml}`);
      assert.equal(m.delay.from, 'localhost');
      const stamp = Date.parse(m.delay.stamp ?? '');
      assert.ok(stamp >= sentAfter && stamp <= Date.now() + 1000, `stamp ${m.delay.stamp}`);
      assert.ok(stamp >= last, 'stamps do not go backwards');
      last = stamp;
    }
    // Removed once written to the client, so possibly a moment after the client read them (a
    // round trip on PostgreSQL): wait for it rather than assume SQLite's speed.
    const offline = env().srv.server.module<OfflineApi>('offline');
    await waitUntilAsync(async () => (await offline.count('localhost', u.bob)) === 0, 'removed once delivered');

    // Now online: live delivery, no delay.
    await alice.message(bob.bare, 'live');
    const live = await bob.next(isMessage('live'), 'the live message');
    assert.equal(live.delay, undefined);
    // Delivered once: a second login gets nothing.
    await bob.logout();
    const bob2 = await cast.online(B, u.bob);
    await bob2.ping();
    assert.equal(bob2.count((s) => s.kind === 'message'), 0);
  });

  test(`roster versioning: a known version gets an empty result and exactly the changes (${label(mix, ['a', 'b'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const j = (n: string) => `${n}-${u.alice}@localhost`;
    const alice = await cast.connect(A, u.alice);
    const first = await alice.rosterGet();
    assert.ok(first.ver, 'RFC 6121 §2.6.3: a version with the roster');
    await alice.rosterSet(j('one'), 'One', ['Friends']);
    await alice.rosterSet(j('two'), 'Two');
    await alice.rosterSet(j('three'), 'Three', ['Work', 'Friends']);
    const cached = await alice.rosterGet('');
    assert.deepEqual(cached.items.map((i) => i.jid).sort(), [j('one'), j('three'), j('two')]);
    assert.ok(cached.ver && cached.ver !== first.ver);
    if (alice instanceof SlixClient) assert.equal((await alice.rosterState()).ver, cached.ver, 'slixmpp stored the version');
    await alice.logout();

    // While that client is away, another client of the same account changes the roster.
    const other = await cast.connect(B, u.alice);
    await other.rosterGet();
    await other.rosterSet(j('one'), 'Uno', ['Friends']);
    await other.rosterSet(j('one'), 'Eins', ['Friends', 'Family']); // changed twice: one push, latest state
    await other.rosterRemove(j('two'));
    await other.rosterSet(j('four'), 'Four');
    await other.logout();
    const current = await env().srv.server.storage.roster.get('localhost', u.alice);

    // RFC 6121 §2.6.3: with its cached version, an empty result then one push per changed item.
    const back = await cast.connect(A, u.alice);
    // §2.6.1: the feature that tells a client (slixmpp decides on it) to send its version.
    if (back instanceof SlixClient) assert.equal(back.features.rosterver, true, 'slixmpp saw the rosterver stream feature');
    const res = await back.rosterGet(cached.ver!);
    assert.equal(res.empty, true, 'empty IQ result');
    const pushes: StanzaView[] = [];
    for (const jid of [j('one'), j('two'), j('four')]) pushes.push(await back.next(isPush(jid), `push for ${jid}`));
    await back.ping();
    const allPushes = back.history.filter((s) => s.kind === 'iq' && s.type === 'set' && s.roster);
    assert.equal(allPushes.length, 3, `exactly the changes, got: ${allPushes.map((p) => p.xml).join('\n')}`);
    const byJid = new Map(pushes.map((p) => [p.roster!.items[0]!.jid, p.roster!.items[0]!]));
    const one = byJid.get(j('one'))!;
    assert.deepEqual({ subscription: one.subscription, name: one.name, groups: one.groups }, { subscription: 'none', name: 'Eins', groups: ['Family', 'Friends'] });
    assert.equal(byJid.get(j('two'))!.subscription, 'remove');
    assert.equal(byJid.get(j('four'))!.name, 'Four');
    // The last push carries the roster's current version (§2.6.3), so the client is up to date.
    assert.equal(allPushes.at(-1)!.roster!.ver, current.version);
    if (back instanceof SlixClient) {
      const state = await back.rosterState();
      assert.equal(state.ver, current.version, 'slixmpp took the version from the pushes');
      assert.equal(state.items[j('one')]?.name, 'Eins');
      assert.equal(state.items[j('four')]?.name, 'Four');
      assert.ok(!(j('two') in state.items) || state.items[j('two')]!.subscription === 'remove' || state.items[j('two')]!.subscription === 'none');
    }

    // With the current version: empty result and no push at all.
    const same = await back.rosterGet(current.version);
    assert.equal(same.empty, true);
    await back.ping();
    assert.equal(back.history.filter((s) => s.kind === 'iq' && s.type === 'set' && s.roster).length, 3, 'no push for an up-to-date client');

    // An unknown version (never handed out, or from the future): the full roster and its version.
    for (const unknown of ['not-a-version', '999999999']) {
      const full = await back.rosterGet(unknown);
      assert.equal(full.empty, false, `full roster for ver=${unknown}`);
      assert.equal(full.ver, current.version);
      assert.deepEqual(full.items.map((i) => i.jid).sort(), [j('four'), j('one'), j('three')]);
    }
  });

  test(`vCard: set for oneself only, get one's own and others' (${label(mix, ['a', 'b', 'c'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob', 'carol');
    const alice = await cast.online(A, u.alice);
    const bob = await cast.online(B, u.bob);
    const carol = await cast.connect(C, u.carol);

    // XEP-0054 §3.2: alice publishes her own vCard.
    await alice.vcardSet({ fn: 'Alice Liddell', nickname: 'ally' });
    assert.deepEqual(await alice.vcardGet(), { fn: 'Alice Liddell', nickname: 'ally', photo: null });
    // §3.3: anyone can read it.
    assert.deepEqual(await bob.vcardGet(alice.bare), { fn: 'Alice Liddell', nickname: 'ally', photo: null });
    assert.deepEqual(await carol.vcardGet(alice.bare), { fn: 'Alice Liddell', nickname: 'ally', photo: null });
    // §3.2: nobody else can change it.
    await assert.rejects(bob.vcardSet({ fn: 'Mallory' }, alice.bare), (e) => assertFailure(e, 'forbidden'));
    assert.equal((await carol.vcardGet(alice.bare)).fn, 'Alice Liddell', 'unchanged');
    // §3.3: someone without a vCard.
    await assert.rejects(alice.vcardGet(carol.bare), (e) => assertFailure(e, 'service-unavailable'));
    assert.deepEqual(await carol.vcardGet(), { fn: null, nickname: null, photo: null }, 'one\'s own empty vCard');

    // XEP-0153: with a PHOTO, contacts see its SHA-1 in the presence that follows.
    await befriend(alice, bob);
    const image = Buffer.from('not really a PNG, but bytes all the same');
    await alice.vcardSet({ fn: 'Alice Liddell', photo: { type: 'image/png', base64: image.toString('base64') } });
    assert.equal((await bob.vcardGet(alice.bare)).photo, image.toString('base64'));
    await alice.presence({ status: 'new avatar' });
    const p = await bob.next((s) => isPresence(alice.jid)(s) && s.status === 'new avatar', 'presence with the avatar hash');
    assert.equal(p.photo, createHash('sha1').update(image).digest('hex'));
  });

  test(`blocking (XEP-0191): the blocked contact sees the user offline and cannot message them (${label(mix, ['a', 'b'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(A, u.alice, { status: 'alice here' });
    const bob = await cast.online(B, u.bob, { status: 'bob here' });
    await befriend(alice, bob);
    await alice.next(isPresence(bob.jid), "bob's presence");
    await bob.next(isPresence(alice.jid), "alice's presence");
    assert.deepEqual(await alice.blocklist(), []);

    // §3.3: alice blocks bob: he sees her go offline (and she him).
    await alice.block([bob.bare]);
    await bob.next(isPresence(alice.jid, 'unavailable'), 'alice looks offline to bob');
    await alice.next((s) => s.kind === 'iq' && s.blocking?.op === 'block', 'the block push');
    assert.deepEqual(await alice.blocklist(), [bob.bare]);

    // bob's message is refused as if alice were offline (service-unavailable), and not delivered.
    await bob.message(alice.bare, 'let me in');
    const bounce = await bob.next((s) => s.kind === 'message' && s.type === 'error', 'the bounce');
    assert.equal(bounce.error?.condition, 'service-unavailable');
    await alice.ping();
    assert.equal(alice.count(isMessage('let me in')), 0);
    // Nor is it stored for later.
    assert.equal(await env().srv.server.module<OfflineApi>('offline').count('localhost', u.alice), 0);
    // alice cannot message bob either: not-acceptable with <blocked/>.
    await alice.message(bob.bare, 'hello?');
    const refused = await alice.next((s) => s.kind === 'message' && s.type === 'error', 'the refusal');
    assert.equal(refused.error?.condition, 'not-acceptable');
    assert.equal(refused.error?.blocked, true);

    // Her presence updates no longer reach him...
    await alice.presence({ status: 'invisible to bob' });
    await flush(alice, bob);
    assert.equal(bob.count((s) => s.kind === 'presence' && s.status === 'invisible to bob'), 0, 'presence update withheld');
    // ...nor does a new login of his learn that she is online (the probe is not answered).
    await bob.logout();
    const bob2 = await cast.online(B, u.bob, { status: 'bob again' });
    await flush(alice, bob2);
    await flush(bob2, alice);
    assert.equal(bob2.count(isPresenceOf(alice.bare)), 0, 'bob sees alice offline');
    assert.equal(alice.count(isPresence(bob2.jid)), 0, 'and nothing from the blocked contact reaches alice');

    // §3.4: unblocked: presence flows both ways again, and so do messages.
    await alice.unblock([bob2.bare]);
    assert.equal((await bob2.next(isPresence(alice.jid), "alice's presence after unblock")).status, 'invisible to bob');
    assert.equal((await alice.next(isPresence(bob2.jid), "bob's presence after unblock")).status, 'bob again');
    await bob2.message(alice.bare, 'welcome back');
    await alice.next(isMessage('welcome back'), 'the message after unblock');
    assert.deepEqual(await alice.blocklist(), []);
  });

  test(`messages and subscriptions to a user who does not exist (${label(mix, ['a'])})`, async (t) => {
    const cast = newCast(t, env());
    const u = await cast.accounts('alice');
    const alice = await cast.online(A, u.alice);
    const nobody = `nobody-${u.alice}@localhost`;
    // RFC 6121 §8.5.2.2.1 (no such user): service-unavailable back to the sender.
    await alice.message(nobody, 'anyone there?', { id: 'ghost-1' });
    const err = await alice.next((s) => s.kind === 'message' && s.type === 'error', 'the bounce');
    assert.equal(err.from, nobody);
    assert.equal(err.error?.condition, 'service-unavailable');
    assert.equal(err.id, 'ghost-1');
    // RFC 6121 §3.1.3: a subscription request to no such user is answered with unsubscribed.
    await alice.subscribe(nobody);
    await alice.next(isPresence(nobody, 'unsubscribed'), 'unsubscribed on behalf of no one');
    const cleared = await alice.next((s) => isPush(nobody, 'none')(s) && s.roster!.items[0]!.ask === null, 'push with the request cleared');
    assert.equal(cleared.roster!.items[0]!.subscription, 'none');
  });
}

/**
 * RFC 6120 §4.6 / RFC 6121 §4.5.2: a client that goes silent with its connection open is
 * found out by the server's keepalive (a ping after `ping_after` seconds of silence, then
 * `ping_timeout` seconds for any answer), and its contacts are then told it left.
 */
export function registerKeepaliveScenario(mix: { a: ClientKind; b: ClientKind }, settings: Record<string, unknown>, slixMech?: string): void {
  test(`keepalive: a silent client is declared unavailable after ping_after + ping_timeout (a=${mix.a}, b=${mix.b})`, async (t) => {
    const log = new LogCapture();
    const timeouts = { pre_auth: 5, ping_after: 0.4, ping_timeout: 0.4 };
    const srv = await startTestServer({ ...settings, timeouts }, { log: log.logger });
    const restoreTls = trustCertificate(serverCertificate(srv.dir));
    t.after(async () => {
      restoreTls();
      await srv.stop();
    });
    const cast = newCast(t, { srv, caFile: join(srv.dir, 'data', 'tls', 'self-signed.crt'), slixMech });
    const u = await cast.accounts('alice', 'bob');
    const alice = await cast.online(mix.a, u.alice);
    const bob = await cast.online(mix.b, u.bob);
    await befriend(alice, bob);

    // The server last heard from alice no earlier than this ping, so it cannot give up on her
    // before ping_after + ping_timeout from here.
    const mark = Date.now();
    await alice.ping();
    alice.freeze();
    await bob.next(isPresence(alice.jid, 'unavailable'), 'alice unavailable once the keepalive gave up', 5000);
    const after = Date.now() - mark;
    assert.ok(after >= (timeouts.ping_after + timeouts.ping_timeout) * 1000, `unavailable after ${after} ms`);
    const end = await log.waitFor((r) => r.event === 'disconnect' && r.jid === alice.jid, 'the server-side end of alice');
    assert.equal(end.reason, 'timeout');
    // bob kept answering the server's pings all along, so he is still there.
    assert.ok(srv.server.router.getSession(bob.jid), 'bob still connected');
    await settleDeparture(srv, alice, [bob]);
    assert.equal(bob.count(isPresence(alice.jid, 'unavailable')), 1);
  });
}
