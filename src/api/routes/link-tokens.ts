import type { FastifyInstance } from 'fastify';
import { generateLinkToken } from '../../link/link-token.js';
import { notFound } from '../errors.js';
import type { ApiContext } from '../server.js';
import { nameSchema } from './schemas.js';

/**
 * Provider link tokens (issue 5): `POST /applications/{id}/link-tokens` gives a provider's
 * server the credential it connects to `/api/v1/link` with (shown once); the network keeps its
 * hash and the KEK both sides derive from it. Listing never shows a token; DELETE revokes.
 */
export function registerLinkTokenRoutes(api: FastifyInstance, { storage }: ApiContext): void {
  api.post<{ Params: { id: string }; Body: { name?: string } | undefined }>(
    '/applications/:id/link-tokens',
    {
      schema: {
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { name: nameSchema },
        },
      },
    },
    async (request, reply) => {
      const application = await storage.applications.get(request.params.id);
      if (application === undefined) throw notFound(`application ${request.params.id}`);
      const generated = generateLinkToken();
      const created = await storage.linkTokens.create({
        id: generated.id,
        applicationId: application.id,
        name: request.body?.name ?? 'provider link',
        tokenHash: generated.tokenHash,
        kek: generated.kek,
      });
      return reply.status(201).send({ ...created, token: generated.token });
    },
  );

  api.get<{ Params: { id: string } }>('/applications/:id/link-tokens', async (request) => {
    const application = await storage.applications.get(request.params.id);
    if (application === undefined) throw notFound(`application ${request.params.id}`);
    return { linkTokens: await storage.linkTokens.listForApplication(application.id) };
  });

  api.delete<{ Params: { id: string; tokenId: string } }>(
    '/applications/:id/link-tokens/:tokenId',
    async (request, reply) => {
      if (!(await storage.linkTokens.revoke(request.params.id, request.params.tokenId))) {
        throw notFound(`link token ${request.params.tokenId}`);
      }
      return reply.status(204).send();
    },
  );
}
