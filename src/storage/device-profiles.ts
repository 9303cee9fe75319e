import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { MAC_VERSIONS } from './devices.js';
import { constraintViolation, StorageError } from './errors.js';
import {
  containsText,
  NAMED_ROW_SORT,
  type OwnedListOptions,
  ordered,
  scopeAdmitsAny,
  whereOwned,
} from './listing.js';
import type { DeviceProfilesTable, IsoTimestamp, MacVersion } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertFiniteNumber,
  assertInteger,
  clock,
  oneOf,
  type RepositoryOptions,
  toName,
} from './values.js';

/**
 * Device profiles: the MAC-layer settings of a kind of device (ADR, receive windows, extra
 * channels and their RX1 downlink frequencies, status requests, confirmed downlink policy). A device without a profile gets
 * `defaultDeviceProfileSettings()`.
 *
 * The settings are stored as one JSON document, fully defaulted, so that a reader never has to
 * know the defaults of the version that wrote it. The range checks here are the contract; the
 * API adds the checks that depend on the region's channel plan (frequencies, defined DRs).
 */

export interface AdrSettings {
  enabled: boolean;
  /** Lowest data rate ADR may assign. */
  minDr: number;
  /** Highest data rate ADR may assign. */
  maxDr: number;
  /** Link margin ADR keeps above the demodulation floor, dB. */
  installationMarginDb: number;
}

/** A channel beyond the region's default ones (EU868: channels 3 to 15). */
export interface ExtraChannel {
  frequencyHz: number;
  minDr: number;
  maxDr: number;
}

/** DlChannelReq: the RX1 downlink frequency of one of the device's channels. */
export interface DlChannel {
  /** The channel index, 0-15 (EU868: 0-2 are the default channels). */
  index: number;
  frequencyHz: number;
}

export interface ConfirmedDownlinkSettings {
  /** Transmissions of one confirmed downlink before it fails. */
  maxAttempts: number;
  /** How long a Class C device has to acknowledge before the next attempt. */
  classCTimeoutSeconds: number;
}

/** LoRaWAN 1.1 §5.13 RejoinParamSetupReq: a type 0 rejoin every 2^(N+4) seconds / uplinks. */
export interface RejoinSettings {
  maxTimeN: number;
  maxCountN: number;
}

/** Payload codecs a profile may give its devices (docs/codecs.md). */
export const CODEC_TYPES = ['none', 'cayenne-lpp', 'javascript'] as const;
export type CodecType = (typeof CODEC_TYPES)[number];

/** The payload codec of a profile's devices: built-in Cayenne LPP, or a JavaScript source. */
export interface CodecSettings {
  type: CodecType;
  /** The JavaScript source: required for `javascript`, refused for the other types. */
  source?: string;
}

/**
 * Largest JavaScript codec source stored. Vendors' codecs are a few to a few tens of KiB; this
 * leaves room for the largest while keeping a profile within the API's 1 MiB body limit.
 */
export const MAX_CODEC_SOURCE_CHARS = 512 * 1024;

/** A profile's settings with every default applied; fields marked `?` have no default. */
export interface DeviceProfileSettings {
  /** Informational: the LoRaWAN version of the devices this profile is for. */
  macVersion?: MacVersion;
  adr: AdrSettings;
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
  extraChannels: ExtraChannel[];
  /**
   * DlChannelReq: channels whose RX1 downlinks use another frequency than their uplinks. Empty:
   * the devices' downlink frequencies are left as they are.
   */
  dlChannels: DlChannel[];
  /** DutyCycleReq MaxDutyCycle: the device's aggregated duty cycle is limited to 1/2^n. */
  maxDutyCycle: number;
  /** How often to send DevStatusReq; 0 never. */
  devStatusIntervalSeconds: number;
  confirmedDownlink: ConfirmedDownlinkSettings;
  /** LoRaWAN 1.1 §5.10 ADRParamSetupReq: ADR_ACK_LIMIT = 2^n. */
  adrAckLimitExp?: number;
  /** LoRaWAN 1.1 §5.10 ADRParamSetupReq: ADR_ACK_DELAY = 2^n. */
  adrAckDelayExp?: number;
  rejoin?: RejoinSettings;
  /** How often a device is expected to send; for telling a silent device. */
  uplinkIntervalSeconds?: number;
  /** The payload codec; absent: none (`{type: "none"}` is stored as absent). */
  codec?: CodecSettings;
}

