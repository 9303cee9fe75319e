import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import type { Activation, DeviceClass, DevicesTable, IsoTimestamp, MacVersion } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  assertKey,
  clock,
  type ListOptions,
  oneOf,
  page,
  type RepositoryOptions,
  toDbBytes,
  toEui,
  toIsoTimestamp,
  toName,
} from './values.js';

export const MAC_VERSIONS: readonly MacVersion[] = ['1.0.2', '1.0.3', '1.0.4', '1.1.0'];
export const DEVICE_CLASSES: readonly DeviceClass[] = ['A', 'C'];
export const ACTIVATIONS: readonly Activation[] = ['otaa', 'abp'];

/** JoinNonce is a 24-bit field (LoRaWAN 1.1 §6.2.4.3) that must never repeat for a device. */
export const MAX_JOIN_NONCE = 0xff_ffff;

/** A device as everyone but the join server sees it: no key material. */
export interface Device {
  devEui: string;
  joinEui: string;
  name: string;
  applicationId: string;
  macVersion: MacVersion;
  deviceClass: DeviceClass;
  activation: Activation;
  /** The device profile whose MAC settings apply; null: `defaultDeviceProfileSettings()`. */
  deviceProfileId: string | null;
  lastSeenAt: IsoTimestamp | null;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewDevice {
  devEui: string;
  joinEui: string;
  name: string;
  applicationId: string;
  macVersion: MacVersion;
  deviceClass: DeviceClass;
  activation: Activation;
  /** Required for OTAA. The only root key of LoRaWAN 1.0.x. */
  appKey?: Uint8Array;
  /** LoRaWAN 1.1 only; required for 1.1 OTAA. */
  nwkKey?: Uint8Array;
  /** Default none: the default MAC settings. */
  deviceProfileId?: string | null;
  /**
   * OTAA through a join server elsewhere (the provider's, over its link): no root key here.
   * Default false: an OTAA device needs its root keys.
   */
  rootKeysElsewhere?: boolean;
}

/** What can change on a device after it was created; an absent field stays as it is. */
export interface DeviceUpdate {
  name?: string;
  deviceClass?: DeviceClass;
  /** null: no profile (the default MAC settings). */
  deviceProfileId?: string | null;
}

export interface RootKeys {
  appKey: Uint8Array;
  nwkKey?: Uint8Array;
}

export interface DeviceListOptions extends ListOptions {
  applicationId?: string;
  /** Only the devices that use this profile. */
  deviceProfileId?: string;
}

/** Associated data of a sealed root key: binds it to its device and column. */
export function rootKeyAssociatedData(devEui: string, key: 'app_key' | 'nwk_key'): string {
  return `device:${devEui}:${key}`;
}

export class DeviceRepository {
  readonly #db: GaletDatabase['db'];
  readonly #secrets: SecretBox;
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#secrets = secrets;
    this.#now = clock(options);
  }

