import type { FastifyInstance, FastifyRequest } from 'fastify';
import { API_KEY_ROLES, type ApiKeyRole, can, canGrant } from '../../platform/roles.js';
import { generateApiKeyToken } from '../../platform/tokens.js';
import { API_KEY_SORT, type ApiKey } from '../../storage/index.js';
import {
  auditActor,
  audited,
  authorize,
  forbidden,
  type PlatformContext,
  principalOf,
} from '../auth.js';
import { badRequest, notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema } from '../paging.js';
import { listScope, tenantIdsFilter } from '../scope.js';
import { idSchema, nameSchema } from './schemas.js';

/**
 * API keys: `/api-keys`. A key is scoped to a tenant (with a tenant role), to an application
 * (the integration role) or, for the operator, global (operator-admin). The token is in the
 * answer to the POST and nowhere else, ever: only its SHA-256 is stored. `DELETE` revokes: the
 * key stays listed with its `revokedAt`, and answers 401 from then on.
 *
 * Tenant owners and admins manage their tenant's keys, up to their own role, and the
 * integration keys of their tenant's applications (the key takes the application's tenant). The
 * keys of applications without a tenant are the operator's.
 */

interface NewApiKeyBody {
  name: string;
  tenantId?: string;
  applicationId?: string;
  role: ApiKeyRole;
  readOnly?: boolean;
  expiresAt?: string;
}

