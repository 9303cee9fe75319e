import { randomUUID } from 'node:crypto';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import { ordered, type SortColumns } from './listing.js';
import type { IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { clock, type ListOptions, type RepositoryOptions, toEui, toName } from './values.js';

/** Field paths one share may name. */
export const MAX_SHARED_FIELDS = 20;
/** The longest field path the measurement store keeps (flatten.ts `maxFieldLength`). */
export const MAX_SHARED_FIELD_LENGTH = 200;
export const MAX_SHARE_NOTE_LENGTH = 500;

/** A share as its provider (the application's tenant) sees it. */
export interface MeasurementShare {
  id: string;
  applicationId: string;
  devEui: string;
  /** The receiving tenant. */
  tenantId: string;
  /** Its name, so that the provider sees whom it shares with. */
  tenantName: string;
  /** Exact field paths, as the measurements store them (`volume`, `sensors.0.value`). */
  fields: string[];
  note: string | null;
  createdAt: IsoTimestamp;
  /** Who created it, as the audit log names actors (`user:<id>`, `api-key:<id>`). */
  createdBy: string | null;
  /** False while its device is in another application: the share then serves nothing. */
  active: boolean;
}

export interface NewMeasurementShare {
  applicationId: string;
  devEui: string;
  tenantId: string;
  fields: readonly string[];
  note?: string | null;
  createdBy?: string | null;
}

/**
 * A share as the receiving tenant sees it: what is shared and by whom, nothing else of the
 * device or its application (no application id, no keys, no tags, no other field).
 */
export interface ReceivedMeasurementShare {
  id: string;
  /** The receiving tenant (the reader's own). */
  tenantId: string;
  devEui: string;
  deviceName: string;
  fields: string[];
  /** The name of the application's tenant; null for an application of the operator's. */
  providerName: string | null;
  createdAt: IsoTimestamp;
}

/** What a share's provider may change: its fields and its note, never its device or tenant. */
export interface MeasurementShareChanges {
  fields?: readonly string[] | undefined;
  /** null clears it. */
  note?: string | null | undefined;
}

/** A share its receiver reads, with whose it is: for the audit entry of the read. */
export interface ReceivedShareWithProvider {
  share: ReceivedMeasurementShare;
  applicationId: string;
  /** The application's tenant; null for an application of the operator's. */
  providerTenantId: string | null;
}

export interface MeasurementShareListOptions extends ListOptions {
  devEui?: string;
  tenantId?: string;
}

export interface ReceivedShareListOptions extends ListOptions {
  /** The receiving tenants whose shares to list; an empty list gives nothing. */
  tenantIds: readonly string[];
  devEui?: string;
}

export const MEASUREMENT_SHARE_SORT: SortColumns<'createdAt' | 'devEui'> = {
  fields: { createdAt: 'measurement_shares.created_at', devEui: 'measurement_shares.dev_eui' },
  id: 'measurement_shares.id',
  defaultField: 'createdAt',
};

/**
 * Measurement shares (migration 0013): one device's chosen field paths, shared by its
 * application with another tenant, read-only. A share goes with its device, its application and
 * the receiving tenant; while its device is in another application it is inert (`active:
 * false`, never served to the receiver).
 */
export class MeasurementShareRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /**
   * `MISSING_REFERENCE` when the device is not in the application or the tenant does not
   * exist; `INVALID_INPUT` for bad fields or a share with the application's own tenant;
   * `ALREADY_EXISTS` when the device is shared with that tenant already.
   */
  async create(input: NewMeasurementShare): Promise<MeasurementShare> {
    const fields = toSharedFields(input.fields);
    const note = toNote(input.note);
    const devEui = toEui(input.devEui, 'DevEUI');
    const applicationId = String(input.applicationId);
    const tenantId = String(input.tenantId);
    const device = await this.#db
      .selectFrom('devices')
      .select(['application_id', 'tenant_id'])
      .where('dev_eui', '=', devEui)
      .executeTakeFirst();
    if (device === undefined || device.application_id !== applicationId) {
      throw new StorageError(
        'MISSING_REFERENCE',
        `device ${devEui} is not in application ${applicationId}`,
      );
    }
    const tenant = await this.#db
      .selectFrom('tenants')
      .select(['id', 'name'])
      .where('id', '=', tenantId)
      .executeTakeFirst();
    if (tenant === undefined) {
      throw new StorageError('MISSING_REFERENCE', `tenant ${tenantId} does not exist`);
    }
    if (device.tenant_id === tenantId) {
      throw new StorageError(
        'INVALID_INPUT',
        `tenant ${tenantId} owns application ${applicationId}: share with another tenant`,
      );
    }
    const row = {
      id: randomUUID(),
      application_id: applicationId,
      dev_eui: devEui,
      tenant_id: tenantId,
      fields: JSON.stringify(fields),
      note,
      created_at: this.#now(),
      created_by: input.createdBy ?? null,
    };
    try {
      await this.#db.insertInto('measurement_shares').values(row).execute();
    } catch (error) {
      switch (constraintViolation(error)) {
        case 'unique':
          throw new StorageError(
            'ALREADY_EXISTS',
            `device ${devEui} is shared with tenant ${tenantId} already: change that share's fields instead (PATCH)`,
            { cause: error },
          );
        case 'foreign-key':
          // The device, application or tenant went away since the checks above.
          throw new StorageError(
            'MISSING_REFERENCE',
            `device ${devEui}, application ${applicationId} or tenant ${tenantId} no longer exists`,
            { cause: error },
          );
        default:
          throw error;
      }
    }
    return toShare({ ...row, tenant_name: tenant.name, device_application_id: applicationId });
  }

  async get(id: string): Promise<MeasurementShare | undefined> {
    const row = await this.#providerView()
      .where('measurement_shares.id', '=', String(id))
      .executeTakeFirst();
    return row && toShare(row);
  }

  /** An application's shares, oldest first unless sorted otherwise (`MEASUREMENT_SHARE_SORT`). */
  async listForApplication(
    applicationId: string,
    options?: MeasurementShareListOptions,
  ): Promise<MeasurementShare[]> {
    let query = this.#providerView().where(
      'measurement_shares.application_id',
      '=',
      String(applicationId),
    );
    if (options?.devEui !== undefined) {
      query = query.where('measurement_shares.dev_eui', '=', toEui(options.devEui, 'DevEUI'));
    }
    if (options?.tenantId !== undefined) {
      query = query.where('measurement_shares.tenant_id', '=', String(options.tenantId));
    }
    const rows = await ordered(query, MEASUREMENT_SHARE_SORT, options).execute();
    return rows.map(toShare);
  }

  /**
   * Changes the fields and/or the note of a share of this application; undefined when it has
   * none with this id. `INVALID_INPUT` for bad fields or note, or nothing to change.
   */
  async update(
    applicationId: string,
    id: string,
    changes: MeasurementShareChanges,
  ): Promise<MeasurementShare | undefined> {
    const set: { fields?: string; note?: string | null } = {};
    if (changes.fields !== undefined) set.fields = JSON.stringify(toSharedFields(changes.fields));
    if (changes.note !== undefined) set.note = toNote(changes.note);
    if (Object.keys(set).length === 0) {
      throw new StorageError('INVALID_INPUT', 'a share change names its fields, its note or both');
    }
    const result = await this.#db
      .updateTable('measurement_shares')
      .set(set)
      .where('id', '=', String(id))
      .where('application_id', '=', String(applicationId))
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return undefined;
    return this.get(id);
  }

  /** Deletes a share of this application; false when it has none with this id. */
  async delete(applicationId: string, id: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('measurement_shares')
      .where('id', '=', String(id))
      .where('application_id', '=', String(applicationId))
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** The active shares these tenants receive, oldest first unless sorted otherwise. */
  async listReceived(options: ReceivedShareListOptions): Promise<ReceivedMeasurementShare[]> {
    if (options.tenantIds.length === 0) return [];
    let query = this.#receiverView().where('measurement_shares.tenant_id', 'in', [
      ...options.tenantIds.map(String),
    ]);
    if (options.devEui !== undefined) {
      query = query.where('measurement_shares.dev_eui', '=', toEui(options.devEui, 'DevEUI'));
    }
    const rows = await ordered(query, MEASUREMENT_SHARE_SORT, options).execute();
    return rows.map(toReceived);
  }

  /** A share as its receiver sees it; undefined when there is none or it is inert. */
  async getReceived(id: string): Promise<ReceivedMeasurementShare | undefined> {
    const row = await this.#receiverView()
      .where('measurement_shares.id', '=', String(id))
      .executeTakeFirst();
    return row && toReceived(row);
  }

  /**
   * `getReceived`, with the share's application and its tenant (never shown to the receiver):
   * what the audit entry of a read names.
   */
  async getReceivedWithProvider(id: string): Promise<ReceivedShareWithProvider | undefined> {
    const row = await this.#receiverView()
      .select(['measurement_shares.application_id', 'applications.tenant_id as provider_tenant_id'])
      .where('measurement_shares.id', '=', String(id))
      .executeTakeFirst();
    return (
      row && {
        share: toReceived(row),
        applicationId: row.application_id,
        providerTenantId: row.provider_tenant_id,
      }
    );
  }

  #providerView() {
    return this.#db
      .selectFrom('measurement_shares')
      .innerJoin('tenants as receiver', 'receiver.id', 'measurement_shares.tenant_id')
      .leftJoin('devices', 'devices.dev_eui', 'measurement_shares.dev_eui')
      .select([
        'measurement_shares.id',
        'measurement_shares.application_id',
        'measurement_shares.dev_eui',
        'measurement_shares.tenant_id',
        'measurement_shares.fields',
        'measurement_shares.note',
        'measurement_shares.created_at',
        'measurement_shares.created_by',
        'receiver.name as tenant_name',
        'devices.application_id as device_application_id',
      ]);
  }

  /** Active shares only: the device is still in the share's application. */
  #receiverView() {
    return this.#db
      .selectFrom('measurement_shares')
      .innerJoin('devices', (join) =>
        join
          .onRef('devices.dev_eui', '=', 'measurement_shares.dev_eui')
          .onRef('devices.application_id', '=', 'measurement_shares.application_id'),
      )
      .innerJoin('applications', 'applications.id', 'measurement_shares.application_id')
      .leftJoin('tenants as provider', 'provider.id', 'applications.tenant_id')
      .select([
        'measurement_shares.id',
        'measurement_shares.tenant_id',
        'measurement_shares.dev_eui',
        'measurement_shares.fields',
        'measurement_shares.created_at',
        'devices.name as device_name',
        'provider.name as provider_name',
      ]);
  }
}