/** A nested settings object in a write: each field optional, `null` resets it to its default. */
export type NestedSettingsInput<T> = { [K in keyof T]?: T[K] | null };

/**
 * Settings in a create or an update. An absent field keeps its value (its default in a create);
 * `null` resets a field to its default, or removes one that has none. Nested objects merge
 * field by field; `extraChannels` and `dlChannels` are replaced as a whole.
 */
export interface DeviceProfileSettingsInput {
  macVersion?: MacVersion | null;
  adr?: NestedSettingsInput<AdrSettings> | null;
  rx1DelaySeconds?: number | null;
  rx1DrOffset?: number | null;
  rx2Dr?: number | null;
  rx2FrequencyHz?: number | null;
  extraChannels?: NestedSettingsInput<ExtraChannel>[] | null;
  dlChannels?: NestedSettingsInput<DlChannel>[] | null;
  maxDutyCycle?: number | null;
  devStatusIntervalSeconds?: number | null;
  confirmedDownlink?: NestedSettingsInput<ConfirmedDownlinkSettings> | null;
  adrAckLimitExp?: number | null;
  adrAckDelayExp?: number | null;
  rejoin?: NestedSettingsInput<RejoinSettings> | null;
  uplinkIntervalSeconds?: number | null;
  /** Replaced as a whole; `null` or `{type: "none"}` removes the codec. */
  codec?: CodecSettings | null;
}

