import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * Measurements and retention (issue 7).
 *
 * `measurements`: one row per value of a decoded uplink (device, application, time, field path,
 * a number or a text, the event it came from). Time is epoch milliseconds (`int64`), not ISO
 * text: 8 bytes instead of 25 on a table of billions of rows, and interval buckets are integer
 * division on both engines. The unique key (dev_eui, field, time_ms, event_id) is both the
 * index of every device query (one device, one field, a time range) and what makes recording an
 * event twice a no-op. A second index (application_id, time_ms) serves the per-application
 * retention deletes.
 *
 * On PostgreSQL the table is range-partitioned by month on time_ms; the partitions are created
 * ahead by the maintenance job (`measurements.ensurePartitions`), a default partition holds
 * anything outside them. The unique key includes time_ms, as PostgreSQL requires of a
 * partitioned table's unique index. On SQLite it is a plain (STRICT) table.
 *
 * Applications get their retention (days; null: kept forever) and the field paths they drop
 * (JSON text array). Events get an (application_id, time) index for their retention deletes.
 */
export function measurementsMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      let table = db.schema
        .createTable('measurements')
        .addColumn('dev_eui', 'text', (c) => c.notNull())
        .addColumn('application_id', 'text', (c) => c.notNull())
        .addColumn('time_ms', t.int64, (c) => c.notNull())
        .addColumn('field', 'text', (c) => c.notNull())
        .addColumn('number_value', t.double)
        .addColumn('text_value', 'text')
        .addColumn('event_id', t.int64, (c) => c.notNull())
        .addUniqueConstraint('measurements_series_key', ['dev_eui', 'field', 'time_ms', 'event_id'])
        .addCheckConstraint(
          'measurements_one_value',
          sql`(number_value is null) <> (text_value is null)`,
        );
      if (dialect === 'postgres') {
        table = table.modifyEnd(sql`partition by range (time_ms)`);
        await table.execute();
        await sql`create table measurements_default partition of measurements default`.execute(db);
      } else {
        await strict(table).execute();
      }
      await db.schema
        .createIndex('measurements_application_time_idx')
        .on('measurements')
        .columns(['application_id', 'time_ms'])
        .execute();
      await db.schema
        .createIndex('events_application_time_idx')
        .on('events')
        .columns(['application_id', 'time'])
        .execute();

      await db.schema
        .alterTable('applications')
        .addColumn('events_retention_days', 'integer', (c) =>
          c.check(sql`events_retention_days between 1 and 36500`),
        )
        .execute();
      await db.schema
        .alterTable('applications')
        .addColumn('measurements_retention_days', 'integer', (c) =>
          c.check(sql`measurements_retention_days between 1 and 36500`),
        )
        .execute();
      await db.schema
        .alterTable('applications')
        .addColumn('drop_fields', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      for (const column of [
        'drop_fields',
        'measurements_retention_days',
        'events_retention_days',
      ]) {
        await db.schema.alterTable('applications').dropColumn(column).execute();
      }
      await db.schema.dropIndex('events_application_time_idx').execute();
      // Dropping a partitioned table drops its partitions.
      await db.schema.dropTable('measurements').execute();
    },
  };
}
