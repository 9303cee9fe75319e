// Vendor-style codecs (./vendor/*.js) run through the sandbox against known byte vectors:
// every vector one by one, then all of a codec's vectors in one batch (sync and async), which
// must give the same outcomes.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  CodecEngine,
  type DecodeOutcome,
  type JsonValue,
  type SandboxedCodec,
} from '../../../src/application/codecs/index.js';
import {
  assertData,
  assertEncoded,
  assertFailure,
  assertReportedErrors,
  hex,
  vendorCodec,
} from './helpers.js';

interface UplinkVector {
  description: string;
  fPort: number;
  hex: string;
  variables?: Record<string, string>;
  data?: JsonValue;
  warnings?: string[];
  /** The codec's own `errors`. */
  errors?: string[];
  /** The codec throws; the message matches. */
  threw?: RegExp;
}

const engine = new CodecEngine();
after(() => engine.dispose());

function checkVector(outcome: DecodeOutcome, vector: UplinkVector): void {
  if (vector.threw !== undefined) assertFailure(outcome, 'CODEC_THREW', vector.threw);
  else if (vector.errors !== undefined)
    assertReportedErrors(outcome, vector.errors, vector.warnings ?? []);
  else assertData(outcome, vector.data!, vector.warnings ?? []);
}

function uplinkSuite(codec: SandboxedCodec, vectors: UplinkVector[]): void {
  const inputs = vectors.map((v) => ({
    bytes: hex(v.hex),
    fPort: v.fPort,
    recvTime: Date.UTC(2025, 0, 15, 8, 30),
    ...(v.variables === undefined ? {} : { variables: v.variables }),
  }));
  for (const [i, vector] of vectors.entries()) {
    it(`decodes ${vector.description}`, () => {
      checkVector(codec.decodeUplink(inputs[i]!), vector);
    });
  }
  it('decodes every vector the same way in one batch', () => {
    const outcomes = codec.decodeMany(inputs);
    assert.equal(outcomes.length, vectors.length);
    outcomes.forEach((outcome, i) => {
      checkVector(outcome, vectors[i]!);
    });
  });
  it('decodes every vector the same way in one async batch', async () => {
    const outcomes = await codec.decodeManyAsync(inputs);
    outcomes.forEach((outcome, i) => {
      checkVector(outcome, vectors[i]!);
    });
  });
}

