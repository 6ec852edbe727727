// XEP-0114 Jabber Component Protocol, accept side: an external component (a
// gateway, a bridge, a push app server) connects, names the domain it serves in
// its stream header and proves the shared secret with a handshake; from then on
// every stanza for that domain and its subdomains is routed to it, and what it
// sends is routed as coming from its domain, never from anyone else.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Element, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';
import type { StreamHeader } from '../xml/parser.js';
import { Jid } from '../jid/jid.js';
import { StanzaError, StreamError, errorReply } from '../core/errors.js';
import type { EndReason } from '../core/session.js';
import type { AddressedStanza, ServiceOptions } from '../core/api.js';
import type { Transport } from './transport.js';
import { TcpFraming } from './framing.js';
import { StreamConnection, type StreamEnv } from './connection.js';
import { RateShaper } from './shaper.js';

/** XEP-0114 §7.1 */
export const NS_COMPONENT_ACCEPT = 'jabber:component:accept';

/** What a component stream needs from the server around it. */
export interface ComponentContext extends StreamEnv {
  readonly components: ComponentDomains;
  /** The domain our header names before the component said which one it serves. */
  readonly defaultHost: string;
  /** Routes a stanza the component sent ('from' checked, 'to' present). */
  route(stanza: Element): Promise<void>;
}

/** What the server needs to make a component's domain a service domain. */
export interface ComponentHost {
  registerService(domain: string, handler: (s: AddressedStanza) => void, options: ServiceOptions): () => void;
  bounce(stanza: Element, error: StanzaError): void;
  /** A cluster: tells the other nodes the component for `domain` is connected here (or no longer). */
  announce?(domain: string, on: boolean): void;
  /** A cluster: hands a stanza to the node the component for `domain` is connected to; false when none is. */
  forward?(domain: string, stanza: Element): boolean;
}

/**
 * The configured component domains, each a service domain from the start: stanzas for it go
 * to its connected component, or, while none is, get service-unavailable (RFC 6120 §8.3.3.19)
 * rather than the remote-server-not-found of an unknown domain.
 */
export class ComponentDomains {
  private readonly secrets = new Map<string, string>();
  private readonly connected = new Map<string, ComponentStream>();
  private readonly unregister: (() => void)[] = [];

  constructor(
    private readonly host: ComponentHost,
    services: readonly { domain: string; secret: string }[],
  ) {
    for (const { domain, secret } of services) {
      const d = domain.toLowerCase();
      this.secrets.set(d, secret);
      this.unregister.push(host.registerService(d, (s) => this.deliver(d, s), { subdomains: true }));
    }
  }

  /** The shared secret of a configured component domain, or undefined when the domain is not one. */
  secretFor(domain: string): string | undefined {
    return this.secrets.get(domain);
  }

  /** The component stream serving `domain` from now on; false when one already does (XEP-0114: conflict). */
  attach(domain: string, stream: ComponentStream): boolean {
    if (this.connected.has(domain)) return false;
    this.connected.set(domain, stream);
    this.host.announce?.(domain, true);
    return true;
  }

  detach(domain: string, stream: ComponentStream): void {
    if (this.connected.get(domain) !== stream) return;
    this.connected.delete(domain);
    this.host.announce?.(domain, false);
  }

  isConnected(domain: string): boolean {
    return this.connected.has(domain);
  }

  private deliver(domain: string, s: AddressedStanza): void {
    const stream = this.connected.get(domain);
    if (stream?.write(s.stanza)) return;
    // In a cluster the component may be connected to another node.
    if (stream === undefined && this.host.forward?.(domain, s.stanza)) return;
    const type = s.stanza.attrs.type;
    const request = s.kind === 'iq' ? type === 'get' || type === 'set' : s.kind === 'message' ? type !== 'error' && type !== 'groupchat' : false;
    if (request) this.host.bounce(s.stanza, new StanzaError('service-unavailable', 'the component is not connected'));
  }

  /** Stops routing to the component domains. */
  close(): void {
    for (const u of this.unregister.splice(0)) u();
  }
}