/** The shared field paths: 1 to MAX_SHARED_FIELDS exact paths, duplicates dropped, order kept. */
export function toSharedFields(fields: readonly string[]): string[] {
  if (!Array.isArray(fields) || fields.length === 0 || fields.length > MAX_SHARED_FIELDS) {
    throw new StorageError(
      'INVALID_INPUT',
      `fields must be a list of 1 to ${MAX_SHARED_FIELDS} field paths`,
    );
  }
  const unique: string[] = [];
  for (const field of fields) {
    if (typeof field !== 'string' || field === '' || field.length > MAX_SHARED_FIELD_LENGTH) {
      throw new StorageError(
        'INVALID_INPUT',
        `each field must be a field path of 1 to ${MAX_SHARED_FIELD_LENGTH} characters`,
      );
    }
    if (!unique.includes(field)) unique.push(field);
  }
  return unique;
}

function toNote(note: string | null | undefined): string | null {
  if (note === undefined || note === null) return null;
  return toName(note, 'note', MAX_SHARE_NOTE_LENGTH);
}

function toShare(row: {
  id: string;
  application_id: string;
  dev_eui: string;
  tenant_id: string;
  tenant_name: string;
  fields: string;
  note: string | null;
  created_at: IsoTimestamp;
  created_by: string | null;
  device_application_id: string | null;
}): MeasurementShare {
  return {
    id: row.id,
    applicationId: row.application_id,
    devEui: row.dev_eui,
    tenantId: row.tenant_id,
    tenantName: row.tenant_name,
    fields: JSON.parse(row.fields) as string[],
    note: row.note,
    createdAt: row.created_at,
    createdBy: row.created_by,
    active: row.device_application_id === row.application_id,
  };
}

function toReceived(row: {
  id: string;
  tenant_id: string;
  dev_eui: string;
  fields: string;
  created_at: IsoTimestamp;
  device_name: string;
  provider_name: string | null;
}): ReceivedMeasurementShare {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    devEui: row.dev_eui,
    deviceName: row.device_name,
    fields: JSON.parse(row.fields) as string[],
    providerName: row.provider_name,
    createdAt: row.created_at,
  };
}