describe('TH-20 temperature/humidity sensor (TS013, uplinks and downlinks)', () => {
  const codec = engine.load(vendorCodec('th-sensor-ttn.js'));

  it('detects decodeUplink, encodeDownlink and decodeDownlink', () => {
    assert.deepEqual(codec.signatures, {
      uplinkDecoder: 'decodeUplink',
      downlinkEncoder: 'encodeDownlink',
      downlinkDecoder: 'decodeDownlink',
      uplinkNormalizer: null,
    });
  });

  uplinkSuite(codec, [
    {
      description: 'a measurement',
      fPort: 1,
      hex: '01 0ce4 0929 7b 00',
      data: {
        version: 1,
        batteryVoltage: 3.3,
        temperature: 23.45,
        humidity: 61.5,
        buttonPressed: false,
        alarms: { high: false, low: false },
      },
    },
    {
      description: 'a negative temperature with the low alarm, button and sensor error flags',
      fPort: 1,
      hex: '01 0bb8 ff38 c8 0d',
      data: {
        version: 1,
        batteryVoltage: 3,
        temperature: -2,
        humidity: 100,
        buttonPressed: true,
        alarms: { high: false, low: true },
      },
      warnings: ['sensor error flag set'],
    },
    {
      description: 'a measurement with the optional counter',
      fPort: 1,
      hex: '01 0ce4 0929 7b 00 01f4',
      data: {
        version: 1,
        batteryVoltage: 3.3,
        temperature: 23.45,
        humidity: 61.5,
        buttonPressed: false,
        alarms: { high: false, low: false },
        counter: 500,
      },
    },
    {
      description: 'a humidity above 100 % as a warning',
      fPort: 1,
      hex: '01 0ce4 0929 d0 02',
      data: {
        version: 1,
        batteryVoltage: 3.3,
        temperature: 23.45,
        humidity: 104,
        buttonPressed: false,
        alarms: { high: true, low: false },
      },
      warnings: ['humidity 104% out of range'],
    },
    {
      description: 'a short measurement as the codec’s own error',
      fPort: 1,
      hex: '01 0ce4',
      errors: ['fPort 1 frame must be 7 or 9 bytes, got 3'],
    },
    {
      description: 'a configuration report with negative thresholds',
      fPort: 2,
      hex: '02 000f 1e f6 03',
      data: {
        intervalMinutes: 15,
        thresholds: { high: 30, low: -10 },
        ledEnabled: true,
        confirmedUplinks: true,
      },
    },
    {
      description: 'an alarm frame',
      fPort: 3,
      hex: '01 0bb8',
      data: { alarm: 'temperature_high', temperature: 30 },
    },
    {
      description: 'an unknown alarm type as an error',
      fPort: 3,
      hex: '09 0bb8',
      errors: ['unknown alarm type 9'],
    },
    {
      description: 'an unknown fPort as an error',
      fPort: 99,
      hex: '00',
      errors: ['unknown fPort 99'],
    },
  ]);

  it('encodes an interval command on the codec’s own fPort', () => {
    assertEncoded(codec.encodeDownlink({ data: { intervalMinutes: 15 } }), '01000f', 10);
  });

  it('encodes chained commands', () => {
    assertEncoded(
      codec.encodeDownlink({ data: { thresholds: { high: 30, low: -10 }, led: true }, fPort: 10 }),
      '021ef6 0301',
      10,
    );
  });

  it('refuses an out-of-range interval with the codec’s error', () => {
    assertReportedErrors(codec.encodeDownlink({ data: { intervalMinutes: 0 } }), [
      'intervalMinutes must be an integer 1-1440',
    ]);
  });

  it('refuses empty data with the codec’s error', () => {
    assertReportedErrors(codec.encodeDownlink({ data: {} }), ['no command in data']);
  });

  it('decodes a downlink back into the data that encoded it', () => {
    const data = { intervalMinutes: 15, thresholds: { high: 30, low: -10 }, led: true };
    const encoded = codec.encodeDownlink({ data });
    assert.ok(encoded.ok);
    assertData(codec.decodeDownlink({ bytes: encoded.bytes, fPort: encoded.fPort }), data);
  });

  it('reports an unknown downlink command', () => {
    assertReportedErrors(codec.decodeDownlink({ bytes: hex('7f'), fPort: 10 }), [
      'unknown command 0x7f',
    ]);
  });
});

describe('AquaPulse WM-3 water meter (TTN v2 Decoder, BCD and 32-bit counters)', () => {
  const codec = engine.load(vendorCodec('water-meter-bcd.js'));

  it('detects the legacy Decoder', () => {
    assert.equal(codec.signatures.uplinkDecoder, 'Decoder');
    assert.equal(codec.signatures.downlinkEncoder, null);
  });

  uplinkSuite(codec, [
    {
      description: 'an index report with a BCD serial, a leak alarm and two hourly deltas',
      fPort: 1,
      hex: '12345678 a1 40e20100 0a00 1400',
      data: {
        serial: '12345678',
        alarms: { leak: true, burst: false, backflow: false, tamper: false },
        batteryPercent: 67,
        indexLiters: 123456,
        volumeM3: 123.456,
        hourlyDeltas: [10, 20],
      },
    },
    {
      description: 'an index at the top of the unsigned 32-bit range',
      fPort: 1,
      hex: '00000001 f0 ffffffff',
      data: {
        serial: '00000001',
        alarms: { leak: false, burst: false, backflow: false, tamper: false },
        batteryPercent: 100,
        indexLiters: 4294967295,
        volumeM3: 4294967.295,
        hourlyDeltas: [],
      },
    },
    {
      description: 'a legacy frame with a 10-digit BCD index and every alarm',
      fPort: 2,
      hex: '0000987654 0f',
      data: {
        indexLiters: 987654,
        volumeM3: 987.654,
        alarms: { leak: true, burst: true, backflow: true, tamper: true },
        batteryPercent: 0,
      },
    },
    {
      description: 'a daily snapshot with a big-endian timestamp',
      fPort: 3,
      hex: '6553f100 40e20100 0500 b004',
      data: {
        time: '2023-11-14T22:13:20.000Z',
        indexLiters: 123456,
        minFlowLph: 5,
        maxFlowLph: 1200,
      },
    },
    {
      description: 'a short frame as the error field legacy decoders return',
      fPort: 1,
      hex: '12345678',
      data: { error: 'frame too short: 4 bytes' },
    },
    {
      description: 'an invalid BCD digit as a thrown error',
      fPort: 2,
      hex: '00009a7654 0f',
      threw: /^Error: invalid BCD digit in byte 2 \(at codec\.js:\d+:\d+\)$/,
    },
  ]);
});

