// The configuration of a PEP node (XEP-0060 §17.4.4 pubsub#node_config, the
// subset a PEP service needs), its defaults (XEP-0163 §5), the owner's data form
// (XEP-0060 §8.2) and publish-options preconditions (XEP-0060 §7.1.5).
import { x, type Element } from '../../xml/element.js';
import { StanzaError } from '../../core/errors.js';
import { FORM_NODE_CONFIG, FORM_PUBLISH_OPTIONS, NS_DATA } from './ns.js';
import { PubsubError, preconditionNotMet } from './errors.js';

export const ACCESS_MODELS = ['open', 'presence', 'roster', 'whitelist'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const SEND_LAST = ['never', 'on_sub', 'on_sub_and_presence'] as const;
export type SendLast = (typeof SEND_LAST)[number];

export interface NodeConfig {
  accessModel: AccessModel;
  /** pubsub#roster_groups_allowed: for the roster access model. */
  rosterGroups: string[];
  /** pubsub#persist_items: false keeps only the last item (what is sent on presence). */
  persistItems: boolean;
  /** pubsub#max_items, resolved: 'max' is the server's limit. */
  maxItems: number;
  sendLast: SendLast;
  deliverNotifications: boolean;
  deliverPayloads: boolean;
  notifyRetract: boolean;
  notifyDelete: boolean;
  title: string;
}

/** The server's limits a configuration must respect. */
export interface ConfigLimits {
  /** The largest pubsub#max_items (what 'max' means). */
  maxItems: number;
}

/** XEP-0163 §5 recommended defaults: presence access, last item on presence, notifications with payloads. */
export function defaultConfig(): NodeConfig {
  return {
    accessModel: 'presence',
    rosterGroups: [],
    persistItems: true,
    maxItems: 1,
    sendLast: 'on_sub_and_presence',
    deliverNotifications: true,
    deliverPayloads: true,
    notifyRetract: true,
    notifyDelete: true,
    title: '',
  };
}

/** Items kept at most: a node that does not persist keeps its last item only. */
export function itemsKept(c: NodeConfig): number {
  return c.persistItems ? c.maxItems : 1;
}

// --- Reading data forms (XEP-0004) ---------------------------------------------------------

/** The fields of a form: var -> values. */
export function formFields(form: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of form.getChildren('field', NS_DATA)) {
    const name = f.attrs.var;
    if (name === undefined) continue;
    out.set(
      name,
      f.getChildren('value', NS_DATA).map((v) => v.text()),
    );
  }
  return out;
}

function parseBool(v: string | undefined, name: string): boolean {
  // XEP-0004 §3.3 boolean: "0"/"false" or "1"/"true".
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new StanzaError('not-acceptable', `${name} must be a boolean`);
}

function parseMaxItems(v: string | undefined, limits: ConfigLimits): number {
  if (v === 'max') return limits.maxItems;
  const n = v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new StanzaError('not-acceptable', 'pubsub#max_items must be a positive integer or "max"');
  if (n > limits.maxItems) throw new PubsubError('not-acceptable', 'invalid-options', `pubsub#max_items above this server's limit of ${limits.maxItems}`);
  return n;
}

/** One field of pubsub#node_config applied to `c`; false for a field this service does not know. */
function applyField(c: NodeConfig, name: string, values: string[], limits: ConfigLimits): boolean {
  const v = values[0];
  switch (name) {
    case 'pubsub#access_model':
      if (!(ACCESS_MODELS as readonly string[]).includes(v ?? '')) {
        // XEP-0060 §8.1.3 (create) / §8.2.5: an access model this service does not support.
        throw new PubsubError('not-acceptable', 'unsupported-access-model');
      }
      c.accessModel = v as AccessModel;
      return true;
    case 'pubsub#roster_groups_allowed':
      c.rosterGroups = values.filter((g) => g !== '');
      return true;
    case 'pubsub#persist_items':
      c.persistItems = parseBool(v, name);
      return true;
    case 'pubsub#max_items':
      c.maxItems = parseMaxItems(v, limits);
      return true;
    case 'pubsub#send_last_published_item':
      if (!(SEND_LAST as readonly string[]).includes(v ?? '')) throw new StanzaError('not-acceptable', `${name} must be one of ${SEND_LAST.join(', ')}`);
      c.sendLast = v as SendLast;
      return true;
    case 'pubsub#deliver_notifications':
      c.deliverNotifications = parseBool(v, name);
      return true;
    case 'pubsub#deliver_payloads':
      c.deliverPayloads = parseBool(v, name);
      return true;
    case 'pubsub#notify_retract':
      c.notifyRetract = parseBool(v, name);
      return true;
    case 'pubsub#notify_delete':
      c.notifyDelete = parseBool(v, name);
      return true;
    case 'pubsub#title':
      c.title = (v ?? '').slice(0, 256);
      return true;
    case 'pubsub#publish_model':
      // One publisher per node (XEP-0163 §2.2): only the owner publishes.
      if (v !== 'publishers') throw new StanzaError('not-acceptable', 'only the publishers model (the owner) is supported');
      return true;
    default:
      return false;
  }
}

