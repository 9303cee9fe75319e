import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { EventStreamLimits } from '../api/routes/event-streams.js';
import {
  brokerUrl,
  type MqttSettings,
  mqttClientOptions,
} from '../application/integrations/mqtt/settings.js';
import { resolveWebhookSettings } from '../application/integrations/webhooks/settings.js';
import {
  BACKEND_INTERFACES_PATH,
  type JoinEndpointSetting,
  parseJoinEndpointSetting,
} from '../join/join-endpoint.js';
import { type JoinServerSetting, parseJoinServerSettings } from '../join/join-server-directory.js';
import { createLogger } from '../logger.js';
import {
  type OidcSettings,
  type OidcTokenEndpointAuth,
  parseProvisioningRules,
  resolveOidcSettings,
} from '../platform/oidc-settings.js';
import type { ApplicationServiceSettings } from '../server/application-services.js';
import type { AdminToken } from '../server/data-dir.js';
import {
  DEFAULT_OPTIONS,
  GALET_ROLES,
  type GaletOptions,
  type GaletRole,
  roleSetup,
  startGalet,
} from '../server/galet.js';
import { startProvider } from '../server/start-provider.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

/** Settings `galet start` takes, with the flag, environment variable and config-file key of each. */
const SETTINGS = [
  { key: 'dataDir', flag: 'dataDir', env: 'GALET_DATA_DIR', kind: 'string' },
  { key: 'databaseUrl', flag: 'databaseUrl', env: 'GALET_DATABASE_URL', kind: 'string' },
  { key: 'host', flag: 'host', env: 'GALET_HOST', kind: 'string' },
  { key: 'udpPort', flag: 'udpPort', env: 'GALET_UDP_PORT', kind: 'port' },
  { key: 'httpPort', flag: 'httpPort', env: 'GALET_HTTP_PORT', kind: 'port' },
  { key: 'region', flag: 'region', env: 'GALET_REGION', kind: 'string' },
  { key: 'netId', flag: 'netId', env: 'GALET_NET_ID', kind: 'netId' },
  { key: 'deduplicationWindowMs', flag: 'dedupWindowMs', env: 'GALET_DEDUP_WINDOW_MS', kind: 'ms' },
  {
    key: 'allowUnknownGateways',
    flag: 'allowUnknownGateways',
    env: 'GALET_ALLOW_UNKNOWN_GATEWAYS',
    kind: 'boolean',
  },
  { key: 'workerThreads', flag: 'workerThreads', env: 'GALET_WORKER_THREADS', kind: 'boolean' },
  { key: 'framePrecheck', flag: 'framePrecheck', env: 'GALET_FRAME_PRECHECK', kind: 'boolean' },
  {
    key: 'sqliteWriterThread',
    flag: 'sqliteWriterThread',
    env: 'GALET_SQLITE_WRITER_THREAD',
    kind: 'boolean',
  },
  {
    key: 'sqliteCheckpointThread',
    flag: 'sqliteCheckpointThread',
    env: 'GALET_SQLITE_CHECKPOINT_THREAD',
    kind: 'boolean',
  },
  { key: 'writeBehindMs', flag: 'writeBehindMs', env: 'GALET_WRITE_BEHIND_MS', kind: 'ms' },
  { key: 'roles', flag: 'roles', env: 'GALET_ROLES', kind: 'roles' },
  {
    key: 'apiRateLimitPerSecond',
    flag: 'apiRateLimitPerSecond',
    env: 'GALET_API_RATE_LIMIT_PER_SECOND',
    kind: 'count',
  },
  {
    key: 'apiRateLimitBurst',
    flag: 'apiRateLimitBurst',
    env: 'GALET_API_RATE_LIMIT_BURST',
    kind: 'count',
  },
  { key: 'networkUrl', flag: 'networkUrl', env: 'GALET_NETWORK_URL', kind: 'url' },
  { key: 'networkToken', flag: 'networkToken', env: 'GALET_NETWORK_TOKEN', kind: 'string' },
  // --- MQTT integration (issue 7); folded into `application.mqtt` by mqttSettings() ---
  { key: 'mqttUrl', flag: 'mqttUrl', env: 'GALET_MQTT_URL', kind: 'string' },
  { key: 'mqttUsername', flag: 'mqttUsername', env: 'GALET_MQTT_USERNAME', kind: 'string' },
  {
    key: 'mqttPasswordFile',
    flag: 'mqttPasswordFile',
    env: 'GALET_MQTT_PASSWORD_FILE',
    kind: 'string',
  },
  { key: 'mqttClientId', flag: 'mqttClientId', env: 'GALET_MQTT_CLIENT_ID', kind: 'string' },
  {
    key: 'mqttTopicPrefix',
    flag: 'mqttTopicPrefix',
    env: 'GALET_MQTT_TOPIC_PREFIX',
    kind: 'string',
  },
  { key: 'mqttCa', flag: 'mqttCa', env: 'GALET_MQTT_CA', kind: 'string' },
  { key: 'mqttCert', flag: 'mqttCert', env: 'GALET_MQTT_CERT', kind: 'string' },
  { key: 'mqttKey', flag: 'mqttKey', env: 'GALET_MQTT_KEY', kind: 'string' },
  // --- end MQTT integration ---
  // --- Server-sent event streams (issue 7); folded into `application.eventStreams` ---
  { key: 'sseMaxStreams', flag: 'sseMaxStreams', env: 'GALET_SSE_MAX_STREAMS', kind: 'count' },
  {
    key: 'sseMaxStreamsPerCredential',
    flag: 'sseMaxStreamsPerCredential',
    env: 'GALET_SSE_MAX_STREAMS_PER_CREDENTIAL',
    kind: 'count',
  },
  { key: 'sseKeepAliveMs', flag: 'sseKeepAliveMs', env: 'GALET_SSE_KEEP_ALIVE_MS', kind: 'ms' },
  // --- end server-sent event streams ---
  // --- Application services (issue 7); folded into `application` by applicationServiceSettings() ---
  {
    key: 'feedPollIntervalMs',
    flag: 'feedPollIntervalMs',
    env: 'GALET_FEED_POLL_INTERVAL_MS',
    kind: 'ms',
  },
  {
    key: 'retentionIntervalMs',
    flag: 'retentionIntervalMs',
    env: 'GALET_RETENTION_INTERVAL_MS',
    kind: 'ms',
  },
  {
    key: 'retentionBatchRows',
    flag: 'retentionBatchRows',
    env: 'GALET_RETENTION_BATCH_ROWS',
    kind: 'count',
  },
  {
    key: 'retentionMonthsAhead',
    flag: 'retentionMonthsAhead',
    env: 'GALET_RETENTION_MONTHS_AHEAD',
    kind: 'count',
  },
  { key: 'stageBatchSize', flag: 'stageBatchSize', env: 'GALET_STAGE_BATCH_SIZE', kind: 'count' },
  { key: 'codecTimeoutMs', flag: 'codecTimeoutMs', env: 'GALET_CODEC_TIMEOUT_MS', kind: 'ms' },
  {
    key: 'codecMemoryLimitMiB',
    // commander turns --codec-memory-limit-mib into codecMemoryLimitMib
    flag: 'codecMemoryLimitMib',
    env: 'GALET_CODEC_MEMORY_LIMIT_MIB',
    kind: 'count',
  },
  { key: 'codecCacheTtlMs', flag: 'codecCacheTtlMs', env: 'GALET_CODEC_CACHE_TTL_MS', kind: 'ms' },
  {
    key: 'webhookTimeoutMs',
    flag: 'webhookTimeoutMs',
    env: 'GALET_WEBHOOK_TIMEOUT_MS',
    kind: 'ms',
  },
  {
    key: 'webhookConcurrency',
    flag: 'webhookConcurrency',
    env: 'GALET_WEBHOOK_CONCURRENCY',
    kind: 'count',
  },
  {
    key: 'webhookRetryInitialMs',
    flag: 'webhookRetryInitialMs',
    env: 'GALET_WEBHOOK_RETRY_INITIAL_MS',
    kind: 'ms',
  },
  {
    key: 'webhookRetryMaxMs',
    flag: 'webhookRetryMaxMs',
    env: 'GALET_WEBHOOK_RETRY_MAX_MS',
    kind: 'ms',
  },
  {
    key: 'webhookDeadLetterAfterMs',
    flag: 'webhookDeadLetterAfterMs',
    env: 'GALET_WEBHOOK_DEAD_LETTER_AFTER_MS',
    kind: 'ms',
  },
  {
    key: 'webhookKeepDeliveredMs',
    flag: 'webhookKeepDeliveredMs',
    env: 'GALET_WEBHOOK_KEEP_DELIVERED_MS',
    kind: 'ms',
  },
  // --- end application services ---
  // --- join servers by JoinEUI (issue 5): JSON text in the flag and variable, an array in the file ---
  { key: 'joinServers', flag: 'joinServers', env: 'GALET_JOIN_SERVERS', kind: 'joinServers' },
  // --- end join servers ---
  // --- Backend Interfaces endpoint of the join role (issue 5): JSON, an object in the file ---
  { key: 'joinEndpoint', flag: 'joinEndpoint', env: 'GALET_JOIN_ENDPOINT', kind: 'joinEndpoint' },
  // --- end Backend Interfaces endpoint ---
  // --- OIDC login (issue 6); folded into `oidc` by oidcSettings(); the secret never in a flag ---
  { key: 'oidcIssuer', flag: 'oidcIssuer', env: 'GALET_OIDC_ISSUER', kind: 'url' },
  { key: 'oidcClientId', flag: 'oidcClientId', env: 'GALET_OIDC_CLIENT_ID', kind: 'string' },
  {
    key: 'oidcClientSecretFile',
    flag: 'oidcClientSecretFile',
    env: 'GALET_OIDC_CLIENT_SECRET_FILE',
    kind: 'string',
  },
  { key: 'oidcRedirectUrl', flag: 'oidcRedirectUrl', env: 'GALET_OIDC_REDIRECT_URL', kind: 'url' },
  { key: 'oidcScopes', flag: 'oidcScopes', env: 'GALET_OIDC_SCOPES', kind: 'string' },
  { key: 'oidcEmailClaim', flag: 'oidcEmailClaim', env: 'GALET_OIDC_EMAIL_CLAIM', kind: 'string' },
  {
    key: 'oidcRequireVerifiedEmail',
    flag: 'oidcRequireVerifiedEmail',
    env: 'GALET_OIDC_REQUIRE_VERIFIED_EMAIL',
    kind: 'boolean',
  },
  {
    key: 'oidcTokenEndpointAuth',
    flag: 'oidcTokenEndpointAuth',
    env: 'GALET_OIDC_TOKEN_ENDPOINT_AUTH',
    kind: 'string',
  },
  {
    key: 'oidcPrivateKeyFile',
    flag: 'oidcPrivateKeyFile',
    env: 'GALET_OIDC_PRIVATE_KEY_FILE',
    kind: 'string',
  },
  {
    key: 'oidcPrivateKeyId',
    flag: 'oidcPrivateKeyId',
    env: 'GALET_OIDC_PRIVATE_KEY_ID',
    kind: 'string',
  },
  {
    key: 'oidcClientAssertionAlgorithm',
    flag: 'oidcClientAssertionAlgorithm',
    env: 'GALET_OIDC_CLIENT_ASSERTION_ALGORITHM',
    kind: 'string',
  },
  {
    key: 'oidcClientAssertionAudience',
    flag: 'oidcClientAssertionAudience',
    env: 'GALET_OIDC_CLIENT_ASSERTION_AUDIENCE',
    kind: 'string',
  },
  {
    key: 'oidcDisplayName',
    flag: 'oidcDisplayName',
    env: 'GALET_OIDC_DISPLAY_NAME',
    kind: 'string',
  },
  {
    key: 'oidcProvisioning',
    flag: 'oidcProvisioning',
    env: 'GALET_OIDC_PROVISIONING',
    kind: 'string',
  },
  // --- end OIDC login ---
] as const;