export class ComponentStream extends StreamConnection {
  private domain: string | undefined;
  private streamId: string | undefined;
  private authenticated = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ctx: ComponentContext,
    transport: Transport,
  ) {
    super(ctx, transport, new TcpFraming(NS_COMPONENT_ACCEPT), { component: true });
    this.shapers.push(new RateShaper(ctx.config.limits.rate.component));
    // A peer that never completes the handshake is dropped like a client that never logs in.
    this.timer = setTimeout(() => {
      if (!this.authenticated) this.closeWithError(new StreamError('connection-timeout', 'handshake took too long'));
    }, ctx.config.timeouts.pre_auth * 1000);
    this.log.info({ event: 'component-connect' }, 'component connected');
  }

  /** The domain this component serves, once its handshake succeeded. */
  get servedDomain(): string | undefined {
    return this.authenticated ? this.domain : undefined;
  }

  protected get defaultFrom(): string {
    return this.domain || this.ctx.defaultHost;
  }

  /** XEP-0114 §3: this protocol predates stream features; the header carries no version. */
  protected override get speaksVersion(): boolean {
    return false;
  }

  protected onStreamStart(h: StreamHeader): void {
    // XEP-0114 §3: the component names the domain it serves in 'to'; our header answers from it.
    const to = (h.attrs.to ?? '').toLowerCase();
    this.domain = to;
    this.streamId = this.sendHeader(this.defaultFrom, h);
    if (h.name !== 'stream' || h.uri !== NS.STREAM) return this.closeWithError(new StreamError('invalid-namespace', 'root must be stream:stream'));
    if (h.contentNs !== NS_COMPONENT_ACCEPT) return this.closeWithError(new StreamError('invalid-namespace', `content namespace must be ${NS_COMPONENT_ACCEPT}`));
    if (this.ctx.components.secretFor(to) === undefined) return this.closeWithError(new StreamError('host-unknown', 'no component is configured for that domain'));
    this.opened();
  }

  protected async process(el: Element): Promise<void> {
    const ns = el.xmlns;
    if (!this.authenticated) {
      if (el.name === 'handshake' && ns === NS_COMPONENT_ACCEPT) return this.handshake(el.text());
      throw new StreamError('not-authorized', 'handshake first');
    }
    if (ns !== NS_COMPONENT_ACCEPT || (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq')) {
      throw new StreamError('unsupported-stanza-type', `<${el.name}/> in ${ns}`);
    }
    const stanza = toClientNamespace(el);
    this.checkFrom(stanza);
    if (stanza.attrs.to === undefined) {
      // Stanzas from a component must be addressed (nothing is "the component's own account").
      const type = stanza.attrs.type;
      if (type !== 'error' && type !== 'result') this.write(errorReply(stanza, new StanzaError('bad-request', 'a component must give a to address')));
      return;
    }
    await this.ctx.route(stanza);
  }

  /** XEP-0114 §3: SHA-1 of the stream id and the secret, in hex; compared in constant time. */
  private handshake(text: string): void {
    const domain = this.domain!;
    const secret = this.ctx.components.secretFor(domain)!;
    const expected = createHash('sha1').update(this.streamId! + secret, 'utf8').digest();
    const given = /^[0-9a-fA-F]{40}$/.test(text.trim()) ? Buffer.from(text.trim(), 'hex') : Buffer.alloc(0);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      this.log.info({ event: 'component-auth-failure', domain }, 'component handshake failed');
      throw new StreamError('not-authorized', 'wrong handshake');
    }
    if (!this.ctx.components.attach(domain, this)) {
      // XEP-0114 / RFC 6120 §4.9.3.3: another connection already serves this domain.
      this.log.info({ event: 'component-conflict', domain }, 'component domain already connected');
      throw new StreamError('conflict', 'a component is already connected for this domain');
    }
    this.authenticated = true;
    clearTimeout(this.timer);
    this.log.info({ event: 'component-auth', domain }, 'component authenticated');
    this.writeElement(x('handshake', NS_COMPONENT_ACCEPT));
  }

  /** The component may only speak for its domain and the subdomains routed to it. */
  private checkFrom(stanza: Element): void {
    const domain = this.domain!;
    const from = stanza.attrs.from;
    if (from === undefined) {
      stanza.attrs.from = domain;
      return;
    }
    let jid: Jid;
    try {
      jid = Jid.parse(from);
    } catch {
      throw new StreamError('invalid-from', 'malformed from address');
    }
    if (jid.domain !== domain && !jid.domain.endsWith('.' + domain)) {
      throw new StreamError('invalid-from', `a component for ${domain} cannot send from ${jid.domain}`);
    }
    stanza.attrs.from = jid.toString();
  }

  /** Writes a stanza to the component; false when the stream is no longer open. */
  write(stanza: Element): boolean {
    return this.writeElement(stanza);
  }

  protected onFinish(reason: EndReason, error?: Error): void {
    clearTimeout(this.timer);
    if (this.authenticated) this.ctx.components.detach(this.domain!, this);
    this.log.info({ event: 'component-disconnect', domain: this.servedDomain ?? this.domain, reason, err: error?.message }, 'component disconnected');
  }
}

/**
 * Stanzas from a component arrive in jabber:component:accept; inside the server every stanza
 * is in jabber:client (the framing writes them back in the component's namespace).
 */
function toClientNamespace(el: Element): Element {
  const out = new Element(el.name, el.xmlns === NS_COMPONENT_ACCEPT ? NS.CLIENT : el.xmlns, el.attrs);
  for (const c of el.children) out.children.push(typeof c === 'string' ? c : toClientNamespace(c));
  return out;
}
