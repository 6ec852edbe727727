import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../config/schema.js';

const issues = (input: Record<string, unknown>): string[] => {
  const r = configSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('upload config: defaults, false, and domains that cannot be', () => {
  const c = configSchema.parse({});
  assert.notEqual(c.upload, false);
  if (c.upload !== false) {
    assert.equal(c.upload.domain, 'upload.{host}');
    assert.equal(c.upload.expire_after_days, 30);
  }
  assert.equal(configSchema.parse({ upload: false }).upload, false);
  assert.deepEqual(issues({ hosts: ['a.example', 'b.example'], upload: { domain: 'files.example' } }), ['upload.domain: with more than one host, the domain must contain {host}']);
  assert.deepEqual(issues({ hosts: ['a.example', 'upload.a.example'] }), ['upload.domain: upload.a.example is an account host, not a service domain']);
  assert.deepEqual(issues({ upload: { domain: 'x.{host}' }, muc: { domain: 'x.{host}' } }), ['upload.domain: x.localhost is also the muc domain']);
  assert.deepEqual(issues({ upload: { max_file_bytes: 0 } }), ['upload.max_file_bytes: Too small: expected number to be >=1']);
  assert.deepEqual(issues({ upload: { unknown: 1 } }).length, 1);
});
