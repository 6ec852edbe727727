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
import { TokenBuckets, type BucketSettings } from '../core/buckets.js';

export type { BucketSettings } from '../core/buckets.js';

export interface RateLimitSettings {
  enabled: boolean;
  account: BucketSettings;
  address: BucketSettings;
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
