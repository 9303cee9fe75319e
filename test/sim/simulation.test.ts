/**
 * A whole simulation against a minimal network server written here with the protocol core and
 * the real Semtech UDP backend: it answers JoinRequests in RX1 (1.0, and 1.1 with OptNeg),
 * verifies every data uplink's MIC and acknowledges confirmed uplinks in RX1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SemtechUdpBackend } from '../../src/gateway/semtech-udp/server.js';
import type { GatewayUplink } from '../../src/gateway/types.js';
import {
  buildDataFrame,
  buildJoinAccept,
  bytesToHex,
  type DataFrame,
  type DataSessionKeys,
  decodePhyPayloadWithMicInput,
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
  EU868,
  joinRequestMic,
  reconstructFCnt,
  verifyDataMic,
} from '../../src/lorawan/index.js';
import {
  runSimulation,
  Simulation,
  type SimulationDeviceConfig,
  type SimulationEvent,
} from '../../src/sim/simulation.js';

const APP_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x2b + i);
const NWK_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x7e - i);
const JOIN_EUI = '70b3d57ed0000000';
const NET_ID = 0x13;

interface Session {
  keys: DataSessionKeys;
  lastFCntUp: number | undefined;
  nFCntDown: number;
}

/** Just enough of a network server to exercise the simulator end to end. */
class MiniNetworkServer {
  readonly seen = new Set<string>();
  readonly sessions = new Map<number, Session>();
  readonly #backend: SemtechUdpBackend;
  readonly #devices: Map<string, SimulationDeviceConfig>;
  readonly #dropJoins: Map<string, number>;
  #nextDevAddr = 0x26000001;
  #joinNonce = 1;
  #downlinkId = 1;
  micFailures = 0;
  uplinks = 0;

  constructor(
    backend: SemtechUdpBackend,
    devices: readonly SimulationDeviceConfig[],
    dropJoins: Record<string, number> = {},
  ) {
    this.#backend = backend;
    this.#devices = new Map(devices.map((device) => [device.devEui, device]));
    this.#dropJoins = new Map(Object.entries(dropJoins));
    for (const device of devices) {
      const { activation } = device;
      if (activation.mode === 'abp') {
        const keys: DataSessionKeys =
          'nwkSKey' in activation.keys
            ? { lorawan: '1.0', ...activation.keys }
            : { lorawan: '1.1', ...activation.keys };
        this.sessions.set(activation.devAddr, { keys, lastFCntUp: undefined, nFCntDown: 0 });
      }
    }
    backend.onUplink((uplink) => this.#onUplink(uplink));
  }

  #onUplink(uplink: GatewayUplink): void {
    // The first copy of a frame is answered; the other gateways' copies are duplicates.
    const key = bytesToHex(uplink.phyPayload);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.uplinks++;
    const { payload, micInput } = decodePhyPayloadWithMicInput(uplink.phyPayload);
    if (payload.mType === 'JoinRequest') {
      this.#onJoinRequest(uplink, payload.devEui, payload.devNonce, payload.mic, micInput);
      return;
    }
    if (payload.mType === 'UnconfirmedDataUp' || payload.mType === 'ConfirmedDataUp') {
      this.#onDataUp(uplink, payload, micInput);
    }
  }

