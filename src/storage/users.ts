import { randomUUID } from 'node:crypto';
import type { Selectable, Updateable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import { containsText, ordered, type SortColumns } from './listing.js';
import type { DatabaseDialect, IsoTimestamp, UsersTable } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  clock,
  fromDbBoolean,
  fromDbBytes,
  type ListOptions,
  type RepositoryOptions,
  toDbBoolean,
  toDbBytes,
  toIsoTimestamp,
} from './values.js';

/** A console user as the API shows it: never the password hash or the TOTP secret. */
export interface User {
  id: string;
  email: string;
  /** The network operator's global administrator role. */
  operatorAdmin: boolean;
  disabled: boolean;
  /** Whether a TOTP second factor is enrolled. */
  totpEnabled: boolean;
  lastLoginAt: IsoTimestamp | null;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

/** What a login needs: the user, the password hash and, if enrolled, the TOTP secret. */
export interface UserCredentials {
  user: User;
  passwordHash: string;
  totp: { secret: Uint8Array; lastStep: number | null } | null;
}

export interface NewUser {
  email: string;
  /** An argon2id PHC string (platform/passwords.ts); the storage layer never sees a password. */
  passwordHash: string;
  operatorAdmin?: boolean;
  disabled?: boolean;
}

export interface UserUpdate {
  passwordHash?: string;
  operatorAdmin?: boolean;
  disabled?: boolean;
}

export interface UserListOptions extends ListOptions {
  /** Only the members of one of these tenants. An empty list gives an empty page. */
  tenantIds?: readonly string[];
  /** Only addresses containing this text (any case). */
  search?: string;
}

export const USER_SORT: SortColumns<'createdAt' | 'email'> = {
  fields: { createdAt: 'users.created_at', email: 'users.email' },
  id: 'users.id',
  defaultField: 'createdAt',
};

const MAX_EMAIL_LENGTH = 254;

/** Users of the console and the API, identified by a unique e-mail address (lower case). */
export class UserRepository {
  readonly #db: GaletDatabase['db'];
  readonly #dialect: DatabaseDialect;
  readonly #secrets: SecretBox;
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#dialect = database.dialect;
    this.#secrets = secrets;
    this.#now = clock(options);
  }

  /** `ALREADY_EXISTS` when the e-mail address is taken (in any case). */
  async create(input: NewUser): Promise<User> {
    const now = this.#now();
    const row = {
      id: randomUUID(),
      email: normaliseEmail(input.email),
      password_hash: toPasswordHash(input.passwordHash),
      operator_admin: toDbBoolean(this.#dialect, input.operatorAdmin ?? false),
      disabled: toDbBoolean(this.#dialect, input.disabled ?? false),
      totp_secret_enc: null,
      totp_pending_enc: null,
      totp_last_step: null,
      last_login_at: null,
      created_at: now,
      updated_at: now,
    };
    try {
      await this.#db.insertInto('users').values(row).execute();
    } catch (error) {
      if (constraintViolation(error) === 'unique') {
        throw new StorageError('ALREADY_EXISTS', `a user with this e-mail address exists already`, {
          cause: error,
        });
      }
      throw error;
    }
    return toUser(row);
  }

  async get(id: string): Promise<User | undefined> {
    const row = await this.#db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row && toUser(row);
  }

  async getByEmail(email: string): Promise<User | undefined> {
    const row = await this.#rowByEmail(email);
    return row && toUser(row);
  }

  /** For a login: the hash and the decrypted TOTP secret. Undefined for an unknown address. */
  async getCredentials(email: string): Promise<UserCredentials | undefined> {
    const row = await this.#rowByEmail(email);
    if (row === undefined) return undefined;
    return {
      user: toUser(row),
      passwordHash: row.password_hash,
      totp:
        row.totp_secret_enc === null
          ? null
          : {
              secret: this.#secrets.open(
                fromDbBytes(row.totp_secret_enc),
                totpData(row.id, 'secret'),
              ),
              lastStep: row.totp_last_step,
            },
    };
  }

  /** The row of an address in any case; undefined for an unknown or malformed one. */
  async #rowByEmail(email: string): Promise<Selectable<UsersTable> | undefined> {
    const normalised = tryNormaliseEmail(email);
    if (normalised === undefined) return undefined;
    return this.#db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', normalised)
      .executeTakeFirst();
  }

  /** Oldest first. */
  async list(options?: UserListOptions): Promise<User[]> {
    if (options?.tenantIds !== undefined && options.tenantIds.length === 0) return [];
    let query = this.#db.selectFrom('users').selectAll('users');
    if (options?.tenantIds !== undefined) {
      const tenantIds = [...options.tenantIds];
      query = query.where(({ exists, selectFrom }) =>
        exists(
          selectFrom('memberships')
            .select('memberships.user_id')
            .whereRef('memberships.user_id', '=', 'users.id')
            .where('memberships.tenant_id', 'in', tenantIds),
        ),
      );
    }
    if (options?.search !== undefined) {
      query = query.where(containsText('users.email', options.search));
    }
    const rows = await ordered(query, USER_SORT, options).execute();
    return rows.map(toUser);
  }

