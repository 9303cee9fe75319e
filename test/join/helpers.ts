/** What the join server tests share: root keys, an in-memory store, JoinRequest frames. */
import type { JoinDevice, JoinServerStore } from '../../src/join/join-server.js';
import { joinRequestMic } from '../../src/lorawan/crypto/join.js';
import {
  encodeMicInput,
  encodePhyPayload,
  type JoinRequest,
} from '../../src/lorawan/phy-payload.js';

export const APP_KEY = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
export const NWK_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 - i);
export const JOIN_EUI = '70b3d57ed0000000';

export class MemoryJoinStore implements JoinServerStore {
  readonly devices = new Map<string, JoinDevice & { appKey: Uint8Array; nwkKey?: Uint8Array }>();
  readonly nonces = new Map<string, Set<number>>();
  joinNonce = 0;

  async getDevice(devEui: string) {
    return this.devices.get(devEui);
  }
  async getRootKeys(devEui: string) {
    const device = this.devices.get(devEui)!;
    return { appKey: device.appKey, nwkKey: device.nwkKey };
  }
  async nextJoinNonce() {
    return ++this.joinNonce;
  }
  async recordDevNonce(devEui: string, devNonce: number) {
    const used = this.nonces.get(devEui) ?? new Set<number>();
    this.nonces.set(devEui, used);
    if (used.has(devNonce)) return 'replayed' as const;
    used.add(devNonce);
    return 'new' as const;
  }
  async maxDevNonce(devEui: string) {
    const used = [...(this.nonces.get(devEui) ?? [])];
    return used.length === 0 ? null : Math.max(...used);
  }
}

export function joinRequest(
  devEui: string,
  devNonce: number,
  key: Uint8Array,
  joinEui = JOIN_EUI,
): Uint8Array {
  const request: JoinRequest = {
    mType: 'JoinRequest',
    joinEui,
    devEui,
    devNonce,
    mic: new Uint8Array(4),
  };
  request.mic = joinRequestMic(key, encodeMicInput(request));
  return encodePhyPayload(request);
}

/** Session parameters a network sends with a JoinRequest. */
export const session = {
  netId: 0x13,
  devAddr: 0x26000001,
  dlSettings: { rx1DrOffset: 0, rx2Dr: 0 },
  rxDelay: 1,
};
