import {
  type Expression,
  type ExpressionBuilder,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
} from 'kysely';
import { StorageError } from './errors.js';
import type { DatabaseDialect } from './schema.js';
import { type ListOptions, page, toDbBoolean } from './values.js';

/**
 * What the lists of the tenant-owned tables share: which rows a caller may see (`TenantScope`),
 * sorting with keyset pagination (`ordered`), a case-insensitive text search and tags.
 */

/**
 * The rows a principal may see, for list filters (`undefined` where a list takes one: every
 * row). A row is in scope when any of the parts admits it.
 */
export interface TenantScope {
  /** Rows of these tenants. */
  tenantIds: readonly string[];
  /** Rows of these applications (integration keys and memberships). */
  applicationIds?: readonly string[];
  /** Shared rows (gateways), whoever owns them. */
  shared?: boolean;
  /** Rows without a tenant (the operator's catalogue of device profiles). */
  untenanted?: boolean;
}

/** The columns a scope applies to; `application` and `shared` where the table has them. */
export interface ScopeColumns {
  tenant: string;
  application?: string;
  shared?: string;
}

/** False when the scope admits nothing at all: the list is empty without asking. */
export function scopeAdmitsAny(scope: TenantScope | undefined): boolean {
  return (
    scope === undefined ||
    scope.tenantIds.length > 0 ||
    (scope.applicationIds?.length ?? 0) > 0 ||
    scope.shared === true ||
    scope.untenanted === true
  );
}

// biome-ignore lint/suspicious/noExplicitAny: these helpers serve every table; callers are typed.
type AnyBuilder = ExpressionBuilder<any, any>;
// biome-ignore lint/suspicious/noExplicitAny: see above.
type AnySelect = SelectQueryBuilder<any, any, any>;

/** The WHERE of a scope (call only when `scopeAdmitsAny`). */
export function scopeFilter(
  eb: AnyBuilder,
  scope: TenantScope,
  columns: ScopeColumns,
  dialect: DatabaseDialect,
): Expression<SqlBool> {
  const parts: Expression<SqlBool>[] = [];
  if (scope.tenantIds.length > 0) parts.push(eb(columns.tenant, 'in', [...scope.tenantIds]));
  if (columns.application !== undefined && (scope.applicationIds?.length ?? 0) > 0) {
    parts.push(eb(columns.application, 'in', [...(scope.applicationIds ?? [])]));
  }
  if (columns.shared !== undefined && scope.shared === true) {
    parts.push(eb(columns.shared, '=', toDbBoolean(dialect, true)));
  }
  if (scope.untenanted === true) parts.push(eb(columns.tenant, 'is', null));
  return eb.or(parts);
}

/** The options every list of tenant-owned rows takes; lists add their own filters. */
export interface OwnedListOptions extends ListOptions {
  /** The rows the caller may see; absent: every row. */
  scope?: TenantScope;
  /** Only this tenant's. */
  tenantId?: string;
  /** Only rows whose name (or, where the list says so, id) contains this text (any case). */
  search?: string;
}

/** The `scope` and `tenantId` filters of `options` (call only when `scopeAdmitsAny`). */
export function whereOwned<Q extends AnySelect>(
  query: Q,
  options: OwnedListOptions | undefined,
  columns: ScopeColumns,
  dialect: DatabaseDialect,
): Q {
  let q: AnySelect = query;
  const scope = options?.scope;
  if (scope !== undefined) {
    q = q.where((eb: AnyBuilder) => scopeFilter(eb, scope, columns, dialect));
  }
  if (options?.tenantId !== undefined) q = q.where(columns.tenant, '=', options.tenantId);
  return q as Q;
}

/** A position in a sorted list: the sort value and the id of the last row of a page. */
export interface ListPosition {
  value: string | number;
  id: string;
}

/** A list's sort fields (API names) and their columns, its id column and its default sort. */
export interface SortColumns<F extends string> {
  fields: Readonly<Record<F, string>>;
  id: string;
  defaultField: F;
}

/** The sort of a table of named rows (`id`, `name`, timestamps): oldest first by default. */
export const NAMED_ROW_SORT: SortColumns<'createdAt' | 'updatedAt' | 'name' | 'id'> = {
  fields: { createdAt: 'created_at', updatedAt: 'updated_at', name: 'name', id: 'id' },
  id: 'id',
  defaultField: 'createdAt',
};

