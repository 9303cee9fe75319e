import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import { ordered, type SortColumns } from './listing.js';
import type { ApiKeyRole, ApiKeysTable, DatabaseDialect, IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  clock,
  fromDbBoolean,
  fromDbBytes,
  type ListOptions,
  oneOf,
  type RepositoryOptions,
  toDbBoolean,
  toDbBytes,
  toIsoTimestamp,
  toName,
} from './values.js';

export type { ApiKeyRole } from './schema.js';
export const API_KEY_ROLES = [
  'owner',
  'admin',
  'operator',
  'viewer',
  'integration',
  'operator-admin',
] as const satisfies ApiKeyRole[];

/** An API key as the API lists it: never its token or the token's hash. */
export interface ApiKey {
  /** Non-secret id, also the first part of the token. */
  id: string;
  name: string;
  tenantId: string | null;
  applicationId: string | null;
  role: ApiKeyRole;
  readOnly: boolean;
  createdBy: string | null;
  expiresAt: IsoTimestamp | null;
  revokedAt: IsoTimestamp | null;
  lastUsedAt: IsoTimestamp | null;
  createdAt: IsoTimestamp;
}

export interface NewApiKey {
  /** The key id from platform/tokens.ts: 16 lower-case hex digits. */
  id: string;
  name: string;
  tenantId?: string | null;
  applicationId?: string | null;
  role: ApiKeyRole;
  readOnly: boolean;
  /** SHA-256 of the whole token (32 bytes). */
  secretHash: Uint8Array;
  createdBy?: string | null;
  expiresAt?: IsoTimestamp | null;
}

export interface ApiKeyListOptions extends ListOptions {
  /**
   * Only the keys of these tenants. An empty list gives an empty page. Without it: every key,
   * global ones included.
   */
  tenantIds?: readonly string[];
  /** Revoked keys are listed too unless this is false. */
  includeRevoked?: boolean;
  /** Only the keys of this application. */
  applicationId?: string;
}

export const API_KEY_SORT: SortColumns<'createdAt' | 'name'> = {
  fields: { createdAt: 'created_at', name: 'name' },
  id: 'id',
  defaultField: 'createdAt',
};

const KEY_ID = /^[0-9a-f]{16}$/;

/**
 * API keys: scoped to a tenant or an application (or global for the operator), stored as the
 * SHA-256 of their token and found by their non-secret id, so a request costs one primary-key
 * read and a constant-time compare. Revocation is a timestamp: a revoked key stays listed.
 */
