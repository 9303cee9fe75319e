import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { createMetricsRegistry } from '../api/metrics.js';
import { type ApiNetwork, buildApi } from '../api/server.js';
import { JoinEndpoint, type JoinEndpointSetting } from '../join/join-endpoint.js';
import { LocalJoinServer } from '../join/join-server.js';
import { type Logger, silentLogger } from '../logger.js';
import { getRegion } from '../lorawan/regions/index.js';
import { defaultNetworkConfig } from '../network/network-server.js';
import type { OidcSettings } from '../platform/oidc-settings.js';
import {
  checkpointCounters,
  checkpointThreadGauge,
  createStorage,
  readKeptApplicationKek,
  SecretBox,
  type Storage,
} from '../storage/index.js';
import {
  type ApplicationServiceSettings,
  startApplicationServices,
} from './application-services.js';
import { AuditRetentionJob } from './audit-retention.js';
import { Closers } from './closers.js';
import { type AdminToken, openDataDir } from './data-dir.js';
import { apiRateLimit } from './galet.js';
import {
  applicationKek,
  applicationKekOf,
  ProviderLink,
  recordingIssuedSessions,
} from './provider.js';
import { StorageJoinServerStore } from './stores.js';

export interface ProviderOptions {
  dataDir: string;
  databaseUrl?: string;
  /** On SQLite, WAL checkpoints on a thread of their own (default true). */
  sqliteCheckpointThread?: boolean | undefined;
  host: string;
  httpPort: number;
  region: string;
  /** The operator's Galet API, e.g. http://127.0.0.1:8080 (the link is `<url>/api/v1/link`). */
  networkUrl: string;
  /** The link token the operator created for the application (`galet_link_…`). */
  networkToken: string;
  apiRateLimitPerSecond?: number | undefined;
  apiRateLimitBurst?: number | undefined;
  /** Settings of the application-side services. */
  application?: ApplicationServiceSettings | undefined;
  /** OpenID Connect login for the console (absent: off). */
  oidc?: OidcSettings | undefined;
  /**
   * Backend Interfaces JoinReq served over HTTP to the networks listed (absent: off); see
   * join/join-endpoint.ts.
   */
  joinEndpoint?: JoinEndpointSetting | undefined;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface RunningProvider {
  storage: Storage;
  link: ProviderLink;
  api: FastifyInstance;
  httpPort: number;
  /** The Backend Interfaces endpoint's HTTPS port, when `joinEndpoint.tls` is set. */
  joinEndpointTlsPort?: number;
  adminToken: AdminToken;
  close(): Promise<void>;
}

/**
 * A service provider's Galet (roles `join` and `application`): its own data directory, API and
 * admin token; root keys, session AppSKeys and decrypted payloads stay here. It connects out to
 * the operator's network over the provider link (no address of its own needed), registers its
 * devices there without keys, answers their joins, and stores their uplinks decrypted.
 */
export async function startProvider(options: ProviderOptions): Promise<RunningProvider> {
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? process.env;
  const region = getRegion(options.region);
  const { adminToken, masterKey, database } = await openDataDir({ ...options, env, logger });
  const secrets = SecretBox.fromKey(masterKey);
  const storage = createStorage(database, secrets);
  const closers = new Closers(logger);
  closers.add(() => database.close());
  const closeAll = () => closers.closeAll();
  try {
    // After a master key rotation the KEK stays the one the network's envelopes are under.
    const keptKek = await readKeptApplicationKek(options.dataDir, secrets);
    const appKek = keptKek === undefined ? applicationKek(masterKey) : applicationKekOf(keptKek);
    // Joins over HTTP (issue 5): the AppSKey wrapped for this application role, as on the link.
    const joinEndpoint =
      options.joinEndpoint === undefined
        ? undefined
        : await JoinEndpoint.load(options.joinEndpoint, {
            // Its sessions go into the downlink keystream memory, as the link's do.
            joinServer: recordingIssuedSessions(
              new LocalJoinServer(new StorageJoinServerStore(storage)),
              storage,
              appKek,
            ),
            applicationKek: appKek,
            logger: logger.child({ component: 'join-endpoint' }),
          });
    const eventsStored = new EventEmitter();
    eventsStored.setMaxListeners(0);
    const link = new ProviderLink({
      networkUrl: options.networkUrl,
      token: options.networkToken,
      dataDir: options.dataDir,
      storage,
      applicationKek: appKek,
      logger: logger.child({ component: 'link' }),
      eventStored: () => eventsStored.emit('stored'),
    });
    closers.add(() => link.close());
    const application = await startApplicationServices({
      storage,
      logger,
      closers,
      onEventsAppended: (listener) => {
        eventsStored.on('stored', listener);
        return () => eventsStored.off('stored', listener);
      },
      settings: options.application ?? {},
      downlinkQueued: (devEui) => link.downlinkQueued(devEui),
    });
    const config = defaultNetworkConfig(region);
    // The network runs elsewhere: queued downlinks go to it encrypted, over the link.
    const network: ApiNetwork = {
      config,
      sessionChanged: () => {},
      sessionRemoved: () => {},
      downlinkQueued: (devEui) => link.downlinkQueued(devEui),
      // Deleted here once the network gave its copy back (or never had it).
      withdrawDownlinks: (devEui, ids) => link.withdrawDownlinks(devEui, ids),
      gatewayAdded: () => {},
    };
    const api = await buildApi({
      metrics: createMetricsRegistry(
        {
          ...application.metricSources,
          provider_link: () => link.counters(),
          ...(joinEndpoint === undefined
            ? {}
            : { join_endpoint: () => ({ ...joinEndpoint.counters() }) }),
          sqlite_wal: () => checkpointCounters(database.checkpointer),
        },
        {
          ...application.gauges,
          sqlite_wal_checkpoint_thread_running: checkpointThreadGauge(database.checkpointer),
        },
      ),
      application,
      storage,
      network,
      region,
      adminToken: adminToken.token,
      roles: { deviceCreated: (device) => link.registerDevice(device) },
      ...apiRateLimit(options),
      ...(options.oidc === undefined ? {} : { oidc: options.oidc }),
      logger: logger.child({ component: 'api' }),
    });
    closers.add(() => api.close());
    await joinEndpoint?.mount(api);
    const joinEndpointTls = await joinEndpoint?.listenTls(options.host);
    if (joinEndpointTls !== undefined) closers.add(() => joinEndpointTls.close());
    const auditRetention = new AuditRetentionJob(storage, logger.child({ component: 'audit' }));
    auditRetention.start();
    closers.add(() => auditRetention.close());
    link.start();
    await api.listen({ host: options.host, port: options.httpPort });
    const address = api.server.address();
    const httpPort =
      typeof address === 'object' && address !== null ? address.port : options.httpPort;
    logger.info(
      {
        httpPort,
        networkUrl: options.networkUrl,
        database: database.location,
        ...(joinEndpoint === undefined ? {} : { joinEndpointTlsPort: joinEndpointTls?.port }),
      },
      'Galet provider started (roles join,application)',
    );
    return {
      storage,
      link,
      api,
      httpPort,
      ...(joinEndpointTls === undefined ? {} : { joinEndpointTlsPort: joinEndpointTls.port }),
      adminToken,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
