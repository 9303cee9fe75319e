import type SqliteDatabase from 'better-sqlite3';
import type { eventRow } from './events.js';

/** An uplink commit checked and turned into its event row, ready for SQL. */
export interface PreparedCommit {
  devEui: string;
  expectedFCntUp: number | null;
  nextFCntUp: number;
  row: ReturnType<typeof eventRow>;
}

/** An uplink counter accepted but not written to its session row yet (write-behind). */
export interface PendingCounter {
  fCntUp: number;
  /** The session it belongs to (`device_sessions.created_at`): a new session ignores it. */
  sessionCreatedAt: string;
}

/** A session's counter as last known in memory (null: no uplink yet in that session). */
export interface KnownCounter {
  fCntUp: number | null;
  sessionCreatedAt: string;
}

/**
 * Where the write-behind finds a session's counter without reading the row: the counters
 * waiting to be written, then those written or read before; undefined: read the row.
 */
export type KnownCounterLookup = (devEui: string) => KnownCounter | undefined;

/** The consumer cursor under which the write-behind keeps the last event its counters cover. */
export const COUNTERS_CURSOR = 'uplink-counters-written';

/**
 * The statements of the SQLite uplink path, prepared once on one connection (all
 * parameterised): used on the main thread's connection, or on the uplink writer thread's own.
 */
