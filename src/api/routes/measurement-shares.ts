import type { FastifyInstance, FastifyRequest } from 'fastify';
import { highestTenantRole, type Principal, roleAllows } from '../../platform/roles.js';
import {
  type Application,
  MAX_SHARE_NOTE_LENGTH,
  MAX_SHARED_FIELD_LENGTH,
  MAX_SHARED_FIELDS,
  MEASUREMENT_SHARE_SORT,
  type MeasurementShare,
  type NewAuditEntry,
  type ReceivedMeasurementShare,
  type ReceivedShareWithProvider,
} from '../../storage/index.js';
import { auditActor, forbidden, noteAudit, principalOf } from '../auth.js';
import { ApiError, badRequest, notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema } from '../paging.js';
import type { ApiContext } from '../server.js';
import { applicationFor, unknownReference } from './applications.js';
import {
  answerMeasurements,
  type MeasurementQuerystring,
  type MeasurementRead,
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
 * - Every read of a share's measurements is audited (`shared-measurements.read`): the entry
 *   belongs to the provider's tenant and names the receiving one as related (`relatedTenantId`),
 *   so the owners and admins of both read it. The read is answered only once its entry is
 *   written; a refused read of a share the caller receives (a field not shared, a bad query) is
 *   audited too. Reads of one's own devices (`/devices/{devEui}/measurements`) are not.
 */

interface ShareBody {
  devEui: string;
  tenantId: string;
  fields: string[];
  note?: string;
}

interface ShareChangesBody {
  fields?: string[];
  note?: string | null;
}

type ShareParams = { id: string; shareId: string };

const fieldsSchema = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_SHARED_FIELDS,
  items: { type: 'string', minLength: 1, maxLength: MAX_SHARED_FIELD_LENGTH },
  description: 'Exact field paths as the measurements store them (`volume`)',
} as const;
const noteSchema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_SHARE_NOTE_LENGTH,
  description: "For the provider's own records; the receiving tenant does not see it",
} as const;

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
            fields: fieldsSchema,
            note: noteSchema,
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

  api.patch<{ Params: ShareParams; Body: ShareChangesBody }>(
    '/applications/:id/measurement-shares/:shareId',
    {
      schema: {
        summary:
          "Change a measurement share's fields or note (not its device nor its receiving tenant)",
        tags: ['measurement-shares'],
        params: shareParams,
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: {
            fields: { ...fieldsSchema, description: `${fieldsSchema.description}: replace them` },
            note: { ...noteSchema, type: ['string', 'null'], description: 'null clears it' },
          },
        },
      },
    },
    async (request) => {
      const body = request.body;
      noteAudit(request, {
        action: 'measurement-share.update',
        objectType: 'measurement-share',
        objectId: request.params.shareId,
        details: { changed: Object.keys(body).sort() },
      });
      const { application, share } = await shareFor(
        context,
        request,
        request.params,
        'applications:write',
      );
      // Whoever may give the data away decides what is given: the same as for a new share.
      assertSharer(request, application);
      const updated = await storage.measurementShares.update(application.id, share.id, {
        ...(body.fields === undefined ? {} : { fields: body.fields }),
        ...(body.note === undefined ? {} : { note: body.note }),
      });
      if (updated === undefined) throw notFound(`measurement share ${share.id}`);
      noteAudit(request, {
        details: {
          applicationId: application.id,
          devEui: share.devEui,
          receivingTenantId: share.tenantId,
          ...(body.fields === undefined
            ? {}
            : { fields: updated.fields, previousFields: share.fields }),
        },
      });
      return updated;
    },
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
      const tenants = receivingTenants(principalOf(request));
      const found = await storage.measurementShares.getReceivedWithProvider(request.params.shareId);
      if (found === undefined || !tenants.includes(found.share.tenantId)) {
        throw notFound(`shared measurements ${request.params.shareId}`);
      }
      const { share } = found;
      const query = request.query;
      const entry = sharedReadEntry(request, found);
      let recorded = false;
      try {
        if (query.field !== undefined && !share.fields.includes(query.field)) {
          throw notFound(`field ${query.field} in shared measurements ${share.id}`);
        }
        return await answerMeasurements(storage, request, reply, share.devEui, {
          fields: share.fields,
          extra: { shareId: share.id },
          // The provider sees every read: no entry, no answer (the append's error is the 500).
          beforeAnswer: async (read) => {
            recorded = true;
            await storage.auditLog.append(sharedReadSuccess(entry, read));
          },
        });
      } catch (error) {
        if (!recorded) {
          // A refused read of a share the caller does receive: the provider sees it too. The
          // answer is the read's error, whether this entry could be written or not.
          await storage.auditLog
            .append({
              ...entry,
              outcome:
                error instanceof ApiError && (error.statusCode === 403 || error.statusCode === 404)
                  ? 'denied'
                  : 'failure',
              details: { ...entry.details, ...errorDetails(error) },
            })
            .catch(() => undefined);
        }
        throw error;
      }
    },
  );
}

type SharedReadEntry = Required<
  Pick<NewAuditEntry, 'action' | 'objectType' | 'objectId' | 'tenantId' | 'relatedTenantId'>
> & { actor: NewAuditEntry['actor']; sourceIp: string; details: Record<string, unknown> };

/**
 * The audit entry of a read of shared measurements: the provider's tenant's, related to the
 * receiving tenant, with the reader (acting for the receiving tenant), the device, the fields
 * and the query. Nothing of the application (the receiving tenant reads this entry too).
 */
function sharedReadEntry(
  request: FastifyRequest<{ Querystring: MeasurementQuerystring }>,
  { share, providerTenantId }: ReceivedShareWithProvider,
): SharedReadEntry {
  const query = request.query;
  return {
    action: 'shared-measurements.read',
    objectType: 'measurement-share',
    objectId: share.id,
    tenantId: providerTenantId,
    relatedTenantId: share.tenantId,
    actor: { ...auditActor(principalOf(request)), tenantId: share.tenantId },
    sourceIp: request.ip,
    details: {
      devEui: share.devEui,
      fields: query.field === undefined ? share.fields : [query.field],
      ...(query.from === undefined ? {} : { from: query.from }),
      ...(query.to === undefined ? {} : { to: query.to }),
      ...(query.interval === undefined ? {} : { interval: query.interval }),
      ...(query.aggregate === undefined ? {} : { aggregate: query.aggregate }),
      ...(query.limit === undefined ? {} : { limit: query.limit }),
      ...(query.format === undefined ? {} : { format: query.format }),
    },
  };
}

function sharedReadSuccess(entry: SharedReadEntry, read: MeasurementRead): NewAuditEntry {
  return {
    ...entry,
    outcome: 'success',
    // The range actually read (the defaults filled in) and how many rows or buckets went out.
    details: { ...entry.details, from: read.from, to: read.to, rows: read.rows },
  };
}

function errorDetails(error: unknown): Record<string, unknown> {
  if (error instanceof ApiError) {
    return { error: error.error, message: error.message.slice(0, 300) };
  }
  const code = (error as { code?: unknown }).code;
  return {
    error: typeof code === 'string' ? code : 'INTERNAL',
    message: error instanceof Error ? error.message.slice(0, 300) : String(error),
  };
}
