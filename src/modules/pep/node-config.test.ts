import { test } from 'node:test';
import assert from 'node:assert/strict';
import { x } from '../../xml/element.js';
import { StanzaError } from '../../core/errors.js';
import { applyConfigForm, applyPublishOptions, configForm, defaultConfig, itemsKept, loadConfig, storeConfig } from './node-config.js';
import { PubsubError } from './errors.js';
import { FORM_NODE_CONFIG, FORM_PUBLISH_OPTIONS, NS_DATA, NS_PUBSUB_ERRORS } from './ns.js';

const LIMITS = { maxItems: 50 };
const form = (formType: string | undefined, fields: Record<string, string | string[]>, type = 'submit') =>
  x(
    'x',
    NS_DATA,
    { type },
    formType === undefined ? undefined : x('field', NS_DATA, { var: 'FORM_TYPE', type: 'hidden' }, x('value', NS_DATA, {}, formType)),
    ...Object.entries(fields).map(([k, v]) => x('field', NS_DATA, { var: k }, ...(Array.isArray(v) ? v : [v]).map((s) => x('value', NS_DATA, {}, s)))),
  );
const opts = (fields: Record<string, string | string[]>) => form(FORM_PUBLISH_OPTIONS, fields);

function assertPrecondition(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PubsubError);
    assert.equal(err.condition, 'conflict');
    assert.equal(err.pubsub, 'precondition-not-met');
    const el = err.toElement();
    assert.ok(el.getChild('conflict', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    assert.ok(el.getChild('precondition-not-met', NS_PUBSUB_ERRORS), 'the pubsub condition is in the error element');
    return true;
  });
}

test('XEP-0163 §6 defaults: presence access, last item on presence, notifications with payloads', () => {
  const d = defaultConfig();
  assert.equal(d.accessModel, 'presence');
  assert.equal(d.sendLast, 'on_sub_and_presence');
  assert.ok(d.deliverNotifications && d.deliverPayloads && d.persistItems);
});

test('publish-options for a node that does not exist: the defaults except the options (XEP-0060 §7.1.5 rule 3)', () => {
  const c = applyPublishOptions(undefined, defaultConfig(), opts({ 'pubsub#access_model': 'open', 'pubsub#max_items': 'max', 'pubsub#persist_items': 'true', 'pubsub#send_last_published_item': 'never' }), LIMITS);
  assert.equal(c.accessModel, 'open');
  assert.equal(c.maxItems, 50, "'max' is the server's limit");
  assert.equal(c.sendLast, 'never');
  assert.equal(c.deliverPayloads, true, 'untouched fields keep the default');
});

test('publish-options against an existing node: equal passes, any difference is precondition-not-met', () => {
  const node = { ...defaultConfig(), accessModel: 'open' as const, maxItems: 50 };
  assert.equal(applyPublishOptions(node, defaultConfig(), opts({ 'pubsub#access_model': 'open', 'pubsub#max_items': 'max' }), LIMITS), node);
  assert.equal(applyPublishOptions(node, defaultConfig(), opts({ 'pubsub#max_items': '50', 'pubsub#persist_items': '1' }), LIMITS), node);
  assertPrecondition(() => applyPublishOptions(node, defaultConfig(), opts({ 'pubsub#access_model': 'presence' }), LIMITS));
  assertPrecondition(() => applyPublishOptions(node, defaultConfig(), opts({ 'pubsub#max_items': '1' }), LIMITS));
  assertPrecondition(() => applyPublishOptions(node, defaultConfig(), opts({ 'pubsub#persist_items': 'false' }), LIMITS));
  assertPrecondition(() => applyPublishOptions(node, defaultConfig(), opts({ 'pubsub#send_last_published_item': 'never' }), LIMITS));
});

test('publish-options: unknown fields and values this service cannot hold are precondition-not-met, even for a new node', () => {
  assertPrecondition(() => applyPublishOptions(undefined, defaultConfig(), opts({ 'pubsub#unknown': 'x' }), LIMITS));
  assertPrecondition(() => applyPublishOptions(undefined, defaultConfig(), opts({ 'pubsub#access_model': 'authorize' }), LIMITS));
  assertPrecondition(() => applyPublishOptions(undefined, defaultConfig(), opts({ 'pubsub#max_items': '51' }), LIMITS));
  assertPrecondition(() => applyPublishOptions(undefined, defaultConfig(), opts({ 'pubsub#persist_items': 'maybe' }), LIMITS));
});

test('publish-options must be a publish-options form', () => {
  assert.throws(
    () => applyPublishOptions(undefined, defaultConfig(), form(FORM_NODE_CONFIG, { 'pubsub#access_model': 'open' }), LIMITS),
    (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request',
  );
  assert.throws(() => applyPublishOptions(undefined, defaultConfig(), x('y', 'urn:other'), LIMITS), (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request');
});

test('node configuration forms: applied field by field, unknown fields ignored, bad values not-acceptable', () => {
  const c = applyConfigForm(defaultConfig(), form(FORM_NODE_CONFIG, { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': ['a', 'b'], 'pubsub#max_items': '7', 'pubsub#x-unknown': 'y' }), LIMITS);
  assert.equal(c.accessModel, 'roster');
  assert.deepEqual(c.rosterGroups, ['a', 'b']);
  assert.equal(c.maxItems, 7);
  assert.throws(
    () => applyConfigForm(defaultConfig(), form(FORM_NODE_CONFIG, { 'pubsub#access_model': 'authorize' }), LIMITS),
    (e: unknown) => e instanceof PubsubError && e.condition === 'not-acceptable' && e.pubsub === 'unsupported-access-model',
  );
  assert.throws(() => applyConfigForm(defaultConfig(), form(FORM_NODE_CONFIG, { 'pubsub#max_items': '0' }), LIMITS), (e: unknown) => e instanceof StanzaError && e.condition === 'not-acceptable');
  assert.throws(() => applyConfigForm(defaultConfig(), form(FORM_NODE_CONFIG, { 'pubsub#max_items': '51' }), LIMITS), (e: unknown) => e instanceof StanzaError && e.condition === 'not-acceptable');
  assert.throws(() => applyConfigForm(defaultConfig(), form(FORM_PUBLISH_OPTIONS, {}), LIMITS), (e: unknown) => e instanceof StanzaError && e.condition === 'bad-request');
  assert.equal(applyConfigForm(defaultConfig(), form(undefined, { 'pubsub#access_model': 'open' }, 'cancel'), LIMITS).accessModel, 'presence', 'a cancelled form changes nothing');
});

test('the configuration form lists the values; stored configurations read back, damaged ones fall back to the default', () => {
  const c = { ...defaultConfig(), accessModel: 'whitelist' as const, maxItems: 9 };
  const fields = new Map(configForm(c, LIMITS).getChildren('field', NS_DATA).map((f) => [f.attrs.var, f.getChildText('value', NS_DATA)]));
  assert.equal(fields.get('FORM_TYPE'), FORM_NODE_CONFIG);
  assert.equal(fields.get('pubsub#access_model'), 'whitelist');
  assert.equal(fields.get('pubsub#max_items'), '9');
  assert.deepEqual(loadConfig(storeConfig(c)), c);
  assert.deepEqual(loadConfig('{not json'), defaultConfig());
  assert.equal(loadConfig('{"accessModel":"bogus"}').accessModel, 'presence');
  assert.equal(itemsKept({ ...c, persistItems: false }), 1, 'a node that does not persist keeps its last item only');
});
