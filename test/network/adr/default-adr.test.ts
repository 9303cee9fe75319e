import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { getRegion } from '../../../src/lorawan/regions/index.js';
import {
  ADR_HISTORY_LENGTH,
  type AdrDecision,
  type AdrInput,
  type AdrProfile,
  adrDecisionChanges,
  appendUplink,
  defaultAdr,
  maxSnrAtTxPowerDb,
  nbTransForLossRate,
  txPowerIndexRange,
  type UplinkHistory,
  type UplinkHistoryEntry,
} from '../../../src/network/adr/index.js';

const EU868 = getRegion('EU868');
const ADR_ON: AdrProfile = { enabled: true };

/** `count` uplinks at one SNR, data rate and TX power, counters `first`, `first + 1`, … */
function steadyHistory(
  snrDb: number,
  { count = ADR_HISTORY_LENGTH, dr = 0, txPowerIndex = 0, first = 0 } = {},
): UplinkHistoryEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    fCnt: first + i,
    maxSnrDb: snrDb,
    gatewayCount: 1,
    dr,
    txPowerIndex,
  }));
}

/** 20 received uplinks spread over `sent` frame counters from `first` (the rest are lost). */
function lossyHistory(sent: number, first = 0): UplinkHistoryEntry[] {
  const received = ADR_HISTORY_LENGTH;
  return Array.from({ length: received }, (_, i) => ({
    fCnt: first + Math.round((i * (sent - 1)) / (received - 1)),
    maxSnrDb: -20,
    gatewayCount: 1,
    dr: 5,
    txPowerIndex: 0,
  }));
}

function input(overrides: Partial<AdrInput> = {}): AdrInput {
  return {
    region: EU868,
    dr: 0,
    txPowerIndex: 0,
    nbTrans: 1,
    history: steadyHistory(0),
    profile: ADR_ON,
    ...overrides,
  };
}

function settings(decision: AdrDecision): [number, number, number] {
  return [decision.dr, decision.txPowerIndex, decision.nbTrans];
}

/**
 * A device on a link whose SNR at TX power index 0 is `snrAtMaxPowerDb` (2 dB less per index),
 * sending `uplinks` frames; the network decides after each one and the device applies every
 * decision at once. Returns each distinct [dr, txPowerIndex] the device went through.
 */
function simulate(snrAtMaxPowerDb: number, uplinks: number, profile: AdrProfile = ADR_ON) {
  let dr = 0;
  let txPowerIndex = 0;
  let nbTrans = 1;
  let history: UplinkHistory = [];
  const path: [number, number][] = [[dr, txPowerIndex]];
  for (let fCnt = 0; fCnt < uplinks; fCnt++) {
    const snrDb = snrAtMaxPowerDb - 2 * txPowerIndex;
    history = appendUplink(history, { fCnt, maxSnrDb: snrDb, gatewayCount: 1, dr, txPowerIndex });
    const decision = defaultAdr.decide({
      region: EU868,
      dr,
      txPowerIndex,
      nbTrans,
      history,
      profile,
    });
    ({ dr, txPowerIndex, nbTrans } = decision);
    const [lastDr, lastPower] = path[path.length - 1]!;
    if (dr !== lastDr || txPowerIndex !== lastPower) path.push([dr, txPowerIndex]);
  }
  return { path, dr, txPowerIndex, nbTrans };
}

