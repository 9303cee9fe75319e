import type { GatewayStats } from '../gateway/types.js';
import type { JoinServerStore } from '../join/join-server.js';
import type { Region } from '../lorawan/regions/index.js';
import type { NetworkDeviceProfile } from '../network/device-profile.js';
import type { GaletEvent } from '../network/events.js';
import type { MacProfile } from '../network/mac/requests.js';
import type { SessionMac } from '../network/mac/session-mac.js';
import type {
  DeviceSession,
  NetworkDevice,
  NetworkStore,
  QueuedDownlink,
} from '../network/store.js';
import type {
  Device,
  DeviceProfile,
  DownlinkQueueItem,
  Storage,
  UplinkCommit,
} from '../storage/index.js';
import { GroupCommit } from './group-commit.js';

function networkDevice(device: Device): NetworkDevice {
  return {
    devEui: device.devEui,
    name: device.name,
    applicationId: device.applicationId,
    macVersion: device.macVersion,
    deviceClass: device.deviceClass,
    deviceProfileId: device.deviceProfileId,
    tags: device.tags,
  };
}

/** A stored device profile as the network server uses it. */
export function networkDeviceProfile(profile: DeviceProfile, region: Region): NetworkDeviceProfile {
  const mac: MacProfile = {
    rx1DelaySeconds: profile.rx1DelaySeconds,
    rx1DrOffset: profile.rx1DrOffset,
    rx2Dr: profile.rx2Dr,
    rx2FrequencyHz: profile.rx2FrequencyHz,
    maxDutyCycle: profile.maxDutyCycle,
    devStatusIntervalMs: profile.devStatusIntervalSeconds * 1000,
  };
  // An empty list leaves the channels a device has (from its JoinAccept's CFList) alone.
  if (profile.extraChannels.length > 0) {
    const first = region.defaultChannels.length;
    mac.extraChannels = profile.extraChannels.map((channel, position) => ({
      index: first + position,
      ...channel,
    }));
  }
  // Likewise, an empty list leaves the RX1 frequencies the devices were given alone.
  if (profile.dlChannels.length > 0) {
    mac.dlChannels = profile.dlChannels.map((channel) => ({ ...channel }));
  }
  if (profile.adrAckLimitExp !== undefined) mac.adrAckLimitExp = profile.adrAckLimitExp;
  if (profile.adrAckDelayExp !== undefined) mac.adrAckDelayExp = profile.adrAckDelayExp;
  if (profile.rejoin !== undefined) mac.rejoin = { ...profile.rejoin };
  return {
    id: profile.id,
    adr: { ...profile.adr },
    mac,
    confirmedDownlink: {
      maxAttempts: profile.confirmedDownlink.maxAttempts,
      classCTimeoutMs: profile.confirmedDownlink.classCTimeoutSeconds * 1000,
    },
  };
}

function queuedDownlink(item: DownlinkQueueItem): QueuedDownlink {
  return {
    id: item.id,
    devEui: item.devEui,
    fPort: item.fPort,
    data: item.data,
    confirmed: item.confirmed,
    attempts: item.attempts,
    encryptedFor: item.encryptedFor ?? null,
  };
}

/** The network role's view of the shared storage (all-in-one mode). */
export class StorageNetworkStore implements NetworkStore {
  readonly #uplinkCommits: GroupCommit<UplinkCommit, boolean>;
  /** txack, ack, log, join and status events: many per second under load, one write per batch. */
  readonly #events: GroupCommit<GaletEvent, number>;

  constructor(
    private readonly storage: Storage,
    private readonly region: Region,
  ) {
    this.#uplinkCommits = new GroupCommit((items) => storage.uplinkCommits.commit(items));
    this.#events = new GroupCommit((events) => storage.events.appendMany(events));
  }

  listSessions(): Promise<DeviceSession[]> {
    return this.storage.deviceSessions.listAll();
  }

  getSession(devEui: string): Promise<DeviceSession | undefined> {
    return this.storage.deviceSessions.get(devEui);
  }

  async saveSession(session: DeviceSession): Promise<void> {
    await this.storage.deviceSessions.upsert(session);
  }

  commitUplink(
    devEui: string,
    expected: number | null,
    next: number,
    event: GaletEvent,
  ): Promise<boolean> {
    return this.#uplinkCommits.add({ devEui, expectedFCntUp: expected, nextFCntUp: next, event });
  }

  devicesWithPendingDownlinks(): Promise<string[]> {
    return this.storage.downlinkQueue.devicesWithPending();
  }

  takeFCntDown(devEui: string, counter: 'n' | 'a', atLeast?: number): Promise<number> {
    return this.storage.deviceSessions.takeFCntDown(devEui, counter, atLeast);
  }

  async saveMacState(devEui: string, macState: SessionMac | null): Promise<void> {
    await this.storage.deviceSessions.setMacState(devEui, macState);
  }

  async getDeviceProfile(id: string): Promise<NetworkDeviceProfile | undefined> {
    const profile = await this.storage.deviceProfiles.get(id);
    return profile === undefined ? undefined : networkDeviceProfile(profile, this.region);
  }

