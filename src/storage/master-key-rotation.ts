import { type Kysely, sql } from 'kysely';
import type { GaletDatabase } from './database.js';
import { sessionKeysAssociatedData } from './device-sessions.js';
import { rootKeyAssociatedData } from './devices.js';
import { isStorageError, StorageError } from './errors.js';
import { SecretBox } from './secret-box.js';
import { fromDbBytes, toDbBytes } from './values.js';

/**
 * Every column sealed under the master key: its table, the row's key column and the associated
 * data the owning repository seals it with. A new sealed column must be added here, or a master
 * key rotation would leave it under the old key (test/storage/master-key-rotation.test.ts
 * compares this list with the `*_enc` columns of a migrated database).
 */
export interface SealedColumn {
  table: string;
  keyColumn: string;
  column: string;
  associatedData(key: string): string;
}

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    table: 'devices',
    keyColumn: 'dev_eui',
    column: 'app_key_enc',
    associatedData: (devEui) => rootKeyAssociatedData(devEui, 'app_key'),
  },
  {
    table: 'devices',
    keyColumn: 'dev_eui',
    column: 'nwk_key_enc',
    associatedData: (devEui) => rootKeyAssociatedData(devEui, 'nwk_key'),
  },
  {
    table: 'device_sessions',
    keyColumn: 'dev_eui',
    column: 'keys_enc',
    associatedData: sessionKeysAssociatedData,
  },
  // users.ts: totpData(); link-tokens.ts: kekAssociatedData(); webhooks.ts: *AssociatedData().
  {
    table: 'users',
    keyColumn: 'id',
    column: 'totp_secret_enc',
    associatedData: (id) => `user:${id}:totp_secret`,
  },
  {
    table: 'users',
    keyColumn: 'id',
    column: 'totp_pending_enc',
    associatedData: (id) => `user:${id}:totp_pending`,
  },
  {
    table: 'link_tokens',
    keyColumn: 'id',
    column: 'kek_enc',
    associatedData: (id) => `link_token:${id}:kek`,
  },
  {
    table: 'webhooks',
    keyColumn: 'id',
    column: 'secret_enc',
    associatedData: (id) => `webhook:${id}:secret`,
  },
  {
    table: 'webhooks',
    keyColumn: 'id',
    column: 'headers_enc',
    associatedData: (id) => `webhook:${id}:headers`,
  },
];

/** `table.column`, as progress and errors name a sealed column. */
export function sealedColumnName(column: SealedColumn): string {
  return `${column.table}.${column.column}`;
}

/** Rows read (and re-encrypted) per query. */
const BATCH_ROWS = 500;

// Table and column names come from SEALED_COLUMNS (constants); every value is a bound parameter.
type LooseDatabase = Kysely<Record<string, Record<string, unknown>>>;

interface SealedRow {
  key: string;
  value: Uint8Array;
}

/** The sealed values of one column, in key order, a batch at a time. */
async function* sealedRows(db: LooseDatabase, column: SealedColumn): AsyncGenerator<SealedRow[]> {
  let after: string | undefined;
  for (;;) {
    let query = db
      .selectFrom(column.table)
      .select([`${column.keyColumn} as key`, `${column.column} as value`])
      .where(column.column, 'is not', null)
      .orderBy(column.keyColumn)
      .limit(BATCH_ROWS);
    if (after !== undefined) query = query.where(column.keyColumn, '>', after);
    const rows = (await query.execute()) as { key: unknown; value: unknown }[];
    if (rows.length === 0) return;
    yield rows.map((row) => ({
      key: String(row.key),
      value: fromDbBytes(row.value as Uint8Array),
    }));
    after = String(rows[rows.length - 1]!.key);
    if (rows.length < BATCH_ROWS) return;
  }
}

async function countSealed(db: LooseDatabase, column: SealedColumn): Promise<number> {
  const row = (await db
    .selectFrom(column.table)
    .select((eb) => eb.fn.countAll().as('count'))
    .where(column.column, 'is not', null)
    .executeTakeFirstOrThrow()) as { count: unknown };
  return Number(row.count);
}

