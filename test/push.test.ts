// XEP-0357 push notifications end to end: a real component library
// (@xmpp/component) plays the app server's pubsub service, a real client
// (@xmpp/client) enables push with a publish-options form and goes offline, and
// a contact (raw XML) writes to her. Notifications, their count, the body only
// with push.include_body, a subscription request, an error that disables a
// node, disable, and registrations that survive a restart on the same data dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startTestServer, type TestServer } from './support/server.js';
import { login, type LoggedIn } from './support/login.js';
import { LogCapture, serverCertificate, startXmppJs, trustCertificate, waitUntil, withTimeout, xml, type XmlElement, type XmppJsSession } from './support/xmppjs.js';

const PUSH = { domain: 'push.localhost', secret: 'push-app-server-secret' };
const NS_PUSH = 'urn:xmpp:push:0';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_DATA = 'jabber:x:data';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

interface Component {
  on(event: string, fn: (...a: never[]) => void): void;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(el: unknown): Promise<void>;
  reconnect: { stop(): void };
}

/** One publish the app server received. */
interface Publish {
  from: string;
  node: string;
  fields: Record<string, string>;
  options: Record<string, string> | undefined;
}

/** The app server: an @xmpp/component that records publishes and answers each with a result, or an error for the nodes in `refuse`. */
class AppServer {
  readonly publishes: Publish[] = [];
  readonly refuse = new Set<string>();
  private constructor(private readonly c: Component) {}

  static async start(port: number): Promise<AppServer> {
    const spec = '@xmpp/component';
    const lib = (await import(spec)) as {
      component(o: { service: string; domain: string; password: string }): Component;
      xml(name: string, attrs?: Record<string, string>, ...children: unknown[]): unknown;
    };
    const c = lib.component({ service: `xmpp://127.0.0.1:${port}`, domain: PUSH.domain, password: PUSH.secret });
    c.reconnect.stop();
    c.on('error', () => undefined);
    const app = new AppServer(c);
    c.on('stanza', ((stanza: XmlElement) => {
      if (!stanza.is('iq') || stanza.attrs.type !== 'set') return;
      const publish = stanza.getChild('pubsub', NS_PUBSUB)?.getChild('publish');
      if (!publish) return;
      const form = publish.getChild('item')?.getChild('notification', NS_PUSH)?.getChild('x', NS_DATA);
      const optionsForm = stanza.getChild('pubsub', NS_PUBSUB)?.getChild('publish-options')?.getChild('x', NS_DATA);
      const node = publish.attrs.node ?? '';
      app.publishes.push({ from: stanza.attrs.from ?? '', node, fields: fieldsOf(form), options: optionsForm ? fieldsOf(optionsForm) : undefined });
      const reply = { type: app.refuse.has(node) ? 'error' : 'result', id: stanza.attrs.id!, from: PUSH.domain, to: stanza.attrs.from! };
      // XEP-0060 §7.1.3.3: the node does not exist (any more).
      const error = lib.xml('error', { type: 'cancel' }, lib.xml('item-not-found', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }));
      void c.send(app.refuse.has(node) ? lib.xml('iq', reply, error) : lib.xml('iq', reply));
    }) as never);
    await withTimeout(c.start(), 5000, 'the app server component to connect');
    return app;
  }

  of(node: string): Publish[] {
    return this.publishes.filter((p) => p.node === node);
  }

  async waitFor(node: string, n: number, what: string): Promise<Publish> {
    await waitUntil(() => this.of(node).length >= n, what, 10_000);
    return this.of(node)[n - 1]!;
  }

  stop(): Promise<unknown> {
    return this.c.stop().catch(() => undefined);
  }
}

function fieldsOf(form: XmlElement | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of form?.getChildren('field') ?? []) out[f.attrs.var ?? ''] = f.getChildText('value') ?? '';
  return out;
}

const optionsForm = (secret: string): XmlElement =>
  xml(
    'x',
    { xmlns: NS_DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, PUBLISH_OPTIONS)),
    xml('field', { var: 'secret' }, xml('value', {}, secret)),
  );