/**
 * Orders the query by the sort field (then by id, so that the order is total), applies the
 * keyset position (`after`: only rows after that one) and the page (`limit`, `offset`).
 * `INVALID_INPUT` for a field the list does not sort by. Sort columns are never null.
 */
export function ordered<Q extends AnySelect, F extends string>(
  query: Q,
  columns: SortColumns<F>,
  options: ListOptions | undefined,
): Q {
  const { limit, offset } = page(options);
  const field = (options?.sort ?? columns.defaultField) as F;
  const column: string | undefined = columns.fields[field];
  if (column === undefined) {
    throw new StorageError(
      'INVALID_INPUT',
      `cannot sort by ${JSON.stringify(String(field)).slice(0, 40)}: sort by one of ${Object.keys(columns.fields).join(', ')}`,
    );
  }
  const direction = options?.descending === true ? 'desc' : 'asc';
  const after = options?.after;
  let q: AnySelect = query;
  if (after !== undefined) {
    const compare = direction === 'desc' ? '<' : '>';
    q =
      column === columns.id
        ? q.where(columns.id, compare, String(after.id))
        : q.where((eb: AnyBuilder) =>
            eb.or([
              eb(column, compare, after.value),
              eb.and([eb(column, '=', after.value), eb(columns.id, compare, String(after.id))]),
            ]),
          );
  }
  q = q.orderBy(column, direction);
  if (column !== columns.id) q = q.orderBy(columns.id, direction);
  return q.limit(limit).offset(offset) as Q;
}

/**
 * `column` contains `term`, ignoring ASCII case, on both engines (LIKE is case-insensitive in
 * SQLite and case-sensitive in PostgreSQL, so both sides are lowered; `%` and `_` are escaped).
 */
export function containsText(column: string, term: string): Expression<SqlBool> {
  const pattern = `%${term.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql<SqlBool>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
}

/** A tag key: letters, digits, `_`, `-`, `.`; 1 to 64 characters. */
export const TAG_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_TAGS = 50;
export const MAX_TAG_VALUE_LENGTH = 256;

/** Tags checked and serialised with sorted keys. `INVALID_INPUT` names what is wrong. */
export function toTagsText(tags: Readonly<Record<string, string>> | undefined): string {
  if (tags === undefined) return '{}';
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) {
    throw new StorageError('INVALID_INPUT', 'tags must be an object of strings');
  }
  const keys = Object.keys(tags).sort();
  if (keys.length > MAX_TAGS) {
    throw new StorageError('INVALID_INPUT', `at most ${MAX_TAGS} tags, got ${keys.length}`);
  }
  const sorted: Record<string, string> = {};
  for (const key of keys) {
    const value = tags[key];
    if (!TAG_KEY.test(key)) {
      throw new StorageError(
        'INVALID_INPUT',
        `tag key ${JSON.stringify(key).slice(0, 70)} must be 1 to 64 letters, digits, _, - or .`,
      );
    }
    if (typeof value !== 'string' || value.length > MAX_TAG_VALUE_LENGTH) {
      throw new StorageError(
        'INVALID_INPUT',
        `tag ${key} must be a text of at most ${MAX_TAG_VALUE_LENGTH} characters`,
      );
    }
    sorted[key] = value;
  }
  return JSON.stringify(sorted);
}

export function fromTagsText(text: string): Record<string, string> {
  return JSON.parse(text) as Record<string, string>;
}

/** One tag filter: the row's tag `key` equals `value`. */
export interface TagFilter {
  key: string;
  value: string;
}

/** `column`'s tag `key` equals `value`: JSON functions differ, so each engine its own. */
export function tagEquals(
  dialect: DatabaseDialect,
  column: string,
  filter: TagFilter,
): Expression<SqlBool> {
  if (!TAG_KEY.test(filter.key)) {
    throw new StorageError(
      'INVALID_INPUT',
      `tag key ${JSON.stringify(filter.key).slice(0, 70)} is not valid`,
    );
  }
  const value = String(filter.value);
  return dialect === 'postgres'
    ? sql<SqlBool>`(${sql.ref(column)}::jsonb ->> ${filter.key}) = ${value}`
    : sql<SqlBool>`json_extract(${sql.ref(column)}, ${`$."${filter.key}"`}) = ${value}`;
}
