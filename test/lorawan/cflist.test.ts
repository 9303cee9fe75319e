import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../../src/lorawan/bytes.js';
import { type CfList, decodeCfList, encodeCfList } from '../../src/lorawan/cflist.js';
import { isLorawanError } from '../../src/lorawan/errors.js';

/** Hex written field by field, so each wire field stays visible. */
function fields(...parts: string[]): string {
  return parts.join('');
}

function hasCode(code: string) {
  return (error: unknown) => isLorawanError(error) && error.code === code;
}

/** A CFList frequency: 0 (no channel) or a multiple of 100 Hz from 100 MHz to 2^24·100 - 100. */
const cfListFrequency = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1_000_000, max: 0xff_ffff }).map((units) => units * 100),
);

describe('encodeCfList / decodeCfList, type 0 (frequencies)', () => {
  // 867.1, 867.3, 867.5, 867.7, 867.9 MHz: the usual EU868 extra channels.
  // 867.1 MHz / 100 Hz = 8671000 = 0x844f18 -> 18 4f 84 (little-endian).
  const euHex = fields('184f84', 'e85684', 'b85e84', '886684', '586e84', '00');
  const euFrequencies = [867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000];

  it('encodes five frequencies as 24-bit little-endian units of 100 Hz, then type 0', () => {
    const bytes = encodeCfList({ type: 'frequencies', frequenciesHz: euFrequencies });
    assert.equal(bytesToHex(bytes), euHex);
  });

  it('decodes the same bytes back to the five frequencies', () => {
    assert.deepEqual(decodeCfList(hexToBytes(euHex)), {
      type: 'frequencies',
      frequenciesHz: euFrequencies,
    });
  });

  it('pads a shorter list with empty channels and decodes it as five entries', () => {
    const bytes = encodeCfList({ type: 'frequencies', frequenciesHz: [867_100_000] });
    assert.equal(bytesToHex(bytes), fields('184f84', '00'.repeat(12), '00'));
    assert.deepEqual(decodeCfList(bytes), {
      type: 'frequencies',
      frequenciesHz: [867_100_000, 0, 0, 0, 0],
    });
  });

  it('keeps an empty slot in the middle in place', () => {
    const frequenciesHz = [867_100_000, 0, 867_500_000, 0, 0];
    assert.deepEqual(decodeCfList(encodeCfList({ type: 'frequencies', frequenciesHz })), {
      type: 'frequencies',
      frequenciesHz,
    });
  });

  it('round-trips any five valid frequencies', () => {
    fc.assert(
      fc.property(fc.array(cfListFrequency, { minLength: 5, maxLength: 5 }), (frequenciesHz) => {
        const cf: CfList = { type: 'frequencies', frequenciesHz };
        assert.deepEqual(decodeCfList(encodeCfList(cf)), cf);
      }),
    );
  });

  it('refuses more than five frequencies', () => {
    assert.throws(
      () => encodeCfList({ type: 'frequencies', frequenciesHz: new Array(6).fill(868_100_000) }),
      hasCode('INVALID_FIELD'),
    );
  });

  it('refuses a frequency that is not a multiple of 100 Hz, below 100 MHz or above 24 bits', () => {
    for (const f of [868_100_050, 99_999_900, 0xff_ffff * 100 + 100, -100, 868.1]) {
      assert.throws(
        () => encodeCfList({ type: 'frequencies', frequenciesHz: [f] }),
        hasCode('INVALID_FIELD'),
        String(f),
      );
    }
  });

  it('refuses to decode a reserved frequency below 100 MHz', () => {
    // 1 unit = 100 Hz
    const bytes = hexToBytes(fields('010000', '00'.repeat(12), '00'));
    assert.throws(() => decodeCfList(bytes), hasCode('INVALID_FIELD'));
  });
});

describe('encodeCfList / decodeCfList, type 1 (channel masks)', () => {
  it('encodes ChMask words as 16-bit little-endian, then type 1', () => {
    // US915 sub-band 2: channels 8-15 and 65.
    const bytes = encodeCfList({
      type: 'channelMask',
      channelMasks: [0xff00, 0x0000, 0x0000, 0x0000, 0x0002],
    });
    assert.equal(bytesToHex(bytes), fields('00ff', '0000'.repeat(3), '0200', '00'.repeat(5), '01'));
  });

  it('decodes to seven words, the unused ones 0', () => {
    const bytes = hexToBytes(fields('00ff', '0000'.repeat(3), '0200', '00'.repeat(5), '01'));
    assert.deepEqual(decodeCfList(bytes), {
      type: 'channelMask',
      channelMasks: [0xff00, 0, 0, 0, 0x0002, 0, 0],
    });
  });

  it('ignores the RFU byte before the type', () => {
    const bytes = hexToBytes(fields('ffff', '00'.repeat(12), 'aa', '01'));
    assert.deepEqual(decodeCfList(bytes), {
      type: 'channelMask',
      channelMasks: [0xffff, 0, 0, 0, 0, 0, 0],
    });
  });

  it('round-trips any seven 16-bit words', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 7, maxLength: 7 }),
        (channelMasks) => {
          const cf: CfList = { type: 'channelMask', channelMasks };
          assert.deepEqual(decodeCfList(encodeCfList(cf)), cf);
        },
      ),
    );
  });

  it('refuses more than seven words or a word beyond 16 bits', () => {
    assert.throws(
      () => encodeCfList({ type: 'channelMask', channelMasks: new Array(8).fill(0) }),
      hasCode('INVALID_FIELD'),
    );
    assert.throws(
      () => encodeCfList({ type: 'channelMask', channelMasks: [0x1_0000] }),
      hasCode('INVALID_FIELD'),
    );
    assert.throws(
      () => encodeCfList({ type: 'channelMask', channelMasks: [-1] }),
      hasCode('INVALID_FIELD'),
    );
  });
});

describe('decodeCfList', () => {
  it('refuses anything but 16 bytes with INVALID_LENGTH', () => {
    for (const length of [0, 15, 17]) {
      assert.throws(() => decodeCfList(new Uint8Array(length)), hasCode('INVALID_LENGTH'));
    }
  });

  it('refuses an unknown CFListType with INVALID_FIELD', () => {
    const bytes = new Uint8Array(16);
    bytes[15] = 2;
    assert.throws(() => decodeCfList(bytes), hasCode('INVALID_FIELD'));
    assert.throws(() => decodeCfList(bytes), /unknown CFListType 2/);
  });

  it('re-encodes every decodable byte string to itself (except the RFU byte of type 1)', () => {
    const anyCfList = fc.oneof(
      fc
        .array(cfListFrequency, { minLength: 5, maxLength: 5 })
        .map((fs) => encodeCfList({ type: 'frequencies', frequenciesHz: fs })),
      fc.uint8Array({ minLength: 14, maxLength: 14 }).map((words) => {
        const bytes = new Uint8Array(16);
        bytes.set(words);
        bytes[15] = 1;
        return bytes;
      }),
    );
    fc.assert(
      fc.property(anyCfList, (bytes) => {
        assert.deepEqual(encodeCfList(decodeCfList(bytes)), bytes);
      }),
    );
  });

  it('gives JSON-friendly values', () => {
    const cf = decodeCfList(encodeCfList({ type: 'frequencies', frequenciesHz: [867_100_000] }));
    assert.deepEqual(JSON.parse(JSON.stringify(cf)), cf);
  });
});