/** Per sealed column: how many values, and under which master key. */
export interface SealedColumnCensus {
  column: string;
  total: number;
  /** Values sealed under each master key id; `first-format` for values that name no key. */
  byKeyId: Record<string, number>;
}

/** What `censusSealedValues` found, with the values of the first format sorted by key. */
export interface SealedCensus {
  columns: SealedColumnCensus[];
  total: number;
  /** Values per master key id, over every column; first-format values counted under the key that opens them. */
  byKeyId: Record<string, number>;
  /** Values no given key opens: `table.column`, row key and key id (never the value). */
  unreadable: { column: string; key: string; sealedUnder: string; reason: string }[];
}

/**
 * Counts the sealed values of every column by the master key they are under, and checks that
 * each one opens under the box its key id names (a first-format value: the first box that opens
 * it). Reads only.
 */
export async function censusSealedValues(
  database: GaletDatabase,
  boxes: readonly SecretBox[],
): Promise<SealedCensus> {
  const db = database.db as unknown as LooseDatabase;
  const census: SealedCensus = { columns: [], total: 0, byKeyId: {}, unreadable: [] };
  for (const column of SEALED_COLUMNS) {
    const name = sealedColumnName(column);
    const entry: SealedColumnCensus = { column: name, total: 0, byKeyId: {} };
    for await (const rows of sealedRows(db, column)) {
      for (const row of rows) {
        entry.total++;
        const keyId = SecretBox.keyIdOf(row.value);
        const label = keyId === null ? 'first-format' : (keyId ?? 'malformed');
        entry.byKeyId[label] = (entry.byKeyId[label] ?? 0) + 1;
        const candidates = keyId === null ? boxes : boxes.filter((box) => box.keyId === keyId);
        let opened: SecretBox | undefined;
        let reason =
          keyId === undefined ? 'not a sealed value' : `sealed under master key ${label}`;
        for (const box of candidates) {
          try {
            box.open(row.value, column.associatedData(row.key)).fill(0);
            opened = box;
            break;
          } catch (error) {
            if (!isStorageError(error, 'SECRET_OPEN_FAILED')) throw error;
            reason = error.message;
          }
        }
        if (opened === undefined) {
          census.unreadable.push({ column: name, key: row.key, sealedUnder: label, reason });
        } else census.byKeyId[opened.keyId] = (census.byKeyId[opened.keyId] ?? 0) + 1;
      }
    }
    census.total += entry.total;
    census.columns.push(entry);
  }
  return census;
}

export interface RotationProgress {
  /** `table.column`. */
  column: string;
  done: number;
  total: number;
}

export interface RotateSealedValuesOptions {
  from: SecretBox;
  to: SecretBox;
  /** Called after each batch of a column (and once per column before its first batch). */
  onProgress?: (progress: RotationProgress) => void | Promise<void>;
  /**
   * Runs inside the transaction once every value is rewritten, before the commit; throwing
   * rolls everything back. The caller writes what must exist before the commit (the new key).
   */
  beforeCommit?: () => Promise<void>;
}

export interface RotationResult {
  columns: { column: string; rewritten: number }[];
  rewritten: number;
}

/**
 * Re-encrypts every sealed value from the master key `from` to `to`, in one transaction: it
 * commits with every value under `to`, or rolls back with every value as it was (a value that
 * does not open under `from`, a failed statement, a callback that throws). Values already under
 * `to` are refused too: a database on two keys is not something to guess about.
 *
 * The caller makes sure no Galet uses the database meanwhile (`claimDatabaseForRotation`): a
 * running server would keep sealing under the old key. On PostgreSQL the sealed tables are also
 * locked for the transaction (EXCLUSIVE: plain reads only), so a writer that slipped through
 * waits or fails instead of writing in between.
 */
