import type { FastifyInstance } from 'fastify';
import { isGlobal, tenantsWhere } from '../../platform/roles.js';
import {
  TENANT_KINDS,
  TENANT_SORT,
  type TenantKind,
  type TenantSettingsInput,
} from '../../storage/index.js';
import { audited, authorize, forbidden, type PlatformContext, principalOf } from '../auth.js';
import { notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema, searchSchema } from '../paging.js';
import { listScope } from '../scope.js';
import { nameSchema } from './schemas.js';

/**
 * Tenants: `/tenants`. The operator (a global principal) creates and deletes them and sets their
 * kind and quotas; a tenant's owner may rename it and change its settings; its members read it.
 * Another tenant answers 404.
 */

const nullableCount = { type: ['integer', 'null'], minimum: 0, maximum: 100_000_000 } as const;
const retentionDays = { type: ['integer', 'null'], minimum: 1, maximum: 36_500 } as const;

export const tenantQuotasSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { maxDevices: nullableCount, maxGateways: nullableCount },
} as const;

export const tenantSettingsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    timeZone: { type: 'string', minLength: 1, maxLength: 64 },
    location: {
      type: ['object', 'null'],
      required: ['latitude', 'longitude'],
      additionalProperties: false,
      properties: {
        latitude: { type: 'number', minimum: -90, maximum: 90 },
        longitude: { type: 'number', minimum: -180, maximum: 180 },
      },
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      properties: { eventsDays: retentionDays, auditDays: retentionDays },
    },
  },
} as const;

const tenantProperties = {
  name: nameSchema,
  kind: { type: 'string', enum: TENANT_KINDS },
  quotas: tenantQuotasSchema,
  settings: tenantSettingsSchema,
} as const;

interface TenantBody {
  name?: string;
  kind?: TenantKind;
  quotas?: { maxDevices?: number | null; maxGateways?: number | null };
  settings?: TenantSettingsInput;
}

export function registerTenantRoutes(api: FastifyInstance, platform: PlatformContext): void {
  const { storage } = platform;

  api.post<{ Body: TenantBody & { name: string } }>(
    '/tenants',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: tenantProperties,
        },
      },
    },
    async (request, reply) => {
      const tenant = await audited(
        platform,
        request,
        {
          action: 'tenant.create',
          objectType: 'tenant',
          details: { name: request.body.name, kind: request.body.kind ?? 'commune' },
        },
        async (draft) => {
          authorize(request, 'tenants:write', {}, 'tenants');
          const created = await storage.tenants.create(request.body);
          draft.objectId = created.id;
          draft.tenantId = created.id;
          return created;
        },
      );
      return reply.status(201).send(tenant);
    },
  );

  api.get<{ Querystring: PageQuery & { kind?: TenantKind; search?: string } }>(
    '/tenants',
    {
      schema: {
        querystring: pagedListSchema(Object.keys(TENANT_SORT.fields), {
          kind: { type: 'string', enum: TENANT_KINDS },
          search: searchSchema,
        }),
      },
    },
    async (request) => {
      const { kind, search, ...paging } = request.query;
      // A principal that reads tenants nowhere (an integration) is refused, as every list is.
      listScope(request, 'tenants:read', { applications: false });
      const visible = tenantsWhere(principalOf(request), 'tenants:read');
      const { items, nextCursor } = await listPage(
        paging,
        TENANT_SORT.defaultField,
        'id',
        (options) =>
          storage.tenants.list({
            ...options,
            ...(visible === 'all' ? {} : { ids: visible }),
            ...(kind === undefined ? {} : { kind }),
            ...(search === undefined ? {} : { search }),
          }),
      );
      return { tenants: items, nextCursor };
    },
  );

  api.get<{ Params: { id: string } }>('/tenants/:id', async (request) => {
    const { id } = request.params;
    authorize(request, 'tenants:read', { tenantId: id }, `tenant ${id}`);
    const tenant = await storage.tenants.get(id);
    if (tenant === undefined) throw notFound(`tenant ${id}`);
    return tenant;
  });

  api.patch<{ Params: { id: string }; Body: TenantBody }>(
    '/tenants/:id',
    {
      schema: {
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: tenantProperties,
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      return audited(
        platform,
        request,
        {
          action: 'tenant.update',
          objectType: 'tenant',
          objectId: id,
          tenantId: id,
          details: { fields: Object.keys(request.body).sort() },
        },
        async () => {
          authorize(request, 'tenants:write', { tenantId: id }, `tenant ${id}`);
          const principal = principalOf(request);
          if (
            (request.body.kind !== undefined || request.body.quotas !== undefined) &&
            !isGlobal(principal)
          ) {
            throw forbidden("only the operator sets a tenant's kind and quotas");
          }
          const tenant = await storage.tenants.update(id, request.body);
          if (tenant === undefined) throw notFound(`tenant ${id}`);
          return tenant;
        },
      );
    },
  );

  api.delete<{ Params: { id: string } }>('/tenants/:id', async (request, reply) => {
    const { id } = request.params;
    await audited(
      platform,
      request,
      { action: 'tenant.delete', objectType: 'tenant', objectId: id, tenantId: id },
      async () => {
        authorize(request, 'tenants:write', { tenantId: id }, `tenant ${id}`);
        if (!isGlobal(principalOf(request))) throw forbidden('only the operator deletes a tenant');
        if (!(await storage.tenants.delete(id))) throw notFound(`tenant ${id}`);
      },
    );
    return reply.status(204).send();
  });
}
