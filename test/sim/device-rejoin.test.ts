/**
 * LoRaWAN 1.1 rejoin on the simulated device: RejoinRequest types 0, 1 and 2, the JoinAccept
 * that answers them (built by the real join server where it can be), ForceRejoinReq and
 * RejoinParamSetupReq.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type JoinAnswer,
  type JoinDevice,
  type JoinServerStore,
  LocalJoinServer,
} from '../../src/join/join-server.js';
import {
  buildJoinAccept,
  type DataSessionKeys,
  decodePhyPayloadWithMicInput,
  deriveJoinServerKeys,
  type JoinAcceptFields,
  joinRequestTypeOfRejoin,
  optNegJoinAcceptKeys,
  type RejoinRequest,
  type SessionKeys11,
  verifyRejoinRequestMic,
} from '../../src/lorawan/index.js';
import { type DeviceTransmission, SimulatedDevice } from '../../src/sim/device.js';
import {
  APP_KEY,
  CF_LIST,
  DEV_ADDR,
  DEV_EUI,
  downlinkFrame,
  JOIN_EUI,
  joinDevice,
  joinedDeviceWithMac,
  NET_ID,
  NWK_KEY,
  openUplink,
  otaaDevice,
} from './device-helpers.js';

/** A join store in memory, with the RJcount1 pair. */
class MemoryStore implements JoinServerStore {
  joinNonce = 0x100;
  readonly devNonces = new Set<number>();
  lastRj1: number | null = null;
  readonly device: JoinDevice = { devEui: DEV_EUI, joinEui: JOIN_EUI, macVersion: '1.1.0' };

  async getDevice(devEui: string) {
    return devEui === DEV_EUI ? this.device : undefined;
  }
  async getRootKeys() {
    return { appKey: APP_KEY, nwkKey: NWK_KEY };
  }
  async nextJoinNonce() {
    return ++this.joinNonce;
  }
  async recordDevNonce(_devEui: string, devNonce: number) {
    if (this.devNonces.has(devNonce)) return 'replayed' as const;
    this.devNonces.add(devNonce);
    return 'new' as const;
  }
  async maxDevNonce() {
    return this.devNonces.size === 0 ? null : Math.max(...this.devNonces);
  }
  async lastRjCount1() {
    return this.lastRj1;
  }
  async recordRjCount1(_devEui: string, rjCount1: number) {
    if (this.lastRj1 !== null && rjCount1 <= this.lastRj1) return 'replayed' as const;
    this.lastRj1 = rjCount1;
    return 'new' as const;
  }
}

const NEW_ADDR = 0x26000aaa;

function decodeRejoin(transmission: DeviceTransmission) {
  const { payload, micInput } = decodePhyPayloadWithMicInput(transmission.phyPayload);
  assert.equal(payload.mType, 'RejoinRequest');
  return { request: payload as RejoinRequest, micInput };
}

function success(answer: JoinAnswer): Extract<JoinAnswer, { result: 'Success' }> {
  assert.equal(answer.result, 'Success', answer.result === 'Success' ? '' : answer.message);
  return answer as Extract<JoinAnswer, { result: 'Success' }>;
}

/** A 1.1 device joined through the real join server. */
async function joinedThroughJoinServer(): Promise<{
  device: SimulatedDevice;
  server: LocalJoinServer;
  keys: DataSessionKeys;
}> {
  const device = otaaDevice('1.1');
  const server = new LocalJoinServer(new MemoryStore());
  const answer = success(
    await server.handleJoinRequest({
      phyPayload: device.joinRequest().phyPayload,
      netId: NET_ID,
      devAddr: DEV_ADDR,
      dlSettings: { rx1DrOffset: 0, rx2Dr: 0 },
      rxDelay: 1,
      cfList: CF_LIST,
    }),
  );
  assert.equal(device.receive(answer.phyPayload).status, 'joined');
  return { device, server, keys: answer.sessionKeys as DataSessionKeys };
}

function rejoinMessage(transmission: DeviceTransmission) {
  return {
    phyPayload: transmission.phyPayload,
    netId: NET_ID,
    devAddr: NEW_ADDR,
    dlSettings: { rx1DrOffset: 2, rx2Dr: 3 },
    rxDelay: 3,
  };
}

