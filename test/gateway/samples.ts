/** Sample Semtech UDP values shared by the gateway backend tests. */
import type { Rxpk } from '../../src/gateway/semtech-udp/packets.js';
import type { GatewayDownlink } from '../../src/gateway/types.js';

export const GATEWAY_ID = 'aa555a0000000101';

/** A CRC-ok rxpk of the 4-byte frame 40 01 02 03 (give `size` with another `data`). */
export function rxpk(overrides: Partial<Rxpk> = {}): Rxpk {
  return {
    tmst: 3_512_348_611,
    freq: 868.1,
    chan: 0,
    rfch: 0,
    stat: 1,
    modu: 'LORA',
    datr: 'SF7BW125',
    codr: '4/5',
    rssi: -57,
    lsnr: 7.8,
    size: 4,
    data: 'QAECAw==',
    ...overrides,
  };
}

/** A Class A downlink to `gatewayId` at a gateway counter value. */
export function downlink(gatewayId = GATEWAY_ID, downlinkId = 1): GatewayDownlink {
  return {
    gatewayId,
    downlinkId,
    phyPayload: new Uint8Array([0x60, 4, 3, 2, 1, 0x20, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]),
    frequencyHz: 868_100_000,
    powerDbm: 14,
    modulation: { lora: { spreadingFactor: 7, bandwidthHz: 125_000, codeRate: 'CR_4_5' } },
    timing: { kind: 'counter', timestampUs: 3_513_348_611 },
  };
}
