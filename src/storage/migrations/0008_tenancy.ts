import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes } from './column-types.js';

/**
 * Tenancy (issue 6): applications, gateways, devices and device profiles belong to a tenant.
 *
 * `tenant_id` is nullable: rows written before this migration (and rows the operator creates
 * without a tenant) belong to no tenant. Only global principals (the admin token,
 * operator-admin) see such applications, gateways and devices; a device profile without a
 * tenant is the operator's catalogue, readable by every tenant (api/routes/device-profiles.ts).
 * A device's tenant is its application's, copied here so that lists and quotas filter on one
 * indexed column; the repositories keep the two equal.
 *
 * A tenant with objects cannot be deleted (`restrict`): its objects are moved or deleted first.
 * Gateways get a `shared` flag (read-only to every tenant) and tags; devices get tags. Tags are a
 * JSON object of strings, as text.
 */
export function tenancyMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const no = dialect === 'postgres' ? sql`false` : sql`0`;
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      for (const table of ['applications', 'gateways', 'devices', 'device_profiles']) {
        await db.schema
          .alterTable(table)
          .addColumn('tenant_id', 'text', (c) => c.references('tenants.id').onDelete('restrict'))
          .execute();
      }
      await db.schema
        .alterTable('gateways')
        .addColumn('shared', t.boolean, (c) => c.notNull().defaultTo(no))
        .execute();
      for (const table of ['gateways', 'devices']) {
        await db.schema
          .alterTable(table)
          .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
          .execute();
      }
      await db.schema
        .createIndex('applications_tenant_idx')
        .on('applications')
        .columns(['tenant_id', 'created_at'])
        .execute();
      await db.schema
        .createIndex('gateways_tenant_idx')
        .on('gateways')
        .columns(['tenant_id', 'gateway_id'])
        .execute();
      await db.schema
        .createIndex('devices_tenant_idx')
        .on('devices')
        .columns(['tenant_id', 'dev_eui'])
        .execute();
      await db.schema
        .createIndex('device_profiles_tenant_idx')
        .on('device_profiles')
        .columns(['tenant_id', 'created_at'])
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      for (const index of [
        'device_profiles_tenant_idx',
        'devices_tenant_idx',
        'gateways_tenant_idx',
        'applications_tenant_idx',
      ]) {
        await db.schema.dropIndex(index).execute();
      }
      for (const table of ['gateways', 'devices']) {
        await db.schema.alterTable(table).dropColumn('tags').execute();
      }
      await db.schema.alterTable('gateways').dropColumn('shared').execute();
      for (const table of ['device_profiles', 'devices', 'gateways', 'applications']) {
        await db.schema.alterTable(table).dropColumn('tenant_id').execute();
      }
    },
  };
}