export interface DeviceProfile extends DeviceProfileSettings {
  id: string;
  name: string;
  /** Regional parameters the profile is for (`EU868`). */
  region: string;
  /** The owner; null: the operator's catalogue, which every tenant may read and use. */
  tenantId: string | null;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewDeviceProfile extends DeviceProfileSettingsInput {
  name: string;
  /** Default `EU868`. */
  region?: string;
  /** Default none: the operator's catalogue. */
  tenantId?: string | null;
}

export type DeviceProfileListOptions = OwnedListOptions;

export const DEVICE_PROFILE_SORT = NAMED_ROW_SORT;

export interface DeviceProfileUpdate extends DeviceProfileSettingsInput {
  name?: string;
}

export interface DeviceProfileWriteOptions {
  /**
   * Called with the profile as it would be stored, before it is written; throw to refuse it.
   * The API checks the region's channel plan here, on the merged result of an update.
   */
  validate?(profile: DeviceProfile): void;
}

export const DEFAULT_DEVICE_PROFILE_REGION = 'EU868';
/** EU868 has 16 channels, 3 of them the defaults every device has. */
export const MAX_EXTRA_CHANNELS = 13;
/** DlChannelReq carries a 4-bit channel index. */
export const MAX_DL_CHANNEL_INDEX = 15;
const MAX_DR = 15;
const MIN_FREQUENCY_HZ = 100_000_000;
const MAX_FREQUENCY_HZ = 1_000_000_000;
const MAX_DEV_STATUS_INTERVAL_SECONDS = 31_536_000;
const MIN_DEV_STATUS_INTERVAL_SECONDS = 60;
const MAX_UPLINK_INTERVAL_SECONDS = 604_800;
/** Tries of an update whose row another writer changed between the read and the write. */
const UPDATE_ATTEMPTS = 10;

/** The settings of a device without a profile, and the defaults of every profile. A fresh copy. */
export function defaultDeviceProfileSettings(): DeviceProfileSettings {
  return {
    adr: { enabled: true, minDr: 0, maxDr: 5, installationMarginDb: 10 },
    rx1DelaySeconds: 1,
    rx1DrOffset: 0,
    rx2Dr: 0,
    rx2FrequencyHz: 869_525_000,
    extraChannels: [],
    dlChannels: [],
    maxDutyCycle: 0,
    devStatusIntervalSeconds: 86_400,
    confirmedDownlink: { maxAttempts: 3, classCTimeoutSeconds: 30 },
  };
}

/**
 * `base` with `input` applied (see `DeviceProfileSettingsInput`), checked. Pure; `INVALID_INPUT`
 * names the first field that is wrong.
 */
export function applyDeviceProfileSettings(
  base: DeviceProfileSettings,
  input: DeviceProfileSettingsInput,
): DeviceProfileSettings {
  const defaults = defaultDeviceProfileSettings();
  const next: DeviceProfileSettings = {
    adr: mergeNested(input.adr, base.adr, defaults.adr),
    rx1DelaySeconds: pick(input.rx1DelaySeconds, base.rx1DelaySeconds, defaults.rx1DelaySeconds),
    rx1DrOffset: pick(input.rx1DrOffset, base.rx1DrOffset, defaults.rx1DrOffset),
    rx2Dr: pick(input.rx2Dr, base.rx2Dr, defaults.rx2Dr),
    rx2FrequencyHz: pick(input.rx2FrequencyHz, base.rx2FrequencyHz, defaults.rx2FrequencyHz),
    extraChannels:
      input.extraChannels === undefined
        ? base.extraChannels.map((channel) => ({ ...channel }))
        : (input.extraChannels ?? []).map((channel, i) => toExtraChannel(channel, i)),
    dlChannels:
      input.dlChannels === undefined
        ? base.dlChannels.map((channel) => ({ ...channel }))
        : (input.dlChannels ?? []).map((channel, i) => toDlChannel(channel, i)),
    maxDutyCycle: pick(input.maxDutyCycle, base.maxDutyCycle, defaults.maxDutyCycle),
    devStatusIntervalSeconds: pick(
      input.devStatusIntervalSeconds,
      base.devStatusIntervalSeconds,
      defaults.devStatusIntervalSeconds,
    ),
    confirmedDownlink: mergeNested(
      input.confirmedDownlink,
      base.confirmedDownlink,
      defaults.confirmedDownlink,
    ),
  };
  const macVersion = pick(input.macVersion, base.macVersion, undefined);
  if (macVersion !== undefined) next.macVersion = macVersion;
  const adrAckLimitExp = pick(input.adrAckLimitExp, base.adrAckLimitExp, undefined);
  if (adrAckLimitExp !== undefined) next.adrAckLimitExp = adrAckLimitExp;
  const adrAckDelayExp = pick(input.adrAckDelayExp, base.adrAckDelayExp, undefined);
  if (adrAckDelayExp !== undefined) next.adrAckDelayExp = adrAckDelayExp;
  const rejoin = mergeRejoin(input.rejoin, base.rejoin);
  if (rejoin !== undefined) next.rejoin = rejoin;
  const uplinkInterval = pick(input.uplinkIntervalSeconds, base.uplinkIntervalSeconds, undefined);
  if (uplinkInterval !== undefined) next.uplinkIntervalSeconds = uplinkInterval;
  const codec = pick(input.codec, base.codec, undefined);
  if (codec !== undefined && codec.type !== 'none') next.codec = { ...codec };
  assertDeviceProfileSettings(next);
  return next;
}

/** Throws `INVALID_INPUT` naming the first setting out of its range. */
export function assertDeviceProfileSettings(settings: DeviceProfileSettings): void {
  if (settings.macVersion !== undefined) oneOf(settings.macVersion, MAC_VERSIONS, 'macVersion');
  const { adr } = settings;
  if (typeof adr.enabled !== 'boolean') {
    throw new StorageError('INVALID_INPUT', `adr.enabled must be true or false`);
  }
  assertDrRange(adr.minDr, adr.maxDr, 'adr');
  assertFiniteNumber(adr.installationMarginDb, 0, 30, 'adr.installationMarginDb');
  assertInteger(settings.rx1DelaySeconds, 1, 15, 'rx1DelaySeconds');
  assertInteger(settings.rx1DrOffset, 0, 5, 'rx1DrOffset');
  assertInteger(settings.rx2Dr, 0, MAX_DR, 'rx2Dr');
  assertFrequency(settings.rx2FrequencyHz, 'rx2FrequencyHz');
  if (settings.extraChannels.length > MAX_EXTRA_CHANNELS) {
    throw new StorageError(
      'INVALID_INPUT',
      `extraChannels holds at most ${MAX_EXTRA_CHANNELS} channels (3 to 15), got ${settings.extraChannels.length}`,
    );
  }
  const seen = new Set<number>();
  settings.extraChannels.forEach((channel, i) => {
    assertFrequency(channel.frequencyHz, `extraChannels[${i}].frequencyHz`);
    assertDrRange(channel.minDr, channel.maxDr, `extraChannels[${i}]`);
    if (seen.has(channel.frequencyHz)) {
      throw new StorageError(
        'INVALID_INPUT',
        `extraChannels[${i}].frequencyHz ${channel.frequencyHz} is already another extra channel`,
      );
    }
    seen.add(channel.frequencyHz);
  });
  const dlIndices = new Set<number>();
  settings.dlChannels.forEach((channel, i) => {
    assertInteger(channel.index, 0, MAX_DL_CHANNEL_INDEX, `dlChannels[${i}].index`);
    assertFrequency(channel.frequencyHz, `dlChannels[${i}].frequencyHz`);
    if (dlIndices.has(channel.index)) {
      throw new StorageError(
        'INVALID_INPUT',
        `dlChannels[${i}].index ${channel.index} is already given a frequency by another entry`,
      );
    }
    dlIndices.add(channel.index);
  });
  assertInteger(settings.maxDutyCycle, 0, 15, 'maxDutyCycle');
  const statusInterval = settings.devStatusIntervalSeconds;
  if (statusInterval !== 0) {
    if (
      !Number.isInteger(statusInterval) ||
      statusInterval < MIN_DEV_STATUS_INTERVAL_SECONDS ||
      statusInterval > MAX_DEV_STATUS_INTERVAL_SECONDS
    ) {
      throw new StorageError(
        'INVALID_INPUT',
        `devStatusIntervalSeconds must be 0 (never) or an integer from ${MIN_DEV_STATUS_INTERVAL_SECONDS} to ${MAX_DEV_STATUS_INTERVAL_SECONDS}, got ${String(statusInterval)}`,
      );
    }
  }
  assertInteger(settings.confirmedDownlink.maxAttempts, 1, 10, 'confirmedDownlink.maxAttempts');
  assertInteger(
    settings.confirmedDownlink.classCTimeoutSeconds,
    1,
    3600,
    'confirmedDownlink.classCTimeoutSeconds',
  );
  if (settings.adrAckLimitExp !== undefined) {
    assertInteger(settings.adrAckLimitExp, 0, 15, 'adrAckLimitExp');
  }
  if (settings.adrAckDelayExp !== undefined) {
    assertInteger(settings.adrAckDelayExp, 0, 15, 'adrAckDelayExp');
  }
  if (settings.rejoin !== undefined) {
    assertInteger(settings.rejoin.maxTimeN, 0, 15, 'rejoin.maxTimeN');
    assertInteger(settings.rejoin.maxCountN, 0, 15, 'rejoin.maxCountN');
  }
  if (settings.uplinkIntervalSeconds !== undefined) {
    assertInteger(
      settings.uplinkIntervalSeconds,
      1,
      MAX_UPLINK_INTERVAL_SECONDS,
      'uplinkIntervalSeconds',
    );
  }
  if (settings.codec !== undefined) assertCodecSettings(settings.codec);
}

/** Throws `INVALID_INPUT` for a codec of unknown type, or a source missing, misplaced or too large. */
export function assertCodecSettings(codec: CodecSettings): void {
  oneOf(codec.type, CODEC_TYPES, 'codec.type');
  const { source } = codec;
  if (codec.type !== 'javascript') {
    if (source !== undefined) {
      throw new StorageError(
        'INVALID_INPUT',
        `codec.source is for javascript codecs only, not ${codec.type}`,
      );
    }
    return;
  }
  if (typeof source !== 'string' || source.trim() === '') {
    throw new StorageError('INVALID_INPUT', 'a javascript codec needs its source in codec.source');
  }
  if (source.length > MAX_CODEC_SOURCE_CHARS) {
    throw new StorageError(
      'INVALID_INPUT',
      `codec.source holds at most ${MAX_CODEC_SOURCE_CHARS} characters, got ${source.length}`,
    );
  }
}

export class DeviceProfileRepository {
  readonly #database: GaletDatabase;
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#database = database;
    this.#db = database.db;
    this.#now = clock(options);
  }

