import type { Kysely, Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import {
  containsText,
  fromTagsText,
  type OwnedListOptions,
  ordered,
  type SortColumns,
  scopeAdmitsAny,
  type TagFilter,
  tagEquals,
  toTagsText,
  whereOwned,
} from './listing.js';
import { assertQuotaRoom } from './quotas.js';
import type {
  Activation,
  DeviceClass,
  DevicesTable,
  IsoTimestamp,
  MacVersion,
  Schema,
} from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  assertKey,
  clock,
  type ListOptions,
  oneOf,
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
  /** Its application's tenant; null: none (only global principals see it). */
  tenantId: string | null;
  tags: Record<string, string>;
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
  tags?: Record<string, string>;
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
  /** Replaces every tag. */
  tags?: Record<string, string>;
}

export interface RootKeys {
  appKey: Uint8Array;
  nwkKey?: Uint8Array;
}

/** `search`: the name or the DevEUI. */
export interface DeviceListOptions extends OwnedListOptions {
  applicationId?: string;
  /** Only the devices that use this profile. */
  deviceProfileId?: string;
  tag?: TagFilter;
}

export const DEVICE_SORT: SortColumns<'devEui' | 'name' | 'createdAt' | 'updatedAt'> = {
  fields: { devEui: 'dev_eui', name: 'name', createdAt: 'created_at', updatedAt: 'updated_at' },
  id: 'dev_eui',
  defaultField: 'devEui',
};

/** Devices inserted per statement by `createMany` (18 columns: well under both engines' limits). */
const INSERT_BATCH = 500;

/** Devices looked up per query by `existing` and `withRootKeys`: a page of the largest list. */
const LOOKUP_BATCH = 1000;

/** Associated data of a sealed root key: binds it to its device and column. */
export function rootKeyAssociatedData(devEui: string, key: 'app_key' | 'nwk_key'): string {
  return `device:${devEui}:${key}`;
}

export class DeviceRepository {
  readonly #database: GaletDatabase;
  readonly #db: GaletDatabase['db'];
  readonly #secrets: SecretBox;
  readonly #now: () => IsoTimestamp;
  readonly #pendingLastSeen: (devEui: string) => string | undefined;

  /**
   * `pendingLastSeen`: a newer last_seen_at not written yet (the uplink path writes it behind,
   * see UplinkCommitRepository); what this repository reads shows it.
   */
  constructor(
    database: GaletDatabase,
    secrets: SecretBox,
    options?: RepositoryOptions & { pendingLastSeen?: (devEui: string) => string | undefined },
  ) {
    this.#database = database;
    this.#db = database.db;
    this.#secrets = secrets;
    this.#now = clock(options);
    this.#pendingLastSeen = options?.pendingLastSeen ?? (() => undefined);
  }

