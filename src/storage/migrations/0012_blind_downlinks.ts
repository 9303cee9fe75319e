import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes } from './column-types.js';

/**
 * Downlinks of operator-blind sessions (issue 5): the network role stores the FRMPayload the
 * provider's application role encrypted, with the session key id and the downlink counter it was
 * encrypted for; it transmits it only with that very counter. Both null: `data` is plaintext.
 */
export function blindDownlinksMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable('downlink_queue')
        .addColumn('encrypted_f_cnt_down', t.int64, (c) =>
          c.check(sql`encrypted_f_cnt_down between 0 and 4294967295`),
        )
        .execute();
      await db.schema
        .alterTable('downlink_queue')
        .addColumn('encrypted_session_key_id', 'text')
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('downlink_queue').dropColumn('encrypted_session_key_id').execute();
      await db.schema.alterTable('downlink_queue').dropColumn('encrypted_f_cnt_down').execute();
    },
  };
}
