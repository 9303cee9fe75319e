import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  MAX_MEASUREMENT_ROWS,
  MEASUREMENT_AGGREGATES,
  type Measurement,
  type MeasurementAggregate,
  type MeasurementBucket,
  type MeasurementQuery,
  type Storage,
} from '../../storage/index.js';
import { csvLine } from '../csv.js';
import { badRequest } from '../errors.js';

/**
 * The measurement query that a device's measurements (measurements.ts) and a share's
 * (measurement-shares.ts) take: the querystring schema, its checks, the reads and the answer as
 * JSON or CSV. Raw values without `interval`; one bucket per interval and field with it.
 */

export interface MeasurementQuerystring {
  field?: string;
  from?: string;
  to?: string;
  interval?: string;
  aggregate?: MeasurementAggregate;
  limit?: number;
  format?: 'json' | 'csv';
}

const DEFAULT_RANGE_MS = 86_400_000;
const DEFAULT_RAW_LIMIT = 1000;
const INTERVAL = /^([1-9][0-9]{0,5})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_INTERVAL_MS = 366 * 86_400_000;

export const measurementQuerystringSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    field: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: 'A field path (`temperature`, `sensors.0.value`); default every field',
    },
    from: {
      type: 'string',
      maxLength: 40,
      description: 'ISO-8601 time, inclusive; default 24 hours before `to`',
    },
    to: {
      type: 'string',
      maxLength: 40,
      description: 'ISO-8601 time, exclusive; default now',
    },
    interval: {
      type: 'string',
      pattern: INTERVAL.source,
      description: 'Bucket width (`15m`, `1h`, `1d`; s, m, h, d): aggregate per bucket',
    },
    aggregate: {
      type: 'string',
      enum: [...MEASUREMENT_AGGREGATES],
      description: 'With `interval` (default avg)',
    },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_MEASUREMENT_ROWS,
      description: `Rows or buckets (default ${DEFAULT_RAW_LIMIT})`,
    },
    format: { type: 'string', enum: ['json', 'csv'] },
  },
} as const;

export interface MeasurementAnswerOptions {
  /**
   * Only these field paths (a share's); absent: every field of the device. With the query's
   * `field`, the caller checks that it is one of them.
   */
  fields?: readonly string[];
  /** Put first in the JSON answer (`shareId`). */
  extra?: Record<string, unknown>;
  /**
   * Called once the values are read, before they are answered (JSON or CSV), with the range
   * read and the rows: a share's read is audited there. Throwing answers the error instead.
   */
  beforeAnswer?: (read: MeasurementRead) => Promise<void>;
}

/** What a measurement query read: its effective range and how many rows or buckets. */
export interface MeasurementRead {
  from: string;
  to: string;
  rows: number;
  truncated: boolean;
}

/**
 * Answers a measurement query on one device the caller was allowed to read: 400 for a bad time,
 * interval or bucket count; JSON, or CSV with `format=csv` or `Accept: text/csv`.
 */
