import type { Statement as SqliteStatement } from 'better-sqlite3';
import { sql } from 'kysely';
import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  MAX_LIST_LIMIT,
  type RepositoryOptions,
  toEui,
  toIsoTimestamp,
} from './values.js';

export interface NewEvent {
  devEui: string;
  applicationId: string;
  /** ChirpStack event type: 'up', 'join', 'ack', 'txack', 'status', 'log', ... */
  type: string;
  time: IsoTimestamp;
  /** Any JSON-serialisable object (bytes as base64 text, as in integration events). */
  body: object;
}

export interface StoredEvent {
  id: number;
  type: string;
  time: IsoTimestamp;
  body: unknown;
}

/** An event without its body: what a consumer of the whole log needs to choose events. */
export interface FeedEventHead {
  id: number;
  type: string;
  time: IsoTimestamp;
  devEui: string;
  applicationId: string;
}

/** An event with its device and application: what feeds and integrations read. */
export interface FeedEvent extends StoredEvent, FeedEventHead {
  /** The body as JSON text, when the reader has it already (as stored). */
  readonly bodyJson?: string;
}

export interface EventListOptions {
  /** 1 to 1000, default 100. */
  limit?: number;
  /** Only events older than this id: the cursor for the next page. */
  beforeId?: number;
}

/** Rows per INSERT in appendMany: 6 parameters each stays far below both engines' limits. */
const APPEND_BATCH_ROWS = 500;
/** Rows per UPDATE in replaceBodies: 3 parameters each. */
const REPLACE_BATCH_ROWS = 500;

/** A device's event log (uplinks, joins, acks, ...), append-only; ids increase. */
export class EventRepository {
  readonly #db: GaletDatabase['db'];

  readonly #sqlite: GaletDatabase['sqlite'];
  #sqliteStatements: SqliteEventStatements | undefined;

  constructor(database: GaletDatabase, _secrets: SecretBox, _options?: RepositoryOptions) {
    this.#db = database.db;
    this.#sqlite = database.sqlite;
  }

