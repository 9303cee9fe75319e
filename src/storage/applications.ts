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
import { clock, type RepositoryOptions, toName } from './values.js';

export interface Application {
  id: string;
  name: string;
  /** The owner; null: no tenant (only global principals see it). */
  tenantId: string | null;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewApplication {
  /** Default: a new UUID. A provider's copy of a linked application keeps the network's id. */
  id?: string;
  name: string;
  /** Default none. */
  tenantId?: string | null;
}

/** An absent field stays as it is. */
export interface ApplicationUpdate {
  name?: string;
  /** Moves the application, with its devices, to another tenant (null: none). */
  tenantId?: string | null;
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
        name: name ?? row.name,
        tenant_id: tenantId,
        updated_at: this.#now(),
      };
      await trx
        .updateTable('applications')
        .set({ name: next.name, tenant_id: next.tenant_id, updated_at: next.updated_at })
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
}

function toApplication(row: Selectable<ApplicationsTable>): Application {
  return {
    id: row.id,
    name: row.name,
    tenantId: row.tenant_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
