import { LogThrottle } from '../../log-throttle.js';
import type { Logger } from '../../logger.js';
import { silentLogger } from '../../logger.js';
import type {
  CodecSettings,
  EventRepository,
  FeedEvent,
  FeedEventHead,
  IsoTimestamp,
  NewEvent,
} from '../../storage/index.js';
import type { DecodeOutcome, JsonValue, UplinkInput } from '../codecs/index.js';
import { EventFeed, type FeedCursor } from '../event-feed.js';
import { dropFields } from '../measurements/drop-fields.js';
import { codecFailureLogEvent, deduplicationIdOf, isCodecLogOf } from './codec-log-event.js';
import type { DeviceCodec } from './device-codecs.js';
import { type ActiveCodecSettings, isActiveCodec } from './payload-codecs.js';

/** The consumer cursor of the stage in `storage.consumerCursors`. */
export const APPLICATION_STAGE_CURSOR = 'application-stage';

/** An uplink the stage decoded (or found decoded when a batch is handled again). */
export interface DecodedUplink {
  eventId: number;
  devEui: string;
  applicationId: string;
  time: IsoTimestamp;
  object: JsonValue;
}

export type DecodedListener = (uplink: DecodedUplink) => Promise<void>;
/** The decoded uplinks of one batch, in event order (one call, e.g. one storage transaction). */
export type DecodedBatchListener = (uplinks: readonly DecodedUplink[]) => Promise<void>;

export interface ApplicationStageOptions {
  events: Pick<
    EventRepository,
    'listAfter' | 'listHeadsAfter' | 'bodiesOf' | 'appendMany' | 'replaceBodies' | 'lastId'
  >;
  cursor: FeedCursor;
  /** Device -> profile -> codec (a `DeviceCodecLookup`). */
  codecsOf(devEuis: Iterable<string>): Promise<Map<string, DeviceCodec>>;
  /**
   * Whether any device may have a codec: while none may, the stage moves past events without
   * reading them. Absent: always read.
   */
  anyCodec?(): Promise<boolean>;
  /** Runs a codec over a batch of uplinks (a `PayloadCodecs`); never throws. */
  decodeMany(
    settings: ActiveCodecSettings,
    inputs: readonly UplinkInput[],
  ): Promise<DecodeOutcome[]>;
  /**
   * The field paths an application never keeps (data minimisation): removed from the decoded
   * object before it is stored or handed on. Absent: nothing is dropped.
   */
  dropFieldsOf?(applicationId: string): Promise<readonly string[]>;
  logger?: Logger;
  /** Events per batch (default 250). */
  batchSize?: number;
  pollIntervalMs?: number;
  gapWaitMs?: number;
  /** How often the lag gauge reads the last event id (default 1000 ms). */
  lagRefreshMs?: number;
  now?: () => number;
}

export interface ApplicationStageCounters {
  /** Decodes by outcome: `ok` or the failure's code (`CODEC_THREW`, `CODEC_TIMEOUT`, ...). */
  decodes: Record<string, number>;
  batches: number;
  events: number;
  /** `log` events appended for failed decodes. */
  logEvents: number;
  /** Uplinks found decoded already (a batch handled again after a crash or a failure). */
  alreadyDecoded: number;
  /** Failed batches (storage errors, a listener that threw): retried. */
  failedBatches: number;
}

interface Job {
  event: FeedEvent;
  body: Record<string, unknown>;
  input: UplinkInput;
  device: DeviceCodec;
  codec: ActiveCodecSettings;
}

/**
 * The application stage: reads the event log (an EventFeed, cursor `application-stage`) and, for
 * each `up` event with a payload whose device's profile has a codec, decodes the payload and
 * writes the result into the stored event as ChirpStack's `object`. A failed decode appends a
 * `log` event (UPLINK_CODEC) instead; it never stops the stage. Later consumers (integrations,
 * streams) read only up to `readyUpTo`, so they see decoded events.
 *
 * At least once: a batch is handled again when it failed or when Galet stopped before its
 * position was saved. Uplinks found with an `object` are not decoded again (their listeners are
 * called again); in such a batch, a failure whose `log` event is already stored is not logged
 * twice.
 */
