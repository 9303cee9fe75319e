import type { ExpressionBuilder, Selectable, Updateable } from 'kysely';
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
import type { GatewaysTable, IsoTimestamp, LocationSource, Schema } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertFiniteNumber,
  assertInteger,
  clock,
  fromDbBoolean,
  type RepositoryOptions,
  toDbBoolean,
  toEui,
  toIsoTimestamp,
  toName,
} from './values.js';

export interface GatewayLocationInput {
  latitude: number;
  longitude: number;
  /** Metres above sea level. */
  altitude?: number | null;
}

export interface GatewayLocation {
  latitude: number;
  longitude: number;
  altitude: number | null;
  /** 'configured' by an operator (a gateway's own report never overrides it) or reported by the 'gateway'. */
  source: LocationSource;
}

/** Counters since the gateway was registered, summed from its periodic stats reports. */
export interface GatewayCounters {
  rxReceived: number;
  rxReceivedOk: number;
  rxForwarded: number;
  txReceived: number;
  txEmitted: number;
}

export interface Gateway {
  /** Gateway EUI, lower-case hex. */
  gatewayId: string;
  name: string;
  location: GatewayLocation | null;
  lastSeenAt: IsoTimestamp | null;
  counters: GatewayCounters;
  /** The owner; null: the operator's (only global principals see it, unless shared). */
  tenantId: string | null;
  /** Visible read-only to every tenant. */
  shared: boolean;
  tags: Record<string, string>;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewGateway {
  gatewayId: string;
  name: string;
  /** A location set here is 'configured': reports from the gateway do not replace it. */
  location?: GatewayLocationInput;
  /** Default none. Counted against the tenant's `maxGateways`. */
  tenantId?: string | null;
  /** Default false. */
  shared?: boolean;
  tags?: Record<string, string>;
}

/** An absent field stays as it is. */
export interface GatewayUpdate {
  name?: string;
  /** A configured location; null: none (the gateway's reports set it again). */
  location?: GatewayLocationInput | null;
  /** Another owner (counted against its `maxGateways`); null: none. */
  tenantId?: string | null;
  shared?: boolean;
  /** Replaces every tag. */
  tags?: Record<string, string>;
}

/** `search`: the name or the gateway id. */
export interface GatewayListOptions extends OwnedListOptions {
  shared?: boolean;
  tag?: TagFilter;
}

export const GATEWAY_SORT: SortColumns<'gatewayId' | 'name' | 'createdAt' | 'updatedAt'> = {
  fields: {
    gatewayId: 'gateway_id',
    name: 'name',
    createdAt: 'created_at',
    updatedAt: 'updated_at',
  },
  id: 'gateway_id',
  defaultField: 'gatewayId',
};

/** One stats report (Semtech `stat`, Basics Station equivalents): counters since the last report. */
export interface GatewayStatsReport extends GatewayCounters {
  receivedAt: IsoTimestamp;
  location?: GatewayLocationInput;
}

const COUNTERS = [
  'rxReceived',
  'rxReceivedOk',
  'rxForwarded',
  'txReceived',
  'txEmitted',
] as const satisfies readonly (keyof GatewayCounters)[];

export class GatewayRepository {
  readonly #database: GaletDatabase;
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#database = database;
    this.#db = database.db;
    this.#now = clock(options);
  }