describe('default ADR: data rate and TX power', () => {
  it('is named default', () => {
    assert.equal(defaultAdr.name, 'default');
  });

  it('moves an SF12 device heard at +5 dB straight to DR5 and keeps its power', () => {
    // Margin at DR0: 5 − (−20) − 10 = 15 dB, 5 steps, all spent on the data rate.
    const decision = defaultAdr.decide(input({ history: steadyHistory(5) }));
    assert.deepEqual(settings(decision), [5, 0, 1]);
    assert.match(decision.reason ?? '', /margin 15 dB/);
    // At DR5 the margin is 5 + 7.5 − 10 = 2.5 dB: less than a step, nothing more to do.
    const again = defaultAdr.decide(
      input({ dr: 5, history: steadyHistory(5, { first: 20, dr: 5 }) }),
    );
    assert.deepEqual(settings(again), [5, 0, 1]);
  });

  it('converges an SF12 device on a strong link to DR5, then lowers its power step by step', () => {
    // +15 dB at full power: 8 steps at DR0 (DR5 and power index 3), then 2 more once the
    // stronger data rate leaves 6.5 dB, then nothing: 5 − (−7.5) − 10 = 2.5 dB at index 5.
    const { path } = simulate(15, 200);
    assert.deepEqual(path, [
      [0, 0],
      [5, 3],
      [5, 5],
    ]);
  });

  it('ends with the installation margin kept, without oscillating, for any link', () => {
    for (let snrDb = -10; snrDb <= 30; snrDb += 0.5) {
      const { path, dr, txPowerIndex } = simulate(snrDb, 120);
      for (let i = 1; i < path.length; i++) {
        assert.ok(path[i]![0] >= path[i - 1]![0], `DR never goes down (SNR ${snrDb})`);
        assert.ok(path[i]![1] >= path[i - 1]![1], `power never goes back up (SNR ${snrDb})`);
      }
      const floorDb = [-20, -17.5, -15, -12.5, -10, -7.5][dr]!;
      const marginDb = snrDb - 2 * txPowerIndex - floorDb - 10;
      if (dr > 0 || txPowerIndex > 0) assert.ok(marginDb >= 0, `margin kept (SNR ${snrDb})`);
    }
  });

  it('lowers the TX power to the region minimum at most, index 7 in EU868', () => {
    assert.equal(txPowerIndexRange(EU868).max, 7);
    const decision = defaultAdr.decide(input({ dr: 5, history: steadyHistory(30, { dr: 5 }) }));
    assert.deepEqual(settings(decision), [5, 7, 1]);
  });

  it('raises the TX power one index per step on a negative margin, never lowering the DR', () => {
    // DR5 at index 5, −5 dB: margin −5 + 7.5 − 10 = −7.5 dB, trunc(−2.5) = −2 steps.
    const decision = defaultAdr.decide(
      input({ dr: 5, txPowerIndex: 5, history: steadyHistory(-5, { dr: 5, txPowerIndex: 5 }) }),
    );
    assert.deepEqual(settings(decision), [5, 3, 1]);
    // Far below: power goes to the maximum, the data rate stays.
    const worse = defaultAdr.decide(
      input({ dr: 5, txPowerIndex: 1, history: steadyHistory(-15, { dr: 5, txPowerIndex: 1 }) }),
    );
    assert.deepEqual(settings(worse), [5, 0, 1]);
    const atMax = defaultAdr.decide(input({ dr: 3, history: steadyHistory(-15, { dr: 3 }) }));
    assert.deepEqual(settings(atMax), [3, 0, 1]);
  });

  it('changes nothing within one step of the installation margin', () => {
    // DR3 (SF9): −0.5 + 12.5 − 10 = 2 dB; −3.4 + 12.5 − 10 = −0.9 dB.
    for (const snrDb of [-0.5, -3.4]) {
      const decision = defaultAdr.decide(
        input({
          dr: 3,
          txPowerIndex: 2,
          history: steadyHistory(snrDb, { dr: 3, txPowerIndex: 2 }),
        }),
      );
      assert.deepEqual(settings(decision), [3, 2, 1]);
      assert.equal(adrDecisionChanges(input({ dr: 3, txPowerIndex: 2 }), decision), false);
    }
  });

  it('uses the best SNR of the history', () => {
    const history = steadyHistory(-20).map((e, i) => (i === 7 ? { ...e, maxSnrDb: -4 } : e));
    // −4 + 20 − 10 = 6 dB: 2 steps.
    assert.equal(defaultAdr.decide(input({ history })).dr, 2);
  });

  it('refers the SNR of uplinks sent at another TX power to the current one', () => {
    const history = [
      ...steadyHistory(10, { count: 10, dr: 5, txPowerIndex: 0 }),
      ...steadyHistory(4, { count: 10, first: 10, dr: 5, txPowerIndex: 3 }),
    ];
    assert.equal(maxSnrAtTxPowerDb(EU868, history, 3), 4);
    assert.equal(maxSnrAtTxPowerDb(EU868, history, 0), 10);
    assert.equal(maxSnrAtTxPowerDb(EU868, [], 0), Number.NEGATIVE_INFINITY);
    // At index 3: 4 + 7.5 − 10 = 1.5 dB, no step, although the raw best SNR (10 dB) gives 2.
    const decision = defaultAdr.decide(input({ dr: 5, txPowerIndex: 3, history }));
    assert.deepEqual(settings(decision), [5, 3, 1]);
  });

  it('uses the installation margin of the profile', () => {
    // 5 + 20 − 16 = 9 dB: 3 steps; with 10 dB (default) 5 steps.
    const profile: AdrProfile = { enabled: true, installationMarginDb: 16 };
    assert.equal(defaultAdr.decide(input({ profile, history: steadyHistory(5) })).dr, 3);
    const thin: AdrProfile = { enabled: true, installationMarginDb: 0 };
    // 5 + 20 − 0 = 25 dB: 8 steps, DR5 and 3 power indices.
    assert.deepEqual(
      settings(defaultAdr.decide(input({ profile: thin, history: steadyHistory(5) }))),
      [5, 3, 1],
    );
  });
});

