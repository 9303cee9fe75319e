// The built-in Cayenne LPP codec against the byte vectors of the Cayenne LPP documentation
// (and the examples that ship with TTN and ChirpStack), plus round trips.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CAYENNE_LPP_TYPES,
  CayenneLppCodec,
  decodeCayenneLpp,
  encodeCayenneLpp,
  type JsonValue,
} from '../../../src/application/codecs/index.js';
import { assertData, assertEncoded, assertReportedErrors, hex, toHex } from './helpers.js';

const codec = new CayenneLppCodec();

const VECTORS: Array<[string, string, JsonValue]> = [
  [
    'two temperature sensors (LPP documentation)',
    '03 67 0110 05 67 00ff',
    { temperatureSensor: { '3': 27.2, '5': 25.5 } },
  ],
  [
    'a negative temperature (LPP documentation)',
    '01 67 ffd7',
    { temperatureSensor: { '1': -4.1 } },
  ],
  [
    'an accelerometer (LPP documentation)',
    '06 71 04d2 fb2e 0000',
    { accelerometer: { '6': { x: 1.234, y: -1.234, z: 0 } } },
  ],
  [
    'a GPS location (LPP documentation)',
    '01 88 06765f f2960a 0003e8',
    { gpsLocation: { '1': { latitude: 42.3519, longitude: -87.9094, altitude: 10 } } },
  ],
  [
    'temperature, humidity, barometer and illuminance (AWcA5gJoMANzJigEZQD9)',
    toHex(Buffer.from('AWcA5gJoMANzJigEZQD9', 'base64')),
    {
      temperatureSensor: { '1': 23 },
      humiditySensor: { '2': 24 },
      barometer: { '3': 976.8 },
      illuminanceSensor: { '4': 253 },
    },
  ],
  [
    'a digital input and output',
    '01 00 64 02 01 01',
    { digitalInput: { '1': 100 }, digitalOutput: { '2': 1 } },
  ],
  [
    'analog input and output, positive and negative',
    '03 02 012c 04 03 ff38',
    { analogInput: { '3': 3 }, analogOutput: { '4': -2 } },
  ],
  ['presence', '05 66 01', { presenceSensor: { '5': 1 } }],
  ['humidity in half percents', '02 68 61', { humiditySensor: { '2': 48.5 } }],
  ['a gyrometer', '07 86 0064 ff9c 2710', { gyrometer: { '7': { x: 1, y: -1, z: 100 } } }],
  ['a barometer', '03 73 277f', { barometer: { '3': 1011.1 } }],
  [
    'a GPS location in the southern and western hemispheres, below sea level',
    '02 88 fad4f9 feeac4 ffff9c',
    { gpsLocation: { '2': { latitude: -33.8695, longitude: -7.0972, altitude: -1 } } },
  ],
  ['an empty payload', '', {}],
  [
    'the same sensor twice (the last reading wins)',
    '01 67 0001 01 67 0002',
    { temperatureSensor: { '1': 0.2 } },
  ],
];

describe('Cayenne LPP decoding', () => {
  for (const [what, bytes, data] of VECTORS) {
    it(`decodes ${what}`, () => {
      assertData(codec.decodeUplink({ bytes: hex(bytes), fPort: 1 }), data);
    });
  }

  it('decodes the same way in a batch and as a downlink', async () => {
    const inputs = VECTORS.map(([, bytes]) => ({ bytes: hex(bytes), fPort: 1 }));
    const outcomes = await codec.decodeManyAsync(inputs);
    outcomes.forEach((outcome, i) => {
      assertData(outcome, VECTORS[i]![2]);
    });
    assertData(codec.decodeDownlink({ bytes: hex('01 00 01'), fPort: 1 }), {
      digitalInput: { '1': 1 },
    });
  });

  it('reports an unknown type, a truncated value and a lone trailing byte', () => {
    assertReportedErrors(codec.decodeUplink({ bytes: hex('01 67 0110 02 7f 00'), fPort: 1 }), [
      'Cayenne LPP: unknown data type 127 at offset 5',
    ]);
    assertReportedErrors(codec.decodeUplink({ bytes: hex('01 88 0676'), fPort: 1 }), [
      'Cayenne LPP: gpsLocation on channel 1 needs 9 bytes, 2 left',
    ]);
    assertReportedErrors(codec.decodeUplink({ bytes: hex('01 67 0110 02'), fPort: 1 }), [
      'Cayenne LPP: 1 byte left at offset 4, an entry needs at least 3',
    ]);
  });

  it('has no normalizeUplink', () => {
    const outcome = codec.normalizeUplink({ data: {} });
    assert.ok(!outcome.ok);
    assert.equal(outcome.error.code, 'CODEC_FUNCTION_MISSING');
  });
});

