import type { FastifyRequest } from 'fastify';
import {
  type Action,
  applicationsWhere,
  can,
  isGlobal,
  type Target,
  tenantsWhere,
} from '../platform/roles.js';
import type { TenantScope } from '../storage/index.js';
import { authorize, noteAudit, principalOf, readOf, refusal, seesObject } from './auth.js';
import { badRequest } from './errors.js';

/**
 * Tenant scoping of the routes that serve tenant-owned objects (applications, gateways, devices,
 * their events and queues, device profiles): who may see and change which object.
 *
 * - An object the principal may not even see answers 404 "<what> not found", exactly as one that
 *   does not exist; one it sees but may not change answers 403.
 * - Objects without a tenant are the operator's: only global principals see them (device
 *   profiles without a tenant are the exception: a catalogue every tenant reads).
 * - Lists are filtered in the query by the principal's tenants (`tenantsWhere`) and integration
 *   applications (`applicationsWhere`).
 */

/**
 * Throws unless the principal may do `action` on an object of `target`: 404 when it cannot see
 * the object (nor its tenant), else 403. Unlike `authorize`, an object without a tenant is
 * hidden from whoever may not read it (it is the operator's). The audit note gets the object's
 * tenant only when the principal may see it, so that a probe of another tenant's object does
 * not show in that tenant's audit log.
 */
export function authorizeObject(
  request: FastifyRequest,
  action: Action,
  target: Target,
  what: string,
): void {
  const principal = principalOf(request);
  const allowed = can(principal, action, target);
  const seen = allowed || seesObject(principal, action, target);
  if (seen) noteAudit(request, { tenantId: target.tenantId ?? null });
  if (!allowed) throw refusal(principal, action, what, seen);
}

/** Whether the principal may see (read) an object of `target`. */
export function canSee(request: FastifyRequest, action: Action, target: Target): boolean {
  return can(principalOf(request), readOf(action), target);
}

/**
 * The rows of a list the principal may see, for the repository (`undefined`: every row). Throws
 * 403 when the principal may read this kind of object nowhere at all, rather than answer an
 * empty list that would look like "none yet".
 */
export function listScope(
  request: FastifyRequest,
  action: Action,
  extra: Omit<TenantScope, 'tenantIds' | 'applicationIds'> & { applications?: boolean } = {},
): TenantScope | undefined {
  const principal = principalOf(request);
  if (isGlobal(principal)) {
    authorize(request, action, {}, 'this list');
    return undefined;
  }
  const tenantIds = tenantsWhere(principal, action) as string[];
  const applicationIds =
    extra.applications === false ? [] : (applicationsWhere(principal, action) as string[]);
  if (tenantIds.length === 0 && applicationIds.length === 0) {
    authorize(request, action, {}, 'this list');
  }
  const { applications: _applications, ...rest } = extra;
  return {
    tenantIds,
    applicationIds,
    // Shared rows and the catalogue are for principals with a tenant role, not integrations.
    ...(tenantIds.length > 0 ? rest : {}),
  };
}

/** A `tenantId` list filter: the tenant must be one the principal may read `action` in. */
function authorizeTenantFilter(
  request: FastifyRequest,
  action: Action,
  tenantId: string | undefined,
): void {
  if (tenantId !== undefined)
    authorizeObject(request, readOf(action), { tenantId }, `tenant ${tenantId}`);
}

/**
 * The repository filters of a list: the principal's scope (`listScope`) and the query's
 * `tenantId` filter (`authorizeTenantFilter`), each left out when there is none.
 */
export function scopedListFilters(
  request: FastifyRequest,
  action: Action,
  tenantId: string | undefined,
  extra: Parameters<typeof listScope>[2] = {},
): { scope?: TenantScope; tenantId?: string } {
  const scope = listScope(request, action, extra);
  authorizeTenantFilter(request, action, tenantId);
  return {
    ...(scope === undefined ? {} : { scope }),
    ...(tenantId === undefined ? {} : { tenantId }),
  };
}

/**
 * The tenants a list is limited to (`undefined`: every tenant): the `tenantId` filter if the
 * principal may do `action` there (else 404 or 403), else every tenant it may do `action` in.
 */
export function tenantIdsFilter(
  request: FastifyRequest,
  action: Action,
  tenantId: string | undefined,
): string[] | undefined {
  if (tenantId !== undefined) {
    authorize(request, action, { tenantId }, `tenant ${tenantId}`);
    return [tenantId];
  }
  const visible = tenantsWhere(principalOf(request), action);
  return visible === 'all' ? undefined : visible;
}

/**
 * The tenant a new object goes to: the one given, else the principal's only tenant where it may
 * do `action`; null (no tenant) for a global principal that names none. 400 when the principal
 * has several tenants and names none.
 */
export function tenantOfNew(
  request: FastifyRequest,
  action: Action,
  given: string | undefined,
): string | null {
  if (given !== undefined) return given;
  const principal = principalOf(request);
  if (isGlobal(principal)) return null;
  const tenants = tenantsWhere(principal, action);
  if (tenants === 'all') return null;
  if (tenants.length === 1) return tenants[0] as string;
  if (tenants.length === 0) authorize(request, action, {}, 'tenants');
  throw badRequest('body.tenantId is required: you may do this in several tenants');
}

/**
 * `tenantOfNew`, once the principal may do `action` in that tenant (in none, for the operator's
 * objects: `kind` names them in the refusal).
 */
export function authorizedTenantOfNew(
  request: FastifyRequest,
  action: Action,
  given: string | undefined,
  kind: string,
): string | null {
  const tenantId = tenantOfNew(request, action, given);
  authorizeObject(request, action, { tenantId }, tenantId === null ? kind : `tenant ${tenantId}`);
  return tenantId;
}