async function pushCommand(alice: XmppJsSession, name: 'enable' | 'disable', node: string | undefined, form?: XmlElement): Promise<XmlElement> {
  const attrs: Record<string, string> = { xmlns: NS_PUSH, jid: PUSH.domain };
  if (node !== undefined) attrs.node = node;
  return alice.xmpp.iqCaller.request(xml('iq', { type: 'set' }, form ? xml(name, attrs, form) : xml(name, attrs)), 10_000);
}

/** Logs alice out and waits until the server has no session of hers. */
async function offline(srv: TestServer, alice: XmppJsSession): Promise<void> {
  await alice.xmpp.stop();
  await waitUntil(() => srv.server.router.getSessions('alice@localhost').length === 0, 'alice to be gone on the server');
}

let serial = 0;
const message = (bob: LoggedIn, body: string): void =>
  bob.client.send(`<message to='alice@localhost' type='chat' id='m${++serial}'><body>${body}</body></message>`);

test('XEP-0357 with @xmpp/component as the app server and @xmpp/client as the user', async (t) => {
  let srv: TestServer | undefined = await startTestServer({
    components: { listen: { host: '127.0.0.1', port: 0 }, services: [PUSH] },
    push: { min_interval: 0 },
  });
  const dir = srv.dir;
  let restoreTls = trustCertificate(serverCertificate(dir));
  let app: AppServer | undefined;
  const closers: (() => unknown)[] = [];
  t.after(async () => {
    for (const c of closers) await c();
    await app?.stop();
    restoreTls();
    await srv?.stop();
  });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  app = await AppServer.start(srv.server.componentPort);

  // alice's account advertises push (XEP-0357 §4.1) and she enables two nodes, one with a secret.
  let alice = await startXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' });
  const info = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })), 10_000);
  const features = info.getChild('query')?.getChildren('feature').map((f) => f.attrs.var);
  assert.ok(features?.includes(NS_PUSH), 'urn:xmpp:push:0 on the account');
  await pushCommand(alice, 'enable', 'alice-node', optionsForm('s3cr3t'));
  await pushCommand(alice, 'enable', 'canary-node');
  await offline(srv, alice);

  const bob = await login(srv.port, 'bob', 'bob-pass');
  closers.push(() => bob.client.close());

  // A message: count 1, bob's full JID, no body (push.include_body is off), the secret as publish options.
  message(bob, 'first, private');
  const first = await app.waitFor('alice-node', 1, 'the first notification');
  assert.equal(first.from, 'localhost', 'XEP-0357 §7: published by the user\'s server');
  assert.deepEqual(first.fields, { FORM_TYPE: 'urn:xmpp:push:summary', 'message-count': '1', 'last-message-sender': bob.jid });
  assert.deepEqual(first.options, { FORM_TYPE: PUBLISH_OPTIONS, secret: 's3cr3t' });
  assert.equal((await app.waitFor('canary-node', 1, 'the canary')).options, undefined, 'no options enabled, none sent');

  message(bob, 'second');
  assert.equal((await app.waitFor('alice-node', 2, 'the second notification')).fields['message-count'], '2');

  // A subscription request.
  bob.client.send(`<presence to='alice@localhost' type='subscribe'/>`);
  const sub = await app.waitFor('alice-node', 3, 'the subscription notification');
  assert.equal(sub.fields['pending-subscription-count'], '1');
  assert.equal(sub.fields['message-count'], '2');

  // --- Restart on the same directory, now with push.include_body --------------------------
  bob.client.close();
  closers.length = 0;
  await app.stop();
  await srv.stop({ keep: true });
  srv = undefined;
  const file = join(dir, 'shoal.yaml');
  const yaml = parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  yaml.push = { ...yaml.push, include_body: true };
  writeFileSync(file, stringify(yaml));
  const log = new LogCapture();
  srv = await startTestServer({}, { dir, log: log.logger });
  restoreTls();
  restoreTls = trustCertificate(serverCertificate(dir));
  app = await AppServer.start(srv.server.componentPort);
  const bob2 = await login(srv.port, 'bob', 'bob-pass');
  closers.push(() => bob2.client.close());

  message(bob2, 'after the restart');
  // The registrations survived; the count did not (it is kept in memory).
  const afterRestart = await app.waitFor('alice-node', 1, 'a notification after the restart');
  assert.deepEqual(afterRestart.fields, {
    FORM_TYPE: 'urn:xmpp:push:summary',
    'message-count': '1',
    'last-message-sender': bob2.jid,
    'last-message-body': 'after the restart',
  });
  assert.deepEqual(afterRestart.options, { FORM_TYPE: PUBLISH_OPTIONS, secret: 's3cr3t' });
  await app.waitFor('canary-node', 1, 'the canary after the restart');

  // The app server refuses alice-node: it is disabled. The next message reaches the canary only.
  app.refuse.add('alice-node');
  message(bob2, 'refused');
  await app.waitFor('alice-node', 2, 'the refused notification');
  await app.waitFor('canary-node', 2, 'the canary for the refused one');
  const disabled = await log.waitFor((r) => r.event === 'push-auto-disabled', 'the node disabled');
  assert.deepEqual([disabled.node, disabled.condition], ['alice-node', 'item-not-found']);
  message(bob2, 'marker');
  await app.waitFor('canary-node', 3, 'the canary for the marker');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(app.of('alice-node').length, 2, 'nothing more for the disabled node');

  // alice disables the canary and enables a new node: only the new one is notified from now on.
  alice = await startXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' });
  await pushCommand(alice, 'disable', 'canary-node');
  await pushCommand(alice, 'enable', 'new-node');
  await offline(srv, alice);
  message(bob2, 'after disable');
  const fresh = await app.waitFor('new-node', 1, 'the new node');
  assert.equal(fresh.fields['message-count'], '1', 'counted since alice was last connected');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(app.of('canary-node').length, 3, 'nothing for the disabled canary');
  assert.equal(app.of('alice-node').length, 2);
});

