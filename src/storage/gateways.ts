import type { ExpressionBuilder, Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import type { GatewaysTable, IsoTimestamp, LocationSource, Schema } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertFiniteNumber,
  assertInteger,
  clock,
  type ListOptions,
  page,
  type RepositoryOptions,
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
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewGateway {
  gatewayId: string;
  name: string;
  /** A location set here is 'configured': reports from the gateway do not replace it. */
  location?: GatewayLocationInput;
}

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
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  async create(input: NewGateway): Promise<Gateway> {
    const gatewayId = toEui(input.gatewayId, 'gateway id');
    const location = input.location && toLocation(input.location);
    const now = this.#now();
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
      created_at: now,
      updated_at: now,
    };
    try {
      await this.#db.insertInto('gateways').values(row).execute();
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

  /** Ordered by gateway id. */
  async list(options?: ListOptions): Promise<Gateway[]> {
    const { limit, offset } = page(options);
    const rows = await this.#db
      .selectFrom('gateways')
      .selectAll()
      .orderBy('gateway_id')
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map(toGateway);
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
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
