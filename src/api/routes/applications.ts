import type { FastifyInstance } from 'fastify';
import { notFound } from '../errors.js';
import type { ApiContext } from '../server.js';
import { listQuerySchema, nameSchema } from './schemas.js';

export function registerApplicationRoutes(api: FastifyInstance, { storage }: ApiContext): void {
  api.post<{ Body: { name: string } }>(
    '/applications',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: nameSchema },
        },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await storage.applications.create({ name: request.body.name })),
  );

  api.get<{ Querystring: { limit?: number; offset?: number } }>(
    '/applications',
    { schema: { querystring: listQuerySchema } },
    async (request) => ({ applications: await storage.applications.list(request.query) }),
  );

  api.get<{ Params: { id: string } }>('/applications/:id', async (request) => {
    const application = await storage.applications.get(request.params.id);
    if (application === undefined) throw notFound(`application ${request.params.id}`);
    return application;
  });
}