test('XEP-0357 + XEP-0198: a phone whose session hibernates is notified, and its messages wait for the resume', async (t) => {
  const srv = await startTestServer({
    components: { listen: { host: '127.0.0.1', port: 0 }, services: [PUSH] },
    push: { min_interval: 0 },
    stream_management: { resume_timeout: 30 },
  });
  const restoreTls = trustCertificate(serverCertificate(srv.dir));
  const open: { app?: AppServer; alice?: XmppJsSession } = {};
  t.after(async () => {
    open.alice?.xmpp.reconnect.stop();
    await open.alice?.xmpp.stop().catch(() => undefined);
    await open.app?.stop();
    restoreTls();
    await srv.stop();
  });
  await srv.addUser('alice', 'alice-pass');
  await srv.addUser('bob', 'bob-pass');
  const app = (open.app = await AppServer.start(srv.server.componentPort));
  const alice = (open.alice = await startXmppJs({ port: srv.port, username: 'alice', password: 'alice-pass' }));
  await alice.xmpp.send(xml('presence'));
  await pushCommand(alice, 'enable', 'phone');
  const sm = (alice.xmpp as unknown as { streamManagement: { enabled: boolean; on(e: 'resumed', f: () => void): void } }).streamManagement;
  await waitUntil(() => sm.enabled, 'stream management enabled');
  const bob = await login(srv.port, 'bob', 'bob-pass');

  // Connected: no notification.
  message(bob, 'while connected');
  await alice.nextStanza((el) => el.getChildText('body') === 'while connected', 'the live message');
  // The phone loses its network: the session hibernates (still available, not attached).
  const aliceJid = alice.jid;
  alice.xmpp.socket!.socket!.destroy();
  await waitUntil(() => srv.server.router.getSession(aliceJid)?.attached === false, 'the session to hibernate');
  message(bob, 'while asleep');
  const n = await app.waitFor('phone', 1, 'a notification for the hibernating session');
  assert.equal(n.fields['message-count'], '1');
  assert.match(n.fields['last-message-sender'] ?? '', /^bob@localhost/);
  assert.equal(app.of('phone').length, 1, 'only the message while asleep was notified');
  // The app wakes up and resumes: the message is there, once.
  const resumed = new Promise<void>((resolve) => sm.on('resumed', resolve));
  void alice.xmpp.reconnect.reconnect().catch(() => undefined);
  await withTimeout(resumed, 10_000, 'the resume');
  await alice.nextStanza((el) => el.getChildText('body') === 'while asleep', 'the message kept for the resume');
  bob.client.close();
});
