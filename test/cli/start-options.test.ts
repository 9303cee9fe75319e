import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import { apiRateLimit, DEFAULT_OPTIONS } from '../../src/server/galet.js';

describe('galet start settings', () => {
  it('uses the defaults when nothing is given', () => {
    assert.deepEqual(resolveStartOptions({}, {}), DEFAULT_OPTIONS);
  });

  it('takes flags over environment variables over the config file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-config-'));
    try {
      const file = join(dir, 'galet.json');
      await writeFile(
        file,
        JSON.stringify({ udpPort: 1701, httpPort: 8081, netId: '000013', dataDir: '/srv/galet' }),
      );
      const resolved = resolveStartOptions(
        { config: file, httpPort: '9000' },
        { GALET_UDP_PORT: '1702', GALET_DEDUP_WINDOW_MS: '150' },
      );
      assert.equal(resolved.httpPort, 9000, 'flag wins');
      assert.equal(resolved.udpPort, 1702, 'environment beats the file');
      assert.equal(resolved.netId, 0x13, 'file beats the default');
      assert.equal(resolved.dataDir, '/srv/galet');
      assert.equal(resolved.deduplicationWindowMs, 150);
      assert.equal(resolved.writeBehindMs, undefined, 'absent: the storage default');
      assert.equal(
        resolveStartOptions({ writeBehindMs: '60000' }, { GALET_WRITE_BEHIND_MS: '2000' })
          .writeBehindMs,
        60_000,
      );
      assert.equal(resolveStartOptions({}, { GALET_WRITE_BEHIND_MS: '2000' }).writeBehindMs, 2000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the roles, the link and the API rate limit, and refuses what cannot run', () => {
    const provider = resolveStartOptions(
      { roles: 'join,application', networkUrl: 'http://127.0.0.1:8080' },
      { GALET_NETWORK_TOKEN: 'galet_link_x', GALET_API_RATE_LIMIT_PER_SECOND: '5' },
    );
    assert.deepEqual(provider.roles, ['join', 'application']);
    assert.equal(provider.networkUrl, 'http://127.0.0.1:8080');
    assert.equal(provider.networkToken, 'galet_link_x');
    assert.equal(provider.apiRateLimitPerSecond, 5);
    assert.throws(() => resolveStartOptions({ roles: 'network,join' }, {}), /cannot run together/);
    assert.throws(() => resolveStartOptions({ roles: 'gateway' }, {}), /unknown role "gateway"/);
    assert.throws(
      () => resolveStartOptions({ networkUrl: 'ftp://x' }, {}),
      /must be an http:\/\/ or https:\/\/ URL/,
    );
    assert.deepEqual(apiRateLimit({ apiRateLimitPerSecond: 0 }), { rateLimit: false });
    assert.deepEqual(apiRateLimit({ apiRateLimitBurst: 10 }), { rateLimit: { burst: 10 } });
    assert.deepEqual(apiRateLimit({}), {});
    assert.throws(() => apiRateLimit({ apiRateLimitBurst: 0 }), /at least 1/);
  });

  it('names the setting when a value or the file is wrong', async () => {
    assert.throws(
      () => resolveStartOptions({ udpPort: '70000' }, {}),
      /--udp-port must be an integer from 0 to 65535/,
    );
    assert.throws(
      () => resolveStartOptions({}, { GALET_NET_ID: 'xyz' }),
      /GALET_NET_ID must be 6 hex digits/,
    );
    assert.throws(
      () => resolveStartOptions({}, { GALET_ALLOW_UNKNOWN_GATEWAYS: 'maybe' }),
      /must be true or false/,
    );
    assert.throws(
      () => resolveStartOptions({ config: '/nonexistent/galet.json' }, {}),
      /cannot read config file/,
    );
    const dir = await mkdtemp(join(tmpdir(), 'galet-config-'));
    try {
      const file = join(dir, 'bad.json');
      await writeFile(file, JSON.stringify({ udpPrt: 1 }));
      assert.throws(() => resolveStartOptions({ config: file }, {}), /unknown setting "udpPrt"/);
      await writeFile(file, '{oops');
      assert.throws(() => resolveStartOptions({ config: file }, {}), /is not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
