/**
 * Scenario tests of the MAC layer: ADR, ADRACKReq, the MAC requests a device profile drives
 * (RX1 frequencies moved with DlChannelReq among them), Class C (configured, and switched to
 * with DeviceModeInd), confirmed downlinks that are never acknowledged, and the gateway duty
 * cycle. A real Galet (SQLite in a temporary directory) and
 * simulated devices and gateways over real UDP; the simulated devices apply what they receive,
 * so each test checks both what the network sent and what the device made of it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type DataFrame,
  type DownlinkMacCommand,
  dataRateTimeOnAirMs,
  decodePhyPayload,
  EU868,
} from '../../src/lorawan/index.js';
import type { DeviceTransmission, SimulatedDevice } from '../../src/sim/device.js';
import {
  type ApiEvent,
  type GatewaySpec,
  type Hearing,
  ScenarioNetwork,
  waitFor,
} from './helpers.js';

const bytes = (...values: number[]) => Uint8Array.from(values);
const filled = (length: number, value: number) => new Uint8Array(length).fill(value);

let gatewaySerial = 0;

/** A gateway EUI no earlier test used: Galet's state of it (duty cycle, last uplinks) is empty. */
function freshGatewayId(): string {
  gatewaySerial += 1;
  return `aa555a${gatewaySerial.toString(16).padStart(10, '0')}`;
}

/**
 * The Galet the tests share, with a short deduplication window (one gateway hears each frame,
 * or two at once: nothing to wait for, and the ADR tests send dozens of uplinks).
 */
let shared: ScenarioNetwork | undefined;

/**
 * Runs a scenario on the shared Galet with gateways of its own (fresh EUIs, in the order of
 * `gateways`) and its own devices; counters are reported from the start of the scenario.
 */
async function withNetwork(
  gateways: readonly Omit<GatewaySpec, 'gatewayId'>[],
  scenario: (net: ScenarioNetwork) => Promise<void>,
): Promise<void> {
  if (shared === undefined) throw new Error('the shared Galet is not running');
  const net = shared;
  await net.useGateways(gateways.map((spec) => ({ ...spec, gatewayId: freshGatewayId() })));
  await net.countFromNow();
  try {
    await scenario(net);
  } finally {
    await net.useGateways([]);
  }
}

/** The device's `log` events with this code, oldest first. */
async function logs(net: ScenarioNetwork, devEui: string, code: string): Promise<ApiEvent[]> {
  return (await net.events(devEui, 'log')).filter((event) => event.code === code);
}

/** Waits until the device has `count` log events with this code; returns them. */
function waitForLogs(
  net: ScenarioNetwork,
  devEui: string,
  code: string,
  count: number,
): Promise<ApiEvent[]> {
  return waitFor(`${devEui}: ${count} ${code} log event(s)`, async () => {
    const found = await logs(net, devEui, code);
    return found.length >= count ? found : undefined;
  });
}

function adrAckReqOf(transmission: DeviceTransmission): boolean {
  return (decodePhyPayload(transmission.phyPayload) as DataFrame).fCtrl.adrAckReq;
}

function cidsOf(device: SimulatedDevice): DownlinkMacCommand['cid'][] {
  return device.receivedDownlinks.flatMap((downlink) => downlink.macCommands.map((c) => c.cid));
}

function linkAdrReq(dataRate: number, txPower: number): DownlinkMacCommand {
  // EU868: the three default channels stay enabled (ChMaskCntl 0, mask 0b111).
  return { cid: 'LinkADRReq', dataRate, txPower, chMask: 0b111, chMaskCntl: 0, nbTrans: 1 };
}

/** A device profile that needs every network-driven MAC command (1.1-only ones included). */
const MAC_PROFILE = {
  rx1DelaySeconds: 2,
  rx1DrOffset: 1,
  rx2Dr: 3,
  rx2FrequencyHz: 869_600_000,
  // EU868 channels 3 and 4, in the 868.7-869.2 MHz sub-band: not the CFList's 867.x channels.
  extraChannels: [{ frequencyHz: 868_700_000 }, { frequencyHz: 868_900_000 }],
  maxDutyCycle: 3,
  devStatusIntervalSeconds: 60,
  adrAckLimitExp: 3,
  adrAckDelayExp: 2,
  rejoin: { maxTimeN: 5, maxCountN: 6 },
};

const PROFILE_CHANNELS = [
  { frequencyHz: 868_700_000, minDr: 0, maxDr: 5, enabled: true },
  { frequencyHz: 868_900_000, minDr: 0, maxDr: 5, enabled: true },
];

