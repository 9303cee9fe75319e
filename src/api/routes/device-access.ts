import type { FastifyRequest } from 'fastify';
import type { Action } from '../../platform/roles.js';
import type {
  Application,
  Device,
  DeviceListOptions,
  ListOptions,
  Storage,
} from '../../storage/index.js';
import { noteAudit } from '../auth.js';
import { notFound } from '../errors.js';
import { type PageQuery, parseTagFilter, searchSchema, tagFilterSchema } from '../paging.js';
import { authorizeObject, canSee, scopedListFilters } from '../scope.js';
import { unknownReference } from './applications.js';
import { idSchema } from './schemas.js';

/**
 * Who may touch a device: the tenant roles of its tenant and the integration scope of its
 * application (devices.ts, device-bulk.ts). A device of a tenant the principal cannot see
 * answers 404, its events and queue too.
 */

/** The device if the principal may do `action` on it (`events:read` for its events). */
export async function deviceFor(
  storage: Storage,
  request: FastifyRequest,
  devEuiParam: string,
  action: Action,
): Promise<Device> {
  const device = await storage.devices.get(devEuiParam.toLowerCase());
  if (device === undefined) throw notFound(`device ${devEuiParam}`);
  authorizeObject(
    request,
    action,
    { tenantId: device.tenantId, applicationId: device.applicationId },
    `device ${devEuiParam}`,
  );
  noteAudit(request, { objectId: device.devEui });
  return device;
}

/**
 * The application a device is created in (or moved to), if the principal may add devices to it:
 * one it cannot see is, for it, one that does not exist (400 UNKNOWN_REFERENCE, as the storage
 * layer answers for an unknown application); one it sees without `devices:write` is 403.
 */
export async function applicationForDevices(
  storage: Storage,
  request: FastifyRequest,
  applicationId: string,
): Promise<Application> {
  const application = await storage.applications.get(applicationId);
  const target = { tenantId: application?.tenantId ?? null, applicationId };
  if (
    application === undefined ||
    !(canSee(request, 'applications:read', target) || canSee(request, 'devices:read', target))
  ) {
    throw unknownReference(`application ${applicationId} does not exist`);
  }
  authorizeObject(request, 'devices:write', target, `application ${applicationId}`);
  return application;
}

/** The filters of the device list and the export. */
export interface DeviceFilterQuery {
  applicationId?: string;
  deviceProfileId?: string;
  tenantId?: string;
  tag?: string;
  search?: string;
}

export interface DeviceListQuery extends PageQuery, DeviceFilterQuery {}

export const deviceFilterSchemas = {
  applicationId: { type: 'string', maxLength: 100 },
  deviceProfileId: { type: 'string', maxLength: 100 },
  tenantId: idSchema,
  tag: tagFilterSchema,
  search: searchSchema,
} as const;

/**
 * The repository filters of a device list or export: the principal's scope (its tenants and
 * integration applications) and the query's filters. A `tenantId` the principal cannot see is
 * 404; an `applicationId` or `deviceProfileId` it cannot see simply matches nothing it may see.
 */
export function deviceListFilters(
  request: FastifyRequest,
  query: DeviceFilterQuery,
): Omit<DeviceListOptions, keyof ListOptions> {
  const filters = scopedListFilters(request, 'devices:read', query.tenantId);
  const tag = parseTagFilter(query.tag);
  return {
    ...filters,
    ...(query.applicationId === undefined ? {} : { applicationId: query.applicationId }),
    ...(query.deviceProfileId === undefined ? {} : { deviceProfileId: query.deviceProfileId }),
    ...(tag === undefined ? {} : { tag }),
    ...(query.search === undefined ? {} : { search: query.search }),
  };
}
