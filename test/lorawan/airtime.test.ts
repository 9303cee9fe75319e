import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fskTimeOnAirMs, loraSymbolTimeUs, loraTimeOnAirMs } from '../../src/lorawan/airtime.js';
import { isLorawanError } from '../../src/lorawan/errors.js';

interface AirtimeVector {
  id: string;
  kind: string;
  sf: number;
  bw: number;
  payloadSize: number;
  codingRate: '4/5' | '4/6' | '4/7' | '4/8';
  crc: boolean;
  preamble: number;
  expectMs: number;
}

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/lorawan-vectors.json', import.meta.url), 'utf8'),
) as { vectors: AirtimeVector[] };
const airtimeVectors = fixtures.vectors.filter((v) => v.kind === 'airtime');

function invalidField(error: unknown): boolean {
  return isLorawanError(error) && error.code === 'INVALID_FIELD';
}

describe('loraTimeOnAirMs', () => {
  it('matches the AN1200.13 known answers in the shared vectors file', () => {
    assert.ok(airtimeVectors.length >= 2);
    for (const v of airtimeVectors) {
      const ms = loraTimeOnAirMs({
        spreadingFactor: v.sf,
        bandwidthKhz: v.bw,
        payloadSize: v.payloadSize,
        codingRate: v.codingRate,
        crc: v.crc,
        preambleSymbols: v.preamble,
      });
      assert.equal(ms, v.expectMs, v.id);
    }
  });

  it('gives 46.336 ms for SF7BW125 with 13 bytes and 2465.792 ms for SF12BW125 with 51 bytes', () => {
    assert.equal(
      loraTimeOnAirMs({ spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13 }),
      46.336,
    );
    assert.equal(
      loraTimeOnAirMs({ spreadingFactor: 12, bandwidthKhz: 125, payloadSize: 51 }),
      2465.792,
    );
  });

  // Each value below was worked out by hand from the formula:
  // Tsym = 2^SF/BW; n = 8 + max(ceil((8PL - 4SF + 28 + 16CRC - 20IH) / (4(SF - 2DE))) * (CR+4), 0);
  // T = (8 + 4.25 + n) * Tsym.
  const handWorked: [string, Parameters<typeof loraTimeOnAirMs>[0], number][] = [
    // Tsym 4.096; (160-36+28+16)/36 = 4.67 -> 5 -> 25+8 = 33 symbols; (12.25+33)*4.096
    ['SF9BW125 20 bytes', { spreadingFactor: 9, bandwidthKhz: 125, payloadSize: 20 }, 185.344],
    // Tsym 0.512; (160-28+28+16)/28 = 6.29 -> 7 -> 35+8 = 43; (12.25+43)*0.512
    ['SF7BW250 20 bytes', { spreadingFactor: 7, bandwidthKhz: 250, payloadSize: 20 }, 28.288],
    // Tsym 8.192; (0-40+28+16)/40 = 0.1 -> 1 -> 5+8 = 13; (12.25+13)*8.192
    [
      'SF10BW125 empty payload',
      { spreadingFactor: 10, bandwidthKhz: 125, payloadSize: 0 },
      206.848,
    ],
    // Tsym 32.768, DE on; (0-48+28)/40 < 0 -> 0 -> 8 symbols; (12.25+8)*32.768
    [
      'SF12BW125 empty payload without CRC',
      { spreadingFactor: 12, bandwidthKhz: 125, payloadSize: 0, crc: false },
      663.552,
    ],
    // Tsym 1.024; (104-28+28)/28 = 3.71 -> 4 -> 20+8 = 28; (12.25+28)*1.024
    [
      'SF7BW125 13 bytes without CRC (a downlink)',
      { spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13, crc: false },
      41.216,
    ],
    // (104-28+28+16)/28 = 4.29 -> 5 -> 5*8+8 = 48; (12.25+48)*1.024
    [
      'SF7BW125 13 bytes at CR 4/8',
      { spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13, codingRate: '4/8' },
      61.696,
    ],
    [
      'SF7BW125 13 bytes at CR index 4',
      { spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13, codingRate: 4 },
      61.696,
    ],
    // (104-28+28+16-20)/28 = 3.57 -> 4 -> 28; same as the CRC-less case
    [
      'SF7BW125 13 bytes with an implicit header',
      { spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13, explicitHeader: false },
      41.216,
    ],
    // Tsym 16.384, DE on by default; (80-44+28+16)/36 = 2.22 -> 3 -> 23; (12.25+23)*16.384
    ['SF11BW125 10 bytes', { spreadingFactor: 11, bandwidthKhz: 125, payloadSize: 10 }, 577.536],
    // DE forced off: 80/44 = 1.82 -> 2 -> 18; (12.25+18)*16.384
    [
      'SF11BW125 10 bytes with low data rate optimisation off',
      { spreadingFactor: 11, bandwidthKhz: 125, payloadSize: 10, lowDataRateOptimize: false },
      495.616,
    ],
    // Tsym 1.024; preamble 16: (16+4.25+33)*1.024
    [
      'SF7BW125 13 bytes with a 16-symbol preamble',
      { spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13, preambleSymbols: 16 },
      54.528,
    ],
    // Tsym 0.256 (SF7BW500); (400-28+28+16)/28 = 14.86 -> 15 -> 75+8 = 83; (12.25+83)*0.256
    ['SF7BW500 50 bytes', { spreadingFactor: 7, bandwidthKhz: 500, payloadSize: 50 }, 24.384],
    // Tsym 16.384 (SF12BW250), DE on; (80-48+28+16)/40 = 1.9 -> 2 -> 18; (12.25+18)*16.384
    ['SF12BW250 10 bytes', { spreadingFactor: 12, bandwidthKhz: 250, payloadSize: 10 }, 495.616],
  ];
  for (const [name, params, expected] of handWorked) {
    it(`gives ${expected} ms for ${name}`, () => {
      assert.equal(loraTimeOnAirMs(params), expected);
    });
  }

  it('turns low data rate optimisation on exactly when the symbol time exceeds 16 ms', () => {
    // SF11BW125: 16.384 ms symbols -> on; SF10BW125: 8.192 ms -> off; SF11BW250: 8.192 ms -> off.
    for (const [sf, bw, on] of [
      [11, 125, true],
      [12, 125, true],
      [12, 250, true],
      [10, 125, false],
      [11, 250, false],
      [12, 500, false],
    ] as const) {
      const auto = loraTimeOnAirMs({ spreadingFactor: sf, bandwidthKhz: bw, payloadSize: 51 });
      const forced = loraTimeOnAirMs({
        spreadingFactor: sf,
        bandwidthKhz: bw,
        payloadSize: 51,
        lowDataRateOptimize: on,
      });
      assert.equal(auto, forced, `SF${sf}BW${bw}`);
    }
  });

  it('is a whole number of microseconds at 125, 250 and 500 kHz', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 12 }),
        fc.constantFrom(125, 250, 500),
        fc.integer({ min: 0, max: 255 }),
        fc.boolean(),
        (sf, bw, pl, crc) => {
          const us =
            loraTimeOnAirMs({ spreadingFactor: sf, bandwidthKhz: bw, payloadSize: pl, crc }) * 1000;
          assert.ok(Math.abs(us - Math.round(us)) < 1e-6, `${us} µs`);
        },
      ),
    );
  });

  it('never decreases when the payload grows', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 12 }),
        fc.constantFrom(125, 250, 500),
        fc.integer({ min: 0, max: 254 }),
        fc.constantFrom('4/5', '4/6', '4/7', '4/8' as const),
        fc.boolean(),
        (sf, bw, pl, codingRate, crc) => {
          const base = { spreadingFactor: sf, bandwidthKhz: bw, codingRate, crc };
          assert.ok(
            loraTimeOnAirMs({ ...base, payloadSize: pl + 1 }) >=
              loraTimeOnAirMs({ ...base, payloadSize: pl }),
          );
        },
      ),
    );
  });

  it('grows strictly with the spreading factor at a given bandwidth and payload', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 11 }),
        fc.constantFrom(125, 250, 500),
        fc.integer({ min: 0, max: 255 }),
        (sf, bw, pl) => {
          assert.ok(
            loraTimeOnAirMs({ spreadingFactor: sf + 1, bandwidthKhz: bw, payloadSize: pl }) >
              loraTimeOnAirMs({ spreadingFactor: sf, bandwidthKhz: bw, payloadSize: pl }),
          );
        },
      ),
    );
  });

  it('shrinks strictly when the bandwidth doubles', () => {
    fc.assert(
      fc.property(fc.integer({ min: 6, max: 12 }), fc.integer({ min: 0, max: 255 }), (sf, pl) => {
        const at = (bw: number) =>
          loraTimeOnAirMs({ spreadingFactor: sf, bandwidthKhz: bw, payloadSize: pl });
        assert.ok(at(250) < at(125));
        assert.ok(at(500) < at(250));
      }),
    );
  });

  it('refuses out-of-range parameters with INVALID_FIELD', () => {
    const ok = { spreadingFactor: 7, bandwidthKhz: 125, payloadSize: 13 };
    for (const bad of [
      { ...ok, spreadingFactor: 5 },
      { ...ok, spreadingFactor: 13 },
      { ...ok, spreadingFactor: 7.5 },
      { ...ok, bandwidthKhz: 0 },
      { ...ok, bandwidthKhz: -125 },
      { ...ok, bandwidthKhz: Number.NaN },
      { ...ok, payloadSize: -1 },
      { ...ok, payloadSize: 256 },
      { ...ok, payloadSize: 1.5 },
      { ...ok, preambleSymbols: -1 },
      { ...ok, codingRate: '4/9' as '4/5' },
      { ...ok, codingRate: 0 as 1 },
    ]) {
      assert.throws(() => loraTimeOnAirMs(bad), invalidField, JSON.stringify(bad));
    }
  });

  it('names the parameter in the error message', () => {
    assert.throws(
      () => loraTimeOnAirMs({ spreadingFactor: 13, bandwidthKhz: 125, payloadSize: 1 }),
      /spreading factor must be an integer from 6 to 12, got 13/,
    );
  });
});

