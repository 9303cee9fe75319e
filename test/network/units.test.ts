import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type DeduplicatedUplink,
  Deduplicator,
  type Timers,
} from '../../src/gateway/deduplicator.js';
import type { GatewayUplink } from '../../src/gateway/types.js';
import { EU868 } from '../../src/lorawan/regions/index.js';
import { allocateDevAddr, devAddrPrefix, isDevAddrOfNetId } from '../../src/network/devaddr.js';
import { classAWindows } from '../../src/network/downlink/rx-windows.js';
import { chirpstackRxInfo, uint32BeBase64 } from '../../src/network/events.js';
import { deviceTimeAnswer, unixMsToGpsMs } from '../../src/network/mac/device-time.js';
import { linkCheckAnswer } from '../../src/network/mac/link-check.js';

class ManualTimers implements Timers {
  #next = 1;
  readonly pending = new Map<number, () => void>();
  setTimeout(callback: () => void): unknown {
    const id = this.#next++;
    this.pending.set(id, callback);
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fireAll(): void {
    for (const [id, callback] of [...this.pending]) {
      this.pending.delete(id);
      callback();
    }
  }
}

function copy(
  gatewayId: string,
  phy: number[],
  snr: number,
  frequencyHz = 868_100_000,
): GatewayUplink {
  return {
    phyPayload: Uint8Array.from(phy),
    txInfo: {
      frequencyHz,
      modulation: { lora: { bandwidthHz: 125_000, spreadingFactor: 7, codeRate: 'CR_4_5' } },
    },
    rxInfo: {
      gatewayId,
      uplinkId: 1,
      timestampUs: 1000,
      rssi: -80,
      snr,
      channel: 0,
      rfChain: 0,
      crcStatus: 'ok',
      receivedAtMs: 1_000 + snr,
    },
  };
}

describe('deduplication', () => {
  it('merges copies of one frame from several gateways into one uplink', () => {
    const timers = new ManualTimers();
    const out: DeduplicatedUplink[] = [];
    const dedup = new Deduplicator({ windowMs: 200, onUplink: (u) => out.push(u), timers });
    dedup.add(copy('aa00000000000001', [1, 2, 3], 5));
    dedup.add(copy('aa00000000000002', [1, 2, 3], 9));
    dedup.add(copy('aa00000000000003', [1, 2, 3], -2));
    dedup.add(copy('aa00000000000001', [9, 9], 1));
    assert.equal(out.length, 0, 'nothing before the window closes');
    timers.fireAll();
    assert.equal(out.length, 2);
    const merged = out.find((u) => u.phyPayload.length === 3)!;
    assert.deepEqual(
      merged.rxInfo.map((rx) => rx.gatewayId),
      ['aa00000000000001', 'aa00000000000002', 'aa00000000000003'],
    );
    assert.equal(dedup.openWindows, 0);
  });

  it('keeps the best copy when one gateway forwards the same frame twice', () => {
    const timers = new ManualTimers();
    const out: DeduplicatedUplink[] = [];
    const dedup = new Deduplicator({ windowMs: 200, onUplink: (u) => out.push(u), timers });
    dedup.add(copy('aa00000000000001', [1], 2));
    dedup.add(copy('aa00000000000001', [1], 7));
    timers.fireAll();
    assert.equal(out[0]!.rxInfo.length, 1);
    assert.equal(out[0]!.rxInfo[0]!.snr, 7);
  });

  it('does not merge the same bytes heard on another frequency', () => {
    const timers = new ManualTimers();
    const out: DeduplicatedUplink[] = [];
    const dedup = new Deduplicator({ windowMs: 200, onUplink: (u) => out.push(u), timers });
    dedup.add(copy('aa00000000000001', [1], 2, 868_100_000));
    dedup.add(copy('aa00000000000002', [1], 2, 868_300_000));
    timers.fireAll();
    assert.equal(out.length, 2);
  });

  it('emits open windows at once on close, so nothing accepted is dropped', () => {
    const timers = new ManualTimers();
    const out: DeduplicatedUplink[] = [];
    const dedup = new Deduplicator({ windowMs: 200, onUplink: (u) => out.push(u), timers });
    dedup.add(copy('aa00000000000001', [4], 2));
    dedup.close();
    assert.equal(out.length, 1);
    assert.equal(timers.pending.size, 0);
    dedup.add(copy('aa00000000000001', [5], 2));
    assert.equal(out.length, 1, 'closed: no more windows');
  });
});

describe('DevAddr allocation', () => {
  it('puts NetID 000013 (type 0) devices in 26000000-27ffffff', () => {
    assert.deepEqual(devAddrPrefix(0x000013), { prefix: 0x26000000, prefixLength: 7 });
    assert.equal(isDevAddrOfNetId(0x26011bda, 0x000013), true);
    assert.equal(isDevAddrOfNetId(0x28011bda, 0x000013), false);
  });

  it('always allocates inside the NetID block, for every NetID type', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffff }),
        fc.double({ min: 0, max: 0.9999999 }),
        (netId, r) => {
          const devAddr = allocateDevAddr(netId, () => r);
          assert.ok(devAddr >= 0 && devAddr <= 0xffffffff);
          assert.ok(isDevAddrOfNetId(devAddr, netId));
        },
      ),
    );
  });
});

