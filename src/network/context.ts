import type { GatewayBackend } from '../gateway/types.js';
import type { JoinServer } from '../join/join-server.js';
import type { Logger } from '../logger.js';
import type { ChannelPlan, Region } from '../lorawan/regions/index.js';
import type { NetworkCounters } from './counters.js';
import type { DeviceCache } from './device-cache.js';
import type { EventBus, GaletEvent } from './events.js';
import type { SessionCache } from './session-cache.js';
import type { NetworkStore } from './store.js';
import type { DeduplicatedUplink } from './uplink/deduplicator.js';

export interface NetworkConfig {
  netId: number;
  deduplicationWindowMs: number;
  /** RX1 is skipped when less than this remains before it opens (gateway scheduling lead). */
  downlinkLeadMs: number;
  /** Settings given to devices at join. */
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
  /** Let uplinks through from gateways that are not registered. */
  allowUnknownGateways: boolean;
}

/** Everything the uplink and downlink stages share; built once by NetworkServer. */
export interface NetworkContext {
  config: NetworkConfig;
  region: Region;
  /** Channels every device gets: the region's defaults plus those sent in the CFList. */
  channelPlan: ChannelPlan;
  store: NetworkStore;
  gateways: GatewayBackend;
  joinServer: JoinServer;
  sessions: SessionCache;
  devices: DeviceCache;
  /** Devices with queued downlinks: the others need no queue read when answering. */
  pendingDownlinks: Set<string>;
  observeUplinkLatency(uplink: DeduplicatedUplink, storedAtMs: number): void;
  counters: NetworkCounters;
  logger: Logger;
  now: () => number;
  emit: (event: GaletEvent) => Promise<void>;
  bus: EventBus;
}
