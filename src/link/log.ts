/** The logging the link does: structured fields first, as pino takes them. */
export interface LinkLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const SILENT_LINK_LOGGER: LinkLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/**
 * At most one log line per interval for a repeated condition (a peer sending garbage, a refused
 * token hammered), with the number of lines held back since the previous one.
 */
export class LogLimiter {
  readonly #intervalMs: number;
  #loggedAtMs = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  constructor(intervalMs = 10_000) {
    this.#intervalMs = intervalMs;
  }

  /** Whether to log now; when yes, how many lines were held back. */
  take(nowMs = Date.now()): { suppressed: number } | undefined {
    if (nowMs - this.#loggedAtMs < this.#intervalMs) {
      this.#suppressed++;
      return undefined;
    }
    const suppressed = this.#suppressed;
    this.#loggedAtMs = nowMs;
    this.#suppressed = 0;
    return { suppressed };
  }
}
