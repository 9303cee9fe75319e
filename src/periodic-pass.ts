/**
 * A background pass (a purge, a clean-up) run at once and then every `intervalMs` on an
 * unreferenced timer, never two at a time: a call while one runs gets that one. `close` stops
 * the timer, sets `stopping` (a long pass checks it between batches) and waits for the pass.
 */
export class PeriodicPass<T> {
  readonly #pass: () => Promise<T>;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<T> | undefined;
  #stopping = false;

  constructor(pass: () => Promise<T>, intervalMs: number) {
    this.#pass = pass;
    this.#intervalMs = intervalMs;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  start(): void {
    const tick = () => {
      void this.runOnce();
    };
    tick();
    this.#timer = setInterval(tick, this.#intervalMs);
    this.#timer.unref();
  }

  runOnce(): Promise<T> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }
}
