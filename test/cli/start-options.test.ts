import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { registerStartCommand, resolveStartOptions } from '../../src/cli/start-command.js';
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

describe('galet start settings of the application services', () => {
  // Flag (commander's attribute name), variable, config key, a valid value, where it lands.
  const settings = [
    ['--feed-poll-interval-ms', 'GALET_FEED_POLL_INTERVAL_MS', 'feedPollIntervalMs', 100],
    ['--retention-interval-ms', 'GALET_RETENTION_INTERVAL_MS', 'retentionIntervalMs', 600_000],
    ['--retention-batch-rows', 'GALET_RETENTION_BATCH_ROWS', 'retentionBatchRows', 1000],
    ['--retention-months-ahead', 'GALET_RETENTION_MONTHS_AHEAD', 'retentionMonthsAhead', 0],
    ['--stage-batch-size', 'GALET_STAGE_BATCH_SIZE', 'stageBatchSize', 500],
    ['--codec-timeout-ms', 'GALET_CODEC_TIMEOUT_MS', 'codecTimeoutMs', 250],
    ['--codec-memory-limit-mib', 'GALET_CODEC_MEMORY_LIMIT_MIB', 'codecMemoryLimitMiB', 64],
    ['--codec-cache-ttl-ms', 'GALET_CODEC_CACHE_TTL_MS', 'codecCacheTtlMs', 2000],
    ['--webhook-timeout-ms', 'GALET_WEBHOOK_TIMEOUT_MS', 'webhookTimeoutMs', 5000],
    ['--webhook-concurrency', 'GALET_WEBHOOK_CONCURRENCY', 'webhookConcurrency', 16],
    ['--webhook-retry-initial-ms', 'GALET_WEBHOOK_RETRY_INITIAL_MS', 'webhookRetryInitialMs', 2000],
    ['--webhook-retry-max-ms', 'GALET_WEBHOOK_RETRY_MAX_MS', 'webhookRetryMaxMs', 300_000],
    [
      '--webhook-dead-letter-after-ms',
      'GALET_WEBHOOK_DEAD_LETTER_AFTER_MS',
      'webhookDeadLetterAfterMs',
      3_600_000,
    ],
    [
      '--webhook-keep-delivered-ms',
      'GALET_WEBHOOK_KEEP_DELIVERED_MS',
      'webhookKeepDeliveredMs',
      86_400_000,
    ],
  ] as const;
  const expected = {
    feedPollIntervalMs: 100,
    retention: { intervalMs: 600_000, batchRows: 1000, monthsAhead: 0 },
    stage: {
      batchSize: 500,
      codecCacheTtlMs: 2000,
      codecs: { timeoutMs: 250, memoryLimitMiB: 64 },
    },
    webhooks: {
      timeoutMs: 5000,
      concurrency: 16,
      retryInitialMs: 2000,
      retryMaxMs: 300_000,
      deadLetterAfterMs: 3_600_000,
      keepDeliveredMs: 86_400_000,
    },
  };

  /** `galet start`'s options as commander registers them, by long flag. */
  function startFlags(): Map<string, string> {
    const program = new Command('galet');
    registerStartCommand(program);
    const start = program.commands.find((command) => command.name() === 'start');
    assert.ok(start !== undefined);
    return new Map(start.options.map((option) => [option.long ?? '', option.attributeName()]));
  }

  it('reads each from its flag, its variable or the config file, into the services settings', async () => {
    const flags = startFlags();
    const fromFlags: Record<string, unknown> = {};
    const fromEnv: Record<string, string> = {};
    const fromFile: Record<string, unknown> = {};
    for (const [flag, env, key, value] of settings) {
      const attribute = flags.get(flag);
      assert.ok(attribute !== undefined, `${flag} is an option of galet start`);
      fromFlags[attribute] = String(value);
      fromEnv[env] = String(value);
      fromFile[key] = value;
    }
    assert.deepEqual(resolveStartOptions(fromFlags, {}).application, expected, 'flags');
    assert.deepEqual(resolveStartOptions({}, fromEnv).application, expected, 'variables');
    const dir = await mkdtemp(join(tmpdir(), 'galet-config-'));
    try {
      const file = join(dir, 'galet.json');
      await writeFile(file, JSON.stringify(fromFile));
      assert.deepEqual(resolveStartOptions({ config: file }, {}).application, expected, 'file');
      // Flag over variable over file, per setting.
      const mixed = resolveStartOptions(
        { config: file, codecTimeoutMs: '50' },
        { GALET_CODEC_TIMEOUT_MS: '60', GALET_WEBHOOK_CONCURRENCY: '4' },
      );
      assert.equal(mixed.application?.stage?.codecs?.timeoutMs, 50);
      assert.equal(mixed.application?.webhooks?.concurrency, 4);
      assert.equal(mixed.application?.webhooks?.timeoutMs, 5000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('passes only what is set, beside the MQTT and event-stream settings', () => {
    const resolved = resolveStartOptions(
      { webhookTimeoutMs: '3000', sseMaxStreams: '5', mqttUrl: 'mqtt://127.0.0.1:1883' },
      { GALET_STAGE_BATCH_SIZE: '100' },
    );
    assert.deepEqual(resolved.application, {
      mqtt: { url: 'mqtt://127.0.0.1:1883' },
      eventStreams: { maxStreams: 5 },
      stage: { batchSize: 100 },
      webhooks: { timeoutMs: 3000 },
    });
    const keys = Object.keys(resolved);
    for (const [, , key] of settings) {
      assert.equal(keys.includes(key), false, `${key} is folded into application`);
    }
  });

  it('refuses a value out of its range, naming the flag, the variable and the config key', () => {
    assert.throws(() => resolveStartOptions({ codecTimeoutMs: '5000' }, {}), {
      message:
        '--codec-timeout-ms (GALET_CODEC_TIMEOUT_MS, config "codecTimeoutMs") must be from 1 to 1000, got 5000',
    });
    assert.throws(
      () => resolveStartOptions({}, { GALET_CODEC_MEMORY_LIMIT_MIB: '4' }),
      /--codec-memory-limit-mib .* must be from 8 to 512, got 4/,
    );
    assert.throws(
      () => resolveStartOptions({}, { GALET_STAGE_BATCH_SIZE: '0' }),
      /--stage-batch-size .* must be from 1 to 1000, got 0/,
    );
    assert.throws(
      () => resolveStartOptions({ retentionMonthsAhead: '25' }, {}),
      /must be from 0 to 24, got 25/,
    );
    assert.throws(
      () => resolveStartOptions({ webhookConcurrency: '-1' }, {}),
      /--webhook-concurrency must be an integer from 0 to/,
    );
    assert.throws(
      () => resolveStartOptions({}, { GALET_FEED_POLL_INTERVAL_MS: '1s' }),
      /GALET_FEED_POLL_INTERVAL_MS must be an integer/,
    );
    // The retry pair, each against the other's default when set alone.
    assert.throws(
      () => resolveStartOptions({ webhookRetryInitialMs: '5000', webhookRetryMaxMs: '2000' }, {}),
      {
        message: '--webhook-retry-max-ms (2000) must be at least --webhook-retry-initial-ms (5000)',
      },
    );
    assert.throws(() => resolveStartOptions({ webhookRetryInitialMs: '900000' }, {}), {
      message:
        '--webhook-retry-max-ms (600000, the default) must be at least --webhook-retry-initial-ms (900000)',
    });
    assert.equal(
      resolveStartOptions({ webhookRetryMaxMs: '1000' }, {}).application?.webhooks?.retryMaxMs,
      1000,
      'equal to the initial wait is fine',
    );
  });

  it('are documented in CONFIGURATION.md', async () => {
    const doc = await readFile(new URL('../../docs/CONFIGURATION.md', import.meta.url), 'utf8');
    for (const [flag, env, key] of settings) {
      for (const name of [flag, env, key]) {
        assert.ok(doc.includes(`\`${name}\``), `${name} is in docs/CONFIGURATION.md`);
      }
    }
  });
});