describe('SimulatedDevice: RejoinRequest frames', () => {
  it('types 0 and 2: NetID | DevEUI | RJcount0, signed with SNwkSIntKey, RJcount0 counting up', () => {
    const device = otaaDevice('1.1');
    const { raw } = joinDevice(device);
    const { sNwkSIntKey } = raw as SessionKeys11;
    const type0 = device.rejoinRequest(0);
    const type2 = device.rejoinRequest(2);
    for (const [transmission, rejoinType, rjCount] of [
      [type0, 0, 0],
      [type2, 2, 1],
    ] as const) {
      const { request, micInput } = decodeRejoin(transmission);
      assert.deepEqual(
        { ...request, mic: undefined },
        {
          mType: 'RejoinRequest',
          rejoinType,
          netId: NET_ID,
          devEui: DEV_EUI,
          rjCount0: rjCount,
          mic: undefined,
        },
      );
      assert.equal(verifyRejoinRequestMic(request, sNwkSIntKey, micInput), true);
      assert.equal(transmission.kind, 'rejoin');
      assert.equal(transmission.rejoinType, rejoinType);
      assert.equal(transmission.counter, rjCount);
      assert.equal(transmission.phyPayload.length, 19);
    }
    assert.equal(device.rjCount0, 2);
    assert.equal(device.rjCount1, 0);
    // Answered like a join: JOIN_ACCEPT_DELAY1/2, with the device's current RX settings.
    assert.deepEqual(
      type0.receiveWindows.map((w) => [w.name, w.delayUs, w.dataRate, w.frequencyHz]),
      [
        ['rx1', 5_000_000, 5, type0.frequencyHz],
        ['rx2', 6_000_000, 0, 869_525_000],
      ],
    );
  });

  it('type 1: JoinEUI | DevEUI | RJcount1, signed with JSIntKey, at the data rate asked for', () => {
    const device = otaaDevice('1.1');
    joinDevice(device);
    const transmission = device.rejoinRequest(1, { dataRate: 2 });
    const { request, micInput } = decodeRejoin(transmission);
    assert.equal(request.rejoinType, 1);
    assert.equal(request.rejoinType === 1 && request.joinEui, JOIN_EUI);
    assert.equal(request.rejoinType === 1 && request.rjCount1, 0);
    const { jsIntKey } = deriveJoinServerKeys(NWK_KEY, DEV_EUI);
    assert.equal(verifyRejoinRequestMic(request, jsIntKey, micInput), true);
    assert.equal(transmission.dataRate, 2);
    assert.equal(transmission.phyPayload.length, 24);
    assert.equal(device.rjCount1, 1);
  });

  it('refuses a rejoin a device could not send', () => {
    assert.throws(() => otaaDevice('1.0.4').rejoinRequest(0), /LoRaWAN 1.1 only/);
    const notJoined = otaaDevice('1.1');
    assert.throws(() => notJoined.rejoinRequest(0), /needs a LoRaWAN 1.1 session/);
    assert.throws(() => notJoined.rejoinRequest(), /no rejoin type given/);
    const device = otaaDevice('1.1');
    joinDevice(device, { dlSettings: { optNeg: false, rx1DrOffset: 0, rx2Dr: 0 } });
    assert.throws(() => device.rejoinRequest(2), /needs a LoRaWAN 1.1 session/);
    const abp = new SimulatedDevice({
      devEui: DEV_EUI,
      lorawanVersion: '1.1',
      activation: { mode: 'abp', devAddr: DEV_ADDR, keys: joinDevice(otaaDevice('1.1')).raw },
    });
    assert.throws(() => abp.rejoinRequest(0), /needs OTAA root keys/);
  });
});