describe('TrakLite T4 GPS tracker (TS013, signed 24-bit coordinates, DataView)', () => {
  const codec = engine.load(vendorCodec('gps-tracker.js'));

  uplinkSuite(codec, [
    {
      description: 'a position in Paris',
      fPort: 1,
      hex: '4b 457c25 01ac34 0023 09 57',
      data: {
        fix: true,
        moving: true,
        sos: false,
        satellites: 9,
        battery: 87,
        location: { latitude: 48.856598, longitude: 2.35219, altitude: 35, hdop: 0.9 },
      },
    },
    {
      description: 'a position in Sydney (negative latitude and altitude) with SOS and poor HDOP',
      fPort: 1,
      hex: '2d cfd4bf 6b86d0 fff4 3e 0f',
      data: {
        fix: true,
        moving: false,
        sos: true,
        satellites: 5,
        battery: 15,
        location: { latitude: -33.8688, longitude: 151.209297, altitude: -12, hdop: 6.2 },
      },
      warnings: ['poor accuracy (HDOP 6.2)', 'SOS button pressed'],
    },
    {
      description: 'a frame without a fix',
      fPort: 1,
      hex: '00 000000 000000 0000 00 64',
      data: { fix: false, moving: false, sos: false, satellites: 0, battery: 100 },
      warnings: ['no GPS fix'],
    },
    {
      description: 'a heartbeat with a 32-bit uptime',
      fPort: 2,
      hex: '55 00e6 00015180',
      data: { battery: 85, temperature: 23, uptime: { seconds: 86400, days: 1 } },
    },
    {
      description: 'a heartbeat with a low battery and a negative temperature',
      fPort: 2,
      hex: '05 ff9c 0000003c',
      data: { battery: 5, temperature: -10, uptime: { seconds: 60, days: 0 } },
      warnings: ['battery low'],
    },
    {
      description: 'a Wi-Fi scan, strongest access point first',
      fPort: 5,
      hex: '112233445566 b0 aabbccddeeff c4',
      data: {
        accessPoints: [
          { bssid: 'aa:bb:cc:dd:ee:ff', rssi: -60 },
          { bssid: '11:22:33:44:55:66', rssi: -80 },
        ],
        strongest: 'aa:bb:cc:dd:ee:ff',
      },
    },
    {
      description: 'an empty Wi-Fi scan',
      fPort: 5,
      hex: '',
      data: { accessPoints: [], strongest: null },
    },
    {
      description: 'a truncated position as an error',
      fPort: 1,
      hex: '4b 457c25',
      errors: ['position frame must be 11 bytes, got 4'],
    },
  ]);

  it('normalises a position (normalizeUplink)', () => {
    const decoded = codec.decodeUplink({ bytes: hex('4b457c2501ac3400230957'), fPort: 1 });
    assert.ok(decoded.ok);
    assertData(codec.normalizeUplink({ data: decoded.data }), {
      position: { latitude: 48.856598, longitude: 2.35219, altitude: 35 },
    });
  });

  it('says when there is nothing to normalise', () => {
    assertData(codec.normalizeUplink({ data: { fix: false } }), {}, ['no position to normalise']);
  });
});

