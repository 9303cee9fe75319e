import type { GaletDatabase } from './database.js';
import { eventRow, type NewEvent } from './events.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions, toEui, UINT32_MAX } from './values.js';

/** One accepted uplink: the FCnt compare-and-set and the event it produces, stored together. */
export interface UplinkCommit {
  devEui: string;
  expectedFCntUp: number | null;
  nextFCntUp: number;
  event: NewEvent;
}

const EVENT_ROWS_PER_INSERT = 500;

/**
 * The uplink path's write, as a group commit: for a batch of uplinks, in one transaction, each
 * FCnt compare-and-set, then one multi-row INSERT of the events of those that won, then their
 * devices' last_seen_at. An uplink's counter never moves without its event being stored, and a
 * batch costs one commit instead of one per uplink.
 */
export class UplinkCommitRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => string;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /** Returns, per item in order, whether its compare-and-set won (and so its event was stored). */
  async commit(items: readonly UplinkCommit[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    const prepared = items.map((item) => {
      if (item.expectedFCntUp !== null)
        assertInteger(item.expectedFCntUp, 0, UINT32_MAX, 'expected FCntUp');
      assertInteger(item.nextFCntUp, 0, UINT32_MAX, 'FCntUp');
      return { ...item, devEui: toEui(item.devEui, 'DevEUI'), row: eventRow(item.event) };
    });
    const now = this.#now();
    return this.#db.transaction().execute(async (trx) => {
      const won: boolean[] = [];
      for (const item of prepared) {
        const result = await trx
          .updateTable('device_sessions')
          .set({ f_cnt_up: item.nextFCntUp, updated_at: now })
          .where('dev_eui', '=', item.devEui)
          .where((eb) =>
            item.expectedFCntUp === null
              ? eb('f_cnt_up', 'is', null)
              : eb('f_cnt_up', '=', item.expectedFCntUp),
          )
          .executeTakeFirst();
        won.push(result.numUpdatedRows > 0n);
      }
      const rows = prepared.filter((_, i) => won[i]).map((item) => item.row);
      for (let start = 0; start < rows.length; start += EVENT_ROWS_PER_INSERT) {
        await trx
          .insertInto('events')
          .values(rows.slice(start, start + EVENT_ROWS_PER_INSERT))
          .execute();
      }
      const lastSeen = new Map<string, string>();
      for (const item of prepared.filter((_, i) => won[i])) {
        const previous = lastSeen.get(item.devEui);
        if (previous === undefined || previous < item.row.time)
          lastSeen.set(item.devEui, item.row.time);
      }
      for (const [devEui, seen] of lastSeen) {
        await trx
          .updateTable('devices')
          .set({ last_seen_at: seen })
          .where('dev_eui', '=', devEui)
          .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', seen)]))
          .execute();
      }
      return won;
    });
  }
}
