import type { FastifyInstance, FastifyRequest } from 'fastify';
import { can, isGlobal, tenantsWhere } from '../../platform/roles.js';
import { GATEWAY_SORT, type Gateway, type GatewayLocationInput } from '../../storage/index.js';
import { forbidden, noteAudit, principalOf } from '../auth.js';
import { notFound } from '../errors.js';
import {
  listPage,
  type PageQuery,
  pagedListSchema,
  parseTagFilter,
  searchSchema,
  tagFilterSchema,
} from '../paging.js';
import { authorizedTenantOfNew, authorizeObject, scopedListFilters } from '../scope.js';
import type { ApiContext } from '../server.js';
import { EUI_PATTERN, idSchema, locationSchema, nameSchema, tagsSchema } from './schemas.js';

/**
 * Gateways: `/gateways`. A gateway belongs to a tenant (counted against its `maxGateways`) or to
 * the operator (no tenant). A `shared` gateway is visible, read-only, to every tenant: its
 * owner's id and tags are not shown to them.
 */

interface NewGatewayBody {
  gatewayId: string;
  name: string;
  location?: { latitude: number; longitude: number; altitude?: number };
  tenantId?: string;
  shared?: boolean;
  tags?: Record<string, string>;
}

interface GatewayPatchBody {
  name?: string;
  location?: GatewayLocationInput | null;
  tenantId?: string | null;
  shared?: boolean;
  tags?: Record<string, string>;
}

interface GatewayListQuery extends PageQuery {
  tenantId?: string;
  shared?: boolean;
  tag?: string;
  search?: string;
}

/** A shared gateway of another owner as a tenant sees it: not whose it is, nor its tags. */
function gatewayView(request: FastifyRequest, gateway: Gateway): Gateway {
  const principal = principalOf(request);
  if (isGlobal(principal) || can(principal, 'gateways:read', { tenantId: gateway.tenantId })) {
    return gateway;
  }
  return { ...gateway, tenantId: null, tags: {} };
}

export function registerGatewayRoutes(
  api: FastifyInstance,
  { storage, network }: ApiContext,
): void {
  /** The gateway if the principal may do `action` on it (a shared one: read); else 404 or 403. */
  async function gatewayFor(
    request: FastifyRequest,
    gatewayId: string,
    action: 'gateways:read' | 'gateways:write',
  ): Promise<Gateway> {
    const gateway = await storage.gateways.get(gatewayId.toLowerCase());
    if (gateway === undefined) throw notFound(`gateway ${gatewayId}`);
    const principal = principalOf(request);
    const sharedWithCaller =
      gateway.shared &&
      !isGlobal(principal) &&
      (tenantsWhere(principal, 'gateways:read') as string[]).length > 0 &&
      !can(principal, 'gateways:read', { tenantId: gateway.tenantId });
    if (sharedWithCaller) {
      if (action === 'gateways:write') {
        throw forbidden(`gateway ${gateway.gatewayId} is shared with you read-only`);
      }
      return gateway;
    }
    authorizeObject(request, action, { tenantId: gateway.tenantId }, `gateway ${gatewayId}`);
    return gateway;
  }

  api.post<{ Body: NewGatewayBody }>(
    '/gateways',
    {
      schema: {
        summary: 'Register a gateway',
        body: {
          type: 'object',
          required: ['gatewayId', 'name'],
          additionalProperties: false,
          properties: {
            gatewayId: { type: 'string', pattern: EUI_PATTERN },
            name: nameSchema,
            location: locationSchema,
            tenantId: idSchema,
            shared: { type: 'boolean' },
            tags: tagsSchema,
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const tenantId = authorizedTenantOfNew(request, 'gateways:write', body.tenantId, 'gateways');
      noteAudit(request, { details: { name: body.name, shared: body.shared ?? false } });
      const gateway = await storage.gateways.create({
        gatewayId: body.gatewayId.toLowerCase(),
        name: body.name,
        tenantId,
        ...(body.location === undefined ? {} : { location: body.location }),
        ...(body.shared === undefined ? {} : { shared: body.shared }),
        ...(body.tags === undefined ? {} : { tags: body.tags }),
      });
      network.gatewayAdded(gateway.gatewayId);
      return reply.status(201).send(gateway);
    },
  );

  api.get<{ Querystring: GatewayListQuery }>(
    '/gateways',
    {
      schema: {
        summary: 'List gateways (the own ones and those shared with the caller)',
        querystring: pagedListSchema(Object.keys(GATEWAY_SORT.fields), {
          tenantId: idSchema,
          shared: { type: 'boolean' },
          tag: tagFilterSchema,
          search: searchSchema,
        }),
      },
    },
    async (request) => {
      const { tenantId, shared, tag, search, ...paging } = request.query;
      const filters = scopedListFilters(request, 'gateways:read', tenantId, {
        shared: true,
        applications: false,
      });
      const tagFilter = parseTagFilter(tag);
      const { items, nextCursor } = await listPage(
        paging,
        GATEWAY_SORT.defaultField,
        'gatewayId',
        (options) =>
          storage.gateways.list({
            ...options,
            ...filters,
            ...(shared === undefined ? {} : { shared }),
            ...(tagFilter === undefined ? {} : { tag: tagFilter }),
            ...(search === undefined ? {} : { search }),
          }),
      );
      return { gateways: items.map((gateway) => gatewayView(request, gateway)), nextCursor };
    },
  );

  api.get<{ Params: { gatewayId: string } }>(
    '/gateways/:gatewayId',
    { schema: { summary: 'Get a gateway with its duty-cycle use' } },
    async (request) => {
      const gateway = gatewayView(
        request,
        await gatewayFor(request, request.params.gatewayId, 'gateways:read'),
      );
      // The network's duty-cycle accounting of this gateway's transmissions (memory, last hour).
      const dutyCycle = network.gatewayDutyCycle?.(gateway.gatewayId);
      return dutyCycle === undefined ? gateway : { ...gateway, dutyCycle };
    },
  );

  api.patch<{ Params: { gatewayId: string }; Body: GatewayPatchBody }>(
    '/gateways/:gatewayId',
    {
      schema: {
        summary: 'Change a gateway (name, location, sharing, tags; tenant by the operator)',
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: {
            name: nameSchema,
            location: { ...locationSchema, type: ['object', 'null'] },
            tenantId: { ...idSchema, type: ['string', 'null'] },
            shared: { type: 'boolean' },
            tags: tagsSchema,
          },
        },
      },
    },
    async (request) => {
      const { gatewayId } = request.params;
      await gatewayFor(request, gatewayId, 'gateways:write');
      noteAudit(request, { details: { fields: Object.keys(request.body).sort() } });
      if (request.body.tenantId !== undefined && !can(principalOf(request), 'tenants:write', {})) {
        throw forbidden('only the operator gives a gateway to another tenant');
      }
      const updated = await storage.gateways.update(gatewayId.toLowerCase(), request.body);
      if (updated === undefined) throw notFound(`gateway ${gatewayId}`);
      return updated;
    },
  );

  api.delete<{ Params: { gatewayId: string } }>(
    '/gateways/:gatewayId',
    { schema: { summary: 'Delete a gateway' } },
    async (request, reply) => {
      const { gatewayId } = request.params;
      const gateway = await gatewayFor(request, gatewayId, 'gateways:write');
      if (!(await storage.gateways.delete(gateway.gatewayId)))
        throw notFound(`gateway ${gatewayId}`);
      network.gatewayRemoved?.(gateway.gatewayId);
      return reply.status(204).send();
    },
  );
}
