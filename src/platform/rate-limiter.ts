/**
 * Per-credential rate limiting: a token bucket per key (an API key, a user), in memory.
 *
 * Each bucket holds up to `burst` tokens and gains `perSecond` tokens a second; a request takes
 * one. An empty bucket refuses with the time until the next token. Buckets are per process: with
 * several API instances each allows the full rate (put a shared limiter in front for a hard
 * global limit). The map is bounded: full buckets are forgotten first, which costs nothing since
 * a new bucket starts full.
 */

export interface RateLimitOptions {
  /** Requests a credential may make at once after a quiet time. Default 120. */
  burst?: number;
  /** Sustained requests per second per credential. Default 20. */
  perSecond?: number;
  /** Buckets kept at most. Default 100,000. */
  maxKeys?: number;
  /** Milliseconds; tests pass their own clock. */
  now?: () => number;
}

export type RateDecision =
  | { allowed: true; remaining: number }
  | { allowed: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class RateLimiter {
  readonly burst: number;
  readonly perSecond: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions = {}) {
    this.burst = options.burst ?? 120;
    this.perSecond = options.perSecond ?? 20;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
    if (!(this.burst >= 1) || !(this.perSecond > 0)) {
      throw new RangeError('a rate limit needs burst >= 1 and perSecond > 0');
    }
  }

  /** Takes a token from `key`'s bucket, or says how long until one is there. */
  take(key: string): RateDecision {
    const nowMs = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#forgetFull(nowMs);
      bucket = { tokens: this.burst, updatedMs: nowMs };
      this.#buckets.set(key, bucket);
    } else {
      const elapsedMs = Math.max(0, nowMs - bucket.updatedMs);
      bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsedMs * this.perSecond) / 1000);
      bucket.updatedMs = nowMs;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, remaining: Math.floor(bucket.tokens) };
    }
    return {
      allowed: false,
      retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / this.perSecond),
    };
  }

  /** How many buckets are kept (for tests). */
  get size(): number {
    return this.#buckets.size;
  }

  #forgetFull(nowMs: number): void {
    for (const [key, bucket] of this.#buckets) {
      const tokens = bucket.tokens + ((nowMs - bucket.updatedMs) * this.perSecond) / 1000;
      if (tokens >= this.burst) this.#buckets.delete(key);
    }
    // Still full of busy buckets: forget the oldest half rather than grow without bound.
    if (this.#buckets.size >= this.#maxKeys) {
      let drop = Math.ceil(this.#buckets.size / 2);
      for (const key of this.#buckets.keys()) {
        if (drop-- <= 0) break;
        this.#buckets.delete(key);
      }
    }
  }
}
