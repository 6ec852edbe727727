// Raw-XML helpers for the multi-user chat tests (XEP-0045): entering rooms,
// reading status codes and items of MUC presence, configuring rooms.
import assert from 'node:assert/strict';
import type { Element } from '../../src/xml/element.js';
import { iq, type RawClient } from './raw-client.js';
import { login, type LoggedIn } from './login.js';
import { NS } from '../../src/xml/namespaces.js';

export const MUC = 'http://jabber.org/protocol/muc';
export const MUC_USER = 'http://jabber.org/protocol/muc#user';
export const MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const DATA = 'jabber:x:data';
export const SERVICE = 'conference.localhost';

/** Logs in over raw XML and sends initial presence. */
export async function online(port: number, user: string, resource?: string): Promise<LoggedIn> {
  const s = await login(port, user, `${user}-pass`, resource !== undefined ? { resource } : {});
  s.client.send('<presence/>');
  return s;
}

/** The status codes of a MUC presence or message (XEP-0045 §15.6.2), sorted. */
export function codes(el: Element): number[] {
  return (el.getChild('x', MUC_USER)?.getChildren('status', MUC_USER) ?? []).map((s) => Number(s.attrs.code)).sort((a, b) => a - b);
}

/** The <item/> of a MUC presence. */
export function item(el: Element): Record<string, string> {
  const i = el.getChild('x', MUC_USER)?.getChild('item', MUC_USER);
  assert.ok(i, `no muc#user item in ${el.toString()}`);
  return i.attrs;
}

export const isPresenceFrom =
  (from: string, type?: string) =>
  (el: Element): boolean =>
    el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;

export const isSelfPresence =
  (from: string, type?: string) =>
  (el: Element): boolean =>
    isPresenceFrom(from, type)(el) && codes(el).includes(110);

export const isGroupchat =
  (body: string) =>
  (el: Element): boolean =>
    el.name === 'message' && el.attrs.type === 'groupchat' && el.getChildText('body') === body;

export const isSubject = (room: string) => (el: Element): boolean =>
  el.name === 'message' && (el.attrs.from ?? '').startsWith(room) && el.getChild('subject') !== undefined && el.getChild('body') === undefined;

/** Sends an entering presence and returns the self-presence (or the error presence). */
export async function enter(c: RawClient, room: string, nick: string, inner = ''): Promise<Element> {
  c.send(`<presence to='${room}/${nick}'><x xmlns='${MUC}'>${inner}</x></presence>`);
  return c.waitFor(
    (el) => el.name === 'presence' && el.attrs.from === `${room}/${nick}` && (el.attrs.type === 'error' || codes(el).includes(110)),
    `self-presence from ${room}/${nick}`,
  );
}

/** Enters and waits for the subject, which ends the entry (§7.2.15). */
export async function join(c: RawClient, room: string, nick: string, inner = ''): Promise<Element> {
  const self = await enter(c, room, nick, inner);
  assert.notEqual(self.attrs.type, 'error', `entering ${room} failed: ${self.toString()}`);
  await c.waitFor(isSubject(room), `the subject of ${room}`);
  return self;
}

/** Creates a room and accepts the default configuration (§10.1.2 instant room). */
export async function createInstant(c: RawClient, room: string, nick: string): Promise<Element> {
  const self = await enter(c, room, nick);
  assert.deepEqual(codes(self).filter((n) => n === 201 || n === 110), [110, 201], self.toString());
  await c.waitFor(isSubject(room), 'the subject');
  const r = await iq(c, `type='set' to='${room}'`, `<query xmlns='${MUC_OWNER}'><x xmlns='${DATA}' type='submit'/></query>`);
  assert.equal(r.attrs.type, 'result', r.toString());
  return self;
}

/** Submits a room configuration form with these fields (§10.2). */
export async function configure(c: RawClient, room: string, fields: Record<string, string>): Promise<Element> {
  const f = Object.entries(fields)
    .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
    .join('');
  return iq(
    c,
    `type='set' to='${room}'`,
    `<query xmlns='${MUC_OWNER}'><x xmlns='${DATA}' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>${f}</x></query>`,
  );
}

/** The rooms the service lists (§6.3). */
export async function listedRooms(c: RawClient): Promise<string[]> {
  const r = await iq(c, `type='get' to='${SERVICE}'`, `<query xmlns='${NS.DISCO_ITEMS}'/>`);
  assert.equal(r.attrs.type, 'result', r.toString());
  return (r.getChild('query', NS.DISCO_ITEMS)?.getChildren('item') ?? []).map((i) => i.attrs.jid ?? '');
}
