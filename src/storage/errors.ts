/**
 * The one error type the storage layer throws for a condition a caller can act on. Callers
 * switch on `code`; the message names the thing and the reason, and never contains key
 * material or a database password.
 */
export type StorageErrorCode =
  /** The database URL has a scheme this build cannot use. */
  | 'UNSUPPORTED_DATABASE_URL'
  /** The database server or file could not be reached or opened. */
  | 'DATABASE_UNAVAILABLE'
  /** A schema migration failed, or the database was migrated by a newer Galet. */
  | 'MIGRATION_FAILED'
  /** An input value is malformed (bad EUI, key length, counter range, ...). */
  | 'INVALID_INPUT'
  /** The row a call refers to does not exist. */
  | 'NOT_FOUND'
  /** A row with the same identity exists already. */
  | 'ALREADY_EXISTS'
  /** An insert refers to a row that does not exist (e.g. a device in an unknown application). */
  | 'MISSING_REFERENCE'
  /** A delete would orphan rows that refer to this one (e.g. an application with devices). */
  | 'STILL_REFERENCED'
  /** A state transition is not allowed from the row's current state. */
  | 'INVALID_STATE'
  /** A counter reached the end of its range (JoinNonce 2^24 - 1, FCntDown 2^32 - 1). */
  | 'COUNTER_EXHAUSTED'
  /** A tenant's quota (maxDevices, maxGateways) would be exceeded. */
  | 'QUOTA_EXCEEDED'
  /** A master key is missing, malformed or unreadable. */
  | 'INVALID_MASTER_KEY'
  /** A sealed secret did not authenticate: tampered, wrong master key or wrong row. */
  | 'SECRET_OPEN_FAILED';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  /** What a caller may show besides the message (a quota's limit and use); never a secret. */
  readonly details: Record<string, unknown> | undefined;
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options);
    this.details = options?.details;
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/** Which integrity constraint a driver error reports, for both engines. */
export type ConstraintKind = 'unique' | 'foreign-key' | 'other';

/**
 * Classifies a constraint violation from better-sqlite3 (`SQLITE_CONSTRAINT_*` codes) or pg
 * (SQLSTATE class 23). Anything else is `undefined`: not a constraint violation.
 */
export function constraintViolation(error: unknown): ConstraintKind | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  switch (code) {
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case '23505':
      return 'unique';
    case 'SQLITE_CONSTRAINT_FOREIGNKEY':
    // SQLite reports ON DELETE RESTRICT this way (Galet defines no triggers of its own).
    case 'SQLITE_CONSTRAINT_TRIGGER':
    case '23503':
      return 'foreign-key';
    default:
      return code.startsWith('SQLITE_CONSTRAINT') || code.startsWith('23') ? 'other' : undefined;
  }
}
