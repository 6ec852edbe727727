import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { Jid } from '../../jid/jid.js';
import { eligibility, NS_CARBONS, NS_CONFERENCE, NS_FORWARD, NS_HINTS, NS_MUC_USER, type Direction } from './rules.js';

const contact = Jid.parse('juliet@capulet.example/balcony');
const room = Jid.parse('room@conference.example');
const occupant = Jid.parse('room@conference.example/nurse');

const msg = (type: string | undefined, ...children: Element[]): Element => x('message', NS.CLIENT, { type, id: 'm1' }, ...children);
const body = (): Element => x('body', NS.CLIENT, {}, 'hi');
const both = (stanza: Element, from = contact): [string, string] => (['sent', 'received'] as Direction[]).map((d) => eligibility(stanza, d, from)) as [string, string];

describe('XEP-0280 §6.1 eligibility', () => {
  test('type chat is copied, with or without a body (a chat state alone too, §9.2)', () => {
    assert.deepEqual(both(msg('chat', body())), ['copy', 'copy']);
    assert.deepEqual(both(msg('chat', x('composing', 'http://jabber.org/protocol/chatstates'))), ['copy', 'copy']);
    assert.deepEqual(both(msg('chat')), ['copy', 'copy']);
  });

  test('type normal (or none) only with a body or an IM payload (receipts, chat states, markers)', () => {
    assert.deepEqual(both(msg('normal', body())), ['copy', 'copy']);
    assert.deepEqual(both(msg(undefined, body())), ['copy', 'copy']);
    assert.deepEqual(both(msg('normal')), ['no', 'no']);
    assert.deepEqual(both(msg(undefined, x('subject', NS.CLIENT, {}, 's'))), ['no', 'no']);
    assert.deepEqual(both(msg('normal', x('received', 'urn:xmpp:receipts', { id: 'x' }))), ['copy', 'copy']);
    assert.deepEqual(both(msg(undefined, x('active', 'http://jabber.org/protocol/chatstates'))), ['copy', 'copy']);
    assert.deepEqual(both(msg('normal', x('displayed', 'urn:xmpp:chat-markers:0', { id: 'x' }))), ['copy', 'copy']);
  });

  test('headline is not an IM message; groupchat never, even with a body', () => {
    assert.deepEqual(both(msg('headline', body())), ['no', 'no']);
    assert.deepEqual(both(msg('groupchat', body())), ['no', 'no']);
    assert.deepEqual(both(msg('groupchat', x('active', 'http://jabber.org/protocol/chatstates'))), ['no', 'no']);
  });

  test('an error is copied only when it answers an eligible message (the caller decides)', () => {
    assert.deepEqual(both(msg('error', body(), x('error', NS.CLIENT, { type: 'cancel' }))), ['if-answering-eligible', 'if-answering-eligible']);
  });

  test('<private/> (§8) and the XEP-0334 <no-copy/> hint exclude, each on its own', () => {
    assert.deepEqual(both(msg('chat', body(), x('private', NS_CARBONS))), ['no', 'no']);
    assert.deepEqual(both(msg('chat', body(), x('no-copy', NS_HINTS))), ['no', 'no']);
    assert.deepEqual(both(msg('chat', body(), x('no-store', NS_HINTS))), ['copy', 'copy'], 'other hints do not');
    assert.deepEqual(both(msg('chat', body(), x('private', 'urn:other'))), ['copy', 'copy'], 'only <private/> of the carbons namespace');
  });

  test('a message that already is a carbon is never wrapped again', () => {
    for (const kind of ['sent', 'received']) {
      const forged = msg('chat', x(kind, NS_CARBONS, {}, x('forwarded', NS_FORWARD, {}, msg('chat', body()))));
      assert.deepEqual(both(forged), ['no', 'no'], kind);
    }
  });

  test('MUC: a private message from an occupant is not copied; one to an occupant is; invitations are', () => {
    const pm = msg('chat', body(), x('x', NS_MUC_USER));
    assert.equal(eligibility(pm, 'received', occupant), 'no', 'received from an occupant (full JID)');
    assert.equal(eligibility(pm, 'sent', contact), 'copy', 'sent by the user to an occupant');
    const mediated = msg(undefined, x('x', NS_MUC_USER, {}, x('invite', NS_MUC_USER, { from: 'romeo@montague.example' })));
    assert.equal(eligibility(mediated, 'received', room), 'copy', 'a mediated invitation from the room');
    assert.equal(eligibility(mediated, 'sent', room), 'copy', 'a mediated invitation the user sends to the room');
    const direct = msg(undefined, x('x', NS_CONFERENCE, { jid: room.toString() }));
    assert.equal(eligibility(direct, 'received', contact), 'copy', 'a XEP-0249 direct invitation');
    assert.equal(eligibility(direct, 'sent', contact), 'copy');
  });
});
