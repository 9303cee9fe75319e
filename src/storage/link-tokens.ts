import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { clock, fromDbBytes, type RepositoryOptions, toDbBytes, toName } from './values.js';

/** A provider link token as the API lists it: never the token, its hash or its KEK. */
export interface LinkToken {
  id: string;
  applicationId: string;
  name: string;
  createdAt: IsoTimestamp;
  lastUsedAt: IsoTimestamp | null;
  revokedAt: IsoTimestamp | null;
}

export interface NewLinkTokenRecord {
  /** 16 lower-case hex digits (link/link-token.ts). */
  id: string;
  applicationId: string;
  name: string;
  /** SHA-256 of the token, hex. */
  tokenHash: string;
  /** The link KEK (16 bytes), sealed before it is stored. */
  kek: Uint8Array;
}

const TOKEN_ID = /^[0-9a-f]{16}$/;
const TOKEN_HASH = /^[0-9a-f]{64}$/;

function kekAssociatedData(id: string): string {
  return `link_token:${id}:kek`;
}

/**
 * Provider link tokens, one application each: kept as the token's SHA-256 and the link KEK
 * sealed under the master key. Revocation is a timestamp (the token stays listed).
 */
export class LinkTokenRepository {
  readonly #db: GaletDatabase['db'];
  readonly #secrets: SecretBox;
  readonly #now: () => string;

  constructor(database: GaletDatabase, secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#secrets = secrets;
    this.#now = clock(options);
  }

  async create(input: NewLinkTokenRecord): Promise<LinkToken> {
    if (!TOKEN_ID.test(input.id)) throw new StorageError('INVALID_INPUT', 'bad link token id');
    if (!TOKEN_HASH.test(input.tokenHash)) {
      throw new StorageError('INVALID_INPUT', 'a link token hash is 64 hex digits');
    }
    if (!(input.kek instanceof Uint8Array) || input.kek.length !== 16) {
      throw new StorageError('INVALID_INPUT', 'a link KEK is 16 bytes');
    }
    const application = await this.#db
      .selectFrom('applications')
      .select('id')
      .where('id', '=', String(input.applicationId))
      .executeTakeFirst();
    if (application === undefined) {
      throw new StorageError('NOT_FOUND', `application ${input.applicationId} not found`);
    }
    const now = this.#now() as IsoTimestamp;
    const row = {
      id: input.id,
      application_id: application.id,
      name: toName(input.name, 'link token name'),
      token_hash: input.tokenHash,
      kek_enc: toDbBytes(this.#secrets.seal(input.kek, kekAssociatedData(input.id))),
      created_at: now,
      last_used_at: null,
      revoked_at: null,
    };
    await this.#db.insertInto('link_tokens').values(row).execute();
    return toLinkToken(row);
  }

  async listForApplication(applicationId: string): Promise<LinkToken[]> {
    const rows = await this.#db
      .selectFrom('link_tokens')
      .selectAll()
      .where('application_id', '=', String(applicationId))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toLinkToken);
  }

  /**
   * The live token with this hash, with its application and KEK; undefined when unknown or
   * revoked. Records the use (at most once a minute).
   */
  async authenticate(
    tokenHash: string,
  ): Promise<{ token: LinkToken; kek: Uint8Array } | undefined> {
    if (!TOKEN_HASH.test(tokenHash)) return undefined;
    const row = await this.#db
      .selectFrom('link_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
    if (row === undefined || row.revoked_at !== null) return undefined;
    const now = this.#now() as IsoTimestamp;
    if (row.last_used_at === null || Date.parse(now) - Date.parse(row.last_used_at) > 60_000) {
      await this.#db
        .updateTable('link_tokens')
        .set({ last_used_at: now })
        .where('id', '=', row.id)
        .execute();
      row.last_used_at = now;
    }
    const kek = this.#secrets.open(fromDbBytes(row.kek_enc), kekAssociatedData(row.id));
    return { token: toLinkToken(row), kek };
  }

  /** False when no such token of this application exists. */
  async revoke(applicationId: string, id: string): Promise<boolean> {
    const result = await this.#db
      .updateTable('link_tokens')
      .set({ revoked_at: this.#now() as IsoTimestamp })
      .where('id', '=', String(id))
      .where('application_id', '=', String(applicationId))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}

function toLinkToken(row: {
  id: string;
  application_id: string;
  name: string;
  created_at: IsoTimestamp;
  last_used_at: IsoTimestamp | null;
  revoked_at: IsoTimestamp | null;
}): LinkToken {
  return {
    id: row.id,
    applicationId: row.application_id,
    name: row.name,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
