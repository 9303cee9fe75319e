/**
 * The simulated device's side of ADR (LoRaWAN 1.0.4 and 1.1 §4.3.1.1): the ADR bit, ADRACKReq
 * after ADR_ACK_LIMIT uplinks without a downlink, the backoff after ADR_ACK_DELAY more,
 * ADRParamSetupReq, and NbTrans repetitions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataSessionKeys } from '../../src/lorawan/index.js';
import type { DeviceTransmission, SimulatedDevice } from '../../src/sim/device.js';
import {
  downlinkFrame,
  joinDevice,
  joinedDeviceWithMac,
  openUplink,
  otaaDevice,
} from './device-helpers.js';

function adrAckReq(transmission: DeviceTransmission, keys: DataSessionKeys): boolean {
  return openUplink(transmission, keys).frame.fCtrl.adrAckReq;
}

/** Sends `count` uplinks and returns them. */
function uplinks(device: SimulatedDevice, count: number): DeviceTransmission[] {
  return Array.from({ length: count }, () =>
    device.uplink({ fPort: 1, payload: Uint8Array.of(1) }),
  );
}

describe('SimulatedDevice: ADR bit and ADRACKReq', () => {
  it('sets the ADR bit when ADR is enabled, and not when it is disabled', () => {
    const device = otaaDevice('1.0.4', { adr: false });
    const { keys } = joinDevice(device);
    assert.equal(device.adrEnabled, false);
    assert.equal(openUplink(device.uplink(), keys).frame.fCtrl.adr, false);
    device.setAdr(true);
    assert.equal(openUplink(device.uplink(), keys).frame.fCtrl.adr, true);
  });

  it('sets ADRACKReq after ADR_ACK_LIMIT (EU868: 64) uplinks without a downlink, until one arrives', () => {
    const device = otaaDevice('1.0.4');
    const { keys } = joinDevice(device);
    assert.equal(device.adrAckLimit, 64);
    assert.equal(device.adrAckDelay, 32);
    const first = uplinks(device, 64);
    assert.deepEqual(
      first.map((t) => adrAckReq(t, keys)),
      Array(64).fill(false),
    );
    assert.equal(device.adrAckCounter, 64);
    assert.equal(adrAckReq(device.uplink(), keys), true, 'the 65th uplink asks');
    assert.equal(adrAckReq(device.uplink(), keys), true);
    // Any downlink restarts ADR_ACK_CNT.
    assert.equal(device.receive(downlinkFrame(keys, 0)).status, 'accepted');
    assert.equal(device.adrAckCounter, 0);
    assert.equal(adrAckReq(device.uplink(), keys), false);
    assert.equal(device.adrAckCounter, 1);
  });

  it('never sets ADRACKReq nor backs off with ADR disabled', () => {
    const device = otaaDevice('1.0.4', { adr: false, dataRate: 4 });
    const { keys } = joinDevice(device);
    const sent = uplinks(device, 200);
    assert.ok(sent.every((t) => !adrAckReq(t, keys) && t.dataRate === 4));
    assert.equal(device.adrAckCounter, 0);
  });

  it('applies ADRParamSetupReq: ADR_ACK_LIMIT = 2^Limit_exp, ADR_ACK_DELAY = 2^Delay_exp', () => {
    const { device, keys } = joinedDeviceWithMac('1.1', [
      { cid: 'RekeyConf', minorVersion: 1 },
      { cid: 'ADRParamSetupReq', limitExp: 3, delayExp: 2 },
    ]);
    assert.equal(device.adrAckLimit, 8);
    assert.equal(device.adrAckDelay, 4);
    const answer = openUplink(device.uplink(), keys);
    assert.deepEqual(answer.macCommands, [{ cid: 'ADRParamSetupAns' }]);
    // The answer was uplink 1 after the downlink; the 9th asks.
    const next = uplinks(device, 8).map((t) => adrAckReq(t, keys));
    assert.deepEqual(next, [false, false, false, false, false, false, false, true]);
  });
});

