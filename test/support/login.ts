// The seed's login over raw XML: STARTTLS, SCRAM, bind, (session).
import { createHash } from 'node:crypto';
import tls from 'node:tls';
import { RawClient, STREAM_OPEN } from './raw-client.js';
import { ScramClient } from '../../src/sasl/scram-client.js';
import { NS } from '../../src/xml/namespaces.js';
import type { Element } from '../../src/xml/element.js';
import type { ScramHash } from '../../src/storage/types.js';

export interface LoginOptions {
  hash?: ScramHash;
  /** Channel binding type for -PLUS. */
  cbType?: 'tls-exporter' | 'tls-server-end-point';
  resource?: string;
  /** Skip STARTTLS (server without a tls section). */
  plaintext?: boolean;
}

export interface LoggedIn {
  client: RawClient;
  jid: string;
  features: Element;
}

/** RFC 5929 §4.1 / RFC 9266 channel binding data as the client computes it. */
export function clientChannelBinding(client: RawClient, type: 'tls-exporter' | 'tls-server-end-point'): Buffer {
  const s = client.socket as tls.TLSSocket;
  if (type === 'tls-exporter') return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  const cert = s.getPeerX509Certificate();
  if (!cert) throw new Error('no server certificate');
  // Test certificates are SHA-256 signed.
  return createHash('sha256').update(cert.raw).digest();
}


/** Runs SCRAM on an open stream whose features were just received; resolves after <success/>. */
export async function scramAuth(client: RawClient, user: string, password: string, opts: LoginOptions = {}): Promise<void> {
  const hash = opts.hash ?? 'SHA-256';
  const plus = opts.cbType !== undefined;
  const mech = `SCRAM-${hash}${plus ? '-PLUS' : ''}`;
  const scram = new ScramClient(hash, user, password, plus ? { cbType: opts.cbType, cbData: clientChannelBinding(client, opts.cbType!) } : {});
  client.send(`<auth xmlns='${NS.SASL}' mechanism='${mech}'>${Buffer.from(scram.first()).toString('base64')}</auth>`);
  const challenge = await client.element();
  if (challenge.name !== 'challenge') throw new Error(`expected challenge, got ${challenge.toString()}`);
  const final = scram.final(Buffer.from(challenge.text(), 'base64').toString());
  client.send(`<response xmlns='${NS.SASL}'>${Buffer.from(final).toString('base64')}</response>`);
  const success = await client.element();
  if (success.name !== 'success') throw new Error(`expected success, got ${success.toString()}`);
  if (!scram.verify(Buffer.from(success.text(), 'base64').toString())) throw new Error('server signature did not verify');
}

export async function login(port: number, user: string, password: string, opts: LoginOptions = {}): Promise<LoggedIn> {
  const client = await RawClient.connect(port);
  client.send(STREAM_OPEN());
  await client.header();
  await client.element('features');
  if (!opts.plaintext) {
    await client.startTls();
    await client.restart();
  }
  await scramAuth(client, user, password, opts);
  const features = await client.restart();
  const resource = opts.resource ? `<resource>${opts.resource}</resource>` : '';
  client.send(`<iq type='set' id='bind1'><bind xmlns='${NS.BIND}'>${resource}</bind></iq>`);
  const bound = await client.waitFor((el) => el.name === 'iq' && el.attrs.id === 'bind1', 'bind result');
  const jid = bound.getChild('bind', NS.BIND)?.getChildText('jid', NS.BIND);
  if (bound.attrs.type !== 'result' || !jid) throw new Error(`bind failed: ${bound.toString()}`);
  return { client, jid, features };
}
