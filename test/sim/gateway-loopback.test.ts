/**
 * The simulated gateway against the real Semtech UDP backend, over UDP on 127.0.0.1: uplinks
 * come out of the backend with the gateway's metadata, downlinks go back through PULL_RESP to
 * the device whose receive window they fit, and TX_ACKs come back mapped to the downlink.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SemtechUdpBackend } from '../../src/gateway/semtech-udp/server.js';
import type {
  GatewayDownlink,
  GatewayStats,
  GatewayTxAck,
  GatewayUplink,
  TxAckStatus,
} from '../../src/gateway/types.js';
import {
  buildDataFrame,
  buildJoinAccept,
  type DataSessionKeys,
  decodePhyPayload,
  deriveSessionKeys10,
  type JoinRequest,
} from '../../src/lorawan/index.js';
import { type ReceiveWindow, SimulatedDevice } from '../../src/sim/device.js';
import { type DownlinkDelivery, SimulatedGateway } from '../../src/sim/gateway.js';
import { createRandom } from '../../src/sim/random.js';

const GATEWAY_ID = 'b827ebfffe000001';
const DEV_ADDR = 0x260b1234;
const NWK_S_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
const APP_S_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);
const APP_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x50 + i);
const KEYS: DataSessionKeys = { lorawan: '1.0', nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY };
const LOCATION = { latitude: 47.996, longitude: -4.102, altitude: 30 };
/** Near the end of the 32-bit counter, so that RX1 and RX2 times wrap around. */
const COUNTER_START_US = 4_294_000_000;

