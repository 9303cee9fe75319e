import type { FastifyInstance, FastifyRequest } from 'fastify';
import { highestTenantRole, type Principal, roleAllows } from '../../platform/roles.js';
import {
  type Application,
  MAX_SHARE_NOTE_LENGTH,
  MAX_SHARED_FIELD_LENGTH,
  MAX_SHARED_FIELDS,
  MEASUREMENT_SHARE_SORT,
  type MeasurementShare,
  type ReceivedMeasurementShare,
} from '../../storage/index.js';
import { auditActor, forbidden, noteAudit, principalOf } from '../auth.js';
import { badRequest, notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema } from '../paging.js';
import type { ApiContext } from '../server.js';
import { applicationFor, unknownReference } from './applications.js';
import {
  answerMeasurements,
  type MeasurementQuerystring,
  measurementQuerystringSchema,
} from './measurement-query.js';
import { EUI_PATTERN, idSchema } from './schemas.js';

/**
 * Measurement shares (docs/measurements.md, "Sharing measurements with a commune"): a
 * provider's application shares chosen field paths of one of its devices with another tenant,
 * read-only.
 *
 * - The provider: `/applications/{id}/measurement-shares[/{shareId}]`. Whoever reads the
 *   application reads its shares; its tenant's owners and admins create them. Global principals
 *   (the operator) list and delete (revoke) them but do not create them for a tenant's
 *   application: giving a provider's data to a third party is the provider's decision, and the
 *   operator never reads a provider's payloads. They do share the operator's own applications.
 * - The receiver: `/shared-measurements[/{shareId}[/measurements]]`, read-only, for every
 *   member (viewer and above) and tenant-scoped API key (read-only ones too) of the receiving
 *   tenant, and for nobody else: global principals included, unless they are members of that
 *   tenant. A share of another tenant, or an inert one (its device moved to another
 *   application), answers 404.
 */

interface ShareBody {
  devEui: string;
  tenantId: string;
  fields: string[];
  note?: string;
}

type ShareParams = { id: string; shareId: string };

const shareParams = {
  type: 'object',
  required: ['id', 'shareId'],
  properties: { id: idSchema, shareId: idSchema },
} as const;
const receivedParams = {
  type: 'object',
  required: ['shareId'],
  properties: { shareId: idSchema },
} as const;
const SORT_FIELDS = Object.keys(MEASUREMENT_SHARE_SORT.fields);

/** The share if it belongs to the application and the principal may do `action` on it. */
async function shareFor(
  context: ApiContext,
  request: FastifyRequest,
  params: ShareParams,
  action: 'applications:read' | 'applications:write',
): Promise<{ application: Application; share: MeasurementShare }> {
  const application = await applicationFor(context, request, params.id, action);
  const share = await context.storage.measurementShares.get(params.shareId);
  if (share === undefined || share.applicationId !== application.id) {
    throw notFound(`measurement share ${params.shareId}`);
  }
  noteAudit(request, { objectType: 'measurement-share', objectId: share.id });
  return { application, share };
}

/**
 * 403 unless the principal is an owner or admin of the application's tenant (its own role
 * there, not a global one); an application without tenant is the operator's, shared by the
 * operator (the caller checked `applications:write`, which only global principals have there).
 */
function assertSharer(request: FastifyRequest, application: Application): void {
  if (application.tenantId === null) return;
  const role = highestTenantRole(principalOf(request), application.tenantId);
  if (role !== 'owner' && role !== 'admin') {
    throw forbidden(
      "only the owners and admins of the application's tenant share its measurements",
    );
  }
}

/**
 * The tenants whose received shares the principal reads: those where it holds a tenant role
 * itself. Never every tenant for a global principal: the operator does not read providers' data.
 */
export function receivingTenants(principal: Principal): string[] {
  switch (principal.kind) {
    case 'admin-token':
      return [];
    case 'user': {
      const tenants = new Set<string>();
      for (const scope of principal.memberships) {
        if (scope.role === 'integration' || scope.tenantId === null) continue;
        if (roleAllows(scope.role, 'tenants:read')) tenants.add(scope.tenantId);
      }
      return [...tenants].sort();
    }
    case 'api-key':
      if (principal.role === 'operator-admin' || principal.role === 'integration') return [];
      if (principal.tenantId === null || !roleAllows(principal.role, 'tenants:read')) return [];
      return [principal.tenantId];
  }
}

