import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * The first schema. A migration is frozen once released: it describes the database as it was
 * then, so it uses `Kysely<any>` and never the current row types of schema.ts.
 */
export function initialMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);

  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('applications')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();

      await strict(
        db.schema
          .createTable('gateways')
          .addColumn('gateway_id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('latitude', t.double)
          .addColumn('longitude', t.double)
          .addColumn('altitude', t.double)
          .addColumn('location_source', 'text', (c) =>
            c.check(sql`location_source in ('configured', 'gateway')`),
          )
          .addColumn('last_seen_at', 'text')
          .addColumn('rx_received', t.int64, (c) => c.notNull().defaultTo(0))
          .addColumn('rx_received_ok', t.int64, (c) => c.notNull().defaultTo(0))
          .addColumn('rx_forwarded', t.int64, (c) => c.notNull().defaultTo(0))
          .addColumn('tx_received', t.int64, (c) => c.notNull().defaultTo(0))
          .addColumn('tx_emitted', t.int64, (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();

      await strict(
        db.schema
          .createTable('devices')
          .addColumn('dev_eui', 'text', (c) => c.primaryKey())
          .addColumn('join_eui', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('application_id', 'text', (c) =>
            c.notNull().references('applications.id').onDelete('restrict'),
          )
          .addColumn('mac_version', 'text', (c) =>
            c.notNull().check(sql`mac_version in ('1.0.2', '1.0.3', '1.0.4', '1.1.0')`),
          )
          .addColumn('device_class', 'text', (c) =>
            c.notNull().check(sql`device_class in ('A', 'C')`),
          )
          .addColumn('activation', 'text', (c) =>
            c.notNull().check(sql`activation in ('otaa', 'abp')`),
          )
          .addColumn('app_key_enc', t.bytes)
          .addColumn('nwk_key_enc', t.bytes)
          .addColumn('join_nonce', 'integer', (c) =>
            c.notNull().defaultTo(0).check(sql`join_nonce between 0 and 16777215`),
          )
          .addColumn('last_seen_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('devices_application_idx')
        .on('devices')
        .columns(['application_id', 'dev_eui'])
        .execute();

      await strict(
        db.schema
          .createTable('device_sessions')
          .addColumn('dev_eui', 'text', (c) =>
            c.primaryKey().references('devices.dev_eui').onDelete('cascade'),
          )
          .addColumn('dev_addr', t.int64, (c) =>
            c.notNull().check(sql`dev_addr between 0 and 4294967295`),
          )
          .addColumn('mac_version', 'text', (c) =>
            c.notNull().check(sql`mac_version in ('1.0.2', '1.0.3', '1.0.4', '1.1.0')`),
          )
          .addColumn('keys_enc', t.bytes, (c) => c.notNull())
          .addColumn('f_cnt_up', t.int64, (c) => c.check(sql`f_cnt_up between 0 and 4294967295`))
          // "Next to use": 2^32 means the counter space is used up.
          .addColumn('n_f_cnt_down', t.int64, (c) =>
            c.notNull().defaultTo(0).check(sql`n_f_cnt_down between 0 and 4294967296`),
          )
          .addColumn('a_f_cnt_down', t.int64, (c) =>
            c.notNull().defaultTo(0).check(sql`a_f_cnt_down between 0 and 4294967296`),
          )
          .addColumn('rx1_delay_s', 'integer', (c) => c.notNull())
          .addColumn('rx1_dr_offset', 'integer', (c) => c.notNull())
          .addColumn('rx2_dr', 'integer', (c) => c.notNull())
          .addColumn('rx2_frequency_hz', t.int64, (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('device_sessions_dev_addr_idx')
        .on('device_sessions')
        .column('dev_addr')
        .execute();

      await strict(
        db.schema
          .createTable('dev_nonces')
          .addColumn('dev_eui', 'text', (c) =>
            c.notNull().references('devices.dev_eui').onDelete('cascade'),
          )
          .addColumn('dev_nonce', 'integer', (c) =>
            c.notNull().check(sql`dev_nonce between 0 and 65535`),
          )
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('dev_nonces_pk', ['dev_eui', 'dev_nonce']),
      ).execute();

      await strict(
        db.schema
          .createTable('downlink_queue')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('dev_eui', 'text', (c) =>
            c.notNull().references('devices.dev_eui').onDelete('cascade'),
          )
          .addColumn('f_port', 'integer', (c) => c.notNull().check(sql`f_port between 1 and 223`))
          .addColumn('data', t.bytes, (c) => c.notNull())
          .addColumn('confirmed', t.boolean, (c) => c.notNull())
          .addColumn('status', 'text', (c) =>
            c.notNull().check(sql`status in ('pending', 'sent', 'acked', 'failed', 'expired')`),
          )
          .addColumn('f_cnt_down', t.int64)
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('downlink_queue_device_status_idx')
        .on('downlink_queue')
        .columns(['dev_eui', 'status', 'created_at', 'id'])
        .execute();

      await strict(
        db.schema
          .createTable('events')
          .addColumn('id', t.int64, (c) =>
            dialect === 'postgres'
              ? c.primaryKey().generatedAlwaysAsIdentity()
              : // AUTOINCREMENT: an id is never reused, so it can serve as a cursor.
                c.primaryKey().autoIncrement(),
          )
          .addColumn('dev_eui', 'text', (c) => c.notNull())
          .addColumn('application_id', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('time', 'text', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('events_device_idx')
        .on('events')
        .columns(['dev_eui', 'id'])
        .execute();
    },

    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      for (const table of [
        'events',
        'downlink_queue',
        'dev_nonces',
        'device_sessions',
        'devices',
        'gateways',
        'applications',
      ]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