describe('IO-8A analog module (ChirpStack v4, device variables)', () => {
  const codec = engine.load(vendorCodec('multi-analog-chirpstack.js'));

  uplinkSuite(codec, [
    {
      description: 'a 4-20 mA and a 0-10 V channel scaled by device variables',
      fPort: 10,
      hex: '05 2ee0 1388',
      variables: {
        ch0_min: '0',
        ch0_max: '100',
        ch2_type: 'voltage',
        ch2_min: '-20',
        ch2_max: '80',
      },
      data: {
        channels: [
          { channel: 0, type: 'current', milliamps: 12, fault: false, value: 50 },
          { channel: 2, type: 'voltage', volts: 5, value: 30 },
        ],
      },
    },
    {
      description: 'a broken current loop without variables',
      fPort: 10,
      hex: '01 0bb8',
      data: { channels: [{ channel: 0, type: 'current', milliamps: 3, fault: true }] },
    },
    {
      description: 'pulse counters of 24 bits',
      fPort: 11,
      hex: `81 000001 010000 ${'000000'.repeat(5)} ffffff`,
      data: {
        inputs: [
          { input: 0, active: true, pulses: 1 },
          { input: 1, active: false, pulses: 65536 },
          ...[2, 3, 4, 5, 6].map((input) => ({ input, active: false, pulses: 0 })),
          { input: 7, active: true, pulses: 16777215 },
        ],
      },
    },
    {
      description: 'a length that does not match the channel mask as a thrown error',
      fPort: 10,
      hex: '03 2ee0',
      threw: /^Error: expected 5 bytes for channel mask 0x3, got 3 \(at codec\.js:\d+:\d+\)$/,
    },
    {
      description: 'an unsupported fPort as a thrown error',
      fPort: 12,
      hex: '00',
      threw: /unsupported fPort 12/,
    },
  ]);

  it('encodes relay outputs into {bytes} on the requested fPort', () => {
    assertEncoded(
      codec.encodeDownlink({
        data: {
          outputs: [
            { channel: 0, on: true },
            { channel: 3, on: false },
          ],
        },
        fPort: 12,
      }),
      '200901',
      12,
    );
  });

  it('fails an encode without fPort when the codec gives none', () => {
    assertFailure(
      codec.encodeDownlink({ data: { outputs: [{ channel: 1, on: true }] } }),
      'CODEC_INVALID_RESULT',
      /no fPort/,
    );
  });
});

describe('DS-1 contact sensor (ChirpStack v3 Decode / Encode)', () => {
  const codec = engine.load(vendorCodec('contact-sensor-v3.js'));

  it('detects the ChirpStack v3 functions', () => {
    assert.equal(codec.signatures.uplinkDecoder, 'Decode');
    assert.equal(codec.signatures.downlinkEncoder, 'Encode');
  });

  uplinkSuite(codec, [
    {
      description: 'a heartbeat with a 24-bit open counter and a location variable',
      fPort: 1,
      hex: '09 00012c 003c',
      variables: { location: 'Mairie - porte B' },
      data: {
        open: true,
        tamper: false,
        lowBattery: false,
        event: 'heartbeat',
        openCount: 300,
        minutesSinceChange: 60,
        location: 'Mairie - porte B',
      },
    },
    {
      description: 'a tamper change without variables',
      fPort: 1,
      hex: '06 000000 0000',
      data: {
        open: false,
        tamper: true,
        lowBattery: true,
        event: 'change',
        openCount: 0,
        minutesSinceChange: 0,
      },
    },
    {
      description: 'device information with an ASCII hardware revision',
      fPort: 2,
      hex: '5a 01 02 43',
      data: { battery: 90, firmware: 'v1.2', hardware: 'C' },
    },
    { description: 'an unknown port as empty data', fPort: 7, hex: 'ff', data: {} },
  ]);

  it('encodes with Encode(fPort, obj, variables)', () => {
    assertEncoded(
      codec.encodeDownlink({ data: { confirm: true, reportIntervalHours: 12 }, fPort: 2 }),
      '1001110c',
      2,
    );
  });
});