  async getDownlink(id: string): Promise<QueuedDownlink | undefined> {
    const item = await this.storage.downlinkQueue.get(id);
    return item === undefined ? undefined : queuedDownlink(item);
  }

  async lastUplinkGateway(devEui: string) {
    const event = await this.storage.events.latestOfType(devEui, 'up');
    const rxInfo = (event?.body as { rxInfo?: unknown } | undefined)?.rxInfo;
    if (event === undefined || !Array.isArray(rxInfo)) return undefined;
    let best: { gatewayId: string; snr: number; rssi: number; atMs: number } | undefined;
    for (const rx of rxInfo as { gatewayId?: unknown; snr?: unknown; rssi?: unknown }[]) {
      if (typeof rx?.gatewayId !== 'string' || typeof rx.snr !== 'number') continue;
      const rssi = typeof rx.rssi === 'number' ? rx.rssi : -200;
      if (best === undefined || rx.snr > best.snr || (rx.snr === best.snr && rssi > best.rssi)) {
        best = { gatewayId: rx.gatewayId, snr: rx.snr, rssi, atMs: Date.parse(event.time) };
      }
    }
    return best;
  }

  async getDevice(devEui: string): Promise<NetworkDevice | undefined> {
    const device = await this.storage.devices.get(devEui);
    return device === undefined ? undefined : networkDevice(device);
  }

  async listDevices(): Promise<NetworkDevice[]> {
    return (await this.storage.devices.listAll()).map(networkDevice);
  }

  async touchDevice(devEui: string, seenAt: string): Promise<void> {
    await this.storage.devices.touch(devEui, seenAt);
  }

  async nextPendingDownlink(devEui: string): Promise<QueuedDownlink | undefined> {
    const item = await this.storage.downlinkQueue.nextPending(devEui);
    return item === undefined ? undefined : queuedDownlink(item);
  }

  async countPendingDownlinks(devEui: string): Promise<number> {
    return this.storage.downlinkQueue.countPending(devEui);
  }

  async markDownlinkSent(id: string, fCntDown: number): Promise<void> {
    await this.storage.downlinkQueue.markSent(id, fCntDown);
  }

  async setAwaitingAck(devEui: string, awaiting: DeviceSession['awaitingAck']): Promise<void> {
    await this.storage.deviceSessions.setAwaitingAck(devEui, awaiting);
  }

  async markDownlinkAcked(id: string): Promise<void> {
    await this.storage.downlinkQueue.markAcked(id);
  }

  async requeueDownlink(id: string, reason: string): Promise<void> {
    await this.storage.downlinkQueue.requeue(id, reason);
  }

  async markDownlinkFailed(id: string, reason: string): Promise<void> {
    await this.storage.downlinkQueue.markFailed(id, reason);
  }

  async appendEvent(event: GaletEvent): Promise<void> {
    await this.#events.add(event);
  }

  async isGatewayKnown(gatewayId: string): Promise<boolean> {
    return (await this.storage.gateways.get(gatewayId)) !== undefined;
  }

  async recordGatewayStats(stats: GatewayStats): Promise<void> {
    await this.storage.gateways.recordStats(stats.gatewayId, {
      receivedAt: new Date(stats.receivedAtMs).toISOString(),
      ...(stats.location === undefined ? {} : { location: stats.location }),
      rxReceived: stats.rxReceived,
      rxReceivedOk: stats.rxReceivedOk,
      rxForwarded: stats.rxForwarded,
      txReceived: stats.txReceived,
      txEmitted: stats.txEmitted,
    });
  }
}

/** The join role's view of the shared storage (all-in-one mode): root keys and nonces. */
export class StorageJoinServerStore implements JoinServerStore {
  constructor(private readonly storage: Storage) {}

  async getDevice(devEui: string) {
    const device = await this.storage.devices.get(devEui);
    if (device === undefined || device.activation !== 'otaa') return undefined;
    return { devEui: device.devEui, joinEui: device.joinEui, macVersion: device.macVersion };
  }

  async getRootKeys(devEui: string) {
    const keys = await this.storage.devices.getRootKeys(devEui);
    if (keys === undefined) throw new Error(`device ${devEui} has no root keys`);
    return keys;
  }

  nextJoinNonce(devEui: string): Promise<number> {
    return this.storage.devices.nextJoinNonce(devEui);
  }

  recordDevNonce(devEui: string, devNonce: number): Promise<'new' | 'replayed'> {
    return this.storage.devNonces.record(devEui, devNonce);
  }

  maxDevNonce(devEui: string): Promise<number | null> {
    return this.storage.devNonces.maxFor(devEui);
  }

  lastRjCount1(devEui: string): Promise<number | null> {
    return this.storage.devices.lastRjCount1(devEui);
  }

  recordRjCount1(devEui: string, rjCount1: number): Promise<'new' | 'replayed'> {
    return this.storage.devices.recordRjCount1(devEui, rjCount1);
  }
}
