import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSessionKeys } from '../../src/network/prepared-keys.js';
import type { DeviceSession } from '../../src/network/store.js';

function session(i: number): DeviceSession {
  const key = (seed: number) => Uint8Array.from({ length: 16 }, (_, j) => (seed + j) & 0xff);
  return {
    devEui: i.toString(16).padStart(16, '0'),
    devAddr: i,
    macVersion: '1.0.4',
    keys: { lorawan: '1.0', nwkSKey: key(i), appSKey: key(i + 1) },
    fCntUp: null,
    nFCntDown: 0,
    aFCntDown: 0,
    rx1DelaySeconds: 1,
    rx1DrOffset: 0,
    rx2Dr: 0,
    rx2FrequencyHz: 869_525_000,
    awaitingAck: null,
    macState: null,
    createdAt: '2026-11-29T00:00:00.000Z',
    updatedAt: '2026-11-29T00:00:00.000Z',
  };
}

describe('prepared session keys', () => {
  it('serves one uplink from one preparation, and keeps keys long only for devices seen twice', () => {
    const device = session(1_000_000);
    const first = dataSessionKeys(device);
    assert.equal(dataSessionKeys({ ...device, fCntUp: 5 }), first, 'copies share the keys object');
    // Hundreds of first-time devices later, the short tier has forgotten it...
    for (let i = 0; i < 400; i++) dataSessionKeys(session(i));
    const second = dataSessionKeys(device);
    assert.notEqual(second, first);
    // ...but having been seen before, it is now kept in the long tier.
    for (let i = 400; i < 800; i++) dataSessionKeys(session(i));
    assert.equal(dataSessionKeys(device), second);
  });
});
