import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NOTIFY_NODES, notifyNodes } from './interest.js';

test('notifyNodes: the NODE of each NODE+notify feature (XEP-0060 §9.2), nothing else', () => {
  assert.deepEqual([...notifyNodes(['http://jabber.org/protocol/tune+notify', 'urn:xmpp:omemo:2:devices+notify', 'urn:xmpp:ping', '+notify', 'x+notifyy'])], [
    'http://jabber.org/protocol/tune',
    'urn:xmpp:omemo:2:devices',
  ]);
});

test('notifyNodes: at most MAX_NOTIFY_NODES per resource', () => {
  const many = Array.from({ length: MAX_NOTIFY_NODES + 50 }, (_, i) => `urn:n${i}+notify`);
  assert.equal(notifyNodes(many).size, MAX_NOTIFY_NODES);
});