  /**
   * Ids of the profiles that may have a payload codec (their settings name one): the application
   * stage skips every device lookup while this is empty. A superset: callers read the codec.
   */
  async idsWithCodec(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('device_profiles')
      .select('id')
      .where('settings', 'like', '%"codec"%')
      .execute();
    return rows.map((row) => row.id);
  }

  /**
   * Errors: `INVALID_INPUT` (and whatever `options.validate` throws), `MISSING_REFERENCE` for an
   * unknown tenant.
   */
  async create(
    input: NewDeviceProfile,
    options?: DeviceProfileWriteOptions,
  ): Promise<DeviceProfile> {
    const settings = applyDeviceProfileSettings(defaultDeviceProfileSettings(), input);
    const now = this.#now();
    const row: Selectable<DeviceProfilesTable> = {
      id: randomUUID(),
      name: toName(input.name, 'device profile name'),
      region: toName(input.region ?? DEFAULT_DEVICE_PROFILE_REGION, 'region', 32),
      settings: JSON.stringify(settings),
      tenant_id: input.tenantId ?? null,
      created_at: now,
      updated_at: now,
    };
    const profile = toDeviceProfile(row);
    options?.validate?.(profile);
    try {
      await this.#db.insertInto('device_profiles').values(row).execute();
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError('MISSING_REFERENCE', `tenant ${row.tenant_id} does not exist`, {
          cause: error,
        });
      }
      throw error;
    }
    return profile;
  }

  async get(id: string): Promise<DeviceProfile | undefined> {
    const row = await this.#db
      .selectFrom('device_profiles')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toDeviceProfile(row);
  }

  /** Oldest first unless sorted otherwise (`DEVICE_PROFILE_SORT`). */
  async list(options?: DeviceProfileListOptions): Promise<DeviceProfile[]> {
    if (!scopeAdmitsAny(options?.scope)) return [];
    let query = whereOwned(
      this.#db.selectFrom('device_profiles').selectAll(),
      options,
      { tenant: 'tenant_id' },
      this.#database.dialect,
    );
    if (options?.search !== undefined) query = query.where(containsText('name', options.search));
    const rows = await ordered(query, DEVICE_PROFILE_SORT, options).execute();
    return rows.map(toDeviceProfile);
  }

  /** Every profile, oldest first: for warming a cache at start-up. */
  async listAll(): Promise<DeviceProfile[]> {
    const rows = await this.#db
      .selectFrom('device_profiles')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toDeviceProfile);
  }

  /**
   * Applies `update` to the stored profile (see `DeviceProfileSettingsInput`); undefined when
   * there is no such profile. An update that changes nothing writes nothing.
   *
   * The merge happens here, so the write is a compare-and-set on the row as it was read: an
   * update that raced another one is merged again onto the newer row rather than undoing it.
   */
  async update(
    id: string,
    update: DeviceProfileUpdate,
    options?: DeviceProfileWriteOptions,
  ): Promise<DeviceProfile | undefined> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt += 1) {
      const row = await this.#db
        .selectFrom('device_profiles')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const nextName =
        update.name === undefined ? row.name : toName(update.name, 'device profile name');
      const nextSettings = JSON.stringify(applyDeviceProfileSettings(storedSettings(row), update));
      if (nextName === row.name && nextSettings === row.settings) return toDeviceProfile(row);
      const next: Selectable<DeviceProfilesTable> = {
        ...row,
        name: nextName,
        settings: nextSettings,
        updated_at: this.#now(),
      };
      const profile = toDeviceProfile(next);
      options?.validate?.(profile);
      const result = await this.#db
        .updateTable('device_profiles')
        .set({ name: next.name, settings: next.settings, updated_at: next.updated_at })
        .where('id', '=', id)
        .where('name', '=', row.name)
        .where('settings', '=', row.settings)
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) return profile;
    }
    throw new StorageError(
      'INVALID_STATE',
      `device profile ${id} kept changing during the update: try again`,
    );
  }

  /** False when there was no such profile; `STILL_REFERENCED` while devices use it. */
  async delete(id: string): Promise<boolean> {
    try {
      const result = await this.#db
        .deleteFrom('device_profiles')
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    } catch (error) {
      if (constraintViolation(error) !== 'foreign-key') throw error;
      const users = await this.countDevices(id);
      throw new StorageError(
        'STILL_REFERENCED',
        `device profile ${id} is still used by ${users === 1 ? '1 device' : `${users} devices`}: give them another profile or none first`,
        { cause: error },
      );
    }
  }

  /** How many devices use the profile. */
  async countDevices(id: string): Promise<number> {
    const row = await this.#db
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
      .where('device_profile_id', '=', id)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }
}

