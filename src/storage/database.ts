import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  sql,
} from 'kysely';
import pg from 'pg';
import { StorageError } from './errors.js';
import { migrationProvider } from './migrations/index.js';
import type { DatabaseDialect, Schema } from './schema.js';
import { WalCheckpointer } from './wal-checkpointer.js';

/** The logging the storage layer does: structured fields first, as pino takes them. */
export interface StorageLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface OpenDatabaseOptions {
  /**
   * `postgres://…` / `postgresql://…` for PostgreSQL, `sqlite:<path>` or `:memory:` for SQLite.
   * Without it, the SQLite file `<dataDir>/galet.sqlite`.
   */
  url?: string;
  /** The data directory, created with mode 0700 when missing. Needed when `url` is not given. */
  dataDir?: string;
  logger?: StorageLogger;
  /** PostgreSQL: connections in the pool (default 10). */
  poolSize?: number;
  /** PostgreSQL: how long to wait for a connection (default 10 s). */
  connectTimeoutMs?: number;
  /** SQLite: how long a writer waits for another process's lock (default 5 s). */
  busyTimeoutMs?: number;
  /**
   * SQLite file: copy the WAL into the database file on a thread of its own (WalCheckpointer)
   * instead of inside the commits (default false: servers turn it on, see openDataDir).
   */
  walCheckpointThread?: boolean;
  /** With `walCheckpointThread`: how often it checkpoints (default 20 ms). */
  walCheckpointIntervalMs?: number;
}

export interface GaletDatabase {
  readonly db: Kysely<Schema>;
  readonly dialect: DatabaseDialect;
  /** Where the data lives, safe to log: a file path, `:memory:` or `user@host:port/database`. */
  readonly location: string;
  /**
   * SQLite only: the better-sqlite3 handle under Kysely, for the few hot paths that run prepared
   * statements directly (see uplink-commits.ts). Everything else goes through `db`.
   */
  readonly sqlite?: SqliteDatabase.Database;
  /** SQLite file with `walCheckpointThread`: the thread that checkpoints the WAL. */
  readonly checkpointer?: WalCheckpointer;
  /** Closes the SQLite file or ends the PostgreSQL pool. Safe to call twice. */
  close(): Promise<void>;
}

export const SQLITE_FILE_NAME = 'galet.sqlite';
export const MIGRATION_TABLE = 'galet_migration';
export const MIGRATION_LOCK_TABLE = 'galet_migration_lock';

type Target =
  | { dialect: 'sqlite'; path: string }
  | { dialect: 'postgres'; url: string; location: string; password: string };

/**
 * Opens (and creates when needed) the database and brings its schema up to date.
 * Errors: `UNSUPPORTED_DATABASE_URL`, `DATABASE_UNAVAILABLE` (naming the host or file, never the
 * password), `MIGRATION_FAILED`.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<GaletDatabase> {
  const target = parseTarget(options);
  const opened =
    target.dialect === 'sqlite'
      ? await openSqlite(target.path, options)
      : await openPostgres(target, options);
  await migrate(opened, options.logger);
  return opened;
}

function parseTarget(options: OpenDatabaseOptions): Target {
  const url = options.url?.trim();
  if (url === undefined || url === '') {
    if (options.dataDir === undefined || options.dataDir === '') {
      throw new StorageError(
        'UNSUPPORTED_DATABASE_URL',
        'no database: give a database URL or a data directory',
      );
    }
    return { dialect: 'sqlite', path: join(options.dataDir, SQLITE_FILE_NAME) };
  }
  if (url === ':memory:') return { dialect: 'sqlite', path: ':memory:' };
  if (url.startsWith('sqlite:')) {
    // sqlite:relative/path, sqlite:/absolute/path, sqlite:///absolute/path, sqlite::memory:
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') {
      throw new StorageError('UNSUPPORTED_DATABASE_URL', 'sqlite: URL without a file path');
    }
    return { dialect: 'sqlite', path };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // The URL itself may hold a password: do not repeat it.
      throw new StorageError('UNSUPPORTED_DATABASE_URL', 'malformed PostgreSQL URL');
    }
    const user = parsed.username ? `${decode(parsed.username)}@` : '';
    const host = parsed.host || 'localhost';
    const database = decode(parsed.pathname.replace(/^\//, ''));
    return {
      dialect: 'postgres',
      url,
      location: `${user}${host}${database ? `/${database}` : ''}`,
      password: decode(parsed.password),
    };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new StorageError(
    'UNSUPPORTED_DATABASE_URL',
    `unsupported database URL${scheme ? ` scheme '${scheme}:'` : ''}: use postgres://, postgresql://, sqlite:<path> or :memory:`,
  );
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component;
  }
}

// Kysely runs SQLite migrations outside a transaction (its adapter says SQLite has no
// transactional DDL). SQLite does roll DDL back, so a failed migration leaves nothing half done.
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

// BEGIN IMMEDIATE takes the write lock up front. A deferred BEGIN that reads and then writes
// fails at once with SQLITE_BUSY when another process wrote meanwhile (busy_timeout does not
// apply to that upgrade); every Galet transaction writes, so this only turns failures into waits.
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** Most compiled statements kept per connection (Kysely's queries are a few hundred texts). */
const STATEMENT_CACHE_SIZE = 1000;

