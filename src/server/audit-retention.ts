import type { Logger } from '../logger.js';
import type { IsoTimestamp, Storage } from '../storage/index.js';

export interface AuditRetentionOptions {
  /** Period of the passes (default hourly); the first runs at start. */
  intervalMs?: number;
  /** Entries per delete (default 5000): the database is held that long at most. */
  batchRows?: number;
  now?: () => Date;
}

export interface AuditRetentionCounters {
  runs: number;
  entriesPurged: number;
  failures: number;
}

const DAY_MS = 86_400_000;

/**
 * Purges each tenant's audit entries older than its `settings.retention.auditDays` (tenants
 * without it keep theirs forever, and the operator's own entries are never purged). Runs in
 * every Galet that serves the API, the network role alone included, since each keeps an audit
 * log of its own.
 */
export class AuditRetentionJob {
  readonly counters: AuditRetentionCounters = { runs: 0, entriesPurged: 0, failures: 0 };
  readonly #storage: Pick<Storage, 'tenants' | 'auditLog'>;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #batchRows: number;
  readonly #now: () => Date;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number | undefined> | undefined;
  #stopping = false;

  constructor(
    storage: Pick<Storage, 'tenants' | 'auditLog'>,
    logger: Logger,
    options: AuditRetentionOptions = {},
  ) {
    this.#storage = storage;
    this.#logger = logger;
    this.#intervalMs = options.intervalMs ?? 3_600_000;
    this.#batchRows = options.batchRows ?? 5000;
    this.#now = options.now ?? (() => new Date());
  }

  start(): void {
    const tick = () => {
      void this.runOnce();
    };
    tick();
    this.#timer = setInterval(tick, this.#intervalMs);
    this.#timer.unref();
  }

  /** One pass; returns the entries deleted, or undefined after a failure (logged, counted). */
  runOnce(): Promise<number | undefined> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }

  async #run(): Promise<number | undefined> {
    try {
      let purged = 0;
      const now = this.#now().getTime();
      for (const { id, auditDays } of await this.#storage.tenants.auditRetention()) {
        if (auditDays === null) continue;
        const cutoff = new Date(now - auditDays * DAY_MS).toISOString() as IsoTimestamp;
        for (;;) {
          if (this.#stopping) break;
          const deleted = await this.#storage.auditLog.purgeBefore(id, cutoff, this.#batchRows);
          purged += deleted;
          if (deleted < this.#batchRows) break;
        }
      }
      this.counters.runs += 1;
      this.counters.entriesPurged += purged;
      if (purged > 0) this.#logger.info({ entries: purged }, 'audit retention pass done');
      return purged;
    } catch (error) {
      this.counters.failures += 1;
      this.#logger.error({ err: error }, 'audit retention pass failed; the next one tries again');
      return undefined;
    }
  }
}
