import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { x } from './element.js';
import { NS } from './namespaces.js';
import { isStandaloneChatState, NS_CHATSTATES } from './chatstates.js';

describe('isStandaloneChatState (XEP-0085)', () => {
  const msg = (...children: ReturnType<typeof x>[]) => x('message', NS.CLIENT, { type: 'chat' }, ...children);
  test('only a chat state, with or without a thread', () => {
    assert.equal(isStandaloneChatState(msg(x('composing', NS_CHATSTATES))), true);
    assert.equal(isStandaloneChatState(msg(x('paused', NS_CHATSTATES), x('thread', NS.CLIENT, {}, 't'))), true);
  });
  test('anything else is content', () => {
    assert.equal(isStandaloneChatState(msg()), false);
    assert.equal(isStandaloneChatState(msg(x('active', NS_CHATSTATES), x('body', NS.CLIENT, {}, 'hi'))), false);
    assert.equal(isStandaloneChatState(msg(x('thread', NS.CLIENT, {}, 't'))), false);
    assert.equal(isStandaloneChatState(msg(x('gone', NS_CHATSTATES), x('x', 'jabber:x:oob'))), false);
  });
});
