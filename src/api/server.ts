import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Region } from '../lorawan/regions/index.js';
import type { NetworkServer } from '../network/network-server.js';
import { LoginLimiter, type LoginLimiterOptions } from '../platform/login-limiter.js';
import { type Action, can, type Resource } from '../platform/roles.js';
import { type Device, type Storage, StorageError } from '../storage/index.js';
import {
  type AuditDraft,
  Authenticator,
  forbidden,
  type PlatformContext,
  principalOf,
  recordAudit,
} from './auth.js';
import { ApiError } from './errors.js';
import { registerApiKeyRoutes } from './routes/api-keys.js';
import { registerApplicationRoutes } from './routes/applications.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerAuthRoutes, registerLoginRoute } from './routes/auth-routes.js';
import { registerDeviceProfileRoutes } from './routes/device-profiles.js';
import { registerDeviceRoutes } from './routes/devices.js';
import { registerGatewayRoutes } from './routes/gateways.js';
import { registerLinkTokenRoutes } from './routes/link-tokens.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerUserRoutes } from './routes/users.js';

/**
 * What the API tells the network server after it wrote something the network keeps in memory
 * (in-process in all-in-one mode). `NetworkServer` has the required part.
 *
 * The network caches devices and profiles, so it must be told about every change of a device
 * profile or of a device's profile, or it keeps applying the old MAC settings until a restart.
 * The two optional hooks are for that; the API calls them after each such write when the
 * network implements them.
 */
export interface ApiNetwork
  extends Pick<
    NetworkServer,
    'config' | 'sessionChanged' | 'sessionRemoved' | 'downlinkQueued' | 'gatewayAdded'
  > {
  /** The operator changed a device's class: the network follows at once. */
  deviceClassChanged?: NetworkServer['deviceClassChanged'];
  /** A gateway's transmit time per duty-cycle sub-band over the last hour (absent: unknown). */
  gatewayDutyCycle?: NetworkServer['gatewayDutyCycle'];
  /** LoRaWAN 1.1 ForceRejoinReq with the device's next downlink (absent: not supported). */
  forceRejoin?: NetworkServer['forceRejoin'];
  /** A device profile was created, changed or deleted. */
  deviceProfileChanged?(id: string): void;
  /** A device was created, changed (name, profile) or deleted: read it again. */
  deviceChanged?(devEui: string): void;
}

export interface ApiOptions {
  /** Prometheus registry served at /metrics (behind the token). */
  metrics?: Registry;
  /** Brings counters kept elsewhere (a worker thread's) up to date before each scrape. */
  refreshMetrics?: () => Promise<void>;
  storage: Storage;
  network: ApiNetwork;
  region: Region;
  adminToken: string;
  /** The roles around this API (operator-blind split); absent: all in one process. */
  roles?: ApiRoles;
  logger?: Logger;
  /** Largest request body accepted, bytes. */
  bodyLimit?: number;
  /** The clock for API key expiry and sessions (tests pass their own). Default: system time. */
  now?: () => Date;
  /** How long a console session lasts. Default 12 hours. */
  sessionTtlMs?: number;
  /** Limits on failed logins (platform/login-limiter.ts). */
  loginLimits?: LoginLimiterOptions;
}

/** What the API must know of the roles it serves (operator-blind split, issue 5). */
export interface ApiRoles {
  /** The network role alone: application keys (AppKey, AppSKey) are refused. */
  operatorBlind?: boolean;
  /**
   * A provider's Galet: a device created here must be registered with the network (over the
   * link) before it exists; a failure undoes the creation.
   */
  deviceCreated?(device: Device): Promise<void>;
}

/** Shared by the route modules. */
export interface ApiContext {
  storage: Storage;
  network: ApiNetwork;
  roles: ApiRoles;
  region: Region;
}

const STORAGE_ERROR_STATUS: Partial<Record<StorageError['code'], [number, string]>> = {
  NOT_FOUND: [404, 'NOT_FOUND'],
  ALREADY_EXISTS: [409, 'ALREADY_EXISTS'],
  MISSING_REFERENCE: [400, 'UNKNOWN_REFERENCE'],
  STILL_REFERENCED: [409, 'STILL_REFERENCED'],
  INVALID_INPUT: [400, 'BAD_REQUEST'],
  INVALID_STATE: [409, 'INVALID_STATE'],
  COUNTER_EXHAUSTED: [409, 'COUNTER_EXHAUSTED'],
};

/**
 * The HTTP API under /api/v1: JSON in and out, bearer-token auth on everything but /health,
 * errors as `{error, message, details?}` with a 4xx status; a body over the limit gets 413.
 */
