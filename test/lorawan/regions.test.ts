import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../../src/lorawan/bytes.js';
import { encodeCfList } from '../../src/lorawan/cflist.js';
import { isLorawanError } from '../../src/lorawan/errors.js';
import {
  type Channel,
  type ChannelPlan,
  dataRateTimeOnAirMs,
  EU868,
  getRegion,
  isRegionName,
  parseDatr,
  regionNames,
} from '../../src/lorawan/regions/index.js';

/** Hex written field by field, so each wire field stays visible. */
function fields(...parts: string[]): string {
  return parts.join('');
}

function hasCode(code: string) {
  return (error: unknown) => isLorawanError(error) && error.code === code;
}

const invalidField = hasCode('INVALID_FIELD');

function channel(frequencyHz: number, enabled = true, minDr = 0, maxDr = 5): Channel {
  return { frequencyHz, minDr, maxDr, enabled };
}

/** The three defaults plus 867.1-867.9 MHz on channels 3-7: the common EU868 eight-channel plan. */
const EIGHT_CHANNELS: ChannelPlan = [
  ...EU868.defaultChannels,
  channel(867_100_000),
  channel(867_300_000),
  channel(867_500_000),
  channel(867_700_000),
  channel(867_900_000),
];

describe('region registry', () => {
  it('finds EU868 by name', () => {
    assert.equal(getRegion('EU868'), EU868);
    assert.deepEqual(regionNames, ['EU868']);
    assert.equal(isRegionName('EU868'), true);
    assert.equal(isRegionName('US915'), false);
  });

  it('ignores the case of the name', () => {
    assert.equal(getRegion('eu868'), EU868);
  });

  it('refuses an unknown region with UNSUPPORTED, listing the supported ones', () => {
    assert.throws(() => getRegion('XX868'), hasCode('UNSUPPORTED'));
    assert.throws(
      () => getRegion('XX868'),
      (error: unknown) =>
        error instanceof Error &&
        error.message === 'region XX868 is not supported; supported: EU868',
    );
  });

  it('does not find names inherited from Object.prototype', () => {
    assert.throws(() => getRegion('constructor'), hasCode('UNSUPPORTED'));
  });
});

describe('EU868 constants', () => {
  it('covers 863-870 MHz and follows RP002', () => {
    assert.equal(EU868.name, 'EU868');
    assert.deepEqual(EU868.frequencyRangeHz, { min: 863_000_000, max: 870_000_000 });
    assert.match(EU868.regionalParameters, /^RP002-1\.0\./);
  });

  it('has the RP002 receive windows and delays', () => {
    assert.deepEqual(EU868.rx2Default, { frequencyHz: 869_525_000, dataRate: 0 });
    assert.equal(EU868.receiveDelay1Ms, 1000);
    assert.equal(EU868.receiveDelay2Ms, 2000);
    assert.equal(EU868.joinAcceptDelay1Ms, 5000);
    assert.equal(EU868.joinAcceptDelay2Ms, 6000);
    assert.equal(EU868.maxRx1DrOffset, 5);
  });

  it('has the LoRaWAN counters and ADR constants', () => {
    assert.equal(EU868.maxFCntGap, 16_384);
    assert.equal(EU868.adrAckLimit, 64);
    assert.equal(EU868.adrAckDelay, 32);
    assert.equal(EU868.maxAdrDataRate, 5);
  });

  it('has MaxEIRP 16 dBm, no TxParamSetupReq and up to 16 channels', () => {
    assert.equal(EU868.defaultMaxEirpDbm, 16);
    assert.equal(EU868.supportsTxParamSetup, false);
    assert.equal(EU868.maxChannels, 16);
  });

  it('has three default channels 868.1/868.3/868.5 MHz at DR0-DR5, all join channels', () => {
    assert.deepEqual(EU868.defaultChannels, [
      channel(868_100_000),
      channel(868_300_000),
      channel(868_500_000),
    ]);
    assert.deepEqual(EU868.joinChannels, [0, 1, 2]);
    assert.deepEqual(EU868.joinDataRates, { min: 0, max: 5 });
    assert.equal(EU868.cfListType, 'frequencies');
  });

  it('is frozen, so no caller can change the plan for everyone', () => {
    assert.ok(Object.isFrozen(EU868));
    assert.ok(Object.isFrozen(EU868.defaultChannels));
    assert.ok(Object.isFrozen(EU868.subBands));
    assert.ok(Object.isFrozen(EU868.defaultChannels[0]));
    assert.ok(Object.isFrozen(EU868.dataRate(0)));
    assert.ok(Object.isFrozen(EU868.maxPayloadSize(0)));
  });
});

