import type { FastifyInstance } from 'fastify';
import { notFound } from '../errors.js';
import type { ApiContext } from '../server.js';
import { EUI_PATTERN, listQuerySchema, locationSchema, nameSchema } from './schemas.js';

interface NewGatewayBody {
  gatewayId: string;
  name: string;
  location?: { latitude: number; longitude: number; altitude?: number };
}

export function registerGatewayRoutes(
  api: FastifyInstance,
  { storage, network }: ApiContext,
): void {
  api.post<{ Body: NewGatewayBody }>(
    '/gateways',
    {
      schema: {
        body: {
          type: 'object',
          required: ['gatewayId', 'name'],
          additionalProperties: false,
          properties: {
            gatewayId: { type: 'string', pattern: EUI_PATTERN },
            name: nameSchema,
            location: locationSchema,
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const gateway = await storage.gateways.create({
        gatewayId: body.gatewayId.toLowerCase(),
        name: body.name,
        ...(body.location === undefined ? {} : { location: body.location }),
      });
      network.gatewayAdded(gateway.gatewayId);
      return reply.status(201).send(gateway);
    },
  );

  api.get<{ Querystring: { limit?: number; offset?: number } }>(
    '/gateways',
    { schema: { querystring: listQuerySchema } },
    async (request) => ({ gateways: await storage.gateways.list(request.query) }),
  );

  api.get<{ Params: { gatewayId: string } }>('/gateways/:gatewayId', async (request) => {
    const gateway = await storage.gateways.get(request.params.gatewayId.toLowerCase());
    if (gateway === undefined) throw notFound(`gateway ${request.params.gatewayId}`);
    // The network's duty-cycle accounting of this gateway's transmissions (memory, last hour).
    const dutyCycle = network.gatewayDutyCycle?.(gateway.gatewayId);
    return dutyCycle === undefined ? gateway : { ...gateway, dutyCycle };
  });
}
