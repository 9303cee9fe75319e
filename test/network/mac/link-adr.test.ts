import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToHex } from '../../../src/lorawan/bytes.js';
import { isLorawanError } from '../../../src/lorawan/errors.js';
import {
  decodeMacCommands,
  encodeMacCommands,
  type LinkADRAns,
  type LinkADRReq,
} from '../../../src/lorawan/mac-commands.js';
import { type Channel, type ChannelPlan, getRegion } from '../../../src/lorawan/regions/index.js';
import {
  applyLinkAdrAnswers,
  buildLinkAdrRequests,
  type LinkAdrState,
} from '../../../src/network/mac/link-adr.js';

const EU868 = getRegion('EU868');

function channel(frequencyHz: number, minDr = 0, maxDr = 5, enabled = true): Channel {
  return { frequencyHz, minDr, maxDr, enabled };
}

/** The three defaults plus 867.1-867.9 MHz on channels 3-7. */
const EIGHT_CHANNELS: ChannelPlan = [
  ...EU868.defaultChannels,
  channel(867_100_000),
  channel(867_300_000),
  channel(867_500_000),
  channel(867_700_000),
  channel(867_900_000),
];

const SIXTEEN_CHANNELS: ChannelPlan = [
  ...EIGHT_CHANNELS,
  ...Array.from({ length: 8 }, (_, i) => channel(863_100_000 + i * 200_000)),
];

const invalidField = (error: unknown) => isLorawanError(error) && error.code === 'INVALID_FIELD';

function state(overrides: Partial<LinkAdrState> = {}): LinkAdrState {
  return { dr: 0, txPowerIndex: 0, nbTrans: 1, enabledChannels: [0, 1, 2], ...overrides };
}

function answer(dataRateAck: boolean, powerAck: boolean, channelMaskAck: boolean): LinkADRAns {
  return { cid: 'LinkADRAns', powerAck, dataRateAck, channelMaskAck };
}

const ACK = answer(true, true, true);

function request(overrides: Partial<LinkADRReq> = {}): LinkADRReq {
  return {
    cid: 'LinkADRReq',
    dataRate: 5,
    txPower: 2,
    chMask: 0x00ff,
    chMaskCntl: 0,
    nbTrans: 1,
    ...overrides,
  };
}

