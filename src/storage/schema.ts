import type { ColumnType, Generated } from 'kysely';

/**
 * Row types of every table, as Kysely sees them. These are the storage layer's own business:
 * repositories turn them into the camelCase domain types of `index.ts`, and nothing outside
 * `src/storage/` should import them.
 *
 * Portable column choices (see README.md): the same TypeScript type reads the same way from
 * SQLite and PostgreSQL, except booleans, which only the repositories convert.
 */

/** ISO-8601 UTC text, `2025-01-31T12:00:00.000Z`: sorts as text the way it sorts as time. */
export type IsoTimestamp = string;

/**
 * A boolean column: `integer` 0/1 in SQLite (better-sqlite3 cannot bind a JS boolean), `boolean`
 * in PostgreSQL. Write it with `toDbBoolean`, read it with `fromDbBoolean` (values.ts).
 */
export type DbBoolean = ColumnType<boolean | number, boolean | 0 | 1, boolean | 0 | 1>;

/** `blob` in SQLite, `bytea` in PostgreSQL. Both drivers return a Buffer. */
export type Bytes = Uint8Array;

/**
 * An integer that may exceed 2^31 (DevAddr, 32-bit counters): `integer` in SQLite (64-bit),
 * `bigint` in PostgreSQL, read back as a JS number (the pg pool parses int8 as a number).
 */
export type Int64 = number;

export type MacVersion = '1.0.2' | '1.0.3' | '1.0.4' | '1.1.0';
export type DeviceClass = 'A' | 'C';
export type Activation = 'otaa' | 'abp';
export type LocationSource = 'configured' | 'gateway';
export type DownlinkStatus = 'pending' | 'sent' | 'acked' | 'failed' | 'expired';

export interface ApplicationsTable {
  id: string;
  name: string;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface GatewaysTable {
  /** Gateway EUI, lower-case hex. */
  gateway_id: string;
  name: string;
  latitude: number | null;
  longitude: number | null;
  altitude: number | null;
  location_source: LocationSource | null;
  last_seen_at: IsoTimestamp | null;
  rx_received: Int64;
  rx_received_ok: Int64;
  rx_forwarded: Int64;
  tx_received: Int64;
  tx_emitted: Int64;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface DevicesTable {
  dev_eui: string;
  join_eui: string;
  name: string;
  application_id: string;
  mac_version: MacVersion;
  device_class: DeviceClass;
  activation: Activation;
  /** SecretBox-sealed AppKey, associated data `device:<devEui>:app_key`. */
  app_key_enc: Bytes | null;
  /** SecretBox-sealed NwkKey (LoRaWAN 1.1), associated data `device:<devEui>:nwk_key`. */
  nwk_key_enc: Bytes | null;
  /** The last JoinNonce issued (join server side); 0 before the first join. */
  join_nonce: number;
  last_seen_at: IsoTimestamp | null;
  /** RJcount1 of the last accepted LoRaWAN 1.1 type-1 RejoinRequest (0003); null before one. */
  rj_count1: number | null;
  /** The device profile (0003); null: the server's default settings. */
  device_profile_id: string | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface DeviceProfilesTable {
  id: string;
  name: string;
  /** Regional parameters the profile is for ('EU868'). */
  region: string;
  /** JSON text: the profile's settings (API schema in api/routes/device-profiles.ts). */
  settings: string;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface DeviceSessionsTable {
  dev_eui: string;
  dev_addr: Int64;
  mac_version: MacVersion;
  /** SecretBox-sealed session keys (see device-sessions.ts), associated data `device_session:<devEui>:keys`. */
  keys_enc: Bytes;
  /** Last accepted 32-bit uplink counter; null before the first uplink of the session. */
  f_cnt_up: Int64 | null;
  /** Next NFCntDown (1.1) or FCntDown (1.0) to use. */
  n_f_cnt_down: Int64;
  /** Next AFCntDown to use (1.1 only). */
  a_f_cnt_down: Int64;
  rx1_delay_s: number;
  rx1_dr_offset: number;
  rx2_dr: number;
  rx2_frequency_hz: Int64;
  /** The confirmed downlink the device has yet to acknowledge (0002): queue item and FCntDown. */
  awaiting_ack_item_id: string | null;
  awaiting_ack_f_cnt_down: Int64 | null;
  /** JSON text (0003): the device's MAC settings and pending MAC requests; null before any. */
  mac_state: string | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface DevNoncesTable {
  dev_eui: string;
  dev_nonce: number;
  created_at: IsoTimestamp;
}

export interface DownlinkQueueTable {
  /** Time-ordered UUID (ids.ts): ties on created_at keep enqueue order. */
  id: string;
  dev_eui: string;
  f_port: number;
  data: Bytes;
  confirmed: DbBoolean;
  status: DownlinkStatus;
  f_cnt_down: Int64 | null;
  attempts: number;
  last_error: string | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface EventsTable {
  id: Generated<Int64>;
  dev_eui: string;
  application_id: string;
  type: string;
  time: IsoTimestamp;
  /** JSON text. */
  body: string;
}

export interface Schema {
  applications: ApplicationsTable;
  gateways: GatewaysTable;
  devices: DevicesTable;
  device_profiles: DeviceProfilesTable;
  device_sessions: DeviceSessionsTable;
  dev_nonces: DevNoncesTable;
  downlink_queue: DownlinkQueueTable;
  events: EventsTable;
}

/** The two engines Galet stores its state in. */
export type DatabaseDialect = 'sqlite' | 'postgres';
