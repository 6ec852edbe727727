// XEP-0060 errors: a defined condition with a pubsub-specific one beside it
// (RFC 6120 §8.3.4: an application-specific condition in the error element).
import { x } from '../../xml/element.js';
import { StanzaError, type StanzaErrorCondition, type StanzaErrorType } from '../../core/errors.js';
import type { Element } from '../../xml/element.js';
import { NS_PUBSUB_ERRORS } from './ns.js';

/** XEP-0060 §7-§8 error conditions of http://jabber.org/protocol/pubsub#errors used here. */
export type PubsubCondition =
  | 'closed-node'
  | 'invalid-options'
  | 'item-required'
  | 'max-items-exceeded'
  | 'max-nodes-exceeded'
  | 'nodeid-required'
  | 'not-in-roster-group'
  | 'payload-required'
  | 'payload-too-big'
  | 'precondition-not-met'
  | 'presence-subscription-required'
  | 'unsupported'
  | 'unsupported-access-model';

export class PubsubError extends StanzaError {
  constructor(
    condition: StanzaErrorCondition,
    readonly pubsub: PubsubCondition,
    text?: string,
    type?: StanzaErrorType,
    /** For 'unsupported': the feature (XEP-0060 §7.1.3.5 and others). */
    readonly feature?: string,
  ) {
    super(condition, text, type);
  }

  override toElement(contentNs?: string): Element {
    const el = super.toElement(contentNs);
    // After the defined condition, before the text (RFC 6120 §8.3.2 order).
    el.children.splice(1, 0, x(this.pubsub, NS_PUBSUB_ERRORS, { feature: this.feature }));
    return el;
  }
}

/** XEP-0060 §7.1.5: a publish-options precondition does not hold. */
export const preconditionNotMet = (text?: string): PubsubError => new PubsubError('conflict', 'precondition-not-met', text);