  /** A stored device with its newest last_seen_at. */
  #current(row: DeviceRow): Device {
    const device = toDevice(row);
    const pending = this.#pendingLastSeen(device.devEui);
    return pending === undefined || (device.lastSeenAt !== null && device.lastSeenAt >= pending)
      ? device
      : { ...device, lastSeenAt: pending as IsoTimestamp };
  }

  /**
   * Errors: `INVALID_INPUT`, `ALREADY_EXISTS`, `MISSING_REFERENCE` (unknown application or
   * device profile, or a profile of another tenant), `QUOTA_EXCEEDED` (the tenant's
   * `maxDevices`). The device takes its application's tenant.
   */
  async create(input: NewDevice): Promise<Device> {
    const row = this.#row(input);
    await this.#insert([row]);
    return this.#current(row);
  }

  /**
   * Creates every device or none (one transaction, batched INSERTs): for bulk imports, which
   * check each line first. The same checks and errors as `create` (`ALREADY_EXISTS` also for a
   * DevEUI given twice). Returns how many were created.
   */
  async createMany(inputs: readonly NewDevice[]): Promise<number> {
    const rows = inputs.map((input) => this.#row(input));
    if (rows.length === 0) return 0;
    await this.#insert(rows);
    return rows.length;
  }

  /**
   * The one write path of `create` and `createMany`: rows checked by `#row`, then, in one
   * transaction, their references (`#references`), their tenant and the tenants' quotas, and
   * the INSERTs. Nothing is written unless every row goes in.
   */
  async #insert(rows: Selectable<DevicesTable>[]): Promise<void> {
    const repeated = firstRepeated(rows.map((row) => row.dev_eui));
    if (repeated !== undefined) {
      throw new StorageError(
        'ALREADY_EXISTS',
        `device ${repeated} is given twice: nothing was created`,
      );
    }
    try {
      await this.#db.transaction().execute(async (trx) => {
        const tenants = await this.#references(trx, rows);
        const perTenant = new Map<string, number>();
        for (const row of rows) {
          row.tenant_id = tenants.get(row.application_id) ?? null;
          if (row.tenant_id !== null) {
            perTenant.set(row.tenant_id, (perTenant.get(row.tenant_id) ?? 0) + 1);
          }
        }
        // Tenant order: two batches over the same tenants lock their rows in the same order.
        for (const [tenantId, count] of [...perTenant].sort()) {
          await assertQuotaRoom(trx, this.#database.dialect, tenantId, 'devices', count);
        }
        for (let start = 0; start < rows.length; start += INSERT_BATCH) {
          await trx
            .insertInto('devices')
            .values(rows.slice(start, start + INSERT_BATCH))
            .execute();
        }
      });
    } catch (error) {
      const batch = rows.length > 1 ? ': nothing was created' : '';
      switch (constraintViolation(error)) {
        case 'unique': {
          const taken = await this.existing(rows.map((row) => row.dev_eui));
          throw new StorageError(
            'ALREADY_EXISTS',
            `device ${taken[0] ?? rows[0]?.dev_eui} exists already${batch}`,
            { cause: error },
          );
        }
        case 'foreign-key':
          // A reference deleted between the check and the INSERT.
          throw new StorageError(
            'MISSING_REFERENCE',
            `${await this.#missingReference(rows)}${batch}`,
            {
              cause: error,
            },
          );
        default:
          throw error;
      }
    }
  }

  /** Which of these DevEUIs are taken already, in DevEUI order. */
  async existing(devEuis: readonly string[]): Promise<string[]> {
    return (await this.#present(devEuis, { withRootKeys: false })).sort();
  }

  /**
   * Moves a device to another application (and its tenant) without touching its session: it
   * keeps its DevAddr, keys and counters, no re-join. Undefined when the device does not exist;
   * `MISSING_REFERENCE` for an unknown application; `QUOTA_EXCEEDED` when the device changes
   * tenant and the new one has no room; `INVALID_STATE` when its profile belongs to another
   * tenant than the new one.
   */
  async move(devEui: string, applicationId: string): Promise<Device | undefined> {
    const eui = toEui(devEui, 'DevEUI');
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('devices')
        .select(DEVICE_COLUMNS)
        .where('dev_eui', '=', eui)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const application = await trx
        .selectFrom('applications')
        .select(['id', 'tenant_id'])
        .where('id', '=', String(applicationId))
        .executeTakeFirst();
      if (application === undefined) {
        throw new StorageError('MISSING_REFERENCE', `application ${applicationId} does not exist`);
      }
      if (application.id === row.application_id) return this.#current(row);
      const tenantId = application.tenant_id;
      if (row.device_profile_id !== null) {
        const profile = await trx
          .selectFrom('device_profiles')
          .select('tenant_id')
          .where('id', '=', row.device_profile_id)
          .executeTakeFirst();
        if (profile?.tenant_id != null && profile.tenant_id !== tenantId) {
          throw new StorageError(
            'INVALID_STATE',
            `device ${eui} uses device profile ${row.device_profile_id} of its tenant: give it a profile the new tenant may use first`,
          );
        }
      }
      if (tenantId !== null && tenantId !== row.tenant_id) {
        await assertQuotaRoom(trx, this.#database.dialect, tenantId, 'devices', 1);
      }
      const next = {
        ...row,
        application_id: application.id,
        tenant_id: tenantId,
        updated_at: this.#now(),
      };
      await trx
        .updateTable('devices')
        .set({
          application_id: next.application_id,
          tenant_id: next.tenant_id,
          updated_at: next.updated_at,
        })
        .where('dev_eui', '=', eui)
        .execute();
      return this.#current(next);
    });
  }

  /**
   * The tenant of each application the rows name; `MISSING_REFERENCE` for an application or
   * device profile that does not exist, or a profile of another tenant than the device's.
   */
  async #references(
    db: Kysely<Schema>,
    rows: readonly Selectable<DevicesTable>[],
  ): Promise<Map<string, string | null>> {
    const tenants = await tenantsOf(
      db,
      'applications',
      rows.map((row) => row.application_id),
    );
    const profiles = await tenantsOf(
      db,
      'device_profiles',
      rows.flatMap((row) => (row.device_profile_id === null ? [] : [row.device_profile_id])),
    );
    for (const row of rows) {
      if (!tenants.has(row.application_id)) {
        throw new StorageError(
          'MISSING_REFERENCE',
          `device ${row.dev_eui}: application ${row.application_id} does not exist`,
        );
      }
      if (row.device_profile_id === null) continue;
      const profileTenant = profiles.get(row.device_profile_id);
      if (
        profileTenant === undefined ||
        (profileTenant !== null && profileTenant !== tenants.get(row.application_id))
      ) {
        throw new StorageError(
          'MISSING_REFERENCE',
          `device ${row.dev_eui}: device profile ${row.device_profile_id} does not exist`,
        );
      }
    }
    return tenants;
  }

  /** A device's row, checked, its root keys sealed; `create` fills in its tenant. */
  #row(input: NewDevice): Selectable<DevicesTable> {
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
      application_id: String(input.applicationId),
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
      tenant_id: null,
      tags: toTagsText(input.tags),
      last_seen_at: null,
      created_at: now,
      updated_at: now,
    };
    return row;
  }

  /**
   * Renames a device or changes its profile: one UPDATE. Undefined when the device does not
   * exist; `MISSING_REFERENCE` for an unknown profile. An empty update changes nothing.
   */
  async update(devEui: string, update: DeviceUpdate): Promise<Device | undefined> {
    const eui = toEui(devEui, 'DevEUI');
    const changes: Partial<
      Pick<DevicesTable, 'name' | 'device_profile_id' | 'device_class' | 'tags'>
    > = {};
    if (update.name !== undefined) changes.name = toName(update.name, 'device name');
    if (update.deviceClass !== undefined) {
      oneOf(update.deviceClass, DEVICE_CLASSES, 'device class');
      changes.device_class = update.deviceClass;
    }
    if (update.deviceProfileId !== undefined) changes.device_profile_id = update.deviceProfileId;
    if (update.tags !== undefined) changes.tags = toTagsText(update.tags);
    if (Object.keys(changes).length === 0) return this.get(eui);
    if (typeof update.deviceProfileId === 'string') {
      // A profile of another tenant is, for this device, one that does not exist.
      const profile = await this.#db
        .selectFrom('device_profiles')
        .select('tenant_id')
        .where('id', '=', update.deviceProfileId)
        .executeTakeFirst();
      const device = await this.get(eui);
      if (device === undefined) return undefined;
      if (profile?.tenant_id != null && profile.tenant_id !== device.tenantId) {
        throw new StorageError(
          'MISSING_REFERENCE',
          `device ${eui}: device profile ${update.deviceProfileId} does not exist`,
        );
      }
    }
    try {
      const row = await this.#db
        .updateTable('devices')
        .set({ ...changes, updated_at: this.#now() })
        .where('dev_eui', '=', eui)
        .returning(DEVICE_COLUMNS)
        .executeTakeFirst();
      return row && this.#current(row);
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
  async #missingReference(rows: readonly Selectable<DevicesTable>[]): Promise<string> {
    const applications = await tenantsOf(
      this.#db,
      'applications',
      rows.map((row) => row.application_id),
    );
    const profiles = await tenantsOf(
      this.#db,
      'device_profiles',
      rows.flatMap((row) => (row.device_profile_id === null ? [] : [row.device_profile_id])),
    );
    for (const row of rows) {
      if (!applications.has(row.application_id)) {
        return `device ${row.dev_eui}: application ${row.application_id} does not exist`;
      }
      if (row.device_profile_id !== null && !profiles.has(row.device_profile_id)) {
        return `device ${row.dev_eui}: device profile ${row.device_profile_id} does not exist`;
      }
    }
    return 'a device refers to something that does not exist';
  }

  /**
   * The profile of each device (null: none; devices that do not exist are left out), one query
   * per 500 devices.
   */
  async profileIdsOf(devEuis: Iterable<string>): Promise<Map<string, string | null>> {
    const euis = [...new Set([...devEuis].map((devEui) => toEui(devEui, 'DevEUI')))];
    const found = new Map<string, string | null>();
    for (let start = 0; start < euis.length; start += 500) {
      const rows = await this.#db
        .selectFrom('devices')
        .select(['dev_eui', 'device_profile_id'])
        .where('dev_eui', 'in', euis.slice(start, start + 500))
        .execute();
      for (const row of rows) found.set(row.dev_eui, row.device_profile_id);
    }
    return found;
  }

  async get(devEui: string): Promise<Device | undefined> {
    const row = await this.#db
      .selectFrom('devices')
      .select(DEVICE_COLUMNS)
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return row && this.#current(row);
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

  /**
   * Which of these devices hold root keys here (an OTAA device whose join server is this
   * Galet's), without opening them: one query per 1000 devices.
   */
  async withRootKeys(devEuis: Iterable<string>): Promise<Set<string>> {
    return new Set(await this.#present(devEuis, { withRootKeys: true }));
  }

  /** Which of these devices exist (and hold root keys, if asked): one query per 1000 devices. */
  async #present(
    devEuis: Iterable<string>,
    { withRootKeys }: { withRootKeys: boolean },
  ): Promise<string[]> {
    const euis = [...new Set([...devEuis].map((devEui) => toEui(devEui, 'DevEUI')))];
    const found: string[] = [];
    for (let start = 0; start < euis.length; start += LOOKUP_BATCH) {
      let query = this.#db
        .selectFrom('devices')
        .select('dev_eui')
        .where('dev_eui', 'in', euis.slice(start, start + LOOKUP_BATCH));
      if (withRootKeys) query = query.where('app_key_enc', 'is not', null);
      for (const row of await query.execute()) found.push(row.dev_eui);
    }
    return found;
  }

  /**
   * Every device the filters select (default: every device), without keys, ordered by DevEUI:
   * for warming a cache at start-up, exports and fan-outs.
   */
  async listAll(filters?: Omit<DeviceListOptions, keyof ListOptions>): Promise<Device[]> {
    if (!scopeAdmitsAny(filters?.scope)) return [];
    const rows = await this.#filtered(filters).orderBy('dev_eui').execute();
    return rows.map((row) => this.#current(row));
  }

  /** Ordered by DevEUI unless sorted otherwise (`DEVICE_SORT`). */
  async list(options?: DeviceListOptions): Promise<Device[]> {
    if (!scopeAdmitsAny(options?.scope)) return [];
    const rows = await ordered(this.#filtered(options), DEVICE_SORT, options).execute();
    return rows.map((row) => this.#current(row));
  }

  /** The devices a list's filters select (call only when `scopeAdmitsAny`). */
  #filtered(options: Omit<DeviceListOptions, keyof ListOptions> | undefined) {
    const dialect = this.#database.dialect;
    let query = whereOwned(
      this.#db.selectFrom('devices').select(DEVICE_COLUMNS),
      options,
      { tenant: 'tenant_id', application: 'application_id' },
      dialect,
    );
    if (options?.applicationId !== undefined) {
      query = query.where('application_id', '=', options.applicationId);
    }
    if (options?.deviceProfileId !== undefined) {
      query = query.where('device_profile_id', '=', options.deviceProfileId);
    }
    if (options?.tag !== undefined) query = query.where(tagEquals(dialect, 'tags', options.tag));
    const search = options?.search;
    if (search !== undefined) {
      query = query.where((eb) =>
        eb.or([containsText('name', search), containsText('dev_eui', search)]),
      );
    }
    return query;
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

/** The first value given twice, if any. */
function firstRepeated(values: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value)) return value;
    seen.add(value);
  }
  return undefined;
}

/** The tenant of each of these rows that exists, by id (batched: `ids` may be many). */
async function tenantsOf(
  db: Kysely<Schema>,
  table: 'applications' | 'device_profiles',
  ids: readonly string[],
): Promise<Map<string, string | null>> {
  const unique = [...new Set(ids)];
  const tenants = new Map<string, string | null>();
  for (let start = 0; start < unique.length; start += INSERT_BATCH) {
    const found = await db
      .selectFrom(table)
      .select(['id', 'tenant_id'])
      .where('id', 'in', unique.slice(start, start + INSERT_BATCH))
      .execute();
    for (const row of found) tenants.set(row.id, row.tenant_id);
  }
  return tenants;
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
  'tenant_id',
  'tags',
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
    tenantId: row.tenant_id,
    tags: fromTagsText(row.tags),
    lastSeenAt: row.last_seen_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