/**
 * A node_config form submitted by the owner (XEP-0060 §8.1.3 create-and-configure, §8.2.4 submit)
 * applied to `base`; unknown fields are ignored (§8.2.4 lets a service keep only what it knows),
 * bad values are not-acceptable.
 */
export function applyConfigForm(base: NodeConfig, form: Element, limits: ConfigLimits): NodeConfig {
  if (form.name !== 'x' || form.xmlns !== NS_DATA) throw new StanzaError('bad-request', 'expected a jabber:x:data form');
  const type = form.attrs.type;
  if (type === 'cancel') return base;
  if (type !== 'submit') throw new StanzaError('bad-request', 'the form must be of type submit');
  const fields = formFields(form);
  const formType = fields.get('FORM_TYPE')?.[0];
  if (formType !== undefined && formType !== FORM_NODE_CONFIG) throw new StanzaError('bad-request', `FORM_TYPE must be ${FORM_NODE_CONFIG}`);
  const c: NodeConfig = { ...base, rosterGroups: [...base.rosterGroups] };
  for (const [name, values] of fields) if (name !== 'FORM_TYPE') applyField(c, name, values, limits);
  return c;
}

/**
 * XEP-0060 §7.1.5: the preconditions of a publish. With `existing`, every field must equal the
 * node's configuration (else conflict + precondition-not-met); without, the configuration of
 * the node to auto-create: the defaults except for the fields given. Unknown fields are refused
 * either way ("it MUST reject the publication upon encountering unknown fields").
 */
