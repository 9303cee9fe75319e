import type { GaletDatabase } from './database.js';
import { eventRow, type NewEvent } from './events.js';
import type { SecretBox } from './secret-box.js';
import {
  type KnownCounter,
  type PendingCounter,
  type PreparedCommit,
  SqliteUplinkStatements,
} from './sqlite-uplink-statements.js';
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
  /**
   * SQLite on the main connection: write the sessions' uplink counters behind (default true),
   * as last_seen_at is; see UplinkCommitRepository.
   */
  counterWriteBehind?: boolean;
}

/** How long a device's last_seen_at (and counter) may wait in memory before it is written. */
export const DEFAULT_LAST_SEEN_FLUSH_MS = 5000;

/**
 * Rows per transaction of a write-behind flush: the event loop runs between two of them. 2,000
 * rows held the network server's thread for about 35 ms (a p99 step in the uplink benchmark).
 */
const FLUSH_CHUNK_ROWS = 250;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function sortedByKey<V>(entries: Iterable<readonly [string, V]>): (readonly [string, V])[] {
  return [...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * The uplink path's write, as a group commit: for a batch of uplinks, in one transaction, each
 * FCnt compare-and-set and the events of those that won. An uplink's counter never moves without
 * its event being stored, and a batch costs one commit instead of one per uplink. On SQLite it
 * runs prepared statements on the driver directly (this is the hottest write of the server); on
 * PostgreSQL it goes through Kysely.
 *
 * Write-behind, for what every uplink would otherwise write into a row of its own among
 * 100,000 (each such write dirties a page of its own, and cost as much as the event):
 * - the devices' last_seen_at is kept in memory (`pendingLastSeen`) and written every few
 *   seconds, one row per device however often it sent. It is a display value (the stored `up`
 *   events are the record): a crash loses at most those seconds of it.
 * - on SQLite's main connection, the sessions' uplink counters too: the compare-and-set is
 *   checked against the session row and the counters waiting in memory, in the transaction that
 *   stores the event, and the counters are written every few seconds, sorted (neighbouring rows
 *   share pages), each only into the session it was accepted in (`created_at`) and never
 *   backwards. The events are the record: each flush notes the last event it covers, and after a
 *   crash `recoverCounters()` (run at start, before the sessions are loaded) puts the counters
 *   of the `up` events stored since into their sessions, so a replayed frame stays refused.
 *   PostgreSQL keeps the compare-and-set in the database: several network servers may share it.
 * `flushLastSeen()` writes both now (at shutdown). The reads of DeviceRepository and
 * DeviceSessionRepository show the waiting values (`pendingLastSeen`, `pendingCounter`).
 *
 * With `uplinkWriterThread`, these SQLite writes run on a writer thread (see SqliteUplinkWriter),
 * counters included (no write-behind of counters there).
 */
export class UplinkCommitRepository {
  readonly #database: GaletDatabase;
  readonly #now: () => string;
  #sqliteStatements: SqliteUplinkStatements | undefined;
  readonly #writer: SqliteUplinkWriter | undefined;
  readonly #counterWriteBehind: boolean;
  /** last_seen_at not written yet, per DevEUI (and those of the flush under way). */
  #lastSeen = new Map<string, string>();
  #lastSeenFlushing: ReadonlyMap<string, string> | undefined;
  /** Uplink counters not written yet, per DevEUI (and those of the flush under way). */
  #counters = new Map<string, PendingCounter>();
  #countersFlushing: ReadonlyMap<string, PendingCounter> | undefined;
  /**
   * Each session's counter as last read or accepted (a mirror of the rows, so that the
   * compare-and-set reads no row): forgotten when a session is written elsewhere
   * (`sessionWritten`) and after a lost compare-and-set.
   */
  readonly #known = new Map<string, KnownCounter>();
  /** The last event stored with its counter written behind. */
  #lastCounterEventId = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushMs: number;
  #flushing: Promise<void> | undefined;

  constructor(
    database: GaletDatabase,
    _secrets: SecretBox,
    options?: RepositoryOptions & UplinkCommitOptions,
  ) {
    this.#database = database;
    this.#now = clock(options);
    this.#flushMs = options?.lastSeenFlushMs ?? DEFAULT_LAST_SEEN_FLUSH_MS;
    const sqlite = database.sqlite;
    if (options?.uplinkWriterThread === true && sqlite !== undefined && !sqlite.memory) {
      this.#writer = new SqliteUplinkWriter({
        path: sqlite.name,
        busyTimeoutMs: Number(sqlite.pragma('busy_timeout', { simple: true })),
      });
    }
    this.#counterWriteBehind =
      sqlite !== undefined && this.#writer === undefined && options?.counterWriteBehind !== false;
  }

  /** The writer thread, when this repository has one (for tests). */
  get writerForTest(): SqliteUplinkWriter | undefined {
    return this.#writer;
  }

  /** Whether the uplink counters are written behind (SQLite's main connection). */
  get countersWrittenBehind(): boolean {
    return this.#counterWriteBehind;
  }

  /** Writes what waits in memory and stops the writer thread, if any (before closing the database). */
  async close(): Promise<void> {
    await this.flushLastSeen();
    await this.#writer?.close();
  }

  /** A device's last_seen_at that is still waiting to be written, if any. */
  pendingLastSeen(devEui: string): string | undefined {
    return this.#lastSeen.get(devEui) ?? this.#lastSeenFlushing?.get(devEui);
  }

  /** A session's uplink counter that is still waiting to be written, if any. */
  pendingCounter(devEui: string): PendingCounter | undefined {
    return this.#counters.get(devEui) ?? this.#countersFlushing?.get(devEui);
  }

  /**
   * A session row was written or deleted outside the uplink path (a join, the API): its
   * counter is read again from the row. Call it before and after the write.
   */
  sessionWritten(devEui: string): void {
    this.#known.delete(devEui);
  }

  /**
   * Puts the counters of the up events stored after the last write-behind flush into their
   * sessions: after a crash, before the sessions are read. A no-op on PostgreSQL and when
   * nothing waits. Returns how many events were read and sessions moved.
   */
  async recoverCounters(): Promise<{ events: number; sessions: number }> {
    const sqlite = this.#database.sqlite;
    if (sqlite === undefined) return { events: 0, sessions: 0 };
    while (sqlite.inTransaction) await yieldToEventLoop();
    this.#sqliteStatements ??= new SqliteUplinkStatements(sqlite);
    return this.#sqliteStatements.recoverCounters(this.#now());
  }

  /** Writes every waiting last_seen_at and counter now (never moving one backwards). */
  async flushLastSeen(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#lastSeen.size === 0 && this.#counters.size === 0) return;
    const seen = this.#lastSeen;
    const counters = this.#counters;
    const coveredEventId = this.#lastCounterEventId;
    this.#lastSeen = new Map();
    this.#counters = new Map();
    this.#lastSeenFlushing = seen;
    this.#countersFlushing = counters;
    this.#flushing = this.#writeBehind(seen, counters, coveredEventId).finally(() => {
      this.#flushing = undefined;
      this.#lastSeenFlushing = undefined;
      this.#countersFlushing = undefined;
    });
    try {
      await this.#flushing;
    } catch (error) {
      // Kept for the next flush (newer values win).
      for (const [devEui, time] of seen) this.#noteSeen(devEui, time);
      for (const [devEui, counter] of counters) {
        if (!this.#counters.has(devEui)) this.#counters.set(devEui, counter);
      }
      this.#scheduleFlush();
      throw error;
    }
  }

  async #writeBehind(
    seen: ReadonlyMap<string, string>,
    counters: ReadonlyMap<string, PendingCounter>,
    coveredEventId: number,
  ): Promise<void> {
    if (counters.size > 0) {
      const sqlite = this.#database.sqlite as NonNullable<GaletDatabase['sqlite']>;
      const sorted = sortedByKey(counters);
      for (let start = 0; start < sorted.length; start += FLUSH_CHUNK_ROWS) {
        while (sqlite.inTransaction) await yieldToEventLoop();
        this.#sqliteStatements ??= new SqliteUplinkStatements(sqlite);
        const last = start + FLUSH_CHUNK_ROWS >= sorted.length;
        this.#sqliteStatements.writeCounters(
          sorted.slice(start, start + FLUSH_CHUNK_ROWS),
          last ? coveredEventId : undefined,
          this.#now(),
        );
        if (!last) await yieldToEventLoop();
      }
    }
    if (seen.size > 0) await this.#writeLastSeen(sortedByKey(seen));
  }

  async #writeLastSeen(seen: readonly (readonly [string, string])[]): Promise<void> {
    if (this.#writer !== undefined) {
      await this.#writer.touch(seen.map(([devEui, time]) => [devEui, time]));
      return;
    }
    const sqlite = this.#database.sqlite;
    if (sqlite !== undefined) {
      for (let start = 0; start < seen.length; start += FLUSH_CHUNK_ROWS) {
        while (sqlite.inTransaction) await yieldToEventLoop();
        this.#sqliteStatements ??= new SqliteUplinkStatements(sqlite);
        this.#sqliteStatements.touchDevices(seen.slice(start, start + FLUSH_CHUNK_ROWS));
        if (start + FLUSH_CHUNK_ROWS < seen.length) await yieldToEventLoop();
      }
      return;
    }
    await this.#database.db.transaction().execute(async (trx) => {
      for (const [devEui, time] of seen) {
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
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.flushLastSeen().catch(() => {
        // The entries stay in memory for the next attempt; storage errors show elsewhere.
      });
    }, this.#flushMs);
    this.#flushTimer.unref();
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
      won = this.#counterWriteBehind
        ? this.#commitBehind(this.#sqliteStatements, prepared, now)
        : this.#sqliteStatements.commitBatch(prepared, now);
    } else {
      if (this.#counterWriteBehind) {
        while (sqlite?.inTransaction) await yieldToEventLoop();
        return this.commit(items);
      }
      won = await this.#commitWithKysely(prepared, now);
    }
    for (const [i, item] of prepared.entries()) {
      if (won[i]) this.#noteSeen(item.devEui, item.row.time);
    }
    return won;
  }

  #commitBehind(
    statements: SqliteUplinkStatements,
    prepared: readonly PreparedCommit[],
    now: string,
  ): boolean[] {
    const result = statements.commitBatchBehind(
      prepared,
      {
        known: (devEui) => this.#known.get(devEui),
        pending: (devEui) => this.pendingCounter(devEui),
      },
      now,
    );
    if (result.lastEventId > this.#lastCounterEventId) {
      this.#lastCounterEventId = result.lastEventId;
    }
    return result.won.map((counter, i) => {
      const { devEui } = prepared[i] as PreparedCommit;
      if (counter === undefined) {
        // Lost: maybe the mirror is behind a write it was not told of; read the row next time.
        this.#known.delete(devEui);
        return false;
      }
      this.#counters.set(devEui, counter);
      this.#known.set(devEui, counter);
      return true;
    });
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
