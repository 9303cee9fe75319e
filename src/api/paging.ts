import type { ListOptions } from '../storage/index.js';
import { badRequest } from './errors.js';

/**
 * Cursor pagination, sorting and the query schema every list shares.
 *
 * A list answers `{<items>: [...], nextCursor}`: `nextCursor` is null on the last page, else an
 * opaque string to pass as `cursor` for the next one. The cursor holds the sort and the position
 * (sort value and id of the last row), so a page never repeats or skips a row that was there
 * before, whatever was written meanwhile (keyset pagination). `sort` is a field name, `-field`
 * for descending; a cursor only continues the sort it was made for. `offset` still works (it
 * was the first way to page) but not together with `cursor`.
 */

export interface PageQuery {
  limit?: number;
  offset?: number;
  cursor?: string;
  sort?: string;
}

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/** The querystring schema of a list sorted by one of `sortFields`, with its own filters. */
export function pagedListSchema(
  sortFields: readonly string[],
  filters: Record<string, object> = {},
) {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT },
      offset: { type: 'integer', minimum: 0 },
      cursor: { type: 'string', minLength: 1, maxLength: 1000 },
      sort: { type: 'string', enum: sortFields.flatMap((field) => [field, `-${field}`]) },
      ...filters,
    },
  } as const;
}

/** A text search filter: part of a name (or id), any case. */
export const searchSchema = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** A tag filter: `key:value`. */
export const tagFilterSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9_.-]{1,64}:',
  maxLength: 400,
} as const;

export function parseTagFilter(
  tag: string | undefined,
): { key: string; value: string } | undefined {
  if (tag === undefined) return undefined;
  const colon = tag.indexOf(':');
  return { key: tag.slice(0, colon), value: tag.slice(colon + 1) };
}

interface CursorContent {
  /** The sort, as in the query (`name`, `-createdAt`). */
  s: string;
  /** The sort value of the last row. */
  v: string | number;
  /** Its id. */
  i: string;
}

export interface PageRequest {
  /** For the repository: one row more than the page, to tell whether another follows. */
  options: ListOptions;
  limit: number;
  sort: string;
  field: string;
}

/** The repository options of a page; 400 for a cursor that is not one, or of another sort. */
export function pageRequest(query: PageQuery, defaultField: string): PageRequest {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  const sort = query.sort ?? defaultField;
  const descending = sort.startsWith('-');
  const field = descending ? sort.slice(1) : sort;
  const options: ListOptions = { limit: limit + 1, sort: field, descending };
  if (query.offset !== undefined) options.offset = query.offset;
  if (query.cursor !== undefined) {
    if (query.offset !== undefined) {
      throw badRequest('querystring has both cursor and offset: page with one of them');
    }
    const cursor = decodeCursor(query.cursor);
    if (cursor.s !== sort) {
      throw badRequest(
        `querystring.cursor continues sort=${cursor.s}, not sort=${sort}: keep the sort of the first page`,
      );
    }
    options.after = { value: cursor.v, id: cursor.i };
  }
  return { options, limit, sort, field };
}

/**
 * The page and its `nextCursor`. `keyOf` gives a row's sort value for the field and its id.
 */
function pageOf<T>(
  rows: readonly T[],
  request: PageRequest,
  keyOf: (row: T, field: string) => { value: string | number; id: string },
): { items: T[]; nextCursor: string | null } {
  if (rows.length <= request.limit) return { items: [...rows], nextCursor: null };
  const items = rows.slice(0, request.limit);
  const last = keyOf(items[items.length - 1] as T, request.field);
  return { items, nextCursor: encodeCursor({ s: request.sort, v: last.value, i: last.id }) };
}

/**
 * One page of a repository list: `list` reads with the options of `query` (sorted by
 * `defaultField` unless it asks another sort), rows keyed by their `idField`.
 */
export async function listPage<T extends object>(
  query: PageQuery,
  defaultField: string,
  idField: keyof T,
  list: (options: ListOptions) => Promise<readonly T[]>,
): Promise<{ items: T[]; nextCursor: string | null }> {
  const page = pageRequest(query, defaultField);
  return pageOf(await list(page.options), page, fieldKey<T>(idField));
}

/** The key of a row whose sort fields are properties of the same name. */
export function fieldKey<T extends object>(idField: keyof T) {
  return (row: T, field: string): { value: string | number; id: string } => {
    const value = (row as Record<string, unknown>)[field];
    return {
      value: typeof value === 'number' ? value : String(value),
      id: String(row[idField]),
    };
  };
}

function encodeCursor(content: CursorContent): string {
  return Buffer.from(JSON.stringify(content), 'utf8').toString('base64url');
}

function decodeCursor(text: string): CursorContent {
  try {
    const content = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (
      typeof content === 'object' &&
      content !== null &&
      typeof (content as CursorContent).s === 'string' &&
      (typeof (content as CursorContent).v === 'string' ||
        typeof (content as CursorContent).v === 'number') &&
      typeof (content as CursorContent).i === 'string'
    ) {
      return content as CursorContent;
    }
  } catch {
    // Not base64url JSON: said below.
  }
  throw badRequest('querystring.cursor is not a cursor this API gave: pass nextCursor as it is');
}

/** A cursor over a list ordered by a numeric id (the audit log, events), newest first. */
export function idCursor(id: number): string {
  return encodeCursor({ s: '-id', v: id, i: String(id) });
}

export function idFromCursor(text: string): number {
  const cursor = decodeCursor(text);
  if (cursor.s !== '-id' || typeof cursor.v !== 'number') {
    throw badRequest('querystring.cursor is not a cursor of this list');
  }
  return cursor.v;
}

/** A page of rows held in memory (a device's pending downlinks): sorted, after the cursor. */
export function pageInMemory<T>(
  rows: readonly T[],
  request: PageRequest,
  keyOf: (row: T, field: string) => { value: string | number; id: string },
): { items: T[]; nextCursor: string | null } {
  const direction = request.options.descending === true ? -1 : 1;
  const compare = (
    a: { value: string | number; id: string },
    b: { value: string | number; id: string },
  ): number =>
    a.value < b.value ? -1 : a.value > b.value ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  let sorted = [...rows].sort(
    (a, b) => direction * compare(keyOf(a, request.field), keyOf(b, request.field)),
  );
  const after = request.options.after;
  if (after !== undefined) {
    sorted = sorted.filter((row) => direction * compare(keyOf(row, request.field), after) > 0);
  }
  const offset = request.options.offset ?? 0;
  return pageOf(sorted.slice(offset, offset + request.limit + 1), request, keyOf);
}