/** Airtime of a downlink PHYPayload at DR0 (SF12), as the duty-cycle messages print it. */
function sf12Airtime(phyPayloadLength: number): string {
  const ms = dataRateTimeOnAirMs(EU868.dataRate(0), phyPayloadLength, 'downlink');
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** A frame with no FOpts and FPort: MHDR, DevAddr, FCtrl, FCnt, FPort, MIC around the payload. */
const FRAME_OVERHEAD = 13;

/** A device that transmits on 868.9 MHz only (0.1 % sub-band: 3.6 s of airtime per hour). */
const CHANNEL_868_9_ONLY = [
  ...EU868.defaultChannels.map((channel) => ({ ...channel, enabled: false })),
  { frequencyHz: 868_900_000, minDr: 0, maxDr: 5, enabled: true },
];

describe('MAC layer scenarios', () => {
  // One Galet for all: the tests use distinct devices and gateways, and count from their start.
  before(async () => {
    shared = await ScenarioNetwork.start([], undefined, { deduplicationWindowMs: 20 });
  });
  after(async () => {
    await shared?.close();
  });

  it('ADR takes a strong SF12 device to DR5 at lower power, and raises the power when the signal fades', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const device = await net.addAbpDevice('0000000000001101', '1.0.3', 0x26001101, {
        simulator: { dataRate: 0 },
      });
      const strong: Hearing[] = [{ gateway, link: { rssi: -60, snr: 15 } }];
      const weak: Hearing[] = [{ gateway, link: { rssi: -121, snr: -10 } }];
      const send = (heardBy: Hearing[]) =>
        net.uplink(device, { fPort: 1, payload: bytes(device.fCntUp & 0xff) }, heardBy);

      for (let n = 0; n < 19; n++) {
        const { event } = await send(strong);
        assert.equal(event.dr, 0);
        assert.equal(event.adr, true);
      }
      assert.equal(gateway.downlinks.length, 0, 'ADR waits for 20 uplinks before raising DR');

      // Uplink 20: margin 15 − (−20 at SF12) − 10 = 25 dB, 8 steps of 3 dB: DR0 → DR5 (5 steps),
      // then TX power index 0 → 3.
      await send(strong);
      const first = await net.waitForDownlink(device, 1);
      assert.deepEqual(first.macCommands, [linkAdrReq(5, 3)]);
      assert.equal(first.window, 'rx1');
      assert.equal(device.dataRate, 5);
      assert.equal(device.txPowerIndex, 3);

      // The answer comes at DR5. Best SNR referred to index 3 is still 15 dB; at SF7 (floor
      // −7.5 dB) that is 12.5 dB of margin, 4 steps: TX power down to index 7, the lowest.
      const fast = await send(strong);
      assert.equal(fast.transmission.dataRate, 5);
      assert.equal(fast.event.dr, 5);
      const second = await net.waitForDownlink(device, 2);
      assert.deepEqual(second.macCommands, [linkAdrReq(5, 7)]);
      assert.equal(device.txPowerIndex, 7);
      await send(strong);

      // The signal fades to −10 dB. While a strong uplink is among the last 20, the margin holds.
      for (let n = 0; n < 19; n++) {
        const { event } = await send(weak);
        assert.equal(event.dr, 5);
      }
      assert.equal(device.receivedDownlinks.length, 2);
      // The 20th weak uplink: margin −10 + 7.5 − 10 = −12.5 dB, −4 steps: TX power 7 → 3.
      await send(weak);
      const third = await net.waitForDownlink(device, 3);
      assert.deepEqual(third.macCommands, [linkAdrReq(5, 3)]);
      assert.equal(device.txPowerIndex, 3);
      assert.equal(device.dataRate, 5, 'ADR does not lower the data rate for margin');
      // Referred to index 3, the weak uplinks sent at index 7 count 8 dB better: −2 dB, still
      // 4.5 dB short of the margin: one more step.
      await send(weak);
      const fourth = await net.waitForDownlink(device, 4);
      assert.deepEqual(fourth.macCommands, [linkAdrReq(5, 2)]);
      assert.equal(device.txPowerIndex, 2);

      const adr = (await waitForLogs(net, device.devEui, 'ADR', 4)).map((e) => e.description);
      assert.equal(adr.length, 4);
      assert.match(
        adr[0]!,
        /^margin 25 dB \(best SNR 15 dB, floor -20 dB, installation margin 10 dB\): 8 step\(s\); .*DR0 -> DR5, TX power index 0 -> 3$/,
      );
      assert.match(adr[1]!, /^margin 12\.5 dB .*TX power index 3 -> 7$/);
      assert.match(
        adr[2]!,
        /^margin -12\.5 dB \(best SNR -10 dB, .*\): -4 step\(s\); .*TX power index 7 -> 3$/,
      );
      assert.match(adr[3]!, /^margin -4\.5 dB .*TX power index 3 -> 2$/);
      const applied = await waitForLogs(net, device.devEui, 'MAC_LINK_ADR', 3);
      assert.deepEqual(
        applied.map((e) => [e.level, e.description]),
        [
          ['INFO', 'LinkADRReq applied: DR5, TX power index 3, NbTrans 1'],
          ['INFO', 'LinkADRReq applied: DR5, TX power index 7, NbTrans 1'],
          ['INFO', 'LinkADRReq applied: DR5, TX power index 3, NbTrans 1'],
        ],
      );
      assert.equal(await net.metric('galet_network_adr_requests_total'), 4);
    });
  });

  it('answers ADRACKReq with a downlink although nothing is queued', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const device = await net.addAbpDevice('0000000000001201', '1.0.4', 0x26001201);
      // SNR 3 dB at DR5: margin 3 + 7.5 − 10 = 0.5 dB, no ADR step: the network stays silent.
      const heardBy: Hearing[] = [{ gateway, link: { rssi: -105, snr: 3 } }];
      for (let n = 0; n < 64; n++) {
        const { transmission } = await net.uplink(device, { fPort: 2, payload: bytes(n) }, heardBy);
        assert.equal(adrAckReqOf(transmission), false);
      }
      assert.equal(gateway.downlinks.length, 0);
      assert.equal(device.adrAckCounter, 64, 'ADR_ACK_LIMIT (64 in EU868) reached');

      const { transmission } = await net.uplink(device, { fPort: 2, payload: bytes(64) }, heardBy);
      assert.equal(adrAckReqOf(transmission), true);
      const downlink = await net.waitForDownlink(device, 1);
      assert.equal(downlink.fPort, undefined);
      assert.equal(downlink.payload.length, 0);
      assert.deepEqual(downlink.macCommands, []);
      assert.equal(downlink.window, 'rx1');
      assert.equal(device.adrAckCounter, 0, 'any downlink restarts ADR_ACK_CNT');
      assert.equal(gateway.downlinks.length, 1);
      const queue = await net.galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
      assert.deepEqual(queue.json.items, []);

      // Acknowledged: the next uplink no longer asks.
      const next = await net.uplink(device, { fPort: 2, payload: bytes(65) }, heardBy);
      assert.equal(adrAckReqOf(next.transmission), false);
    });
  });

  it('drives a 1.1 device to its profile with every network MAC command, and uses the new windows', async () => {
    let refuseRx1 = false;
    await withNetwork(
      [
        {
          txAckStatus: (pullResp) =>
            refuseRx1 && pullResp.window === 'rx1' ? 'TOO_LATE' : undefined,
        },
      ],
      async (net) => {
        const gateway = net.gateways[0]!;
        const deviceProfileId = await net.createDeviceProfile('street lights', MAC_PROFILE);
        const device = await net.addAbpDevice('0000000000001301', '1.1', 0x26001301, {
          deviceProfileId,
          simulator: { battery: 200 },
        });
        // DevStatusReq is due one interval (60 s) after activation: the session is made older.
        await net.ageSession(device.devEui, 3_600_000);
        const send = (options: { confirmed?: boolean; channel?: number } = {}) =>
          net.uplink(device, { fPort: 3, payload: bytes(device.fCntUp), ...options });

        // FOpts hold 15 bytes: ResetConf (2), two NewChannelReq (6 each), DevStatusReq (1).
        await send({ channel: 0 });
        const first = await net.waitForDownlink(device, 1);
        assert.deepEqual(first.macCommands, [
          { cid: 'ResetConf', minorVersion: 1 },
          { cid: 'NewChannelReq', chIndex: 3, frequencyHz: 868_700_000, minDr: 0, maxDr: 5 },
          { cid: 'NewChannelReq', chIndex: 4, frequencyHz: 868_900_000, minDr: 0, maxDr: 5 },
          { cid: 'DevStatusReq' },
        ]);
        assert.deepEqual(device.channels().slice(3), PROFILE_CHANNELS);

        // The answers (NewChannelAns ×2, DevStatusAns) ride on the next uplink, sent on the new
        // channel 3 already: the network must take TxCh 3 (in the 1.1 MIC) from its pending
        // NewChannelReq. The rest of the profile follows.
        const onNewChannel = await send({ channel: 3 });
        assert.equal(onNewChannel.event.txInfo.frequency, 868_700_000);
        const second = await net.waitForDownlink(device, 2);
        assert.deepEqual(second.macCommands, [
          { cid: 'RXParamSetupReq', rx1DrOffset: 1, rx2DataRate: 3, frequencyHz: 869_600_000 },
          { cid: 'RXTimingSetupReq', delaySeconds: 2 },
          { cid: 'DutyCycleReq', maxDutyCycle: 3 },
          { cid: 'ADRParamSetupReq', limitExp: 3, delayExp: 2 },
          { cid: 'RejoinParamSetupReq', maxTimeN: 5, maxCountN: 6 },
        ]);
        assert.equal(second.window, 'rx1');
        assert.equal(gateway.downlinks.at(-1)!.offsetUs, 1_000_000, 'still the old RX1 delay');

        const status = await net.waitForEvent(device.devEui, (e) => e.event === 'status', 'status');
        // The device measured the DevStatusReq downlink at 7 dB (the link of its uplink).
        assert.equal(status.margin, 7);
        assert.equal(status.externalPowerSource, false);
        assert.equal(status.batteryLevelUnavailable, false);
        assert.equal(status.batteryLevel, Math.round((200 / 254) * 1000) / 10);

        // Their answers; RXParamSetupAns and RXTimingSetupAns are repeated by a device until it
        // receives a downlink, so one goes at once, already in the new RX1 window: 2 s, DR5 − 1.
        // Channel 4 is now in the network's state of the device's channels.
        const third = await send({ channel: 4 });
        assert.equal(third.event.txInfo.frequency, 868_900_000);
        const thirdDownlink = await net.waitForDownlink(device, 3);
        assert.deepEqual(thirdDownlink.macCommands, []);
        assert.equal(thirdDownlink.window, 'rx1');
        const rx1 = gateway.downlinks.at(-1)!;
        assert.equal(rx1.offsetUs, 2_000_000);
        assert.equal(rx1.txpk.datr, 'SF8BW125');
        assert.equal(rx1.txpk.freq, 868.9);

        assert.deepEqual(device.rxSettings, {
          rx1DrOffset: 1,
          rx2DataRate: 3,
          rx2FrequencyHz: 869_600_000,
          rxDelaySeconds: 2,
        });
        assert.deepEqual(device.channels().slice(3), PROFILE_CHANNELS);
        assert.equal(device.maxDutyCycle, 3);
        assert.equal(device.adrAckLimit, 8);
        assert.equal(device.adrAckDelay, 4);
        assert.deepEqual(device.rejoinParameters, { maxTimeN: 5, maxCountN: 6 });

        // RX2 with the new parameters: 3 s, 869.6 MHz, DR3, when the gateway refuses RX1.
        refuseRx1 = true;
        await net.queueDownlink(device.devEui, 5, bytes(0xd5));
        const {
          tmst: [tmst],
        } = await send();
        const rx2Downlink = await net.waitForDownlink(device, 4);
        assert.deepEqual(rx2Downlink.payload, bytes(0xd5));
        assert.equal(rx2Downlink.window, 'rx2');
        const [refused, rx2] = gateway.downlinks.slice(-2);
        assert.equal(refused!.offsetUs, 2_000_000);
        assert.equal(refused!.txAckStatus, 'TOO_LATE');
        assert.equal(rx2!.offsetUs, 3_000_000);
        assert.equal(rx2!.txpk.tmst, (tmst! + 3_000_000) % 2 ** 32);
        assert.equal(rx2!.txpk.freq, 869.6);
        assert.equal(rx2!.txpk.datr, 'SF9BW125');
        assert.equal(rx2!.delivered, true);
        refuseRx1 = false;

        // Nothing is left to ask: a confirmed uplink gets a bare ACK.
        await send({ confirmed: true });
        const ack = await net.waitForDownlink(device, 5);
        assert.equal(ack.ack, true);
        assert.deepEqual(ack.macCommands, []);

        const answers = await logs(net, device.devEui, 'MAC_ANSWER');
        assert.deepEqual(
          answers.map((e) => [e.level, e.description]),
          [
            ['INFO', 'NewChannelAns: NewChannelReq applied'],
            ['INFO', 'NewChannelAns: NewChannelReq applied'],
            ['INFO', 'DevStatusAns: DevStatusReq applied'],
            ['INFO', 'RXParamSetupAns: RXParamSetupReq applied'],
            ['INFO', 'RXTimingSetupAns: RXTimingSetupReq applied'],
            ['INFO', 'DutyCycleAns: DutyCycleReq applied'],
            ['INFO', 'ADRParamSetupAns: ADRParamSetupReq applied'],
            ['INFO', 'RejoinParamSetupAns: RejoinParamSetupReq applied'],
          ],
        );
        const problems = (await net.events(device.devEui, 'log')).filter((e) => e.level !== 'INFO');
        assert.deepEqual(problems, []);
        assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
      },
    );
  });

  it('never sends LoRaWAN 1.1 commands to a 1.0.4 device with the same profile', async () => {
    await withNetwork([{}], async (net) => {
      const deviceProfileId = await net.createDeviceProfile('street lights', MAC_PROFILE);
      const device = await net.addAbpDevice('0000000000001401', '1.0.4', 0x26001401, {
        deviceProfileId,
      });
      for (let count = 1; count <= 3; count++) {
        await net.uplink(device, { fPort: 3, payload: bytes(count) });
        await net.waitForDownlink(device, count);
      }
      // A bare ACK: nothing left to send.
      await net.uplink(device, { fPort: 3, payload: bytes(4), confirmed: true });
      const ack = await net.waitForDownlink(device, 4);
      assert.equal(ack.ack, true);
      assert.deepEqual(ack.macCommands, []);

      // Everything the profile asks for but ADRParamSetupReq and RejoinParamSetupReq.
      assert.deepEqual(cidsOf(device), [
        'NewChannelReq',
        'NewChannelReq',
        'RXTimingSetupReq',
        'RXParamSetupReq',
        'DutyCycleReq',
      ]);
      assert.deepEqual(device.rxSettings, {
        rx1DrOffset: 1,
        rx2DataRate: 3,
        rx2FrequencyHz: 869_600_000,
        rxDelaySeconds: 2,
      });
      assert.equal(device.adrAckLimit, 64);
      assert.equal(device.adrAckDelay, 32);
      assert.equal(device.rejoinParameters, undefined);
      const problems = (await net.events(device.devEui, 'log')).filter((e) => e.level !== 'INFO');
      assert.deepEqual(problems, []);
    });
  });

  it('moves the RX1 downlinks of channel 0 with DlChannelReq and answers there afterwards', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      // 868.5 MHz: inside EU868 and in the same 1 % sub-band as channel 0 (868.1 MHz).
      const deviceProfileId = await net.createDeviceProfile('moved RX1', {
        dlChannels: [{ index: 0, frequencyHz: 868_500_000 }],
        devStatusIntervalSeconds: 0,
      });
      const device = await net.addAbpDevice('0000000000001451', '1.0.4', 0x26001451, {
        deviceProfileId,
        simulator: { adr: false },
      });
      const send = (channel: number, confirmed = false) =>
        net.uplink(device, { fPort: 3, payload: bytes(device.fCntUp & 0xff), channel, confirmed });

      // The request goes in the RX1 window the device still has: on the uplink frequency.
      const first = await send(0);
      assert.equal(first.event.txInfo.frequency, 868_100_000);
      const request = await net.waitForDownlink(device, 1);
      assert.deepEqual(request.macCommands, [
        { cid: 'DlChannelReq', chIndex: 0, frequencyHz: 868_500_000 },
      ]);
      assert.equal(request.window, 'rx1');
      assert.equal(gateway.downlinks[0]!.txpk.freq, 868.1);
      assert.deepEqual(device.dlChannelFrequencies(), new Map([[0, 868_500_000]]));

      // DlChannelAns rides on the next uplink, on channel 0 again. The network applies it before
      // answering, and the downlink that stops its repeats already goes out on 868.5 MHz.
      await send(0);
      const [applied] = await waitForLogs(net, device.devEui, 'MAC_ANSWER', 1);
      assert.equal(applied!.level, 'INFO');
      assert.equal(applied!.description, 'DlChannelAns: DlChannelReq applied');
      const stop = await net.waitForDownlink(device, 2);
      assert.deepEqual(stop.macCommands, []);
      assert.equal(stop.window, 'rx1');
      const moved = gateway.downlinks[1]!;
      assert.equal(moved.window, 'rx1');
      assert.equal(moved.txpk.freq, 868.5);
      assert.equal(moved.delivered, true);

      // Application data answering a channel 0 uplink: RX1 on 868.5 MHz, taken by the device.
      await net.queueDownlink(device.devEui, 4, bytes(0xd1));
      await send(0, true);
      const data = await net.waitForDownlink(device, 3);
      assert.deepEqual(data.payload, bytes(0xd1));
      assert.equal(data.ack, true);
      assert.equal(data.window, 'rx1');
      assert.equal(gateway.downlinks[2]!.txpk.freq, 868.5);
      assert.equal(gateway.downlinks[2]!.delivered, true);

      // Channel 1 keeps its RX1 on its uplink frequency.
      await send(1, true);
      const other = await net.waitForDownlink(device, 4);
      assert.equal(other.window, 'rx1');
      assert.equal(gateway.downlinks[3]!.txpk.freq, 868.3);
      assert.equal(gateway.downlinks[3]!.delivered, true);

      assert.deepEqual(cidsOf(device), ['DlChannelReq']);
      assert.deepEqual(device.dlChannelFrequencies(), new Map([[0, 868_500_000]]));
      assert.equal(gateway.downlinks.length, 4);
      const problems = (await net.events(device.devEui, 'log')).filter((e) => e.level !== 'INFO');
      assert.deepEqual(problems, []);
    });
  });

  it('sends a Class C downlink at once (imme, rxc) and reports an unacknowledged confirmed one', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const deviceProfileId = await net.createDeviceProfile('valves', {
        confirmedDownlink: { maxAttempts: 2, classCTimeoutSeconds: 1 },
      });
      const device = await net.addAbpDevice('0000000000001501', '1.0.4', 0x26001501, {
        deviceClass: 'C',
        deviceProfileId,
      });
      net.listenClassC(device, gateway);
      // One uplink tells the network which gateway hears the device; the ACK of a confirmed
      // one shows it has been handled.
      await net.uplink(device, { fPort: 1, payload: bytes(1), confirmed: true });
      assert.equal((await net.waitForDownlink(device, 1)).ack, true);
      const fCntUp = device.fCntUp;

      const itemId = await net.queueDownlink(device.devEui, 7, bytes(0xc0, 0x01));
      const downlink = await net.waitForDownlink(device, 2);
      assert.deepEqual(downlink.payload, bytes(0xc0, 0x01));
      assert.equal(downlink.fPort, 7);
      assert.equal(downlink.window, 'rxc');
      const record = gateway.downlinks[1]!;
      assert.equal(record.txpk.imme, true);
      assert.equal(record.txpk.tmst, undefined);
      assert.equal(record.window, 'rxc');
      assert.equal(record.txpk.freq, 869.525);
      assert.equal(record.txpk.datr, 'SF12BW125');
      assert.equal(record.delivered, true);
      assert.equal(device.fCntUp, fCntUp, 'no uplink in between');
      const txAck = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'txack' && e.queueItemId === itemId,
        'txack of the Class C downlink',
      );
      assert.equal(txAck.window, 'CLASS_C');
      assert.equal(txAck.status, 'NONE');

      // Confirmed, never acknowledged (no uplink): sent again after 1 s, reported after 2 s.
      const queuedAt = Date.now();
      const confirmedId = await net.queueDownlink(device.devEui, 8, bytes(0xc1), true);
      const unacked = await waitFor(
        'ack event of the confirmed Class C downlink',
        async () =>
          (await net.events(device.devEui, 'ack')).find((e) => e.queueItemId === confirmedId),
        6000,
      );
      assert.equal(unacked.acknowledged, false);
      assert.ok(Date.now() - queuedAt >= 2000, 'two timeouts of 1 s');
      const copies = device.receivedDownlinks.slice(2);
      assert.equal(copies.length, 2);
      for (const copy of copies) {
        assert.equal(copy.confirmed, true);
        assert.deepEqual(copy.payload, bytes(0xc1));
        assert.equal(copy.window, 'rxc');
      }
      assert.equal(copies[1]!.fCnt, copies[0]!.fCnt + 1, 'sent again with a new FCntDown');
      assert.equal(unacked.fCntDown, copies[1]!.fCnt);
      assert.equal((await net.galet.storage.downlinkQueue.get(confirmedId))?.status, 'failed');
      assert.equal(await net.metric('galet_network_confirmed_downlinks_retried_total'), 1);
      assert.equal(await net.metric('galet_network_confirmed_downlinks_unacked_total'), 1);

      // Acknowledged in time by an uplink: reported acknowledged.
      const ackedId = await net.queueDownlink(device.devEui, 8, bytes(0xc2), true);
      const delivered = await net.waitForDownlink(device, 5);
      assert.deepEqual(delivered.payload, bytes(0xc2));
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      const acked = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'ack' && e.queueItemId === ackedId,
        'ack event of the acknowledged downlink',
      );
      assert.equal(acked.acknowledged, true);
      assert.equal(acked.fCntDown, delivered.fCnt);
    });
  });

  it('times out a confirmed downlink a Class C device received in a Class A window', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const deviceProfileId = await net.createDeviceProfile('valves', {
        confirmedDownlink: { maxAttempts: 2, classCTimeoutSeconds: 2 },
      });
      const device = await net.addAbpDevice('0000000000001551', '1.0.4', 0x26001551, {
        deviceClass: 'C',
        deviceProfileId,
      });
      net.listenClassC(device, gateway);
      await net.uplink(device, { fPort: 1, payload: bytes(1), confirmed: true });
      assert.equal((await net.waitForDownlink(device, 1)).ack, true);

      // Attempt 1 goes at once (Class C) and is lost; an uplink without ACK comes before the
      // 2 s timeout: attempt 2 goes in its RX1 window, lost too. Then the device stays silent.
      net.setDeaf(device, true);
      const itemId = await net.queueDownlink(device.devEui, 8, bytes(0xc3), true);
      await waitFor('Class C attempt', () => gateway.downlinks.length >= 2);
      assert.equal(gateway.downlinks[1]!.window, 'rxc');
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      await waitFor('RX1 attempt', () => gateway.downlinks.length >= 3);
      assert.equal(gateway.downlinks[2]!.window, 'rx1');

      // The Class C timeout applies to the RX1 attempt too: reported, not left waiting for an
      // uplink that may come hours later.
      const unacked = await waitFor(
        'ack event',
        async () => (await net.events(device.devEui, 'ack')).find((e) => e.queueItemId === itemId),
        4000,
      );
      assert.equal(unacked.acknowledged, false);
      assert.equal((await net.galet.storage.downlinkQueue.get(itemId))?.status, 'failed');
      assert.equal(gateway.downlinks.length, 3);

      // The Class C queue is free again.
      net.setDeaf(device, false);
      await net.queueDownlink(device.devEui, 8, bytes(0xc4));
      const next = await net.waitForDownlink(device, 2);
      assert.deepEqual(next.payload, bytes(0xc4));
      assert.equal(next.window, 'rxc');
    });
  });

  it('sends an unacknowledged Class A confirmed downlink maxAttempts times, then reports it', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const device = await net.addAbpDevice('0000000000001601', '1.0.4', 0x26001601);
      const itemId = await net.queueDownlink(device.devEui, 9, bytes(0xa9), true);
      net.setDeaf(device, true);
      // The default profile: 3 attempts, one per uplink (each uplink without ACK says "missed").
      for (let attempt = 1; attempt <= 3; attempt++) {
        await net.uplink(device, { fPort: 1, payload: bytes(attempt) });
        await waitFor(`attempt ${attempt}`, () => gateway.downlinks.length >= attempt);
      }
      await net.uplink(device, { fPort: 1, payload: bytes(4) });
      const unacked = await net.waitForEvent(device.devEui, (e) => e.event === 'ack', 'ack');
      assert.equal(unacked.queueItemId, itemId);
      assert.equal(unacked.acknowledged, false);
      assert.equal(unacked.fCntDown, 2);
      assert.deepEqual(
        gateway.downlinks.map((record) => [record.window, record.delivered]),
        [
          ['rx1', false],
          ['rx1', false],
          ['rx1', false],
        ],
      );
      const txAcks = await net.events(device.devEui, 'txack');
      assert.deepEqual(
        txAcks.map((e) => [e.queueItemId, e.fCntDown]),
        [
          [itemId, 0],
          [itemId, 1],
          [itemId, 2],
        ],
      );
      const item = await net.galet.storage.downlinkQueue.get(itemId);
      assert.equal(item?.status, 'failed');
      assert.equal(item?.attempts, 3);
      const queue = await net.galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
      assert.deepEqual(queue.json.items, []);
      assert.equal(await net.metric('galet_network_confirmed_downlinks_retried_total'), 2);
      assert.equal(await net.metric('galet_network_confirmed_downlinks_unacked_total'), 1);

      // Hearing again: a confirmed uplink gets its ACK alone, the failed item is not sent again.
      net.setDeaf(device, false);
      await net.uplink(device, { fPort: 1, payload: bytes(5), confirmed: true });
      const bareAck = await net.waitForDownlink(device, 1);
      assert.equal(bareAck.ack, true);
      assert.equal(bareAck.fPort, undefined);
      assert.equal(gateway.downlinks.length, 4);

      // Acknowledged: the ACK bit of the next uplink settles it.
      const ackedId = await net.queueDownlink(device.devEui, 9, bytes(0xaa), true);
      await net.uplink(device, { fPort: 1, payload: bytes(6) });
      const confirmed = await net.waitForDownlink(device, 2);
      assert.equal(confirmed.confirmed, true);
      assert.deepEqual(confirmed.payload, bytes(0xaa));
      await net.uplink(device, { fPort: 1, payload: bytes(7) });
      const acked = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'ack' && e.queueItemId === ackedId,
        'ack event',
      );
      assert.equal(acked.acknowledged, true);
      assert.equal(acked.fCntDown, confirmed.fCnt);
      assert.equal((await net.galet.storage.downlinkQueue.get(ackedId))?.status, 'acked');
      assert.equal(await net.metric('galet_network_confirmed_downlinks_acked_total'), 1);
    });
  });

  it('sends in RX2 when RX1 would exceed its sub-band duty cycle, and logs why', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addAbpDevice('0000000000001701', '1.0.4', 0x26001701, {
        simulator: { dataRate: 0, adr: false, channels: CHANNEL_868_9_ONLY },
      });
      // 51 bytes at SF12: about 2.5 s of the 3.6 s per hour 868.7-869.2 MHz allows.
      await net.queueDownlink(device.devEui, 2, filled(51, 0x01));
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      const first = await net.waitForDownlink(device, 1);
      assert.equal(first.window, 'rx1');
      assert.equal(net.gateways[0]!.downlinks[0]!.txpk.freq, 868.9);

      await net.queueDownlink(device.devEui, 2, filled(51, 0x02));
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      const second = await net.waitForDownlink(device, 2);
      assert.equal(second.window, 'rx2');
      assert.deepEqual(second.payload, filled(51, 0x02));
      assert.equal(net.gateways[0]!.downlinks[1]!.txpk.freq, 869.525);
      const [rerouted] = await waitForLogs(net, device.devEui, 'DOWNLINK_REROUTED', 1);
      const gatewayId = net.gateways[0]!.gatewayId;
      assert.equal(rerouted!.level, 'INFO');
      const airtime = sf12Airtime(FRAME_OVERHEAD + 51);
      assert.equal(airtime, '2.793 s');
      const prefix =
        `sent in RX2 through gateway ${gatewayId} because RX1: gateway ${gatewayId} cannot transmit ` +
        `${airtime} on 868.9 MHz: sub-band 868.7-869.2 MHz (0.1 % duty cycle) already has ` +
        `${airtime} of its 3.6 s per hour on air; it fits 59 min `;
      assert.equal(rerouted!.description.slice(0, prefix.length), prefix);
      assert.match(rerouted!.description.slice(prefix.length), /^\d+ s later$/);
      assert.equal(await net.metric('galet_network_downlinks_duty_cycle_refused_total'), 1);

      // The gateway's API record shows the accounting: one frame in each sub-band.
      const shown = await net.galet.request('GET', `/api/v1/gateways/${gatewayId}`);
      assert.equal(shown.status, 200);
      const usage = (
        shown.json.dutyCycle as { subBand: string; usedMs: number; budgetMs: number }[]
      )
        .filter((band) => band.usedMs > 0)
        .map((band) => [band.budgetMs, band.usedMs]);
      // 2,793.472 ms on air each, shown to 0.1 ms.
      assert.deepEqual(usage, [
        [3_600, 2_793.5],
        [360_000, 2_793.5],
      ]);
    });
  });

  it('does not count a frame the gateway refused to transmit against its duty cycle', async () => {
    let refuseNext = true;
    await withNetwork(
      [
        {
          txAckStatus: (pullResp) => {
            if (!refuseNext || pullResp.window !== 'rx1') return undefined;
            refuseNext = false;
            return 'COLLISION_PACKET';
          },
        },
      ],
      async (net) => {
        const gateway = net.gateways[0]!;
        const device = await net.addAbpDevice('0000000000001751', '1.0.4', 0x26001751, {
          simulator: { dataRate: 0, adr: false, channels: CHANNEL_868_9_ONLY },
        });
        // 2.8 s in RX1 on 868.9 MHz, refused by the gateway: sent in RX2 instead.
        await net.queueDownlink(device.devEui, 2, filled(51, 0x01));
        await net.uplink(device, { fPort: 1, payload: bytes(1) });
        assert.equal((await net.waitForDownlink(device, 1)).window, 'rx2');
        assert.deepEqual(
          gateway.downlinks.map((record) => [record.window, record.txAckStatus]),
          [
            ['rx1', 'COLLISION_PACKET'],
            ['rx2', 'NONE'],
          ],
        );
        // Nothing went on air on 868.9 MHz: the next 2.8 s fit its 3.6 s.
        await net.queueDownlink(device.devEui, 2, filled(51, 0x02));
        await net.uplink(device, { fPort: 1, payload: bytes(2) });
        const second = await net.waitForDownlink(device, 2);
        assert.equal(second.window, 'rx1');
        assert.equal(gateway.downlinks[2]!.txpk.freq, 868.9);
        assert.deepEqual(await logs(net, device.devEui, 'DOWNLINK_REROUTED'), []);
        assert.equal(await net.metric('galet_network_downlinks_duty_cycle_refused_total'), 0);
      },
    );
  });

  it('keeps a downlink queued when neither window has duty cycle left, and logs why', async () => {
    await withNetwork([{}], async (net) => {
      // RX2 moved into the same 0.1 % sub-band as the device's only channel.
      const deviceProfileId = await net.createDeviceProfile('sub-band', {
        rx2FrequencyHz: 869_100_000,
        devStatusIntervalSeconds: 0,
      });
      const device = await net.addAbpDevice('0000000000001801', '1.0.4', 0x26001801, {
        deviceProfileId,
        simulator: { dataRate: 0, adr: false, channels: CHANNEL_868_9_ONLY },
      });
      // RXParamSetupReq, then the downlink that stops its answer's repeats: about 2 s of 3.6 s.
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      const setup = await net.waitForDownlink(device, 1);
      assert.deepEqual(setup.macCommands, [
        { cid: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 0, frequencyHz: 869_100_000 },
      ]);
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      await net.waitForDownlink(device, 2);

      const itemId = await net.queueDownlink(device.devEui, 2, filled(51, 0x03));
      await net.uplink(device, { fPort: 1, payload: bytes(3) });
      const [kept] = await waitForLogs(net, device.devEui, 'DUTY_CYCLE', 1);
      assert.equal(kept!.level, 'WARNING');
      // Used: the RXParamSetupReq frame (12 + 5 bytes) and the empty one (12 bytes).
      const usedMs =
        dataRateTimeOnAirMs(EU868.dataRate(0), 17, 'downlink') +
        dataRateTimeOnAirMs(EU868.dataRate(0), 12, 'downlink');
      const used = `${Number((usedMs / 1000).toFixed(3))} s`;
      const refusal = (frequency: string) =>
        `gateway ${net.gateways[0]!.gatewayId} cannot transmit ${sf12Airtime(FRAME_OVERHEAD + 51)} on ${frequency}: ` +
        `sub-band 868.7-869.2 MHz (0.1 % duty cycle) already has ${used} of its 3.6 s per hour ` +
        'on air; it fits 59 min ';
      const parts = /^downlink kept for later: RX1: (.*); RX2: (.*)$/.exec(kept!.description);
      assert.ok(parts, kept!.description);
      for (const [part, frequency] of [
        [parts[1]!, '868.9 MHz'],
        [parts[2]!, '869.1 MHz'],
      ] as const) {
        assert.equal(part.slice(0, refusal(frequency).length), refusal(frequency));
        assert.match(part.slice(refusal(frequency).length), /^\d+ s later$/);
      }
      assert.equal(device.receivedDownlinks.length, 2);
      assert.equal(net.gateways[0]!.downlinks.length, 2);
      const queue = await net.galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
      assert.equal(queue.json.items.length, 1);
      assert.equal(queue.json.items[0].id, itemId);
      assert.match(queue.json.items[0].lastError, /duty cycle/);
      assert.equal(await net.metric('galet_network_downlinks_duty_cycle_refused_total'), 2);
    });
  });

  it('sends a MAC request again when the 1.1 downlink that carried it with application data is lost', async () => {
    await withNetwork([{}], async (net) => {
      const deviceProfileId = await net.createDeviceProfile('meters', {
        devStatusIntervalSeconds: 0,
      });
      const device = await net.addAbpDevice('0000000000001951', '1.1', 0x26001951, {
        deviceProfileId,
        simulator: { adr: false },
      });
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      assert.deepEqual((await net.waitForDownlink(device, 1)).macCommands, [
        { cid: 'ResetConf', minorVersion: 1 },
      ]);
      const patched = await net.galet.request(
        'PATCH',
        `/api/v1/device-profiles/${deviceProfileId}`,
        { maxDutyCycle: 3 },
      );
      assert.equal(patched.status, 200);

      // DutyCycleReq rides with the application payload (AFCntDown 0): lost.
      await net.queueDownlink(device.devEui, 4, bytes(0x44));
      net.setDeaf(device, true);
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      await waitFor('the lost downlink', () => net.gateways[0]!.downlinks.length >= 2);
      net.setDeaf(device, false);
      assert.equal(device.maxDutyCycle, 0);

      // The next uplink carries no answer: one downlink later, the request is due again.
      await net.uplink(device, { fPort: 1, payload: bytes(3) });
      const again = await net.waitForDownlink(device, 2);
      assert.deepEqual(again.macCommands, [{ cid: 'DutyCycleReq', maxDutyCycle: 3 }]);
      assert.equal(device.maxDutyCycle, 3);
      await net.uplink(device, { fPort: 1, payload: bytes(4) });
      const [applied] = await waitForLogs(net, device.devEui, 'MAC_ANSWER', 1);
      assert.equal(applied!.description, 'DutyCycleAns: DutyCycleReq applied');
    });
  });

  it('switches a 1.1 device to Class C on DeviceModeInd, then reaches it without an uplink', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const device = await net.addAbpDevice('0000000000001901', '1.1', 0x26001901);
      net.listenClassC(device, gateway);
      device.requestDeviceClass('C');
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      const conf = await net.waitForDownlink(device, 1);
      assert.deepEqual(conf.macCommands, [
        { cid: 'ResetConf', minorVersion: 1 },
        { cid: 'DeviceModeConf', class: 'C' },
      ]);
      assert.equal(device.deviceClass, 'C');
      const [switched] = await waitForLogs(net, device.devEui, 'MAC_ANSWER', 1);
      assert.equal(switched!.description, 'DeviceModeInd: class A -> C');

      const fCntUp = device.fCntUp;
      const itemId = await net.queueDownlink(device.devEui, 12, bytes(0xcc));
      const downlink = await net.waitForDownlink(device, 2);
      assert.deepEqual(downlink.payload, bytes(0xcc));
      assert.equal(downlink.window, 'rxc');
      assert.equal(device.fCntUp, fCntUp);
      const record = gateway.downlinks[1]!;
      assert.equal(record.txpk.imme, true);
      assert.equal(record.window, 'rxc');
      const txAck = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'txack' && e.queueItemId === itemId,
        'txack',
      );
      assert.equal(txAck.window, 'CLASS_C');
    });
  });

  it('reaches a Class C device after a restart, before its next uplink (gateway from its last up)', async () => {
    await withNetwork([{}, {}], async (net) => {
      const device = await net.addAbpDevice('0000000000001603', '1.0.4', 0x26001603, {
        deviceClass: 'C',
      });
      // Heard best by the second gateway (higher SNR) in its last uplink before the restart.
      await net.uplink(device, { fPort: 1, payload: bytes(1) }, [
        { gateway: net.gateways[0]!, link: { rssi: -110, snr: -5 } },
        { gateway: net.gateways[1]!, link: { rssi: -80, snr: 8 } },
      ]);
      await net.restart();
      net.listenClassC(device, net.gateways[1]!);
      const fCntUp = device.fCntUp;
      await net.queueDownlink(device.devEui, 9, bytes(0x11, 0x22));
      const downlink = await net.waitForDownlink(device, 1);
      assert.deepEqual(downlink.payload, bytes(0x11, 0x22));
      assert.equal(downlink.window, 'rxc');
      assert.equal(net.gateways[1]!.downlinks.length, 1);
      assert.equal(net.gateways[0]!.downlinks.length, 0);
      assert.equal(device.fCntUp, fCntUp, 'no uplink since the restart');
    });
  });

  it('follows a class change made through the API (A to C): the queue goes out at once', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addAbpDevice('0000000000001602', '1.0.4', 0x26001602);
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      await net.queueDownlink(device.devEui, 3, bytes(0x33));
      // Class A: nothing goes until the device sends again.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(net.gateways[0]!.downlinks.length, 0);

      device.setDeviceClass('C');
      net.listenClassC(device, net.gateways[0]!);
      const patched = await net.galet.request('PATCH', `/api/v1/devices/${device.devEui}`, {
        deviceClass: 'C',
      });
      assert.equal(patched.status, 200);
      assert.equal(patched.json.deviceClass, 'C');
      const downlink = await net.waitForDownlink(device, 1);
      assert.deepEqual(downlink.payload, bytes(0x33));
      assert.equal(downlink.window, 'rxc');
      const invalid = await net.galet.request('PATCH', `/api/v1/devices/${device.devEui}`, {
        deviceClass: 'B',
      });
      assert.equal(invalid.status, 400);
    });
  });
});