describe('EU868 data rates', () => {
  const table: [number, string][] = [
    [0, 'SF12BW125'],
    [1, 'SF11BW125'],
    [2, 'SF10BW125'],
    [3, 'SF9BW125'],
    [4, 'SF8BW125'],
    [5, 'SF7BW125'],
    [6, 'SF7BW250'],
    [7, 'FSK50000'],
  ];

  it('names DR0-DR7 as the packet forwarder does', () => {
    for (const [dr, name] of table) assert.equal(EU868.dataRateName(dr), name);
  });

  it('describes DR6 as LoRa SF7 250 kHz and DR7 as FSK 50 kbps', () => {
    assert.deepEqual(EU868.dataRate(6), {
      modulation: 'LORA',
      spreadingFactor: 7,
      bandwidthKhz: 250,
    });
    assert.deepEqual(EU868.dataRate(7), { modulation: 'FSK', bitRate: 50_000 });
  });

  it('finds the index of a received datr, LoRa string or FSK bit rate', () => {
    for (const [dr, name] of table) assert.equal(EU868.dataRateFromRx(name), dr);
    assert.equal(EU868.dataRateFromRx(50_000), 7);
    assert.equal(EU868.dataRateFromRx('SF7BW125', 'downlink'), 5);
  });

  it('round-trips every data rate through its name', () => {
    for (let dr = 0; dr <= 7; dr++) assert.equal(EU868.dataRateFromRx(EU868.dataRateName(dr)), dr);
  });

  it('refuses a modulation EU868 does not define', () => {
    assert.throws(() => EU868.dataRateFromRx('SF7BW500'), invalidField);
    assert.throws(() => EU868.dataRateFromRx('SF7BW500'), /SF7BW500 is not defined for uplinks/);
    assert.throws(() => EU868.dataRateFromRx(100_000), invalidField);
  });

  it('refuses a datr that is not one', () => {
    for (const bad of ['', 'SF7', 'sf7bw125', 'SF7BW125 ', 'LORA', -5, 0, 1.5]) {
      assert.throws(() => EU868.dataRateFromRx(bad), invalidField, String(bad));
    }
  });

  it('refuses an undefined data rate index (LR-FHSS DR8-DR11 are not supported)', () => {
    for (const dr of [-1, 8, 11, 15, 1.5]) {
      assert.throws(() => EU868.dataRate(dr), invalidField, String(dr));
      assert.throws(() => EU868.dataRateName(dr), invalidField, String(dr));
    }
  });

  it('parses a datr into a descriptor', () => {
    assert.deepEqual(parseDatr('SF9BW125'), {
      modulation: 'LORA',
      spreadingFactor: 9,
      bandwidthKhz: 125,
    });
    assert.deepEqual(parseDatr(50_000), { modulation: 'FSK', bitRate: 50_000 });
  });
});

describe('EU868 maximum payload sizes', () => {
  it('follows RP002: DR0-2 M=59 N=51, DR3 M=123 N=115, DR4-7 M=250 N=242', () => {
    const expected = [59, 59, 59, 123, 250, 250, 250, 250];
    for (let dr = 0; dr <= 7; dr++) {
      assert.deepEqual(EU868.maxPayloadSize(dr), {
        macPayload: expected[dr],
        frmPayload: expected[dr]! - 8,
      });
    }
  });

  it('offers the repeater-compatible sizes of RP001: DR4-7 M=230 N=222', () => {
    assert.deepEqual(EU868.maxPayloadSize(4, { repeaterCompatible: true }), {
      macPayload: 230,
      frmPayload: 222,
    });
    assert.deepEqual(EU868.maxPayloadSize(3, { repeaterCompatible: true }), {
      macPayload: 123,
      frmPayload: 115,
    });
  });

  it('ignores the dwell-time option, which EU868 does not have', () => {
    assert.deepEqual(EU868.maxPayloadSize(0, { dwellTimeLimited: true }), EU868.maxPayloadSize(0));
  });

  it('refuses an undefined data rate', () => {
    assert.throws(() => EU868.maxPayloadSize(8), invalidField);
  });
});

