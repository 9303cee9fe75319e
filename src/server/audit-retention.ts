import type { Logger } from '../logger.js';
import { PeriodicPass } from '../periodic-pass.js';
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
  readonly #batchRows: number;
  readonly #now: () => Date;
  readonly #periodic: PeriodicPass<number | undefined>;

  constructor(
    storage: Pick<Storage, 'tenants' | 'auditLog'>,
    logger: Logger,
    options: AuditRetentionOptions = {},
  ) {
    this.#storage = storage;
    this.#logger = logger;
    this.#batchRows = options.batchRows ?? 5000;
    this.#now = options.now ?? (() => new Date());
    this.#periodic = new PeriodicPass(() => this.#run(), options.intervalMs ?? 3_600_000);
  }

  start(): void {
    this.#periodic.start();
  }

  /** One pass; returns the entries deleted, or undefined after a failure (logged, counted). */
  runOnce(): Promise<number | undefined> {
    return this.#periodic.runOnce();
  }

  close(): Promise<void> {
    return this.#periodic.close();
  }

  async #run(): Promise<number | undefined> {
    try {
      let purged = 0;
      const now = this.#now().getTime();
      for (const { id, auditDays } of await this.#storage.tenants.auditRetention()) {
        if (auditDays === null) continue;
        const cutoff = new Date(now - auditDays * DAY_MS).toISOString() as IsoTimestamp;
        for (;;) {
          if (this.#periodic.stopping) break;
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
