import type { MetricSource } from '../api/metrics.js';
import type { EventStreamGate } from '../api/routes/event-streams.js';
import type { ApplicationCodecs, DecodedListener } from './stage/index.js';

/** What the running services offer the API and the metrics endpoint. */
export interface ApplicationServices {
  /**
   * The id up to which events are final (the application stage decoded them): integrations and
   * streams hand out nothing beyond it.
   */
  readyUpTo(): number;
  /** Wakes every feed after events were appended or finished by a stage. */
  onEventsReady(listener: () => void): () => void;
  /** Counters and gauges for `/metrics` (`galet_<prefix>_<name>_total`). */
  metricSources: Record<string, MetricSource>;
  gauges: Record<string, { help: string; read: () => number }>;
  /** Payload codecs for the API (profile checks, test bench, downlinks given as objects). */
  codecs?: ApplicationCodecs;
  /** Awaited for each decoded uplink before the application stage moves past it. */
  onDecoded?(listener: DecodedListener): () => void;
  /** Bounds and counts the event streams (absent: default limits, no metrics). */
  eventStreams?: EventStreamGate;
}
