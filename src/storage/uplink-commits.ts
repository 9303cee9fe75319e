import type { GaletDatabase } from './database.js';
import { eventRow, type NewEvent } from './events.js';
import type { SecretBox } from './secret-box.js';
import { type PreparedCommit, SqliteUplinkStatements } from './sqlite-uplink-statements.js';
import { SqliteUplinkWriter } from './uplink-writer.js';
import { assertInteger, clock, type RepositoryOptions, toEui, UINT32_MAX } from './values.js';

/** One accepted uplink: the FCnt compare-and-set and the event it produces, stored together. */
export interface UplinkCommit {
  devEui: string;
  expectedFCntUp: number | null;
  nextFCntUp: number;
  event: NewEvent;
}

const EVENT_ROWS_PER_INSERT = 500;

export interface UplinkCommitOptions {
  /** How long a device's last_seen_at may wait in memory (default DEFAULT_LAST_SEEN_FLUSH_MS). */
  lastSeenFlushMs?: number;
  /**
   * SQLite file: run the uplink writes on a thread of their own (SqliteUplinkWriter), with their
   * own connection. Call `close()` before closing the database.
   */
  uplinkWriterThread?: boolean;
}

/** How long a device's last_seen_at may wait in memory before it is written (default). */
export const DEFAULT_LAST_SEEN_FLUSH_MS = 5000;

/**
 * The uplink path's write, as a group commit: for a batch of uplinks, in one transaction, each
 * FCnt compare-and-set and the events of those that won. An uplink's counter never moves without
 * its event being stored, and a batch costs one commit instead of one per uplink. On SQLite it
 * runs prepared statements on the driver directly (this is the hottest write of the server); on
 * PostgreSQL it goes through Kysely.
 *
 * The devices' last_seen_at is written behind: kept in memory (`pendingLastSeen`) and written
 * every few seconds, one row per device however often it sent. With 100,000 devices every
 * uplink touches a different page of the devices table, and that page write cost as much as the
 * event itself; last_seen_at is a display value (the stored `up` events are the record), so a
 * crash loses at most those seconds of it. `flushLastSeen()` writes it now (at shutdown).
 *
 * With `uplinkWriterThread`, these SQLite writes run on a writer thread (see SqliteUplinkWriter).
 */
export class UplinkCommitRepository {
  readonly #database: GaletDatabase;
  readonly #now: () => string;
  #sqliteStatements: SqliteUplinkStatements | undefined;
  readonly #writer: SqliteUplinkWriter | undefined;
  /** last_seen_at not written yet, per DevEUI. */
  #lastSeen = new Map<string, string>();
  #lastSeenTimer: NodeJS.Timeout | undefined;
  #lastSeenFlushMs: number;
  #flushing: Promise<void> | undefined;

  constructor(
    database: GaletDatabase,
    _secrets: SecretBox,
    options?: RepositoryOptions & UplinkCommitOptions,
  ) {
    this.#database = database;
    this.#now = clock(options);
    this.#lastSeenFlushMs = options?.lastSeenFlushMs ?? DEFAULT_LAST_SEEN_FLUSH_MS;
    const sqlite = database.sqlite;
    if (options?.uplinkWriterThread === true && sqlite !== undefined && !sqlite.memory) {
      this.#writer = new SqliteUplinkWriter({
        path: sqlite.name,
        busyTimeoutMs: Number(sqlite.pragma('busy_timeout', { simple: true })),
      });
    }
  }

  /** The writer thread, when this repository has one (for tests). */
  get writerForTest(): SqliteUplinkWriter | undefined {
    return this.#writer;
  }

  /** Writes what waits in memory and stops the writer thread, if any (before closing the database). */
  async close(): Promise<void> {
    await this.flushLastSeen();
    await this.#writer?.close();
  }

  /** A device's last_seen_at that is still waiting to be written, if any. */
  pendingLastSeen(devEui: string): string | undefined {
    return this.#lastSeen.get(devEui);
  }

  /** Writes every waiting last_seen_at now (never moving one backwards). */
  async flushLastSeen(): Promise<void> {
    clearTimeout(this.#lastSeenTimer);
    this.#lastSeenTimer = undefined;
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#lastSeen.size === 0) return;
    const seen = this.#lastSeen;
    this.#lastSeen = new Map();
    this.#flushing = this.#writeLastSeen(seen).finally(() => {
      this.#flushing = undefined;
    });
    try {
      await this.#flushing;
    } catch (error) {
      // Kept for the next flush (newer times win).
      for (const [devEui, time] of seen) this.#noteSeen(devEui, time);
      throw error;
    }
  }

  async #writeLastSeen(seen: ReadonlyMap<string, string>): Promise<void> {
    if (this.#writer !== undefined) {
      await this.#writer.touch([...seen]);
      return;
    }
    const sqlite = this.#database.sqlite;
    if (sqlite !== undefined && !sqlite.inTransaction) {
      this.#sqliteStatements ??= new SqliteUplinkStatements(sqlite);
      this.#sqliteStatements.touchDevices(seen);
      return;
    }
    const entries = [...seen];
    await this.#database.db.transaction().execute(async (trx) => {
      for (const [devEui, time] of entries) {
        await trx
          .updateTable('devices')
          .set({ last_seen_at: time })
          .where('dev_eui', '=', devEui)
          .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', time)]))
          .execute();
      }
    });
  }

  #noteSeen(devEui: string, time: string): void {
    const known = this.#lastSeen.get(devEui);
    if (known === undefined || known < time) this.#lastSeen.set(devEui, time);
    if (this.#lastSeenTimer === undefined) {
      this.#lastSeenTimer = setTimeout(() => {
        this.#lastSeenTimer = undefined;
        this.flushLastSeen().catch(() => {
          // The entries stay in memory for the next attempt; storage errors show elsewhere.
        });
      }, this.#lastSeenFlushMs);
      this.#lastSeenTimer.unref();
    }
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
    let won: boolean[];
    if (this.#writer !== undefined) {
      won = await this.#writer.commit(prepared, now);
    } else if (sqlite !== undefined && !sqlite.inTransaction) {
      this.#sqliteStatements ??= new SqliteUplinkStatements(sqlite);
      won = this.#sqliteStatements.commitBatch(prepared, now);
    } else {
      won = await this.#commitWithKysely(prepared, now);
    }
    for (const [i, item] of prepared.entries()) {
      if (won[i]) this.#noteSeen(item.devEui, item.row.time);
    }
    return won;
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
      return won;
    });
  }
}
