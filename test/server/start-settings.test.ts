/** Settings of `galet start` that reach the API of a real, started Galet. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiRequest } from '../helpers/api.js';
import { removeDir, startTestGalet } from '../helpers/galet.js';

describe('galet start settings in a running Galet', () => {
  it('limits API requests per key as configured (--api-rate-limit-*)', async () => {
    const galet = await startTestGalet({ apiRateLimitPerSecond: 1, apiRateLimitBurst: 2 });
    try {
      const key = await galet.request('POST', '/api/v1/api-keys', {
        name: 'dashboard',
        role: 'operator-admin',
      });
      assert.equal(key.status, 201, JSON.stringify(key.json));
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push(
          (await apiRequest(galet.baseUrl, key.json.token, 'GET', '/api/v1/applications')).status,
        );
      }
      assert.deepEqual(statuses, [200, 200, 429]);
    } finally {
      await galet.stop();
      await removeDir(galet.dataDir);
    }
  });
});
