import type { Kysely, Migration } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * Consumer cursors (issue 7): how far each reader of the event log (the application stage, each
 * integration) got, so that a restart resumes where it stopped and delivers the rest.
 */
export function consumerCursorsMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('consumer_cursors')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('last_event_id', t.int64, (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull()),
      ).execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('consumer_cursors').execute();
    },
  };
}
