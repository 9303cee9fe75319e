import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { type PlatformApi, startPlatformApi } from './platform-helpers.js';
import { quietNetwork } from './tenancy-helpers.js';

/**
 * The OpenAPI document at /api/v1/openapi.json: valid OpenAPI 3.1 in its structure, generated
 * from the schemas the routes validate with, and listing every route Fastify has registered
 * (read from Fastify's own route tree, not from the generator's list).
 */

// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON
type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Every `METHOD /path` in Fastify's route tree (`printRoutes`), HEAD left out. */
function registeredRoutes(tree: string): Set<string> {
  const routes = new Set<string>();
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[└├]── (.*)$/u.exec(line);
    if (match === null) continue;
    const depth = (match[1] as string).length / 4;
    const node = match[2] as string;
    const methods = /^(.*?) \(([A-Z, ]+)\)$/.exec(node);
    const segment = methods === null ? node : (methods[1] as string);
    stack.length = depth;
    stack[depth] = `${depth === 0 ? '' : stack[depth - 1]}${segment}`;
    if (methods === null) continue;
    for (const method of (methods[2] as string).split(', ')) {
      if (method !== 'HEAD') routes.add(`${method} ${stack[depth]}`);
    }
  }
  return routes;
}

describe('OpenAPI document', () => {
  let api: PlatformApi;
  let document: Json;

  before(async () => {
    api = await startPlatformApi({ network: quietNetwork(), metrics: new Registry() });
    const answer = await api.request('GET', '/api/v1/openapi.json', { token: null });
    assert.equal(answer.status, 200, 'served without a credential');
    document = answer.json;
  });

  after(async () => {
    await api.close();
  });

  it('is an OpenAPI 3.1 document in its structure', () => {
    assert.match(document.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof document.info.title, 'string');
    assert.equal(typeof document.info.version, 'string');
    assert.equal(typeof document.paths, 'object');
    assert.equal(document.components.securitySchemes.bearer.scheme, 'bearer');
    for (const requirement of document.security) {
      for (const name of Object.keys(requirement)) {
        assert.ok(document.components.securitySchemes[name], `security scheme ${name}`);
      }
    }
    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries<Json>(document.paths)) {
      assert.match(path, /^\/api\/v1\//);
      assert.doesNotMatch(path, /:/, `${path}: path parameters are written {name}`);
      const placeholders = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, operation] of Object.entries<Json>(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(METHODS.includes(method), `${where}: a method`);
        assert.equal(typeof operation.operationId, 'string', where);
        assert.ok(!operationIds.has(operation.operationId), `${where}: operationId unique`);
        operationIds.add(operation.operationId);
        assert.equal(typeof operation.summary, 'string', where);
        const statuses = Object.keys(operation.responses);
        assert.ok(
          statuses.some((status) => /^2\d\d$/.test(status)),
          `${where}: a 2xx response`,
        );
        for (const status of statuses) {
          assert.match(status, /^[1-5]\d\d$/, where);
          assert.equal(typeof operation.responses[status].description, 'string', where);
        }
        const parameters: Json[] = operation.parameters ?? [];
        const pathParameters = parameters.filter((p) => p.in === 'path').map((p) => p.name);
        assert.deepEqual(pathParameters.sort(), [...placeholders].sort(), `${where}: path params`);
        const seen = new Set<string>();
        for (const parameter of parameters) {
          assert.ok(['path', 'query'].includes(parameter.in), where);
          assert.ok(!seen.has(`${parameter.in}:${parameter.name}`), `${where}: ${parameter.name}`);
          seen.add(`${parameter.in}:${parameter.name}`);
          assert.equal(typeof parameter.schema, 'object', `${where}: ${parameter.name}`);
          if (parameter.in === 'path') assert.equal(parameter.required, true, where);
        }
        if (operation.requestBody !== undefined) {
          const types = Object.keys(operation.requestBody.content);
          assert.ok(types.length > 0, `${where}: a body media type`);
          for (const type of types) {
            assert.match(type, /^[a-z]+\/[a-z0-9.+-]+$/, where);
            assert.equal(typeof operation.requestBody.content[type].schema, 'object', where);
          }
        }
      }
    }
    // Every $ref points at something in the document.
    const refs: string[] = [];
    const walk = (value: Json) => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value !== null && typeof value === 'object') {
        for (const [key, child] of Object.entries<Json>(value)) {
          if (key === '$ref') refs.push(child);
          else walk(child);
        }
      }
    };
    walk(document);
    assert.ok(refs.length > 0, 'the error schema is referenced');
    for (const ref of refs) {
      const target = (ref as string)
        .replace(/^#\//, '')
        .split('/')
        .reduce((node: Json, key) => node?.[key], document);
      assert.ok(target !== undefined, `${ref} resolves`);
    }
  });

  it('lists every route Fastify registered, and only those', () => {
    // The web console's pages (/, /console/...) are no part of the API.
    const registered = new Set(
      [...registeredRoutes(api.app.printRoutes({ commonPrefix: false }))].filter((route) =>
        route.includes(' /api/v1/'),
      ),
    );
    assert.ok(registered.size > 40, `parsed ${registered.size} routes from the route tree`);
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<Json>(document.paths)) {
      for (const method of Object.keys(item)) {
        documented.add(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
      }
    }
    assert.deepEqual([...documented].sort(), [...registered].sort());
    for (const route of [
      'GET /api/v1/devices',
      'POST /api/v1/devices/import',
      'GET /api/v1/devices/export',
      'POST /api/v1/devices/:devEui/move',
      'GET /api/v1/metrics',
      'GET /api/v1/openapi.json',
    ]) {
      assert.ok(documented.has(route), route);
    }
  });

  it('describes the inputs with the schemas the routes validate with', async () => {
    const listDevices = document.paths['/api/v1/devices'].get;
    const sort = listDevices.parameters.find((p: Json) => p.name === 'sort');
    assert.ok(sort.schema.enum.includes('-name'), 'descending sorts');
    const limit = listDevices.parameters.find((p: Json) => p.name === 'limit');
    assert.deepEqual(limit.schema, { type: 'integer', minimum: 1, maximum: 1000 });
    // The document says limit 1000 at most; the route refuses 1001 by the same schema.
    assert.equal((await api.request('GET', '/api/v1/devices?limit=1001')).status, 400);

    const createDevice = document.paths['/api/v1/devices'].post;
    const body = createDevice.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required, ['devEui', 'name', 'applicationId', 'macVersion']);
    assert.equal(body.properties.devEui.pattern, '^[0-9a-fA-F]{16}$');
    assert.equal(body.additionalProperties, false);

    const importDevices = document.paths['/api/v1/devices/import'].post;
    assert.deepEqual(Object.keys(importDevices.requestBody.content).sort(), [
      'application/json',
      'text/csv',
    ]);
    const health = document.paths['/api/v1/health'].get;
    assert.deepEqual(health.security, [], 'public');
    assert.equal(health.responses['401'], undefined);
    assert.equal(
      listDevices.responses['401'].content['application/json'].schema.$ref,
      '#/components/schemas/Error',
    );
  });
});
