import type { FastifyInstance, RouteOptions } from 'fastify';

/**
 * The OpenAPI 3.1 document of the API, generated from the routes as they are registered: their
 * paths, methods and the JSON schemas Fastify validates their querystring and body with (the
 * same objects, so the document cannot drift from the validation). OpenAPI 3.1 takes JSON
 * Schema as it is (`type: ['integer', 'null']`, `const`), so the schemas are copied unchanged.
 *
 * Routes may add `summary`, `description`, `tags` and `consumes` to their schema (Fastify
 * ignores keys it does not know); the first path segment is the default tag.
 */

declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
    description?: string;
    tags?: readonly string[];
    /** Request body media types besides application/json (e.g. text/csv). */
    consumes?: readonly string[];
  }
}

export interface RegisteredRoute {
  method: string;
  /** The Fastify path, `/api/v1/devices/:devEui`. */
  url: string;
  schema: RouteOptions['schema'];
  /** Needs no credential (health, login, this document). */
  public: boolean;
}

/**
 * Collects every route registered after this call (an `onRoute` hook on the root instance, so
 * it sees the routes of every plugin). HEAD routes Fastify adds for GETs are left out.
 */
export function collectRoutes(
  app: FastifyInstance,
  isPublic: (url: string) => boolean,
): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || route.url === '*') continue;
      routes.push({ method, url: route.url, schema: route.schema, public: isPublic(route.url) });
    }
  });
  return routes;
}

const ERROR_STATUSES: Record<string, string> = {
  '400': 'Invalid input: `details` lists the failing fields when the schema refused it',
  '401': 'No credential, or one that is unknown, expired or revoked',
  '403': 'The credential may see the object but not do this',
  '404': 'No such object, or one of a tenant the credential cannot see',
  '409': 'Conflicts with the current state (exists already, still referenced, quota exceeded)',
  '429': 'Too many requests for this credential: wait for Retry-After seconds',
};

const SUCCESS: Record<string, [string, string]> = {
  GET: ['200', 'OK'],
  POST: ['201', 'Created (or done: 200, 202 or 204 for actions)'],
  PUT: ['200', 'OK'],
  PATCH: ['200', 'OK'],
  DELETE: ['204', 'Deleted'],
};

/** The document for these routes. */
export function openApiDocument(
  routes: readonly RegisteredRoute[],
  info: { title: string; version: string; description?: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const operationIds = new Set<string>();
  const sorted = [...routes].sort((a, b) =>
    a.url === b.url ? a.method.localeCompare(b.method) : a.url.localeCompare(b.url),
  );
  for (const route of sorted) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const schema = (route.schema ?? {}) as Record<string, unknown> & {
      querystring?: { properties?: Record<string, unknown>; required?: string[] };
      params?: { properties?: Record<string, unknown> };
      body?: unknown;
      consumes?: readonly string[];
      response?: Record<string, unknown>;
    };
    const parameters: Record<string, unknown>[] = [];
    for (const name of pathParameters(route.url)) {
      parameters.push({
        name,
        in: 'path',
        required: true,
        schema: schema.params?.properties?.[name] ?? { type: 'string' },
      });
    }
    const query = schema.querystring;
    for (const [name, property] of Object.entries(query?.properties ?? {})) {
      parameters.push({
        name,
        in: 'query',
        required: query?.required?.includes(name) ?? false,
        schema: property,
      });
    }
    const [okStatus, okDescription] = SUCCESS[route.method] ?? ['200', 'OK'];
    const responses: Record<string, unknown> = {};
    if (schema.response !== undefined) {
      for (const [status, body] of Object.entries(schema.response)) {
        responses[status] = {
          description: status.startsWith('2') ? okDescription : (ERROR_STATUSES[status] ?? 'Error'),
          content: { 'application/json': { schema: body } },
        };
      }
    } else {
      responses[okStatus] =
        okStatus === '204'
          ? { description: okDescription }
          : { description: okDescription, content: { 'application/json': { schema: {} } } };
    }
    for (const [status, description] of Object.entries(ERROR_STATUSES)) {
      if (route.public && (status === '401' || status === '403')) continue;
      responses[status] ??= {
        description,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    const segments = route.url.replace(/^\/api\/v1\/?/, '').split('/');
    const operationId = uniqueId(operationIds, route.method, segments);
    const operation: Record<string, unknown> = {
      operationId,
      summary:
        typeof schema['summary'] === 'string' ? schema['summary'] : `${route.method} ${path}`,
      tags: (schema['tags'] as string[] | undefined) ?? [segments[0] || 'api'],
      ...(typeof schema['description'] === 'string' ? { description: schema['description'] } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      responses,
      ...(route.public ? { security: [] } : {}),
    };
    const perType = (schema.body as { content?: Record<string, unknown> } | undefined)?.content;
    if (perType !== undefined) {
      // Fastify's per-media-type body schemas are already OpenAPI's shape.
      operation['requestBody'] = { required: true, content: perType };
    } else if (schema.body !== undefined) {
      const content: Record<string, unknown> = { 'application/json': { schema: schema.body } };
      for (const type of schema.consumes ?? []) {
        if (type !== 'application/json') content[type] = { schema: { type: 'string' } };
      }
      operation['requestBody'] = { required: true, content };
    }
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: { type: 'string', description: 'A code: BAD_REQUEST, NOT_FOUND, ...' },
            message: { type: 'string', description: 'What is wrong, for a person' },
            details: { description: 'More about it: failing fields, a report, a quota' },
          },
        },
      },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'The admin token, an API key (galet_key_...) or a session token',
        },
        session: { type: 'apiKey', in: 'cookie', name: 'galet_session' },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
  };
}

function pathParameters(url: string): string[] {
  return [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1] as string);
}

/** `listDevices`, `getDevice`, `createDeviceQueue`...: from the method and the path. */
function uniqueId(taken: Set<string>, method: string, segments: string[]): string {
  const words = segments
    .filter((segment) => segment !== '' && !segment.startsWith(':'))
    .flatMap((segment) => segment.split(/[^A-Za-z0-9]+/))
    .filter((word) => word !== '');
  const last = segments.at(-1) ?? '';
  const verb =
    method === 'GET'
      ? last.startsWith(':') || words.length === 0
        ? 'get'
        : 'list'
      : ({ POST: 'post', PUT: 'put', PATCH: 'update', DELETE: 'delete' }[method] ?? 'call');
  const base = verb + words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join('');
  let id = base;
  for (let n = 2; taken.has(id); n += 1) id = `${base}${n}`;
  taken.add(id);
  return id;
}