  /** Errors: `INVALID_INPUT`, `ALREADY_EXISTS`, `MISSING_REFERENCE` (tenant), `QUOTA_EXCEEDED`. */
  async create(input: NewGateway): Promise<Gateway> {
    const gatewayId = toEui(input.gatewayId, 'gateway id');
    const location = input.location && toLocation(input.location);
    const now = this.#now();
    const shared = toDbBoolean(this.#database.dialect, input.shared ?? false);
    const row: Selectable<GatewaysTable> = {
      gateway_id: gatewayId,
      name: toName(input.name, 'gateway name'),
      latitude: location?.latitude ?? null,
      longitude: location?.longitude ?? null,
      altitude: location?.altitude ?? null,
      location_source: location ? 'configured' : null,
      last_seen_at: null,
      rx_received: 0,
      rx_received_ok: 0,
      rx_forwarded: 0,
      tx_received: 0,
      tx_emitted: 0,
      tenant_id: input.tenantId ?? null,
      shared,
      tags: toTagsText(input.tags),
      created_at: now,
      updated_at: now,
    };
    try {
      const tenantId = row.tenant_id;
      await this.#db.transaction().execute(async (trx) => {
        if (tenantId !== null) {
          await assertQuotaRoom(trx, this.#database.dialect, tenantId, 'gateways', 1);
        }
        await trx
          .insertInto('gateways')
          .values({ ...row, shared })
          .execute();
      });
    } catch (error) {
      if (constraintViolation(error) === 'unique') {
        throw new StorageError('ALREADY_EXISTS', `gateway ${gatewayId} exists already`, {
          cause: error,
        });
      }
      throw error;
    }
    return toGateway(row);
  }

  async get(gatewayId: string): Promise<Gateway | undefined> {
    const row = await this.#db
      .selectFrom('gateways')
      .selectAll()
      .where('gateway_id', '=', toEui(gatewayId, 'gateway id'))
      .executeTakeFirst();
    return row && toGateway(row);
  }

  /** Ordered by gateway id unless sorted otherwise (`GATEWAY_SORT`). */
  async list(options?: GatewayListOptions): Promise<Gateway[]> {
    if (!scopeAdmitsAny(options?.scope)) return [];
    const dialect = this.#database.dialect;
    let query = whereOwned(
      this.#db.selectFrom('gateways').selectAll(),
      options,
      { tenant: 'tenant_id', shared: 'shared' },
      dialect,
    );
    if (options?.shared !== undefined) {
      query = query.where('shared', '=', toDbBoolean(dialect, options.shared));
    }
    if (options?.tag !== undefined) query = query.where(tagEquals(dialect, 'tags', options.tag));
    const search = options?.search;
    if (search !== undefined) {
      query = query.where((eb) =>
        eb.or([containsText('name', search), containsText('gateway_id', search)]),
      );
    }
    const rows = await ordered(query, GATEWAY_SORT, options).execute();
    return rows.map(toGateway);
  }

