import type { Logger } from '../../logger.js';
import type { Storage } from '../../storage/index.js';
import type {
  CodecProcessOptions,
  DecodeOutcome,
  DownlinkEncodeInput,
  EncodeOutcome,
  UplinkInput,
} from '../codecs/index.js';
import { storageCursor } from '../event-feed.js';
import { APPLICATION_STAGE_CURSOR, ApplicationStage } from './application-stage.js';
import { DeviceCodecLookup } from './device-codecs.js';
import { type ActiveCodecSettings, PayloadCodecs } from './payload-codecs.js';

/**
 * The codecs as the API uses them (profile checks, the test bench, downlinks given as objects):
 * the same codec process as the stage.
 */
export interface ApplicationCodecs {
  /** Compiles the codec; throws a `CodecError` when it cannot serve any call. */
  check(settings: ActiveCodecSettings): Promise<void>;
  decodeUplink(settings: ActiveCodecSettings, input: UplinkInput): Promise<DecodeOutcome>;
  encodeDownlink(settings: ActiveCodecSettings, input: DownlinkEncodeInput): Promise<EncodeOutcome>;
  /** A profile was changed or deleted through the API: the stage reads it again. */
  profileChanged(id: string): void;
  /** A device was changed or deleted through the API. */
  deviceChanged(devEui: string): void;
}

export interface ApplicationStageSettings {
  /** Limits of JavaScript codecs (time and memory per call...) and of their process. */
  codecs?: CodecProcessOptions;
  /** Events per batch of the stage (default 250). */
  batchSize?: number;
  pollIntervalMs?: number;
  /** How long the device -> profile -> codec cache keeps an entry (default 10 000 ms). */
  codecCacheTtlMs?: number;
}

export interface RunningApplicationStage {
  stage: ApplicationStage;
  codecs: ApplicationCodecs;
  /** Counters of the codec process (restarts, watchdog kills). */
  codecProcessStats(): { processRestarts: number; watchdogKills: number };
  close(): Promise<void>;
}

/** Starts the codec runner and the stage over `storage.events` from its saved position. */
export async function startApplicationStage(
  storage: Pick<
    Storage,
    'events' | 'consumerCursors' | 'devices' | 'deviceProfiles' | 'applications'
  >,
  logger: Logger,
  settings: ApplicationStageSettings = {},
): Promise<RunningApplicationStage> {
  const payloadCodecs = new PayloadCodecs(settings.codecs);
  const lookup = new DeviceCodecLookup(storage, {
    ...(settings.codecCacheTtlMs === undefined ? {} : { ttlMs: settings.codecCacheTtlMs }),
  });
  const stage = new ApplicationStage({
    events: storage.events,
    cursor: storageCursor(storage.consumerCursors, APPLICATION_STAGE_CURSOR),
    codecsOf: (devEuis) => lookup.codecsOf(devEuis),
    anyCodec: () => lookup.anyCodec(),
    decodeMany: (codec, inputs) => payloadCodecs.decodeMany(codec, inputs),
    dropFieldsOf: (applicationId) => storage.applications.dropFieldsOf(applicationId),
    logger: logger.child({ component: 'application-stage' }),
    ...(settings.batchSize === undefined ? {} : { batchSize: settings.batchSize }),
    ...(settings.pollIntervalMs === undefined ? {} : { pollIntervalMs: settings.pollIntervalMs }),
  });
  try {
    await stage.start();
  } catch (error) {
    await payloadCodecs.close();
    throw error;
  }
  const codecs: ApplicationCodecs = {
    check: async (codec) => {
      await payloadCodecs.load(codec);
    },
    decodeUplink: (codec, input) => payloadCodecs.decodeUplink(codec, input),
    encodeDownlink: (codec, input) => payloadCodecs.encodeDownlink(codec, input),
    profileChanged: (id) => lookup.profileChanged(id),
    deviceChanged: (devEui) => lookup.deviceChanged(devEui),
  };
  return {
    stage,
    codecs,
    codecProcessStats: () => payloadCodecs.stats(),
    async close() {
      await stage.close();
      await payloadCodecs.close();
    },
  };
}