  /** The updated user, or undefined when there is none. */
  async update(id: string, update: UserUpdate): Promise<User | undefined> {
    const set: Updateable<UsersTable> = { updated_at: this.#now() };
    if (update.passwordHash !== undefined) set.password_hash = toPasswordHash(update.passwordHash);
    if (update.operatorAdmin !== undefined) {
      set.operator_admin = toDbBoolean(this.#dialect, update.operatorAdmin);
    }
    if (update.disabled !== undefined) set.disabled = toDbBoolean(this.#dialect, update.disabled);
    const row = await this.#db
      .updateTable('users')
      .set(set)
      .where('id', '=', String(id))
      .returningAll()
      .executeTakeFirst();
    return row && toUser(row);
  }

  async recordLogin(id: string, at: IsoTimestamp): Promise<void> {
    await this.#db
      .updateTable('users')
      .set({ last_login_at: toIsoTimestamp(at, 'login time') })
      .where('id', '=', String(id))
      .execute();
  }

  /**
   * Starts a TOTP enrolment: the secret waits, sealed, until `confirmTotp` moves it in place
   * (after the user proved they hold it). False for an unknown user.
   */
  async setPendingTotp(id: string, secret: Uint8Array): Promise<boolean> {
    const result = await this.#db
      .updateTable('users')
      .set({
        totp_pending_enc: toDbBytes(this.#secrets.seal(secret, totpData(String(id), 'pending'))),
        updated_at: this.#now(),
      })
      .where('id', '=', String(id))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** The secret waiting for confirmation, or undefined. */
  async getPendingTotp(id: string): Promise<Uint8Array | undefined> {
    const row = await this.#db
      .selectFrom('users')
      .select(['id', 'totp_pending_enc'])
      .where('id', '=', String(id))
      .executeTakeFirst();
    if (row?.totp_pending_enc == null) return undefined;
    return this.#secrets.open(fromDbBytes(row.totp_pending_enc), totpData(row.id, 'pending'));
  }

  /**
   * Makes `secret` the user's second factor, `usedStep` (the step of the code that confirmed it)
   * its last used step, and forgets the pending secret.
   */
  async enableTotp(id: string, secret: Uint8Array, usedStep: number): Promise<boolean> {
    assertInteger(usedStep, 0, Number.MAX_SAFE_INTEGER, 'TOTP step');
    const result = await this.#db
      .updateTable('users')
      .set({
        totp_secret_enc: toDbBytes(this.#secrets.seal(secret, totpData(String(id), 'secret'))),
        totp_pending_enc: null,
        totp_last_step: usedStep,
        updated_at: this.#now(),
      })
      .where('id', '=', String(id))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async disableTotp(id: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('users')
      .set({
        totp_secret_enc: null,
        totp_pending_enc: null,
        totp_last_step: null,
        updated_at: this.#now(),
      })
      .where('id', '=', String(id))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * TOTP replay protection: records `step` as used if it is later than the last used one, in
   * one statement. False when that step (or a later one) was used already: of two logins with
   * the same code, one wins.
   */
  async useTotpStep(id: string, step: number): Promise<boolean> {
    assertInteger(step, 0, Number.MAX_SAFE_INTEGER, 'TOTP step');
    const result = await this.#db
      .updateTable('users')
      .set({ totp_last_step: step })
      .where('id', '=', String(id))
      .where('totp_secret_enc', 'is not', null)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** False when there was no such user. Memberships and console sessions go with the user. */
  async delete(id: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('users')
      .where('id', '=', String(id))
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}

/** Trimmed and lower-cased; `INVALID_INPUT` for something that is not an address. */
export function normaliseEmail(value: string): string {
  const normalised = tryNormaliseEmail(value);
  if (normalised === undefined) {
    throw new StorageError(
      'INVALID_INPUT',
      `email must be an e-mail address of at most ${MAX_EMAIL_LENGTH} characters`,
    );
  }
  return normalised;
}

function tryNormaliseEmail(value: string): string | undefined {
  if (typeof value !== 'string') return undefined;
  const email = value.trim().toLowerCase();
  if (email.length > MAX_EMAIL_LENGTH || !/^[^\s@]+@[^\s@]+$/.test(email)) return undefined;
  return email;
}

function toPasswordHash(value: string): string {
  if (typeof value !== 'string' || !value.startsWith('$argon2')) {
    throw new StorageError('INVALID_INPUT', 'passwordHash must be an argon2 PHC string');
  }
  return value;
}

function totpData(userId: string, what: 'secret' | 'pending'): string {
  return `user:${userId}:totp_${what}`;
}

function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    email: row.email,
    operatorAdmin: fromDbBoolean(row.operator_admin),
    disabled: fromDbBoolean(row.disabled),
    totpEnabled: row.totp_secret_enc !== null,
    lastLoginAt: row.last_login_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
