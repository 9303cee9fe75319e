import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type PlatformApi, startPlatformApi } from './platform-helpers.js';
import { quietNetwork } from './tenancy-helpers.js';

describe('API rate limit per credential', () => {
  let api: PlatformApi;
  let tenantId: string;
  let tokenA: string;
  let tokenB: string;

  before(async () => {
    api = await startPlatformApi({
      network: quietNetwork(),
      rateLimit: { burst: 3, perSecond: 0.5 },
    });
    tenantId = (await api.request('POST', '/api/v1/tenants', { body: { name: 'Roanne' } })).json.id;
    const key = async (name: string) =>
      (
        await api.request('POST', '/api/v1/api-keys', {
          body: { name, tenantId, role: 'viewer' },
        })
      ).json.token;
    tokenA = await key('a');
    tokenB = await key('b');
  });

  after(async () => {
    await api.close();
  });

  it('answers 429 with Retry-After once a key used its burst, each key on its own', async () => {
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await api.request('GET', '/api/v1/devices', { token: tokenA })).status, 200);
    }
    const refused = await api.request('GET', '/api/v1/devices', { token: tokenA });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '2');
    assert.deepEqual(refused.json, {
      error: 'TOO_MANY_REQUESTS',
      message: 'too many requests with this credential: try again in 2 s',
      details: { burst: 3, perSecond: 0.5, retryAfterSeconds: 2 },
    });
    assert.equal((await api.request('GET', '/api/v1/devices', { token: tokenB })).status, 200);
    // The admin token is not limited unless asked.
    for (let i = 0; i < 10; i += 1) {
      assert.equal((await api.request('GET', '/api/v1/tenants')).status, 200);
    }
    api.clock.advance(2000);
    assert.equal((await api.request('GET', '/api/v1/devices', { token: tokenA })).status, 200);
    assert.equal((await api.request('GET', '/api/v1/devices', { token: tokenA })).status, 429);
  });

  it('records a refused write in the audit log', async () => {
    api.clock.advance(60_000);
    for (let i = 0; i < 3; i += 1) await api.request('GET', '/api/v1/tenants', { token: tokenB });
    const refused = await api.request('POST', '/api/v1/applications', {
      token: tokenB,
      body: { name: 'x' },
    });
    assert.equal(refused.status, 429);
    const entry = (await api.request('GET', '/api/v1/audit?limit=1')).json.entries[0];
    assert.equal(entry.action, 'application.create');
    assert.equal(entry.outcome, 'failure');
    assert.equal(entry.details.error, 'TOO_MANY_REQUESTS');
  });
});