describe('LinkADRReq planning (EU868)', () => {
  it('is one command with ChMaskCntl 0 and a 16-bit mask', () => {
    const block = buildLinkAdrRequests(
      EU868,
      { dr: 5, txPowerIndex: 2, nbTrans: 1, enabledChannels: [0, 1, 2, 3, 4, 5, 6, 7] },
      EIGHT_CHANNELS,
    );
    assert.deepEqual(block, [request()]);
  });

  it('encodes to the wire and decodes back', () => {
    const block = buildLinkAdrRequests(
      EU868,
      { dr: 3, txPowerIndex: 1, nbTrans: 2, enabledChannels: [0, 2, 9, 15] },
      SIXTEEN_CHANNELS,
    );
    const bytes = encodeMacCommands(block);
    // CID 03 | DataRate 3, TXPower 1 | ChMask 0x8205 little-endian | ChMaskCntl 0, NbTrans 2.
    assert.equal(bytesToHex(bytes), `03${'31'}${'0582'}${'02'}`);
    assert.deepEqual(decodeMacCommands(bytes, 'downlink'), block);
  });

  it('masks a subset and all sixteen channels', () => {
    const subset = buildLinkAdrRequests(
      EU868,
      { dr: 0, txPowerIndex: 0, nbTrans: 1, enabledChannels: [2, 1, 0, 1] },
      EIGHT_CHANNELS,
    );
    assert.deepEqual(
      subset.map((c) => [c.chMask, c.chMaskCntl]),
      [[0x0007, 0]],
    );
    const all = buildLinkAdrRequests(
      EU868,
      { dr: 5, txPowerIndex: 7, nbTrans: 3, enabledChannels: [...Array(16).keys()] },
      SIXTEEN_CHANNELS,
    );
    assert.deepEqual(
      all.map((c) => [c.chMask, c.dataRate, c.txPower, c.nbTrans]),
      [[0xffff, 5, 7, 3]],
    );
  });

  it('refuses what the device would refuse', () => {
    const target = { dr: 5, txPowerIndex: 0, nbTrans: 1, enabledChannels: [0, 1, 2] };
    const cases: Partial<LinkAdrState>[] = [
      { dr: 8 },
      { dr: 15 },
      { dr: -1 },
      { txPowerIndex: 8 },
      { txPowerIndex: 15 },
      { nbTrans: 0 },
      { nbTrans: 16 },
      { enabledChannels: [] },
      { enabledChannels: [0, 8] },
      { enabledChannels: [16] },
      { enabledChannels: [1.5] },
      // DR6 on channels that allow DR0-DR5 only.
      { dr: 6 },
    ];
    for (const change of cases) {
      assert.throws(
        () => buildLinkAdrRequests(EU868, { ...target, ...change }, EIGHT_CHANNELS),
        invalidField,
        JSON.stringify(change),
      );
    }
  });

  it('accepts DR6 or DR7 when an enabled channel allows it', () => {
    const plan: ChannelPlan = [...EIGHT_CHANNELS, channel(868_800_000, 7, 7)];
    const block = buildLinkAdrRequests(
      EU868,
      { dr: 7, txPowerIndex: 0, nbTrans: 1, enabledChannels: [0, 8] },
      plan,
    );
    assert.deepEqual(
      block.map((c) => [c.dataRate, c.chMask]),
      [[7, 0x0101]],
    );
  });

  it('produces, for any set of defined channels, a block the device reads as exactly that set', () => {
    const planArb = fc
      .array(fc.boolean(), { minLength: 3, maxLength: 16 })
      .map((defined) =>
        defined.map((isDefined, i) =>
          i < 3 || isDefined ? channel(863_100_000 + i * 200_000) : null,
        ),
      );
    fc.assert(
      fc.property(
        planArb,
        fc.array(fc.nat(), { minLength: 1, maxLength: 16 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 1, max: 15 }),
        (plan, picks, dr, txPowerIndex, nbTrans) => {
          const defined = plan.flatMap((c, i) => (c ? [i] : []));
          const wanted = [...new Set(picks.map((p) => defined[p % defined.length]!))].sort(
            (a, b) => a - b,
          );
          const block = buildLinkAdrRequests(
            EU868,
            { dr, txPowerIndex, nbTrans, enabledChannels: wanted },
            plan,
          );
          assert.equal(block.length, 1);
          const result = EU868.applyLinkAdrChannelMask({ channels: plan, blocks: block });
          assert.ok(result.ok);
          assert.deepEqual(result.enabledChannels, wanted);
          assert.deepEqual(decodeMacCommands(encodeMacCommands(block), 'downlink'), block);
          const applied = applyLinkAdrAnswers(state(), block, [ACK]);
          assert.deepEqual(applied.state, { dr, txPowerIndex, nbTrans, enabledChannels: wanted });
        },
      ),
    );
  });
});

