import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  APP_KEY,
  eui,
  MATRIX_ROLES,
  type MatrixRole,
  newDeviceBody,
  startTenancy,
  type Tenancy,
  type TenantObjects,
} from './tenancy-helpers.js';

/**
 * The authorization matrix: every endpoint of the API x every role of tenant A (API keys:
 * owner, admin, operator, viewer, an integration key of A's application, a read-only owner key)
 * x an object of its own tenant (A) and of the other one (B). Then, for every role, nothing of B
 * shows through A's lists, filters, events and exports.
 *
 * A route not listed here must be the operator's (403 for every tenant role): the last test
 * checks every route of the OpenAPI document is either in the table or refused that way.
 */

type Side = 'A' | 'B';
type Statuses = Record<MatrixRole, number>;
/** [method, url, body, content type] */
type Call = [string, string, unknown?, string?];

interface Case {
  name: string;
  /** Objects the request consumes (a fresh one per role and side), made by the admin token. */
  prepare?: (t: TenantObjects, side: Side) => Promise<Record<string, string>>;
  request: (t: TenantObjects, made: Record<string, string>) => Call;
  own: Statuses;
  /** On tenant B's object; default 404 for every role, as if it did not exist. */
  other?: Statuses | number;
}

/** owner, admin, operator, viewer, integration, read-only */
function s(
  owner: number,
  admin: number,
  operator: number,
  viewer: number,
  integration: number,
  readOnly: number,
): Statuses {
  return { owner, admin, operator, viewer, integration, 'read-only': readOnly };
}
const all = (status: number): Statuses => s(status, status, status, status, status, status);

