import type { DeviceSession } from './store.js';

/**
 * Every active session in memory, by DevAddr and by DevEUI: the uplink path matches a frame
 * without a database read, and an unknown DevAddr costs one map lookup (no query an attacker
 * can multiply). The store stays the source of truth; the cache follows each write.
 */
export class SessionCache {
  readonly #byDevAddr = new Map<number, DeviceSession[]>();
  readonly #byDevEui = new Map<string, DeviceSession>();

  get size(): number {
    return this.#byDevEui.size;
  }

  load(sessions: Iterable<DeviceSession>): void {
    for (const session of sessions) this.set(session);
  }

  byDevAddr(devAddr: number): readonly DeviceSession[] {
    return this.#byDevAddr.get(devAddr) ?? [];
  }

  byDevEui(devEui: string): DeviceSession | undefined {
    return this.#byDevEui.get(devEui);
  }

  set(session: DeviceSession): void {
    this.delete(session.devEui);
    this.#byDevEui.set(session.devEui, session);
    const list = this.#byDevAddr.get(session.devAddr);
    if (list === undefined) this.#byDevAddr.set(session.devAddr, [session]);
    else list.push(session);
  }

  delete(devEui: string): void {
    const existing = this.#byDevEui.get(devEui);
    if (existing === undefined) return;
    this.#byDevEui.delete(devEui);
    const list = this.#byDevAddr.get(existing.devAddr);
    if (list === undefined) return;
    const remaining = list.filter((s) => s.devEui !== devEui);
    if (remaining.length === 0) this.#byDevAddr.delete(existing.devAddr);
    else this.#byDevAddr.set(existing.devAddr, remaining);
  }
}
