import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import { containsText, ordered, type SortColumns } from './listing.js';
import type { IsoTimestamp, TenantKind, TenantsTable } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertFiniteNumber,
  assertInteger,
  clock,
  type ListOptions,
  oneOf,
  type RepositoryOptions,
  toName,
} from './values.js';

export type { TenantKind } from './schema.js';
export const TENANT_KINDS = ['operator', 'commune', 'provider'] as const satisfies TenantKind[];

/** Limits the operator sets on a tenant; null: no limit. Enforced where devices are created. */
export interface TenantQuotas {
  maxDevices: number | null;
  maxGateways: number | null;
}

export interface TenantSettings {
  /** IANA time zone for the tenant's reports and daily aggregates (`Europe/Paris`). */
  timeZone: string;
  /** Where the tenant is (a commune's town hall), for the console's map. */
  location: { latitude: number; longitude: number } | null;
  /** How long data is kept, in days; null: as long as the server's default. */
  retention: { eventsDays: number | null; auditDays: number | null };
}

export interface Tenant {
  id: string;
  name: string;
  kind: TenantKind;
  quotas: TenantQuotas;
  settings: TenantSettings;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface TenantSettingsInput {
  timeZone?: string;
  location?: { latitude: number; longitude: number } | null;
  retention?: { eventsDays?: number | null; auditDays?: number | null };
}

export interface NewTenant {
  name: string;
  /** Default 'commune'. */
  kind?: TenantKind;
  quotas?: Partial<TenantQuotas>;
  settings?: TenantSettingsInput;
}

/** Only the given fields change; settings merge field by field (retention too). */
export interface TenantUpdate {
  name?: string;
  kind?: TenantKind;
  quotas?: Partial<TenantQuotas>;
  settings?: TenantSettingsInput;
}

export interface TenantListOptions extends ListOptions {
  /** Only these tenants (the ones a principal may see). An empty list gives an empty page. */
  ids?: readonly string[];
  kind?: TenantKind;
  /** Only names containing this text (any case). */
  search?: string;
}

export const TENANT_SORT: SortColumns<'createdAt' | 'name'> = {
  fields: { createdAt: 'created_at', name: 'name' },
  id: 'id',
  defaultField: 'createdAt',
};

export const DEFAULT_TENANT_SETTINGS: TenantSettings = {
  timeZone: 'UTC',
  location: null,
  retention: { eventsDays: null, auditDays: null },
};

const MAX_QUOTA = 100_000_000;
const MAX_RETENTION_DAYS = 36_500;
const UPDATE_ATTEMPTS = 5;

/** Tenants: the operator itself, the communes and the service providers it serves. */
export class TenantRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  async create(input: NewTenant): Promise<Tenant> {
    const now = this.#now();
    const kind = input.kind ?? 'commune';
    oneOf(kind, TENANT_KINDS, 'tenant kind');
    const quotas = mergeQuotas({ maxDevices: null, maxGateways: null }, input.quotas);
    const row: Selectable<TenantsTable> = {
      id: randomUUID(),
      name: toName(input.name, 'tenant name'),
      kind,
      max_devices: quotas.maxDevices,
      max_gateways: quotas.maxGateways,
      settings: JSON.stringify(mergeSettings(DEFAULT_TENANT_SETTINGS, input.settings)),
      created_at: now,
      updated_at: now,
    };
    await this.#db.insertInto('tenants').values(row).execute();
    return toTenant(row);
  }

  async get(id: string): Promise<Tenant | undefined> {
    const row = await this.#db
      .selectFrom('tenants')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row && toTenant(row);
  }

  /** Oldest first. */
  async list(options?: TenantListOptions): Promise<Tenant[]> {
    if (options?.ids !== undefined && options.ids.length === 0) return [];
    let query = this.#db.selectFrom('tenants').selectAll();
    if (options?.ids !== undefined) query = query.where('id', 'in', [...options.ids]);
    if (options?.kind !== undefined) query = query.where('kind', '=', options.kind);
    if (options?.search !== undefined) query = query.where(containsText('name', options.search));
    const rows = await ordered(query, TENANT_SORT, options).execute();
    return rows.map(toTenant);
  }

  /** Each tenant's audit log retention in days (null: kept forever), for the purge job. */
  async auditRetention(): Promise<Array<{ id: string; auditDays: number | null }>> {
    const rows = await this.#db.selectFrom('tenants').select(['id', 'settings']).execute();
    return rows.map((row) => {
      const days = (JSON.parse(row.settings) as { retention?: { auditDays?: unknown } }).retention
        ?.auditDays;
      return { id: row.id, auditDays: typeof days === 'number' ? days : null };
    });
  }

