// The muc section of shoal.yaml: on by default, false turns it off, the domain
// pattern and the limits checked with their key paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../config/load.js';
import { serviceDomain } from './muc.js';

function problems(data: unknown): string {
  try {
    parseConfig(data, '/base');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.join('\n');
  }
  return '';
}

test('muc configuration: defaults, off, custom domain, limits, errors', () => {
  const def = parseConfig({}, '/base');
  assert.deepEqual(def.muc, { domain: 'conference.{host}', max_rooms_per_user: 100, max_occupants: 1000, max_history: 50 });
  assert.equal(parseConfig({ muc: false }, '/base').muc, false);
  assert.deepEqual(parseConfig({ muc: null }, '/base').muc, def.muc, '`muc:` with no value: all defaults');
  const custom = parseConfig({ hosts: ['a.example', 'b.example'], muc: { domain: 'Rooms.{host}.', max_history: 0 } }, '/base').muc;
  assert.ok(custom !== false);
  assert.equal(custom.domain, 'rooms.{host}');
  assert.equal(serviceDomain(custom.domain, 'b.example'), 'rooms.b.example');
  assert.equal(custom.max_history, 0);

  assert.match(problems({ hosts: ['a.example', 'b.example'], muc: { domain: 'chat.example' } }), /^muc\.domain: with more than one host, the domain must contain \{host\}/);
  assert.match(problems({ hosts: ['chat.example', 'example'], muc: { domain: 'chat.{host}' } }), /muc\.domain: chat\.example is an account host/);
  assert.match(problems({ muc: { domain: 'a b' } }), /^muc\.domain: not a domain name/);
  assert.match(problems({ muc: { max_occupants: 0 } }), /^muc\.max_occupants: /);
  assert.match(problems({ muc: { rooms: 1 } }), /^muc\.rooms: unknown key/);
  assert.match(problems({ muc: 'yes' }), /^muc: /);
});
