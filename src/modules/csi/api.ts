// What the CSI module offers other modules (ModuleContext.use('csi')).
import type { Session } from '../../core/session.js';

export interface CsiApi {
  /** Whether the client of this session said it is inactive (XEP-0352 §4.2) and has not said active since. */
  isInactive(session: Session): boolean;
  /**
   * Puts the session back in the active state, sending what was held: XEP-0352 §5.2, a
   * resumed stream (XEP-0198) starts active, so stream management calls this on resumption.
   */
  activate(session: Session): void;
}
