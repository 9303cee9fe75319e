import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { FeedEvent, FeedEventHead } from '../storage/index.js';

/**
 * Where a feed reads events: the storage's event log (`storage.events`, whole events), or its
 * heads only (`{listAfter: (id, o) => storage.events.listHeadsAfter(id, o)}`).
 */
export interface FeedEventSource<E extends FeedEventHead = FeedEvent> {
  listAfter(afterId: number, options?: { limit?: number }): Promise<E[]>;
  /** The log's last id (needed with `EventFeedOptions.idle`). */
  lastId?(): Promise<number>;
}

/** Where a feed keeps its position: durable (`storageCursor`) or in memory (`memoryCursor`). */
export interface FeedCursor {
  load(): Promise<number>;
  save(lastEventId: number): Promise<void>;
}

export interface EventFeedOptions<E extends FeedEventHead = FeedEvent> {
  /** Names the feed in logs. */
  name: string;
  events: FeedEventSource<E>;
  cursor: FeedCursor;
  /**
   * Handles a batch, oldest first. The position moves past the batch once this resolves; when it
   * throws, the same batch comes again after a back-off (at-least-once).
   */
  handle: (events: readonly E[]) => Promise<void>;
  /** Events per batch (default 100). */
  batchSize?: number;
  /** Idle poll period when nobody calls `wake()` (default 250 ms). */
  pollIntervalMs?: number;
  /**
   * Shortest pause after a batch that was not full, even when woken (default 20 ms): under a
   * steady flow of appends, one read (and one cursor write) per pause instead of one per event.
   */
  minBatchIntervalMs?: number;
  /**
   * How long a hole in the ids is waited for before the feed moves past it (default 5 s). On
   * PostgreSQL a transaction may commit after one that took a later id; a rolled-back insert or a
   * purge leaves a hole that never fills.
   */
  gapWaitMs?: number;
  /** Events above this id are not handed out yet (an earlier stage still works on them). */
  readyUpTo?: () => number;
  /**
   * Asked before each read: true when the handler has nothing to do with any event now (no
   * codec on any profile, no enabled webhook). The feed then reads the log's last id
   * (`events.lastId`), asks again, and if still idle moves its position there without reading a
   * row: what is configured before the last id was read is seen by the second question, so it
   * only ever concerns later events.
   */
  idle?: () => Promise<boolean>;
  /** Back-off after a failed batch: first and longest wait (defaults 200 ms and 30 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface EventFeedStats {
  position: number;
  batches: number;
  events: number;
  failures: number;
  gapsSkipped: number;
  /** Moves past events without reading them, the handler having nothing to do (`idle`). */
  idleSkips: number;
}

/** A cursor kept in `storage.consumerCursors` under `name`. */
export function storageCursor(
  cursors: { get(name: string): Promise<number>; save(name: string, id: number): Promise<void> },
  name: string,
): FeedCursor {
  return { load: () => cursors.get(name), save: (id) => cursors.save(name, id) };
}

/** A cursor that starts at `start` and lives as long as the feed (streams, tests). */
export function memoryCursor(start = 0): FeedCursor {
  let position = start;
  return {
    load: async () => position,
    save: async (id) => {
      position = id;
    },
  };
}

/**
 * Reads the event log in id order from a saved position and hands batches to one handler, one
 * batch at a time, at least once. Only a gap-free prefix is handed out: an id missing between the
 * position and a later event is waited for (`gapWaitMs`), so a slow transaction's event is not
 * overtaken.
 */
export class EventFeed<E extends FeedEventHead = FeedEvent> {
  readonly #options: Required<Omit<EventFeedOptions<E>, 'readyUpTo' | 'idle'>> &
    Pick<EventFeedOptions<E>, 'readyUpTo' | 'idle'>;
  #position = 0;
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #gap: { afterId: number; seenAtMs: number } | undefined;
  #retryMs = 0;
  readonly #stats = { batches: 0, events: 0, failures: 0, gapsSkipped: 0, idleSkips: 0 };

