import type { NetworkDevice, NetworkStore } from './store.js';

/**
 * The devices the uplink path needs (name, application, class), read from the store once and
 * kept until the API changes or removes them. Bounded: past the limit the oldest entries go.
 */
export class DeviceCache {
  readonly #devices = new Map<string, NetworkDevice>();

  constructor(
    private readonly store: NetworkStore,
    private readonly maxEntries = 200_000,
  ) {}

  load(devices: Iterable<NetworkDevice>): void {
    for (const device of devices) {
      if (this.#devices.size >= this.maxEntries) return;
      this.#devices.set(device.devEui, device);
    }
  }

  async get(devEui: string): Promise<NetworkDevice | undefined> {
    const cached = this.#devices.get(devEui);
    if (cached !== undefined) return cached;
    const device = await this.store.getDevice(devEui);
    if (device !== undefined) {
      if (this.#devices.size >= this.maxEntries) {
        const oldest = this.#devices.keys().next().value;
        if (oldest !== undefined) this.#devices.delete(oldest);
      }
      this.#devices.set(devEui, device);
    }
    return device;
  }

  forget(devEui: string): void {
    this.#devices.delete(devEui);
  }
}
