import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildJoinAccept,
  type DataFrame,
  type DataSessionKeys,
  decodePhyPayloadWithMicInput,
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
  EU868,
  encodeMicInput,
  type JoinAcceptFields,
  type JoinRequest,
  joinRequestMic,
  type MacCommand,
  type SessionKeys10,
  type SessionKeys11,
  verifyDataMic,
} from '../../src/lorawan/index.js';
import {
  type DeviceTransmission,
  SimulatedDevice,
  type SimulatedDeviceConfig,
} from '../../src/sim/device.js';
import { createRandom } from '../../src/sim/random.js';
import {
  APP_KEY,
  DEV_ADDR,
  DEV_EUI,
  downlinkFrame as downlink,
  JOIN_EUI,
  NET_ID,
  NWK_KEY,
  openUplink,
} from './device-helpers.js';

function otaa(
  version: SimulatedDeviceConfig['lorawanVersion'],
  extra: Partial<SimulatedDeviceConfig> = {},
) {
  return new SimulatedDevice({
    devEui: DEV_EUI,
    lorawanVersion: version,
    activation: {
      mode: 'otaa',
      joinEui: JOIN_EUI,
      appKey: APP_KEY,
      ...(version === '1.1' ? { nwkKey: NWK_KEY } : {}),
      devNonce: 7,
    },
    random: createRandom(1),
    ...extra,
  });
}

function decodeJoinRequest(transmission: DeviceTransmission): {
  request: JoinRequest;
  micInput: Uint8Array;
} {
  const { payload, micInput } = decodePhyPayloadWithMicInput(transmission.phyPayload);
  assert.equal(payload.mType, 'JoinRequest');
  return { request: payload as JoinRequest, micInput };
}

function joinAcceptFields(overrides: Partial<JoinAcceptFields> = {}): JoinAcceptFields {
  return {
    joinNonce: 0x000101,
    netId: NET_ID,
    devAddr: DEV_ADDR,
    dlSettings: { optNeg: false, rx1DrOffset: 1, rx2Dr: 3 },
    rxDelay: 2,
    cfList: EU868.encodeCfList([
      null,
      null,
      null,
      { frequencyHz: 867_100_000, minDr: 0, maxDr: 5, enabled: true },
      { frequencyHz: 867_300_000, minDr: 0, maxDr: 5, enabled: true },
    ]),
    ...overrides,
  };
}

/** Joins a 1.0.x device and returns its network-side keys. */
function join10(device: SimulatedDevice): { keys: DataSessionKeys; raw: SessionKeys10 } {
  const { request } = decodeJoinRequest(device.joinRequest());
  const accept = buildJoinAccept(joinAcceptFields(), { optNeg: false, key: APP_KEY }, APP_KEY);
  assert.deepEqual(device.receive(accept), { status: 'joined', devAddr: DEV_ADDR });
  const raw = deriveSessionKeys10(APP_KEY, 0x000101, NET_ID, request.devNonce);
  return { keys: { lorawan: '1.0', ...raw }, raw };
}

/** Joins a 1.1 device with OptNeg and returns its network-side keys. */
function join11(
  device: SimulatedDevice,
  joinNonce = 0x000101,
): { keys: DataSessionKeys; raw: SessionKeys11 } {
  const { request } = decodeJoinRequest(device.joinRequest());
  const { jsIntKey } = deriveJoinServerKeys(NWK_KEY, DEV_EUI);
  const accept = buildJoinAccept(
    joinAcceptFields({ joinNonce, dlSettings: { optNeg: true, rx1DrOffset: 0, rx2Dr: 0 } }),
    {
      optNeg: true,
      jsIntKey,
      joinRequestType: 'join',
      joinEui: JOIN_EUI,
      devNonce: request.devNonce,
    },
    NWK_KEY,
  );
  assert.deepEqual(device.receive(accept), { status: 'joined', devAddr: DEV_ADDR });
  const raw = deriveSessionKeys11(NWK_KEY, APP_KEY, joinNonce, JOIN_EUI, request.devNonce);
  return { keys: { lorawan: '1.1', ...raw }, raw };
}

