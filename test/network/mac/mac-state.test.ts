import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLorawanError } from '../../../src/lorawan/errors.js';
import { type Channel, type ChannelPlan, EU868 } from '../../../src/lorawan/regions/index.js';
import {
  batteryLevel,
  dataRx1FrequencyHz,
  initialMacState,
  isDefinedChannel,
  type MacState,
  trimTrailingNulls,
  uplinkChannelIndex,
  validateMacState,
} from '../../../src/network/mac/mac-state.js';
import type { MacVersion } from '../../../src/network/session.js';

const invalidField = (error: unknown) => isLorawanError(error) && error.code === 'INVALID_FIELD';

function channel(frequencyHz: number, minDr = 0, maxDr = 5, enabled = true): Channel {
  return { frequencyHz, minDr, maxDr, enabled };
}

/** What a JoinAccept with the usual 867.1-867.9 MHz CFList gives the device. */
const JOIN_PLAN = EU868.decodeCfList(
  EU868.encodeCfList([
    ...EU868.defaultChannels,
    channel(867_100_000),
    channel(867_300_000),
    channel(867_500_000),
    channel(867_700_000),
    channel(867_900_000),
  ]),
);

function jsonRoundTrip<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

describe('initialMacState', () => {
  it('starts an EU868 device on the regional defaults when nothing else is said', () => {
    const state = initialMacState(EU868, { macVersion: '1.0.4', deviceClass: 'A' });
    assert.deepEqual(state, {
      rx1DelaySeconds: 1,
      rx1DrOffset: 0,
      rx2Dr: 0,
      rx2FrequencyHz: 869_525_000,
      channels: [channel(868_100_000), channel(868_300_000), channel(868_500_000)],
      dlChannelFrequencies: [],
      maxDutyCycle: 0,
      txParams: null,
      adrAckLimitExp: 6,
      adrAckDelayExp: 5,
      rejoin: null,
      deviceClass: 'A',
      lastDevStatus: null,
      lastDevStatusRequestAt: null,
      lastForceRejoin: null,
      pending: [],
      refused: [],
      stickyAnswers: [],
    } satisfies MacState);
  });

  it('takes the channels a JoinAccept CFList announced, defaults first', () => {
    const state = initialMacState(EU868, {
      macVersion: '1.1.0',
      deviceClass: 'C',
      cfListChannels: JOIN_PLAN,
    });
    assert.equal(state.channels.length, 8);
    assert.deepEqual(state.channels[3], channel(867_100_000));
    assert.deepEqual(state.channels[7], channel(867_900_000));
    assert.equal(state.deviceClass, 'C');
  });

  it('keeps the index of a channel the CFList left empty and trims empty ones at the end', () => {
    const plan: ChannelPlan = [
      ...EU868.defaultChannels,
      null,
      channel(867_300_000),
      undefined,
      { ...channel(0) },
    ];
    const state = initialMacState(EU868, {
      macVersion: '1.0.3',
      deviceClass: 'A',
      cfListChannels: plan,
    });
    assert.deepEqual(state.channels.slice(3), [null, channel(867_300_000)]);
  });

  it('does not share channel objects with the plan it was given', () => {
    const plan = [...EU868.defaultChannels.map((c) => ({ ...c })), channel(867_100_000)];
    const state = initialMacState(EU868, {
      macVersion: '1.0.4',
      deviceClass: 'A',
      cfListChannels: plan,
    });
    assert.notEqual(state.channels[3], plan[3]);
    assert.deepEqual(state.channels[3], plan[3]);
  });

  it('takes the RX settings of the JoinAccept or of an ABP device, RxDelay 0 meaning 1 s', () => {
    const state = initialMacState(EU868, {
      macVersion: '1.0.2',
      deviceClass: 'A',
      rx1DelaySeconds: 0,
      rx1DrOffset: 3,
      rx2Dr: 3,
      rx2FrequencyHz: 869_525_000,
    });
    assert.equal(state.rx1DelaySeconds, 1);
    assert.equal(state.rx1DrOffset, 3);
    assert.equal(state.rx2Dr, 3);
    const five = initialMacState(EU868, {
      macVersion: '1.0.2',
      deviceClass: 'A',
      rx1DelaySeconds: 5,
    });
    assert.equal(five.rx1DelaySeconds, 5);
  });

  it('refuses settings the region does not allow', () => {
    const base = { macVersion: '1.0.4', deviceClass: 'A' } as const;
    assert.throws(() => initialMacState(EU868, { ...base, rx1DrOffset: 6 }), invalidField);
    assert.throws(() => initialMacState(EU868, { ...base, rx2Dr: 8 }), invalidField);
    assert.throws(() => initialMacState(EU868, { ...base, rx1DelaySeconds: 16 }), invalidField);
    assert.throws(
      () => initialMacState(EU868, { ...base, rx2FrequencyHz: 915_000_000 }),
      invalidField,
    );
    assert.throws(
      () => initialMacState(EU868, { ...base, macVersion: '1.2.0' as MacVersion }),
      invalidField,
    );
  });

  it('refuses a channel plan without the default channels first, or too long', () => {
    const base = { macVersion: '1.0.4', deviceClass: 'A' } as const;
    assert.throws(
      () => initialMacState(EU868, { ...base, cfListChannels: [channel(867_100_000)] }),
      /default channel/,
    );
    const tooLong = [...JOIN_PLAN, ...Array.from({ length: 9 }, () => channel(867_100_000))];
    assert.throws(() => initialMacState(EU868, { ...base, cfListChannels: tooLong }), invalidField);
    const badChannel = [...EU868.defaultChannels, channel(915_000_000)];
    assert.throws(
      () => initialMacState(EU868, { ...base, cfListChannels: badChannel }),
      invalidField,
    );
  });

  it('survives a JSON round trip unchanged', () => {
    const state = initialMacState(EU868, {
      macVersion: '1.0.4',
      deviceClass: 'A',
      cfListChannels: [...EU868.defaultChannels, null, channel(867_300_000)],
    });
    assert.deepEqual(jsonRoundTrip(state), state);
    assert.deepEqual(validateMacState(jsonRoundTrip(state), EU868), []);
  });
});

