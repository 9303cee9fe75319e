import type { FastifyInstance } from 'fastify';
import { tenantsWhere } from '../../platform/roles.js';
import { authorize, type PlatformContext, principalOf } from '../auth.js';
import { badRequest } from '../errors.js';
import { idCursor, idFromCursor } from '../paging.js';
import { listScope, tenantIdsFilter } from '../scope.js';
import { idSchema } from './schemas.js';

/**
 * The audit log: `GET /audit`, newest first, paged by id (`beforeId`). The operator sees every
 * entry; a tenant's owners and admins see the entries about their tenant only: those of their
 * tenant, and those that name it as related (`relatedTenantId`: the reads of the measurements
 * shared with it, which are the provider's entries). Such an entry shows them `tenantId: null`:
 * which tenant the provider is, is not theirs to know.
 */

interface AuditQuerystring {
  limit?: number;
  /** The same as `beforeId`, as every other list pages. */
  cursor?: string;
  beforeId?: number;
  tenantId?: string;
  actorId?: string;
  action?: string;
  from?: string;
  to?: string;
}

export function registerAuditRoutes(api: FastifyInstance, platform: PlatformContext): void {
  api.get<{ Querystring: AuditQuerystring }>(
    '/audit',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
            cursor: { type: 'string', minLength: 1, maxLength: 1000 },
            beforeId: { type: 'integer', minimum: 1 },
            tenantId: idSchema,
            actorId: idSchema,
            action: { type: 'string', minLength: 1, maxLength: 100 },
            from: { type: 'string', maxLength: 40 },
            to: { type: 'string', maxLength: 40 },
          },
        },
      },
    },
    async (request) => {
      const { tenantId, cursor, ...query } = request.query;
      if (cursor !== undefined) {
        if (query.beforeId !== undefined) {
          throw badRequest('querystring has both cursor and beforeId: page with one of them');
        }
        query.beforeId = idFromCursor(cursor);
      }
      // 403 for a principal that reads the audit log nowhere, whatever the filter (as every list).
      listScope(request, 'audit:read', { applications: false });
      const tenantIds = tenantIdsFilter(request, 'audit:read', tenantId);
      if (tenantIds?.length === 0) {
        // Nothing to show: say so rather than answer an empty list.
        authorize(request, 'audit:read', {}, 'audit log');
      }
      const listed = await platform.storage.auditLog.list({
        ...query,
        ...(tenantIds === undefined ? {} : { tenantIds }),
      });
      const own = tenantsWhere(principalOf(request), 'audit:read');
      const entries =
        own === 'all'
          ? listed
          : listed.map((entry) =>
              entry.tenantId === null || own.includes(entry.tenantId)
                ? entry
                : { ...entry, tenantId: null },
            );
      const last = entries.at(-1);
      const more = last !== undefined && entries.length === (query.limit ?? 100);
      return {
        entries,
        nextBeforeId: more ? last.id : null,
        nextCursor: more ? idCursor(last.id) : null,
      };
    },
  );
}