describe('default ADR: profile limits and disabled ADR', () => {
  it("stops at the profile's maximum DR and spends the remaining steps on power", () => {
    const profile: AdrProfile = { enabled: true, maxDr: 3 };
    // 15 dB: 5 steps, 3 on the data rate, 2 on power.
    assert.deepEqual(
      settings(defaultAdr.decide(input({ profile, history: steadyHistory(5) }))),
      [3, 2, 1],
    );
  });

  it("caps the profile's maximum at the region's highest ADR data rate (DR5)", () => {
    const profile: AdrProfile = { enabled: true, maxDr: 7 };
    assert.equal(defaultAdr.decide(input({ profile, history: steadyHistory(20) })).dr, 5);
  });

  it("brings a data rate outside the profile's range back into it", () => {
    const above = defaultAdr.decide(
      input({ dr: 5, profile: { enabled: true, maxDr: 2 }, history: steadyHistory(-20) }),
    );
    assert.equal(above.dr, 2);
    assert.match(above.reason ?? '', /DR5 is outside DR0-DR2/);
    const below = defaultAdr.decide(
      input({ dr: 0, profile: { enabled: true, minDr: 2 }, history: steadyHistory(-20) }),
    );
    assert.equal(below.dr, 2);
    // DR7 (FSK) and DR6 are above the ADR range of EU868.
    assert.equal(defaultAdr.decide(input({ dr: 7, history: [] })).dr, 5);
  });

  it('never lowers the data rate below the current one for margin, even below minDr', () => {
    const decision = defaultAdr.decide(
      input({ dr: 4, profile: { enabled: true, minDr: 1 }, history: steadyHistory(-25) }),
    );
    assert.equal(decision.dr, 4);
  });

  it('changes nothing when ADR is disabled, whatever the link or the values', () => {
    const profile: AdrProfile = { enabled: false, maxDr: 2 };
    for (const history of [steadyHistory(20), steadyHistory(-25), lossyHistory(40), []]) {
      const decision = defaultAdr.decide(
        input({ dr: 5, txPowerIndex: 9, nbTrans: 7, profile, history }),
      );
      assert.deepEqual(settings(decision), [5, 9, 7]);
      assert.match(decision.reason ?? '', /disabled/);
    }
  });

  it('changes nothing for a profile whose range is empty', () => {
    const decision = defaultAdr.decide(
      input({ dr: 1, profile: { enabled: true, minDr: 4, maxDr: 2 }, history: steadyHistory(20) }),
    );
    assert.deepEqual(settings(decision), [1, 0, 1]);
    assert.match(decision.reason ?? '', /range is empty/);
  });
});

