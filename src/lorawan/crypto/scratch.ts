/**
 * Reusable whole-block buffers, with one view per block count so that a hot path takes a view
 * without allocating. node:crypto's update() copies its input synchronously, so one buffer per
 * user is enough.
 */
export class BlockScratch {
  #views: Uint8Array[] = [];

  /** A view of `blockCount` blocks (16 bytes each); its content is whatever was left there. */
  view(blockCount: number): Uint8Array {
    if (blockCount >= this.#views.length) {
      const count = Math.max(blockCount + 1, 20);
      const buffer = new Uint8Array(count * 16);
      this.#views = Array.from({ length: count }, (_, i) => buffer.subarray(0, i * 16));
    }
    return this.#views[blockCount]!;
  }
}