export class SqliteUplinkStatements {
  readonly #casFromNull: SqliteDatabase.Statement;
  readonly #casFromValue: SqliteDatabase.Statement;
  readonly #insertEvent: SqliteDatabase.Statement;
  readonly #touchDevice: SqliteDatabase.Statement;
  readonly #sessionCounter: SqliteDatabase.Statement<[string], SessionCounterRow>;
  readonly #writeCounter: SqliteDatabase.Statement;
  readonly #startCursor: SqliteDatabase.Statement;
  readonly #saveCursor: SqliteDatabase.Statement;
  /** Per item in order: whether its compare-and-set won (and so its event was stored). */
  readonly commitBatch: (items: readonly PreparedCommit[], now: string) => boolean[];
  /**
   * The same with the counters written behind: each item's compare-and-set is checked against
   * the session's counter as known in memory (`known`: the mirror, always of the current
   * session), or else its row and a counter of that session waiting to be written (`pending`);
   * only the events are written.
   * Returns, per item, the counter to keep waiting (undefined: lost), and the last event id.
   */
  readonly commitBatchBehind: (
    items: readonly PreparedCommit[],
    lookup: { known: KnownCounterLookup; pending: KnownCounterLookup },
    now: string,
  ) => { won: (PendingCounter | undefined)[]; lastEventId: number };
  /**
   * Writes waiting counters (sorted by DevEUI, for page locality), each only into the session it
   * belongs to and never backwards; with `coveredEventId`, records that the events up to it are
   * covered (the crash recovery starts after it).
   */
  readonly writeCounters: (
    counters: readonly (readonly [string, PendingCounter])[],
    coveredEventId: number | undefined,
    now: string,
  ) => void;
  /**
   * After a crash: the counters of the up events stored after the last write-behind flush, put
   * into their sessions (an up counts for the session its device's last join in those events
   * started, or for the current session when there was no join; never backwards).
   */
  readonly recoverCounters: (now: string) => { events: number; sessions: number };
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
    this.#sessionCounter = sqlite.prepare(
      'select f_cnt_up, created_at from device_sessions where dev_eui = ?',
    );
    this.#writeCounter = sqlite.prepare(
      'update device_sessions set f_cnt_up = ? where dev_eui = ? and created_at = ? and (f_cnt_up is null or f_cnt_up < ?)',
    );
    // The first write-behind batch of a database marks where its counters start to wait.
    this.#startCursor = sqlite.prepare(
      `insert into consumer_cursors (name, last_event_id, updated_at)
       values (?, (select coalesce(max(id), 0) from events), ?) on conflict (name) do nothing`,
    );
    this.#saveCursor = sqlite.prepare(
      `insert into consumer_cursors (name, last_event_id, updated_at) values (?, ?, ?)
       on conflict (name) do update set last_event_id = excluded.last_event_id,
       updated_at = excluded.updated_at where consumer_cursors.last_event_id < excluded.last_event_id`,
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
    this.commitBatchBehind = sqlite.transaction(
      (
        items: readonly PreparedCommit[],
        lookup: { known: KnownCounterLookup; pending: KnownCounterLookup },
        now: string,
      ) => {
        // A no-op once the cursor exists (one indexed probe per batch).
        this.#startCursor.run(COUNTERS_CURSOR, now);
        // Items of this batch count for the ones after them (one device twice in a batch).
        const batch = new Map<string, PendingCounter>();
        let lastEventId = 0;
        const won = items.map((item) => {
          let current = batch.get(item.devEui) ?? lookup.known(item.devEui);
          if (current === undefined) {
            const row = this.#sessionCounter.get(item.devEui);
            if (row === undefined) return undefined;
            // A counter still waiting to be written counts only for the session it came from.
            const waiting = lookup.pending(item.devEui);
            current =
              waiting !== undefined && waiting.sessionCreatedAt === row.created_at
                ? waiting
                : { fCntUp: row.f_cnt_up, sessionCreatedAt: row.created_at };
          }
          if (current.fCntUp !== item.expectedFCntUp) return undefined;
          const { row } = item;
          const inserted = this.#insertEvent.run(
            row.dev_eui,
            row.application_id,
            row.type,
            row.time,
            row.body,
          );
          lastEventId = Number(inserted.lastInsertRowid);
          const counter = { fCntUp: item.nextFCntUp, sessionCreatedAt: current.sessionCreatedAt };
          batch.set(item.devEui, counter);
          return counter;
        });
        return { won, lastEventId };
      },
    );
    this.writeCounters = sqlite.transaction(
      (
        counters: readonly (readonly [string, PendingCounter])[],
        coveredEventId: number | undefined,
        now: string,
      ) => {
        for (const [devEui, { fCntUp, sessionCreatedAt }] of counters) {
          this.#writeCounter.run(fCntUp, devEui, sessionCreatedAt, fCntUp);
        }
        if (coveredEventId !== undefined)
          this.#saveCursor.run(COUNTERS_CURSOR, coveredEventId, now);
      },
    );
    const recoveryEvents = sqlite.prepare<[number], RecoveryEventRow>(
      `select id, dev_eui, type, time, json_extract(body, '$.fCnt') as f_cnt from events
       where id > ? and type in ('up', 'join') order by id`,
    );
    const cursor = sqlite.prepare<[string], { last_event_id: number }>(
      'select last_event_id from consumer_cursors where name = ?',
    );
    const recoverCounter = sqlite.prepare(
      'update device_sessions set f_cnt_up = ? where dev_eui = ? and created_at <= ? and (f_cnt_up is null or f_cnt_up < ?)',
    );
    this.recoverCounters = sqlite.transaction((now: string) => {
      const start = cursor.get(COUNTERS_CURSOR)?.last_event_id;
      if (start === undefined) return { events: 0, sessions: 0 };
      // Per device, the newest up of the session that its last join (if any) started.
      const newest = new Map<string, { fCnt: number; time: string }>();
      let events = 0;
      let lastId = start;
      for (const row of recoveryEvents.iterate(start)) {
        events += 1;
        lastId = row.id;
        if (row.type === 'join') newest.delete(row.dev_eui);
        else if (typeof row.f_cnt === 'number') {
          const known = newest.get(row.dev_eui);
          if (known === undefined || known.fCnt < row.f_cnt) {
            newest.set(row.dev_eui, { fCnt: row.f_cnt, time: row.time });
          }
        }
      }
      let sessions = 0;
      for (const [devEui, { fCnt, time }] of [...newest].sort(byKey)) {
        sessions += recoverCounter.run(fCnt, devEui, time, fCnt).changes;
      }
      this.#saveCursor.run(COUNTERS_CURSOR, lastId, now);
      return { events, sessions };
    });
    this.touchDevices = sqlite.transaction((seen: Iterable<readonly [string, string]>) => {
      for (const [devEui, time] of seen) this.#touchDevice.run(time, devEui, time);
    });
  }
}

interface SessionCounterRow {
  f_cnt_up: number | null;
  created_at: string;
}

interface RecoveryEventRow {
  id: number;
  dev_eui: string;
  type: string;
  time: string;
  f_cnt: unknown;
}

function byKey(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