describe('EU868 TX power', () => {
  it('is MaxEIRP - 2n dB for n = 0..7', () => {
    const expected = [16, 14, 12, 10, 8, 6, 4, 2];
    for (let n = 0; n <= 7; n++) assert.equal(EU868.txPowerDbm(n), expected[n]);
  });

  it('follows a device-specific MaxEIRP', () => {
    assert.equal(EU868.txPowerDbm(0, 14), 14);
    assert.equal(EU868.txPowerDbm(7, 14), 0);
  });

  it('is undefined beyond index 7 (RFU; 15 means "keep" in LinkADRReq)', () => {
    for (const n of [8, 14, 15, -1, 1.5]) assert.equal(EU868.txPowerDbm(n), undefined);
  });

  it('gives gateways 14 dBm on the uplink channels and 27 dBm on 869.525 MHz', () => {
    assert.equal(EU868.downlinkTxPowerDbm(868_100_000), 14);
    assert.equal(EU868.downlinkTxPowerDbm(868_500_000), 14);
    assert.equal(EU868.downlinkTxPowerDbm(867_100_000), 14);
    assert.equal(EU868.downlinkTxPowerDbm(869_525_000), 27);
    assert.equal(EU868.downlinkTxPowerDbm(868_650_000), 14);
  });

  it('refuses a downlink frequency outside 863-870 MHz', () => {
    assert.throws(() => EU868.downlinkTxPowerDbm(915_000_000), invalidField);
  });
});

describe('EU868 RX1 and RX2', () => {
  it('sends RX1 on the uplink frequency', () => {
    assert.equal(EU868.rx1FrequencyHz(868_100_000), 868_100_000);
    assert.equal(EU868.rx1FrequencyHz(867_500_000), 867_500_000);
  });

  it('refuses an uplink frequency outside the band', () => {
    assert.throws(() => EU868.rx1FrequencyHz(902_300_000), invalidField);
    assert.throws(() => EU868.rx1FrequencyHz(868.1), invalidField);
  });

  it('lowers the RX1 data rate by the offset, never below DR0', () => {
    assert.equal(EU868.rx1DataRate(5, 0), 5);
    assert.equal(EU868.rx1DataRate(5, 2), 3);
    assert.equal(EU868.rx1DataRate(5, 5), 0);
    assert.equal(EU868.rx1DataRate(2, 5), 0);
    assert.equal(EU868.rx1DataRate(7, 1), 6);
  });

  it('is max(0, DR - offset) for every uplink data rate and offset', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 5 }), (dr, offset) => {
        assert.equal(EU868.rx1DataRate(dr, offset), Math.max(0, dr - offset));
      }),
    );
  });

  it('refuses an offset above 5 or an undefined uplink data rate', () => {
    assert.throws(() => EU868.rx1DataRate(5, 6), invalidField);
    assert.throws(() => EU868.rx1DataRate(5, -1), invalidField);
    assert.throws(() => EU868.rx1DataRate(8, 0), invalidField);
  });
});

