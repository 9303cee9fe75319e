import { connect, type IPublishPacket, type MqttClient } from 'mqtt';
import type { MetricSource } from '../../../api/metrics.js';
import type { Logger } from '../../../logger.js';
import {
  type Device,
  type FeedEvent,
  MAX_DOWNLINK_PAYLOAD_BYTES,
  type Storage,
  StorageError,
} from '../../../storage/index.js';
import type { JsonValue } from '../../codecs/index.js';
import { EventFeed, storageCursor } from '../../event-feed.js';
import { type ApplicationCodecs, isActiveCodec } from '../../stage/index.js';
import {
  classifyConnectionError,
  MQTT_CONNECTION_ERROR_KINDS,
  type MqttConnectionErrorKind,
} from './connection-error.js';
import {
  type DownlinkCommand,
  type DownlinkCommandRefusal,
  isDevEui,
  parseDownlinkCommand,
} from './downlink-command.js';
import {
  brokerForLogs,
  DEFAULT_TOPIC_PREFIX,
  type MqttSettings,
  mqttClientOptions,
} from './settings.js';
import { commandSubscription, eventTopic, isTopicLevel, parseCommandTopic } from './topics.js';

/** How long a closing integration waits for the acknowledgements of the batch in hand. */
const CLOSE_GRACE_MS = 2000;

/** The consumer cursor of the MQTT integration in `storage.consumerCursors`. */
export const MQTT_CURSOR_NAME = 'mqtt';

export interface MqttIntegrationOptions {
  settings: MqttSettings;
  storage: Pick<
    Storage,
    'events' | 'consumerCursors' | 'devices' | 'deviceProfiles' | 'downlinkQueue'
  >;
  /** The profiles' codecs: commands given as `object` are encoded (absent: refused). */
  codecs?: ApplicationCodecs;
  /** Events above this id are not final yet (application services' `readyUpTo`). */
  readyUpTo: () => number;
  onEventsReady: (listener: () => void) => () => void;
  /** Tells the network a downlink was queued (absent: the network finds it later, or never). */
  downlinkQueued?: (devEui: string) => void;
  logger: Logger;
  feedPollIntervalMs?: number;
}

const REFUSALS: readonly DownlinkCommandRefusal[] = [
  'too_large',
  'not_json',
  'not_an_object',
  'dev_eui_mismatch',
  'invalid_fport',
  'invalid_data',
  'invalid_confirmed',
  'object_needs_codec',
  'codec_failed',
  'unknown_device',
  'other_application',
  'enqueue_failed',
];

/** ChirpStack's LogCode for each refusal (its `log` event's `code`). */
function logCode(reason: DownlinkCommandRefusal | 'invalid_topic'): string {
  if (reason === 'too_large' || reason === 'invalid_data') return 'DOWNLINK_PAYLOAD_SIZE';
  if (reason === 'object_needs_codec' || reason === 'codec_failed') return 'DOWNLINK_CODEC';
  return 'UNKNOWN';
}

class BrokerUnavailable extends Error {
  override name = 'BrokerUnavailable';
}

/** Repeated connection errors (a broker down, retried each second) are logged once a minute. */
const ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * The MQTT integration: every event of the event log published as ChirpStack v4 does (QoS 1,
 * topic `{prefix}/{applicationId}/device/{devEui}/event/{type}`, the stored JSON as payload), in
 * id order, at least once; and downlink commands taken from `.../command/down`.
 *
 * Delivery is an EventFeed with a durable cursor: a batch counts as delivered once the broker
 * acknowledged (PUBACK) each of its messages; until then the cursor stays and the batch is
 * published again (after a broker outage, or after a restart, even a kill -9).
 */
