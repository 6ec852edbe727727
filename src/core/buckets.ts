// Token buckets by key: `burst` events at once, refilled at `per_minute`. What
// every rate limit here is made of: failed logins per account and address,
// subscription requests per sender.

export interface BucketSettings {
  /** Events allowed at once (the bucket's capacity). */
  burst: number;
  /** Refill rate, in events per minute. */
  per_minute: number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * Token buckets by key. Only buckets that lost tokens are kept: a full bucket is
 * the same as none, so memory follows the failures, and is capped.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly settings: BucketSettings,
    // Looked up on every call (not `= Date.now`), so a replaced clock is seen, as in tests.
    private readonly now: () => number = () => Date.now(),
    private readonly maxKeys = 100_000,
  ) {}

  private current(key: string): Bucket | undefined {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return undefined;
    const now = this.now();
    // A clock that went back refills nothing rather than draining.
    const elapsed = Math.max(0, now - bucket.updated);
    bucket.tokens = Math.min(this.settings.burst, bucket.tokens + (elapsed * this.settings.per_minute) / 60_000);
    bucket.updated = now;
    if (bucket.tokens >= this.settings.burst) {
      this.buckets.delete(key);
      return undefined;
    }
    return bucket;
  }

  /** Whether `key` has lost no token (or has refilled them all). */
  isFull(key: string): boolean {
    return this.current(key) === undefined;
  }

  /** Whether `key` has no whole token left. */
  isEmpty(key: string): boolean {
    const bucket = this.current(key);
    return bucket !== undefined && bucket.tokens < 1;
  }

  /** Takes a token if there is a whole one; false (and nothing taken) when the bucket is empty. */
  tryTake(key: string): boolean {
    if (this.isEmpty(key)) return false;
    this.take(key);
    return true;
  }

  /** Takes one token (none below zero). */
  take(key: string): void {
    const bucket = this.current(key) ?? { tokens: this.settings.burst, updated: this.now() };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    // Re-inserted so the Map's order is least recently charged first.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) this.evict();
  }

  /** Number of buckets held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private evict(): void {
    for (const key of [...this.buckets.keys()]) {
      if (this.buckets.size <= this.maxKeys) return;
      // Refilled ones go by themselves; then the least recently charged.
      if (this.current(key) !== undefined) this.buckets.delete(key);
    }
  }
}