describe('Cayenne LPP encoding', () => {
  it('encodes every documented vector back to its bytes', () => {
    for (const [what, bytes, data] of VECTORS) {
      if (what.includes('twice')) continue;
      const encoded = encodeCayenneLpp(data);
      assert.ok(encoded.ok, what);
      // Entries come out by type (in the order of the type table) then channel.
      const decoded = decodeCayenneLpp(encoded.value);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.value, data, what);
      if (Object.keys(data as object).length <= 1)
        assert.equal(toHex(encoded.value), bytes.replace(/\s+/g, ''), what);
    }
  });

  it('encodes a downlink on the requested fPort, rounding to the type’s resolution', () => {
    assertEncoded(
      codec.encodeDownlink({
        data: { temperatureSensor: { '3': 27.24 }, digitalOutput: { '1': 1 } },
        fPort: 99,
      }),
      '010101 03670110',
      99,
    );
  });

  it('refuses values out of range, unknown kinds, bad channels and a missing fPort', () => {
    const refusals: Array<[JsonValue, string]> = [
      [
        { temperatureSensor: { '1': 4000 } },
        'temperatureSensor.1 = 4000 is out of range (-3276.8 to 3276.7)',
      ],
      [{ humiditySensor: { '1': -1 } }, 'humiditySensor.1 = -1 is out of range (0 to 127.5)'],
      [
        { gpsLocation: { '1': { latitude: 1, longitude: 2 } } },
        'gpsLocation.1.altitude must be a finite number',
      ],
      [{ accelerometer: { '1': 5 } }, 'accelerometer.1 must be an object {x, y, z}'],
      [{ thermostat: { '1': 20 } }, 'Cayenne LPP: unknown sensor kind "thermostat"'],
      [{ digitalInput: { '256': 1 } }, 'digitalInput: channel "256" is not an integer 0-255'],
      [{ digitalInput: { x: 1 } }, 'digitalInput: channel "x" is not an integer 0-255'],
      [{ digitalInput: [1] }, 'digitalInput must be an object keyed by channel'],
      [[1, 2], 'Cayenne LPP data must be an object such as {"temperatureSensor": {"1": 21.5}}'],
    ];
    for (const [data, error] of refusals) {
      assertReportedErrors(codec.encodeDownlink({ data, fPort: 1 }), [error]);
    }
    const outcome = codec.encodeDownlink({ data: { digitalInput: { '1': 1 } } });
    assert.ok(!outcome.ok);
    assert.equal(outcome.error.code, 'CODEC_INVALID_INPUT');
  });

  it('decodes what it encodes, for any values on the types’ grids (fast-check)', () => {
    const reading = (type: (typeof CAYENNE_LPP_TYPES)[number]): fc.Arbitrary<JsonValue> => {
      const value = type.value;
      const grid = (bytes: number, signed: boolean, scale: number) => {
        const span = 2 ** (8 * bytes);
        return fc
          .integer({ min: signed ? -span / 2 : 0, max: signed ? span / 2 - 1 : span - 1 })
          .map((n) => n / scale);
      };
      if (value.kind === 'scalar') return grid(value.bytes, value.signed, value.scale);
      return fc
        .tuple(...value.scales.map((scale) => grid(value.bytes, value.signed, scale)))
        .map((numbers) => Object.fromEntries(value.fields.map((field, i) => [field, numbers[i]!])));
    };
    const payload = fc.subarray([...CAYENNE_LPP_TYPES], { minLength: 1 }).chain((types) =>
      fc.record(
        Object.fromEntries(
          types.map((type) => [
            type.name,
            fc.dictionary(fc.integer({ min: 0, max: 255 }).map(String), reading(type), {
              minKeys: 1,
              maxKeys: 3,
            }),
          ]),
        ),
      ),
    );
    fc.assert(
      fc.property(payload, (data) => {
        const encoded = encodeCayenneLpp(data);
        assert.ok(encoded.ok, JSON.stringify(data));
        const decoded = decodeCayenneLpp(encoded.value);
        assert.ok(decoded.ok);
        assert.deepEqual(decoded.value, JSON.parse(JSON.stringify(data)));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on random bytes (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const result = decodeCayenneLpp(bytes);
        if (result.ok) {
          const again = encodeCayenneLpp(result.value);
          assert.ok(again.ok);
        } else {
          assert.match(result.error, /^Cayenne LPP: /);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
