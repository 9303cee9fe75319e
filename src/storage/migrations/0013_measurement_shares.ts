import type { Kysely, Migration } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { strictTables } from './column-types.js';

/**
 * Measurement shares (issue 6): an application shares chosen field paths of one of its devices
 * with another tenant (a commune), read-only. The share goes with its device, its application
 * and the receiving tenant (ON DELETE CASCADE). A device moved to another application keeps its
 * shares in the table, but they are inert: the repository serves a share only while its device
 * is in the share's application.
 */
export function measurementSharesMigration(dialect: DatabaseDialect): Migration {
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('measurement_shares')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('application_id', 'text', (c) =>
            c.notNull().references('applications.id').onDelete('cascade'),
          )
          .addColumn('dev_eui', 'text', (c) =>
            c.notNull().references('devices.dev_eui').onDelete('cascade'),
          )
          // The receiving tenant.
          .addColumn('tenant_id', 'text', (c) =>
            c.notNull().references('tenants.id').onDelete('cascade'),
          )
          // JSON text array of exact field paths.
          .addColumn('fields', 'text', (c) => c.notNull())
          .addColumn('note', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addUniqueConstraint('measurement_shares_device_tenant_key', [
            'application_id',
            'dev_eui',
            'tenant_id',
          ]),
      ).execute();
      // What a tenant receives, in creation order; also the tenant's cascade.
      await db.schema
        .createIndex('measurement_shares_tenant_idx')
        .on('measurement_shares')
        .columns(['tenant_id', 'created_at'])
        .execute();
      // The device's cascade (the unique key starts with the application).
      await db.schema
        .createIndex('measurement_shares_device_idx')
        .on('measurement_shares')
        .column('dev_eui')
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('measurement_shares').execute();
    },
  };
}
