/**
 * At most one log line per key per interval, so that a misbehaving source (a gateway sending
 * garbage, an unregistered gateway pushing every few seconds) cannot flood the logs. The lines
 * that were held back are counted and reported with the next one. The key map is bounded: when
 * it is full the least recently logged key is forgotten (that key may log again early).
 */
export class LogThrottle {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #entries = new Map<string, { loggedAtMs: number; suppressed: number }>();

  constructor(intervalMs: number, maxKeys = 10_000) {
    this.#intervalMs = intervalMs;
    this.#maxKeys = maxKeys;
  }

  /**
   * Whether to log for `key` now; when yes, how many lines were held back since the last one.
   * Returns undefined when the line is to be dropped.
   */
  take(key: string, nowMs: number): { suppressed: number } | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined && nowMs - entry.loggedAtMs < this.#intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    const suppressed = entry?.suppressed ?? 0;
    // Re-inserting keeps the map in order of last logging, oldest first.
    this.#entries.delete(key);
    this.#entries.set(key, { loggedAtMs: nowMs, suppressed: 0 });
    if (this.#entries.size > this.#maxKeys) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    return { suppressed };
  }
}
