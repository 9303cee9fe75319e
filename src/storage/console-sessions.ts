import { createHash } from 'node:crypto';
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
  /** Where an OIDC login came from, so that the provider's back-channel logout ends it. */
  oidc?: OidcSessionOrigin | undefined;
}

/** The provider, the person there and the provider's session, from the login's ID token. */
export interface OidcSessionOrigin {
  issuer: string;
  /** The ID token's `sub`. */
  subject: string;
  /** The ID token's `sid`, when it had one; kept as its SHA-256 only. */
  sessionId?: string | null | undefined;
}

/** A verified logout token (OpenID Connect Back-Channel Logout 1.0): what it ends. */
export interface OidcLogout {
  issuer: string;
  /** The token's `jti`: a second token with the same issuer and jti is a replay. */
  jti: string;
  /** Until when the jti is remembered: after that the token is refused as too old anyway. */
  rememberUntil: IsoTimestamp;
  /** `sub`: every session of the person at this issuer (with `sessionId`: see `endOidcSessions`). */
  subject?: string | undefined;
  /** `sid`: the sessions opened from that session at the provider. */
  sessionId?: string | undefined;
}

export type OidcLogoutResult =
  | { replayed: true }
  | {
      replayed: false;
      /** The users whose sessions ended, with how many each. */
      ended: { userId: string; sessions: number }[];
    };

const ID_HASH = /^[0-9a-f]{64}$/;
/** Longest issuer, subject, sid or jti stored or looked up, characters. */
const MAX_OIDC_TEXT = 2048;

/**
 * Console sessions after a password (and TOTP) or an OIDC login; they end at `expiresAt`, at
 * logout, or (OIDC) when the provider's back-channel logout names them.
 */
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
    const oidc = input.oidc;
    const row: Selectable<ConsoleSessionsTable> = {
      id_hash: toIdHash(input.idHash),
      user_id: String(input.userId),
      created_at: now,
      expires_at: toIsoTimestamp(input.expiresAt, 'session expiresAt'),
      last_seen_at: now,
      oidc_issuer: oidc === undefined ? null : toOidcText(oidc.issuer, 'OIDC issuer'),
      oidc_subject: oidc === undefined ? null : toOidcText(oidc.subject, 'OIDC subject'),
      oidc_sid_hash:
        oidc?.sessionId === undefined || oidc.sessionId === null
          ? null
          : sidHash(toOidcText(oidc.sessionId, 'OIDC sid')),
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

  /**
   * Back-channel logout: remembers the token (issuer and jti) and ends the OIDC sessions it
   * names, in one transaction; `{replayed: true}` and nothing ended when the token was seen
   * already. With `sessionId` only, the sessions opened from that session at the provider; with
   * `subject` only, every session of that person at this issuer; with both, that person's
   * sessions opened from that session, and those of theirs whose ID token had no `sid` (nothing
   * tells them apart). Password-login sessions are never touched. Forgets the tokens past their
   * `rememberUntil` on the way.
   */
  async endOidcSessions(logout: OidcLogout): Promise<OidcLogoutResult> {
    const issuer = toOidcText(logout.issuer, 'OIDC issuer');
    const jti = toOidcText(logout.jti, 'logout token jti');
    const subject =
      logout.subject === undefined ? undefined : toOidcText(logout.subject, 'OIDC subject');
    const sessionId =
      logout.sessionId === undefined
        ? undefined
        : sidHash(toOidcText(logout.sessionId, 'OIDC sid'));
    if (subject === undefined && sessionId === undefined) {
      throw new StorageError('INVALID_INPUT', 'a logout names a subject, a session or both');
    }
    const rememberUntil = toIsoTimestamp(logout.rememberUntil, 'rememberUntil');
    const now = this.#now();
    return this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom('oidc_logout_tokens').where('expires_at', '<=', now).execute();
      const remembered = await trx
        .insertInto('oidc_logout_tokens')
        .values({ token_hash: logoutTokenHash(issuer, jti), expires_at: rememberUntil })
        .onConflict((conflict) => conflict.column('token_hash').doNothing())
        .executeTakeFirst();
      if ((remembered.numInsertedOrUpdatedRows ?? 0n) === 0n) return { replayed: true };
      let sessions = trx.deleteFrom('console_sessions').where('oidc_issuer', '=', issuer);
      if (subject !== undefined) sessions = sessions.where('oidc_subject', '=', subject);
      if (sessionId !== undefined) {
        sessions =
          subject === undefined
            ? sessions.where('oidc_sid_hash', '=', sessionId)
            : sessions.where((eb) =>
                eb.or([eb('oidc_sid_hash', '=', sessionId), eb('oidc_sid_hash', 'is', null)]),
              );
      }
      const rows = await sessions.returning('user_id').execute();
      const ended = new Map<string, number>();
      for (const row of rows) ended.set(row.user_id, (ended.get(row.user_id) ?? 0) + 1);
      return {
        replayed: false,
        ended: [...ended]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([userId, count]) => ({ userId, sessions: count })),
      };
    });
  }

  /** Deletes the sessions expired at `now` (and the logout tokens forgotten by then). How many sessions. */
  async purgeExpired(now?: IsoTimestamp): Promise<number> {
    const at = now === undefined ? this.#now() : toIsoTimestamp(now, 'time');
    await this.#db.deleteFrom('oidc_logout_tokens').where('expires_at', '<=', at).execute();
    const result = await this.#db
      .deleteFrom('console_sessions')
      .where('expires_at', '<=', at)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toOidcText(value: string, what: string): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_OIDC_TEXT) {
    throw new StorageError('INVALID_INPUT', `${what} must be 1 to ${MAX_OIDC_TEXT} characters`);
  }
  return value;
}

/** The provider's session id is kept as its SHA-256 only: it is the provider's, not ours. */
function sidHash(sid: string): string {
  return createHash('sha256').update(sid, 'utf8').digest('hex');
}

function logoutTokenHash(issuer: string, jti: string): string {
  return createHash('sha256').update(`${issuer}\n${jti}`, 'utf8').digest('hex');
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
