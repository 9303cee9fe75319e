import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * The platform: tenants (the operator, communes, service providers) with quotas and settings,
 * users and their memberships (a role per tenant, or an application-scoped integration role),
 * API keys (stored as a SHA-256 of the token, found by their non-secret id), console sessions
 * (stored as a SHA-256 of the token) and the append-only audit log.
 *
 * The audit log has no foreign keys on purpose: an entry outlives the tenant, user or key it
 * names.
 */
export function platformMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('tenants')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) =>
            c.notNull().check(sql`kind in ('operator', 'commune', 'provider')`),
          )
          .addColumn('max_devices', 'integer', (c) => c.check(sql`max_devices >= 0`))
          .addColumn('max_gateways', 'integer', (c) => c.check(sql`max_gateways >= 0`))
          .addColumn('settings', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();

      await strict(
        db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('email', 'text', (c) => c.notNull().unique())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('operator_admin', t.boolean, (c) => c.notNull())
          .addColumn('disabled', t.boolean, (c) => c.notNull())
          .addColumn('totp_secret_enc', t.bytes)
          .addColumn('totp_pending_enc', t.bytes)
          .addColumn('totp_last_step', t.int64)
          .addColumn('last_login_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();

      await strict(
        db.schema
          .createTable('memberships')
          .addColumn('user_id', 'text', (c) =>
            c.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('tenant_id', 'text', (c) =>
            c.notNull().references('tenants.id').onDelete('cascade'),
          )
          .addColumn('role', 'text', (c) =>
            c.notNull().check(sql`role in ('owner', 'admin', 'operator', 'viewer', 'integration')`),
          )
          .addColumn('application_id', 'text', (c) =>
            c.references('applications.id').onDelete('cascade'),
          )
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('memberships_pk', ['user_id', 'tenant_id'])
          .addCheckConstraint(
            'memberships_scope_check',
            sql`(role = 'integration') = (application_id is not null)`,
          ),
      ).execute();
      await db.schema
        .createIndex('memberships_tenant_idx')
        .on('memberships')
        .columns(['tenant_id', 'user_id'])
        .execute();

      await strict(
        db.schema
          .createTable('api_keys')
          // The non-secret key id, also written in the token: one indexed read per request.
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('tenant_id', 'text', (c) => c.references('tenants.id').onDelete('cascade'))
          .addColumn('application_id', 'text', (c) =>
            c.references('applications.id').onDelete('cascade'),
          )
          .addColumn('role', 'text', (c) =>
            c
              .notNull()
              .check(
                sql`role in ('owner', 'admin', 'operator', 'viewer', 'integration', 'operator-admin')`,
              ),
          )
          .addColumn('read_only', t.boolean, (c) => c.notNull())
          .addColumn('secret_hash', t.bytes, (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('expires_at', 'text')
          .addColumn('revoked_at', 'text')
          .addColumn('last_used_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addCheckConstraint(
            'api_keys_scope_check',
            sql`(role = 'operator-admin' and tenant_id is null and application_id is null)
              or (role = 'integration' and application_id is not null)
              or (role in ('owner', 'admin', 'operator', 'viewer')
                  and tenant_id is not null and application_id is null)`,
          ),
      ).execute();
      await db.schema
        .createIndex('api_keys_tenant_idx')
        .on('api_keys')
        .columns(['tenant_id', 'created_at'])
        .execute();

      await strict(
        db.schema
          .createTable('console_sessions')
          // SHA-256 of the session token, hex: the token itself is never stored.
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'text', (c) =>
            c.notNull().references('users.id').onDelete('cascade'),
          )
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('last_seen_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('console_sessions_user_idx')
        .on('console_sessions')
        .column('user_id')
        .execute();
      await db.schema
        .createIndex('console_sessions_expires_idx')
        .on('console_sessions')
        .column('expires_at')
        .execute();

      await strict(
        db.schema
          .createTable('audit_log')
          .addColumn('id', t.int64, (c) =>
            dialect === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : // AUTOINCREMENT: an id is never reused, so it can serve as a cursor.
                c.primaryKey().autoIncrement(),
          )
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('actor_type', 'text', (c) =>
            c
              .notNull()
              .check(sql`actor_type in ('user', 'api-key', 'admin-token', 'system', 'anonymous')`),
          )
          .addColumn('actor_id', 'text')
          .addColumn('actor_tenant_id', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('object_type', 'text', (c) => c.notNull())
          .addColumn('object_id', 'text')
          .addColumn('tenant_id', 'text')
          .addColumn('source_ip', 'text')
          .addColumn('outcome', 'text', (c) =>
            c.notNull().check(sql`outcome in ('success', 'failure', 'denied')`),
          )
          .addColumn('details', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('audit_log_tenant_idx')
        .on('audit_log')
        .columns(['tenant_id', 'id'])
        .execute();
      await db.schema
        .createIndex('audit_log_actor_idx')
        .on('audit_log')
        .columns(['actor_id', 'id'])
        .execute();
      await db.schema.createIndex('audit_log_time_idx').on('audit_log').column('time').execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      for (const table of [
        'audit_log',
        'console_sessions',
        'api_keys',
        'memberships',
        'users',
        'tenants',
      ]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