  constructor(options: EventFeedOptions<E>) {
    this.#options = {
      batchSize: 100,
      pollIntervalMs: 250,
      minBatchIntervalMs: 20,
      gapWaitMs: 5000,
      retryInitialMs: 200,
      retryMaxMs: 30_000,
      logger: silentLogger,
      now: Date.now,
      ...options,
    };
    if (!Number.isInteger(this.#options.batchSize) || this.#options.batchSize < 1) {
      throw new RangeError('batchSize must be a positive integer');
    }
  }

  /** The id of the last event handled. */
  get position(): number {
    return this.#position;
  }

  get stats(): EventFeedStats {
    return { position: this.#position, ...this.#stats };
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#position = await this.#options.cursor.load();
    this.#running = true;
    this.#loop = this.#run();
  }

  /** New events were appended: read now instead of at the next poll. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /** Stops after the batch in hand (its position saved when it succeeded). */
  async close(): Promise<void> {
    this.#running = false;
    this.#wakeUp?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let handled = 0;
      try {
        handled = await this.#step();
        this.#retryMs = 0;
      } catch (error) {
        this.#stats.failures += 1;
        this.#retryMs =
          this.#retryMs === 0
            ? this.#options.retryInitialMs
            : Math.min(this.#retryMs * 2, this.#options.retryMaxMs);
        this.#options.logger.warn(
          { feed: this.#options.name, err: error, retryInMs: this.#retryMs },
          'event feed batch failed; retrying',
        );
        await this.#sleep(this.#retryMs, false);
        continue;
      }
      if (handled < this.#options.batchSize) {
        const { minBatchIntervalMs, pollIntervalMs } = this.#options;
        if (minBatchIntervalMs > 0) await this.#sleep(minBatchIntervalMs, false);
        await this.#sleep(Math.max(0, pollIntervalMs - minBatchIntervalMs), true);
      }
    }
  }

  /** Handles one batch; returns how many events it read (a full batch: read again at once). */
  async #step(): Promise<number> {
    const readyUpTo = this.#options.readyUpTo?.() ?? Number.MAX_SAFE_INTEGER;
    if (readyUpTo <= this.#position) return 0;
    const idleUpTo = await this.#idleUpTo();
    if (idleUpTo !== undefined) {
      const target = Math.min(idleUpTo, readyUpTo);
      if (target > this.#position) {
        await this.#options.cursor.save(target);
        this.#position = target;
        this.#gap = undefined;
        this.#stats.idleSkips += 1;
      }
      return 0;
    }
    const read = await this.#options.events.listAfter(this.#position, {
      limit: this.#options.batchSize,
    });
    const batch: E[] = [];
    let expected = this.#position + 1;
    for (const event of read) {
      if (event.id > readyUpTo) break;
      if (event.id !== expected && !this.#gapTimedOut(expected - 1)) break;
      batch.push(event);
      expected = event.id + 1;
    }
    if (batch.length === 0) return 0;
    await this.#options.handle(batch);
    const last = batch[batch.length - 1] as E;
    await this.#options.cursor.save(last.id);
    this.#position = last.id;
    this.#stats.batches += 1;
    this.#stats.events += batch.length;
    return read.length;
  }

  /** The log's last id when the handler has nothing to do (see `idle`), else undefined. */
  async #idleUpTo(): Promise<number | undefined> {
    const { idle, events } = this.#options;
    if (idle === undefined || events.lastId === undefined || !(await idle())) return undefined;
    const last = await events.lastId();
    return (await idle()) ? last : undefined;
  }

  /** True once the hole after `afterId` has been waited for long enough. */
  #gapTimedOut(afterId: number): boolean {
    const now = this.#options.now();
    if (this.#gap?.afterId !== afterId) {
      this.#gap = { afterId, seenAtMs: now };
      return false;
    }
    if (now - this.#gap.seenAtMs < this.#options.gapWaitMs) return false;
    this.#gap = undefined;
    this.#stats.gapsSkipped += 1;
    this.#options.logger.info(
      { feed: this.#options.name, afterId },
      'event feed moves past a hole in the event ids',
    );
    return true;
  }

  #sleep(ms: number, wakeable: boolean): Promise<void> {
    if (wakeable && this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeUp = () => {
        if (!this.#running || wakeable) done();
      };
    }).then(() => {
      this.#wakeUp = undefined;
      this.#woken = false;
    });
  }
}
