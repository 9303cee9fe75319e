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