  #onJoinRequest(
    uplink: GatewayUplink,
    devEui: string,
    devNonce: number,
    mic: Uint8Array,
    micInput: Uint8Array,
  ): void {
    const device = this.#devices.get(devEui);
    if (device === undefined || device.activation.mode !== 'otaa') return;
    const drops = this.#dropJoins.get(devEui) ?? 0;
    if (drops > 0) {
      this.#dropJoins.set(devEui, drops - 1);
      return;
    }
    const is11 = device.lorawanVersion === '1.1';
    const rootKey = is11 ? NWK_KEY : APP_KEY;
    if (bytesToHex(joinRequestMic(rootKey, micInput)) !== bytesToHex(mic)) {
      this.micFailures++;
      return;
    }
    const joinNonce = this.#joinNonce++;
    const devAddr = this.#nextDevAddr++;
    const fields = {
      joinNonce,
      netId: NET_ID,
      devAddr,
      dlSettings: { optNeg: is11, rx1DrOffset: 0, rx2Dr: 0 },
      rxDelay: 1,
      cfList: undefined,
    };
    const accept = is11
      ? buildJoinAccept(
          fields,
          {
            optNeg: true,
            jsIntKey: deriveJoinServerKeys(NWK_KEY, devEui).jsIntKey,
            joinRequestType: 'join',
            joinEui: JOIN_EUI,
            devNonce,
          },
          NWK_KEY,
        )
      : buildJoinAccept(fields, { optNeg: false, key: APP_KEY }, APP_KEY);
    const keys: DataSessionKeys = is11
      ? { lorawan: '1.1', ...deriveSessionKeys11(NWK_KEY, APP_KEY, joinNonce, JOIN_EUI, devNonce) }
      : { lorawan: '1.0', ...deriveSessionKeys10(APP_KEY, joinNonce, NET_ID, devNonce) };
    this.sessions.set(devAddr, { keys, lastFCntUp: undefined, nFCntDown: 0 });
    this.#answer(uplink, accept, 5_000_000);
  }

  #onDataUp(uplink: GatewayUplink, frame: DataFrame, micInput: Uint8Array): void {
    const session = this.sessions.get(frame.devAddr);
    if (session === undefined) return;
    const fCnt = reconstructFCnt(frame.fCnt, session.lastFCntUp)!;
    const modulation = uplink.txInfo.modulation;
    const txDr =
      'lora' in modulation
        ? EU868.dataRateFromRx(
            `SF${modulation.lora.spreadingFactor}BW${modulation.lora.bandwidthHz / 1000}`,
          )
        : 7;
    const txCh = EU868.defaultChannels.findIndex(
      (c) => c.frequencyHz === uplink.txInfo.frequencyHz,
    );
    if (!verifyDataMic(frame, micInput, session.keys, fCnt, { txDr, txCh })) {
      this.micFailures++;
      return;
    }
    session.lastFCntUp = fCnt;
    if (frame.mType !== 'ConfirmedDataUp') return;
    const ack = buildDataFrame(
      {
        mType: 'UnconfirmedDataDown',
        devAddr: frame.devAddr,
        fCtrl: { adr: false, adrAckReq: false, ack: true, classB: false, fPending: false },
        fCnt: session.nFCntDown++,
      },
      session.keys,
      { confFCnt: fCnt },
    );
    this.#answer(uplink, ack, 1_000_000);
  }

  #answer(uplink: GatewayUplink, phyPayload: Uint8Array, delayUs: number): void {
    const { modulation } = uplink.txInfo;
    void this.#backend.sendDownlink({
      gatewayId: uplink.rxInfo.gatewayId,
      downlinkId: this.#downlinkId++,
      phyPayload,
      frequencyHz: uplink.txInfo.frequencyHz,
      powerDbm: 14,
      modulation:
        'lora' in modulation
          ? { lora: { ...modulation.lora, polarizationInversion: true } }
          : modulation,
      timing: { kind: 'counter', timestampUs: (uplink.rxInfo.timestampUs + delayUs) % 2 ** 32 },
    });
  }
}

function otaaDevice(devEui: string, lorawanVersion: SimulationDeviceConfig['lorawanVersion']) {
  return {
    devEui,
    lorawanVersion,
    activation: {
      mode: 'otaa' as const,
      joinEui: JOIN_EUI,
      appKey: APP_KEY,
      ...(lorawanVersion === '1.1' ? { nwkKey: NWK_KEY } : {}),
    },
  } satisfies SimulationDeviceConfig;
}

const DEVICES: SimulationDeviceConfig[] = [
  otaaDevice('0000000000000a01', '1.0.2'),
  otaaDevice('0000000000000a02', '1.0.3'),
  otaaDevice('0000000000000a03', '1.0.4'),
  otaaDevice('0000000000000a04', '1.1'),
  {
    devEui: '0000000000000a05',
    lorawanVersion: '1.0.3',
    activation: {
      mode: 'abp',
      devAddr: 0x26ffff05,
      keys: { nwkSKey: NWK_KEY, appSKey: APP_KEY },
    },
    payload: 'waterMeter',
  },
];