  /**
   * Errors: `INVALID_INPUT`, `ALREADY_EXISTS`, `MISSING_REFERENCE` (unknown application or
   * device profile).
   */
  async create(input: NewDevice): Promise<Device> {
    const devEui = toEui(input.devEui, 'DevEUI');
    const joinEui = toEui(input.joinEui, 'JoinEUI');
    oneOf(input.macVersion, MAC_VERSIONS, 'MAC version');
    oneOf(input.deviceClass, DEVICE_CLASSES, 'device class');
    oneOf(input.activation, ACTIVATIONS, 'activation');
    if (input.appKey !== undefined) assertKey(input.appKey, 'AppKey');
    if (input.nwkKey !== undefined) assertKey(input.nwkKey, 'NwkKey');
    if (input.nwkKey !== undefined && input.macVersion !== '1.1.0') {
      throw new StorageError(
        'INVALID_INPUT',
        `NwkKey exists only in LoRaWAN 1.1; a ${input.macVersion} device has an AppKey only`,
      );
    }
    const localJoin = input.activation === 'otaa' && input.rootKeysElsewhere !== true;
    if (input.rootKeysElsewhere === true && (input.appKey ?? input.nwkKey) !== undefined) {
      throw new StorageError('INVALID_INPUT', `device ${devEui} has its root keys elsewhere`);
    }
    if (localJoin && input.appKey === undefined) {
      throw new StorageError('INVALID_INPUT', `OTAA device ${devEui} needs an AppKey`);
    }
    if (localJoin && input.macVersion === '1.1.0' && !input.nwkKey) {
      throw new StorageError('INVALID_INPUT', `LoRaWAN 1.1 OTAA device ${devEui} needs a NwkKey`);
    }
    const now = this.#now();
    const row: Selectable<DevicesTable> = {
      dev_eui: devEui,
      join_eui: joinEui,
      name: toName(input.name, 'device name'),
      application_id: input.applicationId,
      mac_version: input.macVersion,
      device_class: input.deviceClass,
      activation: input.activation,
      app_key_enc: input.appKey
        ? toDbBytes(this.#secrets.seal(input.appKey, rootKeyAssociatedData(devEui, 'app_key')))
        : null,
      nwk_key_enc: input.nwkKey
        ? toDbBytes(this.#secrets.seal(input.nwkKey, rootKeyAssociatedData(devEui, 'nwk_key')))
        : null,
      join_nonce: 0,
      rj_count1: null,
      device_profile_id: input.deviceProfileId ?? null,
      last_seen_at: null,
      created_at: now,
      updated_at: now,
    };
    try {
      await this.#db.insertInto('devices').values(row).execute();
    } catch (error) {
      switch (constraintViolation(error)) {
        case 'unique':
          throw new StorageError('ALREADY_EXISTS', `device ${devEui} exists already`, {
            cause: error,
          });
        case 'foreign-key':
          throw new StorageError('MISSING_REFERENCE', await this.#missingReference(devEui, row), {
            cause: error,
          });
        default:
          throw error;
      }
    }
    return toDevice(row);
  }

  /**
   * Renames a device or changes its profile: one UPDATE. Undefined when the device does not
   * exist; `MISSING_REFERENCE` for an unknown profile. An empty update changes nothing.
   */
  async update(devEui: string, update: DeviceUpdate): Promise<Device | undefined> {
    const eui = toEui(devEui, 'DevEUI');
    const changes: Partial<Pick<DevicesTable, 'name' | 'device_profile_id' | 'device_class'>> = {};
    if (update.name !== undefined) changes.name = toName(update.name, 'device name');
    if (update.deviceClass !== undefined) {
      oneOf(update.deviceClass, DEVICE_CLASSES, 'device class');
      changes.device_class = update.deviceClass;
    }
    if (update.deviceProfileId !== undefined) changes.device_profile_id = update.deviceProfileId;
    if (Object.keys(changes).length === 0) return this.get(eui);
    try {
      const row = await this.#db
        .updateTable('devices')
        .set({ ...changes, updated_at: this.#now() })
        .where('dev_eui', '=', eui)
        .returning(DEVICE_COLUMNS)
        .executeTakeFirst();
      return row && toDevice(row);
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError(
          'MISSING_REFERENCE',
          `device ${eui}: device profile ${String(update.deviceProfileId)} does not exist`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Which reference of a refused insert is missing (neither engine says which key failed). */
  async #missingReference(devEui: string, row: Selectable<DevicesTable>): Promise<string> {
    if (row.device_profile_id !== null) {
      const profile = await this.#db
        .selectFrom('device_profiles')
        .select('id')
        .where('id', '=', row.device_profile_id)
        .executeTakeFirst();
      if (profile === undefined) {
        return `device ${devEui}: device profile ${row.device_profile_id} does not exist`;
      }
    }
    return `device ${devEui}: application ${row.application_id} does not exist`;
  }

  async get(devEui: string): Promise<Device | undefined> {
    const row = await this.#db
      .selectFrom('devices')
      .select(DEVICE_COLUMNS)
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return row && toDevice(row);
  }

  /**
   * The root keys, decrypted: for the join server only. Undefined when the device does not
   * exist or has no root keys (ABP). `SECRET_OPEN_FAILED` if a stored key does not authenticate.
   */
  async getRootKeys(devEui: string): Promise<RootKeys | undefined> {
    const eui = toEui(devEui, 'DevEUI');
    const row = await this.#db
      .selectFrom('devices')
      .select(['app_key_enc', 'nwk_key_enc'])
      .where('dev_eui', '=', eui)
      .executeTakeFirst();
    if (!row?.app_key_enc) return undefined;
    const keys: RootKeys = {
      appKey: this.#secrets.open(row.app_key_enc, rootKeyAssociatedData(eui, 'app_key')),
    };
    if (row.nwk_key_enc) {
      keys.nwkKey = this.#secrets.open(row.nwk_key_enc, rootKeyAssociatedData(eui, 'nwk_key'));
    }
    return keys;
  }

  /** Every device, without keys, ordered by DevEUI: for warming a cache at start-up. */
  async listAll(): Promise<Device[]> {
    const rows = await this.#db
      .selectFrom('devices')
      .select(DEVICE_COLUMNS)
      .orderBy('dev_eui')
      .execute();
    return rows.map(toDevice);
  }

  /** Ordered by DevEUI. */
  async list(options?: DeviceListOptions): Promise<Device[]> {
    const { limit, offset } = page(options);
    let query = this.#db.selectFrom('devices').select(DEVICE_COLUMNS);
    if (options?.applicationId !== undefined) {
      query = query.where('application_id', '=', options.applicationId);
    }
    if (options?.deviceProfileId !== undefined) {
      query = query.where('device_profile_id', '=', options.deviceProfileId);
    }
    const rows = await query.orderBy('dev_eui').limit(limit).offset(offset).execute();
    return rows.map(toDevice);
  }

  /** Deletes the device with its session, DevNonces and downlink queue. False if unknown. */
  async delete(devEui: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('devices')
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Moves last_seen_at forward (never back). False when the device is unknown. */
  async touch(devEui: string, seenAt: IsoTimestamp): Promise<boolean> {
    const seen = toIsoTimestamp(seenAt, 'seenAt');
    const result = await this.#db
      .updateTable('devices')
      .set((eb) => ({
        last_seen_at: eb
          .case()
          .when(eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', seen)]))
          .then(eb.val<string | null>(seen))
          .else(eb.ref('last_seen_at'))
          .end(),
      }))
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** RJcount1 of the last accepted type-1 RejoinRequest; null before one (or no such device). */
  async lastRjCount1(devEui: string): Promise<number | null> {
    const row = await this.#db
      .selectFrom('devices')
      .select('rj_count1')
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return row?.rj_count1 ?? null;
  }

  /**
   * Keeps the RJcount1 of an accepted type-1 RejoinRequest when it is above the last one, as one
   * compare-and-set UPDATE: of two copies of one request, one is 'new' and the other 'replayed'.
   */
  async recordRjCount1(devEui: string, rjCount1: number): Promise<'new' | 'replayed'> {
    assertInteger(rjCount1, 0, 0xffff, 'RJcount1');
    const result = await this.#db
      .updateTable('devices')
      .set({ rj_count1: rjCount1 })
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .where((eb) => eb.or([eb('rj_count1', 'is', null), eb('rj_count1', '<', rjCount1)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n ? 'new' : 'replayed';
  }

  /**
   * Issues the next JoinNonce (1, 2, ...): one atomic UPDATE ... RETURNING, so concurrent joins
   * never get the same value. `COUNTER_EXHAUSTED` after 2^24 - 1 (the device must be
   * re-provisioned), `NOT_FOUND` for an unknown device.
   */
  async nextJoinNonce(devEui: string): Promise<number> {
    const eui = toEui(devEui, 'DevEUI');
    const row = await this.#db
      .updateTable('devices')
      .set((eb) => ({ join_nonce: eb('join_nonce', '+', 1), updated_at: this.#now() }))
      .where('dev_eui', '=', eui)
      .where('join_nonce', '<', MAX_JOIN_NONCE)
      .returning('join_nonce')
      .executeTakeFirst();
    if (row) return row.join_nonce;
    const exists = await this.#db
      .selectFrom('devices')
      .select('dev_eui')
      .where('dev_eui', '=', eui)
      .executeTakeFirst();
    if (!exists) throw new StorageError('NOT_FOUND', `device ${eui} does not exist`);
    throw new StorageError(
      'COUNTER_EXHAUSTED',
      `device ${eui} has used every JoinNonce (2^24 - 1): it must be re-provisioned`,
    );
  }
}

const DEVICE_COLUMNS = [
  'dev_eui',
  'join_eui',
  'name',
  'application_id',
  'mac_version',
  'device_class',
  'activation',
  'device_profile_id',
  'last_seen_at',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof DevicesTable)[];

type DeviceRow = Pick<Selectable<DevicesTable>, (typeof DEVICE_COLUMNS)[number]>;

function toDevice(row: DeviceRow): Device {
  return {
    devEui: row.dev_eui,
    joinEui: row.join_eui,
    name: row.name,
    applicationId: row.application_id,
    macVersion: row.mac_version,
    deviceClass: row.device_class,
    activation: row.activation,
    deviceProfileId: row.device_profile_id,
    lastSeenAt: row.last_seen_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
