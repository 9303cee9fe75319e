import { mkdir } from 'node:fs/promises';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { loadOrCreateAdminToken } from '../api/auth.js';
import { createMetricsRegistry } from '../api/metrics.js';
import { buildApi } from '../api/server.js';
import { SemtechUdpBackend, type SemtechUdpCounters } from '../gateway/semtech-udp/server.js';
import { SemtechUdpWorkerBackend } from '../gateway/semtech-udp/worker-backend.js';
import type { GatewayBackend } from '../gateway/types.js';
import { LocalJoinServer } from '../join/join-server.js';
import { type Logger, silentLogger } from '../logger.js';
import { getRegion } from '../lorawan/regions/index.js';
import { NetworkServer } from '../network/network-server.js';
import {
  createStorage,
  loadOrCreateMasterKey,
  openDatabase,
  SecretBox,
  type Storage,
} from '../storage/index.js';
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
   * Worker threads beside the network server's event loop (default true): Semtech UDP (parsing,
   * acknowledging, deduplicating datagrams) and, on SQLite, the uplink writes. False keeps all
   * of it on the main thread.
   */
  workerThreads?: boolean | undefined;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
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
  adminToken: { token: string; created: boolean; source: 'environment' | 'file' };
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

/** All-in-one Galet: network, join and application roles in one process, each behind its interface. */
export async function startGalet(options: GaletOptions): Promise<RunningGalet> {
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? process.env;
  const region = getRegion(options.region);
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = await loadOrCreateAdminToken(options.dataDir, env);
  const secrets = SecretBox.fromKey(await loadOrCreateMasterKey({ dataDir: options.dataDir, env }));
  const database = await openDatabase({
    ...(options.databaseUrl === undefined ? {} : { url: options.databaseUrl }),
    dataDir: options.dataDir,
    logger: logger.child({ component: 'storage' }),
  });
  const workerThreads = options.workerThreads ?? true;
  const storage = createStorage(database, secrets, { uplinkWriterThread: workerThreads });
  // Closed in reverse order: what the uplink path writes behind goes out after the network
  // stopped, and before the database closes.
  const closers: Array<() => Promise<void>> = [
    () => database.close(),
    () => storage.uplinkCommits.close(),
  ];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error({ err: error }, 'error while closing');
      }
    }
  };
  try {
    let network: NetworkServer | undefined;
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
        })
      : await SemtechUdpBackend.listen(udpOptions);
    closers.push(() => gateways.close());
    network = new NetworkServer({
      region,
      store: new StorageNetworkStore(storage, region),
      gateways,
      joinServer: new LocalJoinServer(new StorageJoinServerStore(storage)),
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
    closers.push(() => running.close());
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
    const metrics = createMetricsRegistry(
      {
        network: () => running.counters.snapshot(),
        semtech_udp: () => {
          const { packetsReceived, malformedDatagrams, invalidRxpk, txAcks, ...plain } =
            gateways.counters();
          return { ...plain, packetsReceived, malformedDatagrams, invalidRxpk, txAcks };
        },
      },
      latencyGauges,
    );
    const api = await buildApi({
      metrics,
      ...(gateways instanceof SemtechUdpWorkerBackend
        ? { refreshMetrics: () => gateways.refreshCounters() }
        : {}),
      storage,
      network,
      region,
      adminToken: adminToken.token,
      logger: logger.child({ component: 'api' }),
    });
    closers.push(() => api.close());
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
