// The flattening and the field dropping are pure leaf modules (no imports of their own) that the
// application stage uses too; the storage layer takes them from there rather than keeping a copy.

import { type Insertable, sql } from 'kysely';
import { dropFields } from '../application/measurements/drop-fields.js';
import { type FlattenLimits, flattenDecoded } from '../application/measurements/flatten.js';
import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { IsoTimestamp, MeasurementsTable } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, type RepositoryOptions, toEui, toIsoTimestamp } from './values.js';

/** A decoded uplink as the application stage hands it over. */
export interface DecodedUplink {
  /** The id of the stored `up` event: recording the same event twice stores its values once. */
  eventId: number;
  devEui: string;
  applicationId: string;
  time: IsoTimestamp;
  /** The codec's decoded object. */
  object: unknown;
}

export interface RecordResult {
  /** Rows written now (0 when the event was recorded before). */
  inserted: number;
  /** Rows that were there already (a replayed event). */
  duplicates: number;
  /** Values left out (too deep, too long, null, non-finite). */
  skipped: number;
  /** True when the per-event row cap cut the object short. */
  truncated: boolean;
}

export interface RecordManyResult {
  events: number;
  inserted: number;
  duplicates: number;
  skipped: number;
  /** Events whose object the per-event row cap cut short. */
  truncatedEvents: number;
}

export interface Measurement {
  time: IsoTimestamp;
  field: string;
  value: number | string;
  eventId: number;
}

export type MeasurementAggregate = 'min' | 'max' | 'avg' | 'sum' | 'last' | 'count';
export const MEASUREMENT_AGGREGATES: readonly MeasurementAggregate[] = [
  'min',
  'max',
  'avg',
  'sum',
  'last',
  'count',
];

export interface MeasurementQuery {
  devEui: string;
  /** One field path; absent: every field of the device. */
  field?: string;
  /** Inclusive. */
  from: IsoTimestamp;
  /** Exclusive. */
  to: IsoTimestamp;
  /** 1 to MAX_MEASUREMENT_ROWS. */
  limit: number;
}

export interface MeasurementAggregateQuery extends MeasurementQuery {
  /** Bucket width; buckets start at multiples of it since the epoch (UTC). */
  intervalMs: number;
  aggregate: MeasurementAggregate;
}

/**
 * One interval of one field. `value` is null when the bucket holds only texts and the
 * aggregate is numeric (min/max/avg/sum ignore texts); `last` may be a text.
 */
export interface MeasurementBucket {
  time: IsoTimestamp;
  field: string;
  value: number | string | null;
  /** Values in the bucket. */
  count: number;
}

/** A monthly partition of the PostgreSQL table: rows with fromMs <= time_ms < toMs. */
export interface MeasurementPartition {
  name: string;
  fromMs: number;
  toMs: number;
}

export interface MeasurementCounters {
  eventsRecorded: number;
  rowsInserted: number;
  rowsDuplicate: number;
  valuesSkipped: number;
  eventsTruncated: number;
}

export const MAX_MEASUREMENT_ROWS = 10_000;
/** Rows per INSERT: 7 parameters each stays far below both engines' limits. */
const INSERT_BATCH_ROWS = 500;
const PARTITION_NAME = /^measurements_p(\d{4})_(\d{2})$/;

/**
 * Measurements: the values of decoded uplinks as rows (device, time, field path, number or
 * text), for time-range queries and aggregation. On PostgreSQL the table is partitioned by
 * month (migration 0010): `ensurePartitions` creates the coming months, and whole expired
 * months are dropped (`dropPartition`). Retention deletes of both measurements and events are
 * here too, in bounded batches (application/retention.ts drives them).
 */
export class MeasurementRepository {
  readonly #db: GaletDatabase['db'];
  readonly #dialect: GaletDatabase['dialect'];
  readonly #limits: FlattenLimits | undefined;
  readonly counters: MeasurementCounters = {
    eventsRecorded: 0,
    rowsInserted: 0,
    rowsDuplicate: 0,
    valuesSkipped: 0,
    eventsTruncated: 0,
  };

