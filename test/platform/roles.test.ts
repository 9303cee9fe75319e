import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ACTIONS,
  type Action,
  API_KEY_ROLES,
  type ApiKeyRole,
  can,
  canGrant,
  highestTenantRole,
  isGlobal,
  type Principal,
  RESOURCES,
  type Resource,
  SCOPED_ROLES,
  type ScopedRole,
  type Target,
  TENANT_ROLES,
  type TenantRole,
  tenantsWhere,
} from '../../src/platform/roles.js';

/**
 * The matrix as the documentation states it, written out independently of ROLE_PERMISSIONS:
 * '' no access, 'r' read, 'rw' read and write.
 */
const EXPECTED: Record<ScopedRole, Record<Resource, '' | 'r' | 'rw'>> = {
  owner: {
    tenants: 'rw',
    users: 'rw',
    'api-keys': 'rw',
    applications: 'rw',
    devices: 'rw',
    gateways: 'rw',
    'device-profiles': 'rw',
    events: 'r',
    audit: 'r',
    metrics: '',
  },
  admin: {
    tenants: 'r',
    users: 'rw',
    'api-keys': 'rw',
    applications: 'rw',
    devices: 'rw',
    gateways: 'rw',
    'device-profiles': 'rw',
    events: 'r',
    audit: 'r',
    metrics: '',
  },
  operator: {
    tenants: 'r',
    users: '',
    'api-keys': '',
    applications: 'r',
    devices: 'rw',
    gateways: 'rw',
    'device-profiles': 'r',
    events: 'r',
    audit: '',
    metrics: '',
  },
  viewer: {
    tenants: 'r',
    users: '',
    'api-keys': '',
    applications: 'r',
    devices: 'r',
    gateways: 'r',
    'device-profiles': 'r',
    events: 'r',
    audit: '',
    metrics: '',
  },
  integration: {
    tenants: '',
    users: '',
    'api-keys': '',
    applications: 'r',
    devices: 'rw',
    gateways: '',
    'device-profiles': '',
    events: 'r',
    audit: '',
    metrics: '',
  },
};

const OWN_TENANT = 'tenant-own';
const OTHER_TENANT = 'tenant-other';
const OWN_APP = 'app-own';
const OTHER_APP = 'app-other';

function expected(role: ScopedRole, action: Action): boolean {
  const [resource, access] = action.split(':') as [Resource, 'read' | 'write'];
  const granted = EXPECTED[role][resource];
  return access === 'read' ? granted.includes('r') : granted === 'rw';
}

function userWith(role: ScopedRole): Principal {
  return {
    kind: 'user',
    userId: 'u',
    operatorAdmin: false,
    memberships: [
      {
        tenantId: OWN_TENANT,
        role,
        applicationId: role === 'integration' ? OWN_APP : null,
      },
    ],
  };
}

function keyWith(role: ApiKeyRole, readOnly = false): Principal {
  return {
    kind: 'api-key',
    keyId: 'k',
    tenantId: role === 'operator-admin' ? null : OWN_TENANT,
    applicationId: role === 'integration' ? OWN_APP : null,
    role,
    readOnly,
  };
}

/** The targets a scoped principal is tried on, and whether each is inside its scope. */
function targetsFor(role: ScopedRole): { name: string; target: Target; inScope: boolean }[] {
  const tenantRole = role !== 'integration';
  return [
    { name: 'own tenant', target: { tenantId: OWN_TENANT }, inScope: tenantRole },
    {
      name: 'own tenant, own application',
      target: { tenantId: OWN_TENANT, applicationId: OWN_APP },
      inScope: true,
    },
    {
      name: 'own tenant, other application',
      target: { tenantId: OWN_TENANT, applicationId: OTHER_APP },
      inScope: tenantRole,
    },
    { name: 'other tenant', target: { tenantId: OTHER_TENANT }, inScope: false },
    {
      name: 'other tenant, other application',
      target: { tenantId: OTHER_TENANT, applicationId: OTHER_APP },
      inScope: false,
    },
    {
      // An application id alone never names a tenant: tenant roles need the tenant.
      name: 'own application, tenant unknown',
      target: { applicationId: OWN_APP },
      inScope: !tenantRole,
    },
    { name: 'global', target: {}, inScope: false },
  ];
}