describe('SimulatedDevice: the JoinAccept answering a rejoin', () => {
  for (const rejoinType of [0, 1, 2] as const) {
    it(`type ${rejoinType}: takes the join server's answer, switches to the new keys and DevAddr, counts from 0 and sends RekeyInd`, async () => {
      const { device, server, keys: oldKeys } = await joinedThroughJoinServer();
      device.uplink();
      device.receive(
        downlinkFrame(oldKeys, 0, {
          mac: [
            { cid: 'RekeyConf', minorVersion: 1 },
            { cid: 'LinkADRReq', dataRate: 4, txPower: 2, chMask: 0x1f, chMaskCntl: 0, nbTrans: 2 },
          ],
        }),
      );
      device.uplink();
      const before = { rx: device.rxSettings, channels: device.enabledChannels() };
      const transmission = device.rejoinRequest(rejoinType);
      const answer = success(await server.handleRejoinRequest(rejoinMessage(transmission)));
      assert.deepEqual(device.receive(answer.phyPayload), {
        status: 'joined',
        devAddr: NEW_ADDR,
        rejoinType,
      });
      const { lorawan: _, ...newKeys } = answer.sessionKeys;
      assert.deepEqual(device.sessionKeys(), newKeys);
      assert.equal(device.devAddr, NEW_ADDR);
      assert.equal(device.fCntUp, 0);
      assert.equal(device.rjCount0, 0, 'RJcount0 restarts with every JoinAccept');
      if (rejoinType === 2) {
        // Rekey only: the radio parameters stay.
        assert.deepEqual(device.rxSettings, before.rx);
        assert.equal(device.nbTrans, 2);
      } else {
        assert.deepEqual(device.rxSettings, {
          rx1DrOffset: 2,
          rx2DataRate: 3,
          rx2FrequencyHz: 869_525_000,
          rxDelaySeconds: 3,
        });
        assert.deepEqual(device.enabledChannels(), [0, 1, 2], 'no CFList: the defaults');
        assert.equal(device.nbTrans, 1);
      }
      const first = device.uplink({ fPort: 3, payload: Uint8Array.of(1) });
      const opened = openUplink(first, answer.sessionKeys as DataSessionKeys);
      assert.equal(opened.frame.devAddr, NEW_ADDR);
      assert.equal(first.counter, 0);
      assert.deepEqual(opened.macCommands, [{ cid: 'RekeyInd', minorVersion: 1 }]);
      // The old session is gone: its downlinks are another DevAddr now.
      assert.equal(device.receive(downlinkFrame(oldKeys, 5)).status, 'ignored');
    });
  }

  it('refuses an answer for another RJcount or type, and a replayed JoinNonce', () => {
    const device = otaaDevice('1.1');
    joinDevice(device, { joinNonce: 0x50 });
    const { counter } = device.rejoinRequest(0);
    const fields: JoinAcceptFields = {
      joinNonce: 0x51,
      netId: NET_ID,
      devAddr: NEW_ADDR,
      dlSettings: { optNeg: true, rx1DrOffset: 0, rx2Dr: 0 },
      rxDelay: 1,
      cfList: undefined,
    };
    const answer = (type: 'rejoin0' | 'rejoin2', rjCount: number, joinNonce = 0x51) => {
      const { micKeys, encryptionKey } = optNegJoinAcceptKeys(
        NWK_KEY,
        DEV_EUI,
        JOIN_EUI,
        type,
        rjCount,
      );
      return buildJoinAccept({ ...fields, joinNonce }, micKeys, encryptionKey);
    };
    const otherCount = device.receive(answer('rejoin0', counter + 1));
    assert.equal(otherCount.status === 'rejected' && otherCount.reason, 'mic');
    const otherType = device.receive(answer('rejoin2', counter));
    assert.equal(otherType.status === 'rejected' && otherType.reason, 'mic');
    const replay = device.receive(answer('rejoin0', counter, 0x50));
    assert.equal(replay.status === 'rejected' && replay.reason, 'replay');
    assert.equal(device.devAddr, DEV_ADDR);
    assert.equal(device.receive(answer('rejoin0', counter)).status, 'joined');
    assert.equal(device.devAddr, NEW_ADDR);
    // Nothing pending any more.
    assert.equal(device.receive(answer('rejoin0', counter, 0x52)).status, 'ignored');
  });

  it('still takes the JoinAccept of a JoinRequest sent after a rejoin', () => {
    const device = otaaDevice('1.1');
    joinDevice(device, { joinNonce: 1 });
    device.rejoinRequest(0);
    const { raw } = joinDevice(device, { joinNonce: 2, devAddr: NEW_ADDR });
    assert.deepEqual(device.sessionKeys(), raw);
    assert.equal(device.devAddr, NEW_ADDR);
  });
});