describe('EU868 duty-cycle sub-bands', () => {
  it('puts 868.1 MHz in 868.0-868.6 at 1 %, not in 865-868', () => {
    const b = EU868.subBandFor(868_100_000);
    assert.equal(b?.name, '868.0-868.6 MHz');
    assert.equal(b?.dutyCycle, 0.01);
  });

  it('puts exactly 868.0 MHz in 868.0-868.6', () => {
    assert.equal(EU868.subBandFor(868_000_000)?.name, '868.0-868.6 MHz');
  });

  it('puts 869.525 MHz in 869.4-869.65 at 10 % and 27 dBm', () => {
    const b = EU868.subBandFor(869_525_000);
    assert.equal(b?.dutyCycle, 0.1);
    assert.equal(b?.maxErpDbm, 27);
  });

  it('puts 867.1 MHz in 865-868 at 1 % and 864 MHz in 863-865 at 0.1 %', () => {
    assert.equal(EU868.subBandFor(867_100_000)?.name, '865.0-868.0 MHz');
    assert.equal(EU868.subBandFor(867_100_000)?.dutyCycle, 0.01);
    assert.equal(EU868.subBandFor(864_000_000)?.name, '863.0-865.0 MHz');
    assert.equal(EU868.subBandFor(864_000_000)?.dutyCycle, 0.001);
  });

  it('has 868.7-869.2 at 0.1 % and 869.7-870 at 1 %', () => {
    assert.equal(EU868.subBandFor(868_800_000)?.dutyCycle, 0.001);
    assert.equal(EU868.subBandFor(869_850_000)?.dutyCycle, 0.01);
  });

  it('returns undefined in the gaps and outside the band', () => {
    for (const f of [
      862_900_000, 868_600_000, 868_650_000, 869_300_000, 869_675_000, 870_000_000,
    ]) {
      assert.equal(EU868.subBandFor(f), undefined, String(f));
    }
  });

  it('never puts a frequency in two sub-bands', () => {
    fc.assert(
      fc.property(fc.integer({ min: 862_000_000, max: 871_000_000 }), (f) => {
        const matches = EU868.subBands.filter((b) => f >= b.minFrequencyHz && f < b.maxFrequencyHz);
        assert.ok(matches.length <= 1);
        assert.equal(EU868.subBandFor(f), matches[0]);
      }),
    );
  });
});

