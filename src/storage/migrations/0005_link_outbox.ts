import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * The provider link's durable outbox (issue 5): deliveries waiting for the provider's ack, and
 * per link the last seq given out and the last one acknowledged. The cursor row outlives the
 * deliveries, so a seq is never reused after the outbox drained.
 */
export function linkOutboxMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('link_outbox_cursors')
          .addColumn('link_id', 'text', (c) => c.primaryKey())
          .addColumn('last_seq', t.int64, (c) => c.notNull().check(sql`last_seq >= 0`))
          .addColumn('acked_seq', t.int64, (c) => c.notNull().check(sql`acked_seq >= 0`))
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addCheckConstraint('link_outbox_cursors_acked_check', sql`acked_seq <= last_seq`),
      ).execute();
      await strict(
        db.schema
          .createTable('link_outbox')
          .addColumn('link_id', 'text', (c) =>
            c.notNull().references('link_outbox_cursors.link_id').onDelete('cascade'),
          )
          .addColumn('seq', t.int64, (c) => c.notNull().check(sql`seq >= 1`))
          .addColumn('topic', 'text', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('link_outbox_pk', ['link_id', 'seq']),
      ).execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('link_outbox').execute();
      await db.schema.dropTable('link_outbox_cursors').execute();
    },
  };
}