export class ApplicationStage {
  readonly #options: ApplicationStageOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #feed: EventFeed<FeedEventHead>;
  readonly #decodedListeners: DecodedListener[] = [];
  readonly #decodedBatchListeners: DecodedBatchListener[] = [];
  readonly #advanceListeners = new Set<() => void>();
  readonly #throttle = new LogThrottle(60_000);
  readonly #counters: ApplicationStageCounters = {
    decodes: { ok: 0 },
    batches: 0,
    events: 0,
    logEvents: 0,
    alreadyDecoded: 0,
    failedBatches: 0,
  };
  #readyUpTo = 0;
  #lastEventId = 0;
  /** The next batch may have been handled before (the first after a start, or after a failure). */
  #mayBeReplay = true;
  #lagTimer: NodeJS.Timeout | undefined;

  constructor(options: ApplicationStageOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    const cursor = options.cursor;
    // Heads only: the bodies of the uplinks of devices with a codec are read by the batch.
    this.#feed = new EventFeed<FeedEventHead>({
      name: APPLICATION_STAGE_CURSOR,
      events: {
        listAfter: (afterId, read) => options.events.listHeadsAfter(afterId, read),
        lastId: () => options.events.lastId(),
      },
      cursor: {
        load: async () => {
          this.#readyUpTo = await cursor.load();
          return this.#readyUpTo;
        },
        save: async (id) => {
          await cursor.save(id);
          this.#advanced(id);
        },
      },
      handle: (events) => this.#handle(events),
      ...(options.anyCodec === undefined
        ? {}
        : { idle: async () => !(await options.anyCodec?.()) }),
      batchSize: options.batchSize ?? 250,
      ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      ...(options.gapWaitMs === undefined ? {} : { gapWaitMs: options.gapWaitMs }),
      logger: this.#logger,
      now: this.#now,
    });
  }

  /** Events up to this id went through the stage (decoded, or nothing to decode). */
  get readyUpTo(): number {
    return this.#readyUpTo;
  }

  /** Events stored but not through the stage yet (refreshed every `lagRefreshMs`). */
  get lag(): number {
    return Math.max(0, this.#lastEventId - this.#readyUpTo);
  }

  get counters(): ApplicationStageCounters {
    return { ...this.#counters, decodes: { ...this.#counters.decodes } };
  }

  /**
   * Called for each decoded uplink, awaited before the stage's position moves past it (and
   * called again when its batch is handled again). A listener that throws fails the batch,
   * which is retried.
   */
  /** As `onDecoded`, once per batch with all its decoded uplinks (called first). */
  onDecodedBatch(listener: DecodedBatchListener): () => void {
    this.#decodedBatchListeners.push(listener);
    return () => {
      const index = this.#decodedBatchListeners.indexOf(listener);
      if (index !== -1) this.#decodedBatchListeners.splice(index, 1);
    };
  }

  onDecoded(listener: DecodedListener): () => void {
    this.#decodedListeners.push(listener);
    return () => {
      const index = this.#decodedListeners.indexOf(listener);
      if (index !== -1) this.#decodedListeners.splice(index, 1);
    };
  }

  /** Called after the position advanced (`readyUpTo` moved). */
  onAdvanced(listener: () => void): () => void {
    this.#advanceListeners.add(listener);
    return () => this.#advanceListeners.delete(listener);
  }

  async start(): Promise<void> {
    await this.#feed.start();
    await this.#refreshLag();
    this.#lagTimer = setInterval(() => void this.#refreshLag(), this.#options.lagRefreshMs ?? 1000);
    this.#lagTimer.unref();
  }

  /** New events were stored: read them now. */
  wake(): void {
    this.#feed.wake();
  }

  async close(): Promise<void> {
    clearInterval(this.#lagTimer);
    await this.#feed.close();
  }

  async #refreshLag(): Promise<void> {
    try {
      this.#lastEventId = await this.#options.events.lastId();
    } catch {
      // The gauge keeps its last value; the feed reports the storage error itself.
    }
  }

  #advanced(id: number): void {
    this.#readyUpTo = id;
    if (id > this.#lastEventId) this.#lastEventId = id;
    for (const listener of this.#advanceListeners) {
      try {
        listener();
      } catch (error) {
        this.#logger.error({ err: error }, 'application stage: a listener of its progress threw');
      }
    }
  }

  async #handle(events: readonly FeedEventHead[]): Promise<void> {
    try {
      await this.#decodeBatch(events);
      this.#mayBeReplay = false;
      this.#counters.batches += 1;
      this.#counters.events += events.length;
    } catch (error) {
      this.#mayBeReplay = true;
      this.#counters.failedBatches += 1;
      throw error;
    }
  }

  async #decodeBatch(events: readonly FeedEventHead[]): Promise<void> {
    const ups = events.filter((event) => event.type === 'up');
    if (ups.length === 0) return;
    // Devices without a codec are skipped before their event's body is even read.
    const devices = await this.#options.codecsOf(ups.map((event) => event.devEui));
    const withCodec = ups.filter((event) => devices.has(event.devEui));
    if (withCodec.length === 0) return;
    const bodies = await this.#options.events.bodiesOf(withCodec.map((event) => event.id));
    const uplinks = withCodec
      .filter((event) => bodies.has(event.id))
      .map((event): FeedEvent => ({ ...event, body: bodies.get(event.id) }))
      .filter(hasPayload);
    if (uplinks.length === 0) return;
    const decoded: DecodedUplink[] = [];
    const pending: FeedEvent[] = [];
    for (const event of uplinks) {
      const body = event.body as Record<string, unknown>;
      if ('object' in body) {
        this.#counters.alreadyDecoded += 1;
        decoded.push(decodedUplink(event, body['object'] as JsonValue));
      } else {
        pending.push(event);
      }
    }
    const jobsByCodec = new Map<CodecSettings, Job[]>();
    for (const event of pending) {
      const device = devices.get(event.devEui);
      if (device === undefined || !isActiveCodec(device.codec)) continue;
      const body = event.body as Record<string, unknown>;
      const job: Job = {
        event,
        body,
        device,
        codec: device.codec,
        input: {
          bytes: new Uint8Array(Buffer.from(body['data'] as string, 'base64')),
          fPort: body['fPort'] as number,
          recvTime: Date.parse(event.time),
        },
      };
      const jobs = jobsByCodec.get(device.codec) ?? [];
      jobs.push(job);
      jobsByCodec.set(device.codec, jobs);
    }
    if (jobsByCodec.size === 0 && decoded.length === 0) return;

    const updates: { id: number; body: object }[] = [];
    const failures: { job: Job; outcome: Extract<DecodeOutcome, { ok: false }> }[] = [];
    const dropped = await this.#dropFieldsOf(jobsByCodec.values());
    await Promise.all(
      [...jobsByCodec.values()].map(async (jobs) => {
        const outcomes = await this.#decode(jobs);
        jobs.forEach((job, i) => {
          const outcome = outcomes[i] as DecodeOutcome;
          this.#count(outcome.ok ? 'ok' : outcome.error.code);
          if (outcome.ok) {
            const paths = dropped.get(job.event.applicationId) ?? [];
            const object = paths.length === 0 ? outcome.data : dropFields(outcome.data, paths);
            updates.push({ id: job.event.id, body: { ...job.body, object } });
            decoded.push(decodedUplink(job.event, object));
          } else {
            failures.push({ job, outcome });
          }
        });
      }),
    );
    updates.sort((a, b) => a.id - b.id);
    await this.#options.events.replaceBodies(updates);
    await this.#appendLogEvents(failures);
    decoded.sort((a, b) => a.eventId - b.eventId);
    if (decoded.length > 0) {
      for (const listener of this.#decodedBatchListeners) await listener(decoded);
    }
    for (const uplink of decoded) {
      for (const listener of this.#decodedListeners) await listener(uplink);
    }
  }

  /** The dropped field paths of each application with jobs in this batch. */
  async #dropFieldsOf(
    jobGroups: Iterable<readonly Job[]>,
  ): Promise<Map<string, readonly string[]>> {
    const paths = new Map<string, readonly string[]>();
    const lookup = this.#options.dropFieldsOf;
    if (lookup === undefined) return paths;
    for (const jobs of jobGroups) {
      for (const { event } of jobs) {
        if (!paths.has(event.applicationId)) {
          paths.set(event.applicationId, await lookup(event.applicationId));
        }
      }
    }
    return paths;
  }

  /** One codec's jobs through the sandbox; a rejection (a bug) fails these jobs only. */
  async #decode(jobs: readonly Job[]): Promise<DecodeOutcome[]> {
    const codec = (jobs[0] as Job).codec;
    try {
      return await this.#options.decodeMany(
        codec,
        jobs.map((job) => job.input),
      );
    } catch (error) {
      const failure = {
        code: 'CODEC_SANDBOX_ERROR' as const,
        message: `the codec could not be run: ${(error as Error).message}`,
      };
      return jobs.map(() => ({ ok: false as const, error: failure, warnings: [] }));
    }
  }

  async #appendLogEvents(
    failures: readonly { job: Job; outcome: Extract<DecodeOutcome, { ok: false }> }[],
  ): Promise<void> {
    if (failures.length === 0) return;
    const time = new Date(this.#now()).toISOString();
    const logs: NewEvent[] = [];
    for (const { job, outcome } of [...failures].sort((a, b) => a.job.event.id - b.job.event.id)) {
      this.#logFailure(job, outcome);
      if (this.#mayBeReplay && (await this.#alreadyLogged(job.event))) continue;
      logs.push(codecFailureLogEvent(job.event, outcome.error, time));
    }
    await this.#options.events.appendMany(logs);
    this.#counters.logEvents += logs.length;
  }

  /** In a batch handled again: whether the failure's log event was stored the first time. */
  async #alreadyLogged(up: FeedEvent): Promise<boolean> {
    const deduplicationId = deduplicationIdOf(up);
    if (deduplicationId === null) return false;
    const later = await this.#options.events.listAfter(up.id, { devEui: up.devEui, limit: 1000 });
    return later.some((event) => isCodecLogOf(event, deduplicationId));
  }

  #logFailure(job: Job, outcome: Extract<DecodeOutcome, { ok: false }>): void {
    const code = outcome.error.code;
    const allowed = this.#throttle.take(`${job.device.profileId}:${code}`, this.#now());
    if (allowed === undefined) return;
    this.#logger.warn(
      {
        devEui: job.event.devEui,
        deviceProfileId: job.device.profileId,
        eventId: job.event.id,
        code,
        reason: outcome.error.message,
        ...(allowed.suppressed > 0 ? { suppressed: allowed.suppressed } : {}),
      },
      'application stage: an uplink could not be decoded by its codec',
    );
  }

  #count(outcome: string): void {
    this.#counters.decodes[outcome] = (this.#counters.decodes[outcome] ?? 0) + 1;
  }
}

/** An `up` event with a decrypted application payload (FPort > 0). */
function hasPayload(event: FeedEvent): boolean {
  if (event.type !== 'up') return false;
  const body = event.body as Record<string, unknown> | null;
  if (typeof body !== 'object' || body === null) return false;
  const { data, fPort } = body;
  return (
    typeof data === 'string' &&
    data !== '' &&
    typeof fPort === 'number' &&
    Number.isInteger(fPort) &&
    fPort > 0 &&
    fPort < 256
  );
}

function decodedUplink(event: FeedEvent, object: JsonValue): DecodedUplink {
  return {
    eventId: event.id,
    devEui: event.devEui,
    applicationId: event.applicationId,
    time: event.time,
    object,
  };
}
