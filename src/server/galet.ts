import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { createMetricsRegistry } from '../api/metrics.js';
import { buildApi } from '../api/server.js';
import { SemtechUdpBackend, type SemtechUdpCounters } from '../gateway/semtech-udp/server.js';
import { SemtechUdpWorkerBackend } from '../gateway/semtech-udp/worker-backend.js';
import type { GatewayBackend } from '../gateway/types.js';
import { LocalJoinServer } from '../join/join-server.js';
import {
  JoinServerDirectory,
  type JoinServerSetting,
  loadJoinServerRoutes,
  newJoinServerCounters,
} from '../join/join-server-directory.js';
import { type Logger, silentLogger } from '../logger.js';
import { getRegion } from '../lorawan/regions/index.js';
import { NetworkServer } from '../network/network-server.js';
import type { OidcSettings } from '../platform/oidc-settings.js';
import { moduleUrl } from '../start-worker.js';
import {
  checkpointCounters,
  checkpointThreadGauge,
  createStorage,
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
import { NetworkLinks, newDownlinkCounters, RoutingJoinServer } from './network-links.js';
import { StorageJoinServerStore, StorageNetworkStore } from './stores.js';

export interface GaletOptions {
  dataDir: string;
  /** `postgres://…`; default: SQLite in the data directory. */
  databaseUrl?: string;
  /** Address the UDP and HTTP listeners bind to. */
  host: string;
  udpPort: number;
  httpPort: number;
  region: string;
  netId: number;
  deduplicationWindowMs: number;
  allowUnknownGateways: boolean;
  /**
   * Semtech UDP (parsing, acknowledging and deduplicating datagrams) in a worker thread beside
   * the network server's event loop (default true); false keeps it on the main thread.
   */
  workerThreads?: boolean | undefined;
  /**
   * With worker threads: the MIC check and decryption of LoRaWAN 1.0.x data uplinks run in the
   * UDP worker (network/uplink/frame-precheck.ts) instead of the network server's thread
   * (default true).
   */
  framePrecheck?: boolean | undefined;
  /**
   * On SQLite, the uplink writes on a thread of their own with their own connection (default
   * false: measured, it raised capacity a little and the tail latency a lot; see PERFORMANCE.md).
   */
  sqliteWriterThread?: boolean | undefined;
  /**
   * On SQLite, WAL checkpoints on a thread of their own instead of inside the uplink commits
   * (default true; see storage/wal-checkpointer.ts and PERFORMANCE.md).
   */
  sqliteCheckpointThread?: boolean | undefined;
  /**
   * How long devices' last_seen_at and, on SQLite, the sessions' uplink counters may wait in
   * memory before they are written in bulk (default 5000 ms; a crash loses none of the counters:
   * they come back from the stored events).
   */
  writeBehindMs?: number | undefined;
  /**
   * API requests per API key or user: sustained per second and burst (defaults 20 and 120);
   * 0 per second turns the limit off. The admin token is not limited.
   */
  apiRateLimitPerSecond?: number | undefined;
  apiRateLimitBurst?: number | undefined;
  /**
   * The roles this process runs (default all three). `network` alone is the operator of an
   * operator-blind network: it refuses application keys and its devices join through their
   * providers' links. `join` + `application` is a provider: see startProvider.
   */
  roles?: readonly GaletRole[] | undefined;
  /** Settings of the application-side services (all-in-one and provider processes). */
  application?: ApplicationServiceSettings | undefined;
  /** OpenID Connect login for the console (absent: off); see docs/OPERATOR-GUIDE.md. */
  oidc?: OidcSettings | undefined;
  /**
   * Join servers chosen by JoinEUI (prefix or range), reached with Backend Interfaces JoinReq over
   * HTTP; a device whose JoinEUI matches none joins through its provider's link or locally.
   */
  joinServers?: readonly JoinServerSetting[] | undefined;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

/** The API's rate limit from the start settings (absent: the API's defaults). */
export function apiRateLimit(
  options: Pick<GaletOptions, 'apiRateLimitPerSecond' | 'apiRateLimitBurst'>,
): { rateLimit?: { perSecond?: number; burst?: number } | false } {
  if (options.apiRateLimitBurst === 0) {
    throw new RangeError('the API rate limit burst must be at least 1 (0 per second turns it off)');
  }
  if (options.apiRateLimitPerSecond === 0) return { rateLimit: false };
  if (options.apiRateLimitPerSecond === undefined && options.apiRateLimitBurst === undefined) {
    return {};
  }
  return {
    rateLimit: {
      ...(options.apiRateLimitPerSecond === undefined
        ? {}
        : { perSecond: options.apiRateLimitPerSecond }),
      ...(options.apiRateLimitBurst === undefined ? {} : { burst: options.apiRateLimitBurst }),
    },
  };
}

export type GaletRole = 'network' | 'join' | 'application';
export const GALET_ROLES: readonly GaletRole[] = ['network', 'join', 'application'];

/** Which process a set of roles makes, or why it cannot be run. */
export function roleSetup(roles: readonly GaletRole[]): 'all-in-one' | 'network' | 'provider' {
  const set = new Set(roles);
  if (set.size === 3) return 'all-in-one';
  if (set.size === 1 && set.has('network')) return 'network';
  if (set.size === 2 && set.has('join') && set.has('application')) return 'provider';
  throw new RangeError(
    `roles ${[...set].join(',')} cannot run together: use all three, network alone, or join,application`,
  );
}

export const DEFAULT_OPTIONS: Omit<GaletOptions, 'logger' | 'env'> = {
  dataDir: './data',
  host: '0.0.0.0',
  udpPort: 1700,
  httpPort: 8080,
  region: 'EU868',
  netId: 0,
  deduplicationWindowMs: 200,
  allowUnknownGateways: false,
  workerThreads: true,
  framePrecheck: true,
  sqliteWriterThread: false,
  sqliteCheckpointThread: true,
};

export interface RunningGalet {
  storage: Storage;
  network: NetworkServer;
  gateways: GatewayBackend & {
    counters(): SemtechUdpCounters;
    address(): { address: string; port: number };
  };
  api: FastifyInstance;
  httpPort: number;
  udpPort: number;
  adminToken: AdminToken;
  /** Stops taking traffic, finishes what was accepted, closes sockets and the database. */
  close(): Promise<void>;
}

function collectGarbageNow(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // Not available in this runtime: the collector will run when it decides to.
  }
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Galet with the network role: all-in-one (network, join and application roles in one process,
 * each behind its interface) or the network role alone (operator-blind). Either serves provider
 * links on its API port.
 */
export async function startGalet(options: GaletOptions): Promise<RunningGalet> {
  const setup = roleSetup(options.roles ?? GALET_ROLES);
  if (setup === 'provider') throw new RangeError('roles join,application: use startProvider');
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? process.env;
  const region = getRegion(options.region);
  // Checked and read before anything is opened: a bad table stops the start with its reason.
  const joinServerRoutes =
    options.joinServers === undefined || options.joinServers.length === 0
      ? undefined
      : await loadJoinServerRoutes(options.joinServers, logger);
  const { adminToken, masterKey, database } = await openDataDir({ ...options, env, logger });
  const secrets = SecretBox.fromKey(masterKey);
  const workerThreads = options.workerThreads ?? true;
  const storage = createStorage(database, secrets, {
    uplinkWriterThread: options.sqliteWriterThread ?? false,
    ...(options.writeBehindMs === undefined ? {} : { lastSeenFlushMs: options.writeBehindMs }),
  });
  // Closed in reverse order: what the uplink path writes behind goes out after the network
  // stopped, and before the database closes.
  const closers = new Closers(logger);
  closers.add(() => database.close());
  closers.add(() => storage.uplinkCommits.close());
  const closeAll = () => closers.closeAll();
  try {
    // After a crash, the uplink counters written behind come back from the stored events.
    const recovered = await storage.uplinkCommits.recoverCounters();
    if (recovered.sessions > 0) {
      logger.warn(recovered, 'uplink counters recovered from the events stored before a crash');
    }
    let network: NetworkServer | undefined;
    let links: NetworkLinks | undefined;
    const udpOptions = {
      host: options.host,
      port: options.udpPort,
      isGatewayAllowed: (gatewayId: string) => network?.isGatewayAllowed(gatewayId) ?? false,
      logger: logger.child({ component: 'semtech-udp' }),
    };
    const gateways = workerThreads
      ? await SemtechUdpWorkerBackend.listen({
          ...udpOptions,
          deduplicationWindowMs: options.deduplicationWindowMs,
          ...(options.framePrecheck === false
            ? {}
            : {
                frameAnnotatorModule: moduleUrl(
                  import.meta.url,
                  '../network/uplink/frame-precheck',
                ),
              }),
        })
      : await SemtechUdpBackend.listen(udpOptions);
    closers.add(() => gateways.close());
    // The API closes last of the three: its HTTP server waits for the provider links' upgraded
    // connections, which close after the network finished its uplinks (their forwards go to
    // the outbox first).
    let api: FastifyInstance | undefined;
    closers.add(async () => api?.close());
    closers.add(async () => links?.close());
    const joinServers =
      joinServerRoutes === undefined
        ? undefined
        : new JoinServerDirectory({
            routes: joinServerRoutes,
            device: async (devEui) => {
              const device = await storage.devices.get(devEui);
              return device === undefined
                ? undefined
                : { macVersion: device.macVersion, joinEui: device.joinEui };
            },
            logger: logger.child({ component: 'join-servers' }),
          });
    network = new NetworkServer({
      region,
      store: new StorageNetworkStore(storage, region),
      gateways,
      joinServer: new RoutingJoinServer(
        new LocalJoinServer(new StorageJoinServerStore(storage)),
        () => links,
        storage,
        joinServers,
      ),
      forwardUplink: async (uplink) => {
        if (links === undefined) throw new Error('provider links are not up yet');
        await links.forwardUplink(uplink);
      },
      // Operator-blind downlinks (issue 5): re-encryption hand-backs and ack/txack reports.
      blindDownlinks: {
        handBack: (request) => links?.blindDownlinks.handBack(request),
        report: async (event) => links?.blindDownlinks.report(event),
      },
      config: {
        netId: options.netId,
        deduplicationWindowMs: options.deduplicationWindowMs,
        allowUnknownGateways: options.allowUnknownGateways,
      },
      logger: logger.child({ component: 'network' }),
    });
    await network.start();
    // Loading every session left garbage (decryption contexts, rows): collect it now, before
    // traffic, instead of in a long pause under load a few seconds later.
    collectGarbageNow();
    const running = network;
    closers.add(() => running.close());
    const latencyGauges: Record<string, { help: string; read: () => number }> = {};
    for (const [histogram, what] of [
      ['sinceLastCopy', 'from the last gateway copy'],
      ['beyondWindow', 'beyond the deduplication window'],
    ] as const) {
      for (const quantile of ['p50Ms', 'p99Ms', 'maxMs'] as const) {
        const q = quantile.replace('Ms', '');
        latencyGauges[`network_uplink_latency_${snake(histogram)}_${q}_ms`] = {
          help: `uplink reception to stored event, ${what}, ${q} in ms`,
          read: () => running.latency[histogram].snapshot()[quantile],
        };
      }
    }
    latencyGauges['network_active_sessions'] = {
      help: 'device sessions in memory',
      read: () => running.activeSessions,
    };
    // Application-side services hold decrypted payloads: not in the network role alone.
    const application =
      setup === 'all-in-one'
        ? await startApplicationServices({
            storage,
            logger,
            closers,
            onEventsAppended: (listener) => running.bus.subscribe(() => listener()),
            settings: options.application ?? {},
            downlinkQueued: (devEui) => running.downlinkQueued(devEui),
          })
        : undefined;
    const metrics = createMetricsRegistry(
      {
        ...application?.metricSources,
        network: () => running.counters.snapshot(),
        provider_links: () => links?.downlinkCounters() ?? newDownlinkCounters(),
        join_servers: () => ({ ...(joinServers?.counters() ?? newJoinServerCounters()) }),
        sqlite_wal: () => checkpointCounters(database.checkpointer),
        semtech_udp: () => {
          const { packetsReceived, malformedDatagrams, invalidRxpk, txAcks, ...plain } =
            gateways.counters();
          return { ...plain, packetsReceived, malformedDatagrams, invalidRxpk, txAcks };
        },
      },
      {
        ...application?.gauges,
        ...latencyGauges,
        sqlite_wal_checkpoint_thread_running: checkpointThreadGauge(database.checkpointer),
      },
    );
    api = await buildApi({
      metrics,
      ...(gateways instanceof SemtechUdpWorkerBackend
        ? { refreshMetrics: () => gateways.refreshCounters() }
        : {}),
      storage,
      network,
      region,
      adminToken: adminToken.token,
      roles: { operatorBlind: setup === 'network' },
      ...(application === undefined ? {} : { application }),
      ...apiRateLimit(options),
      ...(options.oidc === undefined ? {} : { oidc: options.oidc }),
      logger: logger.child({ component: 'api' }),
    });
    // Providers' servers connect to /api/v1/link on the API's port (operator-blind split).
    const providerLinks = new NetworkLinks({
      httpServer: api.server,
      storage,
      logger: logger.child({ component: 'link' }),
    });
    providerLinks.onDeviceChanged((devEui) => running.deviceChanged(devEui));
    providerLinks.onDownlinkQueued((devEui) => running.downlinkQueued(devEui));
    links = providerLinks;
    const auditRetention = new AuditRetentionJob(storage, logger.child({ component: 'audit' }));
    auditRetention.start();
    closers.add(() => auditRetention.close());
    await api.listen({ host: options.host, port: options.httpPort });
    const address = api.server.address();
    const httpPort =
      typeof address === 'object' && address !== null ? address.port : options.httpPort;
    logger.info(
      {
        httpPort,
        udpPort: gateways.address().port,
        database: database.location,
        sessions: network.activeSessions,
      },
      'Galet started',
    );
    return {
      storage,
      network,
      gateways,
      api,
      httpPort,
      udpPort: gateways.address().port,
      adminToken,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
