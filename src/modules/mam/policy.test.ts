// What is archived, stanza-id stripping, and XEP-0441 preferences.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { x } from '../../xml/element.js';
import { loadXml } from '../../xml/stored.js';
import { Jid } from '../../jid/jid.js';
import { StanzaError } from '../../core/errors.js';
import { NS_MAM } from './query.js';
import { NS_SID, allowedByPrefs, archivable, parsePrefs, prefsElement, stanzaId, stripOwnStanzaIds } from './policy.js';

const m = (xml: string) => loadXml(xml);

describe('what a user archive keeps (XEP-0313 §7.1.1)', () => {
  test('chat and normal messages with a body or encrypted content; not errors, headlines, groupchat, chat states, no-store', () => {
    const yes = [
      `<message type='chat'><body>hi</body></message>`,
      `<message><body>normal, type left out</body></message>`,
      `<message type='normal'><body/></message>`,
      `<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>`,
      `<message type='chat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>`,
      `<message><x xmlns='jabber:x:conference' jid='room@muc'/></message>`,
      `<message type='chat'><received xmlns='urn:xmpp:receipts' id='1'/><store xmlns='urn:xmpp:hints'/></message>`,
    ];
    const no = [
      `<message type='error'><body>bounced</body></message>`,
      `<message type='headline'><body>news</body></message>`,
      `<message type='groupchat'><body>room talk</body></message>`,
      `<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
      `<message type='chat'><received xmlns='urn:xmpp:receipts' id='1'/></message>`,
      `<message type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>`,
      `<message type='chat'><body>secret</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`,
      `<message type='chat'><body xmlns='urn:other'>not a body</body></message>`,
    ];
    for (const s of yes) assert.equal(archivable(m(s)), true, s);
    for (const s of no) assert.equal(archivable(m(s)), false, s);
  });
});

describe('XEP-0359 stanza-id', () => {
  test('ids naming the archive are stripped, in any spelling of its JID; others and origin-id stay', () => {
    const msg = m(
      `<message><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='Alice@LOCALHOST' id='forged'/><stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='forged2'/>` +
        `<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.localhost' id='keep'/><stanza-id xmlns='urn:xmpp:sid:0' by='a@b@c' id='bad-jid'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>`,
    );
    assert.equal(stripOwnStanzaIds(msg, Jid.parse('alice@localhost')), true);
    assert.deepEqual(msg.getChildren('stanza-id', NS_SID).map((e) => e.attrs.id), ['keep', 'bad-jid']);
    assert.equal(msg.getChild('origin-id', NS_SID)?.attrs.id, 'o1');
    assert.equal(stripOwnStanzaIds(msg, Jid.parse('alice@localhost')), false);
    assert.equal(stanzaId(Jid.parse('alice@localhost'), 'ID1').toString(), '<stanza-id xmlns="urn:xmpp:sid:0" by="alice@localhost" id="ID1"/>');
  });
});

describe('XEP-0441 preferences', () => {
  const never = async () => assert.fail('the roster is not asked');
  test('never wins, then always, then the default; roster asks the roster; bare entries match any resource', async () => {
    const prefs = { default: undefined, always: ['bob@localhost', 'carol@localhost/phone'], never: ['mallory@localhost'] };
    const peer = (s: string) => Jid.parse(s);
    assert.equal(await allowedByPrefs(prefs, 'never', peer('bob@localhost/any'), never), true);
    assert.equal(await allowedByPrefs(prefs, 'never', peer('carol@localhost/phone'), never), true);
    assert.equal(await allowedByPrefs(prefs, 'never', peer('carol@localhost/laptop'), never), false, 'a full JID entry matches that resource only');
    assert.equal(await allowedByPrefs(prefs, 'always', peer('mallory@localhost/x'), never), false);
    assert.equal(await allowedByPrefs({ ...prefs, default: 'always' }, 'never', peer('dave@localhost'), never), true, 'the user\'s default over the server\'s');
    assert.equal(await allowedByPrefs({ ...prefs, default: 'roster' }, 'always', peer('dave@localhost'), async () => false), false);
    assert.equal(await allowedByPrefs({ ...prefs, default: 'roster' }, 'always', peer('dave@localhost'), async () => true), true);
  });

  test('parsing and the result element', () => {
    const el = x('prefs', NS_MAM, { default: 'roster' },
      x('always', NS_MAM, {}, x('jid', NS_MAM, {}, 'Romeo@Montague.lit'), x('jid', NS_MAM, {}, 'both@x')),
      x('never', NS_MAM, {}, x('jid', NS_MAM, {}, 'montague@montague.lit'), x('jid', NS_MAM, {}, 'both@x')));
    const prefs = parsePrefs(el);
    assert.deepEqual(prefs, { default: 'roster', always: ['romeo@montague.lit'], never: ['montague@montague.lit', 'both@x'] });
    const out = prefsElement({ default: undefined, always: [], never: [] }, 'always');
    assert.equal(out.toString(), '<prefs xmlns="urn:xmpp:mam:2" default="always"><always/><never/></prefs>', 'both lists present even when empty');
    const bad = (e: ReturnType<typeof x>) => { try { parsePrefs(e); } catch (err) { return (err as StanzaError).condition; } return 'none'; };
    assert.equal(bad(x('prefs', NS_MAM, { default: 'sometimes' })), 'bad-request');
    assert.equal(bad(x('prefs', NS_MAM, { default: 'always' }, x('always', NS_MAM, {}, x('jid', NS_MAM, {}, 'a@b@c')))), 'jid-malformed');
  });
});
