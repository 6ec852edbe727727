// What the stream management module offers other modules and tools.
import type { Session } from '../../core/session.js';

export interface StreamManagementApi {
  /** Whether the session has XEP-0198 stream management enabled. */
  enabled(session: Session): boolean;
  /** Stanzas sent to (or held for) the session that its client has not acknowledged yet. */
  unacked(session: Session): number;
}
