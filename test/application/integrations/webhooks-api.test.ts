// The webhooks API on a real (in-memory SQLite) API: CRUD, the secret shown once, header values
// never shown, tenant scoping (another tenant's application or webhook is 404), roles,
// validation, deliveries, replay, audit entries and the OpenAPI document.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { webhookEnqueuer } from '../../../src/application/integrations/webhooks/dispatcher.js';
import { startPlatformApi } from '../../api/platform-helpers.js';
import { startTenancy, type Tenancy } from '../../api/tenancy-helpers.js';

const HEADER_VALUE = 'Bearer receiver-credential-42';

describe('webhooks API', () => {
  let tenancy: Tenancy;
  let hooks: (applicationId: string) => string;

  before(async () => {
    tenancy = await startTenancy();
    hooks = (applicationId) => `/api/v1/applications/${applicationId}/webhooks`;
  });

  after(async () => {
    await tenancy.api.close();
  });

  const as = (token: string, method: string, url: string, body?: unknown) =>
    tenancy.api.request(method, url, { token, body });

  it('creates a webhook with a generated secret shown once, and never shows it again', async () => {
    const { A } = tenancy;
    const created = await as(tenancy.tokens.owner, 'POST', hooks(A.applicationId), {
      url: 'http://127.0.0.1:8099/hook',
      headers: { Authorization: HEADER_VALUE },
      eventTypes: ['up'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.match(created.json.secret, /^[0-9a-f]{64}$/);
    assert.equal(created.json.applicationId, A.applicationId);
    assert.deepEqual(created.json.headerNames, ['authorization']);
    assert.equal(created.json.enabled, true);
    assert.equal(created.json.lastError, null);
    assert.equal(JSON.stringify(created.json).includes(HEADER_VALUE), false);
    const id = created.json.id as string;

    const got = await as(tenancy.tokens.viewer, 'GET', `${hooks(A.applicationId)}/${id}`);
    assert.equal(got.status, 200);
    assert.equal('secret' in got.json, false);
    const listed = await as(tenancy.tokens.viewer, 'GET', hooks(A.applicationId));
    assert.deepEqual(
      listed.json.webhooks.map((w: { id: string }) => w.id),
      [id],
    );
    for (const text of [JSON.stringify(got.json), JSON.stringify(listed.json)]) {
      assert.equal(text.includes(created.json.secret), false);
      assert.equal(text.includes(HEADER_VALUE), false);
    }
    // The secret opens for the sender only, and a given one is not echoed.
    assert.equal((await tenancy.api.storage.webhooks.credentials(id))?.secret, created.json.secret);
    const given = await as(tenancy.tokens.admin, 'POST', hooks(A.applicationId), {
      url: 'https://hooks.example.org/galet',
      secret: 'my-own-secret-0123456789',
    });
    assert.equal(given.status, 201);
    assert.equal(given.json.secret, 'my-own-secret-0123456789');

    // The audit trail names the webhook, never its secret or header values.
    const entries = await tenancy.api.storage.auditLog.list({ action: 'webhook.create' });
    const entry = entries.find((e) => e.objectId === id);
    assert.equal(entry?.tenantId, A.tenantId);
    assert.equal(entry?.outcome, 'success');
    const details = JSON.stringify(entries);
    assert.equal(details.includes(created.json.secret), false);
    assert.equal(details.includes('my-own-secret-0123456789'), false);
    assert.equal(details.includes(HEADER_VALUE), false);
  });

  it('updates and deletes a webhook; headers given replace all of them', async () => {
    const { A } = tenancy;
    const id = (
      await tenancy.admin('POST', hooks(A.applicationId), {
        url: 'https://hooks.example.org/a',
        headers: { 'X-One': '1', 'X-Two': '2' },
      })
    ).id;
    const patched = await as(tenancy.tokens.admin, 'PATCH', `${hooks(A.applicationId)}/${id}`, {
      url: 'https://hooks.example.org/b',
      enabled: false,
      headers: { 'X-Three': '3' },
      secret: 'rotated-secret-0123456789',
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    assert.equal(patched.json.url, 'https://hooks.example.org/b');
    assert.equal(patched.json.enabled, false);
    assert.deepEqual(patched.json.headerNames, ['x-three']);
    assert.equal('secret' in patched.json, false);
    assert.deepEqual(await tenancy.api.storage.webhooks.credentials(id), {
      secret: 'rotated-secret-0123456789',
      headers: { 'x-three': '3' },
    });
    const audit = await tenancy.api.storage.auditLog.list({ action: 'webhook.update' });
    assert.equal(JSON.stringify(audit).includes('rotated-secret'), false);
    assert.equal(
      (await as(tenancy.tokens.owner, 'DELETE', `${hooks(A.applicationId)}/${id}`)).status,
      204,
    );
    assert.equal(
      (await as(tenancy.tokens.owner, 'GET', `${hooks(A.applicationId)}/${id}`)).status,
      404,
    );
  });

  it("answers 404 for another tenant's application or webhook, 403 for a role that may not write", async () => {
    const { A, B } = tenancy;
    const ofB = (
      await tenancy.admin('POST', hooks(B.applicationId), { url: 'https://hooks.example.org/b' })
    ).id;
    const body = { url: 'https://hooks.example.org/x' };
    for (const [method, url, payload] of [
      ['GET', hooks(B.applicationId)],
      ['POST', hooks(B.applicationId), body],
      ['GET', `${hooks(B.applicationId)}/${ofB}`],
      ['PATCH', `${hooks(B.applicationId)}/${ofB}`, { enabled: false }],
      ['DELETE', `${hooks(B.applicationId)}/${ofB}`],
      ['GET', `${hooks(B.applicationId)}/${ofB}/deliveries`],
      ['POST', `${hooks(B.applicationId)}/${ofB}/replay`, { status: 'dead' }],
      // B's webhook through A's application.
      ['GET', `${hooks(A.applicationId)}/${ofB}`],
      ['DELETE', `${hooks(A.applicationId)}/${ofB}`],
    ] as const) {
      const answer = await as(tenancy.tokens.owner, method, url, payload);
      assert.equal(answer.status, 404, `${method} ${url}: ${JSON.stringify(answer.json)}`);
    }
    assert.equal((await tenancy.api.storage.webhooks.get(ofB))?.enabled, true, 'B untouched');
    for (const role of ['viewer', 'operator', 'integration', 'read-only'] as const) {
      const answer = await as(tenancy.tokens[role], 'POST', hooks(A.applicationId), body);
      assert.equal(answer.status, 403, `${role}: ${JSON.stringify(answer.json)}`);
    }
  });

  it('refuses bad urls, reserved headers and unknown fields with 400', async () => {
    const { A } = tenancy;
    for (const body of [
      { url: 'ftp://hooks.example.org/x' },
      { url: 'https://user:password@hooks.example.org/x' },
      { url: 'https://hooks.example.org/x', headers: { 'X-Galet-Signature': 'forged' } },
      { url: 'https://hooks.example.org/x', secret: 'short' },
      { url: 'https://hooks.example.org/x', eventTypes: ['UP'] },
      { url: 'https://hooks.example.org/x', colour: 'blue' },
      {},
    ]) {
      const answer = await as(tenancy.tokens.owner, 'POST', hooks(A.applicationId), body);
      assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(answer.json)}`);
      assert.equal(typeof answer.json.message, 'string');
    }
  });

  it('lists deliveries by status and replays dead ones or a range of events', async () => {
    const { A } = tenancy;
    const id = (
      await tenancy.admin('POST', hooks(A.applicationId), { url: 'https://hooks.example.org/r' })
    ).id;
    const storage = tenancy.api.storage;
    const eventIds: number[] = [];
    for (let fCnt = 0; fCnt < 3; fCnt++) {
      eventIds.push(
        await storage.events.append({
          devEui: A.devEui,
          applicationId: A.applicationId,
          type: 'up',
          time: '2026-03-01T09:00:00.000Z',
          body: { fCnt },
        }),
      );
    }
    await webhookEnqueuer(storage.webhooks)(await storage.events.listAfter(eventIds[0]! - 1));
    await storage.webhooks.markDead(
      { webhookId: id, eventId: eventIds[0]! },
      { error: 'HTTP 500' },
    );
    await storage.webhooks.markDelivered({ webhookId: id, eventId: eventIds[1]! }, 200);
    const url = `${hooks(A.applicationId)}/${id}`;
    const dead = await as(tenancy.tokens.viewer, 'GET', `${url}/deliveries?status=dead`);
    assert.equal(dead.status, 200);
    assert.deepEqual(
      dead.json.deliveries.map((d: { eventId: number; lastError: string }) => [
        d.eventId,
        d.lastError,
      ]),
      [[eventIds[0], 'HTTP 500']],
    );
    const page = await as(tenancy.tokens.viewer, 'GET', `${url}/deliveries?limit=2`);
    assert.equal(page.json.nextAfterEventId, eventIds[1]);
    assert.equal(
      (await as(tenancy.tokens.viewer, 'GET', `${url}/deliveries?status=lost`)).status,
      400,
    );
    assert.equal(
      (await as(tenancy.tokens.viewer, 'POST', `${url}/replay`, { status: 'dead' })).status,
      403,
    );

    const replayDead = await as(tenancy.tokens.admin, 'POST', `${url}/replay`, { status: 'dead' });
    assert.deepEqual(replayDead.json, { requeued: 1, nextFromEventId: null });
    const range = await as(tenancy.tokens.admin, 'POST', `${url}/replay`, {
      fromEventId: eventIds[1],
      toEventId: eventIds[1],
    });
    assert.deepEqual(range.json, { requeued: 1, nextFromEventId: null });
    const pending = await as(tenancy.tokens.viewer, 'GET', `${url}/deliveries?status=pending`);
    assert.deepEqual(
      pending.json.deliveries.map((d: { eventId: number }) => d.eventId),
      eventIds,
    );
    assert.equal((await as(tenancy.tokens.admin, 'POST', `${url}/replay`, {})).status, 400);
    const audit = await storage.auditLog.list({ action: 'webhook.replay' });
    assert.equal(audit.length, 3);
    assert.equal(
      audit.every((entry) => entry.objectId === id && entry.tenantId === A.tenantId),
      true,
    );
  });

  it('documents the routes in the OpenAPI document', async () => {
    const document = await tenancy.api.request('GET', '/api/v1/openapi.json', { token: null });
    const paths = Object.keys(document.json.paths);
    for (const path of [
      '/api/v1/applications/{id}/webhooks',
      '/api/v1/applications/{id}/webhooks/{webhookId}',
      '/api/v1/applications/{id}/webhooks/{webhookId}/deliveries',
      '/api/v1/applications/{id}/webhooks/{webhookId}/replay',
    ]) {
      assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`);
    }
  });
});

describe('webhooks API on the network role alone', () => {
  it('refuses to create a webhook: the provider runs them', async (t) => {
    const api = await startPlatformApi({ roles: { operatorBlind: true }, rateLimit: false });
    t.after(() => api.close());
    const application = await api.request('POST', '/api/v1/applications', { body: { name: 'x' } });
    const answer = await api.request(
      'POST',
      `/api/v1/applications/${application.json.id}/webhooks`,
      {
        body: { url: 'https://hooks.example.org/x' },
      },
    );
    assert.equal(answer.status, 400);
    assert.match(answer.json.message, /provider/);
  });
});