/** Values an event source emits, awaited one at a time. */
class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];

  push = (item: T): void => {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  };

  next(timeoutMs = 2000): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(done), 1);
        reject(new Error(`nothing within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      this.#waiters.push(done);
    });
  }

  get size(): number {
    return this.#items.length;
  }
}

function abpDevice(): SimulatedDevice {
  return new SimulatedDevice({
    devEui: '0004a30b00aa0001',
    lorawanVersion: '1.0.3',
    activation: {
      mode: 'abp',
      devAddr: DEV_ADDR,
      keys: { nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY },
    },
    random: createRandom(11),
  });
}

function deliverTo(device: SimulatedDevice): DownlinkDelivery {
  return (phyPayload, window: ReceiveWindow, link) =>
    device.receive(phyPayload, { window: window.name, snr: link.snr }).status !== 'ignored';
}

function downlinkFrame(fCnt: number, payload: number[]): Uint8Array {
  return buildDataFrame(
    {
      mType: 'UnconfirmedDataDown',
      devAddr: DEV_ADDR,
      fCtrl: { adr: false, adrAckReq: false, ack: true, classB: false, fPending: false },
      fCnt,
      fPort: 5,
      frmPayload: Uint8Array.from(payload),
    },
    KEYS,
  );
}

const SF7 = { lora: { spreadingFactor: 7, bandwidthHz: 125_000, codeRate: 'CR_4_5' } };
const SF12 = { lora: { spreadingFactor: 12, bandwidthHz: 125_000, codeRate: 'CR_4_5' } };

describe('SimulatedGateway <-> SemtechUdpBackend loopback', () => {
  const clock = { ms: 0 };
  let backend: SemtechUdpBackend;
  let gateway: SimulatedGateway;
  const uplinks = new Inbox<GatewayUplink>();
  const stats = new Inbox<GatewayStats>();
  const txAcks = new Inbox<GatewayTxAck>();
  let refuseNext: TxAckStatus | undefined;

  before(async () => {
    backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
    backend.onUplink(uplinks.push);
    backend.onStats(stats.push);
    backend.onTxAck(txAcks.push);
    gateway = await SimulatedGateway.start({
      gatewayId: GATEWAY_ID,
      server: { host: '127.0.0.1', port: backend.address().port },
      pullIntervalMs: 60_000,
      statIntervalMs: 0,
      monotonicMs: () => clock.ms,
      counterStartUs: COUNTER_START_US,
      location: LOCATION,
      txAckStatus: () => {
        const status = refuseNext;
        refuseNext = undefined;
        return status;
      },
    });
  });

  after(async () => {
    await gateway.close();
    await backend.close();
  });

  async function sendDownlink(downlink: Omit<GatewayDownlink, 'gatewayId' | 'powerDbm'>) {
    assert.equal(
      await backend.sendDownlink({ gatewayId: GATEWAY_ID, powerDbm: 14, ...downlink }),
      true,
    );
    return txAcks.next();
  }

  it('registers its downlink path with a PULL_DATA', async () => {
    assert.equal(await gateway.ready(), true);
    assert.ok(gateway.counts().pullAcks >= 1);
  });

  it('forwards an uplink that the backend emits with the gateway metadata', async () => {
    const device = abpDevice();
    const transmission = device.uplink({ fPort: 10, payload: new Uint8Array([1, 2, 3]) });
    const tmst = gateway.forwardUplink(transmission, { rssi: -87.4, snr: 6.54 });
    assert.equal(tmst, COUNTER_START_US);
    const uplink = await uplinks.next();
    assert.deepEqual(uplink.phyPayload, transmission.phyPayload);
    assert.deepEqual(uplink.txInfo, {
      frequencyHz: transmission.frequencyHz,
      modulation: SF7,
    });
    assert.equal(uplink.rxInfo.gatewayId, GATEWAY_ID);
    assert.equal(uplink.rxInfo.timestampUs, tmst);
    assert.equal(uplink.rxInfo.rssi, -87);
    assert.equal(uplink.rxInfo.snr, 6.5);
    assert.equal(uplink.rxInfo.channel, transmission.channel);
    assert.equal(uplink.rxInfo.crcStatus, 'ok');
    assert.ok(
      uplink.rxInfo.gwTime !== undefined && Number.isFinite(Date.parse(uplink.rxInfo.gwTime)),
    );
  });

  it('delivers an RX1 downlink to the device and acknowledges it with TX_ACK NONE', async () => {
    const device = abpDevice();
    device.uplink();
    const transmission = device.uplink({
      fPort: 10,
      payload: new Uint8Array([4]),
      confirmed: true,
    });
    const tmst = gateway.forwardUplink(transmission, { rssi: -100, snr: 2 }, deliverTo(device));
    const uplink = await uplinks.next();
    const ack = await sendDownlink({
      downlinkId: 77,
      phyPayload: downlinkFrame(0, [0xca, 0xfe]),
      frequencyHz: uplink.txInfo.frequencyHz,
      modulation: SF7,
      timing: { kind: 'counter', timestampUs: (tmst + 1_000_000) % 2 ** 32 },
    });
    assert.deepEqual(ack, { gatewayId: GATEWAY_ID, downlinkId: 77, status: 'NONE' });
    const record = gateway.downlinks.at(-1)!;
    assert.equal(record.window, 'rx1');
    assert.equal(record.offsetUs, 1_000_000);
    assert.equal(record.leadUs, 1_000_000);
    assert.equal(record.arrivedAfterUplinkUs, 0);
    assert.equal(record.devEui, device.devEui);
    assert.equal(record.delivered, true);
    assert.equal(record.txpk.tmst, 32_704);
    assert.deepEqual(device.receivedDownlinks, [
      {
        confirmed: false,
        fCnt: 0,
        fPort: 5,
        payload: new Uint8Array([0xca, 0xfe]),
        ack: true,
        fPending: false,
        macCommands: [],
        window: 'rx1',
      },
    ]);
    assert.equal(device.awaitingAck, false);
  });

  it('reports a refused RX1 as TOO_LATE, then delivers the RX2 retry', async () => {
    const device = abpDevice();
    const transmission = device.uplink({ confirmed: true });
    const tmst = gateway.forwardUplink(transmission, { rssi: -100, snr: 2 }, deliverTo(device));
    const uplink = await uplinks.next();
    refuseNext = 'TOO_LATE';
    const refused = await sendDownlink({
      downlinkId: 78,
      phyPayload: downlinkFrame(0, [1]),
      frequencyHz: uplink.txInfo.frequencyHz,
      modulation: SF7,
      timing: { kind: 'counter', timestampUs: (tmst + 1_000_000) % 2 ** 32 },
    });
    assert.equal(refused.status, 'TOO_LATE');
    assert.equal(device.receivedDownlinks.length, 0);
    const rx2 = await sendDownlink({
      downlinkId: 79,
      phyPayload: downlinkFrame(0, [1]),
      frequencyHz: 869_525_000,
      modulation: SF12,
      timing: { kind: 'counter', timestampUs: (tmst + 2_000_000) % 2 ** 32 },
    });
    assert.equal(rx2.status, 'NONE');
    assert.equal(gateway.downlinks.at(-1)!.window, 'rx2');
    assert.equal(device.receivedDownlinks[0]?.window, 'rx2');
  });

  it('answers TOO_LATE by itself when the PULL_RESP comes after its transmit time', async () => {
    const device = abpDevice();
    const tmst = gateway.forwardUplink(device.uplink(), { rssi: -90, snr: 5 }, deliverTo(device));
    const uplink = await uplinks.next();
    clock.ms += 1_500;
    try {
      const ack = await sendDownlink({
        downlinkId: 80,
        phyPayload: downlinkFrame(0, [1]),
        frequencyHz: uplink.txInfo.frequencyHz,
        modulation: SF7,
        timing: { kind: 'counter', timestampUs: (tmst + 1_000_000) % 2 ** 32 },
      });
      assert.equal(ack.status, 'TOO_LATE');
      assert.equal(gateway.downlinks.at(-1)!.leadUs, -500_000);
      assert.equal(device.receivedDownlinks.length, 0);
    } finally {
      clock.ms -= 1_500;
    }
  });

  it('transmits a downlink that fits no window, which no device hears', async () => {
    const device = abpDevice();
    const tmst = gateway.forwardUplink(device.uplink(), { rssi: -90, snr: 5 }, deliverTo(device));
    await uplinks.next();
    const ack = await sendDownlink({
      downlinkId: 81,
      phyPayload: downlinkFrame(0, [1]),
      frequencyHz: 867_100_000,
      modulation: SF7,
      timing: { kind: 'counter', timestampUs: (tmst + 1_000_000) % 2 ** 32 },
    });
    assert.equal(ack.status, 'NONE');
    const record = gateway.downlinks.at(-1)!;
    assert.equal(record.window, undefined);
    assert.equal(record.delivered, false);
    assert.equal(device.receivedDownlinks.length, 0);
  });

  it('joins an OTAA device through the JOIN_ACCEPT_DELAY1 window', async () => {
    const device = new SimulatedDevice({
      devEui: '0004a30b00aa0002',
      lorawanVersion: '1.0.4',
      activation: { mode: 'otaa', joinEui: '0000000000000000', appKey: APP_KEY },
      random: createRandom(12),
    });
    const tmst = gateway.forwardUplink(
      device.joinRequest(),
      { rssi: -95, snr: 3 },
      deliverTo(device),
    );
    const uplink = await uplinks.next();
    const request = decodePhyPayload(uplink.phyPayload) as JoinRequest;
    const accept = buildJoinAccept(
      {
        joinNonce: 1,
        netId: 0x13,
        devAddr: DEV_ADDR + 1,
        dlSettings: { optNeg: false, rx1DrOffset: 0, rx2Dr: 0 },
        rxDelay: 1,
        cfList: undefined,
      },
      { optNeg: false, key: APP_KEY },
      APP_KEY,
    );
    const ack = await sendDownlink({
      downlinkId: 82,
      phyPayload: accept,
      frequencyHz: uplink.txInfo.frequencyHz,
      modulation: SF7,
      timing: { kind: 'counter', timestampUs: (tmst + 5_000_000) % 2 ** 32 },
    });
    assert.equal(ack.status, 'NONE');
    assert.equal(gateway.downlinks.at(-1)!.offsetUs, 5_000_000);
    assert.equal(device.activated, true);
    assert.equal(device.devAddr, DEV_ADDR + 1);
    assert.deepEqual(device.sessionKeys(), deriveSessionKeys10(APP_KEY, 1, 0x13, request.devNonce));
  });

  it('reports its status with a stat the backend turns into gateway stats', async () => {
    gateway.sendStat();
    const reported = await stats.next();
    assert.equal(reported.gatewayId, GATEWAY_ID);
    assert.deepEqual(reported.location, LOCATION);
    assert.equal(reported.rxReceived, gateway.counts().rxReceived);
    assert.ok(reported.txEmitted >= 3);
    assert.equal(reported.ackRatio, 1);
  });
});

it('a protocol-1 gateway gets PULL_RESP in version 1 and sends no TX_ACK', async () => {
  const backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
  const gateway = await SimulatedGateway.start({
    gatewayId: 'b827ebfffe000002',
    server: { host: '127.0.0.1', port: backend.address().port },
    protocolVersion: 1,
    statIntervalMs: 0,
  });
  try {
    const txAcks = new Inbox<GatewayTxAck>();
    backend.onTxAck(txAcks.push);
    assert.equal(await gateway.ready(), true);
    const device = abpDevice();
    const transmission = device.uplink();
    const tmst = gateway.forwardUplink(transmission, { rssi: -90, snr: 5 });
    assert.equal(
      await backend.sendDownlink({
        gatewayId: 'b827ebfffe000002',
        downlinkId: 1,
        phyPayload: downlinkFrame(0, [1]),
        frequencyHz: transmission.frequencyHz,
        powerDbm: 14,
        modulation: SF7,
        timing: { kind: 'counter', timestampUs: (tmst + 1_000_000) % 2 ** 32 },
      }),
      true,
    );
    const deadline = Date.now() + 2000;
    while (gateway.downlinks.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(gateway.downlinks.length, 1);
    assert.equal(gateway.downlinks[0]!.window, 'rx1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(txAcks.size, 0);
    assert.equal(backend.counters().packetsReceived.TX_ACK, 0);
  } finally {
    await gateway.close();
    await backend.close();
  }
});
