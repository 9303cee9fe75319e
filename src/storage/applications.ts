import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import {
  containsText,
  NAMED_ROW_SORT,
  type OwnedListOptions,
  ordered,
  scopeAdmitsAny,
  whereOwned,
} from './listing.js';
import { assertQuotaRoom } from './quotas.js';
import type { ApplicationsTable, IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions, toName } from './values.js';

export interface Application {
  id: string;
  name: string;
  /** The owner; null: no tenant (only global principals see it). */
  tenantId: string | null;
  retention: ApplicationRetention;
  /** Field paths removed from decoded objects before anything is stored (data minimisation). */
  dropFields: string[];
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

/** How long an application's data is kept, in days; null: forever (the default). */
export interface ApplicationRetention {
  eventsDays: number | null;
  measurementsDays: number | null;
}

/** Longest retention accepted: 100 years. */
export const MAX_RETENTION_DAYS = 36_500;
/** Field paths an application may drop, and the longest path. */
export const MAX_DROP_FIELDS = 100;
export const MAX_DROP_FIELD_LENGTH = 200;

export interface NewApplication {
  /** Default: a new UUID. A provider's copy of a linked application keeps the network's id. */
  id?: string;
  name: string;
  /** Default none. */
  tenantId?: string | null;
  /** Default: both forever. */
  retention?: Partial<ApplicationRetention>;
  /** Default none. */
  dropFields?: readonly string[];
}

/** An absent field stays as it is. */
export interface ApplicationUpdate {
  name?: string;
  /** Moves the application, with its devices, to another tenant (null: none). */
  tenantId?: string | null;
  /** Only the given kinds change; null: keep forever. */
  retention?: Partial<ApplicationRetention>;
  /** Replaces the list. */
  dropFields?: readonly string[];
}

export type ApplicationListOptions = OwnedListOptions;

export const APPLICATION_SORT = NAMED_ROW_SORT;

/** Applications: the owner-side grouping of devices. */
export class ApplicationRepository {
  readonly #database: GaletDatabase;
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#database = database;
    this.#db = database.db;
    this.#now = clock(options);
  }

