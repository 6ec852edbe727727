// Traffic shaping of what a peer sends (hardening: no single connection or
// account may take more than its share). Two token buckets, bytes and stanzas,
// that may run into debt: a peer over its rate is not refused but made to wait,
// by pausing reading from its socket (TCP backpressure) until the debt is paid.
// One that keeps the server waiting on it for too long is abusing it.

export interface RateSettings {
  /** Sustained bytes per second; 0: no limit. */
  bytes_per_second: number;
  /** Bytes that may arrive at once before the rate applies. */
  burst_bytes: number;
  /** Sustained stanzas (top-level elements) per second; 0: no limit. */
  stanzas_per_second: number;
  /** Stanzas that may arrive at once. */
  burst_stanzas: number;
}

class DebtBucket {
  private tokens: number;
  private updated: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.updated = now();
  }

  /** Takes `n` (into debt if need be); returns how long until the bucket is out of debt, in ms. */
  charge(n: number): number {
    if (this.rate <= 0) return 0;
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updated) * this.rate) / 1000);
    this.updated = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
}

/** Whether settings limit anything at all (a shaper for none would only take memory per connection). */
export function limitsAnything(settings: RateSettings): boolean {
  return settings.bytes_per_second > 0 || settings.stanzas_per_second > 0;
}

/** The bytes and stanzas one peer (or one account, across its connections) may send. */
export class RateShaper {
  private readonly bytes: DebtBucket;
  private readonly stanzas: DebtBucket;

  constructor(settings: RateSettings, now: () => number = () => Date.now()) {
    this.bytes = new DebtBucket(settings.bytes_per_second, settings.burst_bytes, now);
    this.stanzas = new DebtBucket(settings.stanzas_per_second, settings.burst_stanzas, now);
  }

  /** Charges received bytes; returns how long reading must pause (ms), 0 for not at all. */
  chargeBytes(n: number): number {
    return this.bytes.charge(n);
  }

  /** Charges one stanza; returns how long reading must pause (ms). */
  chargeStanza(): number {
    return this.stanzas.charge(1);
  }
}

/**
 * How long a peer has kept the server waiting on it lately: pauses add up, and what was
 * added fades with a half-life, so bursts now and then cost nothing and only a sustained
 * flood crosses the bound.
 */
export class ThrottleMeter {
  private total = 0;
  private updated: number;

  constructor(
    private readonly halfLifeMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.updated = now();
  }

  /** Adds a pause; returns the decayed total of pauses, in ms. */
  add(ms: number): number {
    const now = this.now();
    this.total = this.total * Math.pow(0.5, (now - this.updated) / this.halfLifeMs) + ms;
    this.updated = now;
    return this.total;
  }
}

/** Per-account shapers shared by all the connections of an account, kept while any is open. */
export class AccountShapers {
  private readonly shapers = new Map<string, { shaper: RateShaper; users: number }>();

  constructor(
    private readonly settings: () => RateSettings,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The account's shaper, or undefined when its settings limit nothing (then nothing to release). */
  acquire(account: string): RateShaper | undefined {
    let entry = this.shapers.get(account);
    if (!entry) {
      const settings = this.settings();
      if (!limitsAnything(settings)) return undefined;
      this.shapers.set(account, (entry = { shaper: new RateShaper(settings, this.now), users: 0 }));
    }
    entry.users++;
    return entry.shaper;
  }

  release(account: string): void {
    const entry = this.shapers.get(account);
    if (entry && --entry.users <= 0) this.shapers.delete(account);
  }
}
