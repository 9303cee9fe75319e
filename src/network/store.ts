import type { GatewayStats } from '../gateway/types.js';
import type { NetworkDeviceProfile } from './device-profile.js';
import type { GaletEvent } from './events.js';
import type { SessionMac } from './mac/session-mac.js';
import type { MacVersion, SessionKeys } from './session.js';

/** An activated device's network session as the network server keeps it. */
export interface DeviceSession {
  devEui: string;
  devAddr: number;
  macVersion: MacVersion;
  keys: SessionKeys;
  /** Last accepted 32-bit uplink counter; null before the first uplink. */
  fCntUp: number | null;
  /** Next downlink counters to use (1.0 uses nFCntDown only). */
  nFCntDown: number;
  aFCntDown: number;
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
  /** The confirmed downlink the device has yet to acknowledge (its FCntDown is the 1.1 ConfFCnt). */
  awaitingAck: { queueItemId: string; fCntDown: number } | null;
  /**
   * The MAC layer's state as stored (JSON); `mac/session-mac.ts` checks it before use. null
   * until the MAC layer first needed one (most sessions of devices without ADR never do).
   */
  macState: unknown;
  createdAt: string;
  updatedAt: string;
}

export interface NetworkDevice {
  devEui: string;
  name: string;
  applicationId: string;
  macVersion: MacVersion;
  deviceClass: 'A' | 'C';
  /** null: the built-in default profile. */
  deviceProfileId: string | null;
  /** The device's tags, copied into each event's deviceInfo (ChirpStack's shape). */
  tags?: Readonly<Record<string, string>>;
}

export interface QueuedDownlink {
  id: string;
  devEui: string;
  fPort: number;
  data: Uint8Array;
  confirmed: boolean;
  /** Transmissions so far. */
  attempts: number;
  /**
   * Operator-blind sessions: `data` is already encrypted by the provider for this downlink
   * counter of the session with this key id (downlink/blind-downlinks.ts). Absent: plaintext.
   */
  encryptedFor?: { fCntDown: number; sessionKeyId: string } | null;
}

/**
 * What the network server reads and writes. The storage layer implements it; tests may use it
 * directly against SQLite. Kept small so the network role can later run on its own store.
 */
export interface NetworkStore {
  listSessions(): Promise<DeviceSession[]>;
  getSession(devEui: string): Promise<DeviceSession | undefined>;
  saveSession(session: DeviceSession): Promise<void>;
  /**
   * Accepts an uplink: compare-and-set of its counter and its `up` event, stored together.
   * False when another writer moved the counter first (then nothing is stored).
   */
  commitUplink(
    devEui: string,
    expected: number | null,
    next: number,
    event: GaletEvent,
  ): Promise<boolean>;
  /**
   * Returns the downlink counter to use now and persists the next one; `atLeast`: skips to it
   * first when the counter is below (an operator-blind item encrypted for a later counter).
   */
  takeFCntDown(devEui: string, counter: 'n' | 'a', atLeast?: number): Promise<number>;
  /** Stores the session's MAC state (null: back to the defaults). */
  saveMacState(devEui: string, macState: SessionMac | null): Promise<void>;
  getDevice(devEui: string): Promise<NetworkDevice | undefined>;
  /** undefined when no such profile exists (the device then uses the default profile). */
  getDeviceProfile(id: string): Promise<NetworkDeviceProfile | undefined>;
  getDownlink(id: string): Promise<QueuedDownlink | undefined>;
  /**
   * The best gateway of the device's latest stored uplink (for Class C downlinks after a
   * restart, before the device sends again); undefined when none is known.
   */
  lastUplinkGateway(
    devEui: string,
  ): Promise<{ gatewayId: string; snr: number; rssi: number; atMs: number } | undefined>;
  /** Every device (read once at start to warm the cache). */
  listDevices(): Promise<NetworkDevice[]>;
  touchDevice(devEui: string, seenAt: string): Promise<void>;
  nextPendingDownlink(devEui: string): Promise<QueuedDownlink | undefined>;
  countPendingDownlinks(devEui: string): Promise<number>;
  /** Devices with at least one pending downlink (read once at start). */
  devicesWithPendingDownlinks(): Promise<string[]>;
  markDownlinkSent(id: string, fCntDown: number): Promise<void>;
  markDownlinkAcked(id: string): Promise<void>;
  setAwaitingAck(devEui: string, awaiting: DeviceSession['awaitingAck']): Promise<void>;
  /** Puts an item back in the queue (it was never transmitted), keeping the reason. */
  requeueDownlink(id: string, reason: string): Promise<void>;
  markDownlinkFailed(id: string, reason: string): Promise<void>;
  appendEvent(event: GaletEvent): Promise<void>;
  isGatewayKnown(gatewayId: string): Promise<boolean>;
  recordGatewayStats(stats: GatewayStats): Promise<void>;
}
