import type SqliteDatabase from 'better-sqlite3';
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

interface PreparedCommit {
  devEui: string;
  expectedFCntUp: number | null;
  nextFCntUp: number;
  row: ReturnType<typeof eventRow>;
}

/** The statements of the SQLite fast path, prepared once (all parameterised). */
class SqliteUplinkStatements {
  readonly casFromNull: SqliteDatabase.Statement;
  readonly casFromValue: SqliteDatabase.Statement;
  readonly insertEvent: SqliteDatabase.Statement;
  readonly #touchDevices = new Map<number, SqliteDatabase.Statement>();
  readonly commitBatch: (items: PreparedCommit[], now: string) => boolean[];

  constructor(private readonly sqlite: SqliteDatabase.Database) {
    this.casFromNull = sqlite.prepare(
      'update device_sessions set f_cnt_up = ?, updated_at = ? where dev_eui = ? and f_cnt_up is null',
    );
    this.casFromValue = sqlite.prepare(
      'update device_sessions set f_cnt_up = ?, updated_at = ? where dev_eui = ? and f_cnt_up = ?',
    );
    this.insertEvent = sqlite.prepare(
      'insert into events (dev_eui, application_id, type, time, body) values (?, ?, ?, ?, ?)',
    );
    this.commitBatch = sqlite.transaction((items: PreparedCommit[], now: string) => {
      const won = items.map((item) => {
        const result =
          item.expectedFCntUp === null
            ? this.casFromNull.run(item.nextFCntUp, now, item.devEui)
            : this.casFromValue.run(item.nextFCntUp, now, item.devEui, item.expectedFCntUp);
        if (result.changes === 0) return false;
        const { row } = item;
        this.insertEvent.run(row.dev_eui, row.application_id, row.type, row.time, row.body);
        return true;
      });
      this.#touchLastSeen(items.filter((_, i) => won[i]));
      return won;
    });
  }

  /** last_seen_at of the batch's devices, a few statements for the whole batch (never backwards). */
  #touchLastSeen(winners: PreparedCommit[]): void {
    if (winners.length === 0) return;
    let seen = winners[0]!.row.time;
    for (const item of winners) if (item.row.time > seen) seen = item.row.time;
    const devEuis = [...new Set(winners.map((item) => item.devEui))];
    for (let start = 0; start < devEuis.length; start += TOUCH_CHUNK) {
      const chunk = devEuis.slice(start, start + TOUCH_CHUNK);
      let statement = this.#touchDevices.get(chunk.length);
      if (statement === undefined) {
        const placeholders = chunk.map(() => '?').join(', ');
        statement = this.sqlite.prepare(
          `update devices set last_seen_at = ? where dev_eui in (${placeholders}) and (last_seen_at is null or last_seen_at < ?)`,
        );
        this.#touchDevices.set(chunk.length, statement);
      }
      statement.run(seen, ...chunk, seen);
    }
  }
}

/** Devices per last_seen_at UPDATE (well below SQLite's parameter limit). */
const TOUCH_CHUNK = 200;

/**
 * The uplink path's write, as a group commit: for a batch of uplinks, in one transaction, each
 * FCnt compare-and-set, the events of those that won, and their devices' last_seen_at. An
 * uplink's counter never moves without its event being stored, and a batch costs one commit
 * instead of one per uplink. On SQLite it runs prepared statements on the driver directly (this
 * is the hottest write of the server); on PostgreSQL it goes through Kysely.
 */
export class UplinkCommitRepository {
  readonly #database: GaletDatabase;
  readonly #now: () => string;
  #sqliteStatements: SqliteUplinkStatements | undefined;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#database = database;
    this.#now = clock(options);
  }

  /** Returns, per item in order, whether its compare-and-set won (and so its event was stored). */
  async commit(items: readonly UplinkCommit[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    const prepared: PreparedCommit[] = items.map((item) => {
      if (item.expectedFCntUp !== null) {
        assertInteger(item.expectedFCntUp, 0, UINT32_MAX, 'expected FCntUp');
      }
      assertInteger(item.nextFCntUp, 0, UINT32_MAX, 'FCntUp');
      return {
        devEui: toEui(item.devEui, 'DevEUI'),
        expectedFCntUp: item.expectedFCntUp,
        nextFCntUp: item.nextFCntUp,
        row: eventRow(item.event),
      };
    });
    const now = this.#now();
    const sqlite = this.#database.sqlite;
    // Kysely may hold the connection inside a transaction of its own (awaiting its next
    // statement); then this batch waits its turn through Kysely instead.
    if (sqlite !== undefined && !sqlite.inTransaction) {
      this.#sqliteStatements ??= new SqliteUplinkStatements(sqlite);
      return this.#sqliteStatements.commitBatch(prepared, now);
    }
    return this.#commitWithKysely(prepared, now);
  }

  async #commitWithKysely(prepared: PreparedCommit[], now: string): Promise<boolean[]> {
    return this.#database.db.transaction().execute(async (trx) => {
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
      const winners = prepared.filter((_, i) => won[i]);
      const rows = winners.map((item) => item.row);
      for (let start = 0; start < rows.length; start += EVENT_ROWS_PER_INSERT) {
        await trx
          .insertInto('events')
          .values(rows.slice(start, start + EVENT_ROWS_PER_INSERT))
          .execute();
      }
      for (const item of winners) {
        const seen = item.row.time;
        await trx
          .updateTable('devices')
          .set({ last_seen_at: seen })
          .where('dev_eui', '=', item.devEui)
          .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', seen)]))
          .execute();
      }
      return won;
    });
  }
}
