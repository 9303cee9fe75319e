import type { FastifyInstance, FastifyRequest } from 'fastify';
import { can } from '../../platform/roles.js';
import {
  APPLICATION_SORT,
  type Application,
  type ApplicationRetention,
  MAX_DROP_FIELD_LENGTH,
  MAX_DROP_FIELDS,
  MAX_RETENTION_DAYS,
} from '../../storage/index.js';
import { forbidden, noteAudit, principalOf } from '../auth.js';
import { ApiError, notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema, searchSchema } from '../paging.js';
import { authorizedTenantOfNew, authorizeObject, scopedListFilters } from '../scope.js';
import type { ApiContext } from '../server.js';
import { idSchema, nameSchema } from './schemas.js';

/**
 * Applications: `/applications`. An application belongs to a tenant (`tenantId`), or to no
 * tenant (the operator's, seen only by global principals). Its devices follow it: moving an
 * application to another tenant (operator only) moves them too.
 */

/** What an application decides about its data (both in create and update). */
interface ApplicationDataBody {
  retention?: Partial<ApplicationRetention>;
  dropFields?: string[];
}

const retentionDaysSchema = {
  type: ['integer', 'null'],
  minimum: 1,
  maximum: MAX_RETENTION_DAYS,
  description: 'Days kept; null: forever',
} as const;

/**
 * Retention per kind of data (raw events, measurements), in days; null or absent: kept
 * forever. `dropFields`: field paths (`location`, `sensors.*.serial`) removed from decoded
 * objects before anything is stored.
 */
const applicationDataSchemas = {
  retention: {
    type: 'object',
    additionalProperties: false,
    properties: { eventsDays: retentionDaysSchema, measurementsDays: retentionDaysSchema },
  },
  dropFields: {
    type: 'array',
    maxItems: MAX_DROP_FIELDS,
    items: { type: 'string', minLength: 1, maxLength: MAX_DROP_FIELD_LENGTH },
  },
} as const;

interface ApplicationListQuery extends PageQuery {
  tenantId?: string;
  search?: string;
}

/** The application if the principal may do `action` on it; else 404 or 403. */
export async function applicationFor(
  { storage }: Pick<ApiContext, 'storage'>,
  request: FastifyRequest,
  id: string,
  action: 'applications:read' | 'applications:write',
): Promise<Application> {
  const application = await storage.applications.get(id);
  if (application === undefined) throw notFound(`application ${id}`);
  authorizeObject(
    request,
    action,
    { tenantId: application.tenantId, applicationId: application.id },
    `application ${id}`,
  );
  return application;
}

/** 400 UNKNOWN_REFERENCE, as the storage layer answers for a reference that does not exist. */
export function unknownReference(message: string): ApiError {
  return new ApiError(400, 'UNKNOWN_REFERENCE', message);
}

export function registerApplicationRoutes(api: FastifyInstance, context: ApiContext): void {
  const { storage } = context;

  api.post<{ Body: { name: string; tenantId?: string } & ApplicationDataBody }>(
    '/applications',
    {
      schema: {
        summary: 'Create an application',
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: nameSchema, tenantId: idSchema, ...applicationDataSchemas },
        },
      },
    },
    async (request, reply) => {
      const tenantId = authorizedTenantOfNew(
        request,
        'applications:write',
        request.body.tenantId,
        'applications',
      );
      noteAudit(request, { details: { name: request.body.name } });
      const { retention, dropFields } = request.body;
      const application = await storage.applications.create({
        name: request.body.name,
        tenantId,
        ...(retention === undefined ? {} : { retention }),
        ...(dropFields === undefined ? {} : { dropFields }),
      });
      return reply.status(201).send(application);
    },
  );

  api.get<{ Querystring: ApplicationListQuery }>(
    '/applications',
    {
      schema: {
        summary: 'List applications',
        querystring: pagedListSchema(Object.keys(APPLICATION_SORT.fields), {
          tenantId: idSchema,
          search: searchSchema,
        }),
      },
    },
    async (request) => {
      const { tenantId, search, ...paging } = request.query;
      const filters = scopedListFilters(request, 'applications:read', tenantId);
      const { items, nextCursor } = await listPage(
        paging,
        APPLICATION_SORT.defaultField,
        'id',
        (options) =>
          storage.applications.list({
            ...options,
            ...filters,
            ...(search === undefined ? {} : { search }),
          }),
      );
      return { applications: items, nextCursor };
    },
  );

  api.get<{ Params: { id: string } }>(
    '/applications/:id',
    { schema: { summary: 'Get an application' } },
    async (request) => applicationFor(context, request, request.params.id, 'applications:read'),
  );

  api.patch<{
    Params: { id: string };
    Body: { name?: string; tenantId?: string | null } & ApplicationDataBody;
  }>(
    '/applications/:id',
    {
      schema: {
        summary:
          'Rename an application, set its retention and dropped fields, or move it (with its devices) to another tenant',
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: {
            name: nameSchema,
            tenantId: { ...idSchema, type: ['string', 'null'] },
            ...applicationDataSchemas,
          },
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const before = await applicationFor(context, request, id, 'applications:write');
      noteAudit(request, { details: { fields: Object.keys(request.body).sort() } });
      if (request.body.tenantId !== undefined && !can(principalOf(request), 'tenants:write', {})) {
        throw forbidden('only the operator moves an application to another tenant');
      }
      const updated = await storage.applications.update(id, request.body);
      if (updated === undefined) throw notFound(`application ${id}`);
      if (before.tenantId !== updated.tenantId) {
        // The network caches devices with their application's tenant: read them again.
        for (const device of await storage.devices.listAll({ applicationId: id })) {
          context.network.deviceChanged?.(device.devEui);
        }
      }
      return updated;
    },
  );

  api.delete<{ Params: { id: string } }>(
    '/applications/:id',
    { schema: { summary: 'Delete an application (without devices)' } },
    async (request, reply) => {
      const { id } = request.params;
      await applicationFor(context, request, id, 'applications:write');
      if (!(await storage.applications.delete(id))) throw notFound(`application ${id}`);
      return reply.status(204).send();
    },
  );
}
