import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DOWNLINK_MAC_COMMAND_NAMES,
  type DownlinkMacCommand,
  decodeMacCommands,
  encodeMacCommands,
  MAC_COMMAND_CIDS,
  type MacCommand,
  macCommandPayloadLength,
  UPLINK_MAC_COMMAND_NAMES,
  type UplinkMacCommand,
} from '../../../src/lorawan/mac-commands.js';
import { type Channel, EU868, type Region } from '../../../src/lorawan/regions/index.js';
import {
  initialMacState,
  type MacRequest,
  type MacState,
  validateMacState,
} from '../../../src/network/mac/mac-state.js';
import {
  type ApplyMacAnswersOptions,
  applyMacAnswers,
  DEFAULT_DEV_STATUS_INTERVAL_MS,
  isMacRequestSupported,
  type MacPlan,
  type MacProfile,
  macCommandSize,
  type PlanMacRequestsOptions,
  planMacRequests,
  validateMacProfile,
} from '../../../src/network/mac/requests.js';
import type { MacVersion } from '../../../src/network/session.js';

const T0 = Date.UTC(2025, 0, 1, 12);
const HOUR = 60 * 60 * 1000;
const FOPTS_MAX = 15;
const VERSIONS: readonly MacVersion[] = ['1.0.2', '1.0.3', '1.0.4', '1.1.0'];
const LORAWAN_11_ONLY = ['ADRParamSetupReq', 'RejoinParamSetupReq', 'ForceRejoinReq'];
/** EU868 with the TxParamSetupReq support of AS923, to exercise that command. */
const DWELL_REGION: Region = { ...EU868, supportsTxParamSetup: true };
/** A region with a fixed channel plan (US915-like): no NewChannelReq, no DlChannelReq. */
const FIXED_PLAN_REGION: Region = { ...EU868, cfListType: 'channelMask' };

function channel(frequencyHz: number, minDr = 0, maxDr = 5, enabled = true): Channel {
  return { frequencyHz, minDr, maxDr, enabled };
}

const JOIN_PLAN = [
  ...EU868.defaultChannels,
  channel(867_100_000),
  channel(867_300_000),
  channel(867_500_000),
  channel(867_700_000),
  channel(867_900_000),
];

/** Channels 3-7 as the JoinAccept gave them, in profile form. */
const JOIN_EXTRA_CHANNELS = JOIN_PLAN.slice(3).map(({ frequencyHz, minDr, maxDr }, i) => ({
  index: 3 + i,
  frequencyHz,
  minDr,
  maxDr,
}));

function joined(macVersion: MacVersion = '1.0.4', region: Region = EU868): MacState {
  return initialMacState(region, { macVersion, deviceClass: 'A', cfListChannels: JOIN_PLAN });
}

/** Profile settings that leave DevStatusReq out, so a test sees only the command it is about. */
const QUIET: MacProfile = { devStatusIntervalMs: 0 };

function plan(
  state: MacState,
  profile: MacProfile,
  options: Partial<PlanMacRequestsOptions> = {},
): MacPlan {
  const result = planMacRequests(state, profile, {
    region: EU868,
    macVersion: '1.0.4',
    nowMs: T0,
    nFCntDown: 0,
    maxBytes: FOPTS_MAX,
    ...options,
  });
  assertEncodes(result.commands, options.maxBytes ?? FOPTS_MAX);
  assert.deepEqual(
    validateMacState(result.state, options.region ?? EU868),
    [],
    'the planned state is valid',
  );
  return result;
}

function apply(
  state: MacState,
  answers: MacCommand[],
  options: Partial<ApplyMacAnswersOptions> = {},
) {
  return applyMacAnswers(state, answers, {
    region: EU868,
    macVersion: '1.0.4',
    nowMs: T0 + 1000,
    ...options,
  });
}

/** The commands fit, and survive the wire: encode, then decode as a device would. */
function assertEncodes(commands: DownlinkMacCommand[], maxBytes = FOPTS_MAX): void {
  const bytes = encodeMacCommands(commands);
  assert.ok(bytes.length <= maxBytes, `${bytes.length} bytes do not fit in ${maxBytes}`);
  assert.deepEqual(decodeMacCommands(bytes, 'downlink'), commands);
}

