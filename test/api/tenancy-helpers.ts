/**
 * Tenants with objects in them, for the tests of tenant scoping, lists and bulk operations: an
 * API over a fresh SQLite database (platform-helpers.ts) with a network that records what it is
 * told and does nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ApiNetwork, ApiOptions } from '../../src/api/server.js';
import type { ScopedRole } from '../../src/platform/roles.js';
import { type Answer, type PlatformApi, startPlatformApi } from './platform-helpers.js';

export const APP_KEY = '2b7e151628aed2a6abf7158809cf4f3c';

/** A network that accepts every call (forceRejoin answers an id). */
export function quietNetwork(calls: string[] = []): ApiNetwork {
  return {
    config: {
      rx1DelaySeconds: 1,
      rx1DrOffset: 0,
      rx2Dr: 0,
      rx2FrequencyHz: 869_525_000,
    } as ApiNetwork['config'],
    sessionChanged: () => calls.push('sessionChanged'),
    sessionRemoved: (devEui: string) => calls.push(`sessionRemoved ${devEui}`),
    downlinkQueued: (devEui: string) => calls.push(`downlinkQueued ${devEui}`),
    gatewayAdded: (id: string) => calls.push(`gatewayAdded ${id}`),
    gatewayRemoved: (id: string) => calls.push(`gatewayRemoved ${id}`),
    deviceChanged: (devEui: string) => calls.push(`deviceChanged ${devEui}`),
    deviceProfileChanged: (id: string) => calls.push(`deviceProfileChanged ${id}`),
    forceRejoin: async () => ({ id: 'force-rejoin-1' }),
  };
}

export function eui(): string {
  return randomBytes(8).toString('hex');
}

/** The body of `POST /api/v1/devices` for a new OTAA device (LoRaWAN 1.0.3) of an application. */
export function newDeviceBody(applicationId: string, name: string, devEui = eui()) {
  return { devEui, joinEui: eui(), name, applicationId, macVersion: '1.0.3', appKey: APP_KEY };
}

/** What one tenant holds. */
export interface TenantObjects {
  tenantId: string;
  applicationId: string;
  /** A second application of the tenant (a move target). */
  otherApplicationId: string;
  devEui: string;
  deviceName: string;
  gatewayId: string;
  sharedGatewayId: string;
  deviceProfileId: string;
  userId: string;
  apiKeyId: string;
}

/** A role of tenant A's keys; `read-only` is an owner key with readOnly. */
export type MatrixRole = ScopedRole | 'read-only';
export const MATRIX_ROLES: MatrixRole[] = [
  'owner',
  'admin',
  'operator',
  'viewer',
  'integration',
  'read-only',
];

export interface Tenancy {
  api: PlatformApi;
  calls: string[];
  A: TenantObjects;
  B: TenantObjects;
  /** The operator's objects, without a tenant. */
  operator: { applicationId: string; devEui: string; gatewayId: string };
  catalogueProfileId: string;
  /** Tenant A's keys by role (integration: in A's application). */
  tokens: Record<MatrixRole, string>;
  /** As the admin token unless `token` is given; fails the test on an unexpected status. */
  admin(method: string, url: string, body?: unknown, status?: number): Promise<Answer['json']>;
}

export async function startTenancy(options: Partial<ApiOptions> = {}): Promise<Tenancy> {
  const calls: string[] = [];
  const api = await startPlatformApi({
    network: quietNetwork(calls),
    rateLimit: false,
    ...options,
  });
  async function admin(method: string, url: string, body?: unknown, status?: number) {
    const answer = await api.request(method, url, { body });
    if (status !== undefined) {
      assert.equal(answer.status, status, `${method} ${url}: ${JSON.stringify(answer.json)}`);
    } else {
      assert.ok(answer.status < 300, `${method} ${url}: ${JSON.stringify(answer.json)}`);
    }
    return answer.json;
  }
  async function fill(name: string): Promise<TenantObjects> {
    const tenantId = (await admin('POST', '/api/v1/tenants', { name })).id;
    const applicationId = (
      await admin('POST', '/api/v1/applications', { name: `${name} meters`, tenantId })
    ).id;
    const otherApplicationId = (
      await admin('POST', '/api/v1/applications', { name: `${name} lights`, tenantId })
    ).id;
    const deviceProfileId = (
      await admin('POST', '/api/v1/device-profiles', { name: `${name} profile`, tenantId })
    ).id;
    const devEui = eui();
    const deviceName = `${name} meter`;
    await admin('POST', '/api/v1/devices', {
      ...newDeviceBody(applicationId, deviceName, devEui),
      deviceProfileId,
      tags: { site: name },
    });
    await api.storage.events.append({
      devEui,
      applicationId,
      type: 'up',
      time: '2026-03-01T08:00:00.000Z',
      body: { deviceInfo: { devEui, applicationId }, fCnt: 1 },
    });
    await admin('POST', `/api/v1/devices/${devEui}/queue`, { fPort: 1, data: 'AQI=' });
    const gatewayId = eui();
    await admin('POST', '/api/v1/gateways', {
      gatewayId,
      name: `${name} roof`,
      tenantId,
      tags: { owner: name },
    });
    const sharedGatewayId = eui();
    await admin('POST', '/api/v1/gateways', {
      gatewayId: sharedGatewayId,
      name: `${name} tower`,
      tenantId,
      shared: true,
      tags: { owner: name },
    });
    const userId = (
      await admin('POST', '/api/v1/users', {
        email: `agent@${name.toLowerCase()}.fr`,
        password: 'correct horse battery staple',
        tenantId,
        role: 'viewer',
      })
    ).id;
    const apiKeyId = (
      await admin('POST', '/api/v1/api-keys', { name: `${name} scada`, tenantId, role: 'viewer' })
    ).id;
    return {
      tenantId,
      applicationId,
      otherApplicationId,
      devEui,
      deviceName,
      gatewayId,
      sharedGatewayId,
      deviceProfileId,
      userId,
      apiKeyId,
    };
  }
  const A = await fill('Veauche');
  const B = await fill('Feurs');
  const operatorApplication = (await admin('POST', '/api/v1/applications', { name: 'noc' })).id;
  const operatorDevice = eui();
  await admin(
    'POST',
    '/api/v1/devices',
    newDeviceBody(operatorApplication, 'noc probe', operatorDevice),
  );
  const operatorGateway = eui();
  await admin('POST', '/api/v1/gateways', { gatewayId: operatorGateway, name: 'noc mast' });
  const catalogueProfileId = (await admin('POST', '/api/v1/device-profiles', { name: 'catalogue' }))
    .id;
  const tokens = {} as Record<MatrixRole, string>;
  for (const role of ['owner', 'admin', 'operator', 'viewer'] as const) {
    tokens[role] = (
      await admin('POST', '/api/v1/api-keys', { name: role, tenantId: A.tenantId, role })
    ).token;
  }
  tokens.integration = (
    await admin('POST', '/api/v1/api-keys', {
      name: 'integration',
      applicationId: A.applicationId,
      role: 'integration',
    })
  ).token;
  tokens['read-only'] = (
    await admin('POST', '/api/v1/api-keys', {
      name: 'read-only owner',
      tenantId: A.tenantId,
      role: 'owner',
      readOnly: true,
    })
  ).token;
  return {
    api,
    calls,
    A,
    B,
    operator: {
      applicationId: operatorApplication,
      devEui: operatorDevice,
      gatewayId: operatorGateway,
    },
    catalogueProfileId,
    tokens,
    admin,
  };
}
