/**
 * The storage layer: one typed query layer (Kysely) over SQLite and PostgreSQL. Open a database
 * with `openDatabase`, load the master key into a `SecretBox`, then `createStorage`.
 */
import { ApplicationRepository } from './applications.js';
import type { GaletDatabase } from './database.js';
import { DevNonceRepository } from './dev-nonces.js';
import { DeviceProfileRepository } from './device-profiles.js';
import { DeviceSessionRepository } from './device-sessions.js';
import { DeviceRepository } from './devices.js';
import { DownlinkQueueRepository } from './downlink-queue.js';
import { EventRepository } from './events.js';
import { GatewayRepository } from './gateways.js';
import type { SecretBox } from './secret-box.js';
import { UplinkCommitRepository } from './uplink-commits.js';
import type { RepositoryOptions } from './values.js';

export * from './applications.js';
export * from './database.js';
export * from './dev-nonces.js';
export * from './device-profiles.js';
export * from './device-sessions.js';
export * from './devices.js';
export * from './downlink-queue.js';
export * from './errors.js';
export * from './events.js';
export * from './gateways.js';
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
export * from './uplink-commits.js';
export type { ListOptions, RepositoryOptions } from './values.js';

export interface Storage {
  readonly database: GaletDatabase;
  readonly applications: ApplicationRepository;
  readonly gateways: GatewayRepository;
  readonly devices: DeviceRepository;
  readonly deviceProfiles: DeviceProfileRepository;
  readonly deviceSessions: DeviceSessionRepository;
  readonly devNonces: DevNonceRepository;
  readonly downlinkQueue: DownlinkQueueRepository;
  readonly events: EventRepository;
  readonly uplinkCommits: UplinkCommitRepository;
}

export function createStorage(
  database: GaletDatabase,
  secrets: SecretBox,
  options?: RepositoryOptions,
): Storage {
  return {
    database,
    applications: new ApplicationRepository(database, secrets, options),
    gateways: new GatewayRepository(database, secrets, options),
    devices: new DeviceRepository(database, secrets, options),
    deviceProfiles: new DeviceProfileRepository(database, secrets, options),
    deviceSessions: new DeviceSessionRepository(database, secrets, options),
    devNonces: new DevNonceRepository(database, secrets, options),
    downlinkQueue: new DownlinkQueueRepository(database, secrets, options),
    events: new EventRepository(database, secrets, options),
    uplinkCommits: new UplinkCommitRepository(database, secrets, options),
  };
}
