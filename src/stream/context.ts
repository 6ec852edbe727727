// What a client connection needs from the server around it.
import type { Element } from '../xml/element.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Router, Session } from '../router/router.js';
import type { Storage } from '../storage/types.js';
import type { SaslContext, SaslMechanism } from '../sasl/mechanism.js';
import type { EndReason } from '../modules/api.js';
import type { AuthServices } from '../auth/index.js';

export interface C2SContext {
  readonly config: Config;
  readonly log: Logger;
  readonly storage: Storage;
  readonly router: Router;
  /** The domain used in a stream header when the client's 'to' is not one of ours. */
  readonly defaultHost: string;
  /** Whether STARTTLS must happen before anything else (the config has a tls section). */
  readonly tlsRequired: boolean;
  /** Token verifier, external password check and rate limiter; absent in minimal test contexts. */
  readonly auth?: AuthServices;
  isLocalDomain(domain: string): boolean;
  offeredMechanisms(ctx: SaslContext): SaslMechanism[];
  /** Any mechanism this server implements, offered here or not (to tell invalid from needs-TLS). */
  knownMechanism(name: string): SaslMechanism | undefined;
  streamFeatures(): readonly Element[];
  handleStanza(session: Session, stanza: Element): Promise<void>;
  sessionBound(session: Session): void;
  sessionEnded(session: Session, reason: EndReason): void;
  connectionClosed(conn: object): void;
}
