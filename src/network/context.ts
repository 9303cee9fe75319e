import type { DeduplicatedUplink } from '../gateway/deduplicator.js';
import type { GatewayBackend } from '../gateway/types.js';
import type { JoinServer } from '../join/join-server.js';
import type { Logger } from '../logger.js';
import type { ChannelPlan, Region } from '../lorawan/regions/index.js';
import type { UplinkHistoryEntry } from './adr/history.js';
import type { NetworkCounters } from './counters.js';
import type { DeviceCache } from './device-cache.js';
import type { DeviceProfileCache } from './device-profile-cache.js';
import type { BlindDownlinkRelay } from './downlink/blind-downlinks.js';
import type { GatewayDutyCycle } from './downlink/duty-cycle.js';
import type { EventBus, GaletEvent } from './events.js';
import type { UplinkForwarder } from './forward.js';
import type { SessionCache } from './session-cache.js';
import type { DeviceSession, NetworkStore } from './store.js';

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
  profiles: DeviceProfileCache;
  /** ADR uplink history per DevEUI, in memory only (rebuilt from uplinks after a restart). */
  adrHistories: Map<string, UplinkHistoryEntry[]>;
  /** Transmit time per gateway and sub-band (EU868 duty cycle). */
  dutyCycle: GatewayDutyCycle;
  /** The best gateway of each device's latest uplink: where Class C downlinks go. */
  lastUplinkGateway: Map<string, { gatewayId: string; snr: number; rssi: number; atMs: number }>;
  /** Runs `work` when no other work of this DevAddr's devices is under way (one at a time). */
  exclusive<T>(devAddr: number, work: () => Promise<T>): Promise<T>;
  /**
   * LoRaWAN 1.1: the session a rejoin replaced, by DevEUI, until the device uses the new one
   * (memory only).
   */
  previousSessions: Map<string, DeviceSession>;
  /** Sends a Class C device's queued downlinks when it may receive them (no-op for Class A). */
  triggerClassC(devEui: string): void;
  /** Ids that tie a gateway's TX acknowledgement to the downlink it answers. */
  nextDownlinkId(): number;
  /** Devices with queued downlinks: the others need no queue read when answering. */
  pendingDownlinks: Set<string>;
  observeUplinkLatency(uplink: DeduplicatedUplink, storedAtMs: number): void;
  counters: NetworkCounters;
  logger: Logger;
  now: () => number;
  emit: (event: GaletEvent) => Promise<void>;
  bus: EventBus;
  /** Where uplinks of operator-blind sessions go (the application role); absent: nowhere. */
  forwardUplink: UplinkForwarder | undefined;
  /** Operator-blind downlinks: hand-backs for re-encryption, ack/txack to the provider. */
  blindDownlinks: BlindDownlinkRelay | undefined;
}