  /** `MISSING_REFERENCE` for an unknown tenant. */
  async create(input: NewApplication): Promise<Application> {
    const now = this.#now();
    const row: Selectable<ApplicationsTable> = {
      id: input.id === undefined ? randomUUID() : toName(input.id, 'application id', 64),
      name: toName(input.name, 'application name'),
      tenant_id: input.tenantId ?? null,
      created_at: now,
      updated_at: now,
      events_retention_days: toRetentionDays(input.retention?.eventsDays, 'eventsDays'),
      measurements_retention_days: toRetentionDays(
        input.retention?.measurementsDays,
        'measurementsDays',
      ),
      drop_fields: JSON.stringify(toDropFields(input.dropFields ?? [])),
    };
    try {
      await this.#db.insertInto('applications').values(row).execute();
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError('MISSING_REFERENCE', `tenant ${row.tenant_id} does not exist`, {
          cause: error,
        });
      }
      throw error;
    }
    return toApplication(row);
  }

  async get(id: string): Promise<Application | undefined> {
    const row = await this.#db
      .selectFrom('applications')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row && toApplication(row);
  }

  /** Oldest first unless sorted otherwise (`APPLICATION_SORT`). */
  async list(options?: ApplicationListOptions): Promise<Application[]> {
    if (!scopeAdmitsAny(options?.scope)) return [];
    let query = whereOwned(
      this.#db.selectFrom('applications').selectAll(),
      options,
      { tenant: 'tenant_id', application: 'id' },
      this.#database.dialect,
    );
    if (options?.search !== undefined) query = query.where(containsText('name', options.search));
    const rows = await ordered(query, APPLICATION_SORT, options).execute();
    return rows.map(toApplication);
  }

  /**
   * Renames the application or moves it to another tenant. A move takes its devices along (one
   * transaction) and counts them against the new tenant's `maxDevices` (`QUOTA_EXCEEDED`).
   * Undefined when there is no such application; `MISSING_REFERENCE` for an unknown tenant.
   */
  async update(id: string, update: ApplicationUpdate): Promise<Application | undefined> {
    const name = update.name === undefined ? undefined : toName(update.name, 'application name');
    const eventsDays = update.retention?.eventsDays;
    const measurementsDays = update.retention?.measurementsDays;
    const settings = {
      ...(eventsDays === undefined
        ? {}
        : { events_retention_days: toRetentionDays(eventsDays, 'eventsDays') }),
      ...(measurementsDays === undefined
        ? {}
        : {
            measurements_retention_days: toRetentionDays(measurementsDays, 'measurementsDays'),
          }),
      ...(update.dropFields === undefined
        ? {}
        : { drop_fields: JSON.stringify(toDropFields(update.dropFields)) }),
    };
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('applications')
        .selectAll()
        .where('id', '=', String(id))
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const tenantId = update.tenantId === undefined ? row.tenant_id : update.tenantId;
      const moving = tenantId !== row.tenant_id;
      if (moving && tenantId !== null) {
        const devices = await trx
          .selectFrom('devices')
          .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
          .where('application_id', '=', row.id)
          .executeTakeFirstOrThrow();
        await assertQuotaRoom(
          trx,
          this.#database.dialect,
          tenantId,
          'devices',
          Number(devices.count),
        );
      }
      const next: Selectable<ApplicationsTable> = {
        ...row,
        ...settings,
        name: name ?? row.name,
        tenant_id: tenantId,
        updated_at: this.#now(),
      };
      await trx
        .updateTable('applications')
        .set({
          ...settings,
          name: next.name,
          tenant_id: next.tenant_id,
          updated_at: next.updated_at,
        })
        .where('id', '=', row.id)
        .execute();
      if (moving) {
        await trx
          .updateTable('devices')
          .set({ tenant_id: tenantId, updated_at: next.updated_at })
          .where('application_id', '=', row.id)
          .execute();
      }
      return toApplication(next);
    });
  }

  /** False when there was no such application; `STILL_REFERENCED` while it has devices. */
  async delete(id: string): Promise<boolean> {
    try {
      const result = await this.#db
        .deleteFrom('applications')
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError(
          'STILL_REFERENCED',
          `application ${id} still has devices: delete them first`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * Every application's retention and dropped fields: what the retention job works from. The
   * events retention is the application's own, else its tenant's (`settings.retention.eventsDays`).
   */
  async listDataSettings(): Promise<ApplicationDataSettings[]> {
    const rows = await this.#db
      .selectFrom('applications')
      .leftJoin('tenants', 'tenants.id', 'applications.tenant_id')
      .select([
        'applications.id',
        'applications.events_retention_days',
        'applications.measurements_retention_days',
        'applications.drop_fields',
        'tenants.settings as tenant_settings',
      ])
      .orderBy('applications.id')
      .execute();
    return rows.map((row) => {
      const own = toRetention(row);
      return {
        id: row.id,
        retention: {
          eventsDays: own.eventsDays ?? tenantEventsDays(row.tenant_settings),
          measurementsDays: own.measurementsDays,
        },
        dropFields: parseDropFields(row.drop_fields),
      };
    });
  }

  /** The fields an application drops ([] for an unknown application). */
  async dropFieldsOf(id: string): Promise<string[]> {
    const row = await this.#db
      .selectFrom('applications')
      .select('drop_fields')
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row === undefined ? [] : parseDropFields(row.drop_fields);
  }
}

/** What an application decided about its data. */
export interface ApplicationDataSettings {
  id: string;
  retention: ApplicationRetention;
  dropFields: string[];
}

function toRetentionDays(value: number | null | undefined, what: string): number | null {
  if (value === undefined || value === null) return null;
  assertInteger(value, 1, MAX_RETENTION_DAYS, `retention ${what}`);
  return value;
}

function toDropFields(paths: readonly string[]): string[] {
  if (!Array.isArray(paths) || paths.length > MAX_DROP_FIELDS) {
    throw new StorageError(
      'INVALID_INPUT',
      `dropFields must be a list of at most ${MAX_DROP_FIELDS} field paths`,
    );
  }
  for (const path of paths) {
    if (typeof path !== 'string' || path === '' || path.length > MAX_DROP_FIELD_LENGTH) {
      throw new StorageError(
        'INVALID_INPUT',
        `each dropFields path must be a non-empty text of at most ${MAX_DROP_FIELD_LENGTH} characters`,
      );
    }
  }
  return [...new Set(paths)];
}

/** A tenant's default events retention (tenants.ts keeps its settings as JSON text). */
function tenantEventsDays(settings: string | null): number | null {
  if (settings === null) return null;
  const days = (JSON.parse(settings) as { retention?: { eventsDays?: unknown } }).retention
    ?.eventsDays;
  return typeof days === 'number' && Number.isInteger(days) && days > 0 ? days : null;
}

function parseDropFields(text: string): string[] {
  const parsed = JSON.parse(text) as unknown;
  return Array.isArray(parsed) ? parsed.filter((path) => typeof path === 'string') : [];
}

function toRetention(
  row: Pick<ApplicationsTable, 'events_retention_days' | 'measurements_retention_days'>,
): ApplicationRetention {
  return {
    eventsDays: row.events_retention_days,
    measurementsDays: row.measurements_retention_days,
  };
}

function toApplication(row: Selectable<ApplicationsTable>): Application {
  return {
    id: row.id,
    name: row.name,
    tenantId: row.tenant_id,
    retention: toRetention(row),
    dropFields: parseDropFields(row.drop_fields),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
