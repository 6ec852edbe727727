// The MUC tables: rooms with affiliations and messages, tombstones, and an
// account's affiliations going with the account.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempStorage, credentials } from '../../storage/sql/testutil.js';
import { MucStore } from './store.js';

const ROOM = { name: 'r', config: '{"persistent":true}', subject: 'hi', subjectFrom: 'A', secret: 'k' };

test('rooms, affiliations and messages survive a reopen; a deleted account loses its affiliations', async () => {
  const t = await tempStorage();
  try {
    await t.storage.accounts.create('localhost', 'bob', [credentials('SHA-256', 1)]);
    let store = await MucStore.open(t.storage.sql);
    const affs = new Map([
      ['alice@localhost', { affiliation: 'owner' as const }],
      ['bob@localhost', { affiliation: 'member' as const, nick: 'Bobby' }],
      ['eve@elsewhere.example', { affiliation: 'outcast' as const, reason: 'spam' }],
    ]);
    await store.saveRoom('conference.localhost', ROOM, affs, ['localhost']);
    await store.addMessage('conference.localhost', 'r', { id: 'a', stamp: 1000, sender: 'alice@localhost/x', xml: '<message xmlns="jabber:client"><body>1</body></message>' });
    await store.addMessage('conference.localhost', 'r', { id: 'b', stamp: 2000, sender: 'alice@localhost/x', xml: '<message xmlns="jabber:client"><body>2</body></message>' });
    assert.equal(await store.retract('conference.localhost', 'r', 'a', '<message xmlns="jabber:client"><retracted xmlns="urn:xmpp:message-retract:1"/></message>'), true);
    assert.equal(await store.retract('conference.localhost', 'r', 'zzz', '<message xmlns="jabber:client"/>'), false);

    await t.reopen();
    store = await MucStore.open(t.storage.sql);
    const [room] = await store.rooms('conference.localhost');
    assert.equal(room?.subject, 'hi');
    assert.deepEqual([...room!.affiliations.keys()].sort(), ['alice@localhost', 'bob@localhost', 'eve@elsewhere.example']);
    assert.deepEqual(room!.affiliations.get('bob@localhost'), { affiliation: 'member', nick: 'Bobby' });
    assert.deepEqual(room!.affiliations.get('eve@elsewhere.example'), { affiliation: 'outcast', reason: 'spam' });
    assert.deepEqual((await store.recent('conference.localhost', 'r', 10)).map((m) => m.id), ['b'], 'a retracted message is not history');
    assert.equal((await store.message('conference.localhost', 'r', 'a'))?.retracted, true, 'the tombstone stays in the archive');

    // shoal user del: bob's affiliation goes with his account; alice (no account here) and eve stay.
    assert.equal(await t.storage.accounts.remove('localhost', 'bob'), true);
    const [after] = await store.rooms('conference.localhost');
    assert.deepEqual([...after!.affiliations.keys()].sort(), ['alice@localhost', 'eve@elsewhere.example']);

    await store.setAffiliation('conference.localhost', 'r', 'eve@elsewhere.example', undefined, ['localhost']);
    await store.deleteRoom('conference.localhost', 'r');
    assert.deepEqual(await store.rooms('conference.localhost'), []);
    assert.equal(await store.message('conference.localhost', 'r', 'b'), undefined);
  } finally {
    await t.cleanup();
  }
});