export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 1_048_576,
    logger: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });
  const logger = options.logger;
  const now = options.now ?? (() => new Date());
  const authenticator = new Authenticator({
    adminToken: options.adminToken,
    storage: options.storage,
    now,
  });
  const platform: PlatformContext = { storage: options.storage, logger, now };
  app.decorateRequest('principal', null);
  app.decorateRequest('sessionIdHash', null);

  app.setErrorHandler((error: FastifyError | ApiError | StorageError | Error, request, reply) => {
    if (error instanceof ApiError) {
      return reply.status(error.statusCode).send({
        error: error.error,
        message: error.message,
        ...(error.details === undefined ? {} : { details: error.details }),
      });
    }
    if (error instanceof StorageError) {
      const mapped = STORAGE_ERROR_STATUS[error.code];
      if (mapped !== undefined) {
        return reply.status(mapped[0]).send({ error: mapped[1], message: error.message });
      }
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.validation !== undefined) {
      return reply.status(400).send({
        error: 'BAD_REQUEST',
        message: fastifyError.message,
        details: fastifyError.validation,
      });
    }
    if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
      return reply.status(fastifyError.statusCode).send({
        error: fastifyError.code ?? 'BAD_REQUEST',
        message: fastifyError.message,
      });
    }
    logger?.error({ err: error, url: request.url, method: request.method }, 'API request failed');
    return reply.status(500).send({ error: 'INTERNAL', message: 'internal error' });
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send({ error: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` }),
  );

  app.get('/api/v1/health', async () => ({ status: 'ok' }));

  // Public: the console's login.
  await app.register(
    async (api) => {
      registerLoginRoute(api, platform, {
        limiter: new LoginLimiter({ now: () => now().getTime(), ...options.loginLimits }),
        sessionTtlMs: options.sessionTtlMs ?? 12 * 3_600_000,
      });
    },
    { prefix: '/api/v1' },
  );

  await app.register(
    async (api) => {
      // Who: the admin token, an API key or a console session (auth.ts).
      api.addHook('onRequest', async (request) => {
        const authentication = await authenticator.authenticate(request.headers);
        if ('error' in authentication) {
          throw new ApiError(401, 'UNAUTHORIZED', authentication.error);
        }
        request.principal = authentication.principal;
        request.sessionIdHash = authentication.sessionIdHash;
      });
      // May: the platform routes decide per object; the others are not scoped to tenants yet,
      // so only global principals (admin token, operator-admin) use them.
      api.addHook('onRequest', async (request) => {
        if (isPlatformRoute(request.routeOptions.url)) return;
        const action = unscopedRouteAction(request.method, request.routeOptions.url);
        if (!can(principalOf(request), action, {})) {
          throw forbidden(
            `${action.replace(':', ' ')} is for the operator only until this route is scoped to tenants`,
          );
        }
      });
      // The writes of those routes are audited here; the platform routes audit their own.
      api.addHook('onSend', async (request, reply, payload) => {
        if (
          request.principal !== null &&
          !SAFE_METHODS.has(request.method) &&
          !isPlatformRoute(request.routeOptions.url)
        ) {
          const status = reply.statusCode;
          await recordAudit(
            platform,
            request,
            unscopedWriteAudit(
              request.method,
              request.routeOptions.url,
              request.params,
              payload,
              status,
            ),
            status < 400 ? 'success' : status === 403 ? 'denied' : 'failure',
          );
        }
        return payload;
      });
      const metrics = options.metrics;
      if (metrics !== undefined) {
        api.get('/metrics', async (_request, reply) => {
          await options.refreshMetrics?.();
          return reply.header('content-type', metrics.contentType).send(await metrics.metrics());
        });
      }
      const context: ApiContext = {
        storage: options.storage,
        network: options.network,
        region: options.region,
        roles: options.roles ?? {},
      };
      registerApplicationRoutes(api, context);
      registerLinkTokenRoutes(api, context);
      registerGatewayRoutes(api, context);
      registerDeviceRoutes(api, context);
      registerDeviceProfileRoutes(api, context);
      registerTenantRoutes(api, platform);
      registerUserRoutes(api, platform);
      registerApiKeyRoutes(api, platform);
      registerAuditRoutes(api, platform);
      registerAuthRoutes(api, platform);
    },
    { prefix: '/api/v1' },
  );
  return app;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const PLATFORM_ROUTE = /^\/api\/v1\/(tenants|users|api-keys|audit|auth)(\/|$)/;
const UNSCOPED_RESOURCES = new Set<Resource>([
  'applications',
  'devices',
  'gateways',
  'device-profiles',
  'metrics',
]);

function isPlatformRoute(url: string | undefined): boolean {
  return url !== undefined && PLATFORM_ROUTE.test(url);
}

/** The permission a route that is not tenant-scoped yet needs (from a global principal). */
function unscopedRouteAction(method: string, url: string | undefined): Action {
  const segments = (url ?? '').replace(/^\/api\/v1\//, '').split('/');
  const access = SAFE_METHODS.has(method) ? 'read' : 'write';
  const first = segments[0] as Resource;
  const resource: Resource =
    first === 'devices' && segments[2] === 'events'
      ? 'events'
      : UNSCOPED_RESOURCES.has(first)
        ? first
        : 'tenants';
  return `${resource}:${access}`;
}

/**
 * The audit entry of a write to a route that does not audit itself: `device.create`,
 * `device.update`, `device.delete`, or `device.<sub-resource>` (`device.queue`).
 */
function unscopedWriteAudit(
  method: string,
  url: string | undefined,
  params: unknown,
  payload: unknown,
  status: number,
): AuditDraft {
  const path = (url ?? '').replace(/^\/api\/v1\//, '');
  const segments = path.split('/');
  const objectType = (segments[0] ?? '').replace(/s$/, '').replace(/[^a-z0-9-]/g, '') || 'object';
  const subResource = segments
    .slice(1)
    .reverse()
    .find((segment) => !segment.startsWith(':'));
  const verb =
    subResource?.replace(/[^a-z0-9-]/g, '') ||
    (method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : 'update');
  const values = Object.values((params ?? {}) as Record<string, unknown>);
  let objectId = typeof values[0] === 'string' ? values[0] : null;
  if (objectId === null && typeof payload === 'string' && status < 400) {
    try {
      const body = JSON.parse(payload) as Record<string, unknown>;
      const id = body['id'] ?? body['devEui'] ?? body['gatewayId'];
      objectId = typeof id === 'string' ? id : null;
    } catch {
      // Not JSON: no id.
    }
  }
  return {
    action: `${objectType}.${verb}`,
    objectType,
    objectId,
    details: { route: `${method} /api/v1/${path}`, status },
  };
}