  /**
   * The application stage's per-batch reads and writes on SQLite, as fixed prepared statements
   * (their Kysely forms change text with the batch size: compiled and prepared every time);
   * undefined on PostgreSQL and while Kysely holds the connection in a transaction.
   */
  #fastSqlite(): SqliteEventStatements | undefined {
    const sqlite = this.#sqlite;
    if (sqlite === undefined || sqlite.inTransaction) return undefined;
    this.#sqliteStatements ??= new SqliteEventStatements(sqlite);
    return this.#sqliteStatements;
  }

  /** One INSERT ... RETURNING id. */
  async append(event: NewEvent): Promise<number> {
    const row = await this.#db
      .insertInto('events')
      .values(eventRow(event))
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /**
   * Appends several events, one INSERT per 500 (in one transaction when there are more), and
   * returns their ids in input order.
   */
  async appendMany(events: readonly NewEvent[]): Promise<number[]> {
    if (events.length === 0) return [];
    const rows = events.map(eventRow);
    const insert = async (db: GaletDatabase['db']): Promise<number[]> => {
      const ids: number[] = [];
      for (let start = 0; start < rows.length; start += APPEND_BATCH_ROWS) {
        const inserted = await db
          .insertInto('events')
          .values(rows.slice(start, start + APPEND_BATCH_ROWS))
          .returning('id')
          .execute();
        // Both engines number the rows of one INSERT in VALUES order, but neither promises
        // RETURNING in that order: sort.
        ids.push(...inserted.map((row) => row.id).sort((a, b) => a - b));
      }
      return ids;
    };
    return rows.length <= APPEND_BATCH_ROWS
      ? insert(this.#db)
      : this.#db.transaction().execute((trx) => insert(trx));
  }

  /** Newest first. */
  async listForDevice(devEui: string, options?: EventListOptions): Promise<StoredEvent[]> {
    const limit = options?.limit ?? 100;
    assertInteger(limit, 1, MAX_LIST_LIMIT, 'limit');
    let query = this.#db
      .selectFrom('events')
      .select(['id', 'type', 'time', 'body'])
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'));
    if (options?.beforeId !== undefined) {
      assertInteger(options.beforeId, 0, Number.MAX_SAFE_INTEGER, 'beforeId');
      query = query.where('id', '<', options.beforeId);
    }
    const rows = await query.orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toStoredEvent);
  }

  /**
   * Events with an id above `afterId`, oldest first: the read of a cursor-driven consumer
   * (application stage, integrations, streams). `applicationId` narrows it to one application.
   */
  async listAfter(
    afterId: number,
    options?: { limit?: number; applicationId?: string; devEui?: string },
  ): Promise<FeedEvent[]> {
    assertInteger(afterId, 0, Number.MAX_SAFE_INTEGER, 'afterId');
    const limit = options?.limit ?? 100;
    assertInteger(limit, 1, MAX_LIST_LIMIT, 'limit');
    let query = this.#db
      .selectFrom('events')
      .select(['id', 'dev_eui', 'application_id', 'type', 'time', 'body'])
      .where('id', '>', afterId);
    if (options?.applicationId !== undefined) {
      query = query.where('application_id', '=', options.applicationId);
    }
    if (options?.devEui !== undefined) {
      query = query.where('dev_eui', '=', toEui(options.devEui, 'DevEUI'));
    }
    const rows = await query.orderBy('id', 'asc').limit(limit).execute();
    return rows.map((row) => new LazyFeedEvent(row));
  }

  // Application stage (issue 7): the decoded `object` is written into the stored `up` event.
  /**
   * Replaces the bodies of stored events (the application stage adds the decoded `object` to
   * `up` events): one UPDATE per 500 events, in one transaction. Ids that do not exist (purged
   * since) are skipped.
   */
  async replaceBodies(updates: readonly { id: number; body: object }[]): Promise<void> {
    if (updates.length === 0) return;
    const rows = updates.map(({ id, body }) => {
      assertInteger(id, 1, Number.MAX_SAFE_INTEGER, 'event id');
      const text = typeof body === 'object' && body !== null ? JSON.stringify(body) : undefined;
      if (text === undefined) {
        throw new StorageError('INVALID_INPUT', 'event body must be an object');
      }
      return { id, body: text };
    });
    const fast = this.#fastSqlite();
    if (fast !== undefined) {
      fast.replaceBodies(rows);
      return;
    }
    const update = async (db: GaletDatabase['db']): Promise<void> => {
      for (let start = 0; start < rows.length; start += REPLACE_BATCH_ROWS) {
        const chunk = rows.slice(start, start + REPLACE_BATCH_ROWS);
        const cases = sql.join(
          chunk.map((row) => sql`when ${row.id} then ${row.body}`),
          sql` `,
        );
        await db
          .updateTable('events')
          .set({ body: sql<string>`case id ${cases} end` })
          .where(
            'id',
            'in',
            chunk.map((row) => row.id),
          )
          .execute();
      }
    };
    await (rows.length <= REPLACE_BATCH_ROWS
      ? update(this.#db)
      : this.#db.transaction().execute((trx) => update(trx)));
  }

  /**
   * `listAfter` without the bodies (a few dozen bytes per event instead of about a kilobyte):
   * for the consumers of the whole log that read few bodies (`bodiesOf`).
   */
  async listHeadsAfter(afterId: number, options?: { limit?: number }): Promise<FeedEventHead[]> {
    assertInteger(afterId, 0, Number.MAX_SAFE_INTEGER, 'afterId');
    const limit = options?.limit ?? 100;
    assertInteger(limit, 1, MAX_LIST_LIMIT, 'limit');
    const rows = await this.#db
      .selectFrom('events')
      .select(['id', 'dev_eui', 'application_id', 'type', 'time'])
      .where('id', '>', afterId)
      .orderBy('id', 'asc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      id: row.id,
      type: row.type,
      time: row.time,
      devEui: row.dev_eui,
      applicationId: row.application_id,
    }));
  }

  /** The bodies of these events (an event that does not exist is left out). */
  async bodiesOf(ids: readonly number[]): Promise<Map<number, unknown>> {
    const bodies = new Map<number, unknown>();
    const fast = this.#fastSqlite();
    if (fast !== undefined) {
      for (const id of ids) {
        assertInteger(id, 1, Number.MAX_SAFE_INTEGER, 'event id');
        const text = fast.body(id);
        if (text !== undefined) bodies.set(id, JSON.parse(text) as unknown);
      }
      return bodies;
    }
    for (let start = 0; start < ids.length; start += APPEND_BATCH_ROWS) {
      const chunk = ids.slice(start, start + APPEND_BATCH_ROWS);
      for (const id of chunk) assertInteger(id, 1, Number.MAX_SAFE_INTEGER, 'event id');
      const rows = await this.#db
        .selectFrom('events')
        .select(['id', 'body'])
        .where('id', 'in', chunk)
        .execute();
      for (const row of rows) bodies.set(row.id, JSON.parse(row.body) as unknown);
    }
    return bodies;
  }

  /** The highest event id so far (0 when there is none). */
  async lastId(): Promise<number> {
    const row = await this.#db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /** The device's latest event of a type (`up`, ...), or undefined. */
  async latestOfType(devEui: string, type: string): Promise<StoredEvent | undefined> {
    const row = await this.#db
      .selectFrom('events')
      .select(['id', 'type', 'time', 'body'])
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .where('type', '=', String(type))
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toStoredEvent(row);
  }
}

/**
 * A feed event whose body is parsed on first use: consumers of the whole log (the application
 * stage, the webhooks' dispatcher) look at most events' type and device only.
 */
class LazyFeedEvent implements FeedEvent {
  readonly id: number;
  readonly type: string;
  readonly time: IsoTimestamp;
  readonly devEui: string;
  readonly applicationId: string;
  #text: string | undefined;
  #body: unknown;

  constructor(row: {
    id: number;
    type: string;
    time: IsoTimestamp;
    body: string;
    dev_eui: string;
    application_id: string;
  }) {
    this.id = row.id;
    this.type = row.type;
    this.time = row.time;
    this.devEui = row.dev_eui;
    this.applicationId = row.application_id;
    this.#text = row.body;
  }

  /** The body's JSON text as stored (no parse and stringify again when it is passed on as is). */
  get bodyJson(): string {
    return this.#text ?? JSON.stringify(this.#body);
  }

  get body(): unknown {
    if (this.#text !== undefined) {
      this.#body = JSON.parse(this.#text) as unknown;
      this.#text = undefined;
    }
    return this.#body;
  }

  /** As a plain object (a spread or JSON.stringify sees the body as well). */
  toJSON(): FeedEvent {
    return {
      id: this.id,
      type: this.type,
      time: this.time,
      devEui: this.devEui,
      applicationId: this.applicationId,
      body: this.body,
    };
  }
}

function toStoredEvent(row: {
  id: number;
  type: string;
  time: IsoTimestamp;
  body: string;
}): StoredEvent {
  return { id: row.id, type: row.type, time: row.time, body: JSON.parse(row.body) as unknown };
}

export function eventRow(event: NewEvent) {
  if (typeof event.type !== 'string' || event.type === '' || event.type.length > 64) {
    throw new StorageError(
      'INVALID_INPUT',
      'event type must be a non-empty text of at most 64 characters',
    );
  }
  if (typeof event.applicationId !== 'string' || event.applicationId === '') {
    throw new StorageError('INVALID_INPUT', 'event applicationId must be a non-empty text');
  }
  let body: string | undefined;
  try {
    body =
      typeof event.body === 'object' && event.body !== null
        ? JSON.stringify(event.body)
        : undefined;
  } catch (error) {
    throw new StorageError(
      'INVALID_INPUT',
      `event body is not JSON-serialisable: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  if (body === undefined) {
    throw new StorageError('INVALID_INPUT', 'event body must be an object');
  }
  return {
    dev_eui: toEui(event.devEui, 'DevEUI'),
    application_id: event.applicationId,
    type: event.type,
    time: toIsoTimestamp(event.time, 'event time'),
    body,
  };
}

/** The fixed statements behind EventRepository's SQLite fast paths. */
class SqliteEventStatements {
  readonly replaceBodies: (rows: readonly { id: number; body: string }[]) => void;
  readonly #selectBody: SqliteStatement<[number], { body: string }>;

  constructor(sqlite: NonNullable<GaletDatabase['sqlite']>) {
    const update = sqlite.prepare('update events set body = ? where id = ?');
    this.replaceBodies = sqlite.transaction((rows: readonly { id: number; body: string }[]) => {
      for (const row of rows) update.run(row.body, row.id);
    });
    this.#selectBody = sqlite.prepare('select body from events where id = ?');
  }

  body(id: number): string | undefined {
    return this.#selectBody.get(id)?.body;
  }
}
