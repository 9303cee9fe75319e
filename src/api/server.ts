import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { ApplicationServices } from '../application/services.js';
import type { Logger } from '../logger.js';
import type { Region } from '../lorawan/regions/index.js';
import type { NetworkServer } from '../network/network-server.js';
import { LoginLimiter, type LoginLimiterOptions } from '../platform/login-limiter.js';
import type { OidcSettings } from '../platform/oidc-settings.js';
import { RateLimiter, type RateLimitOptions } from '../platform/rate-limiter.js';
import { type Action, can, type Resource } from '../platform/roles.js';
import { type Device, type Storage, StorageError } from '../storage/index.js';
import {
  AccessDenied,
  type AuditDraft,
  Authenticator,
  forbidden,
  type PlatformContext,
  principalOf,
  recordAudit,
} from './auth.js';
import { consoleRoutes } from './console-routes.js';
import { ApiError } from './errors.js';
import { collectRoutes, openApiDocument } from './openapi.js';
import { registerApiKeyRoutes } from './routes/api-keys.js';
import { registerApplicationRoutes } from './routes/applications.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerAuthRoutes, registerLoginRoute } from './routes/auth-routes.js';
import { registerDeviceBulkRoutes } from './routes/device-bulk.js';
import { registerDeviceProfileRoutes } from './routes/device-profiles.js';
import { registerDeviceRoutes } from './routes/devices.js';
import { registerEventStreamRoutes } from './routes/event-streams.js';
import { registerGatewayRoutes } from './routes/gateways.js';
import { registerLinkTokenRoutes } from './routes/link-tokens.js';
import { registerMeasurementShareRoutes } from './routes/measurement-shares.js';
import { registerMeasurementRoutes } from './routes/measurements.js';
import { registerOidcRoutes } from './routes/oidc-routes.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerUserRoutes } from './routes/users.js';
import { registerWebhookRoutes } from './routes/webhooks.js';

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
  /** A gateway was deleted: refuse its traffic from now on (absent: until a restart). */
  gatewayRemoved?(gatewayId: string): void;
  /**
   * A provider's Galet: pending downlinks deleted through the API are withdrawn from the
   * operator's network (over the link) and deleted here. Absent: the queue is this process's.
   */
  withdrawDownlinks?(
    devEui: string,
    ids: readonly string[],
  ): Promise<DownlinkWithdrawal | { unavailable: string }>;
}

/** What a deletion of pending downlinks did. */
export interface DownlinkWithdrawal {
  /** Ids taken out of the queue (and off the network): they are never transmitted. */
  withdrawn: string[];
  /** Transmitted already: left as they are, with the counter they went out with. */
  sent: { id: string; fCntDown: number | null }[];
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
  /** The application-side services (absent in the network role alone). */
  application?: ApplicationServices;
  logger?: Logger;
  /** Largest request body accepted, bytes. */
  bodyLimit?: number;
  /** The clock for API key expiry and sessions (tests pass their own). Default: system time. */
  now?: () => Date;
  /** How long a console session lasts. Default 12 hours. */
  sessionTtlMs?: number;
  /** Limits on failed logins (platform/login-limiter.ts). */
  loginLimits?: LoginLimiterOptions;
  /** OpenID Connect login for the console (routes/oidc-routes.ts); absent: off. */
  oidc?: OidcSettings;
  /**
   * Requests per credential (platform/rate-limiter.ts): API keys and users, each its own token
   * bucket; the admin token only with `adminToken: true`. `false`: no limit. Default: a burst of
   * 120, then 20 a second.
   */
  rateLimit?: (RateLimitOptions & { adminToken?: boolean }) | false;
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
  /** The application-side services (codecs, ...); absent in the network role alone. */
  application?: ApplicationServices;
}

