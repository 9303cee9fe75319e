import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { strictTables } from './column-types.js';

/**
 * The MAC layer: device profiles (ADR, receive windows, channels, status requests, confirmed
 * downlink policy, as one JSON settings document validated by the API), the profile a device
 * uses, and the MAC state the network keeps per session (the device's current settings and the
 * MAC requests still waiting for an answer), as JSON. And, for the join server, the RJcount1 of
 * the last accepted LoRaWAN 1.1 type-1 RejoinRequest (its replay protection).
 */
export function macLayerMigration(dialect: DatabaseDialect): Migration {
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('device_profiles')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('region', 'text', (c) => c.notNull())
          .addColumn('settings', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .alterTable('devices')
        .addColumn('device_profile_id', 'text', (c) =>
          c.references('device_profiles.id').onDelete('restrict'),
        )
        .execute();
      await db.schema
        .createIndex('devices_device_profile_idx')
        .on('devices')
        .column('device_profile_id')
        .execute();
      await db.schema.alterTable('device_sessions').addColumn('mac_state', 'text').execute();
      await db.schema
        .alterTable('devices')
        .addColumn('rj_count1', 'integer', (c) => c.check(sql`rj_count1 between 0 and 65535`))
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('devices').dropColumn('rj_count1').execute();
      await db.schema.alterTable('device_sessions').dropColumn('mac_state').execute();
      await db.schema.dropIndex('devices_device_profile_idx').execute();
      await db.schema.alterTable('devices').dropColumn('device_profile_id').execute();
      await db.schema.dropTable('device_profiles').execute();
    },
  };
}