export function applyPublishOptions(existing: NodeConfig | undefined, defaults: NodeConfig, form: Element, limits: ConfigLimits): NodeConfig {
  if (form.name !== 'x' || form.xmlns !== NS_DATA) throw new StanzaError('bad-request', 'publish-options must hold a jabber:x:data form');
  const fields = formFields(form);
  if (fields.get('FORM_TYPE')?.[0] !== FORM_PUBLISH_OPTIONS) throw new StanzaError('bad-request', `the FORM_TYPE of publish-options must be ${FORM_PUBLISH_OPTIONS}`);
  const wanted: NodeConfig = { ...(existing ?? defaults), rosterGroups: [...(existing ?? defaults).rosterGroups] };
  for (const [name, values] of fields) {
    if (name === 'FORM_TYPE') continue;
    let known: boolean;
    try {
      known = applyField(wanted, name, values, limits);
    } catch (err) {
      // A value this service cannot hold can never match the node: the precondition fails.
      if (err instanceof StanzaError) throw preconditionNotMet(`${name}: ${err.text ?? err.condition}`);
      throw err;
    }
    if (!known) throw preconditionNotMet(`unknown publish option ${name}`);
  }
  if (existing === undefined) return wanted;
  for (const [name, differs] of COMPARISONS) {
    if (fields.has(name) && differs(existing, wanted)) throw preconditionNotMet(`${name} of the node differs`);
  }
  return existing;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((v) => b.includes(v));

const COMPARISONS: [string, (a: NodeConfig, b: NodeConfig) => boolean][] = [
  ['pubsub#access_model', (a, b) => a.accessModel !== b.accessModel],
  ['pubsub#roster_groups_allowed', (a, b) => !sameSet(a.rosterGroups, b.rosterGroups)],
  ['pubsub#persist_items', (a, b) => a.persistItems !== b.persistItems],
  ['pubsub#max_items', (a, b) => a.maxItems !== b.maxItems],
  ['pubsub#send_last_published_item', (a, b) => a.sendLast !== b.sendLast],
  ['pubsub#deliver_notifications', (a, b) => a.deliverNotifications !== b.deliverNotifications],
  ['pubsub#deliver_payloads', (a, b) => a.deliverPayloads !== b.deliverPayloads],
  ['pubsub#notify_retract', (a, b) => a.notifyRetract !== b.notifyRetract],
  ['pubsub#notify_delete', (a, b) => a.notifyDelete !== b.notifyDelete],
  ['pubsub#title', (a, b) => a.title !== b.title],
  ['pubsub#publish_model', () => false],
];

// --- Writing the form (XEP-0060 §8.2.1) ------------------------------------------------------

const opt = (v: string): Element => x('option', NS_DATA, {}, x('value', NS_DATA, {}, v));
const field = (name: string, type: string, label: string, values: string[], options: string[] = []): Element =>
  x('field', NS_DATA, { var: name, type, label }, ...options.map(opt), ...values.map((v) => x('value', NS_DATA, {}, v)));
const bool = (b: boolean): string => (b ? '1' : '0');

/** The configuration form of a node, as the owner gets it (XEP-0060 §8.2.1 example 125). */
export function configForm(c: NodeConfig, limits: ConfigLimits): Element {
  return x(
    'x',
    NS_DATA,
    { type: 'form' },
    field('FORM_TYPE', 'hidden', 'FORM_TYPE', [FORM_NODE_CONFIG]),
    field('pubsub#title', 'text-single', 'A friendly name for the node', [c.title]),
    field('pubsub#access_model', 'list-single', 'Who may subscribe and retrieve items', [c.accessModel], [...ACCESS_MODELS]),
    field('pubsub#roster_groups_allowed', 'list-multi', 'Roster groups allowed to subscribe', c.rosterGroups),
    field('pubsub#persist_items', 'boolean', 'Persist items to storage', [bool(c.persistItems)]),
    field('pubsub#max_items', 'text-single', `Max # of items to persist (at most ${limits.maxItems}, or max)`, [String(c.maxItems)]),
    field('pubsub#send_last_published_item', 'list-single', 'When to send the last published item', [c.sendLast], [...SEND_LAST]),
    field('pubsub#deliver_notifications', 'boolean', 'Deliver event notifications', [bool(c.deliverNotifications)]),
    field('pubsub#deliver_payloads', 'boolean', 'Deliver payloads with event notifications', [bool(c.deliverPayloads)]),
    field('pubsub#notify_retract', 'boolean', 'Notify subscribers when items are removed from the node', [bool(c.notifyRetract)]),
    field('pubsub#notify_delete', 'boolean', 'Notify subscribers when the node is deleted', [bool(c.notifyDelete)]),
    field('pubsub#publish_model', 'list-single', 'Who may publish', ['publishers'], ['publishers']),
  );
}

// --- Stored form -------------------------------------------------------------------------

/** The configuration as stored (JSON); a stored value that no longer reads falls back to the default. */
export function storeConfig(c: NodeConfig): string {
  return JSON.stringify(c);
}

export function loadConfig(text: string): NodeConfig {
  const d = defaultConfig();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return d;
  }
  if (typeof raw !== 'object' || raw === null) return d;
  const r = raw as Record<string, unknown>;
  const str = <T extends string>(v: unknown, allowed: readonly T[], dflt: T): T => (typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : dflt);
  const b = (v: unknown, dflt: boolean): boolean => (typeof v === 'boolean' ? v : dflt);
  return {
    accessModel: str(r.accessModel, ACCESS_MODELS, d.accessModel),
    rosterGroups: Array.isArray(r.rosterGroups) ? r.rosterGroups.filter((g): g is string => typeof g === 'string') : [],
    persistItems: b(r.persistItems, d.persistItems),
    maxItems: typeof r.maxItems === 'number' && Number.isInteger(r.maxItems) && r.maxItems >= 1 ? r.maxItems : d.maxItems,
    sendLast: str(r.sendLast, SEND_LAST, d.sendLast),
    deliverNotifications: b(r.deliverNotifications, d.deliverNotifications),
    deliverPayloads: b(r.deliverPayloads, d.deliverPayloads),
    notifyRetract: b(r.notifyRetract, d.notifyRetract),
    notifyDelete: b(r.notifyDelete, d.notifyDelete),
    title: typeof r.title === 'string' ? r.title : '',
  };
}
