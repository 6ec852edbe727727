// Stream errors (RFC 6120 §4.9) and stanza errors (RFC 6120 §8.3).
import { Element, x } from '../xml/element.js';
import { NS } from '../xml/namespaces.js';

/** RFC 6120 §4.9.3 */
export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

/** Thrown anywhere below the connection to end the stream with this condition. */
export class StreamError extends Error {
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
    /** RFC 6120 §4.9.4: an application-specific condition, beside the defined one. */
    readonly app?: Element,
  ) {
    super(text ? `${condition}: ${text}` : condition);
  }

  toElement(): Element {
    const el = x('error', NS.STREAM, {}, x(this.condition, NS.STREAM_ERRORS));
    if (this.app) el.append(this.app);
    if (this.text) el.append(x('text', NS.STREAM_ERRORS, { 'xml:lang': 'en' }, this.text));
    return el;
  }
}

/** RFC 6120 §8.3.3 */
export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'gone'
  | 'internal-server-error'
  | 'item-not-found'
  | 'jid-malformed'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'redirect'
  | 'registration-required'
  | 'remote-server-not-found'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'subscription-required'
  | 'undefined-condition'
  | 'unexpected-request';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3: the error type each condition usually carries. */
const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

/** Thrown by stanza handlers; the dispatcher turns it into an error reply. */
export class StanzaError extends Error {
  readonly type: StanzaErrorType;
  constructor(
    readonly condition: StanzaErrorCondition,
    readonly text?: string,
    type?: StanzaErrorType,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.type = type ?? DEFAULT_TYPE[condition];
  }

  toElement(contentNs: string = NS.CLIENT): Element {
    const el = x('error', contentNs, { type: this.type }, x(this.condition, NS.STANZA_ERRORS));
    if (this.text) el.append(x('text', NS.STANZA_ERRORS, { 'xml:lang': 'en' }, this.text));
    return el;
  }
}

/**
 * RFC 6120 §8.3.1: an error reply swaps 'from' and 'to', keeps the id, sets type='error'
 * and may include the original payload.
 */
export function errorReply(stanza: Element, error: StanzaError, includePayload = true): Element {
  const reply = new Element(stanza.name, stanza.xmlns, {});
  if (stanza.attrs.id !== undefined) reply.attrs.id = stanza.attrs.id;
  if (stanza.attrs.from !== undefined) reply.attrs.to = stanza.attrs.from;
  if (stanza.attrs.to !== undefined) reply.attrs.from = stanza.attrs.to;
  reply.attrs.type = 'error';
  if (includePayload) for (const c of stanza.children) if (typeof c !== 'string' && c.name !== 'error') reply.children.push(c);
  reply.children.push(error.toElement(stanza.xmlns));
  return reply;
}