export class MqttIntegration {
  readonly #options: MqttIntegrationOptions;
  readonly #client: MqttClient;
  readonly #feed: EventFeed;
  readonly #prefix: string;
  readonly #publishTimeoutMs: number;
  readonly #logger: Logger;
  readonly #broker: string;
  readonly #closing = new AbortController();
  #closeStarted = false;
  readonly #unsubscribeReady: () => void;
  #commandsInHand = 0;
  #commandsDone: (() => void) | undefined;
  #lastKnownId = 0;
  #refreshing = false;
  #lastErrorLog: { message: string; atMs: number } | undefined;
  readonly #counters = {
    published: 0,
    publishFailed: 0,
    batchesFailed: 0,
    connects: 0,
    connectionsLost: 0,
    connectionErrors: Object.fromEntries(
      MQTT_CONNECTION_ERROR_KINDS.map((kind) => [kind, 0]),
    ) as Record<MqttConnectionErrorKind, number>,
    commandsQueued: 0,
    commandsRefused: Object.fromEntries(
      [...REFUSALS, 'invalid_topic'].map((reason) => [reason, 0]),
    ) as Record<DownlinkCommandRefusal | 'invalid_topic', number>,
  };

  private constructor(options: MqttIntegrationOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#prefix = options.settings.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
    this.#publishTimeoutMs = options.settings.publishTimeoutMs ?? 10_000;
    this.#broker = brokerForLogs(options.settings.url);
    const clientOptions = mqttClientOptions(options.settings);
    this.#client = connect(options.settings.url, { ...clientOptions, resubscribe: false });
    this.#client.on('connect', (connack) => this.#onConnect(connack.sessionPresent));
    this.#client.on('close', () => this.#onClose());
    this.#client.on('error', (error) => this.#logConnectionError(error));
    // Commands are taken before their PUBACK goes out: mqtt.js acknowledges a QoS 1 message
    // once handleMessage calls back.
    this.#client.handleMessage = (packet, done) => {
      void this.#handleCommand(packet).finally(() => done());
    };
    this.#feed = new EventFeed({
      name: 'mqtt',
      events: options.storage.events,
      cursor: storageCursor(options.storage.consumerCursors, MQTT_CURSOR_NAME),
      handle: (batch) => this.#publishBatch(batch),
      // A batch costs a round of PUBACKs, and a broker that batches its small writes (Nagle)
      // answers the last ones after the peer's delayed ACK, about 40 ms on Linux: measured
      // with Mosquitto, 100 QoS 1 publishes took 45 ms and 1,000 took 72 ms.
      batchSize: 1000,
      readyUpTo: options.readyUpTo,
      retryMaxMs: 5000,
      logger: options.logger,
      ...(options.feedPollIntervalMs === undefined
        ? {}
        : { pollIntervalMs: options.feedPollIntervalMs }),
    });
    this.#unsubscribeReady = options.onEventsReady(() => {
      this.#feed.wake();
      this.#refreshLastKnownId();
    });
  }

  /** Starts publishing (the broker may be down: delivery starts when it answers). */
  static async start(options: MqttIntegrationOptions): Promise<MqttIntegration> {
    const integration = new MqttIntegration(options);
    try {
      await integration.#feed.start();
    } catch (error) {
      await integration.close();
      throw error;
    }
    integration.#refreshLastKnownId();
    integration.#logger.info(
      { broker: integration.#broker, topicPrefix: integration.#prefix },
      'MQTT integration started',
    );
    return integration;
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** The id of the last event the broker acknowledged. */
  get position(): number {
    return this.#feed.position;
  }

  readonly metricSource: MetricSource = () => ({
    ...this.#counters,
    connectionErrors: { ...this.#counters.connectionErrors },
    commandsRefused: { ...this.#counters.commandsRefused },
  });

  readonly gauges: Record<string, { help: string; read: () => number }> = {
    mqtt_connected: {
      help: 'MQTT integration: 1 while connected to the broker',
      read: () => (this.#client.connected ? 1 : 0),
    },
    mqtt_lag_events: {
      help: 'MQTT integration: ids of final events not yet acknowledged by the broker',
      read: () => Math.max(0, this.#finalUpTo() - this.#feed.position),
    },
  };

  /**
   * Stops after the batch in hand, which gets up to CLOSE_GRACE_MS for the broker's
   * acknowledgements (a clean stop then sends nothing twice); what the broker did not
   * acknowledge by then goes out next start.
   */
  async close(): Promise<void> {
    if (this.#closeStarted) return;
    this.#closeStarted = true;
    this.#unsubscribeReady();
    const feedClosed = this.#feed.close();
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      feedClosed,
      new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(graceTimer);
    this.#closing.abort();
    await feedClosed;
    if (this.#commandsInHand > 0) {
      await new Promise<void>((resolve) => {
        this.#commandsDone = resolve;
      });
    }
    await this.#client.endAsync(true);
    this.#logger.info(
      { broker: this.#broker, position: this.#feed.position },
      'MQTT integration closed',
    );
  }

  #onConnect(sessionPresent: boolean): void {
    this.#counters.connects += 1;
    this.#lastErrorLog = undefined;
    this.#logger.info(
      { broker: this.#broker, clientId: this.#client.options.clientId },
      'MQTT integration connected to the broker',
    );
    if (!sessionPresent) {
      this.#client.subscribe(commandSubscription(this.#prefix), { qos: 1 }, (error) => {
        if (error) {
          this.#logger.warn(
            { broker: this.#broker, err: { message: error.message } },
            'MQTT integration could not subscribe to downlink commands',
          );
        }
      });
    }
    this.#feed.wake();
  }

  #onClose(): void {
    if (this.#closing.signal.aborted) return;
    if (this.#counters.connects > this.#counters.connectionsLost) {
      this.#counters.connectionsLost += 1;
      this.#logger.warn({ broker: this.#broker }, 'MQTT integration lost the broker; reconnecting');
    }
  }

  /** Counts every failed attempt; logs it, the same failure once a minute (retried each second). */
  #logConnectionError(error: Error): void {
    const { kind, hint } = classifyConnectionError(error);
    this.#counters.connectionErrors[kind] += 1;
    const now = Date.now();
    const last = this.#lastErrorLog;
    if (last?.message === error.message && now - last.atMs < ERROR_LOG_INTERVAL_MS) return;
    this.#lastErrorLog = { message: error.message, atMs: now };
    // The message and code only: mqtt.js errors carry no credentials, but an error object might.
    const code = (error as { code?: unknown }).code;
    this.#logger.warn(
      {
        broker: this.#broker,
        reason: kind,
        err: {
          message: error.message,
          ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
        },
      },
      `MQTT integration cannot connect to the broker: ${hint}`,
    );
  }

  /**
   * The id up to which events are final: the application stage's position (never beyond the
   * log's last id), or the log's last id, read in the background, when no stage bounds it.
   */
  #finalUpTo(): number {
    const ready = this.#options.readyUpTo();
    return ready === Number.MAX_SAFE_INTEGER ? this.#lastKnownId : ready;
  }

  /** Reads the log's last id in the background, only when no stage bounds the feed. */
  #refreshLastKnownId(): void {
    if (this.#options.readyUpTo() !== Number.MAX_SAFE_INTEGER || this.#refreshing) return;
    this.#refreshing = true;
    this.#options.storage.events
      .lastId()
      .then((id) => {
        this.#lastKnownId = Math.max(this.#lastKnownId, id);
      })
      .catch(() => undefined)
      .finally(() => {
        this.#refreshing = false;
      });
  }

  /** Publishes a batch and resolves once every message was acknowledged; else throws. */
  async #publishBatch(events: readonly FeedEvent[]): Promise<void> {
    const deadline = Date.now() + this.#publishTimeoutMs;
    try {
      await this.#untilConnected(deadline);
      const acknowledged: Promise<unknown>[] = [];
      for (const event of events) {
        if (!isTopicLevel(event.applicationId) || !isTopicLevel(event.type)) {
          this.#counters.publishFailed += 1;
          this.#logger.warn(
            { eventId: event.id, type: event.type },
            'MQTT integration skips an event whose type or application cannot be a topic level',
          );
          continue;
        }
        acknowledged.push(
          this.#client.publishAsync(
            eventTopic(this.#prefix, event.applicationId, event.devEui, event.type),
            event.bodyJson ?? JSON.stringify(event.body),
            { qos: 1 },
          ),
        );
      }
      await this.#within(Promise.all(acknowledged), deadline, 'the broker did not acknowledge');
    } catch (error) {
      this.#abandonInFlight();
      this.#counters.batchesFailed += 1;
      this.#counters.publishFailed += events.length;
      throw error;
    }
    this.#counters.published += events.length;
    this.#refreshLastKnownId();
  }

  async #untilConnected(deadline: number): Promise<void> {
    if (this.#client.connected) return;
    let onConnect: (() => void) | undefined;
    try {
      await this.#within(
        new Promise<void>((resolve) => {
          onConnect = resolve;
          this.#client.once('connect', onConnect);
        }),
        deadline,
        'not connected to the broker',
      );
    } finally {
      if (onConnect !== undefined) this.#client.off('connect', onConnect);
    }
  }

  /** `work` unless the deadline passes or the integration closes first. */
  #within<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
    const signal = this.#closing.signal;
    if (signal.aborted) return Promise.reject(new BrokerUnavailable('closing'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          finish(() => reject(new BrokerUnavailable(`${what} in ${this.#publishTimeoutMs} ms`))),
        Math.max(0, deadline - Date.now()),
      );
      const onAbort = () => finish(() => reject(new BrokerUnavailable('closing')));
      signal.addEventListener('abort', onAbort, { once: true });
      function finish(settle: () => void): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        settle();
      }
      work.then(
        (value) => finish(() => resolve(value)),
        (error: unknown) => finish(() => reject(error)),
      );
    });
  }

  /**
   * A failed batch is published again from the event log: drop its messages from mqtt.js's
   * store, which would otherwise send them a second time on reconnect.
   */
  #abandonInFlight(): void {
    for (const [id, pending] of Object.entries(this.#client.outgoing)) {
      if (pending.cmd === 'publish') this.#client.removeOutgoingMessage(Number(id));
    }
  }

  async #handleCommand(packet: IPublishPacket): Promise<void> {
    this.#commandsInHand += 1;
    try {
      await this.#takeCommand(packet);
    } catch (error) {
      // #takeCommand handles every expected failure; this is a bug, kept from crashing.
      this.#logger.error({ err: error }, 'MQTT downlink command failed');
    } finally {
      this.#commandsInHand -= 1;
      if (this.#commandsInHand === 0) this.#commandsDone?.();
    }
  }

  async #takeCommand(packet: IPublishPacket): Promise<void> {
    const topic = packet.topic;
    const target = parseCommandTopic(this.#prefix, topic);
    if (target === undefined) {
      this.#counters.commandsRefused.invalid_topic += 1;
      this.#logger.warn({ topic: topic.slice(0, 300) }, 'MQTT message on an unexpected topic');
      return;
    }
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const devEui = target.devEui.toLowerCase();
    if (!isDevEui(devEui)) {
      this.#refuse(target, 'unknown_device', 'the topic does not name a DevEUI (16 hex digits)');
      return;
    }
    const parsed = parseDownlinkCommand(payload, devEui);
    if (!parsed.ok) {
      this.#refuse(target, parsed.reason, parsed.message);
      return;
    }
    const { storage } = this.#options;
    const device = await storage.devices.get(devEui);
    if (device === undefined) {
      this.#refuse(target, 'unknown_device', `device ${devEui} does not exist`);
      return;
    }
    if (device.applicationId !== target.applicationId) {
      // Said the same way as an unknown device: the topic's application has no such device.
      this.#refuse(target, 'other_application', `device ${devEui} does not exist`);
      return;
    }
    const frame = await this.#framePayload(device, parsed.command);
    if ('refusal' in frame) {
      this.#refuse(target, frame.refusal, frame.message);
      return;
    }
    try {
      await storage.downlinkQueue.enqueue({
        devEui,
        fPort: frame.fPort,
        data: frame.data,
        confirmed: parsed.command.confirmed,
      });
    } catch (error) {
      if (!(error instanceof StorageError)) {
        this.#logger.error({ err: error, devEui }, 'MQTT downlink command not queued');
      }
      this.#refuse(
        target,
        'enqueue_failed',
        error instanceof StorageError ? error.message : 'the downlink could not be queued',
      );
      return;
    }
    this.#options.downlinkQueued?.(devEui);
    this.#counters.commandsQueued += 1;
    this.#logger.debug(
      { devEui, applicationId: target.applicationId, fPort: frame.fPort },
      'MQTT downlink command queued',
    );
  }

  /** The command's bytes and FPort: as given, or its `object` encoded by the profile's codec. */
  async #framePayload(
    device: Device,
    command: DownlinkCommand,
  ): Promise<
    { data: Uint8Array; fPort: number } | { refusal: DownlinkCommandRefusal; message: string }
  > {
    if ('data' in command.payload) return { data: command.payload.data, fPort: command.fPort };
    const profile =
      device.deviceProfileId === null
        ? undefined
        : await this.#options.storage.deviceProfiles.get(device.deviceProfileId);
    const codec = profile?.codec ?? undefined;
    const codecs = this.#options.codecs;
    if (codecs === undefined || !isActiveCodec(codec)) {
      return {
        refusal: 'object_needs_codec',
        message: `device ${device.devEui} has no codec (in its device profile) to encode object; send data in base64`,
      };
    }
    const outcome = await codecs.encodeDownlink(codec, {
      data: command.payload.object as JsonValue,
      fPort: command.fPort,
    });
    if (!outcome.ok) {
      return {
        refusal: 'codec_failed',
        message: `the codec could not encode object: ${outcome.error.message}`.slice(0, 500),
      };
    }
    if (outcome.bytes.length > MAX_DOWNLINK_PAYLOAD_BYTES) {
      return {
        refusal: 'invalid_data',
        message: `the codec made ${outcome.bytes.length} bytes, more than a downlink holds (${MAX_DOWNLINK_PAYLOAD_BYTES})`,
      };
    }
    return { data: outcome.bytes, fPort: outcome.fPort };
  }

  /** Counts, logs and answers a refused command with a `log` event on the topic's device. */
  #refuse(
    target: { applicationId: string; devEui: string },
    reason: DownlinkCommandRefusal,
    description: string,
  ): void {
    this.#counters.commandsRefused[reason] += 1;
    this.#logger.warn(
      { applicationId: target.applicationId, devEui: target.devEui, reason },
      `MQTT downlink command refused: ${description}`,
    );
    const log = {
      time: new Date().toISOString(),
      level: 'ERROR',
      code: logCode(reason),
      description,
      context: { reason, devEui: target.devEui, applicationId: target.applicationId },
    };
    this.#client.publish(
      eventTopic(this.#prefix, target.applicationId, target.devEui, 'log'),
      JSON.stringify(log),
      { qos: 1 },
      () => undefined,
    );
  }
}
