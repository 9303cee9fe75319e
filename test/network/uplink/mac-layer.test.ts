import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getRegion } from '../../../src/lorawan/regions/index.js';
import type { UplinkHistoryEntry } from '../../../src/network/adr/history.js';
import { DEFAULT_DEVICE_PROFILE } from '../../../src/network/device-profile.js';
import type { SessionMac } from '../../../src/network/mac/session-mac.js';
import { processUplinkMac, type UplinkMacInput } from '../../../src/network/uplink/mac-layer.js';

const region = getRegion('EU868');

function uplink(
  overrides: Partial<UplinkMacInput> & { fCnt: number; history: UplinkHistoryEntry[] },
): UplinkMacInput {
  return {
    region,
    macVersion: '1.0.4',
    deviceClass: 'A',
    profile: { ...DEFAULT_DEVICE_PROFILE, mac: { devStatusIntervalMs: 0 } },
    state: undefined,
    activation: {
      rx1DelaySeconds: 1,
      rx1DrOffset: 0,
      rx2Dr: 0,
      rx2FrequencyHz: 869_525_000,
      createdAt: '2026-11-29T10:00:00.000Z',
    },
    uplinkDr: 0,
    adrBit: true,
    adrAckReq: false,
    maxSnrDb: 15,
    gatewayCount: 1,
    commands: [],
    answers: [],
    nFCntDown: 0,
    nowMs: Date.parse('2026-11-29T10:00:00.000Z'),
    ...overrides,
  };
}

describe('processUplinkMac', () => {
  it('asks for an ADR change once the history is full, and backs off from a device that never answers', () => {
    const history: UplinkHistoryEntry[] = [];
    let state: SessionMac | undefined;
    let fCnt = 0;
    let nFCntDown = 0;
    const step = () => {
      const result = processUplinkMac(uplink({ fCnt: fCnt++, history, state, nFCntDown }));
      state = result.state ?? state;
      return result;
    };
    for (let i = 0; i < 19; i++) assert.deepEqual(step().commands, []);
    // 20th uplink: a full history with 15 dB SNR at SF12: DR0 -> DR5 and lower power.
    const asked = step();
    const request = asked.commands.find((c) => c.cid === 'LinkADRReq');
    assert.ok(request?.cid === 'LinkADRReq');
    assert.equal(request.dataRate, 5);
    assert.ok(asked.persist, 'the pending request is stored');
    assert.ok(asked.notes.some((n) => n.code === 'ADR'));

    // The device never answers: the same block goes with the next two downlinks...
    for (let attempt = 2; attempt <= 3; attempt++) {
      nFCntDown++;
      const again = step();
      assert.ok(
        again.commands.some((c) => c.cid === 'LinkADRReq'),
        `attempt ${attempt}`,
      );
      assert.equal(state?.adr.pendingLinkAdr?.attempts, attempt);
    }
    // ...then ADR gives up, says so, and observes 20 uplinks again before asking.
    nFCntDown++;
    const givenUp = step();
    assert.deepEqual(givenUp.commands, []);
    assert.ok(givenUp.notes.some((n) => n.code === 'MAC_UNANSWERED'));
    assert.equal(state?.adr.pendingLinkAdr, null);
    assert.equal(history.length, 0);
    for (let i = 0; i < 19; i++) assert.deepEqual(step().commands, [], `uplink ${i} after`);
    assert.ok(step().commands.some((c) => c.cid === 'LinkADRReq'));
  });

  it('answers ADRACKReq with a downlink even when nothing else is to be sent', () => {
    const result = processUplinkMac(uplink({ fCnt: 0, history: [], adrAckReq: true }));
    assert.deepEqual(result.commands, []);
    assert.equal(result.downlinkNeeded, true);
    const quiet = processUplinkMac(uplink({ fCnt: 0, history: [] }));
    assert.equal(quiet.downlinkNeeded, false);
    assert.equal(
      quiet.persist,
      false,
      'a fresh state that only learnt the data rate is not written',
    );
  });
});