/**
 * The connection as Kysely sees it, with its compiled statements kept by SQL text: Kysely's
 * SQLite driver prepares every query again, which cost more than running it on the paths that
 * run one small query per event (measured: a sixth of the main thread under uplink load).
 * Reusing a statement is safe here because Kysely runs one query at a time per connection.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sqlText: string) {
      let statement = statements.get(sqlText);
      if (statement === undefined) {
        statement = sqlite.prepare(sqlText);
        if (statements.size >= STATEMENT_CACHE_SIZE) {
          const oldest = statements.keys().next();
          if (oldest.done !== true) statements.delete(oldest.value);
        }
        statements.set(sqlText, statement);
      }
      return statement;
    },
  } as SqliteDialectConfig['database'];
}

class GaletSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }

  override createAdapter(): SqliteAdapter {
    return new TransactionalSqliteAdapter();
  }
}

async function openSqlite(path: string, options: OpenDatabaseOptions): Promise<GaletDatabase> {
  const memory = path === ':memory:';
  const location = memory ? ':memory:' : resolve(path);
  if (!memory) {
    // The data directory holds keys (master.key) too: only its owner may enter it.
    await mkdir(dirname(location), { recursive: true, mode: 0o700 });
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(location);
  } catch (error) {
    throw unavailable(`cannot open SQLite database ${location}`, error);
  }
  try {
    const journalMode = sqlite.pragma('journal_mode = WAL', { simple: true });
    if (!memory && journalMode !== 'wal') {
      options.logger?.warn(
        { database: location, journalMode },
        'SQLite refused WAL mode; readers will block writers',
      );
    }
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
  } catch (error) {
    sqlite.close();
    throw unavailable(`cannot use SQLite database ${location}`, error);
  }
  const db = new Kysely<Schema>({
    dialect: new GaletSqliteDialect({ database: withStatementCache(sqlite) }),
  });
  const checkpointer =
    options.walCheckpointThread === true && !memory
      ? new WalCheckpointer(sqlite, {
          ...(options.logger === undefined ? {} : { logger: options.logger }),
          ...(options.walCheckpointIntervalMs === undefined
            ? {}
            : { intervalMs: options.walCheckpointIntervalMs }),
        })
      : undefined;
  let closing: Promise<void> | undefined;
  return {
    db,
    dialect: 'sqlite',
    location,
    sqlite,
    ...(checkpointer === undefined ? {} : { checkpointer }),
    close: () => {
      closing ??= (async () => {
        await checkpointer?.close();
        // Recommended before closing a connection that ran queries (sqlite.org/lang_analyze.html).
        await sql`pragma optimize`.execute(db).catch(() => undefined);
        await db.destroy();
      })();
      return closing;
    },
  };
}

/** int8 (bigint, count(*), identity ids) as a JS number: every value Galet stores is below 2^53. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`bigint ${text} does not fit a JavaScript number`);
  }
  return value;
}

const INT8_OID = 20;

async function openPostgres(
  target: Extract<Target, { dialect: 'postgres' }>,
  options: OpenDatabaseOptions,
): Promise<GaletDatabase> {
  const pool = new pg.Pool({
    connectionString: target.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: 'galet',
    // Per pool, not pg.types.setTypeParser: that would change every pg user in the process.
    types: {
      getTypeParser: (oid, format) =>
        oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format),
    },
  });
  // An idle client that loses its server emits 'error' on the pool; unhandled, it would end
  // the process. The next query gets a fresh connection.
  pool.on('error', (error) => {
    options.logger?.warn(
      { database: target.location, error: scrub(error.message, target.password) },
      'PostgreSQL connection lost',
    );
  });
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw unavailable(`PostgreSQL at ${target.location} is not reachable`, error, target.password);
  }
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  let closing: Promise<void> | undefined;
  return {
    db,
    dialect: 'postgres',
    location: target.location,
    close: () => {
      closing ??= db.destroy();
      return closing;
    },
  };
}

async function migrate(database: GaletDatabase, logger: StorageLogger | undefined): Promise<void> {
  const migrator = new Migrator({
    db: database.db,
    provider: migrationProvider(database.dialect),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  let outcome: Awaited<ReturnType<Migrator['migrateToLatest']>>;
  try {
    outcome = await migrator.migrateToLatest();
  } catch (error) {
    outcome = { error };
  }
  if (outcome.error !== undefined) {
    await database.close().catch(() => undefined);
    const failed = outcome.results?.find((result) => result.status === 'Error')?.migrationName;
    let reason = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    if (/previously executed migration .* is missing/.test(reason)) {
      reason += ' (was this database migrated by a newer version of Galet?)';
    }
    throw new StorageError(
      'MIGRATION_FAILED',
      `migrating ${database.location}${failed ? ` (${failed})` : ''} failed: ${reason}`,
      { cause: outcome.error },
    );
  }
  for (const result of outcome.results ?? []) {
    logger?.info(
      { database: database.location, migration: result.migrationName },
      'applied database migration',
    );
  }
}

function unavailable(what: string, error: unknown, password = ''): StorageError {
  const reason = error instanceof Error ? error.message : String(error);
  const safe = scrub(reason, password);
  // A cause whose message held the password would leak it to whoever logs the error.
  return new StorageError(
    'DATABASE_UNAVAILABLE',
    `${what}: ${safe}`,
    safe === reason ? { cause: error } : undefined,
  );
}

/** Belt and braces: no driver message should hold the password, but never let one through. */
function scrub(message: string, password: string): string {
  return password.length >= 3 ? message.split(password).join('***') : message;
}
