/**
 * Runs tasks one after another per key, concurrently across keys. Two uplinks of one device
 * (same DevAddr) are matched and committed in arrival order, so the second sees the counter the
 * first stored instead of racing it.
 */
export class KeyedQueue<Key> {
  readonly #tails = new Map<Key, Promise<void>>();

  get activeKeys(): number {
    return this.#tails.size;
  }

  run(key: Key, task: () => Promise<void>): Promise<void> {
    const previous = this.#tails.get(key);
    const current = previous === undefined ? task() : previous.then(task);
    const tail = current.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return current;
  }
}
