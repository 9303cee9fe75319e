/**
 * The storage layer: one typed query layer (Kysely) over SQLite and PostgreSQL. Open a database
 * with `openDatabase`, load the master key into a `SecretBox`, then `createStorage`.
 */
import { ApiKeyRepository } from './api-keys.js';
import { ApplicationRepository } from './applications.js';
import { AuditLogRepository } from './audit-log.js';
import { ConsoleSessionRepository } from './console-sessions.js';
import { ConsumerCursorRepository } from './consumer-cursors.js';
import type { GaletDatabase } from './database.js';
import { DevNonceRepository } from './dev-nonces.js';
import { DeviceProfileRepository } from './device-profiles.js';
import { DeviceSessionRepository } from './device-sessions.js';
import { DeviceRepository } from './devices.js';
import { DownlinkKeystreamRepository } from './downlink-keystreams.js';
import { DownlinkQueueRepository } from './downlink-queue.js';
import { EventRepository } from './events.js';
import { GatewayRepository } from './gateways.js';
import { LinkOutboxRepository } from './link-outbox.js';
import { LinkTokenRepository } from './link-tokens.js';
import { MeasurementShareRepository } from './measurement-shares.js';
import { MeasurementRepository } from './measurements.js';
import { MembershipRepository } from './memberships.js';
import type { SecretBox } from './secret-box.js';
import { TenantRepository } from './tenants.js';
import { type UplinkCommitOptions, UplinkCommitRepository } from './uplink-commits.js';
import { UserRepository } from './users.js';
import type { RepositoryOptions } from './values.js';
import { WebhookRepository } from './webhooks.js';

export * from './api-keys.js';
export * from './applications.js';
export * from './audit-log.js';
export * from './console-sessions.js';
export * from './consumer-cursors.js';
export * from './database.js';
export * from './dev-nonces.js';
export * from './device-profiles.js';
export * from './device-sessions.js';
export * from './devices.js';
export * from './downlink-keystreams.js';
export * from './downlink-queue.js';
export * from './errors.js';
export * from './events.js';
export * from './gateways.js';
export * from './link-outbox.js';
export * from './link-tokens.js';
export * from './listing.js';
export * from './measurement-shares.js';
export * from './measurements.js';
export * from './memberships.js';
export * from './quotas.js';
export type {
  Activation,
  DatabaseDialect,
  DeviceClass,
  DownlinkStatus,
  IsoTimestamp,
  LocationSource,
  MacVersion,
} from './schema.js';
export * from './secret-box.js';
export * from './tenants.js';
export * from './uplink-commits.js';
export * from './users.js';
export type { ListOptions, RepositoryOptions } from './values.js';
export { checkpointCounters, checkpointThreadGauge } from './wal-checkpointer.js';
export * from './webhooks.js';

export interface Storage {
  readonly database: GaletDatabase;
  readonly applications: ApplicationRepository;
  readonly gateways: GatewayRepository;
  readonly devices: DeviceRepository;
  readonly deviceProfiles: DeviceProfileRepository;
  readonly deviceSessions: DeviceSessionRepository;
  readonly devNonces: DevNonceRepository;
  readonly downlinkQueue: DownlinkQueueRepository;
  /** The provider's memory of downlink keystreams (operator-blind downlinks). */
  readonly downlinkKeystreams: DownlinkKeystreamRepository;
  readonly events: EventRepository;
  readonly uplinkCommits: UplinkCommitRepository;
  readonly tenants: TenantRepository;
  readonly users: UserRepository;
  readonly memberships: MembershipRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly consoleSessions: ConsoleSessionRepository;
  readonly auditLog: AuditLogRepository;
  readonly linkOutbox: LinkOutboxRepository;
  readonly linkTokens: LinkTokenRepository;
  readonly measurements: MeasurementRepository;
  readonly consumerCursors: ConsumerCursorRepository;
  readonly webhooks: WebhookRepository;
  readonly measurementShares: MeasurementShareRepository;
}

export function createStorage(
  database: GaletDatabase,
  secrets: SecretBox,
  options?: RepositoryOptions & UplinkCommitOptions,
): Storage {
  const uplinkCommits = new UplinkCommitRepository(database, secrets, options);
  return {
    database,
    applications: new ApplicationRepository(database, secrets, options),
    gateways: new GatewayRepository(database, secrets, options),
    devices: new DeviceRepository(database, secrets, {
      ...options,
      pendingLastSeen: (devEui) => uplinkCommits.pendingLastSeen(devEui),
    }),
    deviceProfiles: new DeviceProfileRepository(database, secrets, options),
    deviceSessions: new DeviceSessionRepository(database, secrets, {
      ...options,
      pendingCounter: (devEui) => uplinkCommits.pendingCounter(devEui),
      sessionWritten: (devEui) => uplinkCommits.sessionWritten(devEui),
    }),
    devNonces: new DevNonceRepository(database, secrets, options),
    downlinkQueue: new DownlinkQueueRepository(database, secrets, options),
    downlinkKeystreams: new DownlinkKeystreamRepository(database, secrets, options),
    events: new EventRepository(database, secrets, options),
    uplinkCommits,
    tenants: new TenantRepository(database, secrets, options),
    users: new UserRepository(database, secrets, options),
    memberships: new MembershipRepository(database, secrets, options),
    apiKeys: new ApiKeyRepository(database, secrets, options),
    consoleSessions: new ConsoleSessionRepository(database, secrets, options),
    auditLog: new AuditLogRepository(database, secrets, options),
    linkOutbox: new LinkOutboxRepository(database, secrets, options),
    linkTokens: new LinkTokenRepository(database, secrets, options),
    measurements: new MeasurementRepository(database, secrets, options),
    consumerCursors: new ConsumerCursorRepository(database, secrets, options),
    webhooks: new WebhookRepository(database, secrets, options),
    measurementShares: new MeasurementShareRepository(database, secrets, options),
  };
}