describe('LinkADRAns handling', () => {
  it('applies the block when every answer acknowledges everything', () => {
    const block = [request()];
    const result = applyLinkAdrAnswers(state(), block, [ACK]);
    assert.deepEqual(result, {
      state: { dr: 5, txPowerIndex: 2, nbTrans: 1, enabledChannels: [0, 1, 2, 3, 4, 5, 6, 7] },
      accepted: true,
      rejected: [],
    });
  });

  it('reads answers decoded from an uplink FOpts field', () => {
    const block = [request(), request({ chMask: 0x0007 })];
    const fOpts = encodeMacCommands([ACK, ACK]);
    const answers = decodeMacCommands(fOpts, 'uplink') as LinkADRAns[];
    const result = applyLinkAdrAnswers(state(), block, answers);
    assert.equal(result.accepted, true);
    assert.deepEqual(result.state.enabledChannels, [0, 1, 2]);
  });

  it('accepts one answer for a block of several commands (LoRaWAN 1.0.2)', () => {
    const block = [request({ chMask: 0x00ff }), request({ chMask: 0x0003, nbTrans: 2 })];
    const result = applyLinkAdrAnswers(state(), block, [ACK]);
    assert.equal(result.accepted, true);
    // The last mask and the last DataRate/TXPower/NbTrans win.
    assert.deepEqual(result.state, { dr: 5, txPowerIndex: 2, nbTrans: 2, enabledChannels: [0, 1] });
  });

  it('leaves the state unchanged when one bit is cleared, naming what was refused', () => {
    const before = state({ dr: 2, txPowerIndex: 1, nbTrans: 2 });
    const cases: [LinkADRAns, string[]][] = [
      [answer(false, true, true), ['dataRate']],
      [answer(true, false, true), ['txPower']],
      [answer(true, true, false), ['channelMask']],
      [answer(false, false, false), ['dataRate', 'txPower', 'channelMask']],
    ];
    for (const [refusal, rejected] of cases) {
      const result = applyLinkAdrAnswers(before, [request()], [refusal]);
      assert.deepEqual(result, { state: before, accepted: false, rejected });
    }
  });

  it('counts a refusal in any answer of the block', () => {
    const result = applyLinkAdrAnswers(
      state(),
      [request(), request()],
      [ACK, answer(true, false, true)],
    );
    assert.equal(result.accepted, false);
    assert.deepEqual(result.rejected, ['txPower']);
    assert.deepEqual(result.state, state());
  });

  it('keeps the data rate or power for 0xF and reads NbTrans 0 as 1', () => {
    const before = state({ dr: 3, txPowerIndex: 4, nbTrans: 3 });
    const result = applyLinkAdrAnswers(
      before,
      [request({ dataRate: 15, txPower: 15, nbTrans: 0, chMask: 0x0005 })],
      [ACK],
    );
    assert.deepEqual(result.state, { dr: 3, txPowerIndex: 4, nbTrans: 1, enabledChannels: [0, 2] });
  });

  it('predicts any ChMaskCntl with the region when given the device channels', () => {
    const channels = EIGHT_CHANNELS.map((c, i) => (c ? { ...c, enabled: i < 3 } : c));
    const result = applyLinkAdrAnswers(state(), [request({ chMaskCntl: 6, chMask: 0 })], [ACK], {
      region: EU868,
      channels,
    });
    assert.deepEqual(result.state.enabledChannels, [0, 1, 2, 3, 4, 5, 6, 7]);
    // Without them, a mask other than ChMaskCntl 0 cannot be read: channels are left as known.
    const unknown = applyLinkAdrAnswers(state(), [request({ chMaskCntl: 6, chMask: 0 })], [ACK]);
    assert.deepEqual(unknown.state.enabledChannels, [0, 1, 2]);
  });

  it('applies only the channel mask for a device whose ADR bit is off', () => {
    const result = applyLinkAdrAnswers(
      state(),
      [request({ chMask: 0x0003 })],
      [answer(false, false, true)],
      { deviceAdrEnabled: false },
    );
    assert.deepEqual(result, {
      state: state({ enabledChannels: [0, 1] }),
      accepted: false,
      rejected: ['dataRate', 'txPower'],
    });
    const maskRefused = applyLinkAdrAnswers(state(), [request()], [answer(false, false, false)], {
      deviceAdrEnabled: false,
    });
    assert.deepEqual(maskRefused.state, state());
  });

  it('refuses to match an empty block or no answer', () => {
    assert.throws(() => applyLinkAdrAnswers(state(), [], [ACK]), invalidField);
    assert.throws(() => applyLinkAdrAnswers(state(), [request()], []), invalidField);
  });
});