export async function rotateSealedValues(
  database: GaletDatabase,
  options: RotateSealedValuesOptions,
): Promise<RotationResult> {
  const { from, to } = options;
  if (from.keyId === to.keyId) {
    throw new StorageError(
      'INVALID_MASTER_KEY',
      `the new master key is the current one (key id ${from.keyId})`,
    );
  }
  return database.db.transaction().execute(async (trx) => {
    const db = trx as unknown as LooseDatabase;
    if (database.dialect === 'postgres') {
      await sql`set local lock_timeout = '5s'`.execute(trx);
      const tables = [...new Set(SEALED_COLUMNS.map((column) => column.table))];
      await sql`lock table ${sql.join(tables.map((table) => sql.table(table)))} in exclusive mode`.execute(
        trx,
      );
    }
    const result: RotationResult = { columns: [], rewritten: 0 };
    for (const column of SEALED_COLUMNS) {
      const name = sealedColumnName(column);
      const total = await countSealed(db, column);
      let done = 0;
      await options.onProgress?.({ column: name, done, total });
      for await (const rows of sealedRows(db, column)) {
        for (const row of rows) {
          const associatedData = column.associatedData(row.key);
          let plaintext: Uint8Array;
          try {
            plaintext = from.open(row.value, associatedData);
          } catch (error) {
            if (!isStorageError(error, 'SECRET_OPEN_FAILED')) throw error;
            throw new StorageError(
              'SECRET_OPEN_FAILED',
              `${name} of ${column.keyColumn} ${row.key} does not open under the current master key ${from.keyId}: ${error.message}; nothing was changed`,
              { cause: error },
            );
          }
          const sealed = to.seal(plaintext, associatedData);
          plaintext.fill(0);
          await db
            .updateTable(column.table)
            .set({ [column.column]: toDbBytes(sealed) })
            .where(column.keyColumn, '=', row.key)
            .execute();
          done++;
        }
        await options.onProgress?.({ column: name, done, total });
      }
      result.columns.push({ column: name, rewritten: done });
      result.rewritten += done;
    }
    await options.beforeCommit?.();
    return result;
  });
}

/**
 * Makes sure no other Galet uses the database, and keeps it so until it is closed:
 * - SQLite: takes an exclusive lock on the file (`locking_mode = EXCLUSIVE`, held until the
 *   connection closes). A server that has the file open holds a shared lock (WAL mode), so this
 *   fails at once: refused with `DATABASE_UNAVAILABLE`. A Galet started meanwhile cannot open it.
 * - PostgreSQL: refuses when other connections named `galet` (every Galet pool's
 *   application_name) are open on the database. Open the database with `poolSize: 1`, so that the
 *   only Galet connection is this one.
 */
export async function claimDatabaseForRotation(database: GaletDatabase): Promise<void> {
  if (database.dialect === 'sqlite') {
    const sqlite = database.sqlite;
    if (sqlite === undefined || database.location === ':memory:') {
      throw new StorageError('DATABASE_UNAVAILABLE', 'an in-memory database has nothing to rotate');
    }
    sqlite.pragma('busy_timeout = 0');
    sqlite.pragma('locking_mode = EXCLUSIVE');
    try {
      sqlite.exec('begin exclusive');
      sqlite.exec('commit');
    } catch (error) {
      // Back to shared locks, released by the next read: closing would otherwise wait for them.
      sqlite.pragma('locking_mode = NORMAL');
      try {
        sqlite.prepare('select count(*) from sqlite_master').get();
      } catch {
        // Still busy: the connection closes anyway.
      }
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
      throw new StorageError(
        'DATABASE_UNAVAILABLE',
        `the SQLite database ${database.location} is in use by another process (is Galet still running?): stop it first`,
        { cause: error },
      );
    } finally {
      sqlite.pragma('busy_timeout = 5000');
    }
    return;
  }
  const { rows } = await sql<{ others: number | string }>`
    select count(*) as others from pg_stat_activity
    where datname = current_database() and application_name = 'galet' and pid <> pg_backend_pid()
  `.execute(database.db);
  const others = Number(rows[0]?.others ?? 0);
  if (others > 0) {
    throw new StorageError(
      'DATABASE_UNAVAILABLE',
      `${others} other Galet connection${others === 1 ? ' is' : 's are'} open on ${database.location}: stop every Galet using this database first`,
    );
  }
}