export function registerApiKeyRoutes(api: FastifyInstance, platform: PlatformContext): void {
  const { storage } = platform;

  /** The key if the principal may see it; else 404. Global keys are the operator's. */
  async function visibleKey(request: FastifyRequest, id: string): Promise<ApiKey> {
    const key = await storage.apiKeys.get(id);
    if (key === undefined) throw notFound(`API key ${id}`);
    const target = { tenantId: key.tenantId, applicationId: key.applicationId };
    if (key.tenantId === null && key.applicationId !== null) {
      // An application key without a tenant: the operator's until applications have tenants.
      if (!can(principalOf(request), 'api-keys:read', {})) throw notFound(`API key ${id}`);
      return key;
    }
    authorize(request, 'api-keys:read', target, `API key ${id}`);
    return key;
  }

  api.post<{ Body: NewApiKeyBody }>(
    '/api-keys',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name', 'role'],
          additionalProperties: false,
          properties: {
            name: nameSchema,
            tenantId: idSchema,
            applicationId: idSchema,
            role: { type: 'string', enum: API_KEY_ROLES },
            readOnly: { type: 'boolean' },
            expiresAt: { type: 'string', maxLength: 40 },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await audited(
        platform,
        request,
        {
          action: 'api-key.create',
          objectType: 'api-key',
          tenantId: body.tenantId ?? null,
          details: {
            name: body.name,
            role: body.role,
            applicationId: body.applicationId ?? null,
            readOnly: body.readOnly ?? body.role === 'viewer',
            expiresAt: body.expiresAt ?? null,
          },
        },
        async (draft) => {
          const principal = principalOf(request);
          let tenantId = body.tenantId ?? null;
          const applicationId = body.applicationId ?? null;
          const application =
            applicationId === null ? undefined : await storage.applications.get(applicationId);
          if (applicationId !== null && application?.tenantId != null) {
            // An integration key of a tenant's application: that tenant's managers give it.
            authorize(
              request,
              'api-keys:write',
              { tenantId: application.tenantId },
              `application ${applicationId}`,
            );
            if (tenantId !== null && tenantId !== application.tenantId) {
              throw badRequest(`application ${applicationId} is not in tenant ${tenantId}`);
            }
            tenantId = application.tenantId;
            draft.tenantId = tenantId;
          } else if (applicationId !== null || tenantId === null) {
            // Global keys, and the keys of the operator's applications (without a tenant).
            authorize(request, 'api-keys:write', {}, 'API keys');
          } else {
            authorize(request, 'api-keys:write', { tenantId }, `tenant ${tenantId}`);
          }
          if (!canGrant(principal, body.role, { tenantId })) {
            throw forbidden(`you may not give the ${body.role} role`);
          }
          if (tenantId !== null && (await storage.tenants.get(tenantId)) === undefined) {
            throw notFound(`tenant ${tenantId}`);
          }
          if (applicationId !== null && application === undefined) {
            throw notFound(`application ${applicationId}`);
          }
          let expiresAt: string | null = null;
          if (body.expiresAt !== undefined) {
            const time = Date.parse(body.expiresAt);
            if (!/^\d{4}-\d{2}-\d{2}T/.test(body.expiresAt) || Number.isNaN(time)) {
              throw badRequest(`body.expiresAt must be an ISO 8601 time, got "${body.expiresAt}"`);
            }
            if (time <= platform.now().getTime()) {
              throw badRequest('body.expiresAt must be in the future');
            }
            expiresAt = new Date(time).toISOString();
          }
          const generated = generateApiKeyToken();
          const actor = auditActor(principal);
          const key = await storage.apiKeys.create({
            id: generated.id,
            name: body.name,
            tenantId,
            applicationId,
            role: body.role,
            // A viewer only reads whatever the flag says.
            readOnly: body.readOnly === true || body.role === 'viewer',
            secretHash: generated.secretHash,
            createdBy: actor.id == null ? actor.type : `${actor.type}:${actor.id}`,
            expiresAt,
          });
          draft.objectId = key.id;
          return { ...key, token: generated.token };
        },
      );
      return reply.status(201).send(created);
    },
  );

  api.get<{
    Querystring: PageQuery & {
      tenantId?: string;
      includeRevoked?: boolean;
      applicationId?: string;
    };
  }>(
    '/api-keys',
    {
      schema: {
        querystring: pagedListSchema(Object.keys(API_KEY_SORT.fields), {
          tenantId: idSchema,
          includeRevoked: { type: 'boolean' },
          applicationId: idSchema,
        }),
      },
    },
    async (request) => {
      const { tenantId, includeRevoked, applicationId, ...paging } = request.query;
      // 403 for a principal that reads keys nowhere, whatever the filter (as every list).
      listScope(request, 'api-keys:read', { applications: false });
      const { items, nextCursor } = await listPage(
        paging,
        API_KEY_SORT.defaultField,
        'id',
        (options) => {
          const tenantIds = tenantIdsFilter(request, 'api-keys:read', tenantId);
          return storage.apiKeys.list({
            ...options,
            ...(tenantIds === undefined ? {} : { tenantIds }),
            ...(applicationId === undefined ? {} : { applicationId }),
            includeRevoked: includeRevoked ?? true,
          });
        },
      );
      return { apiKeys: items, nextCursor };
    },
  );

  api.get<{ Params: { id: string } }>('/api-keys/:id', async (request) =>
    visibleKey(request, request.params.id),
  );

  api.delete<{ Params: { id: string } }>('/api-keys/:id', async (request, reply) => {
    const { id } = request.params;
    await audited(
      platform,
      request,
      { action: 'api-key.revoke', objectType: 'api-key', objectId: id },
      async (draft) => {
        const key = await visibleKey(request, id);
        draft.tenantId = key.tenantId;
        draft.details = { name: key.name, alreadyRevoked: key.revokedAt !== null };
        const principal = principalOf(request);
        if (key.tenantId === null) {
          if (!can(principal, 'api-keys:write', {})) {
            throw forbidden('only the operator revokes this key');
          }
        } else {
          authorize(request, 'api-keys:write', { tenantId: key.tenantId }, `API key ${id}`);
        }
        // Idempotent: a key revoked before keeps its first revocation time.
        await storage.apiKeys.revoke(id, platform.now().toISOString());
      },
    );
    return reply.status(204).send();
  });
}