describe('loraSymbolTimeUs', () => {
  it('is 2^SF / BW: 1024 µs at SF7BW125, 32768 µs at SF12BW125', () => {
    assert.equal(loraSymbolTimeUs(7, 125), 1024);
    assert.equal(loraSymbolTimeUs(12, 125), 32768);
    assert.equal(loraSymbolTimeUs(7, 250), 512);
  });
});

describe('fskTimeOnAirMs', () => {
  it('counts preamble 5, sync word 3, length 1, payload and CRC 2 bytes at 50 kbps', () => {
    // (5+3+1+13+2) bytes * 8 bits / 50 000 bit/s = 3.84 ms
    assert.equal(fskTimeOnAirMs(13), 3.84);
    assert.equal(fskTimeOnAirMs(0), 1.76);
    // (11+255)*8/50000 s
    assert.equal(fskTimeOnAirMs(255), 42.56);
  });

  it('scales with the bit rate', () => {
    assert.equal(fskTimeOnAirMs(13, 25_000), 7.68);
  });

  it('refuses a bad payload size or bit rate', () => {
    assert.throws(() => fskTimeOnAirMs(256), invalidField);
    assert.throws(() => fskTimeOnAirMs(10, 0), invalidField);
    assert.throws(() => fskTimeOnAirMs(10, Number.POSITIVE_INFINITY), invalidField);
  });
});
