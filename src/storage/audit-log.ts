import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { AuditActorType, AuditLogTable, AuditOutcome, IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  clock,
  MAX_LIST_LIMIT,
  oneOf,
  type RepositoryOptions,
  toIsoTimestamp,
} from './values.js';

export type { AuditActorType, AuditOutcome } from './schema.js';
export const AUDIT_ACTOR_TYPES = [
  'user',
  'api-key',
  'admin-token',
  'system',
  'anonymous',
] as const satisfies AuditActorType[];
export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const satisfies AuditOutcome[];

/** Who did it: a user, an API key, the admin token, Galet itself, or nobody known (a failed login). */
export interface AuditActor {
  type: AuditActorType;
  /** The user id or the API key id; null for the admin token, the system and anonymous. */
  id: string | null;
  /** The tenant the actor acted for, when it has one (an API key's tenant). */
  tenantId: string | null;
}

export interface AuditEntry {
  id: number;
  time: IsoTimestamp;
  actor: AuditActor;
  /** `<object>.<verb>`: `tenant.create`, `api-key.revoke`, `auth.login`, ... */
  action: string;
  objectType: string;
  objectId: string | null;
  /** The tenant the object belongs to; null for global objects. */
  tenantId: string | null;
  /**
   * A second tenant the entry is about, whose owners and admins see it too: the receiving
   * tenant of a read of shared measurements (the entry's tenant is the provider's). Null
   * otherwise.
   */
  relatedTenantId: string | null;
  sourceIp: string | null;
  outcome: AuditOutcome;
  /** What the action changed or why it failed. Never a secret (no token, password, key). */
  details: Record<string, unknown>;
}

export interface NewAuditEntry {
  /** Default: now. */
  time?: IsoTimestamp;
  actor: { type: AuditActorType; id?: string | null; tenantId?: string | null };
  action: string;
  objectType: string;
  objectId?: string | null;
  tenantId?: string | null;
  relatedTenantId?: string | null;
  sourceIp?: string | null;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  /** 1 to 1000, default 100. */
  limit?: number;
  /** Only entries older than this id: the cursor for the next page. */
  beforeId?: number;
  /**
   * Only the entries of these tenants, or related to them (`relatedTenantId`); never the global
   * ones. An empty list gives nothing.
   */
  tenantIds?: readonly string[];
  /** Only the entries of this actor (a user or API key id). */
  actorId?: string;
  /** Only this action (`device.create`). */
  action?: string;
  /** From this time, included. */
  from?: IsoTimestamp;
  /** Up to this time, excluded. */
  to?: IsoTimestamp;
}

const ACTION = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;
const MAX_DETAILS_LENGTH = 16_384;

/**
 * The audit log: who did what, when, from where, to which object, with which outcome.
 * Append-only: this repository has no update, ids only grow (so they page), and entries are
 * only ever deleted by age, per tenant, when the tenant set `settings.retention.auditDays`
 * (`purgeBefore`, run by the audit retention job).
 */
export class AuditLogRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /** Appends one entry and returns it with its id. */
  async append(entry: NewAuditEntry): Promise<AuditEntry> {
    const row = toRow(entry, this.#now);
    const inserted = await this.#db
      .insertInto('audit_log')
      .values(row)
      .returning('id')
      .executeTakeFirstOrThrow();
    return toAuditEntry({ ...row, id: inserted.id });
  }

  /**
   * Deletes up to `limit` of the tenant's entries older than `before` (oldest first); returns
   * how many. Entries of no tenant (the operator's) are never purged.
   */
  async purgeBefore(tenantId: string, before: IsoTimestamp, limit: number): Promise<number> {
    assertInteger(limit, 1, 100_000, 'limit');
    const cutoff = toIsoTimestamp(before, 'retention cutoff');
    const result = await this.#db
      .deleteFrom('audit_log')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('audit_log')
          .select('id')
          .where('tenant_id', '=', String(tenantId))
          .where('time', '<', cutoff)
          .orderBy('id')
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Newest first. */
  async list(query?: AuditQuery): Promise<AuditEntry[]> {
    const limit = query?.limit ?? 100;
    assertInteger(limit, 1, MAX_LIST_LIMIT, 'limit');
    if (query?.tenantIds !== undefined && query.tenantIds.length === 0) return [];
    let select = this.#db.selectFrom('audit_log').selectAll();
    if (query?.tenantIds !== undefined) {
      const tenantIds = query.tenantIds.map(String);
      select = select.where((eb) =>
        eb.or([eb('tenant_id', 'in', tenantIds), eb('related_tenant_id', 'in', tenantIds)]),
      );
    }
    if (query?.beforeId !== undefined) {
      assertInteger(query.beforeId, 0, Number.MAX_SAFE_INTEGER, 'beforeId');
      select = select.where('id', '<', query.beforeId);
    }
    if (query?.actorId !== undefined) select = select.where('actor_id', '=', String(query.actorId));
    if (query?.action !== undefined) select = select.where('action', '=', String(query.action));
    if (query?.from !== undefined) {
      select = select.where('time', '>=', toIsoTimestamp(query.from, 'from'));
    }
    if (query?.to !== undefined) select = select.where('time', '<', toIsoTimestamp(query.to, 'to'));
    const rows = await select.orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toAuditEntry);
  }
}

function toRow(
  entry: NewAuditEntry,
  now: () => IsoTimestamp,
): Omit<Selectable<AuditLogTable>, 'id'> {
  oneOf(entry.actor.type, AUDIT_ACTOR_TYPES, 'actor type');
  oneOf(entry.outcome, AUDIT_OUTCOMES, 'outcome');
  if (typeof entry.action !== 'string' || entry.action.length > 100 || !ACTION.test(entry.action)) {
    throw new StorageError(
      'INVALID_INPUT',
      `audit action must look like "object.verb" (lower case), got ${JSON.stringify(String(entry.action)).slice(0, 60)}`,
    );
  }
  if (
    typeof entry.objectType !== 'string' ||
    entry.objectType === '' ||
    entry.objectType.length > 100
  ) {
    throw new StorageError('INVALID_INPUT', 'audit objectType must be 1 to 100 characters');
  }
  const details = JSON.stringify(entry.details ?? {});
  if (details.length > MAX_DETAILS_LENGTH) {
    throw new StorageError(
      'INVALID_INPUT',
      `audit details must stay under ${MAX_DETAILS_LENGTH} characters of JSON, got ${details.length}`,
    );
  }
  return {
    time: entry.time === undefined ? now() : toIsoTimestamp(entry.time, 'audit time'),
    actor_type: entry.actor.type,
    actor_id: optionalText(entry.actor.id),
    actor_tenant_id: optionalText(entry.actor.tenantId),
    action: entry.action,
    object_type: entry.objectType,
    object_id: optionalText(entry.objectId),
    tenant_id: optionalText(entry.tenantId),
    related_tenant_id: optionalText(entry.relatedTenantId),
    source_ip: optionalText(entry.sourceIp),
    outcome: entry.outcome,
    details,
  };
}

function optionalText(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  return String(value).slice(0, 200);
}

function toAuditEntry(row: Selectable<AuditLogTable>): AuditEntry {
  return {
    id: row.id,
    time: row.time,
    actor: { type: row.actor_type, id: row.actor_id, tenantId: row.actor_tenant_id },
    action: row.action,
    objectType: row.object_type,
    objectId: row.object_id,
    tenantId: row.tenant_id,
    relatedTenantId: row.related_tenant_id,
    sourceIp: row.source_ip,
    outcome: row.outcome,
    details: JSON.parse(row.details) as Record<string, unknown>,
  };
}