describe('AirSense Pro air quality sensor (ES2022: classes, private fields, BigInt, Map)', () => {
  const codec = engine.load(vendorCodec('air-quality-es2022.js'));

  uplinkSuite(codec, [
    {
      description: 'a TLV frame with a 24-bit pressure and a 48-bit uptime',
      fPort: 3,
      hex: '01 00e6 02 5a 03 0384 06 018b82 08 000000015180',
      data: {
        temperature: 23,
        humidity: 45,
        co2: 900,
        pressure: 1012.5,
        uptimeSeconds: 86400,
        co2Level: 'moderate',
        units: {
          temperature: '°C',
          humidity: '%',
          co2: 'ppm',
          pressure: 'hPa',
          uptimeSeconds: 's',
        },
      },
    },
    {
      description: 'particulate matter',
      fPort: 3,
      hex: '04 007b 05 0141',
      data: { pm2_5: 12.3, pm10: 32.1, units: { pm2_5: 'µg/m³', pm10: 'µg/m³' } },
    },
    {
      description: 'a negative temperature and the largest 48-bit uptime',
      fPort: 3,
      hex: '01 ff9c 08 ffffffffffff',
      data: {
        temperature: -10,
        uptimeSeconds: 281474976710655,
        units: { temperature: '°C', uptimeSeconds: 's' },
      },
    },
    {
      description: 'a repeated field with a warning',
      fPort: 3,
      hex: '02 5a 02 64',
      data: { humidity: 50, units: { humidity: '%' } },
      warnings: ['humidity appears twice, the last value wins'],
    },
    {
      description: 'a bad CO2 level band',
      fPort: 3,
      hex: '03 09c4',
      data: { co2: 2500, co2Level: 'bad', units: { co2: 'ppm' } },
    },
    {
      description: 'an unknown TLV type as an error',
      fPort: 3,
      hex: '01 00e6 7f 00',
      errors: ['unknown TLV type 0x7f at offset 3'],
    },
    {
      description: 'a truncated value as an error',
      fPort: 3,
      hex: '03 03',
      errors: ['truncated payload: need 2 byte(s) at offset 1, 1 left'],
    },
    { description: 'a wrong fPort as an error', fPort: 4, hex: '', errors: ['unexpected fPort 4'] },
  ]);

  it('normalises to the TTN normalized payload (air.*)', () => {
    assertData(
      codec.normalizeUplink({
        data: { temperature: 23, humidity: 45, co2: 900, pressure: 1012.5 },
      }),
      { air: { temperature: 23, relativeHumidity: 45, pressure: 1012.5, co2: 900 } },
    );
    assertData(codec.normalizeUplink({ data: { pm2_5: 12.3, pm10: 32.1 } }), {
      air: { particulateMatter: { pm25: 12.3, pm10: 32.1 } },
    });
  });
});

