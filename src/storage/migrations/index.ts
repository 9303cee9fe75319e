import type { Migration, MigrationProvider } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { initialMigration } from './0001_initial.js';
import { awaitingAckMigration } from './0002_awaiting_ack.js';
import { macLayerMigration } from './0003_mac_layer.js';
import { platformMigration } from './0004_platform.js';
import { linkOutboxMigration } from './0005_link_outbox.js';
import { linkTokensMigration } from './0007_link_tokens.js';
import { tenancyMigration } from './0008_tenancy.js';
import { consumerCursorsMigration } from './0009_consumer_cursors.js';
import { measurementsMigration } from './0010_measurements.js';
import { webhooksMigration } from './0011_webhooks.js';
import { blindDownlinksMigration } from './0012_blind_downlinks.js';
import { measurementSharesMigration } from './0013_measurement_shares.js';
import { downlinkKeystreamsMigration } from './0014_downlink_keystreams.js';
import { oidcLogoutSharedReadsMigration } from './0015_oidc_logout_shared_reads.js';

/**
 * Every migration, in order. Names are `NNNN_what`: Kysely applies them in name order and
 * refuses to start if the database holds a migration this list does not know (a newer Galet
 * migrated it). To add one, see README.md.
 */
export function migrations(dialect: DatabaseDialect): Record<string, Migration> {
  return {
    '0001_initial': initialMigration(dialect),
    '0002_awaiting_ack': awaitingAckMigration(dialect),
    '0003_mac_layer': macLayerMigration(dialect),
    '0004_platform': platformMigration(dialect),
    '0005_link_outbox': linkOutboxMigration(dialect),
    '0007_link_tokens': linkTokensMigration(dialect),
    // 0006 is not used: 0007 was released first, and a migration may not sort before one a
    // database already ran (Kysely refuses unordered migrations).
    '0008_tenancy': tenancyMigration(dialect),
    '0009_consumer_cursors': consumerCursorsMigration(dialect),
    '0010_measurements': measurementsMigration(dialect),
    '0011_webhooks': webhooksMigration(dialect),
    '0012_blind_downlinks': blindDownlinksMigration(dialect),
    '0013_measurement_shares': measurementSharesMigration(dialect),
    '0014_downlink_keystreams': downlinkKeystreamsMigration(dialect),
    '0015_oidc_logout_shared_reads': oidcLogoutSharedReadsMigration(dialect),
  };
}

export function migrationProvider(dialect: DatabaseDialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
