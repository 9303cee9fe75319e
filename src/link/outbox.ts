/**
 * The durable outbox of the network side: every delivery is stored here before it is sent, and
 * stays until the provider acknowledges it, so a disconnected or restarting provider loses
 * nothing. `storage/link-outbox.ts` implements it on SQLite and PostgreSQL;
 * `InMemoryLinkOutbox` (below) for tests and for an all-in-one process, where the network and
 * the provider restart together anyway.
 */

export interface LinkOutboxEntry {
  seq: number;
  topic: string;
  /** The body as JSON text (what `JSON.stringify` produced). */
  bodyJson: string;
}

export interface LinkOutboxStore {
  /**
   * Stores a delivery and returns its seq: positive and greater than every seq the link had
   * before, also after deliveries were acknowledged and removed. Returns `undefined`, storing
   * nothing, when the link already holds `maxPending` unacknowledged deliveries; the check and
   * the append are one atomic step.
   */
  append(
    linkId: string,
    topic: string,
    bodyJson: string,
    maxPending: number,
  ): Promise<number | undefined>;
  /** Up to `limit` unacknowledged deliveries with a seq above `afterSeq`, oldest first. */
  pendingAfter(linkId: string, afterSeq: number, limit: number): Promise<LinkOutboxEntry[]>;
  /** Removes every delivery with a seq up to `seq` (cumulative; a lower seq than before is a no-op). */
  ackUpTo(linkId: string, seq: number): Promise<void>;
  pendingCount(linkId: string): Promise<number>;
}

/** The longest link id the link and the outbox take. */
export const MAX_LINK_ID_LENGTH = 200;

/** 100 000 pending deliveries per link: a day of uplinks of a few thousand devices. */
export const DEFAULT_MAX_PENDING_PER_LINK = 100_000;

interface LinkQueue {
  lastSeq: number;
  /** Ordered by seq. */
  entries: LinkOutboxEntry[];
}

/** The outbox in memory: lost when the process ends. */
export class InMemoryLinkOutbox implements LinkOutboxStore {
  readonly #links = new Map<string, LinkQueue>();

  async append(
    linkId: string,
    topic: string,
    bodyJson: string,
    maxPending: number,
  ): Promise<number | undefined> {
    let queue = this.#links.get(linkId);
    if (queue === undefined) {
      queue = { lastSeq: 0, entries: [] };
      this.#links.set(linkId, queue);
    }
    if (queue.entries.length >= maxPending) return undefined;
    queue.lastSeq++;
    queue.entries.push({ seq: queue.lastSeq, topic, bodyJson });
    return queue.lastSeq;
  }

  async pendingAfter(linkId: string, afterSeq: number, limit: number): Promise<LinkOutboxEntry[]> {
    const entries = this.#links.get(linkId)?.entries ?? [];
    const start = firstIndexAbove(entries, afterSeq);
    return entries.slice(start, start + limit).map((entry) => ({ ...entry }));
  }

  async ackUpTo(linkId: string, seq: number): Promise<void> {
    const queue = this.#links.get(linkId);
    if (queue === undefined) return;
    queue.entries.splice(0, firstIndexAbove(queue.entries, seq));
  }

  async pendingCount(linkId: string): Promise<number> {
    return this.#links.get(linkId)?.entries.length ?? 0;
  }
}

function firstIndexAbove(entries: readonly LinkOutboxEntry[], seq: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle]!.seq <= seq) low = middle + 1;
    else high = middle;
  }
  return low;
}