describe('Class A receive windows', () => {
  const settings = { rx1DelaySeconds: 1, rx1DrOffset: 0, rx2Dr: 0, rx2FrequencyHz: 869_525_000 };

  it('opens RX1 1 s and RX2 2 s after a data uplink, on the gateway counter', () => {
    const [rx1, rx2] = classAWindows({
      region: EU868,
      uplinkFrequencyHz: 868_300_000,
      uplinkDr: 5,
      uplinkTimestampUs: 10_000_000,
      isJoinAccept: false,
      settings,
    });
    assert.deepEqual(rx1, {
      name: 'RX1',
      frequencyHz: 868_300_000,
      dataRate: 5,
      timestampUs: 11_000_000,
      delayMs: 1000,
    });
    assert.deepEqual(rx2, {
      name: 'RX2',
      frequencyHz: 869_525_000,
      dataRate: 0,
      timestampUs: 12_000_000,
      delayMs: 2000,
    });
  });

  it('uses the join-accept delays and wraps the 32-bit counter', () => {
    const [rx1, rx2] = classAWindows({
      region: EU868,
      uplinkFrequencyHz: 868_100_000,
      uplinkDr: 0,
      uplinkTimestampUs: 0xffff_ff00,
      isJoinAccept: true,
      settings: { ...settings, rx1DelaySeconds: 3, rx1DrOffset: 2 },
    });
    assert.equal(rx1.delayMs, 5000);
    assert.equal(rx1.timestampUs, (0xffff_ff00 + 5_000_000) % 2 ** 32);
    assert.equal(rx2.delayMs, 6000);
  });

  it('applies the device RxDelay and RX1 data-rate offset', () => {
    const [rx1] = classAWindows({
      region: EU868,
      uplinkFrequencyHz: 868_100_000,
      uplinkDr: 5,
      uplinkTimestampUs: 0,
      isJoinAccept: false,
      settings: { ...settings, rx1DelaySeconds: 3, rx1DrOffset: 2 },
    });
    assert.equal(rx1.delayMs, 3000);
    assert.equal(rx1.dataRate, 3);
  });

  it('opens RX1 on the frequency DlChannelReq gave the uplink channel; RX2 is unchanged', () => {
    const [rx1, rx2] = classAWindows({
      region: EU868,
      uplinkFrequencyHz: 868_100_000,
      rx1FrequencyHz: 868_500_000,
      uplinkDr: 5,
      uplinkTimestampUs: 0,
      isJoinAccept: false,
      settings,
    });
    assert.equal(rx1.frequencyHz, 868_500_000);
    assert.equal(rx1.dataRate, 5);
    assert.equal(rx2.frequencyHz, 869_525_000);
  });
});

describe('network-answered MAC commands', () => {
  it('LinkCheckAns gives the margin above the demodulation floor and the gateway count', () => {
    assert.deepEqual(linkCheckAnswer(5, 7, 3), {
      cid: 'LinkCheckAns',
      margin: 12,
      gatewayCount: 3,
    });
    assert.deepEqual(linkCheckAnswer(-25, 12, 1), {
      cid: 'LinkCheckAns',
      margin: 0,
      gatewayCount: 1,
    });
  });

  it('DeviceTimeAns counts GPS seconds and 1/256 s steps', () => {
    // 2026-01-01T00:00:00.500Z: 18 leap seconds ahead of UTC since 2017.
    const gpsMs = unixMsToGpsMs(Date.UTC(2026, 0, 1, 0, 0, 0, 500));
    assert.equal(gpsMs, Date.UTC(2026, 0, 1) - Date.UTC(1980, 0, 6) + 18_000 + 500);
    assert.deepEqual(deviceTimeAnswer(gpsMs), {
      cid: 'DeviceTimeAns',
      gpsEpochSeconds: Math.floor(gpsMs / 1000),
      fractionalSecond: 128,
    });
  });
});

describe('event JSON (ChirpStack shape)', () => {
  it('writes the gateway counter as the rxInfo context: base64 of its 4 big-endian bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (value) => {
        const bytes = Buffer.alloc(4);
        bytes.writeUInt32BE(value);
        assert.equal(uint32BeBase64(value), bytes.toString('base64'));
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps ChirpStack’s key order in rxInfo, optional keys in their place', () => {
    const rx = chirpstackRxInfo({
      gatewayId: 'aa555a0000000001',
      uplinkId: 7,
      gwTime: '2026-11-29T00:00:00.000Z',
      receivedAtMs: Date.UTC(2026, 10, 29),
      timeSinceGpsEpochMs: 1_000_000_123,
      rssi: -80,
      snr: 7.5,
      channel: 2,
      rfChain: 0,
      location: { latitude: 45.6, longitude: 4.2, altitude: 400 },
      timestampUs: 0xdeadbeef,
      crcStatus: 'ok',
    } as Parameters<typeof chirpstackRxInfo>[0]);
    assert.deepEqual(Object.keys(rx), [
      'gatewayId',
      'uplinkId',
      'gwTime',
      'nsTime',
      'timeSinceGpsEpoch',
      'rssi',
      'snr',
      'channel',
      'rfChain',
      'location',
      'context',
      'crcStatus',
    ]);
    assert.equal(rx['context'], '3q2+7w==');
    assert.equal(rx['timeSinceGpsEpoch'], '1000000.123s');
  });
});
