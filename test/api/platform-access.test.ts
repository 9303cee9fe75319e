import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ScopedRole } from '../../src/platform/roles.js';
import { PASSWORD, type PlatformApi, startPlatformApi } from './platform-helpers.js';

/**
 * Who may do what through the platform routes: every role (as an API key of tenant A) on
 * tenant A and on tenant B, tenants invisible across, list filters, and the audit trail.
 */
describe('platform API: tenants, users, keys and audit across tenants', () => {
  let api: PlatformApi;
  let tenantA: string;
  let tenantB: string;
  let applicationA: string;
  /** An API key token per role, in tenant A (integration: in an application). */
  const tokens = {} as Record<ScopedRole, string>;
  /** A key of each tenant to read and revoke. */
  let keyOfA: string;
  let keyOfB: string;

  before(async () => {
    api = await startPlatformApi();
    tenantA = (await api.request('POST', '/api/v1/tenants', { body: { name: 'Saint-Galmier' } }))
      .json.id;
    tenantB = (await api.request('POST', '/api/v1/tenants', { body: { name: 'Eau du Forez' } }))
      .json.id;
    applicationA = (await api.request('POST', '/api/v1/applications', { body: { name: 'meters' } }))
      .json.id;
    for (const role of ['owner', 'admin', 'operator', 'viewer'] as const) {
      const created = await api.request('POST', '/api/v1/api-keys', {
        body: { name: role, tenantId: tenantA, role },
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      tokens[role] = created.json.token;
    }
    const integration = await api.request('POST', '/api/v1/api-keys', {
      body: {
        name: 'integration',
        tenantId: tenantA,
        applicationId: applicationA,
        role: 'integration',
      },
    });
    assert.equal(integration.status, 201, JSON.stringify(integration.json));
    tokens.integration = integration.json.token;
    keyOfA = (
      await api.request('POST', '/api/v1/api-keys', {
        body: { name: 'a', tenantId: tenantA, role: 'viewer' },
      })
    ).json.id;
    keyOfB = (
      await api.request('POST', '/api/v1/api-keys', {
        body: { name: 'b', tenantId: tenantB, role: 'viewer' },
      })
    ).json.id;
  });

  after(async () => {
    await api.close();
  });

  const ROLES: ScopedRole[] = ['owner', 'admin', 'operator', 'viewer', 'integration'];

  /**
   * Each request, with the status expected per role on the own tenant (A); on the other tenant
   * (B) every role gets 404, as if the object did not exist. `tenant` is substituted.
   */
  const cases: {
    name: string;
    request: (tenant: 'A' | 'B') => [string, string, unknown?];
    own: Record<ScopedRole, number>;
    /** On tenant B; default 404 for every role. */
    other?: number | Partial<Record<(typeof ROLES)[number], number>>;
  }[] = [
    {
      name: 'read the tenant',
      request: (t) => ['GET', `/api/v1/tenants/${id(t)}`],
      own: { owner: 200, admin: 200, operator: 200, viewer: 200, integration: 404 },
    },
    {
      name: 'rename the tenant',
      request: (t) => [
        'PATCH',
        `/api/v1/tenants/${id(t)}`,
        { settings: { timeZone: 'Europe/Paris' } },
      ],
      own: { owner: 200, admin: 403, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'set the quotas',
      request: (t) => ['PATCH', `/api/v1/tenants/${id(t)}`, { quotas: { maxDevices: 1 } }],
      own: { owner: 403, admin: 403, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'delete the tenant',
      request: (t) => ['DELETE', `/api/v1/tenants/${id(t)}`],
      own: { owner: 403, admin: 403, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'list the users',
      request: (t) => ['GET', `/api/v1/users?tenantId=${id(t)}`],
      // Who reads users nowhere: 403 whatever the filter.
      own: { owner: 200, admin: 200, operator: 403, viewer: 403, integration: 403 },
      other: { operator: 403, viewer: 403, integration: 403 },
    },
    {
      name: 'create a viewer',
      request: (t) => [
        'POST',
        '/api/v1/users',
        { email: `${Math.random()}@x.fr`, password: PASSWORD, tenantId: id(t), role: 'viewer' },
      ],
      own: { owner: 201, admin: 201, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'create an owner',
      request: (t) => [
        'POST',
        '/api/v1/users',
        { email: `${Math.random()}@x.fr`, password: PASSWORD, tenantId: id(t), role: 'owner' },
      ],
      own: { owner: 201, admin: 403, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'create a viewer key',
      request: (t) => ['POST', '/api/v1/api-keys', { name: 'x', tenantId: id(t), role: 'viewer' }],
      own: { owner: 201, admin: 201, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'create an owner key',
      request: (t) => ['POST', '/api/v1/api-keys', { name: 'x', tenantId: id(t), role: 'owner' }],
      own: { owner: 201, admin: 403, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'list the keys',
      request: (t) => ['GET', `/api/v1/api-keys?tenantId=${id(t)}`],
      own: { owner: 200, admin: 200, operator: 403, viewer: 403, integration: 403 },
      other: { operator: 403, viewer: 403, integration: 403 },
    },
    {
      name: 'read a key',
      request: (t) => ['GET', `/api/v1/api-keys/${t === 'A' ? keyOfA : keyOfB}`],
      own: { owner: 200, admin: 200, operator: 403, viewer: 403, integration: 404 },
    },
    {
      name: 'read the audit log',
      request: (t) => ['GET', `/api/v1/audit?tenantId=${id(t)}`],
      own: { owner: 200, admin: 200, operator: 403, viewer: 403, integration: 403 },
      // Who reads the audit log nowhere is refused whatever the filter (as every list).
      other: { owner: 404, admin: 404, operator: 403, viewer: 403, integration: 403 },
    },
    {
      name: 'create a tenant',
      request: () => ['POST', '/api/v1/tenants', { name: 'mine' }],
      own: { owner: 403, admin: 403, operator: 403, viewer: 403, integration: 403 },
      other: 403,
    },
    {
      name: 'list the applications of a tenant',
      request: (t) => ['GET', `/api/v1/applications?tenantId=${id(t)}`],
      own: { owner: 200, admin: 200, operator: 200, viewer: 200, integration: 404 },
    },
  ];

  function id(tenant: 'A' | 'B'): string {
    return tenant === 'A' ? tenantA : tenantB;
  }

  for (const testCase of cases) {
    it(`${testCase.name}: every role, own and other tenant`, async () => {
      const failures: string[] = [];
      for (const role of ROLES) {
        for (const tenant of ['A', 'B'] as const) {
          const [method, url, body] = testCase.request(tenant);
          const answer = await api.request(method, url, { token: tokens[role], body });
          const other = testCase.other ?? 404;
          const want =
            tenant === 'A'
              ? testCase.own[role]
              : typeof other === 'number'
                ? other
                : (other[role] ?? 404);
          if (answer.status !== want) {
            failures.push(
              `${role} on ${tenant}: ${answer.status} ${JSON.stringify(answer.json)}, expected ${want}`,
            );
          }
          if (answer.status >= 400) {
            assert.deepEqual(Object.keys(answer.json).sort(), ['error', 'message']);
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  }

  it('answers 404 for another tenant exactly as for a tenant that does not exist', async () => {
    const other = await api.request('GET', `/api/v1/tenants/${tenantB}`, { token: tokens.owner });
    const missing = await api.request('GET', '/api/v1/tenants/nope', { token: tokens.owner });
    assert.equal(other.status, 404);
    assert.equal(missing.status, 404);
    assert.deepEqual(other.json, { error: 'NOT_FOUND', message: `tenant ${tenantB} not found` });
    assert.deepEqual(missing.json, { error: 'NOT_FOUND', message: 'tenant nope not found' });
    const otherKey = await api.request('DELETE', `/api/v1/api-keys/${keyOfB}`, {
      token: tokens.admin,
    });
    assert.deepEqual(otherKey.json, { error: 'NOT_FOUND', message: `API key ${keyOfB} not found` });
    assert.equal((await api.storage.apiKeys.get(keyOfB))?.revokedAt, null, 'not revoked');
  });

  it('lists only the own tenant in every list', async () => {
    const tenants = await api.request('GET', '/api/v1/tenants', { token: tokens.viewer });
    assert.deepEqual(
      tenants.json.tenants.map((t: { id: string }) => t.id),
      [tenantA],
    );
    const all = await api.request('GET', '/api/v1/tenants');
    assert.ok(all.json.tenants.length >= 2);

    const keys = await api.request('GET', '/api/v1/api-keys', { token: tokens.admin });
    assert.ok(keys.json.apiKeys.length > 0);
    for (const key of keys.json.apiKeys) {
      assert.equal(key.tenantId, tenantA);
      assert.equal(key.token, undefined, 'never the token');
    }
    const users = await api.request('GET', '/api/v1/users', { token: tokens.admin });
    for (const user of users.json.users) {
      assert.ok(user.memberships.every((m: { tenantId: string }) => m.tenantId === tenantA));
    }
    const audit = await api.request('GET', '/api/v1/audit?limit=1000', { token: tokens.owner });
    assert.ok(audit.json.entries.length > 0);
    for (const entry of audit.json.entries) assert.equal(entry.tenantId, tenantA);
    const nothing = await api.request('GET', '/api/v1/audit', { token: tokens.viewer });
    assert.equal(nothing.status, 403);
  });

  it('shows a user of two tenants to each tenant with its own membership only', async () => {
    const created = await api.request('POST', '/api/v1/users', {
      body: { email: 'shared@x.fr', password: PASSWORD, tenantId: tenantA, role: 'operator' },
    });
    const userId = created.json.id;
    const added = await api.request('PUT', `/api/v1/users/${userId}/memberships/${tenantB}`, {
      body: { role: 'viewer' },
    });
    assert.equal(added.status, 200, JSON.stringify(added.json));
    assert.equal(added.json.memberships.length, 2);
    const seenByA = await api.request('GET', `/api/v1/users/${userId}`, { token: tokens.admin });
    assert.deepEqual(seenByA.json.memberships, [
      { tenantId: tenantA, role: 'operator', applicationId: null },
    ]);
    // Tenant A's admin does not manage the user's account in B.
    const disable = await api.request('PATCH', `/api/v1/users/${userId}`, {
      token: tokens.admin,
      body: { disabled: true },
    });
    assert.equal(disable.status, 403);
    // But manages the membership in A, and then the user is gone from A's view.
    const removed = await api.request('DELETE', `/api/v1/users/${userId}/memberships/${tenantA}`, {
      token: tokens.admin,
    });
    assert.equal(removed.status, 204);
    assert.equal(
      (await api.request('GET', `/api/v1/users/${userId}`, { token: tokens.admin })).status,
      404,
    );
    const adminB = await api.request('POST', '/api/v1/api-keys', {
      body: { name: 'admin b', tenantId: tenantB, role: 'admin' },
    });
    const disabled = await api.request('PATCH', `/api/v1/users/${userId}`, {
      token: adminB.json.token,
      body: { disabled: true },
    });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.json));
    assert.equal(disabled.json.disabled, true);
  });

  it('keeps admins below owners: no promotion to owner, no demotion of an owner', async () => {
    const owner = await api.request('POST', '/api/v1/users', {
      token: tokens.owner,
      body: { email: 'maire@x.fr', password: PASSWORD, tenantId: tenantA, role: 'owner' },
    });
    assert.equal(owner.status, 201);
    const demote = await api.request(
      'PUT',
      `/api/v1/users/${owner.json.id}/memberships/${tenantA}`,
      {
        token: tokens.admin,
        body: { role: 'viewer' },
      },
    );
    assert.equal(demote.status, 403);
    const agent = await api.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { email: 'agent@x.fr', password: PASSWORD, tenantId: tenantA, role: 'operator' },
    });
    const promote = await api.request(
      'PUT',
      `/api/v1/users/${agent.json.id}/memberships/${tenantA}`,
      {
        token: tokens.admin,
        body: { role: 'owner' },
      },
    );
    assert.equal(promote.status, 403);
    const operatorAdmin = await api.request('POST', '/api/v1/users', {
      token: tokens.owner,
      body: { email: 'op@x.fr', password: PASSWORD, operatorAdmin: true },
    });
    assert.equal(operatorAdmin.status, 403);
    const globalKey = await api.request('POST', '/api/v1/api-keys', {
      token: tokens.owner,
      body: { name: 'everything', role: 'operator-admin' },
    });
    assert.equal(globalKey.status, 403);
  });

  it('refuses a weak password and a duplicate address with the usual errors', async () => {
    const weak = await api.request('POST', '/api/v1/users', {
      body: { email: 'weak@x.fr', password: 'short', tenantId: tenantA, role: 'viewer' },
    });
    assert.equal(weak.status, 400);
    assert.match(weak.json.message, /at least 12 characters/);
    const first = await api.request('POST', '/api/v1/users', {
      body: { email: 'twice@x.fr', password: PASSWORD, tenantId: tenantA, role: 'viewer' },
    });
    assert.equal(first.status, 201);
    const again = await api.request('POST', '/api/v1/users', {
      body: { email: 'TWICE@x.fr', password: PASSWORD, tenantId: tenantA, role: 'viewer' },
    });
    assert.equal(again.status, 409);
    assert.equal(again.json.error, 'ALREADY_EXISTS');
    assert.ok(!JSON.stringify(first.json).includes(PASSWORD));
  });

  it('lets operator-admin keys use every route, read-only ones only read', async () => {
    const full = await api.request('POST', '/api/v1/api-keys', {
      body: { name: 'noc', role: 'operator-admin' },
    });
    const readOnly = await api.request('POST', '/api/v1/api-keys', {
      body: { name: 'noc-ro', role: 'operator-admin', readOnly: true },
    });
    assert.equal(full.status, 201);
    assert.equal(readOnly.json.readOnly, true);
    assert.equal(
      (await api.request('GET', '/api/v1/applications', { token: full.json.token })).status,
      200,
    );
    assert.equal(
      (
        await api.request('POST', '/api/v1/applications', {
          token: full.json.token,
          body: { name: 'by key' },
        })
      ).status,
      201,
    );
    assert.equal(
      (await api.request('GET', `/api/v1/tenants/${tenantB}`, { token: readOnly.json.token }))
        .status,
      200,
    );
    const refused = await api.request('POST', '/api/v1/applications', {
      token: readOnly.json.token,
      body: { name: 'no' },
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error, 'FORBIDDEN');
  });
});

describe('platform API: the audit trail', () => {
  let api: PlatformApi;

  before(async () => {
    api = await startPlatformApi();
  });

  after(async () => {
    await api.close();
  });

  async function latest() {
    const answer = await api.request('GET', '/api/v1/audit?limit=1');
    return answer.json.entries[0];
  }

  it('records every write of the platform routes, with actor, object, tenant and source', async () => {
    const tenant = await api.request('POST', '/api/v1/tenants', { body: { name: 'Veauche' } });
    const tenantId = tenant.json.id;
    assert.deepEqual(await latest(), {
      id: (await latest()).id,
      time: '2026-03-01T08:00:00.000Z',
      actor: { type: 'admin-token', id: null, tenantId: null },
      action: 'tenant.create',
      objectType: 'tenant',
      objectId: tenantId,
      tenantId,
      relatedTenantId: null,
      sourceIp: '127.0.0.1',
      outcome: 'success',
      details: { name: 'Veauche', kind: 'commune' },
    });

    const steps: [string, string, unknown, string][] = [
      ['PATCH', `/api/v1/tenants/${tenantId}`, { name: 'Veauche (42)' }, 'tenant.update'],
      [
        'POST',
        '/api/v1/users',
        { email: 'agent@veauche.fr', password: PASSWORD, tenantId, role: 'admin' },
        'user.create',
      ],
      ['POST', '/api/v1/api-keys', { name: 'scada', tenantId, role: 'operator' }, 'api-key.create'],
    ];
    const ids: Record<string, string> = {};
    for (const [method, url, body, action] of steps) {
      const answer = await api.request(method, url, { body });
      assert.ok(answer.status < 300, JSON.stringify(answer.json));
      const entry = await latest();
      assert.equal(entry.action, action);
      assert.equal(entry.outcome, 'success');
      assert.equal(entry.tenantId, tenantId);
      ids[action] = answer.json.id;
      assert.equal(entry.objectId, answer.json.id);
      const text = JSON.stringify(entry);
      assert.ok(!text.includes(PASSWORD), 'never the password');
      if (answer.json.token !== undefined)
        assert.ok(!text.includes(answer.json.token), 'never the token');
    }

    const userId = ids['user.create']!;
    const more: [string, string, unknown, string][] = [
      ['PATCH', `/api/v1/users/${userId}`, { disabled: true }, 'user.update'],
      [
        'PUT',
        `/api/v1/users/${userId}/memberships/${tenantId}`,
        { role: 'viewer' },
        'membership.set',
      ],
      ['DELETE', `/api/v1/users/${userId}/memberships/${tenantId}`, undefined, 'membership.remove'],
      ['DELETE', `/api/v1/users/${userId}`, undefined, 'user.delete'],
      ['DELETE', `/api/v1/api-keys/${ids['api-key.create']}`, undefined, 'api-key.revoke'],
      ['DELETE', `/api/v1/tenants/${tenantId}`, undefined, 'tenant.delete'],
    ];
    for (const [method, url, body, action] of more) {
      const answer = await api.request(method, url, { body });
      assert.ok(answer.status < 300, `${method} ${url}: ${JSON.stringify(answer.json)}`);
      const entry = await latest();
      assert.equal(entry.action, action);
      assert.equal(entry.outcome, 'success');
    }
  });

  it('records refused and failed writes with their outcome', async () => {
    const tenant = await api.request('POST', '/api/v1/tenants', { body: { name: 'Andrézieux' } });
    const viewer = await api.request('POST', '/api/v1/api-keys', {
      body: { name: 'v', tenantId: tenant.json.id, role: 'viewer' },
    });
    const denied = await api.request('PATCH', `/api/v1/tenants/${tenant.json.id}`, {
      token: viewer.json.token,
      body: { name: 'mine' },
    });
    assert.equal(denied.status, 403);
    const entry = await latest();
    assert.equal(entry.action, 'tenant.update');
    assert.equal(entry.outcome, 'denied');
    assert.deepEqual(entry.actor, {
      type: 'api-key',
      id: viewer.json.id,
      tenantId: tenant.json.id,
    });
    assert.equal(entry.details.error, 'FORBIDDEN');

    const missing = await api.request('PATCH', '/api/v1/tenants/nope', { body: { name: 'x' } });
    assert.equal(missing.status, 404);
    assert.equal((await latest()).outcome, 'failure');
  });

  it('records the writes of the tenant-scoped routes, not their reads', async () => {
    const created = await api.request('POST', '/api/v1/applications', { body: { name: 'meters' } });
    assert.equal(created.status, 201);
    const entry = await latest();
    assert.equal(entry.action, 'application.create');
    assert.equal(entry.objectId, created.json.id);
    assert.deepEqual(entry.details, {
      name: 'meters',
      route: 'POST /api/v1/applications',
      status: 201,
    });
    await api.request('GET', '/api/v1/applications');
    assert.equal((await latest()).id, entry.id, 'a read is not audited');
    const bad = await api.request('POST', '/api/v1/devices', { body: { devEui: 'zz' } });
    assert.equal(bad.status, 400);
    assert.equal((await latest()).action, 'device.create');
    assert.equal((await latest()).outcome, 'failure');
  });

  it('pages the audit log by id and filters it', async () => {
    const page1 = await api.request('GET', '/api/v1/audit?limit=2');
    assert.equal(page1.json.entries.length, 2);
    assert.equal(page1.json.nextBeforeId, page1.json.entries[1].id);
    const page2 = await api.request(
      'GET',
      `/api/v1/audit?limit=2&beforeId=${page1.json.nextBeforeId}`,
    );
    assert.ok(page2.json.entries[0].id < page1.json.entries[1].id);
    const creates = await api.request('GET', '/api/v1/audit?action=tenant.create');
    assert.ok(creates.json.entries.length >= 2);
    assert.ok(creates.json.entries.every((e: { action: string }) => e.action === 'tenant.create'));
    assert.equal((await api.request('GET', '/api/v1/audit?limit=0')).status, 400);
    assert.equal((await api.request('GET', '/api/v1/audit?from=yesterday')).status, 400);
  });
});
