import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import type { ConsoleSessionsTable, IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions, toIsoTimestamp } from './values.js';

/** A console session. Its token is never stored: only its SHA-256 (`idHash`). */
export interface ConsoleSession {
  idHash: string;
  userId: string;
  createdAt: IsoTimestamp;
  expiresAt: IsoTimestamp;
  lastSeenAt: IsoTimestamp;
}

export interface NewConsoleSession {
  /** SHA-256 of the session token, 64 lower-case hex digits (platform/tokens.ts). */
  idHash: string;
  userId: string;
  expiresAt: IsoTimestamp;
}

const ID_HASH = /^[0-9a-f]{64}$/;

/** Console sessions after a password (and TOTP) login; they end at `expiresAt` or at logout. */
export class ConsoleSessionRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /** `MISSING_REFERENCE` for an unknown user. */
  async create(input: NewConsoleSession): Promise<ConsoleSession> {
    const now = this.#now();
    const row: Selectable<ConsoleSessionsTable> = {
      id_hash: toIdHash(input.idHash),
      user_id: String(input.userId),
      created_at: now,
      expires_at: toIsoTimestamp(input.expiresAt, 'session expiresAt'),
      last_seen_at: now,
    };
    try {
      await this.#db.insertInto('console_sessions').values(row).execute();
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError('MISSING_REFERENCE', `user ${row.user_id} does not exist`, {
          cause: error,
        });
      }
      throw error;
    }
    return toSession(row);
  }

  /** The session if it exists and has not expired at `now` (the repository's clock by default). */
  async getActive(idHash: string, now?: IsoTimestamp): Promise<ConsoleSession | undefined> {
    if (typeof idHash !== 'string' || !ID_HASH.test(idHash)) return undefined;
    const at = now === undefined ? this.#now() : toIsoTimestamp(now, 'time');
    const row = await this.#db
      .selectFrom('console_sessions')
      .selectAll()
      .where('id_hash', '=', idHash)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    return row && toSession(row);
  }

  /** Records activity, at most once per `minIntervalMs` (one conditional UPDATE). */
  async touch(idHash: string, at: IsoTimestamp, minIntervalMs = 60_000): Promise<boolean> {
    assertInteger(minIntervalMs, 0, Number.MAX_SAFE_INTEGER, 'minIntervalMs');
    const seenAt = toIsoTimestamp(at, 'time');
    const threshold = new Date(Date.parse(seenAt) - minIntervalMs).toISOString();
    const result = await this.#db
      .updateTable('console_sessions')
      .set({ last_seen_at: seenAt })
      .where('id_hash', '=', String(idHash))
      .where('last_seen_at', '<=', threshold)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Logout. False when there was no such session. */
  async delete(idHash: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('console_sessions')
      .where('id_hash', '=', String(idHash))
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /** Ends every session of a user (disabled, password changed). How many ended. */
  async deleteForUser(userId: string): Promise<number> {
    const result = await this.#db
      .deleteFrom('console_sessions')
      .where('user_id', '=', String(userId))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Deletes the sessions expired at `now`. How many. */
  async purgeExpired(now?: IsoTimestamp): Promise<number> {
    const at = now === undefined ? this.#now() : toIsoTimestamp(now, 'time');
    const result = await this.#db
      .deleteFrom('console_sessions')
      .where('expires_at', '<=', at)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toIdHash(value: string): string {
  if (typeof value !== 'string' || !ID_HASH.test(value)) {
    throw new StorageError('INVALID_INPUT', 'a session id hash is 64 lower-case hex digits');
  }
  return value;
}

function toSession(row: Selectable<ConsoleSessionsTable>): ConsoleSession {
  return {
    idHash: row.id_hash,
    userId: row.user_id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastSeenAt: row.last_seen_at,
  };
}
