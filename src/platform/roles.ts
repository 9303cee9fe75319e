/**
 * Roles and the permission matrix: who may do what to which tenant's objects.
 *
 * A principal is whoever made a request: the admin token, a console user (with memberships) or
 * an API key (scoped to a tenant or an application, or global). `can` is pure: the API gives it
 * the principal and the tenant (and application) of the object, and gets allow or deny.
 *
 * Global principals (the admin token, operator-admin users and keys) may do everything, with one
 * limit this module does not express because it belongs to the data, not to a role: the
 * operator never reads a provider's decrypted payloads (the operator-blind design, see
 * docs/ARCHITECTURE.md "The trust boundary is the product"). Routes that serve decrypted
 * payloads must check the application's owner, not only `can`.
 */

/** Roles within one tenant, lowest first. */
export const TENANT_ROLES = ['viewer', 'operator', 'admin', 'owner'] as const;
export type TenantRole = (typeof TENANT_ROLES)[number];

/** A membership's or a key's role: a tenant role, or 'integration' within one application. */
export type ScopedRole = TenantRole | 'integration';
export const SCOPED_ROLES = [...TENANT_ROLES, 'integration'] as const satisfies ScopedRole[];

/** An API key's role: a scoped one, or 'operator-admin' for a global key of the operator. */
export type ApiKeyRole = ScopedRole | 'operator-admin';
export const API_KEY_ROLES = [...SCOPED_ROLES, 'operator-admin'] as const satisfies ApiKeyRole[];

export const RESOURCES = [
  'tenants',
  'users',
  'api-keys',
  'applications',
  'devices',
  'gateways',
  'device-profiles',
  'events',
  'audit',
  'metrics',
] as const;
export type Resource = (typeof RESOURCES)[number];
export type Access = 'read' | 'write';
export type Action = `${Resource}:${Access}`;
export const ACTIONS: readonly Action[] = RESOURCES.flatMap((resource) => [
  `${resource}:read` as const,
  `${resource}:write` as const,
]);

/**
 * The matrix: what each scoped role may do within its scope. `write` includes `read`; a missing
 * resource is no access. Nobody but a global principal writes events, the audit log (only Galet
 * appends to it) or reads the metrics.
 */
export const ROLE_PERMISSIONS: Readonly<
  Record<ScopedRole, Readonly<Partial<Record<Resource, Access>>>>
> = {
  owner: {
    tenants: 'write',
    users: 'write',
    'api-keys': 'write',
    applications: 'write',
    devices: 'write',
    gateways: 'write',
    'device-profiles': 'write',
    events: 'read',
    audit: 'read',
  },
  admin: {
    tenants: 'read',
    users: 'write',
    'api-keys': 'write',
    applications: 'write',
    devices: 'write',
    gateways: 'write',
    'device-profiles': 'write',
    events: 'read',
    audit: 'read',
  },
  /** Field agents: devices and gateways. */
  operator: {
    tenants: 'read',
    applications: 'read',
    devices: 'write',
    gateways: 'write',
    'device-profiles': 'read',
    events: 'read',
  },
  viewer: {
    tenants: 'read',
    applications: 'read',
    devices: 'read',
    gateways: 'read',
    'device-profiles': 'read',
    events: 'read',
  },
  /** A program working on one application's devices: read them, queue downlinks, read events. */
  integration: {
    applications: 'read',
    devices: 'write',
    events: 'read',
  },
};

/** One scope of a principal: a tenant role, or an integration role in one application. */
export interface Scope {
  tenantId: string | null;
  role: ScopedRole;
  /** Set for (and only for) the 'integration' role. */
  applicationId: string | null;
}

export type Principal =
  | { kind: 'admin-token' }
  | {
      kind: 'user';
      userId: string;
      operatorAdmin: boolean;
      memberships: readonly Scope[];
    }
  | {
      kind: 'api-key';
      keyId: string;
      tenantId: string | null;
      applicationId: string | null;
      role: ApiKeyRole;
      readOnly: boolean;
    };

/**
 * What an action is done to: the tenant (and application) the object belongs to. Neither:
 * a global object or collection (creating a tenant, the whole device list across tenants),
 * which only global principals may touch.
 */
export interface Target {
  tenantId?: string | null;
  applicationId?: string | null;
}

export function roleAllows(role: ScopedRole, action: Action): boolean {
  const [resource, access] = splitAction(action);
  const granted = ROLE_PERMISSIONS[role][resource];
  return granted === 'write' || (granted === 'read' && access === 'read');
}

