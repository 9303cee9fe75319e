import { type Kysely, type Migration, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes } from './column-types.js';

/**
 * The confirmed downlink a device has yet to acknowledge, kept with its session: the 1.1 uplink
 * MIC of the acknowledging frame needs its FCntDown (ConfFCnt), also after a restart and through
 * gateways that send no TX_ACK.
 */
export function awaitingAckMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable('device_sessions')
        .addColumn('awaiting_ack_item_id', 'text')
        .execute();
      await db.schema
        .alterTable('device_sessions')
        .addColumn('awaiting_ack_f_cnt_down', t.int64, (c) =>
          c.check(sql`awaiting_ack_f_cnt_down between 0 and 4294967295`),
        )
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('device_sessions').dropColumn('awaiting_ack_f_cnt_down').execute();
      await db.schema.alterTable('device_sessions').dropColumn('awaiting_ack_item_id').execute();
    },
  };
}
