import type { DeduplicatedUplink, GatewayUplink, UplinkRxInfo } from './types.js';

export type { DeduplicatedUplink } from './types.js';

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface OpenWindow {
  uplink: DeduplicatedUplink;
  timer: unknown;
}

/**
 * Deduplication (as ChirpStack does it): the first copy of a PHYPayload opens a window; copies of
 * the same bytes from other gateways that arrive before it closes are merged into one uplink.
 * The same frequency is part of the key, so that a frame heard on two channels (an impossible
 * copy, or a replay) is not merged.
 */
export class Deduplicator {
  readonly #windowMs: number;
  readonly #onUplink: (uplink: DeduplicatedUplink) => void;
  readonly #timers: Timers;
  readonly #open = new Map<string, OpenWindow>();
  #closed = false;

  constructor(options: {
    windowMs: number;
    onUplink: (uplink: DeduplicatedUplink) => void;
    timers?: Timers;
  }) {
    this.#windowMs = options.windowMs;
    this.#onUplink = options.onUplink;
    this.#timers = options.timers ?? realTimers;
  }

  get openWindows(): number {
    return this.#open.size;
  }

  add(copy: GatewayUplink): void {
    if (this.#closed) return;
    const phy = copy.phyPayload;
    // latin1: one character per byte, no copy, cheaper than base64 for a map key.
    const key = `${copy.txInfo.frequencyHz}:${Buffer.from(phy.buffer, phy.byteOffset, phy.byteLength).toString('latin1')}`;
    const open = this.#open.get(key);
    if (open !== undefined) {
      mergeCopy(open.uplink, copy);
      return;
    }
    const uplink: DeduplicatedUplink = {
      phyPayload: copy.phyPayload,
      txInfo: copy.txInfo,
      rxInfo: [copy.rxInfo],
      firstReceivedAtMs: copy.rxInfo.receivedAtMs,
      lastReceivedAtMs: copy.rxInfo.receivedAtMs,
    };
    const timer = this.#timers.setTimeout(() => {
      this.#open.delete(key);
      this.#onUplink(uplink);
    }, this.#windowMs);
    this.#open.set(key, { uplink, timer });
  }

  /** Emits every open window at once (clean shutdown: nothing accepted is dropped). */
  flush(): void {
    for (const [key, open] of this.#open) {
      this.#timers.clearTimeout(open.timer);
      this.#open.delete(key);
      this.#onUplink(open.uplink);
    }
  }

  close(): void {
    this.flush();
    this.#closed = true;
  }
}

function mergeCopy(uplink: DeduplicatedUplink, copy: GatewayUplink): void {
  const rx = copy.rxInfo;
  uplink.lastReceivedAtMs = Math.max(uplink.lastReceivedAtMs, rx.receivedAtMs);
  const index = uplink.rxInfo.findIndex((existing) => existing.gatewayId === rx.gatewayId);
  if (index === -1) {
    uplink.rxInfo.push(rx);
  } else if (isBetter(rx, uplink.rxInfo[index]!)) {
    uplink.rxInfo[index] = rx;
  }
}

/** Higher SNR wins; RSSI breaks ties. */
export function isBetter(a: UplinkRxInfo, b: UplinkRxInfo): boolean {
  return a.snr > b.snr || (a.snr === b.snr && a.rssi > b.rssi);
}