describe('HydroValve V2 controller (downlink encoder with CRC-8)', () => {
  const codec = engine.load(vendorCodec('valve-controller.js'));
  const encodes: Array<[string, JsonValue, string, string[]?]> = [
    ['open', { command: 'open' }, '010015'],
    ['close', { command: 'close' }, '02002a'],
    ['a position', { command: 'position', percent: 75 }, '03014b5e'],
    [
      'a rounded position with a warning',
      { command: 'position', percent: 74.6 },
      '03014b5e',
      ['percent rounded to 75'],
    ],
    ['a flow alarm threshold', { command: 'flowAlarm', litresPerMinute: 12.5 }, '0502007dec'],
    [
      'a two-slot schedule',
      {
        command: 'schedule',
        slots: [
          { start: '08:00', minutes: 30 },
          { start: '18:00', minutes: 45 },
        ],
      },
      '040601e01e04382d08',
    ],
  ];
  for (const [what, data, bytes, warnings] of encodes) {
    it(`encodes ${what}`, () => {
      assertEncoded(codec.encodeDownlink({ data }), bytes, 20, warnings ?? []);
    });
    if (warnings === undefined) {
      it(`decodes ${what} back`, () => {
        assertData(codec.decodeDownlink({ bytes: hex(bytes), fPort: 20 }), data);
      });
    }
  }

  it('reports the codec’s errors for bad commands', () => {
    assertReportedErrors(codec.encodeDownlink({ data: { command: 'position', percent: 150 } }), [
      'percent must be 0-100',
    ]);
    assertReportedErrors(codec.encodeDownlink({ data: { command: 'explode' } }), [
      'unknown command "explode"',
    ]);
    assertReportedErrors(
      codec.encodeDownlink({
        data: { command: 'schedule', slots: [{ start: '25:00', minutes: 5 }] },
      }),
      ['slot 0: start must be HH:MM'],
    );
  });

  it('refuses a downlink with a bad CRC', () => {
    assertReportedErrors(codec.decodeDownlink({ bytes: hex('010016'), fPort: 20 }), [
      'CRC mismatch',
    ]);
  });

  uplinkSuite(codec, [
    {
      description: 'a status with two faults',
      fPort: 21,
      hex: '32 007d 0001e240 03',
      data: {
        positionPercent: 50,
        flowLitresPerMinute: 12.5,
        totalLitres: 123456,
        faults: ['motorStuck', 'lowBattery'],
      },
      warnings: ['device reports: motorStuck, lowBattery'],
    },
    {
      description: 'the largest unsigned 32-bit total',
      fPort: 21,
      hex: '64 0000 ffffffff 00',
      data: { positionPercent: 100, flowLitresPerMinute: 0, totalLitres: 4294967295, faults: [] },
    },
  ]);
});

describe('EM-3P energy meter (IEEE 754 floats decoded by hand, 32-bit counters)', () => {
  const codec = engine.load(vendorCodec('energy-meter-float.js'));
  const phases = [
    { phase: 'L1', voltage: 230.1, current: 5.25, apparentPower: 1208 },
    { phase: 'L2', voltage: 229.5, current: 4.75, apparentPower: 1090.1 },
    { phase: 'L3', voltage: 231.2, current: 0.5, apparentPower: 115.6 },
  ];

  uplinkSuite(codec, [
    {
      description: 'big-endian float32 values',
      fPort: 4,
      hex: '4366199a436580004367333340a80000409800003f0000004248147b',
      data: { phases, frequency: 50.02 },
    },
    {
      description: 'little-endian float32 values (firmware 1.x)',
      fPort: 6,
      hex: '9a19664300806543333367430000a840000098400000003f7b144842',
      data: { phases, frequency: 50.02 },
    },
    {
      description: 'a grid frequency out of tolerance',
      fPort: 4,
      hex: '4366000043660000436600003f8000003f8000003f80000042440000',
      data: {
        phases: ['L1', 'L2', 'L3'].map((phase) => ({
          phase,
          voltage: 230,
          current: 1,
          apparentPower: 230,
        })),
        frequency: 49,
      },
      warnings: ['grid frequency out of tolerance'],
    },
    {
      description: 'NaN values as an error',
      fPort: 4,
      hex: '7fc00000'.repeat(7),
      errors: ['value 0 is not a finite number'],
    },
    {
      description: 'energy counters and a negative power factor',
      fPort: 5,
      hex: '0012d687 00000000 ffffffff fc4a 02',
      data: {
        activeImportKWh: 1234.567,
        activeExportKWh: 0,
        reactiveKvarh: 4294967.295,
        powerFactor: -0.95,
        tariff: 'off-peak',
      },
    },
  ]);
});