const STORAGE_ERROR_STATUS: Partial<Record<StorageError['code'], [number, string]>> = {
  NOT_FOUND: [404, 'NOT_FOUND'],
  ALREADY_EXISTS: [409, 'ALREADY_EXISTS'],
  MISSING_REFERENCE: [400, 'UNKNOWN_REFERENCE'],
  STILL_REFERENCED: [409, 'STILL_REFERENCED'],
  INVALID_INPUT: [400, 'BAD_REQUEST'],
  INVALID_STATE: [409, 'INVALID_STATE'],
  COUNTER_EXHAUSTED: [409, 'COUNTER_EXHAUSTED'],
  QUOTA_EXCEEDED: [409, 'QUOTA_EXCEEDED'],
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
  app.decorateRequest('auditNote', null);
  app.decorateRequest('auditRecorded', false);
  await app.register(consoleRoutes, { logger }); // the web console, outside the API's document
  // Every route registered from here on, for the OpenAPI document.
  const routes = collectRoutes(app, (url) => PUBLIC_ROUTE.test(url));
  const rateLimit = options.rateLimit === false ? undefined : (options.rateLimit ?? {});
  const rateLimiter =
    rateLimit === undefined
      ? undefined
      : new RateLimiter({ now: () => now().getTime(), ...rateLimit });

  app.setErrorHandler((error: FastifyError | ApiError | StorageError | Error, request, reply) => {
    if (error instanceof ApiError) {
      if (error instanceof AccessDenied) request.auditNote = { ...request.auditNote, denied: true };
      return reply.status(error.statusCode).send({
        error: error.error,
        message: error.message,
        ...(error.details === undefined ? {} : { details: error.details }),
      });
    }
    if (error instanceof StorageError) {
      const mapped = STORAGE_ERROR_STATUS[error.code];
      if (mapped !== undefined) {
        return reply.status(mapped[0]).send({
          error: mapped[1],
          message: error.message,
          ...(error.details === undefined ? {} : { details: error.details }),
        });
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
      // Fastify's own refusals (FST_ERR_CTP_BODY_TOO_LARGE, ...) get the API's codes.
      return reply.status(fastifyError.statusCode).send({
        error: HTTP_ERROR_CODES[fastifyError.statusCode] ?? 'BAD_REQUEST',
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

  app.get('/api/v1/health', { schema: { summary: 'Liveness', tags: ['health'] } }, async () => ({
    status: 'ok',
  }));
  // Public: the API's own description, generated from the routes' schemas (openapi.ts).
  let document: Record<string, unknown> | undefined;
  app.get(
    '/api/v1/openapi.json',
    { schema: { summary: 'This OpenAPI 3.1 document', tags: ['openapi'] } },
    async () => {
      document ??= openApiDocument(routes, {
        title: 'Galet API',
        version: '1',
        description: 'The HTTP API of Galet, a LoRaWAN network server (docs/API.md).',
      });
      return document;
    },
  );

  // Public: the console's login.
  await app.register(
    async (api) => {
      registerOidcRoutes(api, platform, options);
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
      // The routes that authorize each object themselves (`can`, api/scope.ts), as they are
      // registered through `scoped`: the hook below lets every other route through to global
      // principals only, so that a route added without its own checks is the operator's.
      const scopedRoutes = new Set<string>();
      let scoping = false;
      api.addHook('onRoute', (route) => {
        if (!scoping) return;
        for (const method of [route.method].flat()) scopedRoutes.add(`${method} ${route.url}`);
      });
      const scoped = (register: () => void) => {
        scoping = true;
        try {
          register();
        } finally {
          scoping = false;
        }
      };
      // How often: a token bucket per API key and per user (platform/rate-limiter.ts).
      if (rateLimiter !== undefined) {
        api.addHook('onRequest', async (request, reply) => {
          const key = rateLimitKey(request.principal, rateLimit?.adminToken === true);
          if (key === undefined) return;
          const decision = rateLimiter.take(key);
          if (decision.allowed) return;
          const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
          reply.header('retry-after', String(seconds));
          throw new ApiError(
            429,
            'TOO_MANY_REQUESTS',
            `too many requests with this credential: try again in ${seconds} s`,
            {
              burst: rateLimiter.burst,
              perSecond: rateLimiter.perSecond,
              retryAfterSeconds: seconds,
            },
          );
        });
      }
      // May: the routes of tenant-owned objects and the platform routes decide per object; any
      // other route is the operator's: only global principals (admin token, operator-admin).
      api.addHook('onRequest', async (request) => {
        if (scopedRoutes.has(`${request.method} ${request.routeOptions.url}`)) return;
        const action = unscopedRouteAction(request.method, request.routeOptions.url);
        if (!can(principalOf(request), action, {})) {
          throw forbidden(
            `${action.replace(':', ' ')} through this route is for the operator only`,
          );
        }
      });
      // Every write is audited: the platform routes write their own entries (`audited`); for
      // the others (and a body the schema refused) this hook does, with what the route noted
      // of the object (`noteAudit`: its tenant, details) and the outcome from the status.
      api.addHook('onSend', async (request, reply, payload) => {
        if (
          request.principal !== null &&
          !SAFE_METHODS.has(request.method) &&
          !request.auditRecorded
        ) {
          const status = reply.statusCode;
          const draft = unscopedWriteAudit(
            request.method,
            request.routeOptions.url,
            request.params,
            payload,
            status,
          );
          const { denied, details, ...note } = request.auditNote ?? {};
          await recordAudit(
            platform,
            request,
            { ...draft, ...note, details: { ...details, ...draft.details } },
            status < 400 ? 'success' : status === 403 || denied === true ? 'denied' : 'failure',
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
        ...(options.application === undefined ? {} : { application: options.application }),
      };
      scoped(() => registerApplicationRoutes(api, context));
      scoped(() => registerWebhookRoutes(api, context));
      registerLinkTokenRoutes(api, context);
      scoped(() => registerGatewayRoutes(api, context));
      scoped(() => registerDeviceRoutes(api, context));
      scoped(() => registerDeviceBulkRoutes(api, context));
      scoped(() => registerMeasurementRoutes(api, context));
      scoped(() => registerMeasurementShareRoutes(api, context));
      scoped(() => registerDeviceProfileRoutes(api, context));
      scoped(() => registerEventStreamRoutes(api, context, options.application));
      scoped(() => registerTenantRoutes(api, platform));
      scoped(() => registerUserRoutes(api, platform));
      scoped(() => registerApiKeyRoutes(api, platform));
      scoped(() => registerAuditRoutes(api, platform));
      scoped(() => registerAuthRoutes(api, platform));
    },
    { prefix: '/api/v1' },
  );
  return app;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const HTTP_ERROR_CODES: Record<number, string> = {
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
};
/** Routes without credentials. */
const PUBLIC_ROUTE =
  /^\/api\/v1\/(health|openapi\.json|auth\/login|auth\/oidc(\/start|\/callback|\/backchannel-logout|\/jwks\.json)?)$/;

const UNSCOPED_RESOURCES = new Set<Resource>([
  'applications',
  'devices',
  'gateways',
  'device-profiles',
  'metrics',
]);

/** Whose bucket a request takes from; undefined: not limited (the admin token by default). */
function rateLimitKey(
  principal: FastifyRequest['principal'],
  limitAdminToken: boolean,
): string | undefined {
  switch (principal?.kind) {
    case undefined:
      return undefined;
    case 'admin-token':
      return limitAdminToken ? 'admin-token' : undefined;
    case 'api-key':
      return `key:${principal.keyId}`;
    case 'user':
      return `user:${principal.userId}`;
  }
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
  let error: Record<string, unknown> = {};
  if (status >= 400 && typeof payload === 'string') {
    try {
      const body = JSON.parse(payload) as { error?: unknown; message?: unknown };
      error = { error: String(body.error), message: String(body.message).slice(0, 300) };
    } catch {
      // Not JSON: the status says enough.
    }
  }
  return {
    action: `${objectType}.${verb}`,
    objectType,
    objectId,
    details: { route: `${method} /api/v1/${path}`, status, ...error },
  };
}