describe('SimulatedDevice: OTAA join', () => {
  it('sends JoinRequests whose MIC verifies with its AppKey, DevNonce counting up', () => {
    const device = otaa('1.0.3');
    const first = device.joinRequest();
    const second = device.joinRequest();
    const { request, micInput } = decodeJoinRequest(first);
    assert.equal(request.joinEui, JOIN_EUI);
    assert.equal(request.devEui, DEV_EUI);
    assert.equal(request.devNonce, 7);
    assert.deepEqual(request.mic, joinRequestMic(APP_KEY, micInput));
    assert.equal(decodeJoinRequest(second).request.devNonce, 8);
    assert.equal(device.devNonce, 9);
    assert.ok([868_100_000, 868_300_000, 868_500_000].includes(first.frequencyHz));
    assert.equal(first.dataRate, 5);
    assert.deepEqual(
      first.receiveWindows.map((w) => [w.name, w.delayUs, w.dataRate]),
      [
        ['rx1', 5_000_000, 5],
        ['rx2', 6_000_000, 0],
      ],
    );
    assert.equal(first.receiveWindows[1]!.frequencyHz, 869_525_000);
  });

  it('1.1: signs the JoinRequest with its NwkKey', () => {
    const device = otaa('1.1');
    const { micInput, request } = decodeJoinRequest(device.joinRequest());
    assert.deepEqual(request.mic, joinRequestMic(NWK_KEY, micInput));
  });

  it('1.0: opens a JoinAccept, derives the join server keys and applies DLSettings and CFList', () => {
    const device = otaa('1.0.2');
    const { raw } = join10(device);
    assert.deepEqual(device.sessionKeys(), raw);
    assert.equal(device.devAddr, DEV_ADDR);
    assert.equal(device.rxDelaySeconds, 2);
    const frequencies = device.channels().map((channel) => channel?.frequencyHz);
    assert.deepEqual(
      frequencies,
      [868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000],
    );
    const uplink = device.uplink({ fPort: 1, payload: new Uint8Array([1]) });
    assert.deepEqual(
      uplink.receiveWindows.map((w) => [w.name, w.delayUs, w.frequencyHz, w.dataRate]),
      [
        ['rx1', 2_000_000, uplink.frequencyHz, 4],
        ['rx2', 3_000_000, 869_525_000, 3],
      ],
    );
  });

  it('1.1 with OptNeg: checks the JSIntKey MIC, derives 1.1 keys, refuses an old JoinNonce', () => {
    const device = otaa('1.1');
    const { raw } = join11(device, 0x20);
    assert.deepEqual(device.sessionKeys(), raw);
    const { request } = decodeJoinRequest(device.joinRequest());
    const { jsIntKey } = deriveJoinServerKeys(NWK_KEY, DEV_EUI);
    const replayed = buildJoinAccept(
      joinAcceptFields({ joinNonce: 0x20, dlSettings: { optNeg: true, rx1DrOffset: 0, rx2Dr: 0 } }),
      {
        optNeg: true,
        jsIntKey,
        joinRequestType: 'join',
        joinEui: JOIN_EUI,
        devNonce: request.devNonce,
      },
      NWK_KEY,
    );
    const outcome = device.receive(replayed);
    assert.equal(outcome.status, 'rejected');
    assert.equal(outcome.status === 'rejected' && outcome.reason, 'replay');
  });

  it('1.1 answered by a 1.0 network: falls back to 1.0 keys derived from its NwkKey', () => {
    const device = otaa('1.1');
    const { request } = decodeJoinRequest(device.joinRequest());
    const accept = buildJoinAccept(joinAcceptFields(), { optNeg: false, key: NWK_KEY }, NWK_KEY);
    assert.equal(device.receive(accept).status, 'joined');
    assert.deepEqual(
      device.sessionKeys(),
      deriveSessionKeys10(NWK_KEY, 0x000101, NET_ID, request.devNonce),
    );
  });

  it('refuses a JoinAccept with a bad MIC, and ignores one when no join is pending', () => {
    const device = otaa('1.0.4');
    assert.equal(
      device.receive(buildJoinAccept(joinAcceptFields(), { optNeg: false, key: APP_KEY }, APP_KEY))
        .status,
      'ignored',
    );
    device.joinRequest();
    const forged = buildJoinAccept(joinAcceptFields(), { optNeg: false, key: NWK_KEY }, APP_KEY);
    const outcome = device.receive(forged);
    assert.equal(outcome.status === 'rejected' && outcome.reason, 'mic');
    assert.equal(device.activated, false);
  });
});

