import type { Logger } from '../logger.js';

/**
 * What a started Galet must close, in the reverse order of what was opened: each step runs even
 * when one before failed (the failure is logged), so that a shutdown never leaves the database
 * or a socket open behind an error.
 */
export class Closers {
  readonly #steps: Array<() => Promise<unknown>> = [];

  constructor(private readonly logger: Logger) {}

  add(step: () => Promise<unknown>): void {
    this.#steps.push(step);
  }

  async closeAll(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        this.logger.error({ err: error }, 'error while closing');
      }
    }
  }
}
