import type SqliteDatabase from 'better-sqlite3';
import type { eventRow } from './events.js';

/** An uplink commit checked and turned into its event row, ready for SQL. */
export interface PreparedCommit {
  devEui: string;
  expectedFCntUp: number | null;
  nextFCntUp: number;
  row: ReturnType<typeof eventRow>;
}

/**
 * The statements of the SQLite uplink path, prepared once on one connection (all
 * parameterised): used on the main thread's connection, or on the uplink writer thread's own.
 */
export class SqliteUplinkStatements {
  readonly #casFromNull: SqliteDatabase.Statement;
  readonly #casFromValue: SqliteDatabase.Statement;
  readonly #insertEvent: SqliteDatabase.Statement;
  readonly #touchDevice: SqliteDatabase.Statement;
  /** Per item in order: whether its compare-and-set won (and so its event was stored). */
  readonly commitBatch: (items: readonly PreparedCommit[], now: string) => boolean[];
  /** Moves each device's last_seen_at forward (never back), in one transaction. */
  readonly touchDevices: (seen: Iterable<readonly [string, string]>) => void;

  constructor(sqlite: SqliteDatabase.Database) {
    this.#casFromNull = sqlite.prepare(
      'update device_sessions set f_cnt_up = ?, updated_at = ? where dev_eui = ? and f_cnt_up is null',
    );
    this.#casFromValue = sqlite.prepare(
      'update device_sessions set f_cnt_up = ?, updated_at = ? where dev_eui = ? and f_cnt_up = ?',
    );
    this.#insertEvent = sqlite.prepare(
      'insert into events (dev_eui, application_id, type, time, body) values (?, ?, ?, ?, ?)',
    );
    this.#touchDevice = sqlite.prepare(
      'update devices set last_seen_at = ? where dev_eui = ? and (last_seen_at is null or last_seen_at < ?)',
    );
    this.commitBatch = sqlite.transaction((items: readonly PreparedCommit[], now: string) =>
      items.map((item) => {
        const result =
          item.expectedFCntUp === null
            ? this.#casFromNull.run(item.nextFCntUp, now, item.devEui)
            : this.#casFromValue.run(item.nextFCntUp, now, item.devEui, item.expectedFCntUp);
        if (result.changes === 0) return false;
        const { row } = item;
        this.#insertEvent.run(row.dev_eui, row.application_id, row.type, row.time, row.body);
        return true;
      }),
    );
    this.touchDevices = sqlite.transaction((seen: Iterable<readonly [string, string]>) => {
      for (const [devEui, time] of seen) this.#touchDevice.run(time, devEui, time);
    });
  }
}