describe('SimulatedDevice: data frames', () => {
  it('1.0: builds uplinks that decode, verify and decrypt; FCntUp counts', () => {
    const device = otaa('1.0.3');
    const { keys } = join10(device);
    const first = device.uplink({ fPort: 10, payload: new Uint8Array([1, 2, 3]), confirmed: true });
    const opened = openUplink(first, keys);
    assert.equal(opened.frame.mType, 'ConfirmedDataUp');
    assert.equal(opened.frame.fPort, 10);
    assert.equal(opened.frame.fCtrl.adr, true);
    assert.deepEqual(opened.payload, new Uint8Array([1, 2, 3]));
    assert.equal(first.counter, 0);
    assert.equal(device.uplink().counter, 1);
    assert.equal(device.fCntUp, 2);
  });

  it('1.1: the uplink MIC covers TxDr, TxCh and the ConfFCnt of an acknowledged downlink', () => {
    const device = otaa('1.1');
    const { keys } = join11(device);
    const first = device.uplink({ fPort: 2, payload: new Uint8Array([9]) });
    const opened = openUplink(first, keys);
    // RekeyInd rides in every uplink after an OptNeg join until RekeyConf.
    assert.deepEqual(opened.macCommands, [{ cid: 'RekeyInd', minorVersion: 1 }]);
    assert.equal(
      device.receive(
        downlink(keys, 4, { confirmed: true, mac: [{ cid: 'RekeyConf', minorVersion: 1 }] }),
      ).status,
      'accepted',
    );
    const acking = device.uplink({ fPort: 2, payload: new Uint8Array([9]) });
    const { frame, macCommands } = openUplink(acking, keys, 4);
    assert.equal(frame.fCtrl.ack, true);
    assert.deepEqual(macCommands, []);
    const { payload, micInput } = decodePhyPayloadWithMicInput(acking.phyPayload);
    assert.equal(
      verifyDataMic(payload as DataFrame, micInput, keys, acking.counter, {
        confFCnt: 5,
        txDr: acking.dataRate,
        txCh: acking.channel,
      }),
      false,
    );
  });

  it('accepts downlinks built by the protocol core and records ACK, FPending and payload', () => {
    const device = otaa('1.0.4');
    const { keys } = join10(device);
    device.uplink({ fPort: 1, payload: new Uint8Array([1]), confirmed: true });
    assert.equal(device.awaitingAck, true);
    const outcome = device.receive(
      downlink(keys, 0, {
        ack: true,
        fPending: true,
        fPort: 3,
        payload: new Uint8Array([0xca, 0xfe]),
      }),
      { window: 'rx1' },
    );
    assert.equal(outcome.status, 'accepted');
    assert.equal(device.awaitingAck, false);
    assert.deepEqual(device.receivedDownlinks, [
      {
        confirmed: false,
        fCnt: 0,
        fPort: 3,
        payload: new Uint8Array([0xca, 0xfe]),
        ack: true,
        fPending: true,
        macCommands: [],
        window: 'rx1',
      },
    ]);
  });

  it('1.1: checks the downlink MIC with the FCntUp of the confirmed uplink it acknowledges', () => {
    const device = otaa('1.1');
    const { keys } = join11(device);
    device.uplink();
    const confirmed = device.uplink({ confirmed: true });
    assert.equal(confirmed.counter, 1);
    const wrong = device.receive(downlink(keys, 0, { ack: true, confFCnt: 0 }));
    assert.equal(wrong.status === 'rejected' && wrong.reason, 'mic');
    assert.equal(device.receive(downlink(keys, 0, { ack: true, confFCnt: 1 })).status, 'accepted');
    assert.equal(device.awaitingAck, false);
  });

  it('acknowledges a confirmed downlink in its next uplink, once', () => {
    const device = otaa('1.0.3');
    const { keys } = join10(device);
    device.uplink();
    assert.equal(
      device.receive(downlink(keys, 0, { confirmed: true, fPort: 1, payload: new Uint8Array([1]) }))
        .status,
      'accepted',
    );
    assert.equal(openUplink(device.uplink(), keys).frame.fCtrl.ack, true);
    assert.equal(openUplink(device.uplink(), keys).frame.fCtrl.ack, false);
  });

  it('refuses replays and bad MICs, ignores other DevAddrs', () => {
    const device = otaa('1.0.3');
    const { keys } = join10(device);
    device.uplink();
    const frame = downlink(keys, 5, { fPort: 1, payload: new Uint8Array([1]) });
    assert.equal(device.receive(frame).status, 'accepted');
    const replay = device.receive(frame);
    assert.equal(replay.status === 'rejected' && replay.reason, 'replay');
    const tampered = downlink(keys, 6, { fPort: 1, payload: new Uint8Array([1]) });
    tampered[tampered.length - 1]! ^= 0x01;
    const bad = device.receive(tampered);
    assert.equal(bad.status === 'rejected' && bad.reason, 'mic');
    const other = device.receive(downlink(keys, 7, { devAddr: DEV_ADDR + 1 }));
    assert.equal(other.status, 'ignored');
    const malformed = device.receive(new Uint8Array([0x60, 1, 2]));
    assert.equal(malformed.status === 'rejected' && malformed.reason, 'malformed');
    // After a gap the counter is reconstructed past 16 bits.
    assert.equal(device.receive(downlink(keys, 0x1_0002, { fPort: 1 })).status, 'accepted');
    assert.equal(device.receivedDownlinks.at(-1)!.fCnt, 0x1_0002);
  });

  it('1.1: counts FPort > 0 with AFCntDown and MAC-only downlinks with NFCntDown', () => {
    const device = otaa('1.1');
    const { keys } = join11(device);
    device.uplink();
    assert.equal(
      device.receive(downlink(keys, 0, { fPort: 1, payload: new Uint8Array([1]) })).status,
      'accepted',
    );
    assert.equal(
      device.receive(downlink(keys, 0, { mac: [{ cid: 'DevStatusReq' }] })).status,
      'accepted',
    );
    assert.equal(
      device.receive(downlink(keys, 1, { fPort: 0, mac: [{ cid: 'DevStatusReq' }] })).status,
      'accepted',
    );
    assert.deepEqual(
      device.receivedDownlinks.map((d) => [d.fPort, d.fCnt, d.macCommands.map((c) => c.cid)]),
      [
        [1, 0, []],
        [undefined, 0, ['DevStatusReq']],
        [0, 1, ['DevStatusReq']],
      ],
    );
  });

  it('ABP 1.0.2 with a 32-bit FCntUp: the wire carries the low 16 bits, the MIC all 32', () => {
    const raw = { nwkSKey: NWK_KEY, appSKey: APP_KEY };
    const device = new SimulatedDevice({
      devEui: DEV_EUI,
      lorawanVersion: '1.0.2',
      activation: { mode: 'abp', devAddr: DEV_ADDR, keys: raw, fCntUp: 70_000 },
      random: createRandom(3),
    });
    const uplink = device.uplink({ fPort: 7, payload: new Uint8Array([7]) });
    const opened = openUplink(uplink, { lorawan: '1.0', ...raw });
    assert.equal(uplink.counter, 70_000);
    assert.equal(opened.frame.fCnt, 70_000 & 0xffff);
  });

  it('ABP 1.1 announces itself with ResetInd until ResetConf', () => {
    const raw = {
      fNwkSIntKey: NWK_KEY,
      sNwkSIntKey: APP_KEY,
      nwkSEncKey: NWK_KEY,
      appSKey: APP_KEY,
    };
    const keys: DataSessionKeys = { lorawan: '1.1', ...raw };
    const device = new SimulatedDevice({
      devEui: DEV_EUI,
      lorawanVersion: '1.1',
      activation: { mode: 'abp', devAddr: DEV_ADDR, keys: raw },
    });
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, [
      { cid: 'ResetInd', minorVersion: 1 },
    ]);
    device.receive(downlink(keys, 0, { mac: [{ cid: 'ResetConf', minorVersion: 1 }] }));
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, []);
  });
});

