import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { EventStreamLimits } from '../api/routes/event-streams.js';
import {
  brokerUrl,
  type MqttSettings,
  mqttClientOptions,
} from '../application/integrations/mqtt/settings.js';
import { createLogger } from '../logger.js';
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
  {
    key: 'sqliteWriterThread',
    flag: 'sqliteWriterThread',
    env: 'GALET_SQLITE_WRITER_THREAD',
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
] as const;

type SettingKey = (typeof SETTINGS)[number]['key'];

function parseSetting(kind: string, value: unknown, what: string): string | number | boolean {
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
  const mqtt = mqttSettings(resolved, env);
  if (mqtt !== undefined) {
    resolved['application'] = { ...(resolved['application'] as object | undefined), mqtt };
  }
  const eventStreams = eventStreamSettings(resolved);
  if (eventStreams !== undefined) {
    resolved['application'] = { ...(resolved['application'] as object | undefined), eventStreams };
  }
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
      '--sqlite-writer-thread <true|false>',
      'run the SQLite uplink writes on a thread of their own (default false)',
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
    .option('--config <file>', 'JSON config file with the same settings in camel case')
    .option(
      '--demo',
      'register a demo commune and run simulated gateways and sensors against this server',
    )
    .action(async (flags: Record<string, unknown>) => {
      const options = resolveStartOptions(flags, process.env);
      const logger = createLogger();
      if (roleSetup(options.roles ?? GALET_ROLES) === 'provider') {
        await runProvider(options, logger);
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
    ...(options.application === undefined ? {} : { application: options.application }),
    logger,
  });
  printAdminToken(provider.adminToken, options.dataDir);
  process.stdout.write(
    `Galet provider is running: HTTP API http://127.0.0.1:${provider.httpPort}/api/v1, linked to ${options.networkUrl}\n`,
  );
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