  /** The updated tenant, or undefined when there is none. */
  async update(id: string, update: TenantUpdate): Promise<Tenant | undefined> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt += 1) {
      const row = await this.#db
        .selectFrom('tenants')
        .selectAll()
        .where('id', '=', String(id))
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const current = toTenant(row);
      if (update.kind !== undefined) oneOf(update.kind, TENANT_KINDS, 'tenant kind');
      const quotas = mergeQuotas(current.quotas, update.quotas);
      const next: Selectable<TenantsTable> = {
        ...row,
        name: update.name === undefined ? row.name : toName(update.name, 'tenant name'),
        kind: update.kind ?? row.kind,
        max_devices: quotas.maxDevices,
        max_gateways: quotas.maxGateways,
        settings: JSON.stringify(mergeSettings(current.settings, update.settings)),
        updated_at: this.#now(),
      };
      // Optimistic: the write applies only if nobody changed the row since it was read.
      let query = this.#db
        .updateTable('tenants')
        .set({
          name: next.name,
          kind: next.kind,
          max_devices: next.max_devices,
          max_gateways: next.max_gateways,
          settings: next.settings,
          updated_at: next.updated_at,
        })
        .where('id', '=', row.id)
        .where('updated_at', '=', row.updated_at)
        .where('settings', '=', row.settings)
        .where('name', '=', row.name)
        .where('kind', '=', row.kind);
      query =
        row.max_devices === null
          ? query.where('max_devices', 'is', null)
          : query.where('max_devices', '=', row.max_devices);
      query =
        row.max_gateways === null
          ? query.where('max_gateways', 'is', null)
          : query.where('max_gateways', '=', row.max_gateways);
      const result = await query.executeTakeFirst();
      if (result.numUpdatedRows > 0n) return toTenant(next);
    }
    throw new StorageError(
      'INVALID_STATE',
      `tenant ${id} kept changing during the update: try again`,
    );
  }

  /**
   * False when there was no such tenant. Its memberships and API keys go with it; its audit
   * entries stay. `STILL_REFERENCED` while it owns applications, gateways or device profiles.
   */
  async delete(id: string): Promise<boolean> {
    try {
      const result = await this.#db
        .deleteFrom('tenants')
        .where('id', '=', String(id))
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError(
          'STILL_REFERENCED',
          `tenant ${id} still owns applications, gateways or device profiles: move or delete them first`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

function mergeQuotas(
  current: TenantQuotas,
  update: Partial<TenantQuotas> | undefined,
): TenantQuotas {
  const next = { ...current };
  for (const field of ['maxDevices', 'maxGateways'] as const) {
    const value = update?.[field];
    if (value === undefined) continue;
    if (value !== null) assertInteger(value, 0, MAX_QUOTA, `quotas.${field}`);
    next[field] = value;
  }
  return next;
}

function mergeSettings(
  current: TenantSettings,
  update: TenantSettingsInput | undefined,
): TenantSettings {
  const next: TenantSettings = {
    timeZone: current.timeZone,
    location: current.location === null ? null : { ...current.location },
    retention: { ...current.retention },
  };
  if (update === undefined) return next;
  if (update.timeZone !== undefined) next.timeZone = toTimeZone(update.timeZone);
  if (update.location !== undefined) {
    if (update.location === null) {
      next.location = null;
    } else {
      assertFiniteNumber(update.location.latitude, -90, 90, 'settings.location.latitude');
      assertFiniteNumber(update.location.longitude, -180, 180, 'settings.location.longitude');
      next.location = { latitude: update.location.latitude, longitude: update.location.longitude };
    }
  }
  for (const field of ['eventsDays', 'auditDays'] as const) {
    const value = update.retention?.[field];
    if (value === undefined) continue;
    if (value !== null) assertInteger(value, 1, MAX_RETENTION_DAYS, `settings.retention.${field}`);
    next.retention[field] = value;
  }
  return next;
}

/** An IANA time zone the runtime knows, in its canonical spelling. */
function toTimeZone(value: string): string {
  try {
    if (typeof value !== 'string' || value === '') throw new RangeError('empty');
    return new Intl.DateTimeFormat('en', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    throw new StorageError(
      'INVALID_INPUT',
      `settings.timeZone must be an IANA time zone such as Europe/Paris, got ${JSON.stringify(String(value)).slice(0, 60)}`,
    );
  }
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  // Fill what an older document may lack.
  const stored = JSON.parse(row.settings) as Partial<TenantSettings>;
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    quotas: { maxDevices: row.max_devices, maxGateways: row.max_gateways },
    settings: {
      timeZone: stored.timeZone ?? DEFAULT_TENANT_SETTINGS.timeZone,
      location: stored.location ?? null,
      retention: {
        eventsDays: stored.retention?.eventsDays ?? null,
        auditDays: stored.retention?.auditDays ?? null,
      },
    },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
