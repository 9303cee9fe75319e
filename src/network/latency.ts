/**
 * A latency histogram with fixed millisecond buckets, cheap enough for every uplink: counts per
 * bucket, quantiles by linear interpolation inside a bucket (the error is at most one bucket's
 * width, which the bucket bounds keep small where it matters: 0-50 ms).
 */
export const LATENCY_BUCKETS_MS = [
  0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100, 150, 175, 190, 195, 200, 202,
  205, 210, 220, 230, 250, 300, 400, 500, 750, 1000, 2000, 5000, 10_000,
] as const;

export class LatencyHistogram {
  readonly #counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  #count = 0;
  #sum = 0;
  #max = 0;

  observe(ms: number): void {
    const value = Math.max(0, ms);
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && value > LATENCY_BUCKETS_MS[i]!) i++;
    this.#counts[i]!++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  get count(): number {
    return this.#count;
  }

  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = q * this.#count;
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      const inBucket = this.#counts[i]!;
      if (seen + inBucket >= rank && inBucket > 0) {
        const lower = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]!;
        const upper = i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i]! : this.#max;
        return Math.min(this.#max, lower + ((upper - lower) * (rank - seen)) / inBucket);
      }
      seen += inBucket;
    }
    return this.#max;
  }

  snapshot(): {
    count: number;
    meanMs: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
    maxMs: number;
  } {
    return {
      count: this.#count,
      meanMs: this.#count === 0 ? 0 : this.#sum / this.#count,
      p50Ms: this.quantile(0.5),
      p90Ms: this.quantile(0.9),
      p99Ms: this.quantile(0.99),
      maxMs: this.#max,
    };
  }

  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#max = 0;
  }
}
