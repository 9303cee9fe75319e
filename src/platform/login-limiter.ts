/**
 * Slows password guessing: failed logins are counted per (e-mail address, source IP) and per
 * source IP in fixed windows; once a count reaches its limit, further attempts are refused
 * until the window ends, before any password is checked (so a refused attempt costs no argon2).
 * A successful login clears its (address, IP) count.
 *
 * In memory, per process: a restart forgets the counts, and instances behind a load balancer
 * count separately. The table is bounded (`maxEntries`): when full, expired entries go first,
 * then the oldest. It is a brake on online guessing, not a substitute for good passwords.
 */

export interface LoginLimiterOptions {
  /** Failed attempts allowed per address and IP in a window. Default 5. */
  maxFailures?: number;
  /** Failed attempts allowed per IP (any address) in a window. Default 50. */
  maxFailuresPerIp?: number;
  /** Default 15 minutes. */
  windowMs?: number;
  /** Default 10,000. */
  maxEntries?: number;
  /** ms since the epoch; tests pass their own. */
  now?: () => number;
}

export type LoginLimit = { allowed: true } | { allowed: false; retryAfterMs: number };

interface Counter {
  failures: number;
  resetAt: number;
}

export class LoginLimiter {
  readonly #maxFailures: number;
  readonly #maxFailuresPerIp: number;
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #counters = new Map<string, Counter>();

  constructor(options: LoginLimiterOptions = {}) {
    this.#maxFailures = options.maxFailures ?? 5;
    this.#maxFailuresPerIp = options.maxFailuresPerIp ?? 50;
    this.#windowMs = options.windowMs ?? 15 * 60_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether an attempt for this address from this IP may be checked now. */
  check(email: string, ip: string): LoginLimit {
    const now = this.#now();
    let retryAfterMs = 0;
    for (const [key, limit] of this.#keys(email, ip)) {
      const counter = this.#live(key, now);
      if (counter !== undefined && counter.failures >= limit) {
        retryAfterMs = Math.max(retryAfterMs, counter.resetAt - now);
      }
    }
    return retryAfterMs > 0 ? { allowed: false, retryAfterMs } : { allowed: true };
  }

  /** Counts a failed attempt. True when this failure reached a limit (the next attempt waits). */
  recordFailure(email: string, ip: string): boolean {
    const now = this.#now();
    let reached = false;
    for (const [key, limit] of this.#keys(email, ip)) {
      const counter = this.#live(key, now) ?? { failures: 0, resetAt: now + this.#windowMs };
      counter.failures += 1;
      if (counter.failures >= limit) reached = true;
      this.#counters.delete(key);
      this.#counters.set(key, counter);
    }
    this.#bound(now);
    return reached;
  }

  /** A successful login: the address's count from this IP starts over. */
  recordSuccess(email: string, ip: string): void {
    this.#counters.delete(this.#pairKey(email, ip));
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.#counters.size;
  }

  #keys(email: string, ip: string): [string, number][] {
    return [
      [this.#pairKey(email, ip), this.#maxFailures],
      [`ip\n${ip}`, this.#maxFailuresPerIp],
    ];
  }

  #pairKey(email: string, ip: string): string {
    return `pair\n${ip}\n${email.trim().toLowerCase()}`;
  }

  #live(key: string, now: number): Counter | undefined {
    const counter = this.#counters.get(key);
    if (counter === undefined) return undefined;
    if (counter.resetAt <= now) {
      this.#counters.delete(key);
      return undefined;
    }
    return counter;
  }

  #bound(now: number): void {
    if (this.#counters.size <= this.#maxEntries) return;
    for (const [key, counter] of this.#counters) {
      if (counter.resetAt <= now) this.#counters.delete(key);
    }
    // Map iteration is insertion order, and a counter is re-inserted on each failure: the first
    // entries are the least recently failed.
    for (const key of this.#counters.keys()) {
      if (this.#counters.size <= this.#maxEntries) break;
      this.#counters.delete(key);
    }
  }
}
