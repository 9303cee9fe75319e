import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  WEBHOOK_DELIVERY_STATUSES,
  type Webhook,
  type WebhookDeliveryStatus,
} from '../../storage/index.js';
import { noteAudit } from '../auth.js';
import { badRequest, notFound } from '../errors.js';
import type { ApiContext } from '../server.js';
import { applicationFor } from './applications.js';
import { idSchema } from './schemas.js';

/**
 * Webhooks of an application: `/applications/{id}/webhooks[/{webhookId}]`, their deliveries and
 * replays (docs/webhooks.md). Reading needs `applications:read` on the application, changing
 * `applications:write`; another tenant's application answers 404. The secret is shown once, in
 * the answer that created it; header values are never shown.
 */

const urlSchema = {
  type: 'string',
  minLength: 8,
  maxLength: 2000,
  pattern: '^[hH][tT][tT][pP][sS]?://',
  description:
    'http or https; loopback and private addresses are allowed (receivers often run next to Galet); no credentials in the URL: use headers',
} as const;
const secretSchema = {
  type: 'string',
  minLength: 16,
  maxLength: 200,
  description: 'HMAC-SHA256 key (UTF-8); generated (64 hex digits) when absent at creation',
} as const;
const headersSchema = {
  type: 'object',
  maxProperties: 20,
  additionalProperties: { type: 'string', maxLength: 4000 },
  description: 'extra request headers (sealed at rest; values are never shown again)',
} as const;
const eventTypesSchema = {
  type: 'array',
  maxItems: 32,
  items: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,31}$' },
  description: 'event types delivered (up, join, ack, txack, status, log, ...); empty: all',
} as const;
const eventIdSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const webhookParams = {
  type: 'object',
  required: ['id', 'webhookId'],
  properties: { id: idSchema, webhookId: idSchema },
} as const;

interface WebhookBody {
  url: string;
  secret?: string;
  headers?: Record<string, string>;
  eventTypes?: string[];
  enabled?: boolean;
}

type WebhookParams = { id: string; webhookId: string };

/** The webhook if it belongs to the application and the principal may do `action` on it. */
async function webhookFor(
  context: ApiContext,
  request: FastifyRequest,
  params: WebhookParams,
  action: 'applications:read' | 'applications:write',
): Promise<Webhook> {
  const application = await applicationFor(context, request, params.id, action);
  const webhook = await context.storage.webhooks.get(params.webhookId);
  if (webhook === undefined || webhook.applicationId !== application.id) {
    throw notFound(`webhook ${params.webhookId}`);
  }
  noteAudit(request, { objectType: 'webhook', objectId: webhook.id });
  return webhook;
}