describe('runSimulation against a minimal network server', () => {
  it('joins every OTAA device, sends every uplink and receives every ACK in RX1', async () => {
    const backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
    const server = new MiniNetworkServer(backend, DEVICES, { '0000000000000a02': 1 });
    const events: SimulationEvent[] = [];
    try {
      const stats = await runSimulation({
        server: { host: '127.0.0.1', port: backend.address().port },
        gateways: 3,
        devices: DEVICES,
        uplinkIntervalMs: 120,
        uplinkCount: 4,
        settleMs: 300,
        confirmedRatio: 0.5,
        seed: 7,
        joinRetry: { timeoutMs: 300, firstDelayMs: 50 },
        gatewayOptions: { pullIntervalMs: 1000, statIntervalMs: 0 },
        onEvent: (event) => events.push(event),
      });
      assert.equal(server.micFailures, 0);
      assert.equal(stats.joins, 4);
      // One JoinRequest was dropped by the server: the device tried again.
      assert.equal(stats.joinRequests, 5);
      assert.equal(stats.uplinksSent, 5 * 4);
      assert.ok(
        stats.confirmedUplinks > 0 && stats.confirmedUplinks < 20,
        `${stats.confirmedUplinks}`,
      );
      assert.equal(stats.acksReceived, stats.confirmedUplinks);
      assert.equal(stats.downlinksReceived, stats.confirmedUplinks);
      assert.equal(stats.downlinksBadMic, 0);
      assert.equal(stats.downlinksRejected, 0);
      assert.equal(stats.timingErrors, 0);
      assert.equal(stats.txAckErrors, 0);
      assert.equal(stats.errors, 0);
      // Each frame was heard by two of the three gateways.
      assert.equal(backend.counters().uplinks, 2 * (stats.uplinksSent + stats.joinRequests));
      assert.equal(server.uplinks, stats.uplinksSent + stats.joinRequests);
      const uplinkEvents = events.filter((e) => e.type === 'uplink');
      assert.ok(uplinkEvents.every((e) => e.type === 'uplink' && e.gatewayIds.length === 2));
      assert.equal(events.at(-1)?.type, 'finished');
      assert.equal(events.filter((e) => e.type === 'joined').length, 4);
    } finally {
      await backend.close();
    }
  });

  it('stops on demand: timers cleared, sockets closed, `finished` resolved', async () => {
    const backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
    new MiniNetworkServer(backend, DEVICES);
    try {
      const simulation = await Simulation.start({
        server: { host: '127.0.0.1', port: backend.address().port },
        gateways: 1,
        devices: DEVICES,
        uplinkIntervalMs: 50,
        durationMs: 60_000,
        seed: 3,
        gatewayOptions: { statIntervalMs: 100 },
      });
      const deadline = Date.now() + 3000;
      while (simulation.stats().uplinksSent < 10 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const stats = await simulation.stop();
      assert.ok(stats.uplinksSent >= 10);
      assert.deepEqual(await simulation.finished, stats);
      await new Promise((resolve) => setTimeout(resolve, 120));
      assert.equal(simulation.stats().uplinksSent, stats.uplinksSent);
    } finally {
      await backend.close();
    }
  });

  it('is reproducible: the same seed draws the same frames', async () => {
    const frames = async () => {
      const backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
      const abp = DEVICES.filter((device) => device.activation.mode === 'abp');
      const payloads: string[] = [];
      backend.onUplink((uplink) => payloads.push(bytesToHex(uplink.phyPayload)));
      try {
        await runSimulation({
          server: { host: '127.0.0.1', port: backend.address().port },
          gateways: 1,
          devices: abp,
          uplinkIntervalMs: 30,
          uplinkCount: 5,
          settleMs: 50,
          seed: 11,
          gatewayOptions: { statIntervalMs: 0 },
        });
      } finally {
        await backend.close();
      }
      return payloads;
    };
    const first = await frames();
    assert.equal(first.length, 5);
    assert.deepEqual(await frames(), first);
  });
});

describe('Simulation with class C devices', () => {
  it('registers its devices with their gateways: an immediate downlink reaches a class C device', async () => {
    const backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
    const devAddr = 0x26ffffc1;
    const keys = { nwkSKey: NWK_KEY, appSKey: APP_KEY };
    const classC: SimulationDeviceConfig = {
      devEui: '0000000000000ac1',
      lorawanVersion: '1.0.4',
      activation: { mode: 'abp', devAddr, keys },
      deviceClass: 'C',
    };
    const events: SimulationEvent[] = [];
    try {
      const simulation = await Simulation.start({
        server: { host: '127.0.0.1', port: backend.address().port },
        gateways: 1,
        devices: [classC],
        uplinkIntervalMs: 60_000,
        durationMs: 60_000,
        seed: 5,
        gatewayOptions: { statIntervalMs: 0 },
        onEvent: (event) => events.push(event),
      });
      try {
        const gateway = simulation.gateways[0]!;
        const downlink = buildDataFrame(
          {
            mType: 'UnconfirmedDataDown',
            devAddr,
            fCtrl: { adr: false, adrAckReq: false, ack: false, classB: false, fPending: false },
            fCnt: 0,
            fPort: 9,
            frmPayload: Uint8Array.of(0x42),
          },
          { lorawan: '1.0', ...keys },
        );
        await backend.sendDownlink({
          gatewayId: gateway.gatewayId,
          downlinkId: 1,
          phyPayload: downlink,
          frequencyHz: 869_525_000,
          powerDbm: 27,
          modulation: { lora: { spreadingFactor: 12, bandwidthHz: 125_000, codeRate: 'CR_4_5' } },
          timing: { kind: 'immediately' },
        });
        const device = simulation.devices[0]!;
        const deadline = Date.now() + 2000;
        while (device.receivedDownlinks.length === 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        assert.deepEqual(
          device.receivedDownlinks.map((d) => [d.window, d.fPort, d.payload]),
          [['rxc', 9, Uint8Array.of(0x42)]],
        );
        const stats = simulation.stats();
        assert.equal(stats.downlinksReceived, 1);
        assert.equal(stats.timingErrors, 0);
        assert.ok(events.some((e) => e.type === 'downlink' && e.window === 'rxc'));
      } finally {
        await simulation.stop();
      }
    } finally {
      await backend.close();
    }
  });
});