  /**
   * Changes a gateway's configuration. Undefined when it does not exist; `MISSING_REFERENCE`
   * for an unknown tenant, `QUOTA_EXCEEDED` when the new tenant has no room.
   */
  async update(gatewayId: string, update: GatewayUpdate): Promise<Gateway | undefined> {
    const id = toEui(gatewayId, 'gateway id');
    const dialect = this.#database.dialect;
    const changes: Updateable<GatewaysTable> = {};
    if (update.name !== undefined) changes.name = toName(update.name, 'gateway name');
    if (update.location !== undefined) {
      const location = update.location && toLocation(update.location);
      changes.latitude = location?.latitude ?? null;
      changes.longitude = location?.longitude ?? null;
      changes.altitude = location?.altitude ?? null;
      changes.location_source = location ? 'configured' : null;
    }
    if (update.shared !== undefined) changes.shared = toDbBoolean(dialect, update.shared);
    if (update.tags !== undefined) changes.tags = toTagsText(update.tags);
    return this.#db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('gateways')
        .selectAll()
        .where('gateway_id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      if (update.tenantId !== undefined && update.tenantId !== row.tenant_id) {
        if (update.tenantId !== null) {
          await assertQuotaRoom(trx, dialect, update.tenantId, 'gateways', 1);
        }
        changes.tenant_id = update.tenantId;
      }
      if (Object.keys(changes).length === 0) return toGateway(row);
      const next = { ...row, ...changes, updated_at: this.#now() } as Selectable<GatewaysTable>;
      await trx
        .updateTable('gateways')
        .set({ ...changes, updated_at: next.updated_at })
        .where('gateway_id', '=', id)
        .execute();
      return toGateway(next);
    });
  }

  /** False when there was no such gateway. */
  async delete(gatewayId: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('gateways')
      .where('gateway_id', '=', toEui(gatewayId, 'gateway id'))
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /**
   * Telemetry, so updated_at (which tracks configuration) stays as it is.
   * Adds a report's counters, moves last_seen_at forward (never back, for reports that arrive
   * out of order) and takes the reported location unless an operator configured one.
   * One statement; false when the gateway is unknown.
   */
  async recordStats(gatewayId: string, report: GatewayStatsReport): Promise<boolean> {
    const id = toEui(gatewayId, 'gateway id');
    const receivedAt = toIsoTimestamp(report.receivedAt, 'receivedAt');
    for (const counter of COUNTERS) {
      assertInteger(report[counter], 0, Number.MAX_SAFE_INTEGER, counter);
    }
    const location = report.location && toLocation(report.location);
    const result = await this.#db
      .updateTable('gateways')
      .set((eb) => ({
        rx_received: eb('rx_received', '+', report.rxReceived),
        rx_received_ok: eb('rx_received_ok', '+', report.rxReceivedOk),
        rx_forwarded: eb('rx_forwarded', '+', report.rxForwarded),
        tx_received: eb('tx_received', '+', report.txReceived),
        tx_emitted: eb('tx_emitted', '+', report.txEmitted),
        last_seen_at: latest(eb, receivedAt),
        ...(location && {
          latitude: unlessConfigured(eb, 'latitude', location.latitude),
          longitude: unlessConfigured(eb, 'longitude', location.longitude),
          altitude: unlessConfigured(eb, 'altitude', location.altitude),
          location_source: eb
            .case()
            .when('location_source', '=', 'configured')
            .then(eb.val<LocationSource>('configured'))
            .else(eb.val<LocationSource>('gateway'))
            .end(),
        }),
      }))
      .where('gateway_id', '=', id)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Moves last_seen_at forward (never back). False when the gateway is unknown. */
  async touch(gatewayId: string, seenAt: IsoTimestamp): Promise<boolean> {
    const id = toEui(gatewayId, 'gateway id');
    const seen = toIsoTimestamp(seenAt, 'seenAt');
    const result = await this.#db
      .updateTable('gateways')
      .set((eb) => ({ last_seen_at: latest(eb, seen) }))
      .where('gateway_id', '=', id)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}

/** `max(last_seen_at, seen)` written portably (SQLite max() and PostgreSQL GREATEST differ on NULL). */
function latest(eb: ExpressionBuilder<Schema, 'gateways'>, seen: IsoTimestamp) {
  return eb
    .case()
    .when(eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', seen)]))
    .then(eb.val<string | null>(seen))
    .else(eb.ref('last_seen_at'))
    .end();
}

function unlessConfigured(
  eb: ExpressionBuilder<Schema, 'gateways'>,
  column: 'latitude' | 'longitude' | 'altitude',
  value: number | null,
) {
  return eb
    .case()
    .when('location_source', '=', 'configured')
    .then(eb.ref(column))
    .else(eb.val<number | null>(value))
    .end();
}

function toLocation(input: GatewayLocationInput): {
  latitude: number;
  longitude: number;
  altitude: number | null;
} {
  assertFiniteNumber(input.latitude, -90, 90, 'latitude');
  assertFiniteNumber(input.longitude, -180, 180, 'longitude');
  const altitude = input.altitude ?? null;
  if (altitude !== null) assertFiniteNumber(altitude, -20_000, 100_000, 'altitude');
  return { latitude: input.latitude, longitude: input.longitude, altitude };
}

function toGateway(row: Selectable<GatewaysTable>): Gateway {
  return {
    gatewayId: row.gateway_id,
    name: row.name,
    location:
      row.location_source !== null && row.latitude !== null && row.longitude !== null
        ? {
            latitude: row.latitude,
            longitude: row.longitude,
            altitude: row.altitude,
            source: row.location_source,
          }
        : null,
    lastSeenAt: row.last_seen_at,
    counters: {
      rxReceived: row.rx_received,
      rxReceivedOk: row.rx_received_ok,
      rxForwarded: row.rx_forwarded,
      txReceived: row.tx_received,
      txEmitted: row.tx_emitted,
    },
    tenantId: row.tenant_id,
    shared: fromDbBoolean(row.shared),
    tags: fromTagsText(row.tags),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
