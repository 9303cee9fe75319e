import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * HTTP webhooks per application (issue 7): the webhooks, their secrets and extra headers sealed
 * under the master key, and the durable outbox of deliveries (one row per webhook and event).
 * Deliveries refer to events by id without a foreign key: retention may purge an event first,
 * and the sender dead-letters such a delivery.
 */
export function webhooksMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('webhooks')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('application_id', 'text', (c) =>
            c.notNull().references('applications.id').onDelete('cascade'),
          )
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('secret_enc', t.bytes, (c) => c.notNull())
          .addColumn('headers_enc', t.bytes)
          .addColumn('header_names', 'text', (c) => c.notNull())
          .addColumn('event_types', 'text', (c) => c.notNull())
          .addColumn('enabled', t.boolean, (c) => c.notNull())
          // The last event id when it was created: it receives the events stored after that.
          .addColumn('after_event_id', t.int64, (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('last_error_status', 'integer')
          .addColumn('last_error_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('webhooks_application_idx')
        .on('webhooks')
        .column('application_id')
        .execute();
      await strict(
        db.schema
          .createTable('webhook_deliveries')
          .addColumn('webhook_id', 'text', (c) =>
            c.notNull().references('webhooks.id').onDelete('cascade'),
          )
          .addColumn('event_id', t.int64, (c) => c.notNull())
          .addColumn('dev_eui', 'text', (c) => c.notNull())
          .addColumn('event_type', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) =>
            c.notNull().check(sql`status in ('pending', 'delivered', 'dead')`),
          )
          .addColumn('attempts', 'integer', (c) => c.notNull().check(sql`attempts >= 0`))
          .addColumn('next_attempt_at', 'text', (c) => c.notNull())
          .addColumn('queued_at', 'text', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('last_http_status', 'integer')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('delivered_at', 'text')
          .addColumn('dead_at', 'text')
          .addPrimaryKeyConstraint('webhook_deliveries_pk', ['webhook_id', 'event_id']),
      ).execute();
      // The pending rows only: a device's head (its oldest pending event) and the due scan.
      await db.schema
        .createIndex('webhook_deliveries_pending_idx')
        .on('webhook_deliveries')
        .columns(['webhook_id', 'dev_eui', 'event_id'])
        .where(sql.ref('status'), '=', 'pending')
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_due_idx')
        .on('webhook_deliveries')
        .columns(['next_attempt_at'])
        .where(sql.ref('status'), '=', 'pending')
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_status_idx')
        .on('webhook_deliveries')
        .columns(['webhook_id', 'status', 'event_id'])
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('webhook_deliveries').execute();
      await db.schema.dropTable('webhooks').execute();
    },
  };
}
