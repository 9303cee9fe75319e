/**
 * Batches concurrent writes into one call: the first item waits for the next turn of the event
 * loop, every item that arrives meanwhile (or while a batch is being written) joins the next
 * batch. Under load batches grow by themselves; when idle an item waits one loop turn.
 */
export class GroupCommit<Item, Result> {
  #queue: Array<{ item: Item; resolve: (r: Result) => void; reject: (e: unknown) => void }> = [];
  #scheduled = false;
  #writing = false;

  constructor(
    private readonly write: (items: Item[]) => Promise<Result[]>,
    private readonly maxBatch = 1000,
  ) {}

  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#queue.length === 0) return;
    this.#writing = true;
    const batch = this.#queue.splice(0, this.maxBatch);
    try {
      const results = await this.write(batch.map((entry) => entry.item));
      for (const [i, entry] of batch.entries()) entry.resolve(results[i]!);
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    } finally {
      this.#writing = false;
      if (this.#queue.length > 0) this.#schedule();
    }
  }
}