export async function answerMeasurements(
  storage: Storage,
  request: FastifyRequest<{ Querystring: MeasurementQuerystring }>,
  reply: FastifyReply,
  devEui: string,
  options: MeasurementAnswerOptions = {},
): Promise<unknown> {
  const query = request.query;
  const to = query.to ?? new Date().toISOString();
  const toMs = Date.parse(to);
  if (Number.isNaN(toMs)) {
    throw badRequest(`to must be an ISO-8601 time with a zone, got ${JSON.stringify(to)}`);
  }
  // The storage layer checks both times strictly (ISO-8601 with a zone).
  const from = query.from ?? new Date(toMs - DEFAULT_RANGE_MS).toISOString();
  const limit = query.limit ?? DEFAULT_RAW_LIMIT;
  const range: MeasurementQuery = { devEui, from, to, limit };
  const fields = query.field === undefined ? options.fields : [query.field];
  const csv = wantsCsv(request);
  const extra = options.extra ?? {};
  if (query.interval === undefined) {
    if (query.aggregate !== undefined) {
      throw badRequest('aggregate needs an interval (e.g. interval=1h)');
    }
    const points = await readFields(range, fields, comparePoints, (part) =>
      storage.measurements.list(part),
    );
    const truncated = points.length === limit;
    await options.beforeAnswer?.({ from, to, rows: points.length, truncated });
    if (csv) return sendCsv(reply, devEui, rawCsv(points));
    return { ...extra, devEui, from, to, points, truncated };
  }
  const intervalMs = intervalToMs(query.interval);
  const aggregate = query.aggregate ?? 'avg';
  const span = Date.parse(to) - Date.parse(from);
  if (Number.isFinite(span) && span / intervalMs > MAX_MEASUREMENT_ROWS) {
    throw badRequest(
      `${query.interval} buckets over this range would be more than ${MAX_MEASUREMENT_ROWS}: ` +
        'choose a wider interval or a shorter range',
    );
  }
  const buckets = await readFields(range, fields, compareBuckets, (part) =>
    storage.measurements.aggregate({ ...part, intervalMs, aggregate }),
  );
  const truncated = buckets.length === limit;
  await options.beforeAnswer?.({ from, to, rows: buckets.length, truncated });
  if (csv) return sendCsv(reply, devEui, bucketCsv(buckets, aggregate));
  return {
    ...extra,
    devEui,
    from,
    to,
    interval: query.interval,
    aggregate,
    buckets,
    truncated,
  };
}

/**
 * Rows of every field (`fields` undefined) or of the listed ones. The store filters on one field
 * at a time, so several fields are read one by one, each up to the limit, and merged in the
 * store's order (time, then field): the first `limit` rows of the union are among those, since
 * each field's rows in them are a prefix of that field's own rows.
 */
async function readFields<T>(
  range: MeasurementQuery,
  fields: readonly string[] | undefined,
  compare: (a: T, b: T) => number,
  read: (range: MeasurementQuery) => Promise<T[]>,
): Promise<T[]> {
  if (fields === undefined) return read(range);
  if (fields.length === 1) return read({ ...range, field: fields[0] as string });
  const rows: T[] = [];
  // One after the other: a share's fields must not take every connection of the pool.
  for (const field of fields) rows.push(...(await read({ ...range, field })));
  return rows.sort(compare).slice(0, range.limit);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparePoints(a: Measurement, b: Measurement): number {
  return compareText(a.time, b.time) || compareText(a.field, b.field) || a.eventId - b.eventId;
}

function compareBuckets(a: MeasurementBucket, b: MeasurementBucket): number {
  return compareText(a.time, b.time) || compareText(a.field, b.field);
}

/** `15m` -> 900000; a 400 beyond a year. */
export function intervalToMs(interval: string): number {
  const match = INTERVAL.exec(interval);
  if (match === null) throw badRequest(`interval ${interval} is not like 15m, 1h or 1d`);
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (ms > MAX_INTERVAL_MS) throw badRequest('interval must be at most 366 days');
  return ms;
}

function wantsCsv(request: FastifyRequest<{ Querystring: MeasurementQuerystring }>): boolean {
  if (request.query.format !== undefined) return request.query.format === 'csv';
  const accept = request.headers.accept ?? '';
  return /(^|,)\s*text\/csv\b/i.test(accept);
}

function sendCsv(reply: FastifyReply, devEui: string, text: string): FastifyReply {
  return reply
    .header('content-disposition', `attachment; filename="${devEui}-measurements.csv"`)
    .type('text/csv; charset=utf-8')
    .send(text);
}

function rawCsv(points: readonly Measurement[]): string {
  let text = csvLine(['time', 'field', 'value']);
  for (const point of points) text += csvLine([point.time, point.field, csvValue(point.value)]);
  return text;
}

function bucketCsv(buckets: readonly MeasurementBucket[], aggregate: string): string {
  let text = csvLine(['time', 'field', aggregate, 'count']);
  for (const bucket of buckets) {
    text += csvLine([bucket.time, bucket.field, csvValue(bucket.value), bucket.count]);
  }
  return text;
}

/**
 * A device's text could read as a formula in a spreadsheet (`=HYPERLINK(...)`): such texts get
 * a leading apostrophe (OWASP's advice for CSV injection). Numbers are written as they are.
 */
function csvValue(value: number | string | null): number | string | null {
  return typeof value === 'string' && /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}
