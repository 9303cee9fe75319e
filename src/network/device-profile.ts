import type { AdrProfile } from './adr/algorithm.js';
import type { MacProfile } from './mac/requests.js';

/**
 * A device profile as the network server uses it: ADR settings, the MAC settings it drives
 * devices to, and the confirmed-downlink policy. The storage's profile document maps onto it
 * (server/stores.ts); devices without a profile get `DEFAULT_DEVICE_PROFILE`.
 */
export interface NetworkDeviceProfile {
  /** null for the built-in default profile. */
  id: string | null;
  adr: AdrProfile;
  mac: MacProfile;
  confirmedDownlink: {
    /** Transmissions of one confirmed downlink before it is reported unacknowledged. */
    maxAttempts: number;
    /** Class C: how long to wait for the acknowledging uplink before trying again. */
    classCTimeoutMs: number;
  };
}

export const DEFAULT_DEVICE_PROFILE: NetworkDeviceProfile = Object.freeze({
  id: null,
  adr: Object.freeze({ enabled: true, minDr: 0, maxDr: 5, installationMarginDb: 10 }),
  mac: Object.freeze({ devStatusIntervalMs: 24 * 60 * 60 * 1000 }),
  confirmedDownlink: Object.freeze({ maxAttempts: 3, classCTimeoutMs: 30_000 }),
}) as NetworkDeviceProfile;