type SettingKey = (typeof SETTINGS)[number]['key'];

function parseSetting(
  kind: string,
  value: unknown,
  what: string,
): string | number | boolean | JoinServerSetting[] | JoinEndpointSetting {
  switch (kind) {
    case 'port': {
      const port = readInteger(value, 16, what);
      return port;
    }
    case 'ms':
      return readInteger(value, 31, what);
    case 'count':
      return readInteger(value, 20, what);
    case 'netId': {
      const text = String(value);
      if (!/^[0-9a-fA-F]{6}$/.test(text))
        throw new CliInputError(`${what} must be 6 hex digits, got ${text}`);
      return Number.parseInt(text, 16);
    }
    case 'roles': {
      const roles = String(value)
        .split(',')
        .map((role) => role.trim())
        .filter((role) => role !== '');
      for (const role of roles) {
        if (!(GALET_ROLES as readonly string[]).includes(role)) {
          throw new CliInputError(`${what}: unknown role "${role}" (network, join, application)`);
        }
      }
      try {
        roleSetup(roles as GaletRole[]);
      } catch (error) {
        throw new CliInputError(`${what}: ${(error as Error).message}`);
      }
      return roles.join(',');
    }
    case 'url': {
      const text = String(value);
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new CliInputError(`${what} must be a URL, got ${text}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new CliInputError(`${what} must be an http:// or https:// URL`);
      }
      return text;
    }
    case 'joinServers': {
      let parsed = value;
      if (typeof value === 'string') {
        try {
          parsed = JSON.parse(value);
        } catch {
          throw new CliInputError(`${what} must be a JSON array of join servers`);
        }
      }
      try {
        return parseJoinServerSettings(parsed);
      } catch (error) {
        throw new CliInputError(`${what}: ${(error as Error).message}`);
      }
    }
    case 'joinEndpoint': {
      let parsed = value;
      if (typeof value === 'string') {
        try {
          parsed = JSON.parse(value);
        } catch {
          throw new CliInputError(`${what} must be a JSON object {"networks": [...]}`);
        }
      }
      try {
        return parseJoinEndpointSetting(parsed);
      } catch (error) {
        throw new CliInputError(`${what}: ${(error as Error).message}`);
      }
    }
    case 'boolean':
      if (value === true || value === 'true' || value === '1') return true;
      if (value === false || value === 'false' || value === '0') return false;
      throw new CliInputError(`${what} must be true or false, got ${String(value)}`);
    default:
      if (typeof value !== 'string' || value === '')
        throw new CliInputError(`${what} must be a non-empty string`);
      return value;
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CliInputError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliInputError(`config file ${path} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliInputError(`config file ${path} must hold a JSON object`);
  }
  const known = new Set<string>(SETTINGS.map((s) => s.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new CliInputError(`config file ${path}: unknown setting "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

/** What `galet start` runs with: Galet's options, and a provider's link to its network. */
export type StartOptions = Omit<GaletOptions, 'logger' | 'env'> & {
  networkUrl?: string;
  networkToken?: string;
  /** Roles join,application: Backend Interfaces JoinReq served over HTTP (issue 5). */
  joinEndpoint?: JoinEndpointSetting;
};

/** Flags, then GALET_* variables, then the config file, then the defaults. */
export function resolveStartOptions(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): StartOptions {
  const configPath = (flags['config'] as string | undefined) ?? env['GALET_CONFIG'];
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const resolved: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  for (const setting of SETTINGS) {
    const fromFlag = flags[setting.flag];
    const fromEnv = env[setting.env];
    const fromFile = file[setting.key];
    if (fromFlag !== undefined)
      resolved[setting.key] = parseSetting(setting.kind, fromFlag, `--${kebab(setting.flag)}`);
    else if (fromEnv !== undefined && fromEnv !== '')
      resolved[setting.key] = parseSetting(setting.kind, fromEnv, setting.env);
    else if (fromFile !== undefined)
      resolved[setting.key] = parseSetting(setting.kind, fromFile, `config "${setting.key}"`);
  }
  if (typeof resolved['roles'] === 'string') {
    resolved['roles'] = (resolved['roles'] as string).split(',') as GaletRole[];
  }
  // --- Backend Interfaces endpoint (issue 5) ---
  if (
    resolved['joinEndpoint'] !== undefined &&
    roleSetup((resolved['roles'] as GaletRole[] | undefined) ?? GALET_ROLES) !== 'provider'
  ) {
    throw new CliInputError(
      `${settingNames('joinEndpoint')} is a setting of roles join,application: the AppSKey it hands out is wrapped for that Galet's application role, which gets the uplinks over its provider link`,
    );
  }
  // --- end Backend Interfaces endpoint ---
  const mqtt = mqttSettings(resolved, env);
  if (mqtt !== undefined) {
    resolved['application'] = { ...(resolved['application'] as object | undefined), mqtt };
  }
  const eventStreams = eventStreamSettings(resolved);
  if (eventStreams !== undefined) {
    resolved['application'] = { ...(resolved['application'] as object | undefined), eventStreams };
  }
  const applicationServices = applicationServiceSettings(resolved);
  if (applicationServices !== undefined) {
    resolved['application'] = {
      ...(resolved['application'] as object | undefined),
      ...applicationServices,
    };
  }
  // --- OIDC login (issue 6) ---
  const oidc = oidcSettings(resolved, env);
  if (oidc !== undefined) resolved['oidc'] = oidc;
  // --- end OIDC login ---
  return resolved as StartOptions & Record<SettingKey, unknown>;
}

// --- MQTT integration (issue 7) ---
const MQTT_KEYS = [
  'mqttUrl',
  'mqttUsername',
  'mqttPasswordFile',
  'mqttClientId',
  'mqttTopicPrefix',
  'mqttCa',
  'mqttCert',
  'mqttKey',
] as const;

/**
 * The MQTT integration's settings from the resolved `mqtt*` keys (removed from `resolved`), or
 * undefined without `mqttUrl`. The password comes from a file or GALET_MQTT_PASSWORD, never a
 * flag (a flag shows in the process list).
 */
function mqttSettings(
  resolved: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): MqttSettings | undefined {
  const values: Partial<Record<(typeof MQTT_KEYS)[number], string>> = {};
  for (const key of MQTT_KEYS) {
    if (typeof resolved[key] === 'string') values[key] = resolved[key] as string;
    delete resolved[key];
  }
  if (values.mqttUrl === undefined) {
    const stray = Object.keys(values);
    if (stray.length > 0) {
      throw new CliInputError(`${stray.map((k) => `--${kebab(k)}`).join(', ')} need --mqtt-url`);
    }
    return undefined;
  }
  try {
    brokerUrl(values.mqttUrl);
  } catch (error) {
    throw new CliInputError(`--mqtt-url: ${(error as Error).message}`);
  }
  let password = env['GALET_MQTT_PASSWORD'] === '' ? undefined : env['GALET_MQTT_PASSWORD'];
  if (values.mqttPasswordFile !== undefined) {
    try {
      password = readFileSync(values.mqttPasswordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new CliInputError(
        `cannot read the MQTT password file ${values.mqttPasswordFile}: ${(error as Error).message}`,
      );
    }
  }
  const settings: MqttSettings = {
    url: values.mqttUrl,
    ...(values.mqttUsername === undefined ? {} : { username: values.mqttUsername }),
    ...(password === undefined ? {} : { password }),
    ...(values.mqttClientId === undefined ? {} : { clientId: values.mqttClientId }),
    ...(values.mqttTopicPrefix === undefined ? {} : { topicPrefix: values.mqttTopicPrefix }),
    ...(values.mqttCa === undefined ? {} : { caFile: values.mqttCa }),
    ...(values.mqttCert === undefined ? {} : { certFile: values.mqttCert }),
    ...(values.mqttKey === undefined ? {} : { keyFile: values.mqttKey }),
  };
  try {
    mqttClientOptions(settings);
  } catch (error) {
    throw new CliInputError((error as Error).message);
  }
  return settings;
}
// --- end MQTT integration ---

// --- Server-sent event streams (issue 7) ---
/** The `sse*` keys (removed from `resolved`) as the streams' limits, or undefined without any. */
function eventStreamSettings(
  resolved: Record<string, unknown>,
): Partial<EventStreamLimits> | undefined {
  const limits: Partial<EventStreamLimits> = {};
  for (const [key, limit] of [
    ['sseMaxStreams', 'maxStreams'],
    ['sseMaxStreamsPerCredential', 'maxStreamsPerPrincipal'],
    ['sseKeepAliveMs', 'keepAliveMs'],
  ] as const) {
    const value = resolved[key];
    delete resolved[key];
    if (typeof value !== 'number') continue;
    if (value < 1) {
      throw new CliInputError(`${key} (--${kebab(key)}) must be at least 1, got ${value}`);
    }
    limits[limit] = value;
  }
  return Object.keys(limits).length === 0 ? undefined : limits;
}
// --- end server-sent event streams ---

// --- Application services (issue 7) ---
const DAY_MS = 86_400_000;

/** Smallest and largest value of each application-service setting, in its unit. */
const APPLICATION_SERVICE_RANGES = {
  feedPollIntervalMs: [10, 60_000],
  retentionIntervalMs: [60_000, 7 * DAY_MS],
  // The storage deletes at most 100,000 rows per statement.
  retentionBatchRows: [100, 100_000],
  retentionMonthsAhead: [0, 24],
  // The stage reads its batch in one event-log page (at most 1000 events).
  stageBatchSize: [1, 1000],
  // Codecs take microseconds; a higher cap only lets a runaway codec hold the codec process
  // longer (its watchdog restarts it after 10 s).
  codecTimeoutMs: [1, 1000],
  // 8 MiB: the smallest heap V8 accepts; up to 32 isolates live at once.
  codecMemoryLimitMiB: [8, 512],
  codecCacheTtlMs: [100, 3_600_000],
  webhookTimeoutMs: [100, 120_000],
  webhookConcurrency: [1, 256],
  webhookRetryInitialMs: [100, 3_600_000],
  webhookRetryMaxMs: [1000, DAY_MS],
  webhookDeadLetterAfterMs: [60_000, 7 * DAY_MS],
  webhookKeepDeliveredMs: [60_000, 14 * DAY_MS],
} as const satisfies Partial<Record<SettingKey, readonly [number, number]>>;

type ApplicationServiceKey = keyof typeof APPLICATION_SERVICE_RANGES;

/**
 * The application-service keys (removed from `resolved`), each checked against its range, as
 * ApplicationServiceSettings; undefined without any. What is not set keeps the services' own
 * defaults.
 */
function applicationServiceSettings(
  resolved: Record<string, unknown>,
): ApplicationServiceSettings | undefined {
  const values: Partial<Record<ApplicationServiceKey, number>> = {};
  for (const key of Object.keys(APPLICATION_SERVICE_RANGES) as ApplicationServiceKey[]) {
    const value = resolved[key];
    delete resolved[key];
    if (typeof value !== 'number') continue;
    const [min, max] = APPLICATION_SERVICE_RANGES[key];
    if (value < min || value > max) {
      throw new CliInputError(`${settingNames(key)} must be from ${min} to ${max}, got ${value}`);
    }
    values[key] = value;
  }
  // One of the pair may be set alone: it is compared with the other's default.
  const webhookDefaults = resolveWebhookSettings();
  const retryInitialMs = values.webhookRetryInitialMs ?? webhookDefaults.retryInitialMs;
  const retryMaxMs = values.webhookRetryMaxMs ?? webhookDefaults.retryMaxMs;
  if (retryMaxMs < retryInitialMs) {
    const shown = (value: number, set: number | undefined) =>
      set === undefined ? `${value}, the default` : String(value);
    throw new CliInputError(
      `--webhook-retry-max-ms (${shown(retryMaxMs, values.webhookRetryMaxMs)}) must be at least --webhook-retry-initial-ms (${shown(retryInitialMs, values.webhookRetryInitialMs)})`,
    );
  }
  return definedOnly({
    feedPollIntervalMs: values.feedPollIntervalMs,
    retention: definedOnly({
      intervalMs: values.retentionIntervalMs,
      batchRows: values.retentionBatchRows,
      monthsAhead: values.retentionMonthsAhead,
    }),
    stage: definedOnly({
      batchSize: values.stageBatchSize,
      codecCacheTtlMs: values.codecCacheTtlMs,
      codecs: definedOnly({
        timeoutMs: values.codecTimeoutMs,
        memoryLimitMiB: values.codecMemoryLimitMiB,
      }),
    }),
    webhooks: definedOnly({
      timeoutMs: values.webhookTimeoutMs,
      concurrency: values.webhookConcurrency,
      retryInitialMs: values.webhookRetryInitialMs,
      retryMaxMs: values.webhookRetryMaxMs,
      deadLetterAfterMs: values.webhookDeadLetterAfterMs,
      keepDeliveredMs: values.webhookKeepDeliveredMs,
    }),
  });
}

/** The flag, variable and config key of a setting, for a message. */
function settingNames(key: SettingKey): string {
  const setting = SETTINGS.find((candidate) => candidate.key === key);
  return setting === undefined
    ? key
    : `--${kebab(setting.flag)} (${setting.env}, config "${setting.key}")`;
}

/** `object` without its undefined fields; undefined when none is left. */
function definedOnly<T extends object>(
  object: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } | undefined {
  const entries = Object.entries(object).filter(([, value]) => value !== undefined);
  return entries.length === 0
    ? undefined
    : (Object.fromEntries(entries) as { [K in keyof T]?: Exclude<T[K], undefined> });
}
// --- end application services ---

// --- OIDC login (issue 6) ---
const OIDC_KEYS = [
  'oidcIssuer',
  'oidcClientId',
  'oidcClientSecretFile',
  'oidcRedirectUrl',
  'oidcScopes',
  'oidcEmailClaim',
  'oidcRequireVerifiedEmail',
  'oidcTokenEndpointAuth',
  'oidcPrivateKeyFile',
  'oidcPrivateKeyId',
  'oidcClientAssertionAlgorithm',
  'oidcClientAssertionAudience',
  'oidcDisplayName',
  'oidcProvisioning',
] as const;

/**
 * OIDC login's settings from the resolved `oidc*` keys (removed from `resolved`), checked, or
 * undefined without `oidcIssuer`. The client secret comes from a file or GALET_OIDC_CLIENT_SECRET,
 * never a flag (a flag shows in the process list). The redirect URL defaults to the HTTP port
 * on localhost: set it to the public address in production.
 */
function oidcSettings(
  resolved: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): OidcSettings | undefined {
  const values: Partial<Record<(typeof OIDC_KEYS)[number], string | boolean>> = {};
  for (const key of OIDC_KEYS) {
    if (resolved[key] !== undefined) values[key] = resolved[key] as string | boolean;
    delete resolved[key];
  }
  if (values.oidcIssuer === undefined) {
    const stray = Object.keys(values);
    if (stray.length > 0) {
      throw new CliInputError(`${stray.map((k) => `--${kebab(k)}`).join(', ')} need --oidc-issuer`);
    }
    return undefined;
  }
  const text = (key: (typeof OIDC_KEYS)[number]) =>
    typeof values[key] === 'string' ? (values[key] as string) : undefined;
  let clientSecret =
    env['GALET_OIDC_CLIENT_SECRET'] === '' ? undefined : env['GALET_OIDC_CLIENT_SECRET'];
  const secretFile = text('oidcClientSecretFile');
  if (secretFile !== undefined) {
    try {
      clientSecret = readFileSync(secretFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new CliInputError(
        `cannot read the OIDC client secret file ${secretFile}: ${(error as Error).message}`,
      );
    }
  }
  const scopes = text('oidcScopes');
  const provisioning = text('oidcProvisioning');
  try {
    const settings: OidcSettings = {
      issuer: text('oidcIssuer') as string,
      clientId: text('oidcClientId') ?? '',
      clientSecret: clientSecret ?? '',
      redirectUrl:
        text('oidcRedirectUrl') ??
        `http://localhost:${String(resolved['httpPort'])}/api/v1/auth/oidc/callback`,
      ...(scopes === undefined ? {} : { scopes: scopes.split(/\s+/).filter((s) => s !== '') }),
      ...(text('oidcEmailClaim') === undefined ? {} : { emailClaim: text('oidcEmailClaim') }),
      ...(typeof values.oidcRequireVerifiedEmail === 'boolean'
        ? { requireVerifiedEmail: values.oidcRequireVerifiedEmail }
        : {}),
      ...(text('oidcTokenEndpointAuth') === undefined
        ? {}
        : { tokenEndpointAuth: text('oidcTokenEndpointAuth') as OidcTokenEndpointAuth }),
      ...Object.fromEntries(
        (
          [
            ['privateKeyFile', 'oidcPrivateKeyFile'],
            ['privateKeyId', 'oidcPrivateKeyId'],
            ['clientAssertionAlgorithm', 'oidcClientAssertionAlgorithm'],
            ['clientAssertionAudience', 'oidcClientAssertionAudience'],
          ] as const
        )
          .filter(([, key]) => text(key) !== undefined)
          .map(([name, key]) => [name, text(key)]),
      ),
      ...(text('oidcDisplayName') === undefined ? {} : { displayName: text('oidcDisplayName') }),
      ...(provisioning === undefined ? {} : { provisioning: parseProvisioningRules(provisioning) }),
    };
    resolveOidcSettings(settings);
    return settings;
  } catch (error) {
    throw new CliInputError(`OIDC login: ${(error as Error).message}`);
  }
}
// --- end OIDC login ---

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description(
      'start Galet: network, join and application roles in one process, or some of them (--roles)',
    )
    .option('--data-dir <path>', `data directory (default ${DEFAULT_OPTIONS.dataDir})`)
    .option('--database-url <url>', 'postgres://… (default: SQLite file in the data directory)')
    .option('--host <address>', `address to listen on (default ${DEFAULT_OPTIONS.host})`)
    .option(
      '--udp-port <port>',
      `Semtech UDP port for gateways (default ${DEFAULT_OPTIONS.udpPort})`,
    )
    .option('--http-port <port>', `HTTP API port (default ${DEFAULT_OPTIONS.httpPort})`)
    .option('--region <name>', `regional parameters (default ${DEFAULT_OPTIONS.region})`)
    .option('--net-id <hex>', 'NetID, 6 hex digits (default 000000)')
    .option(
      '--dedup-window-ms <ms>',
      `deduplication window (default ${DEFAULT_OPTIONS.deduplicationWindowMs})`,
    )
    .option('--allow-unknown-gateways', 'accept traffic from gateways that are not registered')
    .option(
      '--worker-threads <true|false>',
      'run the gateway UDP socket and deduplication in a worker thread (default true)',
    )
    .option(
      '--frame-precheck <true|false>',
      'with worker threads, check MICs and decrypt 1.0.x data uplinks in the UDP worker (default true)',
    )
    .option(
      '--sqlite-writer-thread <true|false>',
      'run the SQLite uplink writes on a thread of their own (default false)',
    )
    .option(
      '--sqlite-checkpoint-thread <true|false>',
      'copy the SQLite WAL into the database file on a thread of its own, not inside commits (default true)',
    )
    .option(
      '--write-behind-ms <ms>',
      "how long devices' last-seen times and (SQLite) uplink counters may wait before they are written, in bulk (default 5000)",
    )
    .option(
      '--roles <list>',
      'roles of this process: network,join,application (default), network, or join,application',
    )
    .option(
      '--network-url <url>',
      "roles join,application: the operator's Galet API (e.g. http://127.0.0.1:8080)",
    )
    .option(
      '--network-token <token>',
      'roles join,application: the link token the operator created for the application',
    )
    .option(
      '--api-rate-limit-per-second <n>',
      'API requests per second per API key or user (default 20; 0: no limit)',
    )
    .option('--api-rate-limit-burst <n>', 'API requests at once per API key or user (default 120)')
    .option(
      '--join-servers <json>',
      'join servers by JoinEUI: [{"joinEuiPrefix":"70b3d57ed0000000/36","url":…,"kekLabel":…,"kekFile":…}] (see docs/CONFIGURATION.md)',
    )
    .option(
      '--join-endpoint <json>',
      'roles join,application: serve Backend Interfaces JoinReq to {"networks":[{"name":…,"kekLabel":…,"kekFile":…,"tokenFile":…}]} (see docs/CONFIGURATION.md)',
    )
    // --- MQTT integration (issue 7) ---
    .option(
      '--mqtt-url <url>',
      'MQTT integration: the broker, mqtt://host:port or mqtts://host:port',
    )
    .option('--mqtt-username <name>', 'MQTT integration: user name at the broker')
    .option(
      '--mqtt-password-file <path>',
      'MQTT integration: file holding the password (or GALET_MQTT_PASSWORD)',
    )
    .option('--mqtt-client-id <id>', 'MQTT integration: client id (default galet-<random>)')
    .option(
      '--mqtt-topic-prefix <prefix>',
      'MQTT integration: first topic level(s) (default application)',
    )
    .option('--mqtt-ca <file>', 'MQTT integration: PEM CA certificate of the broker (mqtts://)')
    .option('--mqtt-cert <file>', 'MQTT integration: PEM client certificate (mqtts://)')
    .option('--mqtt-key <file>', 'MQTT integration: PEM client key (mqtts://)')
    // --- end MQTT integration ---
    // --- Server-sent event streams (issue 7) ---
    .option('--sse-max-streams <n>', 'event streams open at once, in all (default 100)')
    .option(
      '--sse-max-streams-per-credential <n>',
      'event streams open at once per API key, user or admin token (default 10)',
    )
    .option(
      '--sse-keep-alive-ms <ms>',
      'period of the keep-alive comment on idle event streams (default 15000)',
    )
    // --- end server-sent event streams ---
    // --- Application services (issue 7) ---
    .option(
      '--feed-poll-interval-ms <ms>',
      'how often the application stage, MQTT and webhooks look for new events when nothing wakes them (default 250)',
    )
    .option('--retention-interval-ms <ms>', 'period of the retention job (default 3600000)')
    .option(
      '--retention-batch-rows <n>',
      'rows the retention job deletes per statement (default 5000)',
    )
    .option(
      '--retention-months-ahead <n>',
      'PostgreSQL: monthly measurement partitions made ahead of the current month (default 2)',
    )
    .option(
      '--stage-batch-size <n>',
      'events the application stage decodes per batch (default 250)',
    )
    .option('--codec-timeout-ms <ms>', 'time cap of one JavaScript codec call (default 100)')
    .option(
      '--codec-memory-limit-mib <MiB>',
      "heap cap of each JavaScript codec's isolate (default 32)",
    )
    .option(
      '--codec-cache-ttl-ms <ms>',
      "how long a device's codec is cached before a profile change is seen (default 10000)",
    )
    .option('--webhook-timeout-ms <ms>', 'webhooks: time cap of one request (default 10000)')
    .option('--webhook-concurrency <n>', 'webhooks: requests in flight at once (default 8)')
    .option(
      '--webhook-retry-initial-ms <ms>',
      'webhooks: first wait after a failed attempt, doubled each time (default 1000)',
    )
    .option(
      '--webhook-retry-max-ms <ms>',
      'webhooks: longest wait between attempts (default 600000)',
    )
    .option(
      '--webhook-dead-letter-after-ms <ms>',
      'webhooks: a delivery still failing this long after it was queued is given up (default 86400000)',
    )
    .option(
      '--webhook-keep-delivered-ms <ms>',
      'webhooks: how long delivered deliveries stay listed (default 604800000)',
    )
    // --- end application services ---
    // --- OIDC login (issue 6) ---
    .option(
      '--oidc-issuer <url>',
      'OIDC login: the identity provider (issuer URL, e.g. https://sso.example.org/realms/galet)',
    )
    .option('--oidc-client-id <id>', "OIDC login: Galet's client id at the provider")
    .option(
      '--oidc-client-secret-file <path>',
      'OIDC login: file holding the client secret (or GALET_OIDC_CLIENT_SECRET)',
    )
    .option(
      '--oidc-redirect-url <url>',
      'OIDC login: <public URL>/api/v1/auth/oidc/callback (default http://localhost:<http port>/…)',
    )
    .option(
      '--oidc-scopes <scopes>',
      'OIDC login: scopes asked for (default "openid email profile")',
    )
    .option(
      '--oidc-email-claim <claim>',
      'OIDC login: claim holding the e-mail address (default email)',
    )
    .option(
      '--oidc-require-verified-email <true|false>',
      'OIDC login: refuse addresses the provider has not verified (default true)',
    )
    .option(
      '--oidc-token-endpoint-auth <method>',
      'OIDC login: client_secret_basic (default), client_secret_post or private_key_jwt',
    )
    .option(
      '--oidc-private-key-file <path>',
      "OIDC login, private_key_jwt: PEM file holding Galet's private key (RSA or EC P-256)",
    )
    .option('--oidc-private-key-id <kid>', 'OIDC login, private_key_jwt: the key id (kid)')
    .option(
      '--oidc-client-assertion-algorithm <alg>',
      "OIDC login, private_key_jwt: RS256 or ES256 (default: the key's)",
    )
    .option(
      '--oidc-client-assertion-audience <aud>',
      'OIDC login, private_key_jwt: token-endpoint (default) or issuer',
    )
    .option(
      '--oidc-display-name <name>',
      'OIDC login: "Sign in with <name>" on the console (default SSO)',
    )
    .option(
      '--oidc-provisioning <rules>',
      'OIDC login: create unknown users: claim=value:tenantId:role, separated by ; (default: none)',
    )
    // --- end OIDC login ---
    .option('--config <file>', 'JSON config file with the same settings in camel case')
    .option(
      '--demo',
      'register a demo commune and run simulated gateways and sensors against this server',
    )
    .action(async (flags: Record<string, unknown>) => {
      const { joinEndpoint, ...options } = resolveStartOptions(flags, process.env);
      const logger = createLogger();
      if (roleSetup(options.roles ?? GALET_ROLES) === 'provider') {
        await runProvider(
          { ...options, ...(joinEndpoint === undefined ? {} : { joinEndpoint }) },
          logger,
        );
        return;
      }
      const galet = await startGalet({ ...options, logger });
      printAdminToken(galet.adminToken, options.dataDir);
      process.stdout.write(
        `Galet is running: HTTP API http://127.0.0.1:${galet.httpPort}/api/v1, gateways on UDP port ${galet.udpPort}\n`,
      );
      let stopDemo: (() => Promise<void>) | undefined;
      if (flags['demo'] === true) {
        const { runDemo } = await import('../server/demo.js');
        stopDemo = await runDemo(galet, { out: process.stdout });
      }
      await stopSignal('finishing accepted uplinks, closing sockets and database');
      await stopDemo?.();
      await galet.close();
      process.stdout.write('Galet stopped.\n');
    });
}

/** `galet start --roles join,application`: a provider's Galet, linked to its network. */
async function runProvider(options: StartOptions, logger: ReturnType<typeof createLogger>) {
  if (options.joinServers !== undefined) {
    throw new CliInputError(
      'joinServers is a setting of the network role (roles network, or all three): a provider answers joins itself',
    );
  }
  if (options.networkUrl === undefined || options.networkToken === undefined) {
    throw new CliInputError(
      'roles join,application need --network-url and --network-token (or GALET_NETWORK_URL, GALET_NETWORK_TOKEN)',
    );
  }
  const provider = await startProvider({
    dataDir: options.dataDir,
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    host: options.host,
    httpPort: options.httpPort,
    region: options.region,
    networkUrl: options.networkUrl,
    networkToken: options.networkToken,
    apiRateLimitPerSecond: options.apiRateLimitPerSecond,
    apiRateLimitBurst: options.apiRateLimitBurst,
    ...(options.oidc === undefined ? {} : { oidc: options.oidc }), // OIDC login (issue 6)
    ...(options.application === undefined ? {} : { application: options.application }),
    ...(options.joinEndpoint === undefined ? {} : { joinEndpoint: options.joinEndpoint }),
    sqliteCheckpointThread: options.sqliteCheckpointThread,
    logger,
  });
  printAdminToken(provider.adminToken, options.dataDir);
  process.stdout.write(
    `Galet provider is running: HTTP API http://127.0.0.1:${provider.httpPort}/api/v1, linked to ${options.networkUrl}\n`,
  );
  if (options.joinEndpoint !== undefined) {
    process.stdout.write(
      `Backend Interfaces joins: POST http://127.0.0.1:${provider.httpPort}${BACKEND_INTERFACES_PATH}${provider.joinEndpointTlsPort === undefined ? '' : `, and https on port ${provider.joinEndpointTlsPort}`}\n`,
    );
  }
  await stopSignal('closing the link and the database');
  await provider.close();
  process.stdout.write('Galet stopped.\n');
}

/** The admin token in full when it was just created (shown once), else where it comes from. */
function printAdminToken(adminToken: AdminToken, dataDir: string): void {
  const { token, created, source } = adminToken;
  process.stdout.write(
    created
      ? `\nAdmin API token (shown once; kept in ${dataDir}/admin.token, mode 0600):\n  ${token}\n\n`
      : `Admin API token: from ${source === 'environment' ? 'GALET_ADMIN_TOKEN' : `${dataDir}/admin.token`}\n`,
  );
}

/** Resolves on SIGINT or SIGTERM, after saying what stopping does. */
function stopSignal(whatStoppingDoes: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`\n${signal} received: stopping (${whatStoppingDoes})\n`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