describe('EU868 LinkADRReq channel mask', () => {
  it('enables exactly the channels of a ChMaskCntl 0 mask', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EIGHT_CHANNELS,
      blocks: [{ chMask: 0b0000_0000_0001_0111, chMaskCntl: 0 }],
    });
    assert.deepEqual(result, { ok: true, enabledChannels: [0, 1, 2, 4] });
  });

  it('applies several blocks in order, the later mask replacing the earlier one', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EIGHT_CHANNELS,
      blocks: [
        { chMask: 0x00ff, chMaskCntl: 0 },
        { chMask: 0x0007, chMaskCntl: 0 },
      ],
    });
    assert.deepEqual(result, { ok: true, enabledChannels: [0, 1, 2] });
  });

  it('enables every defined channel on ChMaskCntl 6, whatever the mask says', () => {
    const someOff = EIGHT_CHANNELS.map((c, i) => (i >= 3 && c ? { ...c, enabled: false } : c));
    const result = EU868.applyLinkAdrChannelMask({
      channels: someOff,
      blocks: [{ chMask: 0x0000, chMaskCntl: 6 }],
    });
    assert.deepEqual(result, { ok: true, enabledChannels: [0, 1, 2, 3, 4, 5, 6, 7] });
  });

  it('lets ChMaskCntl 6 skip undefined slots', () => {
    const withHole: ChannelPlan = [...EU868.defaultChannels, null, channel(867_300_000)];
    const result = EU868.applyLinkAdrChannelMask({
      channels: withHole,
      blocks: [{ chMask: 0xffff, chMaskCntl: 6 }],
    });
    assert.deepEqual(result, { ok: true, enabledChannels: [0, 1, 2, 4] });
  });

  it('lets a later ChMaskCntl 0 narrow an earlier ChMaskCntl 6', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EIGHT_CHANNELS,
      blocks: [
        { chMask: 0, chMaskCntl: 6 },
        { chMask: 0x0018, chMaskCntl: 0 },
      ],
    });
    assert.deepEqual(result, { ok: true, enabledChannels: [3, 4] });
  });

  it('refuses a reserved ChMaskCntl and leaves the channels as they were', () => {
    for (const chMaskCntl of [1, 2, 3, 4, 5, 7]) {
      const result = EU868.applyLinkAdrChannelMask({
        channels: EIGHT_CHANNELS,
        blocks: [{ chMask: 0x0007, chMaskCntl }],
      });
      assert.equal(result.ok, false);
      assert.deepEqual(result.enabledChannels, [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.match(result.reason ?? '', new RegExp(`ChMaskCntl ${chMaskCntl} is reserved`));
    }
  });

  it('refuses the whole block when any one of its commands is reserved', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EIGHT_CHANNELS,
      blocks: [
        { chMask: 0x0007, chMaskCntl: 0 },
        { chMask: 0x0007, chMaskCntl: 5 },
      ],
    });
    assert.equal(result.ok, false);
    assert.deepEqual(result.enabledChannels, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('refuses a mask that enables an undefined channel', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EU868.defaultChannels,
      blocks: [{ chMask: 0b1_0000_0111, chMaskCntl: 0 }],
    });
    assert.equal(result.ok, false);
    assert.deepEqual(result.enabledChannels, [0, 1, 2]);
    assert.match(result.reason ?? '', /undefined channel\(s\) 8/);
  });

  it('treats a channel with frequency 0 as undefined', () => {
    const deleted: ChannelPlan = [...EU868.defaultChannels, channel(0, false)];
    const result = EU868.applyLinkAdrChannelMask({
      channels: deleted,
      blocks: [{ chMask: 0x0008, chMaskCntl: 0 }],
    });
    assert.equal(result.ok, false);
  });

  it('refuses a mask that disables every channel', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EIGHT_CHANNELS,
      blocks: [{ chMask: 0x0000, chMaskCntl: 0 }],
    });
    assert.equal(result.ok, false);
    assert.match(result.reason ?? '', /disables every channel/);
  });

  it('judges the result of the whole block, not an intermediate mask', () => {
    const result = EU868.applyLinkAdrChannelMask({
      channels: EIGHT_CHANNELS,
      blocks: [
        { chMask: 0x0000, chMaskCntl: 0 },
        { chMask: 0x0001, chMaskCntl: 0 },
      ],
    });
    assert.deepEqual(result, { ok: true, enabledChannels: [0] });
  });

  it('reports only defined, enabled channels as the current ones when refusing', () => {
    const plan: ChannelPlan = [
      channel(868_100_000),
      channel(868_300_000, false),
      channel(868_500_000),
      undefined,
      channel(867_300_000),
    ];
    const result = EU868.applyLinkAdrChannelMask({
      channels: plan,
      blocks: [{ chMask: 0, chMaskCntl: 0 }],
    });
    assert.deepEqual(result.enabledChannels, [0, 2, 4]);
  });

  it('accepts a mask exactly when it is non-empty and within the defined channels', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 0xffff }),
        (definedFlags, chMask) => {
          const plan: ChannelPlan = definedFlags.map((d, i) =>
            d ? channel(863_100_000 + i * 200_000) : null,
          );
          const result = EU868.applyLinkAdrChannelMask({
            channels: plan,
            blocks: [{ chMask, chMaskCntl: 0 }],
          });
          const bits = [...Array(16).keys()].filter((i) => (chMask >> i) & 1);
          const expectOk = bits.length > 0 && bits.every((i) => definedFlags[i]);
          assert.equal(result.ok, expectOk);
          if (expectOk) assert.deepEqual(result.enabledChannels, bits);
        },
      ),
    );
  });

  it('refuses malformed input as a programming error', () => {
    assert.throws(
      () => EU868.applyLinkAdrChannelMask({ channels: EIGHT_CHANNELS, blocks: [] }),
      invalidField,
    );
    assert.throws(
      () =>
        EU868.applyLinkAdrChannelMask({
          channels: EIGHT_CHANNELS,
          blocks: [{ chMask: 0x1_0000, chMaskCntl: 0 }],
        }),
      invalidField,
    );
    assert.throws(
      () =>
        EU868.applyLinkAdrChannelMask({
          channels: EIGHT_CHANNELS,
          blocks: [{ chMask: 1, chMaskCntl: 8 }],
        }),
      invalidField,
    );
    assert.throws(
      () =>
        EU868.applyLinkAdrChannelMask({
          channels: new Array(17).fill(channel(868_100_000)),
          blocks: [{ chMask: 1, chMaskCntl: 0 }],
        }),
      invalidField,
    );
  });
});

