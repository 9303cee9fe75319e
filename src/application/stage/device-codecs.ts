import type { CodecSettings, DeviceProfile } from '../../storage/index.js';

/** Where the lookup reads devices and profiles (`storage.devices`, `storage.deviceProfiles`). */
export interface DeviceCodecSource {
  devices: {
    profileIdsOf(devEuis: Iterable<string>): Promise<Map<string, string | null>>;
  };
  deviceProfiles: {
    get(id: string): Promise<Pick<DeviceProfile, 'codec'> | undefined>;
    idsWithCodec(): Promise<string[]>;
  };
}

export interface DeviceCodec {
  /** The device's profile; null: none (no codec). */
  profileId: string | null;
  /** The profile's codec; undefined: none. The same object until the profile changes. */
  codec: CodecSettings | undefined;
}

export interface DeviceCodecLookupOptions {
  /** How long a device's profile and a profile's codec are reused (default 10 000 ms). */
  ttlMs?: number;
  /** Devices remembered at most; the oldest entry goes first (default 100 000). */
  maxDevices?: number;
  now?: () => number;
}

interface Cached<T> {
  value: T;
  expiresAtMs: number;
}

/**
 * Device -> profile -> codec, cached for the application stage. Entries live `ttlMs`, so that a
 * device moved to another profile, or a profile changed by another process (a second Galet on
 * the same PostgreSQL, the provider link), is seen within that time without any notification
 * path; a profile changed through this process's API is dropped at once (`profileChanged`).
 */
export class DeviceCodecLookup {
  readonly #source: DeviceCodecSource;
  readonly #ttlMs: number;
  readonly #maxDevices: number;
  readonly #now: () => number;
  readonly #devices = new Map<string, Cached<string | null>>();
  readonly #profiles = new Map<string, Cached<CodecSettings | undefined>>();
  #codecProfiles: Cached<ReadonlySet<string>> | undefined;

  constructor(source: DeviceCodecSource, options: DeviceCodecLookupOptions = {}) {
    this.#source = source;
    this.#ttlMs = options.ttlMs ?? 10_000;
    this.#maxDevices = options.maxDevices ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The codec of each device that has one (the others are left out). While no profile names a
   * codec, nothing is read per device; otherwise the devices missing from the cache are read in
   * one query.
   */
  async codecsOf(devEuis: Iterable<string>): Promise<Map<string, DeviceCodec>> {
    const result = new Map<string, DeviceCodec>();
    if ((await this.#profilesWithCodec()).size === 0) return result;
    const now = this.#now();
    const unknown: string[] = [];
    for (const devEui of new Set(devEuis)) {
      const cached = this.#devices.get(devEui);
      if (cached === undefined || cached.expiresAtMs <= now) unknown.push(devEui);
    }
    if (unknown.length > 0) {
      const read = await this.#source.devices.profileIdsOf(unknown);
      for (const devEui of unknown) this.#remember(devEui, read.get(devEui) ?? null, now);
    }
    for (const devEui of new Set(devEuis)) {
      const profileId = this.#devices.get(devEui)?.value ?? null;
      if (profileId === null || !(await this.#profilesWithCodec()).has(profileId)) continue;
      const codec = await this.#codecOf(profileId);
      if (codec !== undefined) result.set(devEui, { profileId, codec });
    }
    return result;
  }

  /** Whether any profile may have a codec (cached like the rest). */
  async anyCodec(): Promise<boolean> {
    return (await this.#profilesWithCodec()).size > 0;
  }

  /** Ids of the profiles that may have a codec, read again after `ttlMs` or a change here. */
  async #profilesWithCodec(): Promise<ReadonlySet<string>> {
    const now = this.#now();
    if (this.#codecProfiles !== undefined && this.#codecProfiles.expiresAtMs > now) {
      return this.#codecProfiles.value;
    }
    const ids = new Set(await this.#source.deviceProfiles.idsWithCodec());
    this.#codecProfiles = { value: ids, expiresAtMs: now + this.#ttlMs };
    return ids;
  }

  #remember(devEui: string, profileId: string | null, now: number): void {
    this.#devices.delete(devEui);
    this.#devices.set(devEui, { value: profileId, expiresAtMs: now + this.#ttlMs });
    if (this.#devices.size > this.#maxDevices) {
      const oldest = this.#devices.keys().next();
      if (oldest.done !== true) this.#devices.delete(oldest.value);
    }
  }

  /** A profile was changed or deleted here: read it again on its next use. */
  profileChanged(id: string): void {
    this.#profiles.delete(id);
    this.#codecProfiles = undefined;
  }

  /** A device was changed (its profile) or deleted here. */
  deviceChanged(devEui: string): void {
    this.#devices.delete(devEui);
  }

  async #codecOf(profileId: string): Promise<CodecSettings | undefined> {
    const now = this.#now();
    const cached = this.#profiles.get(profileId);
    if (cached !== undefined && cached.expiresAtMs > now) return cached.value;
    const profile = await this.#source.deviceProfiles.get(profileId);
    const codec = profile?.codec;
    // An unchanged codec keeps its object, and with it the compiled codec (PayloadCodecs).
    const value =
      cached?.value !== undefined &&
      codec !== undefined &&
      cached.value.type === codec.type &&
      cached.value.source === codec.source
        ? cached.value
        : codec;
    this.#profiles.set(profileId, { value, expiresAtMs: now + this.#ttlMs });
    return value;
  }
}
