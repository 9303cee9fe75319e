import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type JoinDevice,
  type JoinServerStore,
  LocalJoinServer,
} from '../../src/join/join-server.js';
import { joinRequestMic } from '../../src/lorawan/crypto/join.js';
import { deriveSessionKeys10 } from '../../src/lorawan/crypto/session-keys.js';
import { openJoinAccept, verifyJoinAcceptMic } from '../../src/lorawan/join-accept.js';
import {
  encodeMicInput,
  encodePhyPayload,
  type JoinRequest,
} from '../../src/lorawan/phy-payload.js';

const APP_KEY = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const NWK_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 - i);
const JOIN_EUI = '70b3d57ed0000000';

class MemoryJoinStore implements JoinServerStore {
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

function joinRequest(
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

const session = {
  netId: 0x13,
  devAddr: 0x26000001,
  dlSettings: { rx1DrOffset: 0, rx2Dr: 0 },
  rxDelay: 1,
};

describe('join server', () => {
  it('accepts a 1.0 JoinRequest: JoinAccept MIC and keys match the device side', async () => {
    const store = new MemoryJoinStore();
    store.devices.set('0000000000000001', {
      devEui: '0000000000000001',
      joinEui: JOIN_EUI,
      macVersion: '1.0.3',
      appKey: APP_KEY,
    });
    const answer = await new LocalJoinServer(store).handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000001', 7, APP_KEY),
    });
    assert.equal(answer.result, 'Success');
    if (answer.result !== 'Success') return;
    const opened = openJoinAccept(answer.phyPayload, APP_KEY);
    assert.equal(verifyJoinAcceptMic(opened, { optNeg: false, key: APP_KEY }), true);
    assert.equal(opened.fields.devAddr, 0x26000001);
    assert.equal(opened.fields.dlSettings.optNeg, false);
    const expected = deriveSessionKeys10(APP_KEY, opened.fields.joinNonce, 0x13, 7);
    assert.deepEqual(answer.sessionKeys, { lorawan: '1.0', ...expected });
  });

  it('refuses unknown devices, a wrong JoinEUI, a bad MIC and malformed requests with their result codes', async () => {
    const store = new MemoryJoinStore();
    store.devices.set('0000000000000002', {
      devEui: '0000000000000002',
      joinEui: JOIN_EUI,
      macVersion: '1.0.4',
      appKey: APP_KEY,
    });
    const server = new LocalJoinServer(store);
    const ask = (phyPayload: Uint8Array) => server.handleJoinRequest({ ...session, phyPayload });
    assert.equal((await ask(joinRequest('0000000000000009', 1, APP_KEY))).result, 'UnknownDevEUI');
    assert.equal(
      (await ask(joinRequest('0000000000000002', 1, APP_KEY, '70b3d57ed0000001'))).result,
      'UnknownDevEUI',
    );
    assert.equal((await ask(joinRequest('0000000000000002', 1, NWK_KEY))).result, 'MICFailed');
    assert.equal((await ask(Uint8Array.from([0x00, 1, 2]))).result, 'MalformedRequest');
    assert.equal(
      (await ask(Uint8Array.from([0x40, 1, 2, 3, 4, 0, 0, 0, 1, 2, 3, 4]))).result,
      'MalformedRequest',
    );
    // A refused MIC must not burn the DevNonce: the real device can still use it.
    assert.equal((await ask(joinRequest('0000000000000002', 1, APP_KEY))).result, 'Success');
    assert.equal((await ask(joinRequest('0000000000000002', 1, APP_KEY))).result, 'JoinReqFailed');
  });

  it('needs a NwkKey for a 1.1 device and signs its JoinAccept with OptNeg', async () => {
    const store = new MemoryJoinStore();
    store.devices.set('0000000000000003', {
      devEui: '0000000000000003',
      joinEui: JOIN_EUI,
      macVersion: '1.1.0',
      appKey: APP_KEY,
    });
    const server = new LocalJoinServer(store);
    const withoutNwkKey = await server.handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000003', 0, APP_KEY),
    });
    assert.equal(withoutNwkKey.result, 'JoinReqFailed');
    store.devices.set('0000000000000003', {
      ...store.devices.get('0000000000000003')!,
      nwkKey: NWK_KEY,
    });
    const answer = await server.handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000003', 1, NWK_KEY),
    });
    assert.equal(answer.result, 'Success');
    if (answer.result !== 'Success') return;
    assert.equal(answer.sessionKeys.lorawan, '1.1');
    assert.equal(openJoinAccept(answer.phyPayload, NWK_KEY).fields.dlSettings.optNeg, true);
  });
});
