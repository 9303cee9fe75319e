import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataSessionKeys } from '../../src/network/prepared-keys.js';
import type { DeviceSession } from '../../src/network/store.js';
import { deviceSession } from '../helpers/device-session.js';

function session(i: number): DeviceSession {
  const key = (seed: number) => Uint8Array.from({ length: 16 }, (_, j) => (seed + j) & 0xff);
  return deviceSession({
    devEui: i.toString(16).padStart(16, '0'),
    devAddr: i,
    keys: { lorawan: '1.0', nwkSKey: key(i), appSKey: key(i + 1) },
  });
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