describe('default ADR: incomplete history', () => {
  it('does nothing without any uplink', () => {
    const decision = defaultAdr.decide(input({ dr: 2, txPowerIndex: 3, nbTrans: 2, history: [] }));
    assert.deepEqual(settings(decision), [2, 3, 2]);
    assert.match(decision.reason ?? '', /no uplink/);
  });

  it('waits for 20 uplinks before raising the data rate or lowering the power', () => {
    const decision = defaultAdr.decide(input({ history: steadyHistory(10, { count: 19 }) }));
    assert.deepEqual(settings(decision), [0, 0, 1]);
    assert.match(decision.reason ?? '', /waiting for 20 uplinks/);
    assert.equal(defaultAdr.decide(input({ history: steadyHistory(10) })).dr, 5);
  });

  it('raises the power on a negative margin without waiting', () => {
    const history = steadyHistory(-10, { count: 3, dr: 5, txPowerIndex: 6 });
    // −10 + 7.5 − 10 = −12.5 dB: 4 steps up.
    assert.deepEqual(
      settings(defaultAdr.decide(input({ dr: 5, txPowerIndex: 6, history }))),
      [5, 2, 1],
    );
  });

  it('leaves NbTrans alone until the history is full', () => {
    const history = lossyHistory(40).slice(0, 19);
    assert.equal(defaultAdr.decide(input({ dr: 5, nbTrans: 1, history })).nbTrans, 1);
    assert.equal(defaultAdr.decide(input({ dr: 5, nbTrans: 3, history })).nbTrans, 3);
  });
});

describe('default ADR: NbTrans from the loss rate', () => {
  it('follows the table at its boundaries', () => {
    const table: [number, number, number][] = [
      // [loss rate, current, expected]
      [0, 3, 2],
      [0.049, 2, 1],
      [0, 1, 1],
      [0.05, 2, 2],
      [0.0999, 1, 1],
      [0.1, 1, 2],
      [0.2999, 2, 3],
      [0.1, 3, 3],
      [0.3, 1, 3],
      [0.9, 2, 3],
    ];
    for (const [lossRate, current, expected] of table) {
      assert.equal(nbTransForLossRate(lossRate, current), expected, `${lossRate}, ${current}`);
    }
  });

  it('reads the loss rate from frame counter gaps of the history', () => {
    const cases: [number, number, number][] = [
      // [frames sent for 20 received, current NbTrans, expected]
      [20, 3, 2], // 0 %
      [21, 2, 1], // 4.8 %
      [22, 2, 2], // 9.1 %
      [22, 1, 1],
      [25, 1, 2], // 20 %
      [25, 3, 3],
      [29, 2, 3], // 31 %
      [40, 1, 3], // 50 %
    ];
    for (const [sent, nbTrans, expected] of cases) {
      const decision = defaultAdr.decide(input({ dr: 5, nbTrans, history: lossyHistory(sent) }));
      assert.equal(decision.nbTrans, expected, `${sent} sent, NbTrans ${nbTrans}`);
    }
  });

  it('counts gaps across the 16-bit roll-over of the frame counter', () => {
    // 32-bit counters 65526..65550 with 5 missing, across 65535 -> 65536: 20 %.
    const history = lossyHistory(25, 65_526);
    assert.ok(history[0]!.fCnt < 0x1_0000 && history[19]!.fCnt > 0x1_0000);
    assert.equal(defaultAdr.decide(input({ dr: 5, nbTrans: 1, history })).nbTrans, 2);
  });

  it('brings an out-of-range NbTrans back to 1-3', () => {
    assert.equal(defaultAdr.decide(input({ nbTrans: 0, history: [] })).nbTrans, 1);
    assert.equal(defaultAdr.decide(input({ nbTrans: 15, history: [] })).nbTrans, 3);
  });
});