/** A share the principal receives (active), or 404 as if it did not exist. */
async function receivedFor(
  context: ApiContext,
  request: FastifyRequest,
  shareId: string,
): Promise<ReceivedMeasurementShare> {
  const tenants = receivingTenants(principalOf(request));
  const share = await context.storage.measurementShares.getReceived(shareId);
  if (share === undefined || !tenants.includes(share.tenantId)) {
    throw notFound(`shared measurements ${shareId}`);
  }
  return share;
}

export function registerMeasurementShareRoutes(api: FastifyInstance, context: ApiContext): void {
  const { storage } = context;

  api.post<{ Params: { id: string }; Body: ShareBody }>(
    '/applications/:id/measurement-shares',
    {
      schema: {
        summary: "Share field paths of one of the application's devices with another tenant",
        tags: ['measurement-shares'],
        body: {
          type: 'object',
          required: ['devEui', 'tenantId', 'fields'],
          additionalProperties: false,
          properties: {
            devEui: { type: 'string', pattern: EUI_PATTERN },
            tenantId: { ...idSchema, description: 'The receiving tenant (a commune)' },
            fields: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_SHARED_FIELDS,
              items: { type: 'string', minLength: 1, maxLength: MAX_SHARED_FIELD_LENGTH },
              description: 'Exact field paths as the measurements store them (`volume`)',
            },
            note: {
              type: 'string',
              minLength: 1,
              maxLength: MAX_SHARE_NOTE_LENGTH,
              description: "For the provider's own records; the receiving tenant does not see it",
            },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      noteAudit(request, {
        action: 'measurement-share.create',
        objectType: 'measurement-share',
        details: {
          applicationId: request.params.id,
          devEui: body.devEui.toLowerCase(),
          receivingTenantId: body.tenantId,
          fields: body.fields,
        },
      });
      const application = await applicationFor(
        context,
        request,
        request.params.id,
        'applications:write',
      );
      assertSharer(request, application);
      if (context.roles.operatorBlind === true) {
        throw badRequest(
          "this Galet runs the network role alone and holds no measurements: share on the provider's Galet",
        );
      }
      const device = await storage.devices.get(body.devEui.toLowerCase());
      if (device === undefined || device.applicationId !== application.id) {
        throw notFound(`device ${body.devEui} in application ${application.id}`);
      }
      if (body.tenantId === application.tenantId) {
        throw badRequest(
          `tenant ${body.tenantId} owns this application and reads its devices already: share with another tenant`,
        );
      }
      if ((await storage.tenants.get(body.tenantId)) === undefined) {
        throw unknownReference(`tenant ${body.tenantId} does not exist`);
      }
      const actor = auditActor(principalOf(request));
      const share = await storage.measurementShares.create({
        applicationId: application.id,
        devEui: device.devEui,
        tenantId: body.tenantId,
        fields: body.fields,
        ...(body.note === undefined ? {} : { note: body.note }),
        createdBy: actor.id == null ? actor.type : `${actor.type}:${actor.id}`,
      });
      noteAudit(request, { objectId: share.id });
      return reply.status(201).send(share);
    },
  );

  api.get<{
    Params: { id: string };
    Querystring: PageQuery & { devEui?: string; tenantId?: string };
  }>(
    '/applications/:id/measurement-shares',
    {
      schema: {
        summary: "List an application's measurement shares",
        tags: ['measurement-shares'],
        querystring: pagedListSchema(SORT_FIELDS, {
          devEui: { type: 'string', pattern: EUI_PATTERN },
          tenantId: { ...idSchema, description: 'Only the shares with this receiving tenant' },
        }),
      },
    },
    async (request) => {
      const application = await applicationFor(
        context,
        request,
        request.params.id,
        'applications:read',
      );
      const { devEui, tenantId, ...paging } = request.query;
      const { items, nextCursor } = await listPage(
        paging,
        MEASUREMENT_SHARE_SORT.defaultField,
        'id',
        (options) =>
          storage.measurementShares.listForApplication(application.id, {
            ...options,
            ...(devEui === undefined ? {} : { devEui }),
            ...(tenantId === undefined ? {} : { tenantId }),
          }),
      );
      return { measurementShares: items, nextCursor };
    },
  );

  api.get<{ Params: ShareParams }>(
    '/applications/:id/measurement-shares/:shareId',
    {
      schema: {
        summary: 'Get a measurement share',
        tags: ['measurement-shares'],
        params: shareParams,
      },
    },
    async (request) =>
      (await shareFor(context, request, request.params, 'applications:read')).share,
  );

  api.delete<{ Params: ShareParams }>(
    '/applications/:id/measurement-shares/:shareId',
    {
      schema: {
        summary: 'Delete a measurement share: the receiving tenant loses access at once',
        tags: ['measurement-shares'],
        params: shareParams,
      },
    },
    async (request, reply) => {
      noteAudit(request, {
        action: 'measurement-share.delete',
        objectType: 'measurement-share',
        objectId: request.params.shareId,
      });
      const { application, share } = await shareFor(
        context,
        request,
        request.params,
        'applications:write',
      );
      noteAudit(request, {
        details: {
          applicationId: application.id,
          devEui: share.devEui,
          receivingTenantId: share.tenantId,
        },
      });
      if (!(await storage.measurementShares.delete(application.id, share.id))) {
        throw notFound(`measurement share ${share.id}`);
      }
      return reply.status(204).send();
    },
  );

  api.get<{ Querystring: PageQuery & { tenantId?: string; devEui?: string } }>(
    '/shared-measurements',
    {
      schema: {
        summary: 'List the measurement shares your tenants receive',
        tags: ['shared-measurements'],
        querystring: pagedListSchema(SORT_FIELDS, {
          tenantId: { ...idSchema, description: 'Only what this one of your tenants receives' },
          devEui: { type: 'string', pattern: EUI_PATTERN },
        }),
      },
    },
    async (request) => {
      const tenants = receivingTenants(principalOf(request));
      if (tenants.length === 0) {
        throw forbidden(
          'shared measurements are read by the members of the tenant they are shared with: this credential has no tenant role',
        );
      }
      const { tenantId, devEui, ...paging } = request.query;
      if (tenantId !== undefined && !tenants.includes(tenantId)) {
        throw notFound(`tenant ${tenantId}`);
      }
      const { items, nextCursor } = await listPage(
        paging,
        MEASUREMENT_SHARE_SORT.defaultField,
        'id',
        (options) =>
          storage.measurementShares.listReceived({
            ...options,
            tenantIds: tenantId === undefined ? tenants : [tenantId],
            ...(devEui === undefined ? {} : { devEui }),
          }),
      );
      return { sharedMeasurements: items, nextCursor };
    },
  );

  api.get<{ Params: { shareId: string } }>(
    '/shared-measurements/:shareId',
    {
      schema: {
        summary: 'Get a measurement share your tenant receives',
        tags: ['shared-measurements'],
        params: receivedParams,
      },
    },
    async (request) => receivedFor(context, request, request.params.shareId),
  );

  api.get<{ Params: { shareId: string }; Querystring: MeasurementQuerystring }>(
    '/shared-measurements/:shareId/measurements',
    {
      schema: {
        summary:
          'The shared measurements of a share your tenant receives: raw or aggregated; JSON or CSV',
        tags: ['shared-measurements'],
        params: receivedParams,
        querystring: measurementQuerystringSchema,
      },
    },
    async (request, reply) => {
      const share = await receivedFor(context, request, request.params.shareId);
      const field = request.query.field;
      if (field !== undefined && !share.fields.includes(field)) {
        throw notFound(`field ${field} in shared measurements ${share.id}`);
      }
      return answerMeasurements(storage, request, reply, share.devEui, {
        fields: share.fields,
        extra: { shareId: share.id },
      });
    },
  );
}
