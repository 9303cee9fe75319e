import { StorageError } from './errors.js';
import type { DatabaseDialect, IsoTimestamp } from './schema.js';

/** What every repository accepts besides its database and SecretBox. */
export interface RepositoryOptions {
  /** The clock for created_at / updated_at; tests pass a fixed one. */
  now?: () => Date;
}

/**
 * A page of a list: `limit` 1 to 1000 (default 100), `offset` from 0. Lists that sort (see
 * listing.ts) also take a sort field, a direction and a keyset position: the rows after `after`.
 */
export interface ListOptions {
  limit?: number;
  offset?: number;
  /** The field to sort by, as the list names it (`name`, `createdAt`); default the list's own. */
  sort?: string;
  descending?: boolean;
  /** Only the rows after this one in the sort order (the last row of the previous page). */
  after?: { value: string | number; id: string };
}

export const MAX_LIST_LIMIT = 1000;
export const DEFAULT_LIST_LIMIT = 100;
export const UINT32_MAX = 0xffff_ffff;

export function clock(options: RepositoryOptions | undefined): () => IsoTimestamp {
  const now = options?.now ?? (() => new Date());
  return () => now().toISOString();
}

/** An ISO-8601 instant, normalised to UTC with milliseconds so that stored values sort as text. */
export function toIsoTimestamp(value: string, what: string): IsoTimestamp {
  // Date parses much more than ISO-8601; insist on a date, a time and an explicit zone.
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
  const time = typeof value === 'string' && iso.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what} must be an ISO-8601 time with a zone, e.g. 2025-01-31T12:00:00Z, got ${quote(value)}`,
    );
  }
  return new Date(time).toISOString();
}

export function toDbBoolean(dialect: DatabaseDialect, value: boolean): boolean | 0 | 1 {
  if (dialect === 'postgres') return value;
  return value ? 1 : 0;
}

export function fromDbBoolean(value: boolean | number): boolean {
  return value === true || value === 1;
}

/** A view for the drivers without copying: both bind a Buffer as blob/bytea. */
export function toDbBytes(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** A plain Uint8Array copy of what a driver returned (a Buffer, often from a shared pool). */
export function fromDbBytes(value: Uint8Array): Uint8Array {
  return new Uint8Array(value);
}

/** An EUI-64 as lower-case hex (display order); any case accepted. */
export function toEui(value: string, what: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{16}$/.test(value)) {
    throw new StorageError('INVALID_INPUT', `${what} must be 16 hex digits, got ${quote(value)}`);
  }
  return value.toLowerCase();
}

export function assertInteger(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }
}

export function assertFiniteNumber(value: number, min: number, max: number, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what} must be a number from ${min} to ${max}, got ${String(value)}`,
    );
  }
}

/** An AES-128 key: 16 bytes. The message never shows the bytes. */
export function assertKey(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== 16) {
    const length = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw new StorageError('INVALID_INPUT', `${what} must be 16 bytes, got ${length}`);
  }
}

export function toName(value: string, what: string, maxLength = 200): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > maxLength) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what} must be a non-empty text of at most ${maxLength} characters`,
    );
  }
  return value;
}

export function page(options: ListOptions | undefined): { limit: number; offset: number } {
  const limit = options?.limit ?? DEFAULT_LIST_LIMIT;
  const offset = options?.offset ?? 0;
  // One more than the largest page: the API asks for a row beyond the page to tell whether
  // another page follows.
  assertInteger(limit, 1, MAX_LIST_LIMIT + 1, 'limit');
  assertInteger(offset, 0, Number.MAX_SAFE_INTEGER, 'offset');
  return { limit, offset };
}

export function oneOf<T extends string>(value: T, allowed: readonly T[], what: string): void {
  if (!allowed.includes(value)) {
    throw new StorageError(
      'INVALID_INPUT',
      `${what} must be one of ${allowed.join(', ')}, got ${quote(value)}`,
    );
  }
}

function quote(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
