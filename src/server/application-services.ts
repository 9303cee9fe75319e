import type { MetricSource } from '../api/metrics.js';
import { EventStreamGate, type EventStreamLimits } from '../api/routes/event-streams.js';
import { MqttIntegration } from '../application/integrations/mqtt/mqtt-integration.js';
import type { MqttSettings } from '../application/integrations/mqtt/settings.js';
import { startWebhooks, type WebhookSettings } from '../application/integrations/webhooks/index.js';
import { RetentionJob, type RetentionJobOptions } from '../application/retention.js';
import type { ApplicationServices } from '../application/services.js';
import {
  type ApplicationStageSettings,
  type DecodedUplink,
  startApplicationStage,
} from '../application/stage/index.js';
import type { Logger } from '../logger.js';
import { type Storage, StorageError } from '../storage/index.js';
import type { Closers } from './closers.js';

/**
 * Settings of the application-side services (codecs stage, measurements, retention,
 * integrations), from `galet start` flags, GALET_* variables or the config file. Each service
 * adds its own optional field.
 */
export interface ApplicationServiceSettings {
  /** Idle poll period of the event feeds in ms (default 250); appends wake them sooner. */
  feedPollIntervalMs?: number;
  /** Retention job: period (default hourly), rows per delete, partitions made ahead. */
  retention?: Pick<RetentionJobOptions, 'intervalMs' | 'batchRows' | 'monthsAhead'>;
  /** The application stage (codecs): codec limits, batch size, cache TTL. */
  stage?: ApplicationStageSettings;
  /** MQTT integration (issue 7): absent, no MQTT. */
  mqtt?: MqttSettings | undefined;
  /** HTTP webhooks (issue 7): timeouts, concurrency, back-off, dead-letter age. */
  webhooks?: WebhookSettings | undefined;
  /** Server-sent event streams of the API (issue 7): how many may be open, heartbeat period. */
  eventStreams?: Partial<EventStreamLimits> | undefined;
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
  /**
   * Tells the network a downlink was queued (MQTT commands, issue 7). All-in-one passes the
   * network server's; absent (a provider, whose network is over the link) the network sees the
   * queued item only when it reads the queue for another reason.
   */
  downlinkQueued?(devEui: string): void;
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
  // --- Application stage (issue 7) ---
  // Decodes uplinks with their profile's codec. Events are final (readyUpTo) once the stage is
  // past them; later consumers wake when it advances.
  const application = await startApplicationStage(context.storage, context.logger, {
    ...(context.settings.feedPollIntervalMs === undefined
      ? {}
      : { pollIntervalMs: context.settings.feedPollIntervalMs }),
    ...context.settings.stage,
  });
  context.closers.add(() => application.close());
  const { stage } = application;
  context.onEventsAppended(() => stage.wake());
  const readyUpTo = () => stage.readyUpTo;
  const onEventsReady = (listener: () => void) => stage.onAdvanced(listener);
  metricSources['application_stage'] = () => ({
    ...stage.counters,
    ...application.codecProcessStats(),
  });
  gauges['application_stage_lag_events'] = {
    help: 'events stored but not through the application stage yet',
    read: () => stage.lag,
  };
  gauges['application_stage_position'] = {
    help: 'id of the last event through the application stage',
    read: () => stage.readyUpTo,
  };
  const stageServices: Pick<ApplicationServices, 'codecs' | 'onDecoded'> = {
    codecs: application.codecs,
    onDecoded: (listener) => stage.onDecoded(listener),
  };
  // --- end application stage ---

  // --- Measurements and retention (issue 7) ---
  const retention = new RetentionJob({
    storage: context.storage,
    logger: context.logger.child({ component: 'retention' }),
    ...context.settings.retention,
  });
  await retention.start();
  context.closers.add(() => retention.close());
  metricSources['retention'] = () => ({ ...retention.counters });
  // Each batch's decoded values, before the stage moves past it (idempotent per event), in one
  // transaction; when the store refuses a value, one uplink at a time to set aside only those.
  let measurementsRefused = 0;
  const recordOne = async (uplink: DecodedUplink) => {
    try {
      await context.storage.measurements.recordDecoded(uplink);
    } catch (error) {
      // A value the store refuses would fail the batch again on every retry: log and go on.
      // Anything else (the database down) fails the batch, which the stage retries.
      if (!(error instanceof StorageError && error.code === 'INVALID_INPUT')) throw error;
      measurementsRefused += 1;
      context.logger.warn(
        { err: error, eventId: uplink.eventId, devEui: uplink.devEui },
        'measurements of a decoded uplink refused',
      );
    }
  };
  stage.onDecodedBatch(async (uplinks) => {
    try {
      await context.storage.measurements.recordDecodedMany(uplinks);
    } catch (error) {
      if (!(error instanceof StorageError && error.code === 'INVALID_INPUT')) throw error;
      for (const uplink of uplinks) await recordOne(uplink);
    }
  });
  metricSources['measurements'] = () => ({
    ...context.storage.measurements.counters,
    refused: measurementsRefused,
  });
  // --- end measurements and retention ---

  // Services start here (issue 7): application stage, measurements, retention, integrations.

  // --- MQTT integration (issue 7) ---
  if (context.settings.mqtt !== undefined) {
    const mqtt = await MqttIntegration.start({
      settings: context.settings.mqtt,
      storage: context.storage,
      ...(stageServices.codecs === undefined ? {} : { codecs: stageServices.codecs }),
      readyUpTo: () => readyUpTo(),
      onEventsReady,
      ...(context.downlinkQueued === undefined
        ? {}
        : { downlinkQueued: (devEui: string) => context.downlinkQueued?.(devEui) }),
      logger: context.logger.child({ component: 'mqtt' }),
      ...(context.settings.feedPollIntervalMs === undefined
        ? {}
        : { feedPollIntervalMs: context.settings.feedPollIntervalMs }),
    });
    context.closers.add(() => mqtt.close());
    metricSources['mqtt'] = mqtt.metricSource;
    Object.assign(gauges, mqtt.gauges);
  }
  // --- end MQTT integration ---

  // --- Webhooks (issue 7) ---
  // Always on: without webhooks the dispatcher only moves its cursor.
  const webhooks = await startWebhooks({
    storage: context.storage,
    logger: context.logger,
    readyUpTo: () => readyUpTo(),
    onEventsReady,
    ...(context.settings.webhooks === undefined ? {} : { settings: context.settings.webhooks }),
    ...(context.settings.feedPollIntervalMs === undefined
      ? {}
      : { feedPollIntervalMs: context.settings.feedPollIntervalMs }),
  });
  context.closers.add(() => webhooks.close());
  metricSources['webhooks'] = webhooks.metricSource;
  Object.assign(gauges, webhooks.gauges);
  // --- end webhooks ---

  // --- Event streams (issue 7) ---
  // The API's streams are bounded and counted here, so that their metrics are registered with
  // the others before the API is built (api/routes/event-streams.ts).
  const eventStreams = new EventStreamGate({
    ...(context.settings.eventStreams === undefined
      ? {}
      : { limits: context.settings.eventStreams }),
    logger: context.logger.child({ component: 'event-streams' }),
  });
  metricSources['event_streams'] = eventStreams.metricSource;
  Object.assign(gauges, eventStreams.gauges);
  // --- end event streams ---

  return {
    readyUpTo: () => readyUpTo(),
    onEventsReady,
    metricSources,
    gauges,
    ...stageServices,
    eventStreams,
  };
}
