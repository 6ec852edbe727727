// Retention (XEP-0313 §3.2): messages older than mam.max_age_days and those beyond
// mam.max_per_user go, oldest first so that no archive gets a gap. The work is cut
// into small transactions with a turn of the event loop between them, so that a
// large backlog never holds up the server's other work for long.
import type { SqlMamStore } from './store.js';

export interface RetentionLimits {
  /** Messages older than this many days are deleted; undefined: kept whatever their age. */
  maxAgeDays: number | undefined;
  /** An archive keeps at most this many (the newest); undefined: no limit. */
  maxPerUser: number | undefined;
}

/** Messages deleted per transaction. */
export const RETENTION_BATCH = 500;
/** Archives read per round. */
const ARCHIVES_PER_ROUND = 100;

const DAY_MS = 24 * 60 * 60 * 1000;

/** A turn of the event loop: queued stanzas and timers run before the next batch. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One pass over every archive; returns how many messages were deleted. `stopped` is asked
 * between batches (a server shutting down stops here).
 */
export async function enforceRetention(store: SqlMamStore, limits: RetentionLimits, stopped: () => boolean = () => false, now = Date.now()): Promise<number> {
  if (limits.maxAgeDays === undefined && limits.maxPerUser === undefined) return 0;
  const cutoff = limits.maxAgeDays === undefined ? undefined : now - limits.maxAgeDays * DAY_MS;
  let deleted = 0;
  let after = 0;
  for (;;) {
    const archives = await store.archives(after, ARCHIVES_PER_ROUND);
    for (const a of archives) {
      after = a.archive;
      let size = a.messages;
      if (cutoff !== undefined) {
        for (;;) {
          if (stopped()) return deleted;
          const n = await store.deleteOldest(a.archive, RETENTION_BATCH, cutoff);
          deleted += n;
          size -= n;
          await yieldToLoop();
          if (n < RETENTION_BATCH) break;
        }
      }
      if (limits.maxPerUser !== undefined) {
        while (size > limits.maxPerUser) {
          if (stopped()) return deleted;
          const n = await store.deleteOldest(a.archive, Math.min(RETENTION_BATCH, size - limits.maxPerUser));
          deleted += n;
          size -= n;
          await yieldToLoop();
          if (n === 0) break;
        }
      }
    }
    if (archives.length < ARCHIVES_PER_ROUND) return deleted;
  }
}