describe('SimulatedDevice: ForceRejoinReq and RejoinParamSetupReq', () => {
  it('ForceRejoinReq: no MAC answer; the next rejoinRequest() is of the type and data rate asked for, retried MaxRetries times', () => {
    const { device, keys } = joinedDeviceWithMac('1.1', [
      { cid: 'RekeyConf', minorVersion: 1 },
      { cid: 'ForceRejoinReq', period: 2, maxRetries: 1, rejoinType: 2, dataRate: 3 },
    ]);
    assert.deepEqual(device.forcedRejoin, {
      rejoinType: 2,
      dataRate: 3,
      period: 2,
      maxRetries: 1,
      remaining: 2,
    });
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, []);
    const first = device.rejoinRequest();
    assert.deepEqual([first.rejoinType, first.dataRate], [2, 3]);
    assert.equal(device.forcedRejoin?.remaining, 1);
    const retry = device.rejoinRequest();
    assert.deepEqual([retry.rejoinType, retry.dataRate, retry.counter], [2, 3, 1]);
    assert.equal(device.forcedRejoin, undefined);
  });

  it('ForceRejoinReq: RejoinType 0 and 1 both ask for type 0, RFU types are ignored', () => {
    for (const [asked, sent] of [
      [0, 0],
      [1, 0],
      [3, undefined],
      [7, undefined],
    ] as const) {
      const { device } = joinedDeviceWithMac('1.1', [
        { cid: 'ForceRejoinReq', period: 0, maxRetries: 0, rejoinType: asked, dataRate: 1 },
      ]);
      assert.equal(device.forcedRejoin?.rejoinType, sent, `RejoinType ${asked}`);
    }
  });

  it('RejoinParamSetupReq: answered with TimeOK, kept, and a type-0 rejoin due after 2^(MaxCountN+4) uplinks', () => {
    for (const timeOk of [true, false]) {
      const { device, keys } = joinedDeviceWithMac(
        '1.1',
        [
          { cid: 'RekeyConf', minorVersion: 1 },
          { cid: 'RejoinParamSetupReq', maxTimeN: 5, maxCountN: 0 },
        ],
        { rejoinTimeOk: timeOk },
      );
      assert.deepEqual(device.rejoinParameters, { maxTimeN: 5, maxCountN: 0 });
      assert.deepEqual(openUplink(device.uplink(), keys).macCommands, [
        { cid: 'RejoinParamSetupAns', timeOk },
      ]);
      for (let i = 0; i < 13; i++) device.uplink();
      assert.equal(device.periodicRejoinDue, false, '15 uplinks');
      device.uplink();
      assert.equal(device.periodicRejoinDue, true, '16 uplinks');
      device.rejoinRequest(0);
      assert.equal(device.periodicRejoinDue, false);
    }
  });

  it('a 1.0 session ignores the 1.1 rejoin commands; TxParamSetupReq gets no answer in EU868', () => {
    const { device, keys } = joinedDeviceWithMac('1.0.4', [
      { cid: 'RejoinParamSetupReq', maxTimeN: 1, maxCountN: 1 },
      { cid: 'ForceRejoinReq', period: 0, maxRetries: 0, rejoinType: 0, dataRate: 0 },
      {
        cid: 'TxParamSetupReq',
        downlinkDwellTime: false,
        uplinkDwellTime: false,
        maxEirpIndex: 5,
      },
    ]);
    assert.equal(device.rejoinParameters, undefined);
    assert.equal(device.forcedRejoin, undefined);
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, []);
  });

  it('reads ForceRejoinReq with the byte order the protocol core writes (RejoinType and DR in the first byte)', () => {
    const device = otaaDevice('1.1');
    const { keys } = joinDevice(device);
    device.uplink();
    // CID 0x0E, then the 16-bit field little-endian: 0x25 = RejoinType 2 | DR 5, 0x1c = Period 3 | MaxRetries 4.
    const frame = downlinkFrame(keys, 0, {
      mac: [{ cid: 'ForceRejoinReq', period: 3, maxRetries: 4, rejoinType: 2, dataRate: 5 }],
    });
    device.receive(frame);
    assert.deepEqual(device.forcedRejoin, {
      rejoinType: 2,
      dataRate: 5,
      period: 3,
      maxRetries: 4,
      remaining: 5,
    });
    assert.equal(joinRequestTypeOfRejoin(device.rejoinRequest().rejoinType!), 'rejoin2');
  });
});