describe('roles: the permission matrix', () => {
  it('has every resource with a read and a write action', () => {
    assert.equal(ACTIONS.length, RESOURCES.length * 2);
    assert.deepEqual(Object.keys(EXPECTED).sort(), [...SCOPED_ROLES].sort());
  });

  for (const role of SCOPED_ROLES) {
    for (const kind of ['user membership', 'API key'] as const) {
      it(`${role} (${kind}): every action on own and other tenants`, () => {
        const principal = kind === 'user membership' ? userWith(role) : keyWith(role);
        const failures: string[] = [];
        for (const { name, target, inScope } of targetsFor(role)) {
          for (const action of ACTIONS) {
            const want = inScope && expected(role, action);
            if (can(principal, action, target) !== want) {
              failures.push(`${action} on ${name}: expected ${want ? 'allow' : 'deny'}`);
            }
          }
        }
        assert.deepEqual(failures, []);
      });
    }

    it(`${role} read-only API key: only the reads of its role, in scope`, () => {
      const principal = keyWith(role, true);
      const failures: string[] = [];
      for (const { name, target, inScope } of targetsFor(role)) {
        for (const action of ACTIONS) {
          const want = inScope && action.endsWith(':read') && expected(role, action);
          if (can(principal, action, target) !== want) {
            failures.push(`${action} on ${name}: expected ${want ? 'allow' : 'deny'}`);
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  }

  it('lets the admin token, operator-admin users and keys do everything, anywhere', () => {
    const globals: Principal[] = [
      { kind: 'admin-token' },
      { kind: 'user', userId: 'op', operatorAdmin: true, memberships: [] },
      keyWith('operator-admin'),
    ];
    for (const principal of globals) {
      assert.equal(isGlobal(principal), true);
      for (const { target } of targetsFor('owner')) {
        for (const action of ACTIONS) assert.equal(can(principal, action, target), true, action);
      }
    }
  });

  it('lets a read-only operator-admin key read everything and write nothing', () => {
    const principal = keyWith('operator-admin', true);
    assert.equal(isGlobal(principal), true);
    for (const { target } of targetsFor('owner')) {
      for (const action of ACTIONS) {
        assert.equal(can(principal, action, target), action.endsWith(':read'), action);
      }
    }
  });

  it('denies everything to a user without memberships', () => {
    const nobody: Principal = { kind: 'user', userId: 'u', operatorAdmin: false, memberships: [] };
    assert.equal(isGlobal(nobody), false);
    for (const { target } of targetsFor('owner')) {
      for (const action of ACTIONS) assert.equal(can(nobody, action, target), false);
    }
  });

  it('gives a user with several memberships the best role of the target tenant only', () => {
    const principal: Principal = {
      kind: 'user',
      userId: 'u',
      operatorAdmin: false,
      memberships: [
        { tenantId: OWN_TENANT, role: 'viewer', applicationId: null },
        { tenantId: OTHER_TENANT, role: 'admin', applicationId: null },
      ],
    };
    assert.equal(can(principal, 'devices:write', { tenantId: OWN_TENANT }), false);
    assert.equal(can(principal, 'devices:write', { tenantId: OTHER_TENANT }), true);
    assert.equal(can(principal, 'users:read', { tenantId: OWN_TENANT }), false);
    assert.equal(can(principal, 'users:read', { tenantId: 'third' }), false);
    assert.equal(highestTenantRole(principal, OWN_TENANT), 'viewer');
    assert.equal(highestTenantRole(principal, OTHER_TENANT), 'admin');
    assert.equal(highestTenantRole(principal, 'third'), undefined);
    assert.deepEqual(tenantsWhere(principal, 'tenants:read'), [OTHER_TENANT, OWN_TENANT].sort());
    assert.deepEqual(tenantsWhere(principal, 'users:write'), [OTHER_TENANT]);
  });

  it('refuses an integration scope when the target tenant contradicts the key’s tenant', () => {
    const principal = keyWith('integration');
    assert.equal(
      can(principal, 'devices:write', { tenantId: OWN_TENANT, applicationId: OWN_APP }),
      true,
    );
    assert.equal(
      can(principal, 'devices:write', { tenantId: OTHER_TENANT, applicationId: OWN_APP }),
      false,
    );
  });
});

describe('roles: list filters', () => {
  it('gives global principals every tenant and scoped ones theirs (never through integration)', () => {
    assert.equal(tenantsWhere({ kind: 'admin-token' }, 'audit:read'), 'all');
    assert.deepEqual(tenantsWhere(keyWith('admin'), 'audit:read'), [OWN_TENANT]);
    assert.deepEqual(tenantsWhere(keyWith('operator'), 'audit:read'), []);
    assert.deepEqual(tenantsWhere(keyWith('integration'), 'tenants:read'), []);
    assert.deepEqual(tenantsWhere(keyWith('admin', true), 'users:write'), []);
    assert.equal(tenantsWhere(keyWith('operator-admin', true), 'users:read'), 'all');
    assert.deepEqual(tenantsWhere(keyWith('operator-admin', true), 'users:write'), []);
  });
});

describe('roles: granting roles', () => {
  const rank: Record<TenantRole, number> = { viewer: 1, operator: 2, admin: 3, owner: 4 };
  const grantRank: Record<ScopedRole, number> = { ...rank, integration: 3 };

  for (const own of TENANT_ROLES) {
    it(`a ${own} gives roles up to its own in its tenant, none elsewhere`, () => {
      for (const kind of ['user', 'key'] as const) {
        const principal = kind === 'user' ? userWith(own) : keyWith(own);
        for (const role of API_KEY_ROLES) {
          const want = role !== 'operator-admin' && grantRank[role] <= rank[own];
          assert.equal(
            canGrant(principal, role, { tenantId: OWN_TENANT }),
            want,
            `${kind} ${role}`,
          );
          assert.equal(canGrant(principal, role, { tenantId: OTHER_TENANT }), false);
          assert.equal(canGrant(principal, role, {}), false);
        }
      }
    });
  }

  it('lets global principals give any role, and read-only or integration keys none', () => {
    for (const role of API_KEY_ROLES) {
      assert.equal(canGrant({ kind: 'admin-token' }, role, {}), true);
      assert.equal(canGrant(keyWith('operator-admin'), role, { tenantId: OWN_TENANT }), true);
      assert.equal(canGrant(keyWith('operator-admin', true), role, {}), false);
      assert.equal(canGrant(keyWith('owner', true), role, { tenantId: OWN_TENANT }), false);
      assert.equal(canGrant(keyWith('integration'), role, { tenantId: OWN_TENANT }), false);
    }
  });
});