describe('EU868 CFList', () => {
  const fiveHex = fields('184f84', 'e85684', 'b85e84', '886684', '586e84', '00');

  it('encodes channels 3-7 of a plan as a type 0 CFList', () => {
    assert.equal(bytesToHex(EU868.encodeCfList(EIGHT_CHANNELS)), fiveHex);
  });

  it('writes 0 for undefined channels and for the ones past the end of the plan', () => {
    const plan: ChannelPlan = [...EU868.defaultChannels, null, channel(867_300_000)];
    assert.equal(
      bytesToHex(EU868.encodeCfList(plan)),
      fields('000000', 'e85684', '000000'.repeat(3), '00'),
    );
    assert.equal(bytesToHex(EU868.encodeCfList(EU868.defaultChannels)), '00'.repeat(16));
  });

  it('refuses a channel 3-7 whose data rates are not DR0-DR5', () => {
    const plan: ChannelPlan = [...EU868.defaultChannels, channel(867_100_000, true, 0, 7)];
    assert.throws(() => EU868.encodeCfList(plan), invalidField);
    assert.throws(() => EU868.encodeCfList(plan), /NewChannelReq/);
  });

  it('refuses a channel 3-7 outside 863-870 MHz', () => {
    const plan: ChannelPlan = [...EU868.defaultChannels, channel(902_300_000)];
    assert.throws(() => EU868.encodeCfList(plan), invalidField);
  });

  it('decodes a CFList into the defaults plus channels 3-7 at DR0-DR5, enabled', () => {
    assert.deepEqual(EU868.decodeCfList(hexToBytes(fiveHex)), EIGHT_CHANNELS);
  });

  it('keeps holes as null and drops trailing empty channels', () => {
    const bytes = hexToBytes(fields('000000', 'e85684', '000000'.repeat(3), '00'));
    assert.deepEqual(EU868.decodeCfList(bytes), [
      ...EU868.defaultChannels,
      null,
      channel(867_300_000),
    ]);
    assert.deepEqual(EU868.decodeCfList(new Uint8Array(16)), EU868.defaultChannels);
  });

  it('round-trips a plan of channels 3-7 inside the band', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.option(
            fc.integer({ min: 8_630_000, max: 8_700_000 }).map((u) => u * 100),
            {
              nil: null,
            },
          ),
          { minLength: 5, maxLength: 5 },
        ),
        (frequencies) => {
          const plan: (Channel | null)[] = [
            ...EU868.defaultChannels,
            ...frequencies.map((f) => (f === null ? null : channel(f))),
          ];
          while (plan.at(-1) === null) plan.pop();
          assert.deepEqual(EU868.decodeCfList(EU868.encodeCfList(plan)), plan);
        },
      ),
    );
  });

  it('refuses a channel-mask CFList, which EU868 does not use', () => {
    const bytes = encodeCfList({ type: 'channelMask', channelMasks: [0xff] });
    assert.throws(() => EU868.decodeCfList(bytes), invalidField);
    assert.throws(() => EU868.decodeCfList(bytes), /type 0/);
  });

  it('refuses a CFList frequency outside 863-870 MHz', () => {
    const bytes = encodeCfList({ type: 'frequencies', frequenciesHz: [915_000_000] });
    assert.throws(() => EU868.decodeCfList(bytes), invalidField);
  });

  it('refuses a CFList of the wrong length', () => {
    assert.throws(() => EU868.decodeCfList(new Uint8Array(15)), hasCode('INVALID_LENGTH'));
  });
});

describe('dataRateTimeOnAirMs', () => {
  it('uses a CRC for uplinks and none for downlinks', () => {
    assert.equal(dataRateTimeOnAirMs(EU868.dataRate(5), 13, 'uplink'), 46.336);
    assert.equal(dataRateTimeOnAirMs(EU868.dataRate(5), 13, 'downlink'), 41.216);
  });

  it('handles FSK DR7', () => {
    assert.equal(dataRateTimeOnAirMs(EU868.dataRate(7), 13, 'uplink'), 3.84);
  });

  it('fits the largest DR0 uplink in under 2.5 s', () => {
    // 51-byte FRMPayload + 13 bytes of MHDR, FHDR, FPort and MIC = 64 bytes at SF12BW125.
    const ms = dataRateTimeOnAirMs(EU868.dataRate(0), 64, 'uplink');
    assert.ok(ms > 2400 && ms < 3000, `${ms}`);
  });
});
