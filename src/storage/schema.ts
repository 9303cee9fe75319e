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

/** How far a consumer of the event log got (0009). */
export interface ConsumerCursorsTable {
  name: string;
  last_event_id: Int64;
  updated_at: IsoTimestamp;
}

export interface ApplicationsTable {
  id: string;
  name: string;
  /** The owner (0008); null: no tenant, seen only by global principals. */
  tenant_id: string | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
  /** Measurements (0010): days raw events are kept; null: forever. */
  events_retention_days: number | null;
  /** Measurements (0010): days measurements are kept; null: forever. */
  measurements_retention_days: number | null;
  /** Measurements (0010): JSON text array of the field paths dropped before storing. */
  drop_fields: ColumnType<string, string | undefined, string>;
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
  /** The owner (0008); null: the operator's, seen only by global principals (unless shared). */
  tenant_id: string | null;
  /** Visible read-only to every tenant (0008). */
  shared: DbBoolean;
  /** JSON text (0008): an object of strings. */
  tags: string;
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
  /** Its application's tenant (0008), kept equal by the repositories. */
  tenant_id: string | null;
  /** JSON text (0008): an object of strings. */
  tags: string;
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
  /** The owner (0008); null: the operator's catalogue, readable by every tenant. */
  tenant_id: string | null;
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
  /** Operator-blind (0012): `data` is encrypted for this counter and session key id. */
  encrypted_f_cnt_down: Int64 | null;
  encrypted_session_key_id: string | null;
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

/** Platform (0004): what kind of organisation a tenant is. */
export type TenantKind = 'operator' | 'commune' | 'provider';
/** Platform (0004): a role within one tenant, or 'integration' within one application. */
export type MembershipRole = 'owner' | 'admin' | 'operator' | 'viewer' | 'integration';
/** Platform (0004): an API key's role; 'operator-admin' keys are global (no tenant). */
export type ApiKeyRole = MembershipRole | 'operator-admin';
/** 'anonymous': an unauthenticated request (a failed login). */
export type AuditActorType = 'user' | 'api-key' | 'admin-token' | 'system' | 'anonymous';
export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface TenantsTable {
  id: string;
  name: string;
  kind: TenantKind;
  max_devices: number | null;
  max_gateways: number | null;
  /** JSON text: time zone, location, retention periods (tenants.ts). */
  settings: string;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface UsersTable {
  id: string;
  /** Lower-case, trimmed. */
  email: string;
  /** argon2id PHC string. */
  password_hash: string;
  operator_admin: DbBoolean;
  disabled: DbBoolean;
  /** SecretBox-sealed TOTP secret, associated data `user:<id>:totp_secret`; null: no second factor. */
  totp_secret_enc: Bytes | null;
  /** A TOTP secret being enrolled (not yet confirmed), associated data `user:<id>:totp_pending`. */
  totp_pending_enc: Bytes | null;
  /** The last TOTP time step accepted: a step is never accepted twice. */
  totp_last_step: Int64 | null;
  last_login_at: IsoTimestamp | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export interface MembershipsTable {
  user_id: string;
  tenant_id: string;
  role: MembershipRole;
  /** The application of an 'integration' membership; null for the tenant roles. */
  application_id: string | null;
  created_at: IsoTimestamp;
}

export interface ApiKeysTable {
  /** Non-secret key id (16 hex digits), also written in the token. */
  id: string;
  name: string;
  tenant_id: string | null;
  application_id: string | null;
  role: ApiKeyRole;
  read_only: DbBoolean;
  /** SHA-256 of the whole token. */
  secret_hash: Bytes;
  /** Who created it, as the audit log names actors (`user:<id>`, `api-key:<id>`, `admin-token`). */
  created_by: string | null;
  expires_at: IsoTimestamp | null;
  revoked_at: IsoTimestamp | null;
  last_used_at: IsoTimestamp | null;
  created_at: IsoTimestamp;
}

export interface ConsoleSessionsTable {
  /** SHA-256 of the session token, lower-case hex. */
  id_hash: string;
  user_id: string;
  created_at: IsoTimestamp;
  expires_at: IsoTimestamp;
  last_seen_at: IsoTimestamp;
  /** The OIDC provider of the login (0015); null for a password login. */
  oidc_issuer: ColumnType<string | null, string | null | undefined, string | null>;
  /** The ID token's `sub`. */
  oidc_subject: ColumnType<string | null, string | null | undefined, string | null>;
  /** SHA-256 of the ID token's `sid`, hex; null when it had none. */
  oidc_sid_hash: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Logout tokens accepted (0015), until they would be refused as too old anyway. */
export interface OidcLogoutTokensTable {
  /** SHA-256 of `<issuer>\n<jti>`, hex. */
  token_hash: string;
  expires_at: IsoTimestamp;
}

export interface AuditLogTable {
  id: Generated<Int64>;
  time: IsoTimestamp;
  actor_type: AuditActorType;
  actor_id: string | null;
  actor_tenant_id: string | null;
  action: string;
  object_type: string;
  object_id: string | null;
  tenant_id: string | null;
  /** A second tenant whose owners and admins see the entry too (0015). */
  related_tenant_id: ColumnType<string | null, string | null | undefined, string | null>;
  source_ip: string | null;
  outcome: AuditOutcome;
  /** JSON text, never a secret. */
  details: string;
}

/** Provider link outbox (0005): per link, the last seq given out and the last one acknowledged. */
export interface LinkOutboxCursorsTable {
  link_id: string;
  last_seq: Int64;
  acked_seq: Int64;
  updated_at: IsoTimestamp;
}

/** Provider link outbox (0005): a delivery waiting for the provider's ack. */
export interface LinkOutboxTable {
  link_id: string;
  seq: Int64;
  topic: string;
  /** JSON text. */
  body: string;
  created_at: IsoTimestamp;
}

/** Provider link tokens (0007): a provider's credential for its application's link. */
export interface LinkTokensTable {
  id: string;
  application_id: string;
  name: string;
  /** SHA-256 of the token, hex. */
  token_hash: string;
  /** The link KEK, sealed under the master key. */
  kek_enc: Bytes;
  created_at: IsoTimestamp;
  last_used_at: IsoTimestamp | null;
  revoked_at: IsoTimestamp | null;
}

/** Webhooks (0011): an application's HTTP endpoint for its events. */
export interface WebhooksTable {
  id: string;
  application_id: string;
  url: string;
  /** The HMAC secret (UTF-8), sealed with associated data `webhook:<id>:secret`. */
  secret_enc: Bytes;
  /** JSON object of extra headers, sealed with `webhook:<id>:headers`; null: none. */
  headers_enc: Bytes | null;
  /** JSON array of the extra headers' names (shown; the values are not). */
  header_names: string;
  /** JSON array of event types delivered; empty: every type. */
  event_types: string;
  enabled: DbBoolean;
  /** The last event id when it was created: the dispatcher queues the events after it. */
  after_event_id: Int64;
  last_error: string | null;
  last_error_status: number | null;
  last_error_at: IsoTimestamp | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'dead';

/** Webhooks (0011): the outbox, one row per webhook and event. */
export interface WebhookDeliveriesTable {
  webhook_id: string;
  event_id: Int64;
  dev_eui: string;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  /** When the next attempt is due; while a request is in flight, the end of its lease. */
  next_attempt_at: IsoTimestamp;
  /** When it was queued or last replayed: the dead-letter age counts from here. */
  queued_at: IsoTimestamp;
  last_error: string | null;
  last_http_status: number | null;
  created_at: IsoTimestamp;
  delivered_at: IsoTimestamp | null;
  dead_at: IsoTimestamp | null;
}

/** Measurements (0010): one value of a decoded uplink; partitioned by month on PostgreSQL. */
export interface MeasurementsTable {
  dev_eui: string;
  application_id: string;
  /** Epoch milliseconds (UTC). */
  time_ms: Int64;
  /** The field path in the decoded object (`sensors.0.value`). */
  field: string;
  /** Exactly one of number_value and text_value is set; booleans are 0/1 numbers. */
  number_value: number | null;
  text_value: string | null;
  event_id: Int64;
}

/** Measurement shares (0013): field paths of one device shared with another tenant, read-only. */
export interface MeasurementSharesTable {
  id: string;
  /** The provider's application, which the device must still be in for the share to serve. */
  application_id: string;
  dev_eui: string;
  /** The receiving tenant. */
  tenant_id: string;
  /** JSON text array of exact field paths. */
  fields: string;
  note: string | null;
  created_at: IsoTimestamp;
  /** Who created it, as the audit log names actors (`user:<id>`, `api-key:<id>`, `admin-token`). */
  created_by: string | null;
}

/**
 * The provider's downlink keystream memory (0014): the sessions of a device it keeps the memory
 * of (the latest its join server issued), and each counter's queue item.
 */
export interface DownlinkKeystreamSessionsTable {
  session_key_id: string;
  dev_eui: string;
  /** Every counter below it counts as used. */
  f_cnt_down_floor: ColumnType<Int64, Int64 | undefined, Int64>;
  started_at: IsoTimestamp;
}

export interface DownlinkKeystreamsTable {
  session_key_id: string;
  f_cnt_down: Int64;
  queue_item_id: string;
  created_at: IsoTimestamp;
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
  consumer_cursors: ConsumerCursorsTable;
  tenants: TenantsTable;
  users: UsersTable;
  memberships: MembershipsTable;
  api_keys: ApiKeysTable;
  console_sessions: ConsoleSessionsTable;
  audit_log: AuditLogTable;
  oidc_logout_tokens: OidcLogoutTokensTable;
  link_outbox_cursors: LinkOutboxCursorsTable;
  link_outbox: LinkOutboxTable;
  link_tokens: LinkTokensTable;
  measurements: MeasurementsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  measurement_shares: MeasurementSharesTable;
  downlink_keystream_sessions: DownlinkKeystreamSessionsTable;
  downlink_keystreams: DownlinkKeystreamsTable;
}

/** The two engines Galet stores its state in. */
export type DatabaseDialect = 'sqlite' | 'postgres';
