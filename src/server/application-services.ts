import type { MetricSource } from '../api/metrics.js';
import type { ApplicationServices } from '../application/services.js';
import type { Logger } from '../logger.js';
import type { Storage } from '../storage/index.js';
import type { Closers } from './closers.js';

/**
 * Settings of the application-side services (codecs stage, measurements, retention,
 * integrations), from `galet start` flags, GALET_* variables or the config file. Each service
 * adds its own optional field.
 */
export interface ApplicationServiceSettings {
  /** Idle poll period of the event feeds in ms (default 250); appends wake them sooner. */
  feedPollIntervalMs?: number;
}

export interface ApplicationServicesContext {
  storage: Storage;
  logger: Logger;
  /** Each service adds its closer here; they close in reverse order, before the database. */
  closers: Closers;
  /**
   * Calls the listener after events were appended to the event log (a wake-up for feeds, which
   * otherwise poll). Returns the unsubscribe function.
   */
  onEventsAppended(listener: () => void): () => void;
  settings: ApplicationServiceSettings;
}

/**
 * Starts the application-side services of a process that holds decrypted payloads: all-in-one
 * or a provider (roles join,application); never the network role alone. Each service is started
 * here, one call each, and registers its closer.
 */
export async function startApplicationServices(
  context: ApplicationServicesContext,
): Promise<ApplicationServices> {
  const metricSources: Record<string, MetricSource> = {};
  const gauges: Record<string, { help: string; read: () => number }> = {};
  // Until a stage finishes events, they are final as soon as they are stored.
  const readyUpTo = () => Number.MAX_SAFE_INTEGER;
  const onEventsReady = (listener: () => void) => context.onEventsAppended(listener);

  // Services start here (issue 7): application stage, measurements, retention, integrations.

  return { readyUpTo: () => readyUpTo(), onEventsReady, metricSources, gauges };
}