describe('SimulatedDevice: ADR backoff', () => {
  it('after ADR_ACK_LIMIT + ADR_ACK_DELAY: default power first, then one data rate lower per ADR_ACK_DELAY, then the default channels', () => {
    // DR2 at TXPower 3 on channels 3 and 4 only; ADR_ACK_LIMIT 4, ADR_ACK_DELAY 2.
    const { device, keys } = joinedDeviceWithMac('1.0.4', [
      { cid: 'LinkADRReq', dataRate: 2, txPower: 3, chMask: 0b11000, chMaskCntl: 0, nbTrans: 1 },
      { cid: 'ADRParamSetupReq', limitExp: 2, delayExp: 1 },
    ]);
    assert.deepEqual(device.enabledChannels(), [3, 4]);
    const steps: [number, number, boolean, number[]][] = [];
    for (let i = 0; i < 16; i++) {
      const counter = device.adrAckCounter;
      const transmission = device.uplink({ fPort: 1, payload: Uint8Array.of(i) });
      assert.ok(device.enabledChannels().includes(transmission.channel));
      steps.push([counter, transmission.dataRate, adrAckReq(transmission, keys), []]);
      steps.at(-1)![3] = device.enabledChannels();
      if (counter === 6) assert.equal(device.txPowerIndex, 0, 'power restored at 4 + 2');
      if (counter < 6) assert.equal(device.txPowerIndex, 3);
    }
    assert.deepEqual(
      steps.map(([counter, dataRate, ask]) => [counter, dataRate, ask]),
      [
        [0, 2, false],
        [1, 2, false],
        [2, 2, false],
        [3, 2, false],
        [4, 2, true],
        [5, 2, true],
        [6, 2, true], // default TX power
        [7, 2, true],
        [8, 1, true], // one data rate lower
        [9, 1, true],
        [10, 0, false], // lowest data rate at default power: nothing left to ask for
        [11, 0, false],
        [12, 0, false], // default channels enabled again
        [13, 0, false],
        [14, 0, false],
        [15, 0, false],
      ],
    );
    assert.deepEqual(steps[11]![3], [3, 4]);
    assert.deepEqual(steps[12]![3], [0, 1, 2, 3, 4]);
  });

  it('stops backing off as soon as a downlink arrives', () => {
    const { device, keys } = joinedDeviceWithMac(
      '1.0.4',
      [{ cid: 'ADRParamSetupReq', limitExp: 1, delayExp: 0 }],
      { dataRate: 5 },
    );
    uplinks(device, 4);
    assert.equal(device.dataRate, 4);
    device.receive(downlinkFrame(keys, 1));
    const after = uplinks(device, 2);
    assert.deepEqual(
      after.map((t) => [t.dataRate, adrAckReq(t, keys)]),
      [
        [4, false],
        [4, false],
      ],
    );
  });
});

describe('SimulatedDevice: NbTrans', () => {
  it('repeats an unconfirmed uplink NbTrans times with the same FCnt; 1.1 MICs cover each channel', () => {
    const { device, keys } = joinedDeviceWithMac('1.1', [
      { cid: 'RekeyConf', minorVersion: 1 },
      { cid: 'LinkADRReq', dataRate: 3, txPower: 1, chMask: 0x1f, chMaskCntl: 0, nbTrans: 3 },
    ]);
    assert.equal(device.transmissionsPerUplink, 3);
    const first = device.uplink({ fPort: 7, payload: Uint8Array.of(0xaa) });
    assert.equal(first.repetition, undefined);
    assert.equal(device.pendingRepetitions, 2);
    const second = device.repeatUplink()!;
    const third = device.repeatUplink()!;
    assert.equal(device.repeatUplink(), undefined);
    assert.equal(device.pendingRepetitions, 0);
    assert.deepEqual(
      [first, second, third].map((t) => [t.counter, t.repetition, t.dataRate, t.kind]),
      [
        [1, undefined, 3, 'data'],
        [1, 1, 3, 'data'],
        [1, 2, 3, 'data'],
      ],
    );
    assert.notEqual(second.channel, first.channel);
    assert.notEqual(third.channel, second.channel);
    for (const transmission of [first, second, third]) {
      const opened = openUplink(transmission, keys);
      assert.deepEqual(opened.payload, Uint8Array.of(0xaa));
      assert.deepEqual(opened.macCommands, [
        { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
      ]);
    }
    // Repetitions are not new uplinks: FCntUp and ADR_ACK_CNT moved by one.
    assert.equal(device.fCntUp, 2);
    assert.equal(device.adrAckCounter, 1);
  });

  it('stops the repetitions of an unconfirmed uplink at any downlink, of a confirmed one at its ACK', () => {
    const { device, keys } = joinedDeviceWithMac('1.0.4', [
      { cid: 'LinkADRReq', dataRate: 5, txPower: 0, chMask: 7, chMaskCntl: 0, nbTrans: 4 },
    ]);
    device.uplink();
    assert.ok(device.repeatUplink());
    device.receive(downlinkFrame(keys, 1));
    assert.equal(device.repeatUplink(), undefined);

    const confirmed = device.uplink({ confirmed: true });
    device.receive(downlinkFrame(keys, 2, { fPort: 1, payload: Uint8Array.of(1) }));
    const repeated = device.repeatUplink();
    assert.ok(repeated?.confirmed, 'a downlink without ACK does not end a confirmed uplink');
    // 1.0: the MIC does not cover the channel, so a repetition is the same bytes.
    assert.deepEqual(repeated.phyPayload, confirmed.phyPayload);
    device.receive(downlinkFrame(keys, 3, { ack: true }));
    assert.equal(device.repeatUplink(), undefined);
    assert.equal(device.pendingRepetitions, 0);
  });

  it('gives no repetition with NbTrans 1 or before any uplink', () => {
    const device = otaaDevice('1.0.3');
    joinDevice(device);
    assert.equal(device.repeatUplink(), undefined);
    device.uplink();
    assert.equal(device.transmissionsPerUplink, 1);
    assert.equal(device.repeatUplink(), undefined);
  });
});