describe('validateMacState', () => {
  const valid = initialMacState(EU868, {
    macVersion: '1.0.4',
    deviceClass: 'A',
    cfListChannels: JOIN_PLAN,
  });

  it('finds nothing wrong with a fresh state', () => {
    assert.deepEqual(validateMacState(valid, EU868), []);
  });

  const broken: [string, Partial<MacState> | Record<string, unknown>, RegExp][] = [
    ['rx1DrOffset above the EU868 maximum', { rx1DrOffset: 6 }, /rx1DrOffset/],
    ['rx1 delay of 0', { rx1DelaySeconds: 0 }, /rx1DelaySeconds/],
    ['undefined RX2 data rate', { rx2Dr: 9 }, /rx2Dr/],
    ['RX2 frequency outside the band', { rx2FrequencyHz: 923_300_000 }, /rx2FrequencyHz/],
    ['RX2 frequency not in 100 Hz steps', { rx2FrequencyHz: 869_525_050 }, /rx2FrequencyHz/],
    [
      'a channel with minDr above maxDr',
      { channels: [...valid.channels, channel(867_100_000, 5, 2)] },
      /minDr/,
    ],
    [
      '17 channels',
      { channels: [...valid.channels, ...valid.channels, channel(867_100_000)] },
      /at most 16/,
    ],
    [
      'a default channel changed',
      { channels: [channel(868_900_000), ...valid.channels.slice(1)] },
      /default/,
    ],
    [
      'a downlink frequency for an undefined channel',
      { dlChannelFrequencies: [null, null, null, null, null, null, null, null, 869_100_000] },
      /not defined/,
    ],
    ['maxDutyCycle 16', { maxDutyCycle: 16 }, /maxDutyCycle/],
    [
      'an EIRP index of 16',
      { txParams: { uplinkDwellTime: true, downlinkDwellTime: false, maxEirpIndex: 16 } },
      /maxEirpIndex/,
    ],
    ['an ADR limit exponent of 16', { adrAckLimitExp: 16 }, /adrAckLimitExp/],
    [
      'a rejoin count exponent of 16',
      { rejoin: { maxTimeN: 1, maxCountN: 16, timeOk: true } },
      /maxCountN/,
    ],
    ['class B', { deviceClass: 'B' }, /deviceClass/],
    [
      'a battery of 256',
      { lastDevStatus: { battery: 256, margin: 0, at: '2025-01-01T00:00:00.000Z' } },
      /battery/,
    ],
    [
      'a margin of 32',
      { lastDevStatus: { battery: 1, margin: 32, at: '2025-01-01T00:00:00.000Z' } },
      /margin/,
    ],
    ['a time that is not one', { lastDevStatusRequestAt: 'yesterday' }, /lastDevStatusRequestAt/],
    ['pending that is not a list', { pending: {} }, /pending/],
  ];
  for (const [what, change, message] of broken) {
    it(`reports ${what}`, () => {
      const problems = validateMacState({ ...valid, ...change } as MacState, EU868);
      assert.ok(
        problems.some((problem) => message.test(problem)),
        `expected a problem matching ${message}, got ${JSON.stringify(problems)}`,
      );
    });
  }

  it('judges something that is not a state at all without throwing', () => {
    assert.deepEqual(validateMacState(null as unknown as MacState, EU868), [
      'the MAC state is not an object',
    ]);
    assert.ok(validateMacState({} as MacState, EU868).length > 5);
  });
});