export function registerWebhookRoutes(api: FastifyInstance, context: ApiContext): void {
  const { storage } = context;

  api.post<{ Params: { id: string }; Body: WebhookBody }>(
    '/applications/:id/webhooks',
    {
      schema: {
        summary: 'Create a webhook (the answer shows its secret, once)',
        tags: ['webhooks'],
        body: {
          type: 'object',
          required: ['url'],
          additionalProperties: false,
          properties: {
            url: urlSchema,
            secret: secretSchema,
            headers: headersSchema,
            eventTypes: eventTypesSchema,
            enabled: { type: 'boolean' },
          },
        },
      },
    },
    async (request, reply) => {
      const application = await applicationFor(
        context,
        request,
        request.params.id,
        'applications:write',
      );
      if (context.roles.operatorBlind === true) {
        // The network role alone holds no decrypted payload and runs no webhooks.
        throw badRequest(
          "this Galet runs the network role alone: create webhooks on the provider's Galet",
        );
      }
      const { secret: given, ...rest } = request.body;
      const secret = given ?? randomBytes(32).toString('hex');
      noteAudit(request, {
        action: 'webhook.create',
        objectType: 'webhook',
        details: {
          applicationId: application.id,
          receiver: new URL(request.body.url).origin,
          headerNames: Object.keys(request.body.headers ?? {}).sort(),
          secretGenerated: given === undefined,
        },
      });
      const webhook = await storage.webhooks.create({
        applicationId: application.id,
        secret,
        ...rest,
      });
      noteAudit(request, { objectId: webhook.id });
      return reply.status(201).send({ ...webhook, secret });
    },
  );

  api.get<{ Params: { id: string } }>(
    '/applications/:id/webhooks',
    { schema: { summary: "List an application's webhooks", tags: ['webhooks'] } },
    async (request) => {
      const application = await applicationFor(
        context,
        request,
        request.params.id,
        'applications:read',
      );
      return { webhooks: await storage.webhooks.listForApplication(application.id) };
    },
  );

  api.get<{ Params: WebhookParams }>(
    '/applications/:id/webhooks/:webhookId',
    {
      schema: {
        summary: 'Get a webhook, with its last error',
        tags: ['webhooks'],
        params: webhookParams,
      },
    },
    async (request) => webhookFor(context, request, request.params, 'applications:read'),
  );

  api.patch<{ Params: WebhookParams; Body: Partial<WebhookBody> }>(
    '/applications/:id/webhooks/:webhookId',
    {
      schema: {
        summary: 'Change a webhook (headers given replace all of them)',
        tags: ['webhooks'],
        params: webhookParams,
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: {
            url: urlSchema,
            secret: secretSchema,
            headers: headersSchema,
            eventTypes: eventTypesSchema,
            enabled: { type: 'boolean' },
          },
        },
      },
    },
    async (request) => {
      const webhook = await webhookFor(context, request, request.params, 'applications:write');
      noteAudit(request, {
        action: 'webhook.update',
        details: { fields: Object.keys(request.body).sort() },
      });
      const updated = await storage.webhooks.update(webhook.id, request.body);
      if (updated === undefined) throw notFound(`webhook ${webhook.id}`);
      return updated;
    },
  );

  api.delete<{ Params: WebhookParams }>(
    '/applications/:id/webhooks/:webhookId',
    {
      schema: {
        summary: 'Delete a webhook and its deliveries',
        tags: ['webhooks'],
        params: webhookParams,
      },
    },
    async (request, reply) => {
      const webhook = await webhookFor(context, request, request.params, 'applications:write');
      noteAudit(request, { action: 'webhook.delete' });
      if (!(await storage.webhooks.delete(webhook.id))) throw notFound(`webhook ${webhook.id}`);
      return reply.status(204).send();
    },
  );

  api.get<{
    Params: WebhookParams;
    Querystring: { status?: WebhookDeliveryStatus; afterEventId?: number; limit?: number };
  }>(
    '/applications/:id/webhooks/:webhookId/deliveries',
    {
      schema: {
        summary: "A webhook's deliveries by event id, with status, attempts and last error",
        tags: ['webhooks'],
        params: webhookParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: [...WEBHOOK_DELIVERY_STATUSES] },
            afterEventId: eventIdSchema,
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
      },
    },
    async (request) => {
      const webhook = await webhookFor(context, request, request.params, 'applications:read');
      const { status, afterEventId, limit = 100 } = request.query;
      const deliveries = await storage.webhooks.listDeliveries(webhook.id, {
        limit,
        ...(status === undefined ? {} : { status }),
        ...(afterEventId === undefined ? {} : { afterEventId }),
      });
      const last = deliveries[deliveries.length - 1];
      return {
        deliveries,
        nextAfterEventId: deliveries.length === limit && last !== undefined ? last.eventId : null,
      };
    },
  );

  api.post<{
    Params: WebhookParams;
    Body: { fromEventId?: number; toEventId?: number; status?: 'dead' };
  }>(
    '/applications/:id/webhooks/:webhookId/replay',
    {
      schema: {
        summary: 'Queue deliveries again: the dead ones, or the events of an id range',
        description:
          'With status "dead": the dead-lettered deliveries (within fromEventId..toEventId if given). Without: every event of the application from fromEventId (required) to toEventId that the webhook takes, at most 10000 per call (nextFromEventId continues). Pending deliveries are left alone.',
        tags: ['webhooks'],
        params: webhookParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            fromEventId: eventIdSchema,
            toEventId: eventIdSchema,
            status: { type: 'string', enum: ['dead'] },
          },
        },
      },
    },
    async (request) => {
      const webhook = await webhookFor(context, request, request.params, 'applications:write');
      const { fromEventId, toEventId, status } = request.body ?? {};
      noteAudit(request, {
        action: 'webhook.replay',
        details: { fromEventId, toEventId, status },
      });
      return storage.webhooks.replay(webhook.id, {
        ...(fromEventId === undefined ? {} : { fromEventId }),
        ...(toEventId === undefined ? {} : { toEventId }),
        ...(status === undefined ? {} : { status }),
      });
    },
  );
}