describe('SimulatedDevice: MAC commands', () => {
  it('applies LinkADRReq and answers it, with DevStatusAns and RXTimingSetupAns', () => {
    const device = otaa('1.0.4');
    const { keys } = join10(device);
    device.uplink();
    const outcome = device.receive(
      downlink(keys, 0, {
        mac: [
          { cid: 'LinkADRReq', dataRate: 2, txPower: 3, chMask: 0x0007, chMaskCntl: 0, nbTrans: 2 },
          { cid: 'DevStatusReq' },
          { cid: 'RXTimingSetupReq', delaySeconds: 3 },
        ],
      }),
      { snr: 4.6 },
    );
    assert.equal(outcome.status, 'accepted');
    assert.equal(device.dataRate, 2);
    assert.equal(device.txPowerIndex, 3);
    assert.equal(device.nbTrans, 2);
    assert.equal(device.rxDelaySeconds, 3);
    const next = device.uplink({ fPort: 1, payload: new Uint8Array([1]) });
    assert.equal(next.dataRate, 2);
    assert.ok([868_100_000, 868_300_000, 868_500_000].includes(next.frequencyHz));
    assert.deepEqual(openUplink(next, keys).macCommands, [
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
      { cid: 'DevStatusAns', battery: 200, margin: 5 },
      { cid: 'RXTimingSetupAns' },
    ]);
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, []);
  });

  it('refuses a LinkADRReq that disables every channel and keeps its settings', () => {
    const device = otaa('1.0.4');
    const { keys } = join10(device);
    device.uplink();
    device.receive(
      downlink(keys, 0, {
        mac: [{ cid: 'LinkADRReq', dataRate: 0, txPower: 1, chMask: 0, chMaskCntl: 0, nbTrans: 1 }],
      }),
    );
    assert.equal(device.dataRate, 5);
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, [
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: false },
    ]);
  });

  it('sends requested LinkCheckReq/DeviceTimeReq and records the answers', () => {
    const device = otaa('1.0.3');
    const { keys } = join10(device);
    const up = device.uplink({ macCommands: [{ cid: 'LinkCheckReq' }, { cid: 'DeviceTimeReq' }] });
    assert.deepEqual(
      openUplink(up, keys).macCommands.map((c) => c.cid),
      ['LinkCheckReq', 'DeviceTimeReq'],
    );
    device.receive(
      downlink(keys, 0, {
        mac: [
          { cid: 'LinkCheckAns', margin: 12, gatewayCount: 2 },
          { cid: 'DeviceTimeAns', gpsEpochSeconds: 1_400_000_000, fractionalSecond: 128 },
        ],
      }),
    );
    assert.deepEqual(device.receivedDownlinks[0]!.macCommands, [
      { cid: 'LinkCheckAns', margin: 12, gatewayCount: 2 },
      { cid: 'DeviceTimeAns', gpsEpochSeconds: 1_400_000_000, fractionalSecond: 128 },
    ]);
  });

  it('keeps the MaxDutyCycle of a DutyCycleReq (not enforced) until a new join', () => {
    const device = otaa('1.0.4');
    const { keys } = join10(device);
    assert.equal(device.maxDutyCycle, 0);
    device.uplink();
    device.receive(downlink(keys, 0, { mac: [{ cid: 'DutyCycleReq', maxDutyCycle: 7 }] }));
    assert.equal(device.maxDutyCycle, 7);
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, [{ cid: 'DutyCycleAns' }]);
    join10(device);
    assert.equal(device.maxDutyCycle, 0);
  });

  it('transmits on the channel a test names, if enabled for the data rate', () => {
    const device = otaa('1.0.4');
    const { keys } = join10(device);
    device.uplink();
    device.receive(
      downlink(keys, 0, {
        mac: [{ cid: 'NewChannelReq', chIndex: 3, frequencyHz: 868_900_000, minDr: 0, maxDr: 5 }],
      }),
    );
    const onNew = device.uplink({ channel: 3 });
    assert.equal(onNew.channel, 3);
    assert.equal(onNew.frequencyHz, 868_900_000);
    const fCntUp = device.fCntUp;
    assert.throws(() => device.uplink({ channel: 9 }), /channel 9 is not enabled for DR5/);
    assert.equal(device.fCntUp, fCntUp, 'nothing sent');
  });

  it('moves MAC answers that do not fit FOpts to FPort 0 when there is no payload', () => {
    const device = otaa('1.0.4');
    const { keys } = join10(device);
    device.uplink();
    const many: MacCommand[] = Array.from({ length: 8 }, () => ({ cid: 'DevStatusReq' }));
    device.receive(downlink(keys, 0, { fPort: 0, mac: many }));
    const opened = openUplink(device.uplink(), keys);
    assert.equal(opened.frame.fPort, 0);
    assert.equal(opened.macCommands.length, 8);
  });
});

it('encodes a JoinRequest the protocol core can rebuild byte for byte', () => {
  const device = otaa('1.0.3');
  const transmission = device.joinRequest();
  const { request } = decodeJoinRequest(transmission);
  const rebuilt = encodeMicInput({ ...request });
  assert.deepEqual(transmission.phyPayload.subarray(0, 19), rebuilt);
});
