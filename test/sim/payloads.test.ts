import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createPayloadGenerator,
  decodeGpsTracker,
  decodeParkingSpot,
  decodeRoadWeather,
  decodeSensorPayload,
  decodeWaterMeter,
  encodeRoadWeather,
  encodeWaterMeter,
  PAYLOAD_KINDS,
  type PayloadKind,
} from '../../src/sim/payloads.js';
import { createRandom } from '../../src/sim/random.js';

const SIZES: Record<PayloadKind, Record<number, number>> = {
  roadWeather: { 10: 11 },
  streetLight: { 20: 10 },
  soil: { 30: 9 },
  airQuality: { 40: 13 },
  waterLevel: { 50: 7 },
  parkingSpot: { 60: 1, 61: 4 },
  waterMeter: { 70: 17 },
  gpsTracker: { 80: 11 },
};

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function series(kind: PayloadKind, seed: number, count: number): string[] {
  const generator = createPayloadGenerator(kind, createRandom(seed));
  return Array.from({ length: count }, () => {
    const { fPort, bytes } = generator.next();
    return `${fPort}:${hex(bytes)}`;
  });
}

describe('sensor payload formats', () => {
  it('encodes the road weather format as documented', () => {
    const payload = encodeRoadWeather({
      roadSurfaceTemperatureC: -1.25,
      airTemperatureC: 2.5,
      humidityPercent: 91.5,
      dewPointC: 1.17,
      surfaceState: 'frost',
      batteryPercent: 87,
      freezingRisk: true,
      sensorFault: false,
    });
    assert.equal(payload.fPort, 10);
    assert.equal(hex(payload.bytes), '01' + 'ff83' + '00fa' + 'b7' + '0075' + '03' + '57' + '01');
    assert.deepEqual(decodeRoadWeather(payload.bytes), {
      roadSurfaceTemperatureC: -1.25,
      airTemperatureC: 2.5,
      humidityPercent: 91.5,
      dewPointC: 1.17,
      surfaceState: 'frost',
      batteryPercent: 87,
      freezingRisk: true,
      sensorFault: false,
    });
  });

  it('encodes the water meter format as documented', () => {
    const reading = {
      indexLitres: 123_456,
      hourlyLitres: [0, 12, 40, 3, 0, 250],
      leak: false,
      backflow: true,
      tamper: false,
      lowBattery: true,
    };
    const payload = encodeWaterMeter(reading);
    assert.equal(hex(payload.bytes), '0001e240' + '0000000c00280003000000fa' + '0a');
    assert.deepEqual(decodeWaterMeter(payload.bytes), reading);
  });

  it('refuses a payload of the wrong size when decoding', () => {
    assert.throws(() => decodeRoadWeather(new Uint8Array(10)), /11 bytes, got 10/);
  });
});

describe('payload generators', () => {
  for (const kind of PAYLOAD_KINDS) {
    it(`${kind}: fixed sizes per FPort, decodable, deterministic for a seed`, () => {
      const generator = createPayloadGenerator(kind, createRandom(42));
      const ports = new Set<number>();
      for (let i = 0; i < 200; i++) {
        const payload = generator.next();
        const size = SIZES[kind][payload.fPort];
        assert.ok(size !== undefined, `unexpected FPort ${payload.fPort}`);
        assert.equal(payload.bytes.length, size);
        ports.add(payload.fPort);
        const decoded = decodeSensorPayload(kind, payload);
        assert.equal(typeof decoded, 'object');
      }
      assert.deepEqual([...ports].sort(), Object.keys(SIZES[kind]).map(Number).sort());
      assert.deepEqual(series(kind, 7, 20), series(kind, 7, 20));
      assert.notDeepEqual(series(kind, 7, 20), series(kind, 8, 20));
    });
  }

  it('keeps readings plausible: a water meter index only grows, trackers stay near home', () => {
    const meter = createPayloadGenerator('waterMeter', createRandom(5));
    let previous = -1;
    for (let i = 0; i < 100; i++) {
      const reading = decodeWaterMeter(meter.next().bytes);
      assert.ok(reading.indexLitres >= previous);
      previous = reading.indexLitres;
    }
    const home = { latitude: 48.1, longitude: -1.68 };
    const tracker = createPayloadGenerator('gpsTracker', createRandom(5), { home });
    for (let i = 0; i < 100; i++) {
      const position = decodeGpsTracker(tracker.next().bytes);
      assert.ok(Math.abs(position.latitude - home.latitude) < 0.05);
      assert.ok(Math.abs(position.longitude - home.longitude) < 0.05);
    }
  });

  it('parking spot: change events carry a sequence, heartbeats the count of changes', () => {
    const spot = createPayloadGenerator('parkingSpot', createRandom(9), { heartbeatEvery: 4 });
    let changes = 0;
    let lastSequence: number | undefined;
    for (let i = 0; i < 60; i++) {
      const payload = spot.next();
      const reading = decodeParkingSpot(payload.fPort, payload.bytes);
      if (payload.fPort === 60) {
        changes++;
        if (lastSequence !== undefined) assert.equal(reading.sequence, (lastSequence + 1) & 0x0f);
        lastSequence = reading.sequence;
      } else {
        assert.equal(reading.heartbeat?.changesSinceLastHeartbeat, changes);
        changes = 0;
      }
    }
  });
});