  readonly #sqlite: GaletDatabase['sqlite'];
  #sqliteInsert: ((rows: readonly Insertable<MeasurementsTable>[]) => number) | undefined;

  constructor(
    database: GaletDatabase,
    _secrets: SecretBox,
    options?: RepositoryOptions & { flattenLimits?: FlattenLimits },
  ) {
    this.#sqlite = database.sqlite;
    this.#db = database.db;
    this.#dialect = database.dialect;
    this.#limits = options?.flattenLimits;
  }

  /**
   * Stores the values of a decoded object, without the fields its application drops. INSERT
   * ... ON CONFLICT DO NOTHING: a replayed event adds nothing.
   */
  async recordDecoded(uplink: DecodedUplink): Promise<RecordResult> {
    const result = await this.recordDecodedMany([uplink]);
    return {
      inserted: result.inserted,
      duplicates: result.duplicates,
      skipped: result.skipped,
      truncated: result.truncatedEvents > 0,
    };
  }

  /**
   * `recordDecoded` for a batch (what a stage that decodes many uplinks at once should call):
   * one read of the applications' dropped fields, INSERTs of up to 500 rows, one transaction.
   * Every uplink is checked before anything is written.
   */
  async recordDecodedMany(uplinks: readonly DecodedUplink[]): Promise<RecordManyResult> {
    const checked = uplinks.map(checkedUplink);
    const result: RecordManyResult = {
      events: checked.length,
      inserted: 0,
      duplicates: 0,
      skipped: 0,
      truncatedEvents: 0,
    };
    if (checked.length === 0) return result;
    const applicationIds = [...new Set(checked.map((uplink) => uplink.applicationId))];
    const settings = await this.#db
      .selectFrom('applications')
      .select(['id', 'drop_fields'])
      .where('id', 'in', applicationIds)
      .execute();
    const dropped = new Map(
      settings.map((row) => [row.id, JSON.parse(row.drop_fields) as string[]]),
    );
    const rows: Insertable<MeasurementsTable>[] = [];
    for (const uplink of checked) {
      const flat = flattenDecoded(
        dropFields(uplink.object, dropped.get(uplink.applicationId) ?? []),
        this.#limits,
      );
      result.skipped += flat.skipped;
      if (flat.truncated) result.truncatedEvents += 1;
      for (const measurement of flat.measurements) {
        rows.push({
          dev_eui: uplink.devEui,
          application_id: uplink.applicationId,
          time_ms: uplink.timeMs,
          field: measurement.field,
          number_value: measurement.numberValue,
          text_value: measurement.textValue,
          event_id: uplink.eventId,
        });
      }
    }
    const insert = async (db: GaletDatabase['db']): Promise<number> => {
      let inserted = 0;
      for (let start = 0; start < rows.length; start += INSERT_BATCH_ROWS) {
        const outcome = await db
          .insertInto('measurements')
          .values(rows.slice(start, start + INSERT_BATCH_ROWS))
          .onConflict((conflict) =>
            conflict.columns(['dev_eui', 'field', 'time_ms', 'event_id']).doNothing(),
          )
          .executeTakeFirst();
        inserted += Number(outcome.numInsertedOrUpdatedRows ?? 0n);
      }
      return inserted;
    };
    const fast = this.#fastSqliteInsert();
    if (rows.length > 0 && fast !== undefined) {
      result.inserted = fast(rows);
    } else if (rows.length > 0) {
      result.inserted =
        rows.length <= INSERT_BATCH_ROWS
          ? await insert(this.#db)
          : await this.#db.transaction().execute((trx) => insert(trx));
    }
    result.duplicates = rows.length - result.inserted;
    this.counters.eventsRecorded += result.events;
    this.counters.rowsInserted += result.inserted;
    this.counters.rowsDuplicate += result.duplicates;
    this.counters.valuesSkipped += result.skipped;
    this.counters.eventsTruncated += result.truncatedEvents;
    return result;
  }

  /**
   * On SQLite (unless Kysely holds the connection in a transaction): one fixed prepared INSERT
   * per row in one transaction; the multi-row Kysely INSERT changes text with the batch size and
   * was compiled and prepared again for every batch. Returns the rows inserted.
   */
  #fastSqliteInsert(): ((rows: readonly Insertable<MeasurementsTable>[]) => number) | undefined {
    const sqlite = this.#sqlite;
    if (sqlite === undefined || sqlite.inTransaction) return undefined;
    if (this.#sqliteInsert === undefined) {
      const insert = sqlite.prepare(
        `insert into measurements (dev_eui, application_id, time_ms, field, number_value,
           text_value, event_id) values (?, ?, ?, ?, ?, ?, ?)
         on conflict (dev_eui, field, time_ms, event_id) do nothing`,
      );
      this.#sqliteInsert = sqlite.transaction((rows: readonly Insertable<MeasurementsTable>[]) => {
        let inserted = 0;
        for (const row of rows) {
          inserted += insert.run(
            row.dev_eui,
            row.application_id,
            row.time_ms,
            row.field,
            row.number_value ?? null,
            row.text_value ?? null,
            row.event_id,
          ).changes;
        }
        return inserted;
      });
    }
    return this.#sqliteInsert;
  }

  /** Raw values, oldest first (then by field). */
  async list(query: MeasurementQuery): Promise<Measurement[]> {
    const range = checkedRange(query);
    let select = this.#db
      .selectFrom('measurements')
      .select(['time_ms', 'field', 'number_value', 'text_value', 'event_id'])
      .where('dev_eui', '=', range.devEui)
      .where('time_ms', '>=', range.fromMs)
      .where('time_ms', '<', range.toMs);
    if (range.field !== undefined) select = select.where('field', '=', range.field);
    const rows = await select
      .orderBy('time_ms')
      .orderBy('field')
      .orderBy('event_id')
      .limit(range.limit)
      .execute();
    return rows.map((row) => ({
      time: new Date(Number(row.time_ms)).toISOString(),
      field: row.field,
      value: row.number_value ?? row.text_value ?? '',
      eventId: Number(row.event_id),
    }));
  }

  /** One bucket per interval and field that holds values, oldest first. */
  async aggregate(query: MeasurementAggregateQuery): Promise<MeasurementBucket[]> {
    const range = checkedRange(query);
    assertInteger(query.intervalMs, 1000, 366 * 86_400_000, 'intervalMs');
    // Cast: an integer division on both engines, whatever type the driver binds the number as.
    const interval = sql`cast(${query.intervalMs} as bigint)`;
    const fieldFilter = range.field === undefined ? sql`` : sql`and field = ${range.field}`;
    const points = sql`select (time_ms / ${interval}) * ${interval} as bucket, field, number_value,
        text_value, time_ms, event_id
      from measurements
      where dev_eui = ${range.devEui} and time_ms >= ${range.fromMs} and time_ms < ${range.toMs}
        ${fieldFilter}`;
    type Row = {
      bucket: number | string;
      field: string;
      value: number | string | null;
      text_value?: string | null;
      count: number | string;
    };
    let rows: Row[];
    if (query.aggregate === 'last') {
      const result = await sql<Row>`select bucket, field, number_value as value, text_value, count
        from (
          select bucket, field, number_value, text_value,
            row_number() over (partition by bucket, field order by time_ms desc, event_id desc) as rank,
            count(*) over (partition by bucket, field) as count
          from (${points}) as points
        ) as ranked
        where rank = 1
        order by bucket, field
        limit ${range.limit}`.execute(this.#db);
      rows = result.rows.map((row) => ({ ...row, value: row.value ?? row.text_value ?? null }));
    } else {
      const result =
        await sql<Row>`select bucket, field, ${aggregateExpression(query.aggregate)} as value,
          count(*) as count
        from (${points}) as points
        group by bucket, field
        order by bucket, field
        limit ${range.limit}`.execute(this.#db);
      rows = result.rows;
    }
    return rows.map((row) => ({
      time: new Date(Number(row.bucket)).toISOString(),
      field: row.field,
      value: row.value === null || typeof row.value === 'string' ? row.value : Number(row.value),
      count: Number(row.count),
    }));
  }

  /**
   * Deletes at most `limit` measurements of an application older than `before`; returns how
   * many. Called in a loop by the retention job, so that no delete holds locks for long.
   */
  async deleteBefore(applicationId: string, before: IsoTimestamp, limit: number): Promise<number> {
    assertInteger(limit, 1, 100_000, 'limit');
    const beforeMs = Date.parse(toIsoTimestamp(before, 'retention cutoff'));
    const result =
      this.#dialect === 'sqlite'
        ? await sql`delete from measurements where rowid in (
            select rowid from measurements
            where application_id = ${applicationId} and time_ms < ${beforeMs}
            limit ${limit})`.execute(this.#db)
        : await sql`delete from measurements
            where (dev_eui, field, time_ms, event_id) in (
              select dev_eui, field, time_ms, event_id from measurements
              where application_id = ${applicationId} and time_ms < ${beforeMs}
              limit ${limit})`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0n);
  }

  /**
   * Deletes at most `limit` events of an application older than `before` (the event log's
   * retention; it lives here with the rest of the retention deletes). Returns how many.
   */
  async deleteEventsBefore(
    applicationId: string,
    before: IsoTimestamp,
    limit: number,
  ): Promise<number> {
    assertInteger(limit, 1, 100_000, 'limit');
    const cutoff = toIsoTimestamp(before, 'retention cutoff');
    const result = await this.#db
      .deleteFrom('events')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('events')
          .select('id')
          .where('application_id', '=', applicationId)
          .where('time', '<', cutoff)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * PostgreSQL: creates the monthly partitions from the month of `now` to `monthsAhead` months
   * later, when missing, and returns the names created. Rows that the default partition holds
   * for such a month move into the new partition (in the same transaction). SQLite: nothing.
   */
  async ensurePartitions(now: Date, monthsAhead: number): Promise<string[]> {
    assertInteger(monthsAhead, 0, 24, 'monthsAhead');
    if (this.#dialect !== 'postgres') return [];
    const existing = new Set((await this.listPartitions()).map((partition) => partition.name));
    const created: string[] = [];
    for (let offset = 0; offset <= monthsAhead; offset += 1) {
      const partition = monthPartition(now.getUTCFullYear(), now.getUTCMonth() + offset);
      if (existing.has(partition.name)) continue;
      if (await this.#createPartition(partition)) created.push(partition.name);
    }
    return created;
  }

  /** PostgreSQL: the monthly partitions, oldest first (not the default one). SQLite: none. */
  async listPartitions(): Promise<MeasurementPartition[]> {
    if (this.#dialect !== 'postgres') return [];
    const result = await sql<{ name: string }>`select c.relname as name
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'measurements'::regclass`.execute(this.#db);
    return result.rows
      .map((row) => parsePartitionName(row.name))
      .filter((partition) => partition !== undefined)
      .sort((a, b) => a.fromMs - b.fromMs);
  }

  /** PostgreSQL: whether a partition holds a row of one of these applications. */
  async partitionHasRowsOf(name: string, applicationIds: readonly string[]): Promise<boolean> {
    checkedPartitionName(name);
    if (applicationIds.length === 0) return false;
    const result = await sql`select 1 as found from ${sql.table(name)}
      where application_id = any(${[...applicationIds]}) limit 1`.execute(this.#db);
    return result.rows.length > 0;
  }

  /** PostgreSQL: drops a whole monthly partition (all its rows) at once. */
  async dropPartition(name: string): Promise<void> {
    checkedPartitionName(name);
    await sql`drop table if exists ${sql.table(name)}`.execute(this.#db);
  }

  async #createPartition(partition: MeasurementPartition): Promise<boolean> {
    const table = sql.table(partition.name);
    // Partition bounds cannot be bound parameters; these are integers computed here.
    const from = sql.lit(partition.fromMs);
    const to = sql.lit(partition.toMs);
    return this.#db.transaction().execute(async (trx) => {
      // Two instances starting together create each partition once.
      await sql`select pg_advisory_xact_lock(hashtext('galet_measurement_partitions'))`.execute(
        trx,
      );
      const exists =
        await sql`select 1 from pg_class where oid = to_regclass(${partition.name})`.execute(trx);
      if (exists.rows.length > 0) return false;
      const stray = await sql`select 1 from measurements_default
        where time_ms >= ${partition.fromMs} and time_ms < ${partition.toMs} limit 1`.execute(trx);
      if (stray.rows.length === 0) {
        await sql`create table ${table} partition of measurements for values from (${from}) to (${to})`.execute(
          trx,
        );
        return true;
      }
      // The default partition caught rows of this month: attaching a partition for it would
      // fail, so move them into the new table first.
      await sql`create table ${table} (like measurements including defaults including constraints)`.execute(
        trx,
      );
      await sql`with moved as (
          delete from measurements_default
          where time_ms >= ${partition.fromMs} and time_ms < ${partition.toMs}
          returning *)
        insert into ${table} select * from moved`.execute(trx);
      await sql`alter table measurements attach partition ${table} for values from (${from}) to (${to})`.execute(
        trx,
      );
      return true;
    });
  }
}

function checkedUplink(uplink: DecodedUplink) {
  assertInteger(uplink.eventId, 1, Number.MAX_SAFE_INTEGER, 'eventId');
  if (typeof uplink.applicationId !== 'string' || uplink.applicationId === '') {
    throw new StorageError('INVALID_INPUT', 'measurement applicationId must be a non-empty text');
  }
  return {
    eventId: uplink.eventId,
    devEui: toEui(uplink.devEui, 'DevEUI'),
    applicationId: uplink.applicationId,
    timeMs: Date.parse(toIsoTimestamp(uplink.time, 'measurement time')),
    object: uplink.object,
  };
}

function aggregateExpression(aggregate: Exclude<MeasurementAggregate, 'last'>) {
  switch (aggregate) {
    case 'min':
      return sql`min(number_value)`;
    case 'max':
      return sql`max(number_value)`;
    case 'avg':
      return sql`avg(number_value)`;
    case 'sum':
      return sql`sum(number_value)`;
    case 'count':
      return sql`count(*)`;
    default:
      throw new StorageError('INVALID_INPUT', `unknown aggregate ${String(aggregate)}`);
  }
}

function checkedRange(query: MeasurementQuery) {
  const devEui = toEui(query.devEui, 'DevEUI');
  const fromMs = Date.parse(toIsoTimestamp(query.from, 'from'));
  const toMs = Date.parse(toIsoTimestamp(query.to, 'to'));
  if (toMs <= fromMs) {
    throw new StorageError('INVALID_INPUT', `"to" must be after "from"`);
  }
  assertInteger(query.limit, 1, MAX_MEASUREMENT_ROWS, 'limit');
  if (query.field !== undefined && (typeof query.field !== 'string' || query.field === '')) {
    throw new StorageError('INVALID_INPUT', 'field must be a non-empty field path');
  }
  return { devEui, fromMs, toMs, field: query.field, limit: query.limit };
}

/** The partition of a month (`month` may run past 11: Date.UTC carries it into the year). */
export function monthPartition(year: number, month: number): MeasurementPartition {
  const start = new Date(Date.UTC(year, month, 1));
  const name = `measurements_p${start.getUTCFullYear()}_${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
  return {
    name,
    fromMs: start.getTime(),
    toMs: Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1),
  };
}

function parsePartitionName(name: string): MeasurementPartition | undefined {
  const match = PARTITION_NAME.exec(name);
  if (match === null) return undefined;
  return monthPartition(Number(match[1]), Number(match[2]) - 1);
}

function checkedPartitionName(name: string): void {
  if (!PARTITION_NAME.test(name)) {
    throw new StorageError('INVALID_INPUT', `${name} is not a measurements partition`);
  }
}
