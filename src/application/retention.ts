import type { Logger } from '../logger.js';
import { PeriodicPass } from '../periodic-pass.js';
import type { ApplicationDataSettings, MeasurementPartition, Storage } from '../storage/index.js';

export interface RetentionJobOptions {
  storage: Pick<Storage, 'applications' | 'measurements'>;
  logger: Logger;
  /** Time between runs (default one hour). The first run starts with the job. */
  intervalMs?: number;
  /** Rows per DELETE (default 5000): each batch is its own short statement. */
  batchRows?: number;
  /** PostgreSQL: monthly partitions kept ready beyond the current month (default 2). */
  monthsAhead?: number;
  now?: () => Date;
}

export interface RetentionSummary {
  eventsDeleted: number;
  measurementsDeleted: number;
  partitionsCreated: string[];
  partitionsDropped: string[];
  durationMs: number;
}

export interface RetentionCounters {
  runs: number;
  failures: number;
  eventsPurged: number;
  measurementsPurged: number;
  partitionsCreated: number;
  partitionsDropped: number;
}

export const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * Retention and partition upkeep: deletes each application's events and measurements older
 * than its retention (applications without one keep everything), in batches of `batchRows`
 * with a yield to the event loop between them, so uplinks keep flowing while a backlog is
 * purged. On PostgreSQL it also creates the coming months' partitions and drops a whole month
 * once no application that may still keep rows of it has any there (one DROP instead of
 * millions of deletes); whatever remains is deleted per application.
 */
export class RetentionJob {
  readonly counters: RetentionCounters = {
    runs: 0,
    failures: 0,
    eventsPurged: 0,
    measurementsPurged: 0,
    partitionsCreated: 0,
    partitionsDropped: 0,
  };
  readonly #options: Required<Omit<RetentionJobOptions, 'storage' | 'logger'>>;
  readonly #storage: RetentionJobOptions['storage'];
  readonly #logger: Logger;
  readonly #periodic: PeriodicPass<RetentionSummary | undefined>;

  constructor(options: RetentionJobOptions) {
    this.#storage = options.storage;
    this.#logger = options.logger;
    this.#options = {
      intervalMs: options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS,
      batchRows: options.batchRows ?? 5000,
      monthsAhead: options.monthsAhead ?? 2,
      now: options.now ?? (() => new Date()),
    };
    this.#periodic = new PeriodicPass(() => this.#run(), this.#options.intervalMs);
  }

  /**
   * Creates the partitions at once (so that the first uplinks land in them), then runs the
   * purge in the background and every `intervalMs`.
   */
  async start(): Promise<void> {
    try {
      await this.#ensurePartitions();
    } catch (error) {
      // The default partition takes the rows meanwhile; the first pass tries again.
      this.counters.failures += 1;
      this.#logger.error({ err: error }, 'creating measurement partitions failed');
    }
    this.#periodic.start();
  }

  /** One pass; a call while a pass runs waits for that one. Undefined after a failure. */
  runOnce(): Promise<RetentionSummary | undefined> {
    return this.#periodic.runOnce();
  }

  /** Stops the timer and the pass in progress (after its current batch). */
  close(): Promise<void> {
    return this.#periodic.close();
  }

  async #run(): Promise<RetentionSummary | undefined> {
    const started = Date.now();
    try {
      const partitionsCreated = await this.#ensurePartitions();
      const settings = await this.#storage.applications.listDataSettings();
      const now = this.#options.now();
      const partitionsDropped = await this.#dropExpiredPartitions(settings, now);
      let eventsDeleted = 0;
      let measurementsDeleted = 0;
      for (const application of settings) {
        const { eventsDays, measurementsDays } = application.retention;
        if (measurementsDays !== null) {
          const cutoff = cutoffOf(now, measurementsDays);
          measurementsDeleted += await this.#inBatches((limit) =>
            this.#storage.measurements.deleteBefore(application.id, cutoff, limit),
          );
        }
        if (eventsDays !== null) {
          const cutoff = cutoffOf(now, eventsDays);
          eventsDeleted += await this.#inBatches((limit) =>
            this.#storage.measurements.deleteEventsBefore(application.id, cutoff, limit),
          );
        }
      }
      this.counters.runs += 1;
      this.counters.eventsPurged += eventsDeleted;
      this.counters.measurementsPurged += measurementsDeleted;
      const summary: RetentionSummary = {
        eventsDeleted,
        measurementsDeleted,
        partitionsCreated,
        partitionsDropped,
        durationMs: Date.now() - started,
      };
      this.#logger.info({ ...summary, applications: settings.length }, 'retention pass done');
      return summary;
    } catch (error) {
      this.counters.failures += 1;
      this.#logger.error({ err: error }, 'retention pass failed; the next one tries again');
      return undefined;
    }
  }

  async #ensurePartitions(): Promise<string[]> {
    const created = await this.#storage.measurements.ensurePartitions(
      this.#options.now(),
      this.#options.monthsAhead,
    );
    this.counters.partitionsCreated += created.length;
    if (created.length > 0) {
      this.#logger.info({ partitions: created }, 'measurement partitions created');
    }
    return created;
  }

  async #dropExpiredPartitions(
    settings: readonly ApplicationDataSettings[],
    now: Date,
  ): Promise<string[]> {
    const dropped: string[] = [];
    for (const partition of await this.#storage.measurements.listPartitions()) {
      if (this.#periodic.stopping) break;
      const keepers = applicationsKeeping(partition, settings, now);
      // Every application may still keep rows of it (or there is none): nothing to decide.
      if (keepers.length === settings.length) continue;
      if (await this.#storage.measurements.partitionHasRowsOf(partition.name, keepers)) continue;
      await this.#storage.measurements.dropPartition(partition.name);
      this.counters.partitionsDropped += 1;
      dropped.push(partition.name);
      this.#logger.info({ partition: partition.name }, 'expired measurement partition dropped');
    }
    return dropped;
  }

  /** Runs `deleteBatch` until a batch comes back short; returns the rows deleted. */
  async #inBatches(deleteBatch: (limit: number) => Promise<number>): Promise<number> {
    let total = 0;
    while (!this.#periodic.stopping) {
      const deleted = await deleteBatch(this.#options.batchRows);
      total += deleted;
      if (deleted < this.#options.batchRows) break;
      // Let uplinks and API requests through between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return total;
  }
}

/**
 * The applications that may still keep rows of a partition: those without a measurements
 * retention, and those whose cutoff falls before the partition's end. Rows of applications
 * that no longer exist keep nothing alive.
 */
export function applicationsKeeping(
  partition: MeasurementPartition,
  settings: readonly ApplicationDataSettings[],
  now: Date,
): string[] {
  return settings
    .filter(({ retention }) => {
      const days = retention.measurementsDays;
      return days === null || now.getTime() - days * DAY_MS < partition.toMs;
    })
    .map(({ id }) => id);
}

function cutoffOf(now: Date, days: number): string {
  return new Date(now.getTime() - days * DAY_MS).toISOString();
}