describe('SoilProbe SP-2 (TTN v2 Decoder / Encoder)', () => {
  const codec = engine.load(vendorCodec('soil-moisture-ttnv2.js'));

  uplinkSuite(codec, [
    {
      description: 'moisture at three depths with the raw payload as hex',
      fPort: 1,
      hex: '020d 01c2 00fa ff9c 04b0 0e10',
      data: {
        moisture: { depth10cm: 52.5, depth30cm: 45, depth60cm: 25 },
        soilTemperature: -10,
        conductivity: 1200,
        batteryV: 3.6,
        raw: '020d01c200faff9c04b00e10',
      },
    },
    {
      description: 'a boot message with an ASCII firmware version',
      fPort: 9,
      hex: '312e342e32000000 01',
      data: { firmware: '1.4.2', resetCause: 'watchdog' },
    },
  ]);

  it('encodes with Encoder(object, port)', () => {
    assertEncoded(codec.encodeDownlink({ data: { intervalMinutes: 720 }, fPort: 2 }), '02d0', 2);
    assertEncoded(
      codec.encodeDownlink({ data: { offsets: [1.5, -0.3, 0] }, fPort: 3 }),
      '0ffd00',
      3,
    );
  });
});

describe('FlowCount PC-1 people counter (bit-packed records across byte boundaries)', () => {
  const codec = engine.load(vendorCodec('people-counter-bitpacked.js'));

  uplinkSuite(codec, [
    {
      description: 'three 20-bit history records, one saturated',
      fPort: 7,
      hex: '23 6553f100 01403ffc00802010',
      data: {
        records: [
          { time: '2023-11-14T22:13:20.000Z', in: 5, out: 3 },
          { time: '2023-11-14T22:28:20.000Z', in: 1023, out: 0 },
          { time: '2023-11-14T22:43:20.000Z', in: 512, out: 513 },
        ],
        totals: { in: 1540, out: 516, occupancy: 1024 },
      },
      warnings: ['a counter saturated at 1023'],
    },
    {
      description: 'an unknown history version with a warning',
      fPort: 7,
      hex: '41 00000000 01c070',
      data: {
        records: [{ time: '1970-01-01T00:00:00.000Z', in: 7, out: 7 }],
        totals: { in: 7, out: 7, occupancy: 0 },
      },
      warnings: ['unknown history version 2'],
    },
    {
      description: 'an empty history',
      fPort: 7,
      hex: '20 6553f100',
      data: { records: [], totals: { in: 0, out: 0, occupancy: 0 } },
    },
    {
      description: 'a truncated history as an error',
      fPort: 7,
      hex: '23 6553f100 0140',
      errors: ['history of 3 records needs 13 bytes, got 7'],
    },
    {
      description: 'a status with known and unknown alarm bits',
      fPort: 8,
      hex: '0105 c9',
      data: { alarms: ['tamper', 'low_battery'], battery: 100, mounted: true },
      warnings: ['unknown alarm bits 0x100'],
    },
  ]);

  it('encodes a bit-packed configuration and decodes it back', () => {
    const data = { mode: 'eco', sensitivity: 9, led: true, periodMinutes: 90 };
    assertEncoded(codec.encodeDownlink({ data }), '6605a0', 9);
    assertData(codec.decodeDownlink({ bytes: hex('6605a0'), fPort: 9 }), data);
  });

  it('reports every invalid setting at once', () => {
    assertReportedErrors(
      codec.encodeDownlink({ data: { mode: 'turbo', sensitivity: 20, periodMinutes: 0 } }),
      [
        'mode must be one of normal, eco, burst, test',
        'sensitivity must be 0-15',
        'periodMinutes must be 1-4095',
      ],
    );
    assertReportedErrors(codec.decodeDownlink({ bytes: hex('66'), fPort: 9 }), [
      'read past the end at bit 8',
    ]);
  });
});