export class ApiKeyRepository {
  readonly #db: GaletDatabase['db'];
  readonly #dialect: DatabaseDialect;
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#dialect = database.dialect;
    this.#now = clock(options);
  }

  /** `MISSING_REFERENCE` for an unknown tenant or application; `INVALID_INPUT` for a bad scope. */
  async create(input: NewApiKey): Promise<ApiKey> {
    if (typeof input.id !== 'string' || !KEY_ID.test(input.id)) {
      throw new StorageError('INVALID_INPUT', 'an API key id is 16 lower-case hex digits');
    }
    oneOf(input.role, API_KEY_ROLES, 'role');
    const tenantId = input.tenantId ?? null;
    const applicationId = input.applicationId ?? null;
    checkScope(input.role, tenantId, applicationId);
    if (!(input.secretHash instanceof Uint8Array) || input.secretHash.length !== 32) {
      throw new StorageError('INVALID_INPUT', 'an API key secret hash is 32 bytes (SHA-256)');
    }
    const row = {
      id: input.id,
      name: toName(input.name, 'API key name'),
      tenant_id: tenantId,
      application_id: applicationId,
      role: input.role,
      read_only: toDbBoolean(this.#dialect, input.readOnly),
      secret_hash: toDbBytes(input.secretHash),
      created_by: input.createdBy ?? null,
      expires_at:
        input.expiresAt == null ? null : toIsoTimestamp(input.expiresAt, 'API key expiresAt'),
      revoked_at: null,
      last_used_at: null,
      created_at: this.#now(),
    };
    try {
      await this.#db.insertInto('api_keys').values(row).execute();
    } catch (error) {
      const kind = constraintViolation(error);
      if (kind === 'foreign-key') {
        throw new StorageError(
          'MISSING_REFERENCE',
          applicationId === null
            ? `tenant ${tenantId} does not exist`
            : `tenant ${tenantId ?? '(none)'} or application ${applicationId} does not exist`,
          { cause: error },
        );
      }
      if (kind === 'unique') {
        throw new StorageError('ALREADY_EXISTS', `API key ${row.id} exists already`, {
          cause: error,
        });
      }
      throw error;
    }
    return toApiKey(row);
  }

  async get(id: string): Promise<ApiKey | undefined> {
    const row = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row && toApiKey(row);
  }

  /** The key and its token hash, for verifying a presented token. */
  async getForVerification(
    id: string,
  ): Promise<{ key: ApiKey; secretHash: Uint8Array } | undefined> {
    const row = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row && { key: toApiKey(row), secretHash: fromDbBytes(row.secret_hash) };
  }

  /** Oldest first. */
  async list(options?: ApiKeyListOptions): Promise<ApiKey[]> {
    if (options?.tenantIds !== undefined && options.tenantIds.length === 0) return [];
    let query = this.#db.selectFrom('api_keys').selectAll();
    if (options?.tenantIds !== undefined) {
      query = query.where('tenant_id', 'in', [...options.tenantIds]);
    }
    if (options?.includeRevoked === false) query = query.where('revoked_at', 'is', null);
    if (options?.applicationId !== undefined) {
      query = query.where('application_id', '=', String(options.applicationId));
    }
    const rows = await ordered(query, API_KEY_SORT, options).execute();
    return rows.map(toApiKey);
  }

  /**
   * Revokes the key at `at` (now by default). Undefined when there is no such key; a key
   * revoked before keeps its first revocation time.
   */
  async revoke(id: string, at?: IsoTimestamp): Promise<ApiKey | undefined> {
    const revokedAt = at === undefined ? this.#now() : toIsoTimestamp(at, 'revocation time');
    await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: revokedAt })
      .where('id', '=', String(id))
      .where('revoked_at', 'is', null)
      .execute();
    return this.get(id);
  }

  /**
   * Records a use at `at`, unless one was recorded less than `minIntervalMs` before: one
   * conditional UPDATE, so a busy key costs at most one write per interval. True when written.
   */
  async touchLastUsed(id: string, at: IsoTimestamp, minIntervalMs = 60_000): Promise<boolean> {
    assertInteger(minIntervalMs, 0, Number.MAX_SAFE_INTEGER, 'minIntervalMs');
    const usedAt = toIsoTimestamp(at, 'use time');
    const threshold = new Date(Date.parse(usedAt) - minIntervalMs).toISOString();
    const result = await this.#db
      .updateTable('api_keys')
      .set({ last_used_at: usedAt })
      .where('id', '=', String(id))
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', threshold)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}

function checkScope(role: ApiKeyRole, tenantId: string | null, applicationId: string | null): void {
  if (role === 'operator-admin') {
    if (tenantId !== null || applicationId !== null) {
      throw new StorageError(
        'INVALID_INPUT',
        'an operator-admin key is global: it takes no tenantId or applicationId',
      );
    }
  } else if (role === 'integration') {
    if (applicationId === null) {
      throw new StorageError('INVALID_INPUT', 'an integration key needs an applicationId');
    }
  } else if (tenantId === null || applicationId !== null) {
    throw new StorageError(
      'INVALID_INPUT',
      `a ${role} key is for one whole tenant: it needs a tenantId and takes no applicationId`,
    );
  }
}

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    name: row.name,
    tenantId: row.tenant_id,
    applicationId: row.application_id,
    role: row.role,
    readOnly: fromDbBoolean(row.read_only),
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    createdAt: row.created_at,
  };
}
