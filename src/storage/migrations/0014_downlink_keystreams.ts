import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * The provider's memory of downlink keystreams (issue 5, operator-blind downlinks): which queue
 * item each (session, downlink counter) encrypted, so that no keystream ever encrypts two items
 * (AES-CTR), across restarts. Bounded: a few sessions per device (`downlink_keystream_sessions`,
 * the latest ones its join server issued) and a few hundred counters per session, below which a
 * floor refuses every counter (`f_cnt_down_floor`). Both go with their device.
 */
export function downlinkKeystreamsMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('downlink_keystream_sessions')
          // The network's name of the session: a hash of the AppSKey envelope (32 hex digits).
          .addColumn('session_key_id', 'text', (c) => c.primaryKey())
          .addColumn('dev_eui', 'text', (c) =>
            c.notNull().references('devices.dev_eui').onDelete('cascade'),
          )
          // Every counter below it counts as used: those above it are remembered one by one.
          .addColumn('f_cnt_down_floor', t.int64, (c) =>
            c.notNull().defaultTo(0).check(sql`f_cnt_down_floor between 0 and 4294967295`),
          )
          .addColumn('started_at', 'text', (c) => c.notNull()),
      ).execute();
      // A device's sessions, newest first (the pruning after each new one).
      await db.schema
        .createIndex('downlink_keystream_sessions_device_idx')
        .on('downlink_keystream_sessions')
        .columns(['dev_eui', 'started_at'])
        .execute();
      await strict(
        db.schema
          .createTable('downlink_keystreams')
          .addColumn('session_key_id', 'text', (c) =>
            c
              .notNull()
              .references('downlink_keystream_sessions.session_key_id')
              .onDelete('cascade'),
          )
          .addColumn('f_cnt_down', t.int64, (c) =>
            c.notNull().check(sql`f_cnt_down between 0 and 4294967295`),
          )
          .addColumn('queue_item_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('downlink_keystreams_pkey', ['session_key_id', 'f_cnt_down']),
      ).execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('downlink_keystreams').execute();
      await db.schema.dropTable('downlink_keystream_sessions').execute();
    },
  };
}