describe('default ADR: properties', () => {
  const entryArb = fc.record({
    maxSnrDb: fc.double({ min: -30, max: 30, noNaN: true }),
    gatewayCount: fc.integer({ min: 1, max: 10 }),
    dr: fc.integer({ min: 0, max: 7 }),
    txPowerIndex: fc.integer({ min: 0, max: 15 }),
    gap: fc.integer({ min: 1, max: 5 }),
  });
  const historyArb = fc
    .tuple(fc.integer({ min: 0, max: 2 ** 32 - 200 }), fc.array(entryArb, { maxLength: 20 }))
    .map(([first, entries]) => {
      let fCnt = first;
      return entries.map(({ gap, ...rest }) => {
        fCnt += gap;
        return { fCnt, ...rest };
      });
    });
  const inputArb = fc
    .record({
      dr: fc.integer({ min: 0, max: 15 }),
      txPowerIndex: fc.integer({ min: 0, max: 15 }),
      nbTrans: fc.integer({ min: 0, max: 15 }),
      minDr: fc.integer({ min: 0, max: 5 }),
      maxDrAbove: fc.integer({ min: 0, max: 4 }),
      installationMarginDb: fc.option(fc.double({ min: -5, max: 25, noNaN: true })),
      history: historyArb,
    })
    .map(
      ({ minDr, maxDrAbove, installationMarginDb, ...rest }): AdrInput => ({
        region: EU868,
        profile: {
          enabled: true,
          minDr,
          maxDr: minDr + maxDrAbove,
          ...(installationMarginDb === null ? {} : { installationMarginDb }),
        },
        ...rest,
      }),
    );

  it('keeps DR within the profile and region, TX power within the region, NbTrans within 1-3', () => {
    const powerRange = txPowerIndexRange(EU868);
    fc.assert(
      fc.property(inputArb, (adrInput) => {
        const decision = defaultAdr.decide(adrInput);
        const maxDr = Math.min(adrInput.profile.maxDr!, EU868.maxAdrDataRate);
        assert.ok(decision.dr >= adrInput.profile.minDr! && decision.dr <= maxDr, 'dr');
        assert.ok(
          decision.txPowerIndex >= powerRange.min && decision.txPowerIndex <= powerRange.max,
          'txPowerIndex',
        );
        assert.notEqual(EU868.txPowerDbm(decision.txPowerIndex), undefined);
        assert.ok(decision.nbTrans >= 1 && decision.nbTrans <= 3, 'nbTrans');
      }),
      { numRuns: 2000 },
    );
  });

  it('never lowers an in-range data rate, and is stable once applied with the same history', () => {
    fc.assert(
      fc.property(inputArb, (adrInput) => {
        const first = defaultAdr.decide(adrInput);
        const { minDr, maxDr } = adrInput.profile;
        if (adrInput.dr >= minDr! && adrInput.dr <= Math.min(maxDr!, 5)) {
          assert.ok(first.dr >= adrInput.dr);
        }
        // Applying the decision and deciding again on the same uplinks never reverses it.
        const second = defaultAdr.decide({ ...adrInput, ...first });
        assert.ok(second.dr >= first.dr);
        if (first.txPowerIndex > adrInput.txPowerIndex) {
          assert.ok(second.txPowerIndex >= first.txPowerIndex);
        }
        if (first.txPowerIndex < adrInput.txPowerIndex) {
          assert.ok(second.txPowerIndex <= first.txPowerIndex);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
