import { type CreateTableBuilder, sql } from 'kysely';
import type { DatabaseDialect } from '../schema.js';

/**
 * Column types that differ between the engines. Migrations use these names and nothing else
 * dialect-specific, so one migration file serves both (README.md, "Portability rules").
 */
export interface ColumnTypes {
  /** Values beyond 2^31 (DevAddr, 32-bit counters): SQLite integers are 64-bit already. */
  readonly int64: 'bigint' | 'integer';
  readonly bytes: 'bytea' | 'blob';
  readonly boolean: 'boolean' | 'integer';
  readonly double: 'double precision' | 'real';
}

export function columnTypes(dialect: DatabaseDialect): ColumnTypes {
  return dialect === 'postgres'
    ? { int64: 'bigint', bytes: 'bytea', boolean: 'boolean', double: 'double precision' }
    : { int64: 'integer', bytes: 'blob', boolean: 'integer', double: 'real' };
}

// biome-ignore lint/suspicious/noExplicitAny: a migration builds tables independent of the current schema types.
type AnyTableBuilder = CreateTableBuilder<any, any>;

/**
 * A table builder made STRICT on SQLite (a value of the wrong type is refused, as PostgreSQL
 * does); unchanged on PostgreSQL.
 */
export function strictTables(
  dialect: DatabaseDialect,
): <B extends AnyTableBuilder>(builder: B) => B {
  return <B extends AnyTableBuilder>(builder: B): B =>
    (dialect === 'sqlite' ? builder.modifyEnd(sql`strict`) : builder) as B;
}
