import type { DeviceSession } from './store.js';

/** Follows the cache's writes, each with the session it replaces or removes. */
export interface SessionMirror {
  set(session: DeviceSession, previous: DeviceSession | undefined): void;
  delete(previous: DeviceSession): void;
}

/**
 * Every active session in memory, by DevAddr and by DevEUI: the uplink path matches a frame
 * without a database read, and an unknown DevAddr costs one map lookup (no query an attacker
 * can multiply). The store stays the source of truth; the cache follows each write.
 */
export class SessionCache {
  readonly #byDevAddr = new Map<number, DeviceSession[]>();
  readonly #byDevEui = new Map<string, DeviceSession>();
  #mirror: SessionMirror | undefined;

  /** Every later `set` and `delete` is passed on (the gateway worker's copy, frame-precheck.ts). */
  mirrorTo(mirror: SessionMirror): void {
    this.#mirror = mirror;
  }

  all(): IterableIterator<DeviceSession> {
    return this.#byDevEui.values();
  }

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
    const previous = this.#remove(session.devEui);
    this.#mirror?.set(session, previous);
    this.#byDevEui.set(session.devEui, session);
    const list = this.#byDevAddr.get(session.devAddr);
    if (list === undefined) this.#byDevAddr.set(session.devAddr, [session]);
    else list.push(session);
  }

  delete(devEui: string): void {
    const previous = this.#remove(devEui);
    if (previous !== undefined) this.#mirror?.delete(previous);
  }

  /** Takes the device's session out of both maps; returns it. */
  #remove(devEui: string): DeviceSession | undefined {
    const existing = this.#byDevEui.get(devEui);
    if (existing === undefined) return undefined;
    this.#byDevEui.delete(devEui);
    const list = this.#byDevAddr.get(existing.devAddr);
    if (list === undefined) return existing;
    const remaining = list.filter((s) => s.devEui !== devEui);
    if (remaining.length === 0) this.#byDevAddr.delete(existing.devAddr);
    else this.#byDevAddr.set(existing.devAddr, remaining);
    return existing;
  }
}
