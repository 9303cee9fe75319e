import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import type { IsoTimestamp, MembershipRole, MembershipsTable } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { clock, oneOf, type RepositoryOptions } from './values.js';

export type { MembershipRole } from './schema.js';
export const MEMBERSHIP_ROLES = [
  'owner',
  'admin',
  'operator',
  'viewer',
  'integration',
] as const satisfies MembershipRole[];

/** A user's role in one tenant (or, for 'integration', in one application of that tenant). */
export interface Membership {
  userId: string;
  tenantId: string;
  role: MembershipRole;
  /** The application of an 'integration' membership; null for the tenant roles. */
  applicationId: string | null;
  createdAt: IsoTimestamp;
}

export interface MembershipInput {
  userId: string;
  tenantId: string;
  role: MembershipRole;
  applicationId?: string | null;
}

/** Who belongs to which tenant with which role: at most one membership per user and tenant. */
export class MembershipRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /**
   * Gives the user this role in the tenant, replacing the role they had there. The user, the
   * tenant and the application must exist (`MISSING_REFERENCE`).
   */
  async set(input: MembershipInput): Promise<Membership> {
    oneOf(input.role, MEMBERSHIP_ROLES, 'role');
    const applicationId = input.applicationId ?? null;
    if ((input.role === 'integration') !== (applicationId !== null)) {
      throw new StorageError(
        'INVALID_INPUT',
        input.role === 'integration'
          ? 'an integration membership needs an applicationId'
          : `a ${input.role} membership is for a whole tenant: it takes no applicationId`,
      );
    }
    const row: Selectable<MembershipsTable> = {
      user_id: String(input.userId),
      tenant_id: String(input.tenantId),
      role: input.role,
      application_id: applicationId,
      created_at: this.#now(),
    };
    try {
      const stored = await this.#db
        .insertInto('memberships')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['user_id', 'tenant_id']).doUpdateSet({
            role: row.role,
            application_id: row.application_id,
          }),
        )
        .returningAll()
        .executeTakeFirstOrThrow();
      return toMembership(stored);
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError(
          'MISSING_REFERENCE',
          `membership of user ${row.user_id} in tenant ${row.tenant_id}${applicationId === null ? '' : ` (application ${applicationId})`}: one of them does not exist`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  async get(userId: string, tenantId: string): Promise<Membership | undefined> {
    const row = await this.#db
      .selectFrom('memberships')
      .selectAll()
      .where('user_id', '=', String(userId))
      .where('tenant_id', '=', String(tenantId))
      .executeTakeFirst();
    return row && toMembership(row);
  }

  /** The user's memberships, by tenant id. */
  async listForUser(userId: string): Promise<Membership[]> {
    const rows = await this.#db
      .selectFrom('memberships')
      .selectAll()
      .where('user_id', '=', String(userId))
      .orderBy('tenant_id')
      .execute();
    return rows.map(toMembership);
  }

  /** The memberships of several users at once (for a list), by user then tenant id. */
  async listForUsers(userIds: readonly string[]): Promise<Membership[]> {
    if (userIds.length === 0) return [];
    const rows = await this.#db
      .selectFrom('memberships')
      .selectAll()
      .where('user_id', 'in', [...userIds])
      .orderBy('user_id')
      .orderBy('tenant_id')
      .execute();
    return rows.map(toMembership);
  }

  /** False when the user had no membership in the tenant. */
  async remove(userId: string, tenantId: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('memberships')
      .where('user_id', '=', String(userId))
      .where('tenant_id', '=', String(tenantId))
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}

function toMembership(row: Selectable<MembershipsTable>): Membership {
  return {
    userId: row.user_id,
    tenantId: row.tenant_id,
    role: row.role,
    applicationId: row.application_id,
    createdAt: row.created_at,
  };
}