describe('authorization matrix: every endpoint x every role x own and other tenant', () => {
  let tenancy: Tenancy;
  /** A third tenant that A's shares go to (a share with B would put B's id in A's audit log). */
  let third: string;

  before(async () => {
    tenancy = await startTenancy({ metrics: new Registry() });
    third = (await tenancy.admin('POST', '/api/v1/tenants', { name: 'Montbrison' })).id;
  });

  after(async () => {
    await tenancy.api.close();
  });

  const freshDevice = async (t: TenantObjects) => {
    const devEui = eui();
    await tenancy.admin('POST', '/api/v1/devices', newDeviceBody(t.applicationId, 'fresh', devEui));
    return { devEui };
  };
  /** A `prepare` making a fresh object of the tenant (`{name: 'x', tenantId, ...body}`): `{id}`. */
  const freshObject =
    (path: string, body: Record<string, unknown> = {}) =>
    async (t: TenantObjects) => ({
      id: (await tenancy.admin('POST', path, { name: 'x', tenantId: t.tenantId, ...body })).id,
    });
  /** A `prepare` making a webhook on the tenant's application: `{webhookId}`. */
  const freshWebhook = async (t: TenantObjects) => ({
    webhookId: (
      await tenancy.admin('POST', `/api/v1/applications/${t.applicationId}/webhooks`, {
        url: 'https://hooks.example.org/fresh',
      })
    ).id,
  });
  /** A `prepare` sharing a fresh device of `provider`'s application with a tenant: `{shareId}`. */
  const freshShare = async (provider: TenantObjects, receiverId: string) => {
    const { devEui } = await freshDevice(provider);
    const share = await tenancy.api.storage.measurementShares.create({
      applicationId: provider.applicationId,
      devEui,
      tenantId: receiverId,
      fields: ['volume'],
    });
    return { shareId: share.id };
  };
  const freshUser = async (t: TenantObjects) => ({
    userId: (
      await tenancy.admin('POST', '/api/v1/users', {
        email: `${eui()}@x.fr`,
        password: 'correct horse battery staple',
        tenantId: t.tenantId,
        role: 'viewer',
      })
    ).id,
  });

  const cases: Case[] = [
    // Applications.
    {
      name: 'create an application',
      request: (t) => ['POST', '/api/v1/applications', { name: 'x', tenantId: t.tenantId }],
      own: s(201, 201, 403, 403, 404, 403),
    },
    {
      name: 'list the applications of a tenant',
      request: (t) => ['GET', `/api/v1/applications?tenantId=${t.tenantId}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: 'get an application',
      request: (t) => ['GET', `/api/v1/applications/${t.applicationId}`],
      own: all(200),
    },
    {
      name: 'rename an application',
      request: (t) => ['PATCH', `/api/v1/applications/${t.applicationId}`, { name: 'renamed' }],
      own: s(200, 200, 403, 403, 403, 403),
    },
    {
      name: 'move an application to another tenant',
      request: (t) => [
        'PATCH',
        `/api/v1/applications/${t.applicationId}`,
        { tenantId: t.tenantId },
      ],
      own: s(403, 403, 403, 403, 403, 403),
    },
    {
      name: 'delete an application',
      prepare: freshObject('/api/v1/applications'),
      request: (_t, made) => ['DELETE', `/api/v1/applications/${made['id']}`],
      own: s(204, 204, 403, 403, 404, 403),
    },
    // Webhooks (docs/webhooks.md): read with the application, write as its owner/admin.
    {
      name: "list an application's webhooks",
      request: (t) => ['GET', `/api/v1/applications/${t.applicationId}/webhooks`],
      own: all(200),
    },
    {
      name: 'create a webhook',
      request: (t) => [
        'POST',
        `/api/v1/applications/${t.applicationId}/webhooks`,
        { url: 'https://hooks.example.org/x' },
      ],
      own: s(201, 201, 403, 403, 403, 403),
    },
    {
      name: 'get a webhook',
      prepare: freshWebhook,
      request: (t, made) => [
        'GET',
        `/api/v1/applications/${t.applicationId}/webhooks/${made['webhookId']}`,
      ],
      own: all(200),
    },
    {
      name: 'change a webhook',
      prepare: freshWebhook,
      request: (t, made) => [
        'PATCH',
        `/api/v1/applications/${t.applicationId}/webhooks/${made['webhookId']}`,
        { enabled: false },
      ],
      own: s(200, 200, 403, 403, 403, 403),
    },
    {
      name: 'delete a webhook',
      prepare: freshWebhook,
      request: (t, made) => [
        'DELETE',
        `/api/v1/applications/${t.applicationId}/webhooks/${made['webhookId']}`,
      ],
      own: s(204, 204, 403, 403, 403, 403),
    },
    {
      name: "list a webhook's deliveries",
      prepare: freshWebhook,
      request: (t, made) => [
        'GET',
        `/api/v1/applications/${t.applicationId}/webhooks/${made['webhookId']}/deliveries`,
      ],
      own: all(200),
    },
    {
      name: "replay a webhook's dead deliveries",
      prepare: freshWebhook,
      request: (t, made) => [
        'POST',
        `/api/v1/applications/${t.applicationId}/webhooks/${made['webhookId']}/replay`,
        { status: 'dead' },
      ],
      own: s(200, 200, 403, 403, 403, 403),
    },
    // Measurement shares (docs/measurements.md): the provider reads them with its application
    // and its owners and admins write them; the receiving tenant's members read what they get.
    {
      name: "list an application's measurement shares",
      request: (t) => ['GET', `/api/v1/applications/${t.applicationId}/measurement-shares`],
      own: all(200),
    },
    {
      name: 'share measurements of a device with another tenant',
      prepare: async (t, side) => ({
        ...(await freshDevice(t)),
        receiver: side === 'A' ? third : tenancy.A.tenantId,
      }),
      request: (t, made) => [
        'POST',
        `/api/v1/applications/${t.applicationId}/measurement-shares`,
        { devEui: made['devEui'], tenantId: made['receiver'], fields: ['volume'] },
      ],
      own: s(201, 201, 403, 403, 403, 403),
    },
    {
      name: 'get a measurement share',
      prepare: (t, side) => freshShare(t, side === 'A' ? third : tenancy.A.tenantId),
      request: (t, made) => [
        'GET',
        `/api/v1/applications/${t.applicationId}/measurement-shares/${made['shareId']}`,
      ],
      own: all(200),
    },
    {
      name: "change a measurement share's fields",
      prepare: (t, side) => freshShare(t, side === 'A' ? third : tenancy.A.tenantId),
      request: (t, made) => [
        'PATCH',
        `/api/v1/applications/${t.applicationId}/measurement-shares/${made['shareId']}`,
        { fields: ['volume', 'index'] },
      ],
      own: s(200, 200, 403, 403, 403, 403),
    },
    {
      name: 'delete a measurement share',
      prepare: (t, side) => freshShare(t, side === 'A' ? third : tenancy.A.tenantId),
      request: (t, made) => [
        'DELETE',
        `/api/v1/applications/${t.applicationId}/measurement-shares/${made['shareId']}`,
      ],
      own: s(204, 204, 403, 403, 403, 403),
    },
    {
      name: 'list the shared measurements a tenant receives',
      request: (t) => ['GET', `/api/v1/shared-measurements?tenantId=${t.tenantId}`],
      // An integration has no tenant role: it receives nothing anywhere, whatever the filter.
      own: s(200, 200, 200, 200, 403, 200),
      other: s(404, 404, 404, 404, 403, 404),
    },
    {
      name: 'list the shared measurements received',
      request: () => ['GET', '/api/v1/shared-measurements'],
      own: s(200, 200, 200, 200, 403, 200),
      other: s(200, 200, 200, 200, 403, 200),
    },
    {
      name: 'get a received measurement share',
      // Shared with the tenant by the other one: A's roles read what A receives, never what B does.
      prepare: (t, side) => freshShare(side === 'A' ? tenancy.B : tenancy.A, t.tenantId),
      request: (_t, made) => ['GET', `/api/v1/shared-measurements/${made['shareId']}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: 'read shared measurements',
      prepare: (t, side) => freshShare(side === 'A' ? tenancy.B : tenancy.A, t.tenantId),
      request: (_t, made) => [
        'GET',
        `/api/v1/shared-measurements/${made['shareId']}/measurements?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z`,
      ],
      own: s(200, 200, 200, 200, 404, 200),
    },
    // Gateways.
    {
      name: 'register a gateway',
      request: (t) => [
        'POST',
        '/api/v1/gateways',
        { gatewayId: eui(), name: 'x', tenantId: t.tenantId },
      ],
      own: s(201, 201, 201, 403, 404, 403),
    },
    {
      name: 'list the gateways of a tenant',
      request: (t) => ['GET', `/api/v1/gateways?tenantId=${t.tenantId}`],
      // An integration key reads no gateway anywhere: refused whatever the filter.
      own: s(200, 200, 200, 200, 403, 200),
      other: s(404, 404, 404, 404, 403, 404),
    },
    {
      name: 'get a private gateway',
      request: (t) => ['GET', `/api/v1/gateways/${t.gatewayId}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: 'get a shared gateway',
      request: (t) => ['GET', `/api/v1/gateways/${t.sharedGatewayId}`],
      own: s(200, 200, 200, 200, 404, 200),
      other: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: 'change a private gateway',
      request: (t) => ['PATCH', `/api/v1/gateways/${t.gatewayId}`, { name: 'renamed' }],
      own: s(200, 200, 200, 403, 404, 403),
    },
    {
      name: 'change a shared gateway',
      request: (t) => ['PATCH', `/api/v1/gateways/${t.sharedGatewayId}`, { tags: { a: 'b' } }],
      own: s(200, 200, 200, 403, 404, 403),
      other: s(403, 403, 403, 403, 404, 403),
    },
    {
      name: 'delete a gateway',
      prepare: async (t) => {
        const gatewayId = eui();
        await tenancy.admin('POST', '/api/v1/gateways', {
          gatewayId,
          name: 'x',
          tenantId: t.tenantId,
        });
        return { gatewayId };
      },
      request: (_t, made) => ['DELETE', `/api/v1/gateways/${made['gatewayId']}`],
      own: s(204, 204, 204, 403, 404, 403),
    },
    // Devices.
    {
      name: 'create a device',
      request: (t) => ['POST', '/api/v1/devices', newDeviceBody(t.applicationId, 'x')],
      own: s(201, 201, 201, 403, 201, 403),
      // Another tenant's application is, for the caller, one that does not exist.
      other: all(400),
    },
    {
      name: 'list the devices of a tenant',
      request: (t) => ['GET', `/api/v1/devices?tenantId=${t.tenantId}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: 'get a device',
      request: (t) => ['GET', `/api/v1/devices/${t.devEui}`],
      own: all(200),
    },
    {
      name: 'change a device',
      request: (t) => ['PATCH', `/api/v1/devices/${t.devEui}`, { name: 'renamed' }],
      own: s(200, 200, 200, 403, 200, 403),
    },
    {
      name: 'delete a device',
      prepare: freshDevice,
      request: (_t, made) => ['DELETE', `/api/v1/devices/${made['devEui']}`],
      own: s(204, 204, 204, 403, 204, 403),
    },
    {
      name: 'queue a downlink',
      request: (t) => ['POST', `/api/v1/devices/${t.devEui}/queue`, { fPort: 2, data: 'AQ==' }],
      own: s(201, 201, 201, 403, 201, 403),
    },
    {
      name: 'read the downlink queue',
      request: (t) => ['GET', `/api/v1/devices/${t.devEui}/queue`],
      own: all(200),
    },
    {
      name: 'delete a queued downlink',
      prepare: async (t) => ({
        id: (
          await tenancy.admin('POST', `/api/v1/devices/${t.devEui}/queue`, {
            fPort: 2,
            data: 'AQ==',
          })
        ).id,
      }),
      request: (t, made) => ['DELETE', `/api/v1/devices/${t.devEui}/queue/${made['id']}`],
      own: s(204, 204, 204, 403, 204, 403),
    },
    {
      name: 'flush the downlink queue',
      request: (t) => ['DELETE', `/api/v1/devices/${t.devEui}/queue`],
      own: s(200, 200, 200, 403, 200, 403),
    },
    {
      name: 'read the events',
      request: (t) => ['GET', `/api/v1/devices/${t.devEui}/events`],
      own: all(200),
    },
    {
      name: 'read the measurements',
      request: (t) => ['GET', `/api/v1/devices/${t.devEui}/measurements`],
      own: all(200),
    },
    {
      name: 'ask a ForceRejoinReq',
      request: (t) => ['POST', `/api/v1/devices/${t.devEui}/force-rejoin`, {}],
      own: s(202, 202, 202, 403, 202, 403),
    },
    {
      name: 'move a device to another application of the tenant',
      prepare: freshDevice,
      request: (t, made) => [
        'POST',
        `/api/v1/devices/${made['devEui']}/move`,
        { applicationId: t.otherApplicationId },
      ],
      // The integration key does not see the target application.
      own: s(200, 200, 200, 403, 400, 403),
    },
    {
      name: 'import devices',
      request: (t) => [
        'POST',
        '/api/v1/devices/import',
        {
          devices: [newDeviceBody(t.applicationId, 'x')],
        },
      ],
      own: s(201, 201, 201, 403, 201, 403),
      // Every line names an application the caller does not see: rejected, nothing written.
      other: s(422, 422, 422, 403, 422, 403),
    },
    {
      name: 'export the devices of a tenant',
      request: (t) => ['GET', `/api/v1/devices/export?format=json&tenantId=${t.tenantId}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    // Device profiles.
    {
      name: 'create a device profile',
      request: (t) => ['POST', '/api/v1/device-profiles', { name: 'x', tenantId: t.tenantId }],
      own: s(201, 201, 403, 403, 404, 403),
    },
    {
      name: 'list the device profiles of a tenant',
      request: (t) => ['GET', `/api/v1/device-profiles?tenantId=${t.tenantId}`],
      own: s(200, 200, 200, 200, 403, 200),
      other: s(404, 404, 404, 404, 403, 404),
    },
    {
      name: 'get a device profile',
      request: (t) => ['GET', `/api/v1/device-profiles/${t.deviceProfileId}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: "decode with a device profile's codec (the test bench)",
      request: (t) => [
        'POST',
        `/api/v1/device-profiles/${t.deviceProfileId}/codec/decode`,
        { fPort: 1, hex: '00' },
      ],
      // The profile has no codec: 409 for whoever may read it.
      own: s(409, 409, 409, 409, 404, 409),
    },
    {
      name: "encode with a device profile's codec (the test bench)",
      request: (t) => [
        'POST',
        `/api/v1/device-profiles/${t.deviceProfileId}/codec/encode`,
        { data: {} },
      ],
      own: s(409, 409, 409, 409, 404, 409),
    },
    {
      name: 'get a catalogue device profile',
      request: () => ['GET', `/api/v1/device-profiles/${tenancy.catalogueProfileId}`],
      own: s(200, 200, 200, 200, 404, 200),
      other: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: 'change a device profile',
      request: (t) => ['PATCH', `/api/v1/device-profiles/${t.deviceProfileId}`, { rx2Dr: 3 }],
      own: s(200, 200, 403, 403, 404, 403),
    },
    {
      name: 'change a catalogue device profile',
      request: () => [
        'PATCH',
        `/api/v1/device-profiles/${tenancy.catalogueProfileId}`,
        { rx2Dr: 3 },
      ],
      own: s(403, 403, 403, 403, 404, 403),
      other: s(403, 403, 403, 403, 404, 403),
    },
    {
      name: 'delete a device profile',
      prepare: freshObject('/api/v1/device-profiles'),
      request: (_t, made) => ['DELETE', `/api/v1/device-profiles/${made['id']}`],
      own: s(204, 204, 403, 403, 404, 403),
    },
    // The operator's objects (no tenant): nobody of a tenant sees them.
    {
      name: "get the operator's application, device and gateway",
      request: () => ['GET', `/api/v1/applications/${tenancy.operator.applicationId}`],
      own: all(404),
      other: all(404),
    },
    {
      name: "get the operator's device",
      request: () => ['GET', `/api/v1/devices/${tenancy.operator.devEui}`],
      own: all(404),
      other: all(404),
    },
    {
      name: "get the operator's gateway",
      request: () => ['GET', `/api/v1/gateways/${tenancy.operator.gatewayId}`],
      own: all(404),
      other: all(404),
    },
    // Tenants.
    {
      name: 'create a tenant',
      request: () => ['POST', '/api/v1/tenants', { name: 'mine' }],
      own: all(403),
      other: all(403),
    },
    {
      name: 'list the tenants',
      request: () => ['GET', '/api/v1/tenants'],
      // An integration reads no tenant: refused, not an empty list that would mean "none".
      own: s(200, 200, 200, 200, 403, 200),
      other: s(200, 200, 200, 200, 403, 200),
    },
    {
      name: 'get a tenant',
      request: (t) => ['GET', `/api/v1/tenants/${t.tenantId}`],
      own: s(200, 200, 200, 200, 404, 200),
    },
    {
      name: "change a tenant's settings",
      request: (t) => [
        'PATCH',
        `/api/v1/tenants/${t.tenantId}`,
        { settings: { timeZone: 'Europe/Paris' } },
      ],
      own: s(200, 403, 403, 403, 404, 403),
    },
    {
      name: 'delete a tenant',
      request: (t) => ['DELETE', `/api/v1/tenants/${t.tenantId}`],
      own: s(403, 403, 403, 403, 404, 403),
    },
    // Users and memberships.
    {
      name: 'list the users of a tenant',
      request: (t) => ['GET', `/api/v1/users?tenantId=${t.tenantId}`],
      // Who reads users nowhere is refused whatever the filter; B is as if it did not exist.
      own: s(200, 200, 403, 403, 403, 200),
      other: s(404, 404, 403, 403, 403, 404),
    },
    {
      name: 'list the users',
      request: () => ['GET', '/api/v1/users'],
      own: s(200, 200, 403, 403, 403, 200),
      other: s(200, 200, 403, 403, 403, 200),
    },
    {
      name: 'create a user',
      request: (t) => [
        'POST',
        '/api/v1/users',
        {
          email: `${eui()}@x.fr`,
          password: 'correct horse battery staple',
          tenantId: t.tenantId,
          role: 'viewer',
        },
      ],
      own: s(201, 201, 403, 403, 404, 403),
    },
    {
      name: 'get a user',
      request: (t) => ['GET', `/api/v1/users/${t.userId}`],
      // Users are seen by those who manage them only.
      own: s(200, 200, 404, 404, 404, 200),
    },
    {
      name: 'disable a user',
      prepare: freshUser,
      request: (_t, made) => ['PATCH', `/api/v1/users/${made['userId']}`, { disabled: true }],
      own: s(200, 200, 404, 404, 404, 403),
    },
    {
      name: 'delete a user',
      prepare: freshUser,
      request: (_t, made) => ['DELETE', `/api/v1/users/${made['userId']}`],
      own: s(204, 204, 404, 404, 404, 403),
    },
    {
      name: 'give a membership',
      prepare: freshUser,
      request: (t, made) => [
        'PUT',
        `/api/v1/users/${made['userId']}/memberships/${t.tenantId}`,
        { role: 'operator' },
      ],
      own: s(200, 200, 403, 403, 404, 403),
    },
    {
      name: "give an integration membership in the tenant's application",
      prepare: freshUser,
      request: (t, made) => [
        'PUT',
        `/api/v1/users/${made['userId']}/memberships/${t.tenantId}`,
        { role: 'integration', applicationId: t.applicationId },
      ],
      own: s(200, 200, 403, 403, 404, 403),
    },
    {
      name: 'remove a membership',
      prepare: freshUser,
      request: (t, made) => ['DELETE', `/api/v1/users/${made['userId']}/memberships/${t.tenantId}`],
      own: s(204, 204, 403, 403, 404, 403),
    },
    // API keys.
    {
      name: 'create a viewer key',
      request: (t) => [
        'POST',
        '/api/v1/api-keys',
        { name: 'x', tenantId: t.tenantId, role: 'viewer' },
      ],
      own: s(201, 201, 403, 403, 404, 403),
    },
    {
      name: "create an integration key of the tenant's application",
      request: (t) => [
        'POST',
        '/api/v1/api-keys',
        { name: 'x', applicationId: t.applicationId, role: 'integration' },
      ],
      own: s(201, 201, 403, 403, 404, 403),
    },
    {
      name: 'list the keys of a tenant',
      request: (t) => ['GET', `/api/v1/api-keys?tenantId=${t.tenantId}`],
      own: s(200, 200, 403, 403, 403, 200),
      other: s(404, 404, 403, 403, 403, 404),
    },
    {
      name: 'list the keys',
      request: () => ['GET', '/api/v1/api-keys'],
      own: s(200, 200, 403, 403, 403, 200),
      other: s(200, 200, 403, 403, 403, 200),
    },
    {
      name: 'get a key',
      request: (t) => ['GET', `/api/v1/api-keys/${t.apiKeyId}`],
      own: s(200, 200, 403, 403, 404, 200),
    },
    {
      name: 'revoke a key',
      prepare: freshObject('/api/v1/api-keys', { role: 'viewer' }),
      request: (_t, made) => ['DELETE', `/api/v1/api-keys/${made['id']}`],
      own: s(204, 204, 403, 403, 404, 403),
    },
    // Audit, auth, metrics.
    {
      name: 'read the audit log of a tenant',
      request: (t) => ['GET', `/api/v1/audit?tenantId=${t.tenantId}`],
      // Who reads the audit log nowhere is refused whatever the filter; B is as if it did not exist.
      own: s(200, 200, 403, 403, 403, 200),
      other: s(404, 404, 403, 403, 403, 404),
    },
    {
      name: 'say who I am',
      request: () => ['GET', '/api/v1/auth/me'],
      own: all(200),
      other: all(200),
    },
    {
      name: 'log out (a key has no session)',
      request: () => ['POST', '/api/v1/auth/logout'],
      own: all(204),
      other: all(204),
    },
    {
      name: 'enrol a TOTP second factor (a session only)',
      request: () => ['POST', '/api/v1/auth/totp/setup'],
      own: all(400),
      other: all(400),
    },
    {
      name: 'enable a TOTP second factor (a session only)',
      request: () => ['POST', '/api/v1/auth/totp/enable', { code: '123456' }],
      own: all(400),
      other: all(400),
    },
    {
      name: 'disable a TOTP second factor (a session only)',
      request: () => ['POST', '/api/v1/auth/totp/disable', { code: '123456' }],
      own: all(400),
      other: all(400),
    },
    {
      name: 'read the metrics',
      request: () => ['GET', '/api/v1/metrics'],
      own: all(403),
      other: all(403),
    },
  ];

  /** The routes (METHOD /path with {params}) the table covers. */
  const covered = new Set<string>();

  for (const testCase of cases) {
    it(`${testCase.name}: every role, own and other tenant`, async () => {
      const failures: string[] = [];
      for (const role of MATRIX_ROLES) {
        for (const side of ['A', 'B'] as const) {
          const objects = side === 'A' ? tenancy.A : tenancy.B;
          const made = testCase.prepare === undefined ? {} : await testCase.prepare(objects, side);
          const [method, url, body] = testCase.request(objects, made);
          covered.add(routeOf(method, url));
          const answer = await tenancy.api.request(method, url, {
            token: tenancy.tokens[role],
            body,
          });
          const other = testCase.other ?? 404;
          const want =
            side === 'A' ? testCase.own[role] : typeof other === 'number' ? other : other[role];
          if (answer.status !== want) {
            failures.push(
              `${role} on ${side}: ${answer.status} ${JSON.stringify(answer.json).slice(0, 300)}, expected ${want}`,
            );
          }
          if (answer.status >= 400) {
            assert.equal(typeof answer.json.error, 'string', `${role} ${method} ${url}`);
            assert.equal(typeof answer.json.message, 'string', `${role} ${method} ${url}`);
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  }

  /** Everything of tenant B (and the operator's own objects) that A must never see. */
  function secretsOfB(): string[] {
    const b = tenancy.B;
    return [
      b.tenantId,
      b.applicationId,
      b.otherApplicationId,
      b.devEui,
      b.deviceName,
      b.gatewayId,
      b.deviceProfileId,
      b.userId,
      b.apiKeyId,
      'Feurs roof',
      tenancy.operator.applicationId,
      tenancy.operator.devEui,
      tenancy.operator.gatewayId,
    ];
  }

  it('shows nothing of tenant B through any list, filter, export or event of A', async () => {
    const b = tenancy.B;
    const reads = [
      '/api/v1/applications?limit=1000',
      '/api/v1/gateways?limit=1000',
      '/api/v1/gateways?shared=true',
      `/api/v1/gateways?tag=owner:Feurs`,
      '/api/v1/gateways?search=Feurs',
      '/api/v1/devices?limit=1000',
      `/api/v1/devices?applicationId=${b.applicationId}`,
      `/api/v1/devices?deviceProfileId=${b.deviceProfileId}`,
      '/api/v1/devices?search=Feurs',
      `/api/v1/devices?search=${b.devEui}`,
      '/api/v1/devices?tag=site:Feurs',
      '/api/v1/devices?sort=-name&limit=1000',
      '/api/v1/devices/export?format=json',
      '/api/v1/devices/export?format=csv',
      `/api/v1/devices/export?applicationId=${b.applicationId}`,
      '/api/v1/device-profiles?limit=1000',
      '/api/v1/device-profiles?search=Feurs',
      '/api/v1/tenants',
      '/api/v1/users?limit=1000',
      '/api/v1/api-keys?limit=1000',
      `/api/v1/api-keys?applicationId=${b.applicationId}`,
      '/api/v1/audit?limit=1000',
      `/api/v1/devices/${tenancy.A.devEui}/events`,
      // What B shares with A is A's to read; nothing else of B shows through it.
      '/api/v1/shared-measurements?limit=1000',
      '/api/v1/shared-measurements?sort=-devEui',
    ];
    const failures: string[] = [];
    for (const role of MATRIX_ROLES) {
      for (const url of reads) {
        // Raw: an export may be CSV.
        const answer = await tenancy.api.app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${tenancy.tokens[role]}` },
        });
        if (answer.statusCode !== 200 && answer.statusCode !== 403 && answer.statusCode !== 404) {
          failures.push(`${role} ${url}: ${answer.statusCode}`);
        }
        const text = answer.body;
        for (const secret of secretsOfB()) {
          if (text.includes(secret)) failures.push(`${role} ${url} shows ${secret}`);
        }
      }
      // A filter on B's tenant is refused as for a tenant that does not exist.
      for (const list of ['applications', 'gateways', 'devices', 'device-profiles', 'api-keys']) {
        const answer = await tenancy.api.request('GET', `/api/v1/${list}?tenantId=${b.tenantId}`, {
          token: tenancy.tokens[role],
        });
        // Who may read that kind of object nowhere gets 403 whatever the filter.
        const readsNowhere =
          (role === 'integration' && !['applications', 'devices'].includes(list)) ||
          (list === 'api-keys' && (role === 'operator' || role === 'viewer'));
        const refused = readsNowhere ? [403] : [404];
        if (!refused.includes(answer.status)) {
          failures.push(`${role} ${list}?tenantId=B: ${answer.status}`);
        }
      }
    }
    assert.deepEqual(failures, []);
  });

  it('shows a shared gateway to the other tenant without its owner or tags', async () => {
    const answer = await tenancy.api.request('GET', '/api/v1/gateways?shared=true', {
      token: tenancy.tokens.viewer,
    });
    const shared = answer.json.gateways.find(
      (g: { gatewayId: string }) => g.gatewayId === tenancy.B.sharedGatewayId,
    );
    assert.ok(shared, 'B’s shared gateway is listed');
    assert.equal(shared.tenantId, null);
    assert.deepEqual(shared.tags, {});
    const own = answer.json.gateways.find(
      (g: { gatewayId: string }) => g.gatewayId === tenancy.A.sharedGatewayId,
    );
    assert.equal(own.tenantId, tenancy.A.tenantId);
    assert.notDeepEqual(own.tags, {}, 'its own tags');
  });

  it('lets an integration key see only its application: devices, events, exports', async () => {
    const token = tenancy.tokens.integration;
    const devices = await tenancy.api.request('GET', '/api/v1/devices?limit=1000', { token });
    assert.ok(devices.json.devices.length > 0, 'its devices');
    for (const device of devices.json.devices) {
      assert.equal(device.applicationId, tenancy.A.applicationId);
    }
    const applications = await tenancy.api.request('GET', '/api/v1/applications', { token });
    assert.deepEqual(
      applications.json.applications.map((a: { id: string }) => a.id),
      [tenancy.A.applicationId],
    );
    const moved = await tenancy.admin(
      'POST',
      '/api/v1/devices',
      newDeviceBody(tenancy.A.otherApplicationId, 'in the other application'),
    );
    for (const url of [
      `/api/v1/devices/${moved.devEui}`,
      `/api/v1/devices/${moved.devEui}/events`,
      `/api/v1/devices/${moved.devEui}/queue`,
    ]) {
      assert.equal((await tenancy.api.request('GET', url, { token })).status, 404, url);
    }
    const exported = await tenancy.api.request('GET', '/api/v1/devices/export?format=json', {
      token,
    });
    assert.ok(!JSON.stringify(exported.json).includes(moved.devEui), 'not in the export');
    // Lists of what it reads nowhere: refused (403), never an empty list.
    for (const list of ['gateways', 'device-profiles', 'audit', 'users', 'api-keys', 'tenants']) {
      const answer = await tenancy.api.request('GET', `/api/v1/${list}`, { token });
      assert.equal(answer.status, 403, list);
      assert.equal(answer.json.error, 'FORBIDDEN', list);
    }
  });

  it('audits every write of the tenant-scoped routes with actor, tenant and object', async () => {
    const latest = async () =>
      (await tenancy.api.request('GET', '/api/v1/audit?limit=1')).json.entries[0];
    const devEui = eui();
    const created = await tenancy.api.request('POST', '/api/v1/devices', {
      token: tenancy.tokens.operator,
      body: newDeviceBody(tenancy.A.applicationId, 'audited', devEui),
    });
    assert.equal(created.status, 201);
    const entry = await latest();
    assert.equal(entry.action, 'device.create');
    assert.equal(entry.outcome, 'success');
    assert.equal(entry.objectId, devEui);
    assert.equal(entry.tenantId, tenancy.A.tenantId);
    assert.equal(entry.actor.type, 'api-key');
    assert.equal(entry.actor.tenantId, tenancy.A.tenantId);
    assert.ok(!JSON.stringify(entry).includes(APP_KEY), 'never a key');
    const steps: [string, string, unknown, string][] = [
      ['PATCH', `/api/v1/devices/${devEui}`, { tags: { a: 'b' } }, 'device.update'],
      ['POST', `/api/v1/devices/${devEui}/queue`, { fPort: 3, data: 'AQ==' }, 'device.queue'],
      ['DELETE', `/api/v1/devices/${devEui}/queue`, undefined, 'device.queue-flush'],
      [
        'POST',
        `/api/v1/devices/${devEui}/move`,
        { applicationId: tenancy.A.otherApplicationId },
        'device.move',
      ],
      ['POST', `/api/v1/devices/${devEui}/force-rejoin`, {}, 'device.force-rejoin'],
      ['DELETE', `/api/v1/devices/${devEui}`, undefined, 'device.delete'],
      ['PATCH', `/api/v1/gateways/${tenancy.A.gatewayId}`, { name: 'g' }, 'gateway.update'],
    ];
    for (const [method, url, body, action] of steps) {
      const answer = await tenancy.api.request(method, url, {
        token: tenancy.tokens.operator,
        body,
      });
      assert.ok(answer.status < 300, `${method} ${url}: ${JSON.stringify(answer.json)}`);
      const written = await latest();
      assert.equal(written.action, action);
      assert.equal(written.outcome, 'success', action);
      assert.equal(written.tenantId, tenancy.A.tenantId, action);
      assert.equal(written.objectId, url.split('/')[4], action);
    }
    const denied = await tenancy.api.request('DELETE', `/api/v1/devices/${tenancy.A.devEui}`, {
      token: tenancy.tokens.viewer,
    });
    assert.equal(denied.status, 403);
    const refusal = await latest();
    assert.equal(refusal.outcome, 'denied');
    assert.equal(refusal.tenantId, tenancy.A.tenantId);
    const probe = await tenancy.api.request('DELETE', `/api/v1/devices/${tenancy.B.devEui}`, {
      token: tenancy.tokens.owner,
    });
    assert.equal(probe.status, 404);
    const probed = await latest();
    assert.equal(probed.outcome, 'denied');
    assert.equal(probed.tenantId, null, 'not in B’s log');
  });

  it('keeps the audit log of B free of what A tried on B', async () => {
    const adminOfB = await tenancy.admin('POST', '/api/v1/api-keys', {
      name: 'admin b',
      tenantId: tenancy.B.tenantId,
      role: 'admin',
    });
    const entries = (
      await tenancy.api.request('GET', '/api/v1/audit?limit=1000', { token: adminOfB.token })
    ).json.entries as { action: string; actor: { tenantId: string | null } }[];
    assert.ok(entries.length > 0, 'B has entries');
    for (const entry of entries) {
      // A's reads of what B shares with A are B's to see (measurement-shares.test.ts).
      if (entry.action === 'shared-measurements.read') continue;
      assert.notEqual(entry.actor.tenantId, tenancy.A.tenantId);
    }
  });

  it('covers every route, or the route is the operator’s (403 for every tenant role)', async () => {
    const document = (await tenancy.api.request('GET', '/api/v1/openapi.json', { token: null }))
      .json;
    const PUBLIC = new Set([
      'GET /api/v1/health',
      'GET /api/v1/openapi.json',
      'POST /api/v1/auth/login',
      // OIDC login (routes/oidc-routes.ts): public, tested in oidc.test.ts.
      'GET /api/v1/auth/oidc',
      'GET /api/v1/auth/oidc/start',
      'GET /api/v1/auth/oidc/callback',
      'POST /api/v1/auth/oidc/backchannel-logout',
      'GET /api/v1/auth/oidc/jwks.json',
    ]);
    const operatorOnly: string[] = [];
    const failures: string[] = [];
    for (const [path, operations] of Object.entries(document.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) {
        const route = `${method.toUpperCase()} ${path}`;
        if (PUBLIC.has(route) || covered.has(route)) continue;
        operatorOnly.push(route);
        const url = path.replace(/\{[^}]+\}/g, 'x');
        for (const role of MATRIX_ROLES) {
          const answer = await tenancy.api.request(method.toUpperCase(), url, {
            token: tenancy.tokens[role],
            body: {},
          });
          if (answer.status !== 403) failures.push(`${route} as ${role}: ${answer.status}`);
        }
      }
    }
    assert.deepEqual(failures, [], `routes neither in the table nor operator-only`);
  });
});

/** `GET /api/v1/devices/{devEui}` from a request. */
function routeOf(method: string, url: string): string {
  const path = url.split('?')[0] as string;
  const templates: [RegExp, string][] = [
    [/^\/api\/v1\/devices\/(import|export)$/, '/api/v1/devices/$1'],
    [/^\/api\/v1\/devices\/[^/]+\/queue\/[^/]+$/, '/api/v1/devices/{devEui}/queue/{id}'],
    [/^\/api\/v1\/devices\/[^/]+(\/.*)?$/, '/api/v1/devices/{devEui}$1'],
    [/^\/api\/v1\/gateways\/[^/]+$/, '/api/v1/gateways/{gatewayId}'],
    [/^\/api\/v1\/users\/[^/]+\/memberships\/[^/]+$/, '/api/v1/users/{id}/memberships/{tenantId}'],
    [/^\/api\/v1\/auth\/.*$/, '$&'],
    [
      /^\/api\/v1\/applications\/[^/]+\/webhooks\/[^/]+(\/.*)?$/,
      '/api/v1/applications/{id}/webhooks/{webhookId}$1',
    ],
    [/^\/api\/v1\/applications\/[^/]+\/webhooks$/, '/api/v1/applications/{id}/webhooks'],
    [
      /^\/api\/v1\/applications\/[^/]+\/measurement-shares\/[^/]+$/,
      '/api/v1/applications/{id}/measurement-shares/{shareId}',
    ],
    [
      /^\/api\/v1\/applications\/[^/]+\/measurement-shares$/,
      '/api/v1/applications/{id}/measurement-shares',
    ],
    [
      /^\/api\/v1\/shared-measurements\/[^/]+(\/measurements)?$/,
      '/api/v1/shared-measurements/{shareId}$1',
    ],
    [
      /^\/api\/v1\/device-profiles\/[^/]+\/codec\/(decode|encode)$/,
      '/api/v1/device-profiles/{id}/codec/$1',
    ],
    [
      /^\/api\/v1\/(applications|device-profiles|tenants|users|api-keys)\/[^/]+$/,
      '/api/v1/$1/{id}',
    ],
  ];
  for (const [pattern, template] of templates) {
    if (pattern.test(path)) return `${method} ${path.replace(pattern, template)}`;
  }
  return `${method} ${path}`;
}