function names(commands: readonly MacCommand[]): string[] {
  return commands.map((command) => command.cid);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

const ACK_RX_PARAM: MacCommand = {
  cid: 'RXParamSetupAns',
  rx1DrOffsetAck: true,
  rx2DataRateAck: true,
  channelAck: true,
};
const ACK_NEW_CHANNEL: MacCommand = {
  cid: 'NewChannelAns',
  dataRateRangeOk: true,
  channelFrequencyOk: true,
};
const ACK_DL_CHANNEL: MacCommand = {
  cid: 'DlChannelAns',
  uplinkFrequencyExists: true,
  channelFrequencyOk: true,
};

describe('validateMacProfile', () => {
  it('accepts an empty profile and a complete valid one', () => {
    assert.deepEqual(validateMacProfile({}, EU868), []);
    const full: MacProfile = {
      rx1DelaySeconds: 3,
      rx1DrOffset: 2,
      rx2Dr: 3,
      rx2FrequencyHz: 869_525_000,
      extraChannels: [{ index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 }],
      dlChannels: [{ index: 8, frequencyHz: 869_100_000 }],
      maxDutyCycle: 7,
      devStatusIntervalMs: HOUR,
      txParams: { uplinkDwellTime: true, downlinkDwellTime: false, maxEirpIndex: 5 },
      adrAckLimitExp: 7,
      adrAckDelayExp: 4,
      rejoin: { maxTimeN: 5, maxCountN: 6 },
      forceRejoin: { id: 'r1', period: 1, maxRetries: 2, rejoinType: 0, dataRate: 3 },
    };
    assert.deepEqual(validateMacProfile(full, EU868), []);
  });

  const invalid: [string, MacProfile, RegExp, string[]?][] = [
    ['an RX1 delay of 16 s', { rx1DelaySeconds: 16 }, /rx1DelaySeconds/],
    ['an RX1DROffset of 6 in EU868', { rx1DrOffset: 6 }, /rx1DrOffset/],
    ['an undefined RX2 data rate', { rx2Dr: 8 }, /rx2Dr/],
    ['an RX2 frequency outside EU868', { rx2FrequencyHz: 923_300_000 }, /rx2FrequencyHz/],
    [
      'a change to a default channel',
      {
        extraChannels: [
          ...JOIN_EXTRA_CHANNELS,
          { index: 1, frequencyHz: 868_900_000, minDr: 0, maxDr: 5 },
        ],
      },
      /default channels cannot be changed/,
    ],
    [
      'channel index 16',
      {
        extraChannels: [
          ...JOIN_EXTRA_CHANNELS,
          { index: 16, frequencyHz: 868_900_000, minDr: 0, maxDr: 5 },
        ],
      },
      /index/,
    ],
    [
      'a data rate range upside down',
      {
        extraChannels: [
          ...JOIN_EXTRA_CHANNELS,
          { index: 8, frequencyHz: 868_900_000, minDr: 5, maxDr: 0 },
        ],
      },
      /minDr 5 above maxDr 0/,
    ],
    [
      'a channel named twice',
      {
        extraChannels: [
          ...JOIN_EXTRA_CHANNELS,
          { index: 3, frequencyHz: 869_100_000, minDr: 0, maxDr: 5 },
        ],
      },
      /twice/,
    ],
    [
      'a downlink frequency for a channel the profile does not define',
      {
        extraChannels: JOIN_EXTRA_CHANNELS,
        dlChannels: [{ index: 9, frequencyHz: 869_100_000 }],
      },
      /does not define/,
    ],
    ['a duty cycle exponent of 16', { maxDutyCycle: 16 }, /maxDutyCycle/],
    [
      'a negative DevStatusReq interval (the default is used)',
      { devStatusIntervalMs: -1 },
      /devStatusIntervalMs/,
      ['DevStatusReq'],
    ],
    [
      'an EIRP index of 16',
      { txParams: { uplinkDwellTime: false, downlinkDwellTime: false, maxEirpIndex: 16 } },
      /maxEirpIndex/,
    ],
    ['an ADR_ACK_LIMIT exponent of 16', { adrAckLimitExp: 16 }, /adrAckLimitExp/],
    ['a rejoin time exponent of 16', { rejoin: { maxTimeN: 16, maxCountN: 0 } }, /maxTimeN/],
    [
      'an RFU rejoin type',
      { forceRejoin: { id: 'x', period: 0, maxRetries: 0, rejoinType: 3, dataRate: 0 } },
      /rejoinType/,
    ],
    [
      'a ForceRejoinReq without id',
      { forceRejoin: { id: '', period: 0, maxRetries: 0, rejoinType: 0, dataRate: 0 } },
      /id/,
    ],
  ];
  for (const [what, profile, message, expected = []] of invalid) {
    it(`reports ${what}, and the planner skips it`, () => {
      const problems = validateMacProfile(profile, EU868);
      assert.ok(
        problems.some((problem) => message.test(problem)),
        `expected a problem matching ${message}, got ${JSON.stringify(problems)}`,
      );
      const result = plan(joined('1.1.0'), { ...QUIET, ...profile }, { macVersion: '1.1.0' });
      assert.deepEqual(names(result.commands), expected);
      assert.deepEqual(result.profileErrors, problems);
    });
  }
});

describe('planMacRequests: general', () => {
  it('plans nothing when the device already has what the profile asks', () => {
    const state = joined();
    const result = plan(state, {
      ...QUIET,
      rx1DelaySeconds: 1,
      rx1DrOffset: 0,
      rx2Dr: 0,
      rx2FrequencyHz: 869_525_000,
      extraChannels: JOIN_EXTRA_CHANNELS,
      dlChannels: [],
      maxDutyCycle: 0,
    });
    assert.deepEqual(result.commands, []);
    assert.deepEqual(result.state, state);
    assert.deepEqual(result.abandoned, []);
  });

  it('asks for the device status on the first downlink by default', () => {
    const result = plan(joined(), {});
    assert.deepEqual(result.commands, [{ cid: 'DevStatusReq' }]);
  });

  it('keeps within the bytes given, leaving the rest for later downlinks in priority order', () => {
    const profile: MacProfile = {
      rx1DelaySeconds: 2,
      rx1DrOffset: 1,
      maxDutyCycle: 3,
      extraChannels: [
        ...JOIN_EXTRA_CHANNELS,
        { index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 },
        { index: 9, frequencyHz: 869_000_000, minDr: 0, maxDr: 5 },
      ],
    };
    const first = plan(joined(), profile);
    // 2 × NewChannelReq (6 each) = 12 bytes; RXParamSetupReq (5) no longer fits, but
    // RXTimingSetupReq (2) does; DutyCycleReq (2) would make 16, DevStatusReq (1) makes 15.
    assert.deepEqual(names(first.commands), [
      'NewChannelReq',
      'NewChannelReq',
      'RXTimingSetupReq',
      'DevStatusReq',
    ]);
    const second = plan(first.state, profile, { nFCntDown: 0, maxBytes: 15 });
    assert.deepEqual(names(second.commands), ['RXParamSetupReq', 'DutyCycleReq']);
    assert.equal(second.state.pending.length, 6);
  });

  it('sends nothing with no room and refuses a negative room', () => {
    const result = plan(joined(), { rx1DelaySeconds: 3 }, { maxBytes: 0 });
    assert.deepEqual(result.commands, []);
    assert.deepEqual(result.state.pending, []);
    assert.equal(result.state.lastDevStatusRequestAt, null);
    assert.throws(() => plan(joined(), {}, { maxBytes: -1 }), RangeError);
  });

  it('goes beyond 15 bytes when the caller has an FPort-0 payload to fill', () => {
    const result = plan(
      joined(),
      {
        rx1DelaySeconds: 2,
        rx1DrOffset: 1,
        maxDutyCycle: 3,
        extraChannels: [
          { index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 },
          { index: 9, frequencyHz: 869_000_000, minDr: 0, maxDr: 5 },
        ],
      },
      { maxBytes: 51 },
    );
    // Channels 3-7 are deleted (the profile lists only 8 and 9), then 8 and 9 created.
    assert.equal(result.commands.filter((c) => c.cid === 'NewChannelReq').length, 7);
    assert.ok(encodeMacCommands(result.commands).length > FOPTS_MAX);
  });

  it('sizes commands as their CID byte plus payload', () => {
    assert.equal(macCommandSize('DevStatusReq'), 1);
    assert.equal(macCommandSize('RXParamSetupReq'), 5);
    assert.equal(macCommandSize('NewChannelReq'), 6);
    assert.equal(macCommandSize('ForceRejoinReq'), 3);
  });

  it('never changes the state it is given', () => {
    const state = deepFreeze(joined('1.1.0'));
    const profile = deepFreeze({
      rx1DelaySeconds: 4,
      adrAckLimitExp: 8,
      extraChannels: [{ index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 }],
      dlChannels: [{ index: 0, frequencyHz: 869_100_000 }],
    } satisfies MacProfile);
    const result = plan(state, profile, { macVersion: '1.1.0' });
    assert.ok(result.commands.length > 0);
    const answered = applyMacAnswers(
      deepFreeze(result.state),
      [{ cid: 'DevStatusAns', battery: 3, margin: 4 }],
      { region: EU868, macVersion: '1.1.0', nowMs: T0 },
    );
    assert.ok(answered.outcomes.length > 0);
  });
});

describe('RXParamSetupReq', () => {
  const profile: MacProfile = { ...QUIET, rx1DrOffset: 2, rx2Dr: 3 };

  it('is planned when the RX1 offset, RX2 data rate or RX2 frequency differ', () => {
    const result = plan(joined(), profile, { nFCntDown: 7 });
    assert.deepEqual(result.commands, [
      { cid: 'RXParamSetupReq', rx1DrOffset: 2, rx2DataRate: 3, frequencyHz: 869_525_000 },
    ]);
    assert.deepEqual(result.state.pending, [
      {
        command: result.commands[0],
        sentAt: new Date(T0).toISOString(),
        nFCntDown: 7,
        attempts: 1,
      },
    ]);
    const frequencyOnly = plan(joined(), { ...QUIET, rx2FrequencyHz: 869_100_000 });
    assert.deepEqual(frequencyOnly.commands, [
      { cid: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 0, frequencyHz: 869_100_000 },
    ]);
  });

  it('is applied when the device sets all three ACK bits', () => {
    const sent = plan(joined(), profile);
    const { state, outcomes, downlinkNeeded } = apply(sent.state, [ACK_RX_PARAM]);
    assert.deepEqual(outcomes, [
      {
        cid: 'RXParamSetupAns',
        status: 'applied',
        detail: 'RXParamSetupReq applied',
        request: sent.commands[0],
      },
    ]);
    assert.equal(state.rx1DrOffset, 2);
    assert.equal(state.rx2Dr, 3);
    assert.deepEqual(state.pending, []);
    assert.ok(downlinkNeeded, 'a downlink stops the repeats of the sticky answer');
    // The next uplink has no repeat: the device got a downlink; nothing is left to send.
    const settled = apply(state, []).state;
    assert.deepEqual(plan(settled, profile, { nFCntDown: 1 }).commands, []);
  });

  for (const [bits, refused] of [
    [{ rx1DrOffsetAck: false, rx2DataRateAck: true, channelAck: true }, 'RX1DROffset'],
    [{ rx1DrOffsetAck: true, rx2DataRateAck: false, channelAck: true }, 'RX2 data rate'],
    [{ rx1DrOffsetAck: true, rx2DataRateAck: true, channelAck: false }, 'RX2 frequency'],
  ] as const) {
    it(`keeps every old setting when the device refuses the ${refused}`, () => {
      const sent = plan(joined(), profile);
      const { state, outcomes } = apply(sent.state, [{ cid: 'RXParamSetupAns', ...bits }]);
      assert.equal(outcomes[0]?.status, 'rejected');
      assert.match(outcomes[0]!.detail, new RegExp(refused));
      assert.equal(state.rx1DrOffset, 0);
      assert.equal(state.rx2Dr, 0);
      assert.equal(state.refused.length, 1);
      assert.equal(state.refused[0]?.reason, 'rejected');
      // Not sent again for the same settings, however many downlinks follow...
      const cleared = apply(state, []).state;
      for (let fCnt = 1; fCnt < 6; fCnt++) {
        assert.deepEqual(plan(cleared, profile, { nFCntDown: fCnt }).commands, []);
      }
      // ... but for different ones.
      const other = plan(cleared, { ...profile, rx2Dr: 2 }, { nFCntDown: 6 });
      assert.deepEqual(names(other.commands), ['RXParamSetupReq']);
      assert.deepEqual(other.state.refused, []);
    });
  }
});

describe('RXTimingSetupReq', () => {
  it('is planned, and the delay applied on the (bit-less) answer', () => {
    const sent = plan(joined(), { ...QUIET, rx1DelaySeconds: 5 });
    assert.deepEqual(sent.commands, [{ cid: 'RXTimingSetupReq', delaySeconds: 5 }]);
    const { state, outcomes } = apply(sent.state, [{ cid: 'RXTimingSetupAns' }]);
    assert.equal(outcomes[0]?.status, 'applied');
    assert.equal(state.rx1DelaySeconds, 5);
  });

  it('calls an answer nobody asked for unexpected and changes nothing', () => {
    const state = joined();
    const result = apply(state, [{ cid: 'RXTimingSetupAns' }]);
    assert.equal(result.outcomes[0]?.status, 'unexpected');
    assert.equal(result.state.rx1DelaySeconds, 1);
  });
});

describe('DutyCycleReq', () => {
  it('is planned, and the limit applied on the answer', () => {
    const sent = plan(joined(), { ...QUIET, maxDutyCycle: 7 });
    assert.deepEqual(sent.commands, [{ cid: 'DutyCycleReq', maxDutyCycle: 7 }]);
    const { state, outcomes } = apply(sent.state, [{ cid: 'DutyCycleAns' }]);
    assert.equal(outcomes[0]?.status, 'applied');
    assert.equal(state.maxDutyCycle, 7);
    assert.deepEqual(plan(state, { ...QUIET, maxDutyCycle: 7 }, { nFCntDown: 1 }).commands, []);
  });
});

describe('NewChannelReq', () => {
  const eight = JOIN_EXTRA_CHANNELS;

  it('creates, changes and deletes channels beyond the defaults', () => {
    const profile: MacProfile = {
      ...QUIET,
      extraChannels: [
        ...eight.filter((c) => c.index !== 4 && c.index !== 5),
        { index: 5, frequencyHz: 867_500_000, minDr: 0, maxDr: 7 },
        { index: 10, frequencyHz: 869_850_000, minDr: 0, maxDr: 5 },
      ],
    };
    const result = plan(joined(), profile, { maxBytes: 30 });
    assert.deepEqual(result.commands, [
      { cid: 'NewChannelReq', chIndex: 4, frequencyHz: 0, minDr: 0, maxDr: 0 },
      { cid: 'NewChannelReq', chIndex: 5, frequencyHz: 867_500_000, minDr: 0, maxDr: 7 },
      { cid: 'NewChannelReq', chIndex: 10, frequencyHz: 869_850_000, minDr: 0, maxDr: 5 },
    ]);
    const { state, outcomes } = apply(result.state, [
      ACK_NEW_CHANNEL,
      ACK_NEW_CHANNEL,
      ACK_NEW_CHANNEL,
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['applied', 'applied', 'applied'],
    );
    assert.equal(state.channels[4], null);
    assert.deepEqual(state.channels[5], channel(867_500_000, 0, 7));
    assert.deepEqual(state.channels[10], channel(869_850_000));
    assert.equal(state.channels.length, 11);
    assert.deepEqual(plan(state, profile, { nFCntDown: 1 }).commands, []);
  });

  it('leaves the channels alone when the profile does not list them', () => {
    assert.deepEqual(plan(joined(), QUIET).commands, []);
  });

  it('deletes trailing channels and trims the list', () => {
    const sent = plan(joined(), { ...QUIET, extraChannels: eight.slice(0, 4) });
    assert.deepEqual(sent.commands, [
      { cid: 'NewChannelReq', chIndex: 7, frequencyHz: 0, minDr: 0, maxDr: 0 },
    ]);
    const { state } = apply(sent.state, [ACK_NEW_CHANNEL]);
    assert.equal(state.channels.length, 7);
  });

  it('does not create a channel the device refused, and matches answers in order', () => {
    const profile: MacProfile = {
      ...QUIET,
      extraChannels: [
        ...eight,
        { index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 },
        { index: 9, frequencyHz: 869_000_000, minDr: 0, maxDr: 5 },
      ],
    };
    const sent = plan(joined(), profile);
    const { state, outcomes } = apply(sent.state, [
      ACK_NEW_CHANNEL,
      { cid: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: false },
    ]);
    assert.deepEqual(
      outcomes.map((o) => [o.status, (o.request as { chIndex: number }).chIndex]),
      [
        ['applied', 8],
        ['rejected', 9],
      ],
    );
    assert.match(outcomes[1]!.detail, /frequency/);
    assert.deepEqual(state.channels[8], channel(868_800_000));
    assert.equal(state.channels[9], undefined);
    assert.deepEqual(plan(state, profile, { nFCntDown: 1 }).commands, []);
  });

  it('resets the RX1 downlink frequency of a channel it changes', () => {
    const withOverride = { ...joined(), dlChannelFrequencies: [null, null, null, 869_100_000] };
    const sent = plan(withOverride, {
      ...QUIET,
      extraChannels: [{ ...eight[0]!, frequencyHz: 867_200_000 }, ...eight.slice(1)],
    });
    const { state } = apply(sent.state, [ACK_NEW_CHANNEL]);
    assert.deepEqual(state.dlChannelFrequencies, []);
  });

  it('is never planned in a region with a fixed channel plan', () => {
    const state = joined('1.0.4', FIXED_PLAN_REGION);
    const result = plan(
      state,
      {
        ...QUIET,
        extraChannels: [{ index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 }],
        dlChannels: [{ index: 0, frequencyHz: 869_100_000 }],
      },
      { region: FIXED_PLAN_REGION },
    );
    assert.deepEqual(result.commands, []);
    assert.equal(isMacRequestSupported('NewChannelReq', FIXED_PLAN_REGION, '1.0.4'), false);
    assert.equal(isMacRequestSupported('DlChannelReq', FIXED_PLAN_REGION, '1.1.0'), false);
  });
});

describe('DlChannelReq', () => {
  it('sets an RX1 downlink frequency for an existing channel', () => {
    const profile: MacProfile = { ...QUIET, dlChannels: [{ index: 1, frequencyHz: 869_100_000 }] };
    const sent = plan(joined(), profile);
    assert.deepEqual(sent.commands, [
      { cid: 'DlChannelReq', chIndex: 1, frequencyHz: 869_100_000 },
    ]);
    const { state, outcomes } = apply(sent.state, [ACK_DL_CHANNEL]);
    assert.equal(outcomes[0]?.status, 'applied');
    assert.deepEqual(state.dlChannelFrequencies, [null, 869_100_000]);
    const settled = apply(state, []).state;
    assert.deepEqual(plan(settled, profile, { nFCntDown: 1 }).commands, []);
    // Dropping it from the profile gives the channel its uplink frequency back.
    const reset = plan(settled, { ...QUIET, dlChannels: [] }, { nFCntDown: 2 });
    assert.deepEqual(reset.commands, [
      { cid: 'DlChannelReq', chIndex: 1, frequencyHz: 868_300_000 },
    ]);
    assert.deepEqual(apply(reset.state, [ACK_DL_CHANNEL]).state.dlChannelFrequencies, []);
  });

  it('follows the NewChannelReq of a new channel in the same downlink', () => {
    const profile: MacProfile = {
      ...QUIET,
      extraChannels: [{ index: 3, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 }],
      dlChannels: [{ index: 3, frequencyHz: 869_100_000 }],
    };
    const sent = plan(joined(), profile, { maxBytes: 51 });
    const last = sent.commands.slice(-2);
    assert.deepEqual(last, [
      { cid: 'NewChannelReq', chIndex: 7, frequencyHz: 0, minDr: 0, maxDr: 0 },
      { cid: 'DlChannelReq', chIndex: 3, frequencyHz: 869_100_000 },
    ]);
    assert.deepEqual(sent.commands[0], {
      cid: 'NewChannelReq',
      chIndex: 3,
      frequencyHz: 868_800_000,
      minDr: 0,
      maxDr: 5,
    });
    const answers = sent.commands.map((c) =>
      c.cid === 'NewChannelReq' ? ACK_NEW_CHANNEL : ACK_DL_CHANNEL,
    );
    const { state } = apply(sent.state, answers);
    assert.deepEqual(state.channels, [...joined().channels.slice(0, 3), channel(868_800_000)]);
    assert.deepEqual(state.dlChannelFrequencies, [null, null, null, 869_100_000]);
  });

  it('waits while the NewChannelReq of its channel is unanswered', () => {
    const profile: MacProfile = {
      ...QUIET,
      extraChannels: [
        ...JOIN_EXTRA_CHANNELS,
        { index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 },
      ],
      dlChannels: [{ index: 8, frequencyHz: 869_100_000 }],
    };
    // Only the NewChannelReq fits in the first downlink.
    const first = plan(joined(), profile, { maxBytes: 6 });
    assert.deepEqual(names(first.commands), ['NewChannelReq']);
    // Same downlink counter: its answer is not due yet, so the DlChannelReq waits too.
    const again = plan(first.state, profile, { nFCntDown: 0 });
    assert.deepEqual(again.commands, []);
    // Once answered, the DlChannelReq goes.
    const created = apply(first.state, [ACK_NEW_CHANNEL]).state;
    assert.deepEqual(plan(created, profile, { nFCntDown: 1 }).commands, [
      { cid: 'DlChannelReq', chIndex: 8, frequencyHz: 869_100_000 },
    ]);
  });

  it('keeps the uplink frequency when the device refuses', () => {
    const sent = plan(joined(), { ...QUIET, dlChannels: [{ index: 0, frequencyHz: 869_100_000 }] });
    const { state, outcomes } = apply(sent.state, [
      { cid: 'DlChannelAns', uplinkFrequencyExists: false, channelFrequencyOk: true },
    ]);
    assert.equal(outcomes[0]?.status, 'rejected');
    assert.match(outcomes[0]!.detail, /uplink frequency not defined/);
    assert.deepEqual(state.dlChannelFrequencies, []);
  });
});

describe('sticky answers (RXParamSetupAns, RXTimingSetupAns, DlChannelAns)', () => {
  it('takes a repeat as already applied and leaves the state alone', () => {
    const sent = plan(joined(), { ...QUIET, rx1DrOffset: 2 });
    const first = apply(sent.state, [ACK_RX_PARAM]);
    const repeat = apply(first.state, [ACK_RX_PARAM]);
    assert.equal(repeat.outcomes[0]?.status, 'applied');
    assert.match(repeat.outcomes[0]!.detail, /repeat/);
    assert.deepEqual(repeat.state, first.state);
    assert.ok(repeat.downlinkNeeded);
    const again = apply(repeat.state, [ACK_RX_PARAM]);
    assert.deepEqual(again.state, first.state);
  });

  it('repeats a refusal as a refusal, without recording it twice', () => {
    const sent = plan(joined(), {
      ...QUIET,
      rx1DelaySeconds: 2,
      dlChannels: [{ index: 2, frequencyHz: 869_100_000 }],
    });
    const nack: MacCommand = {
      cid: 'DlChannelAns',
      uplinkFrequencyExists: true,
      channelFrequencyOk: false,
    };
    const first = apply(sent.state, [nack, { cid: 'RXTimingSetupAns' }]);
    assert.deepEqual(
      first.outcomes.map((o) => o.status),
      ['rejected', 'applied'],
    );
    const repeat = apply(first.state, [nack, { cid: 'RXTimingSetupAns' }]);
    assert.deepEqual(
      repeat.outcomes.map((o) => o.status),
      ['rejected', 'applied'],
    );
    assert.deepEqual(repeat.state, first.state);
  });

  it('is idempotent for any number of repeats when nothing is pending', () => {
    const state = apply(joined(), [ACK_RX_PARAM]).state;
    const once = apply(state, [ACK_RX_PARAM, { cid: 'RXTimingSetupAns' }]).state;
    const twice = apply(once, [ACK_RX_PARAM, { cid: 'RXTimingSetupAns' }]).state;
    assert.deepEqual(twice, once);
    assert.equal(twice.rx1DrOffset, 0);
  });

  it('sends no request of the same kind until the repeats stop, so answers stay unambiguous', () => {
    const sent = plan(joined(), { ...QUIET, rx1DrOffset: 2 });
    const applied = apply(sent.state, [ACK_RX_PARAM]).state;
    // The profile changes before the device has had a downlink.
    const changed: MacProfile = { ...QUIET, rx1DrOffset: 3 };
    const blocked = plan(applied, changed, { nFCntDown: 1 });
    assert.deepEqual(blocked.commands, [], 'a new RXParamSetupReq would be confused with a repeat');
    // The device did not get that downlink and repeats: still nothing new applied or sent.
    const repeated = apply(blocked.state, [ACK_RX_PARAM]);
    assert.equal(repeated.state.rx1DrOffset, 2);
    assert.deepEqual(plan(repeated.state, changed, { nFCntDown: 2 }).commands, []);
    // An uplink without the answer proves a downlink arrived: now the new request goes.
    const quiet = apply(repeated.state, []).state;
    assert.deepEqual(quiet.stickyAnswers, []);
    const next = plan(quiet, changed, { nFCntDown: 3 });
    assert.deepEqual(next.commands, [
      { cid: 'RXParamSetupReq', rx1DrOffset: 3, rx2DataRate: 0, frequencyHz: 869_525_000 },
    ]);
    assert.equal(apply(next.state, [ACK_RX_PARAM]).state.rx1DrOffset, 3);
  });

  it('applies the first answer even when the uplink that carried it was lost', () => {
    const sent = plan(joined(), { ...QUIET, rx1DelaySeconds: 3 });
    // The first uplink with the answer never reached the network; the repeat is the first seen.
    const { state, outcomes } = apply(sent.state, [{ cid: 'RXTimingSetupAns' }]);
    assert.equal(outcomes[0]?.status, 'applied');
    assert.equal(state.rx1DelaySeconds, 3);
  });
});

describe('TxParamSetupReq', () => {
  const txParams = { uplinkDwellTime: true, downlinkDwellTime: true, maxEirpIndex: 5 };

  it('is never sent in EU868', () => {
    assert.equal(isMacRequestSupported('TxParamSetupReq', EU868, '1.1.0'), false);
    assert.deepEqual(
      plan(joined('1.1.0'), { ...QUIET, txParams }, { macVersion: '1.1.0' }).commands,
      [],
    );
  });

  it('is sent and applied where the region supports it', () => {
    const state = joined('1.0.4', DWELL_REGION);
    const sent = plan(state, { ...QUIET, txParams }, { region: DWELL_REGION });
    assert.deepEqual(sent.commands, [{ cid: 'TxParamSetupReq', ...txParams }]);
    const { state: after, outcomes } = apply(sent.state, [{ cid: 'TxParamSetupAns' }], {
      region: DWELL_REGION,
    });
    assert.equal(outcomes[0]?.status, 'applied');
    assert.deepEqual(after.txParams, txParams);
    assert.deepEqual(
      plan(after, { ...QUIET, txParams }, { region: DWELL_REGION, nFCntDown: 1 }).commands,
      [],
    );
  });
});

describe('LoRaWAN 1.1 requests', () => {
  it('ADRParamSetupReq: sent with both exponents, applied on the answer', () => {
    const sent = plan(joined('1.1.0'), { ...QUIET, adrAckLimitExp: 8 }, { macVersion: '1.1.0' });
    assert.deepEqual(sent.commands, [{ cid: 'ADRParamSetupReq', limitExp: 8, delayExp: 5 }]);
    const { state } = apply(sent.state, [{ cid: 'ADRParamSetupAns' }], { macVersion: '1.1.0' });
    assert.equal(state.adrAckLimitExp, 8);
    assert.equal(state.adrAckDelayExp, 5);
  });

  it('RejoinParamSetupReq: applied, noting a device that cannot keep time', () => {
    const profile: MacProfile = { ...QUIET, rejoin: { maxTimeN: 4, maxCountN: 6 } };
    const sent = plan(joined('1.1.0'), profile, { macVersion: '1.1.0' });
    assert.deepEqual(sent.commands, [{ cid: 'RejoinParamSetupReq', maxTimeN: 4, maxCountN: 6 }]);
    const { state, outcomes } = apply(sent.state, [{ cid: 'RejoinParamSetupAns', timeOk: false }], {
      macVersion: '1.1.0',
    });
    assert.equal(outcomes[0]?.status, 'applied');
    assert.match(outcomes[0]!.detail, /count only/);
    assert.deepEqual(state.rejoin, { maxTimeN: 4, maxCountN: 6, timeOk: false });
    assert.deepEqual(plan(state, profile, { macVersion: '1.1.0', nFCntDown: 1 }).commands, []);
  });

  it('ForceRejoinReq: sent once per id, never pending', () => {
    const forceRejoin = { id: 'a', period: 2, maxRetries: 3, rejoinType: 2, dataRate: 1 };
    const sent = plan(
      joined('1.1.0'),
      { ...QUIET, forceRejoin },
      { macVersion: '1.1.0', nFCntDown: 4 },
    );
    assert.deepEqual(sent.commands, [
      { cid: 'ForceRejoinReq', period: 2, maxRetries: 3, rejoinType: 2, dataRate: 1 },
    ]);
    assert.deepEqual(sent.state.pending, []);
    assert.deepEqual(sent.state.lastForceRejoin, {
      id: 'a',
      at: new Date(T0).toISOString(),
      nFCntDown: 4,
    });
    const options = { macVersion: '1.1.0', nFCntDown: 5 } as const;
    assert.deepEqual(plan(sent.state, { ...QUIET, forceRejoin }, options).commands, []);
    const another = plan(
      sent.state,
      { ...QUIET, forceRejoin: { ...forceRejoin, id: 'b' } },
      options,
    );
    assert.deepEqual(names(another.commands), ['ForceRejoinReq']);
  });

  it('none of them ever goes to a 1.0.x device', () => {
    const profile: MacProfile = {
      ...QUIET,
      adrAckLimitExp: 8,
      adrAckDelayExp: 2,
      rejoin: { maxTimeN: 1, maxCountN: 1 },
      forceRejoin: { id: 'x', period: 0, maxRetries: 0, rejoinType: 0, dataRate: 0 },
    };
    for (const macVersion of VERSIONS.filter((v) => v.startsWith('1.0'))) {
      assert.deepEqual(plan(joined(macVersion), profile, { macVersion }).commands, []);
      for (const name of LORAWAN_11_ONLY) {
        assert.equal(isMacRequestSupported(name as 'ForceRejoinReq', EU868, macVersion), false);
      }
    }
    assert.equal(plan(joined('1.1.0'), profile, { macVersion: '1.1.0' }).commands.length, 3);
  });
});

describe('DevStatusReq', () => {
  const everyHour: MacProfile = { devStatusIntervalMs: HOUR };

  it('is sent periodically, counting from the first send', () => {
    const first = plan(joined(), everyHour, { nowMs: T0 });
    assert.deepEqual(first.commands, [{ cid: 'DevStatusReq' }]);
    assert.equal(first.state.lastDevStatusRequestAt, new Date(T0).toISOString());
    const answered = apply(first.state, [{ cid: 'DevStatusAns', battery: 200, margin: -5 }], {
      nowMs: T0 + 2000,
    });
    assert.deepEqual(
      answered.outcomes.map((o) => o.status),
      ['applied'],
    );
    assert.deepEqual(answered.state.lastDevStatus, {
      battery: 200,
      margin: -5,
      at: new Date(T0 + 2000).toISOString(),
    });
    const early = plan(answered.state, everyHour, { nowMs: T0 + HOUR - 1, nFCntDown: 1 });
    assert.deepEqual(early.commands, []);
    const due = plan(answered.state, everyHour, { nowMs: T0 + HOUR, nFCntDown: 1 });
    assert.deepEqual(due.commands, [{ cid: 'DevStatusReq' }]);
  });

  it('defaults to once a day and can be turned off', () => {
    assert.equal(DEFAULT_DEV_STATUS_INTERVAL_MS, 24 * HOUR);
    const first = plan(joined(), {});
    const settled = apply(first.state, [{ cid: 'DevStatusAns', battery: 0, margin: 10 }]).state;
    assert.deepEqual(plan(settled, {}, { nowMs: T0 + 23 * HOUR, nFCntDown: 1 }).commands, []);
    assert.deepEqual(names(plan(settled, {}, { nowMs: T0 + 24 * HOUR, nFCntDown: 1 }).commands), [
      'DevStatusReq',
    ]);
    assert.deepEqual(plan(joined(), { devStatusIntervalMs: 0 }).commands, []);
  });

  it('keeps what the battery byte says: external power, unknown, a level', () => {
    for (const battery of [0, 1, 254, 255]) {
      const sent = plan(joined(), everyHour);
      const { state } = apply(sent.state, [{ cid: 'DevStatusAns', battery, margin: 31 }]);
      assert.equal(state.lastDevStatus?.battery, battery);
      assert.equal(state.lastDevStatus?.margin, 31);
    }
  });

  it('records an unsolicited status but calls it unexpected', () => {
    const { state, outcomes } = apply(joined(), [{ cid: 'DevStatusAns', battery: 5, margin: -32 }]);
    assert.equal(outcomes[0]?.status, 'unexpected');
    assert.deepEqual(state.lastDevStatus?.margin, -32);
  });

  it('is re-sent without an answer, keeps its period, and is not blacklisted when abandoned', () => {
    let state = joined();
    const sentCounts: number[] = [];
    for (let fCnt = 0; fCnt < 4; fCnt++) {
      const result = plan(state, everyHour, { nFCntDown: fCnt, nowMs: T0 + fCnt * 60_000 });
      sentCounts.push(result.commands.length);
      state = result.state;
      if (fCnt === 3) assert.equal(result.abandoned.length, 1);
    }
    assert.deepEqual(sentCounts, [1, 1, 1, 0]);
    assert.equal(state.lastDevStatusRequestAt, new Date(T0).toISOString());
    assert.deepEqual(state.refused, []);
    assert.deepEqual(state.pending, []);
    const nextPeriod = plan(state, everyHour, { nFCntDown: 4, nowMs: T0 + HOUR });
    assert.deepEqual(names(nextPeriod.commands), ['DevStatusReq']);
  });
});

describe('re-sending and giving up', () => {
  const profile: MacProfile = { ...QUIET, rx1DelaySeconds: 4 };

  it('waits for the answer while no other downlink went out', () => {
    const first = plan(joined(), profile, { nFCntDown: 10 });
    assert.deepEqual(plan(first.state, profile, { nFCntDown: 10 }).commands, []);
  });

  it('re-sends on the next downlink, then gives up after the last attempt', () => {
    let state = plan(joined(), profile, { nFCntDown: 10 }).state;
    for (const [fCnt, attempts] of [
      [11, 2],
      [12, 3],
    ] as const) {
      const result = plan(state, profile, { nFCntDown: fCnt });
      assert.deepEqual(names(result.commands), ['RXTimingSetupReq']);
      assert.equal(result.state.pending[0]?.attempts, attempts);
      assert.equal(result.state.pending[0]?.nFCntDown, fCnt);
      state = result.state;
    }
    const gaveUp = plan(state, profile, { nFCntDown: 13, nowMs: T0 + 1000 });
    assert.deepEqual(gaveUp.commands, []);
    assert.deepEqual(gaveUp.abandoned, [
      {
        command: { cid: 'RXTimingSetupReq', delaySeconds: 4 },
        attempts: 3,
        reason: 'no answer after 3 downlink(s)',
      },
    ]);
    assert.deepEqual(gaveUp.state.pending, []);
    assert.equal(gaveUp.state.refused[0]?.reason, 'unanswered');
    // Left alone for a day, then tried again.
    const later = plan(gaveUp.state, profile, { nFCntDown: 14, nowMs: T0 + HOUR });
    assert.deepEqual(later.commands, []);
    const nextDay = plan(gaveUp.state, profile, { nFCntDown: 15, nowMs: T0 + 1000 + 24 * HOUR });
    assert.deepEqual(names(nextDay.commands), ['RXTimingSetupReq']);
    assert.equal(nextDay.state.pending[0]?.attempts, 1);
    assert.deepEqual(nextDay.state.refused, []);
  });

  it('follows a custom policy', () => {
    const policy = { resendAfterDownlinks: 3, maxAttempts: 1 };
    const first = plan(joined(), profile, { nFCntDown: 0, policy });
    assert.deepEqual(plan(first.state, profile, { nFCntDown: 2, policy }).commands, []);
    const abandoned = plan(first.state, profile, { nFCntDown: 3, policy });
    assert.equal(abandoned.abandoned.length, 1);
  });

  it('re-sends at once after a downlink counter reset', () => {
    const first = plan(joined(), profile, { nFCntDown: 100 });
    assert.deepEqual(names(plan(first.state, profile, { nFCntDown: 0 }).commands), [
      'RXTimingSetupReq',
    ]);
  });

  it('sends the newest wish when the profile changed while a request was pending', () => {
    const first = plan(joined(), profile, { nFCntDown: 0 });
    const changed = plan(first.state, { ...QUIET, rx1DelaySeconds: 6 }, { nFCntDown: 1 });
    assert.deepEqual(changed.commands, [{ cid: 'RXTimingSetupReq', delaySeconds: 6 }]);
    assert.equal(changed.state.pending.length, 1);
    assert.equal(changed.state.pending[0]?.attempts, 1);
  });

  it('drops a pending request the profile no longer asks for, once its answer is due', () => {
    const first = plan(joined(), profile, { nFCntDown: 0 });
    assert.equal(plan(first.state, QUIET, { nFCntDown: 0 }).state.pending.length, 1);
    const dropped = plan(first.state, QUIET, { nFCntDown: 1 });
    assert.deepEqual(dropped.state.pending, []);
    assert.deepEqual(dropped.abandoned, []);
  });

  it('drops a pending 1.1 request when the device turns out to be 1.0.x', () => {
    const sent = plan(joined('1.1.0'), { ...QUIET, adrAckLimitExp: 9 }, { macVersion: '1.1.0' });
    const as10 = plan(sent.state, { ...QUIET, adrAckLimitExp: 9 }, { nFCntDown: 1 });
    assert.deepEqual(as10.commands, []);
    assert.deepEqual(as10.state.pending, []);
  });
});

describe('DeviceModeInd', () => {
  it('switches a 1.1 device to class C and answers with DeviceModeConf', () => {
    const { state, outcomes, replies, downlinkNeeded } = apply(
      joined('1.1.0'),
      [{ cid: 'DeviceModeInd', class: 'C' }],
      { macVersion: '1.1.0' },
    );
    assert.equal(state.deviceClass, 'C');
    assert.deepEqual(replies, [{ cid: 'DeviceModeConf', class: 'C' }]);
    assertEncodes(replies);
    assert.deepEqual(outcomes, [
      { cid: 'DeviceModeInd', status: 'applied', detail: 'class A -> C' },
    ]);
    assert.ok(downlinkNeeded);
    const back = apply(state, [{ cid: 'DeviceModeInd', class: 'A' }], { macVersion: '1.1.0' });
    assert.equal(back.state.deviceClass, 'A');
    assert.deepEqual(back.replies, [{ cid: 'DeviceModeConf', class: 'A' }]);
  });

  it('confirms again when the device repeats it', () => {
    const once = apply(joined('1.1.0'), [{ cid: 'DeviceModeInd', class: 'C' }], {
      macVersion: '1.1.0',
    });
    const twice = apply(once.state, [{ cid: 'DeviceModeInd', class: 'C' }], {
      macVersion: '1.1.0',
    });
    assert.deepEqual(twice.replies, [{ cid: 'DeviceModeConf', class: 'C' }]);
    assert.deepEqual(twice.state, once.state);
  });

  it('is not answered for a 1.0.x device, which would not understand DeviceModeConf', () => {
    const { state, outcomes, replies } = apply(joined('1.0.4'), [
      { cid: 'DeviceModeInd', class: 'C' },
    ]);
    assert.equal(state.deviceClass, 'A');
    assert.deepEqual(replies, []);
    assert.equal(outcomes[0]?.status, 'unexpected');
  });
});

describe('applyMacAnswers: other commands', () => {
  it('leaves commands of other modules to them', () => {
    const state = joined();
    const result = apply(state, [
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
      { cid: 'LinkCheckReq' },
      { cid: 'DeviceTimeReq' },
      { cid: 'RekeyInd', minorVersion: 1 },
    ]);
    assert.deepEqual(result.outcomes, []);
    assert.deepEqual(result.state, state);
    assert.equal(result.downlinkNeeded, false);
  });

  it('calls a downlink command in an uplink unexpected', () => {
    const result = apply(joined(), [{ cid: 'DevStatusReq' }]);
    assert.equal(result.outcomes[0]?.status, 'unexpected');
    assert.match(result.outcomes[0]!.detail, /downlink command/);
  });

  it('does not apply a pending request that is invalid for the region', () => {
    const forged: MacState = {
      ...joined(),
      pending: [
        {
          command: {
            cid: 'RXParamSetupReq',
            rx1DrOffset: 7,
            rx2DataRate: 0,
            frequencyHz: 869_525_000,
          },
          sentAt: new Date(T0).toISOString(),
          nFCntDown: 0,
          attempts: 1,
        },
      ],
    };
    const { state, outcomes } = apply(forged, [ACK_RX_PARAM]);
    assert.equal(outcomes[0]?.status, 'unexpected');
    assert.equal(state.rx1DrOffset, 0);
    assert.deepEqual(state.pending, []);
  });
});

describe('JSON round trip', () => {
  it('gives back an equal state after planning and answers', () => {
    let state = joined('1.1.0');
    const profile: MacProfile = {
      rx1DrOffset: 1,
      rx1DelaySeconds: 2,
      extraChannels: [{ index: 8, frequencyHz: 868_800_000, minDr: 0, maxDr: 5 }],
      dlChannels: [{ index: 0, frequencyHz: 869_100_000 }],
      rejoin: { maxTimeN: 2, maxCountN: 3 },
      forceRejoin: { id: 'j', period: 0, maxRetries: 0, rejoinType: 0, dataRate: 0 },
    };
    const options = { macVersion: '1.1.0' as const };
    for (let fCnt = 0; fCnt < 5; fCnt++) {
      const planned = plan(state, profile, { ...options, nFCntDown: fCnt, maxBytes: 51 });
      assert.deepEqual(JSON.parse(JSON.stringify(planned.state)), planned.state);
      const answers: MacCommand[] = planned.commands.flatMap((c): MacCommand[] => {
        switch (c.cid) {
          case 'NewChannelReq':
            return [{ ...ACK_NEW_CHANNEL, channelFrequencyOk: c.chIndex !== 3 }];
          case 'DlChannelReq':
            return [ACK_DL_CHANNEL];
          case 'RXParamSetupReq':
            return [ACK_RX_PARAM];
          case 'RXTimingSetupReq':
            return [{ cid: 'RXTimingSetupAns' }];
          case 'RejoinParamSetupReq':
            return [{ cid: 'RejoinParamSetupAns', timeOk: true }];
          case 'DevStatusReq':
            return [{ cid: 'DevStatusAns', battery: 99, margin: 7 }];
          default:
            return [];
        }
      });
      answers.push({ cid: 'DeviceModeInd', class: 'C' });
      state = apply(planned.state, answers, options).state;
      assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
    }
    assert.equal(state.deviceClass, 'C');
    assert.equal(state.rx1DrOffset, 1);
    assert.deepEqual(state.channels[8], channel(868_800_000));
    assert.ok(state.refused.length > 0, 'the refused deletion of channels 3-7 is recorded');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties.

/** Any command a device could send, as the decoder yields it from random payload bytes. */
const ANSWER_NAMES = [
  'RXParamSetupAns',
  'RXTimingSetupAns',
  'DlChannelAns',
  'NewChannelAns',
  'DutyCycleAns',
  'TxParamSetupAns',
  'ADRParamSetupAns',
  'RejoinParamSetupAns',
  'DevStatusAns',
  'DeviceModeInd',
] as const;
const decodedUplinkCommand: fc.Arbitrary<MacCommand> = fc
  .oneof(
    { weight: 3, arbitrary: fc.constantFrom(...ANSWER_NAMES) },
    { weight: 1, arbitrary: fc.constantFrom(...UPLINK_MAC_COMMAND_NAMES) },
  )
  .chain((name) => {
    const cid = MAC_COMMAND_CIDS[name];
    const length = macCommandPayloadLength(cid, 'uplink')!;
    return fc.uint8Array({ minLength: length, maxLength: length }).map((payload): MacCommand => {
      try {
        return decodeMacCommands(Uint8Array.of(cid, ...payload), 'uplink')[0]!;
      } catch {
        // A DeviceModeInd with an RFU class: the decoder refuses it, the caller never sees it.
        return { cid: 'LinkCheckReq' } satisfies UplinkMacCommand;
      }
    });
  });

/** fc.record with ordinary prototypes, as JSON.parse gives them. */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

const frequency = fc.constantFrom(
  0,
  867_100_000,
  868_800_000,
  869_525_000,
  869_100_050,
  923_300_000,
);
const profileArbitrary: fc.Arbitrary<MacProfile> = fc.record(
  {
    rx1DelaySeconds: fc.integer({ min: 0, max: 16 }),
    rx1DrOffset: fc.integer({ min: 0, max: 7 }),
    rx2Dr: fc.integer({ min: 0, max: 9 }),
    rx2FrequencyHz: frequency,
    extraChannels: fc.array(
      rec({
        index: fc.integer({ min: 0, max: 17 }),
        frequencyHz: frequency,
        minDr: fc.integer({ min: 0, max: 8 }),
        maxDr: fc.integer({ min: 0, max: 8 }),
      }),
      { maxLength: 6 },
    ),
    dlChannels: fc.array(rec({ index: fc.integer({ min: 0, max: 17 }), frequencyHz: frequency }), {
      maxLength: 4,
    }),
    maxDutyCycle: fc.integer({ min: 0, max: 16 }),
    devStatusIntervalMs: fc.constantFrom(0, 1000, HOUR, -5),
    txParams: rec({
      uplinkDwellTime: fc.boolean(),
      downlinkDwellTime: fc.boolean(),
      maxEirpIndex: fc.integer({ min: 0, max: 16 }),
    }),
    adrAckLimitExp: fc.integer({ min: 0, max: 16 }),
    adrAckDelayExp: fc.integer({ min: 0, max: 16 }),
    rejoin: rec({
      maxTimeN: fc.integer({ min: 0, max: 16 }),
      maxCountN: fc.integer({ min: 0, max: 16 }),
    }),
    forceRejoin: rec({
      id: fc.constantFrom('a', 'b', ''),
      period: fc.integer({ min: 0, max: 8 }),
      maxRetries: fc.integer({ min: 0, max: 7 }),
      rejoinType: fc.integer({ min: 0, max: 7 }),
      dataRate: fc.integer({ min: 0, max: 15 }),
    }),
  },
  { requiredKeys: [], noNullPrototype: true },
);

/** Requests as a corrupted or hand-edited store might hold them: encodable, not always valid. */
const wildRequest: fc.Arbitrary<MacRequest> = fc.oneof(
  rec({
    cid: fc.constant('RXParamSetupReq' as const),
    rx1DrOffset: fc.integer({ min: 0, max: 7 }),
    rx2DataRate: fc.integer({ min: 0, max: 15 }),
    frequencyHz: frequency,
  }),
  rec({
    cid: fc.constant('RXTimingSetupReq' as const),
    delaySeconds: fc.integer({ min: 0, max: 20 }),
  }),
  rec({
    cid: fc.constant('NewChannelReq' as const),
    chIndex: fc.integer({ min: 0, max: 20 }),
    frequencyHz: frequency,
    minDr: fc.integer({ min: 0, max: 15 }),
    maxDr: fc.integer({ min: 0, max: 15 }),
  }),
  rec({
    cid: fc.constant('DlChannelReq' as const),
    chIndex: fc.integer({ min: 0, max: 20 }),
    frequencyHz: frequency,
  }),
  rec({
    cid: fc.constant('DutyCycleReq' as const),
    maxDutyCycle: fc.integer({ min: 0, max: 20 }),
  }),
  rec({
    cid: fc.constant('ADRParamSetupReq' as const),
    limitExp: fc.integer({ min: 0, max: 20 }),
    delayExp: fc.integer({ min: 0, max: 20 }),
  }),
  rec({
    cid: fc.constant('TxParamSetupReq' as const),
    uplinkDwellTime: fc.boolean(),
    downlinkDwellTime: fc.boolean(),
    maxEirpIndex: fc.integer({ min: 0, max: 20 }),
  }),
);

type Step =
  | { kind: 'plan'; profile: MacProfile; maxBytes: number; advanceMs: number }
  | { kind: 'uplink'; answers: MacCommand[] }
  | { kind: 'forge'; request: MacRequest };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  rec({
    kind: fc.constant('plan' as const),
    profile: profileArbitrary,
    maxBytes: fc.integer({ min: 0, max: 20 }),
    advanceMs: fc.constantFrom(0, 1000, HOUR, 25 * HOUR),
  }),
  rec({
    kind: fc.constant('uplink' as const),
    answers: fc.array(decodedUplinkCommand, { maxLength: 6 }),
  }),
  {
    weight: 1,
    arbitrary: rec({ kind: fc.constant('forge' as const), request: wildRequest }),
  },
);

describe('properties', () => {
  it('planned commands always fit, encode, and respect the MAC version and region', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...VERSIONS),
        fc.constantFrom(EU868, DWELL_REGION),
        profileArbitrary,
        fc.integer({ min: 0, max: 15 }),
        (macVersion, region, profile, maxBytes) => {
          const result = planMacRequests(joined(macVersion, region), profile, {
            region,
            macVersion,
            nowMs: T0,
            nFCntDown: 0,
            maxBytes,
          });
          assertEncodes(result.commands, maxBytes);
          for (const command of result.commands) {
            assert.ok(DOWNLINK_MAC_COMMAND_NAMES.includes(command.cid));
            if (command.cid === 'ForceRejoinReq') continue;
            assert.ok(
              isMacRequestSupported(command.cid as MacRequest['cid'], region, macVersion),
              `${command.cid} sent to a ${macVersion} device in ${region.supportsTxParamSetup ? 'a dwell-time region' : 'EU868'}`,
            );
          }
          if (!macVersion.startsWith('1.1')) {
            assert.ok(!result.commands.some((c) => LORAWAN_11_ONLY.includes(c.cid)));
          }
          assert.deepEqual(validateMacState(result.state, region), []);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('applyMacAnswers never throws and never leaves invalid settings, whatever the uplinks say', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...VERSIONS),
        fc.array(stepArbitrary, { minLength: 1, maxLength: 25 }),
        (macVersion, steps) => {
          let state = joined(macVersion);
          let nowMs = T0;
          let nFCntDown = 0;
          for (const step of steps) {
            if (step.kind === 'plan') {
              nowMs += step.advanceMs;
              const result = planMacRequests(state, step.profile, {
                region: EU868,
                macVersion,
                nowMs,
                nFCntDown: nFCntDown++,
                maxBytes: step.maxBytes,
              });
              assertEncodes(result.commands, step.maxBytes);
              state = result.state;
            } else if (step.kind === 'forge') {
              const pending = {
                command: step.request,
                sentAt: new Date(nowMs).toISOString(),
                nFCntDown,
                attempts: 1,
              };
              state = { ...state, pending: [...state.pending, pending] };
            } else {
              const result = applyMacAnswers(state, step.answers, {
                region: EU868,
                macVersion,
                nowMs,
              });
              assertEncodes(result.replies);
              state = result.state;
            }
            assert.deepEqual(validateMacState(state, EU868), []);
            assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a repeated uplink changes nothing the second time', () => {
    fc.assert(
      fc.property(
        profileArbitrary,
        fc.array(decodedUplinkCommand, { maxLength: 6 }),
        (profile, uplink) => {
          const planned = planMacRequests(joined('1.1.0'), profile, {
            region: EU868,
            macVersion: '1.1.0',
            nowMs: T0,
            nFCntDown: 0,
            maxBytes: 15,
          });
          const sticky = uplink.filter(
            (c) =>
              c.cid === 'RXParamSetupAns' ||
              c.cid === 'RXTimingSetupAns' ||
              c.cid === 'DlChannelAns',
          );
          const options = { region: EU868, macVersion: '1.1.0', nowMs: T0 } as const;
          const once = applyMacAnswers(planned.state, sticky, options);
          const twice = applyMacAnswers(once.state, sticky, options);
          assert.deepEqual(twice.state, once.state);
        },
      ),
      { numRuns: 300 },
    );
  });
});
