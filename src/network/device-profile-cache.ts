import { DEFAULT_DEVICE_PROFILE, type NetworkDeviceProfile } from './device-profile.js';
import type { NetworkDevice, NetworkStore } from './store.js';

/**
 * Device profiles in memory, read from the store on first use: a handful of profiles serve
 * thousands of devices, and the uplink path must not query them per frame. The API tells the
 * network server when a profile changes (`forget`).
 */
export class DeviceProfileCache {
  readonly #profiles = new Map<string, NetworkDeviceProfile>();

  constructor(private readonly store: Pick<NetworkStore, 'getDeviceProfile'>) {}

  /** The device's profile; the default one when it has none or it no longer exists. */
  async forDevice(device: NetworkDevice): Promise<NetworkDeviceProfile> {
    const id = device.deviceProfileId;
    if (id === null) return DEFAULT_DEVICE_PROFILE;
    const cached = this.#profiles.get(id);
    if (cached !== undefined) return cached;
    const profile = (await this.store.getDeviceProfile(id)) ?? DEFAULT_DEVICE_PROFILE;
    this.#profiles.set(id, profile);
    return profile;
  }

  forget(id: string): void {
    this.#profiles.delete(id);
  }
}
