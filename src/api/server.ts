import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Region } from '../lorawan/regions/index.js';
import type { NetworkServer } from '../network/network-server.js';
import { type Storage, StorageError } from '../storage/index.js';
import { bearerToken, TokenVerifier } from './auth.js';
import { ApiError } from './errors.js';
import { registerApplicationRoutes } from './routes/applications.js';
import { registerDeviceProfileRoutes } from './routes/device-profiles.js';
import { registerDeviceRoutes } from './routes/devices.js';
import { registerGatewayRoutes } from './routes/gateways.js';

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
  refreshMetrics?: () => Promise<void>;
  storage: Storage;
  network: ApiNetwork;
  region: Region;
  adminToken: string;
  logger?: Logger;
  /** Largest request body accepted, bytes. */
  bodyLimit?: number;
}

/** Shared by the route modules. */
export interface ApiContext {
  storage: Storage;
  network: ApiNetwork;
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
  const verifier = new TokenVerifier(options.adminToken);
  const logger = options.logger;

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

  await app.register(
    async (api) => {
      api.addHook('onRequest', async (request) => {
        if (!verifier.verify(bearerToken(request.headers.authorization))) {
          throw new ApiError(401, 'UNAUTHORIZED', 'missing or invalid bearer token');
        }
      });
      const metrics = options.metrics;
      if (metrics !== undefined) {
        api.get('/metrics', async (_request, reply) => {
          await options.refreshMetrics?.();
          return reply.header('content-type', metrics.contentType).send(await metrics.metrics());
        },
        );
      }
      const context: ApiContext = {
        storage: options.storage,
        network: options.network,
        region: options.region,
      };
      registerApplicationRoutes(api, context);
      registerGatewayRoutes(api, context);
      registerDeviceRoutes(api, context);
      registerDeviceProfileRoutes(api, context);
    },
    { prefix: '/api/v1' },
  );
  return app;
}
