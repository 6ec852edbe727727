// Brute-force protection for SASL: every failed authentication takes a token
// from the bucket of the account it named and from the bucket of the client's
// address; while either is empty, attempts on it are answered with
// temporary-auth-failure (RFC 6120 §6.5.11) whatever the credentials, so guessing
// goes no faster than the refill. One exception keeps an attacker from locking
// the owner out: while only the account is limited, the right credentials from an
// address with no recent failure still succeed (the attacker's addresses are what
// is locked). Successful logins take nothing, and nothing is ever delayed: a
// limited attempt is answered at once.
import { addressKey } from '../core/address.js';

export interface BucketSettings {
  /** Failures allowed at once (the bucket's capacity). */
  burst: number;
  /** Refill rate, in failures per minute. */
  per_minute: number;
}

export interface RateLimitSettings {
  enabled: boolean;
  account: BucketSettings;
  address: BucketSettings;
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

export class AuthRateLimiter {
  private readonly accounts: TokenBuckets;
  private readonly addresses: TokenBuckets;

  constructor(
    private readonly settings: RateLimitSettings,
    now: () => number = () => Date.now(),
  ) {
    this.accounts = new TokenBuckets(settings.account, now);
    this.addresses = new TokenBuckets(settings.address, now);
  }

  /** Whether attempts from `address` (or on `account`, "user@host") are refused for now. */
  isLimited(address: string | undefined, account?: string): boolean {
    if (!this.settings.enabled) return false;
    return (address !== undefined && this.addresses.isEmpty(addressKey(address))) || (account !== undefined && this.accounts.isEmpty(account));
  }

  /** Whether `address` has no recent failure at all. */
  isClean(address: string | undefined): boolean {
    return !this.settings.enabled || address === undefined || this.addresses.isFull(addressKey(address));
  }

  /** Charges a failed authentication to the address and, when known, the account. */
  recordFailure(address: string | undefined, account?: string): void {
    if (!this.settings.enabled) return;
    if (address !== undefined) this.addresses.take(addressKey(address));
    if (account !== undefined) this.accounts.take(account);
  }
}
