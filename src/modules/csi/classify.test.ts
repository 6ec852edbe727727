import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { x, type Element } from '../../xml/element.js';
import { NS } from '../../xml/namespaces.js';
import { NS_CHATSTATES } from '../../xml/chatstates.js';
import { classify } from './classify.js';

const ME = 'alice@localhost/phone';
const msg = (attrs: Record<string, string>, ...children: Element[]): Element => x('message', NS.CLIENT, { from: 'bob@localhost/pc', to: ME, ...attrs }, ...children);
const pres = (attrs: Record<string, string>, ...children: Element[]): Element => x('presence', NS.CLIENT, { from: 'bob@localhost/pc', to: ME, ...attrs }, ...children);
const body = (text: string): Element => x('body', NS.CLIENT, {}, text);
const carbon = (dir: 'sent' | 'received', inner: Element): Element =>
  msg({ from: 'alice@localhost' }, x(dir, 'urn:xmpp:carbons:2', {}, x('forwarded', 'urn:xmpp:forward:0', {}, inner)));

describe('what an inactive client gets at once (classify)', () => {
  test('presence', () => {
    assert.equal(classify(pres({}), ME), 'presence');
    assert.equal(classify(pres({ type: 'unavailable' }), ME), 'presence');
    assert.equal(classify(pres({ from: ME }), ME), 'pass', 'own echo');
    assert.equal(classify(pres({ from: 'alice@localhost/laptop' }), ME), 'presence', "another resource's presence is a contact's");
    for (const type of ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']) assert.equal(classify(pres({ type }), ME), 'urgent', type);
    assert.equal(classify(pres({ type: 'error' }), ME), 'pass');
    const muc = 'http://jabber.org/protocol/muc#user';
    assert.equal(classify(pres({ from: 'room@muc.localhost/me' }, x('x', muc, {}, x('status', muc, { code: '110' }))), ME), 'urgent');
    assert.equal(classify(pres({ from: 'room@muc.localhost/other' }, x('x', muc, {}, x('item', muc, { role: 'participant' }))), ME), 'presence');
  });

  test('messages', () => {
    assert.equal(classify(msg({ type: 'chat' }, body('hi')), ME), 'urgent');
    assert.equal(classify(msg({ type: 'headline' }, body('news')), ME), 'urgent');
    assert.equal(classify(msg({ type: 'groupchat' }, x('subject', NS.CLIENT, {}, 'topic')), ME), 'urgent');
    assert.equal(classify(msg({ type: 'error' }), ME), 'urgent');
    assert.equal(classify(msg({ type: 'chat' }, x('composing', NS_CHATSTATES)), ME), 'chatstate');
    assert.equal(classify(msg({}, x('received', 'urn:xmpp:receipts', { id: '1' })), ME), 'hold');
    assert.equal(classify(msg({}, x('displayed', 'urn:xmpp:chat-markers:0', { id: '1' })), ME), 'hold');
    assert.equal(classify(msg({ type: 'headline' }, x('event', 'http://jabber.org/protocol/pubsub#event')), ME), 'hold');
    assert.equal(classify(msg({ type: 'chat' }, x('encrypted', 'eu.siacs.conversations.axolotl')), ME), 'urgent');
    assert.equal(classify(msg({}, x('x', 'jabber:x:conference', { jid: 'room@muc.localhost' })), ME), 'urgent');
    assert.equal(classify(msg({}, x('propose', 'urn:xmpp:jingle-message:0', { id: 'call' })), ME), 'urgent');
    const muc = 'http://jabber.org/protocol/muc#user';
    assert.equal(classify(msg({ from: 'room@muc.localhost' }, x('x', muc, {}, x('invite', muc, { from: 'bob@localhost' }))), ME), 'urgent');
  });

  test('carbons are worth what they carry; archive results pass', () => {
    assert.equal(classify(carbon('received', msg({ type: 'chat' }, body('hi'))), ME), 'urgent');
    assert.equal(classify(carbon('sent', msg({ type: 'chat' }, body('hi'))), ME), 'urgent');
    // Held in order, not as one sender's chat state: the outer sender is the user's own account.
    assert.equal(classify(carbon('received', msg({ type: 'chat' }, x('composing', NS_CHATSTATES))), ME), 'hold');
    const mam = msg({ from: 'alice@localhost' }, x('result', 'urn:xmpp:mam:2', { queryid: 'q', id: '1' }, x('forwarded', 'urn:xmpp:forward:0')));
    assert.equal(classify(mam, ME), 'pass');
  });

  test('IQs pass', () => {
    for (const type of ['get', 'set', 'result', 'error']) assert.equal(classify(x('iq', NS.CLIENT, { type, id: '1' }), ME), 'pass');
  });
});