/**
 * Stored settings are complete, but applying them onto the defaults lets a profile written by an
 * older Galet pick up the defaults of settings added since.
 */
function storedSettings(row: Selectable<DeviceProfilesTable>): DeviceProfileSettings {
  return applyDeviceProfileSettings(
    defaultDeviceProfileSettings(),
    JSON.parse(row.settings) as DeviceProfileSettingsInput,
  );
}

function toDeviceProfile(row: Selectable<DeviceProfilesTable>): DeviceProfile {
  return {
    id: row.id,
    name: row.name,
    region: row.region,
    tenantId: row.tenant_id,
    ...storedSettings(row),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The input value if given, the default if null, else the current value. */
function pick<T>(input: T | null | undefined, current: T, fallback: T): T {
  if (input === undefined) return current;
  return input === null ? fallback : input;
}

function mergeNested<T extends object>(
  input: NestedSettingsInput<T> | null | undefined,
  current: T,
  fallback: T,
): T {
  if (input === undefined) return { ...current };
  if (input === null) return { ...fallback };
  const merged = { ...current };
  for (const key of Object.keys(fallback) as (keyof T)[]) {
    merged[key] = pick(input[key], current[key], fallback[key]) as T[keyof T];
  }
  return merged;
}

function mergeRejoin(
  input: NestedSettingsInput<RejoinSettings> | null | undefined,
  current: RejoinSettings | undefined,
): RejoinSettings | undefined {
  if (input === undefined) return current && { ...current };
  if (input === null) return undefined;
  const maxTimeN = input.maxTimeN === undefined ? current?.maxTimeN : input.maxTimeN;
  const maxCountN = input.maxCountN === undefined ? current?.maxCountN : input.maxCountN;
  if (
    maxTimeN === undefined ||
    maxTimeN === null ||
    maxCountN === undefined ||
    maxCountN === null
  ) {
    throw new StorageError(
      'INVALID_INPUT',
      'rejoin needs both maxTimeN and maxCountN (RejoinParamSetupReq carries both); null removes the whole rejoin setting',
    );
  }
  return { maxTimeN, maxCountN };
}

function toExtraChannel(input: NestedSettingsInput<ExtraChannel>, index: number): ExtraChannel {
  if (input.frequencyHz === undefined || input.frequencyHz === null) {
    throw new StorageError('INVALID_INPUT', `extraChannels[${index}] needs a frequencyHz`);
  }
  return { frequencyHz: input.frequencyHz, minDr: input.minDr ?? 0, maxDr: input.maxDr ?? 5 };
}

function toDlChannel(input: NestedSettingsInput<DlChannel>, position: number): DlChannel {
  const { index, frequencyHz } = input;
  if (index === undefined || index === null || frequencyHz === undefined || frequencyHz === null) {
    throw new StorageError(
      'INVALID_INPUT',
      `dlChannels[${position}] needs an index and a frequencyHz`,
    );
  }
  return { index, frequencyHz };
}

function assertDrRange(minDr: number, maxDr: number, what: string): void {
  assertInteger(minDr, 0, MAX_DR, `${what}.minDr`);
  assertInteger(maxDr, 0, MAX_DR, `${what}.maxDr`);
  if (minDr > maxDr) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what}.minDr (${minDr}) must not be above ${what}.maxDr (${maxDr})`,
    );
  }
}

/** RXParamSetupReq, NewChannelReq and the CFList carry frequencies in units of 100 Hz. */
function assertFrequency(frequencyHz: number, what: string): void {
  assertInteger(frequencyHz, MIN_FREQUENCY_HZ, MAX_FREQUENCY_HZ, what);
  if (frequencyHz % 100 !== 0) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what} must be a multiple of 100 Hz (MAC commands carry frequencies in units of 100 Hz), got ${frequencyHz}`,
    );
  }
}