describe('MAC state helpers', () => {
  it('reads the DevStatusAns battery byte', () => {
    assert.deepEqual(batteryLevel(0), { kind: 'external-power' });
    assert.deepEqual(batteryLevel(255), { kind: 'unknown' });
    assert.deepEqual(batteryLevel(254), { kind: 'level', percent: 100 });
    assert.deepEqual(batteryLevel(127), { kind: 'level', percent: 50 });
    assert.deepEqual(batteryLevel(1), { kind: 'level', percent: 0.4 });
    assert.deepEqual(batteryLevel(-1), { kind: 'unknown' });
  });

  it('finds the channel of an uplink frequency, an enabled one first', () => {
    const state = initialMacState(EU868, {
      macVersion: '1.0.4',
      deviceClass: 'A',
      cfListChannels: JOIN_PLAN,
    });
    assert.equal(uplinkChannelIndex(state, 868_300_000), 1);
    assert.equal(uplinkChannelIndex(state, 867_900_000), 7);
    assert.equal(uplinkChannelIndex(state, 869_525_000), undefined);
    // Channel 3 disabled and channel 9 on its frequency: the device can only have used 9.
    const channels = [...state.channels];
    channels[3] = channel(867_100_000, 0, 5, false);
    channels[9] = channel(867_100_000);
    assert.equal(uplinkChannelIndex({ ...state, channels }, 867_100_000), 9);
    channels[9] = channel(867_100_000, 0, 5, false);
    assert.equal(uplinkChannelIndex({ ...state, channels }, 867_100_000), 3);
  });

  it('gives the RX1 frequency of a data downlink: the uplink channel’s override, else the region’s rule', () => {
    const state = initialMacState(EU868, {
      macVersion: '1.0.4',
      deviceClass: 'A',
      cfListChannels: JOIN_PLAN,
    });
    const overridden = { ...state, dlChannelFrequencies: [868_500_000, null, null, 869_100_000] };
    assert.equal(dataRx1FrequencyHz(EU868, overridden, 868_100_000), 868_500_000);
    assert.equal(dataRx1FrequencyHz(EU868, overridden, 868_300_000), 868_300_000);
    assert.equal(dataRx1FrequencyHz(EU868, overridden, 867_100_000), 869_100_000);
    assert.equal(dataRx1FrequencyHz(EU868, overridden, 867_300_000), 867_300_000);
    // Not one of the device's channels, or no MAC state: the uplink frequency (EU868).
    assert.equal(dataRx1FrequencyHz(EU868, overridden, 868_800_000), 868_800_000);
    assert.equal(dataRx1FrequencyHz(EU868, undefined, 868_100_000), 868_100_000);
  });

  it('tells defined channels from empty slots and trims empty slots at the end', () => {
    assert.equal(isDefinedChannel(null), false);
    assert.equal(isDefinedChannel(undefined), false);
    assert.equal(isDefinedChannel(channel(0)), false);
    assert.equal(isDefinedChannel(channel(868_100_000)), true);
    assert.deepEqual(trimTrailingNulls([1, null, 2, null, null]), [1, null, 2]);
    assert.deepEqual(trimTrailingNulls([null]), []);
  });
});