/** Whether the principal may do `action` on an object of `target`. */
export function can(principal: Principal, action: Action, target: Target): boolean {
  const [, access] = splitAction(action);
  if (principal.kind === 'api-key' && principal.readOnly && access === 'write') return false;
  if (isGlobal(principal)) return true;
  return scopesOf(principal).some(
    (scope) => scopeCovers(scope, target) && roleAllows(scope.role, action),
  );
}

/** The admin token, an operator-admin user, or an operator-admin key (read-only ones included). */
export function isGlobal(principal: Principal): boolean {
  switch (principal.kind) {
    case 'admin-token':
      return true;
    case 'user':
      return principal.operatorAdmin;
    case 'api-key':
      return principal.role === 'operator-admin';
  }
}

/**
 * The tenants in which the principal may do `action` on tenant-wide objects, for list filters:
 * 'all' for a global principal. Application-scoped (integration) scopes give no tenant.
 */
export function tenantsWhere(principal: Principal, action: Action): 'all' | string[] {
  const [, access] = splitAction(action);
  if (principal.kind === 'api-key' && principal.readOnly && access === 'write') return [];
  if (isGlobal(principal)) return 'all';
  const tenants = new Set<string>();
  for (const scope of scopesOf(principal)) {
    if (scope.role !== 'integration' && scope.tenantId !== null && roleAllows(scope.role, action)) {
      tenants.add(scope.tenantId);
    }
  }
  return [...tenants].sort();
}

/**
 * The applications in which the principal may do `action` through an integration scope (one
 * application each), for list filters beside `tenantsWhere`: 'all' for a global principal.
 */
export function applicationsWhere(principal: Principal, action: Action): 'all' | string[] {
  const [, access] = splitAction(action);
  if (principal.kind === 'api-key' && principal.readOnly && access === 'write') return [];
  if (isGlobal(principal)) return 'all';
  const applications = new Set<string>();
  for (const scope of scopesOf(principal)) {
    if (scope.role === 'integration' && scope.applicationId !== null) {
      if (roleAllows(scope.role, action)) applications.add(scope.applicationId);
    }
  }
  return [...applications].sort();
}

/** A rank to compare roles: integration needs an admin to grant it. */
const GRANT_RANK: Readonly<Record<ScopedRole, number>> = {
  viewer: 1,
  operator: 2,
  integration: 3,
  admin: 3,
  owner: 4,
};

/**
 * Whether the principal may give `role` (to a user or a key) within `target`'s tenant: a global
 * principal may give any role; others only up to their own role in that tenant, never
 * 'operator-admin', and never through a read-only key. The caller checks the `users:write` or
 * `api-keys:write` permission itself.
 */
export function canGrant(principal: Principal, role: ApiKeyRole, target: Target): boolean {
  if (principal.kind === 'api-key' && principal.readOnly) return false;
  if (isGlobal(principal)) return true;
  if (role === 'operator-admin') return false;
  const own = highestTenantRole(principal, target.tenantId ?? null);
  return own !== undefined && GRANT_RANK[own] >= GRANT_RANK[role];
}

/** The principal's own tenant role in a tenant (not integration scopes), if any. */
export function highestTenantRole(
  principal: Principal,
  tenantId: string | null,
): TenantRole | undefined {
  if (tenantId === null) return undefined;
  let best: TenantRole | undefined;
  for (const scope of scopesOf(principal)) {
    if (scope.role === 'integration' || scope.tenantId !== tenantId) continue;
    if (best === undefined || GRANT_RANK[scope.role] > GRANT_RANK[best]) best = scope.role;
  }
  return best;
}

/** Compares two roles for "may this principal manage someone with that role". */
export function roleRank(role: ScopedRole): number {
  return GRANT_RANK[role];
}

function scopesOf(principal: Principal): readonly Scope[] {
  switch (principal.kind) {
    case 'admin-token':
      return [];
    case 'user':
      return principal.memberships;
    case 'api-key':
      return principal.role === 'operator-admin'
        ? []
        : [
            {
              tenantId: principal.tenantId,
              role: principal.role,
              applicationId: principal.applicationId,
            },
          ];
  }
}

function scopeCovers(scope: Scope, target: Target): boolean {
  const tenantId = target.tenantId ?? null;
  const applicationId = target.applicationId ?? null;
  if (scope.role === 'integration') {
    if (scope.applicationId === null || applicationId !== scope.applicationId) return false;
    // Both known: they must agree (an application belongs to one tenant).
    return scope.tenantId === null || tenantId === null || scope.tenantId === tenantId;
  }
  return tenantId !== null && scope.tenantId === tenantId;
}

function splitAction(action: Action): [Resource, Access] {
  const colon = action.lastIndexOf(':');
  return [action.slice(0, colon) as Resource, action.slice(colon + 1) as Access];
}
