/**
 * Class C in the simulator: a class C device listens on RX2 between its transmissions, a 1.1
 * device switches class with DeviceModeInd/DeviceModeConf, and a simulated gateway hands the
 * downlinks that fit no class A window (`imme`, or a time that is no window) to the class C
 * devices registered with it — over real UDP against the Semtech backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SemtechUdpBackend } from '../../src/gateway/semtech-udp/server.js';
import type { GatewayDownlink, GatewayTxAck } from '../../src/gateway/types.js';
import type { DataSessionKeys } from '../../src/lorawan/index.js';
import { SimulatedDevice } from '../../src/sim/device.js';
import { SimulatedGateway } from '../../src/sim/gateway.js';
import { createRandom } from '../../src/sim/random.js';
import { downlinkFrame, joinDevice, openUplink, otaaDevice } from './device-helpers.js';

describe('SimulatedDevice: class C', () => {
  it('listens on its RX2 frequency and data rate once activated, and follows RXParamSetupReq', () => {
    const device = otaaDevice('1.0.4', { deviceClass: 'C' });
    assert.equal(device.deviceClass, 'C');
    assert.equal(device.continuousWindow(), undefined, 'not before activation');
    const { keys } = joinDevice(device, {
      dlSettings: { optNeg: false, rx1DrOffset: 0, rx2Dr: 3 },
    });
    assert.deepEqual(device.continuousWindow(), {
      name: 'rxc',
      delayUs: 0,
      frequencyHz: 869_525_000,
      dataRate: 3,
    });
    const outcome = device.receive(
      downlinkFrame(keys, 0, { fPort: 2, payload: Uint8Array.of(9) }),
      {
        window: 'rxc',
      },
    );
    assert.equal(outcome.status, 'accepted');
    assert.equal(device.receivedDownlinks[0]!.window, 'rxc');
    device.receive(
      downlinkFrame(keys, 1, {
        mac: [{ cid: 'RXParamSetupReq', rx1DrOffset: 1, rx2DataRate: 0, frequencyHz: 869_100_000 }],
      }),
      { window: 'rxc' },
    );
    assert.deepEqual(device.continuousWindow(), {
      name: 'rxc',
      delayUs: 0,
      frequencyHz: 869_100_000,
      dataRate: 0,
    });
  });

  it('a class A device does not listen between windows', () => {
    const device = otaaDevice('1.0.4');
    const { keys } = joinDevice(device);
    assert.equal(device.continuousWindow(), undefined);
    const outcome = device.receive(downlinkFrame(keys, 0), { window: 'rxc' });
    assert.equal(outcome.status, 'ignored');
    assert.equal(device.receivedDownlinks.length, 0);
  });

  it('1.1: asks for class C with DeviceModeInd in every uplink until DeviceModeConf switches it', () => {
    const device = otaaDevice('1.1');
    const { keys } = joinDevice(device);
    device.uplink();
    device.receive(downlinkFrame(keys, 0, { mac: [{ cid: 'RekeyConf', minorVersion: 1 }] }));
    device.requestDeviceClass('C');
    assert.equal(device.requestedDeviceClass, 'C');
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(openUplink(device.uplink(), keys).macCommands, [
        { cid: 'DeviceModeInd', class: 'C' },
      ]);
      assert.equal(device.deviceClass, 'A', 'class A until the network confirms');
    }
    device.receive(downlinkFrame(keys, 1, { mac: [{ cid: 'DeviceModeConf', class: 'C' }] }));
    assert.equal(device.deviceClass, 'C');
    assert.equal(device.requestedDeviceClass, undefined);
    assert.ok(device.continuousWindow());
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, []);
    // And back to class A.
    device.requestDeviceClass('A');
    assert.deepEqual(openUplink(device.uplink(), keys).macCommands, [
      { cid: 'DeviceModeInd', class: 'A' },
    ]);
    device.receive(downlinkFrame(keys, 2, { mac: [{ cid: 'DeviceModeConf', class: 'A' }] }));
    assert.equal(device.deviceClass, 'A');
    assert.equal(device.continuousWindow(), undefined);
  });

  it('ignores a DeviceModeConf it did not ask for; DeviceModeInd needs a 1.1 session', () => {
    const device = otaaDevice('1.1');
    const { keys } = joinDevice(device);
    device.uplink();
    device.receive(downlinkFrame(keys, 0, { mac: [{ cid: 'DeviceModeConf', class: 'C' }] }));
    assert.equal(device.deviceClass, 'A');
    const old = otaaDevice('1.0.4');
    joinDevice(old);
    assert.throws(() => old.requestDeviceClass('C'), /LoRaWAN 1\.1 session/);
    old.setDeviceClass('C');
    assert.equal(old.deviceClass, 'C');
  });
});

const GATEWAY_ID = 'b827ebfffe00c001';
const NWK_S_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
const APP_S_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);
const KEYS: DataSessionKeys = { lorawan: '1.0', nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY };
const SF12 = { lora: { spreadingFactor: 12, bandwidthHz: 125_000, codeRate: 'CR_4_5' } };

function abpDevice(devAddr: number, deviceClass: 'A' | 'C'): SimulatedDevice {
  return new SimulatedDevice({
    devEui: `0004a30b00cc${devAddr.toString(16).slice(-4).padStart(4, '0')}`,
    lorawanVersion: '1.0.3',
    activation: { mode: 'abp', devAddr, keys: { nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY } },
    deviceClass,
    random: createRandom(devAddr),
  });
}

describe('SimulatedGateway: class C downlinks over UDP', () => {
  const clock = { ms: 0 };
  let backend: SemtechUdpBackend;
  let gateway: SimulatedGateway;
  const txAcks: GatewayTxAck[] = [];
  let downlinkId = 0;

  before(async () => {
    backend = await SemtechUdpBackend.listen({ host: '127.0.0.1', port: 0 });
    backend.onTxAck((ack) => txAcks.push(ack));
    gateway = await SimulatedGateway.start({
      gatewayId: GATEWAY_ID,
      server: { host: '127.0.0.1', port: backend.address().port },
      pullIntervalMs: 60_000,
      statIntervalMs: 0,
      monotonicMs: () => clock.ms,
      counterStartUs: 1_000_000,
    });
    assert.equal(await gateway.ready(), true);
  });

  after(async () => {
    await gateway.close();
    await backend.close();
  });

  /** Sends a downlink and waits for the gateway's record of it. */
  async function send(
    frame: Uint8Array,
    options: Partial<Pick<GatewayDownlink, 'frequencyHz' | 'timing'>> = {},
  ) {
    const count = gateway.downlinks.length;
    downlinkId++;
    assert.equal(
      await backend.sendDownlink({
        gatewayId: GATEWAY_ID,
        downlinkId,
        phyPayload: frame,
        frequencyHz: options.frequencyHz ?? 869_525_000,
        powerDbm: 27,
        modulation: SF12,
        timing: options.timing ?? { kind: 'immediately' },
      }),
      true,
    );
    const deadline = Date.now() + 2000;
    while (gateway.downlinks.length === count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(gateway.downlinks.length, count + 1, 'the PULL_RESP arrived');
    return gateway.downlinks.at(-1)!;
  }

  function frameFor(devAddr: number, fCnt: number): Uint8Array {
    return downlinkFrame(KEYS, fCnt, { devAddr, fPort: 4, payload: Uint8Array.of(fCnt) });
  }

  it('hands an immediate PULL_RESP on RX2 to the registered class C device it is for', async () => {
    const device = abpDevice(0x26c00001, 'C');
    const other = abpDevice(0x26c00002, 'C');
    gateway.registerClassC(device);
    gateway.registerClassC(other);
    const record = await send(frameFor(0x26c00001, 0));
    assert.equal(record.txpk.imme, true);
    assert.equal(record.window, 'rxc');
    assert.equal(record.delivered, true);
    assert.equal(record.devEui, device.devEui);
    assert.equal(record.txAckStatus, 'NONE');
    assert.deepEqual(
      device.receivedDownlinks.map((d) => [d.window, d.fCnt, d.payload]),
      [['rxc', 0, Uint8Array.of(0)]],
    );
    assert.equal(other.receivedDownlinks.length, 0, 'another DevAddr: heard, not taken');
  });

  it('also hands over a tmst that is no class A window, when it is not too late', async () => {
    const device = abpDevice(0x26c00003, 'C');
    const unregister = gateway.registerClassC(device);
    const inTime = await send(frameFor(0x26c00003, 1), {
      timing: { kind: 'counter', timestampUs: gateway.counterUs() + 300_000 },
    });
    assert.equal(inTime.window, 'rxc');
    assert.equal(inTime.delivered, true);
    const late = await send(frameFor(0x26c00003, 2), {
      timing: { kind: 'counter', timestampUs: gateway.counterUs() + 1_000 },
    });
    assert.equal(late.txAckStatus, 'TOO_LATE');
    assert.equal(late.delivered, false);
    assert.deepEqual(
      device.receivedDownlinks.map((d) => d.fCnt),
      [1],
    );
    unregister();
    const gone = await send(frameFor(0x26c00003, 3));
    // Still heard by the class C devices of the other tests, taken by none.
    assert.equal(gone.delivered, false);
    assert.equal(device.receivedDownlinks.length, 1);
  });

  it('keeps class A windows first, and reaches no one on another frequency or in class A', async () => {
    const device = abpDevice(0x26c00004, 'C');
    gateway.registerClassC(device);
    // RX2 of an uplink: a class A window, even for a class C device.
    const tmst = gateway.forwardUplink(
      device.uplink(),
      { rssi: -90, snr: 5 },
      (phy, window) => device.receive(phy, { window: window.name }).status === 'accepted',
    );
    const rx2 = await send(frameFor(0x26c00004, 1), {
      timing: { kind: 'counter', timestampUs: (tmst + 2_000_000) % 2 ** 32 },
    });
    assert.equal(rx2.window, 'rx2');
    assert.equal(rx2.delivered, true);
    const elsewhere = await send(frameFor(0x26c00004, 2), { frequencyHz: 868_100_000 });
    assert.equal(elsewhere.window, undefined);
    assert.equal(elsewhere.delivered, false);
    const classA = abpDevice(0x26c00005, 'A');
    gateway.registerClassC(classA);
    const notListening = await send(frameFor(0x26c00005, 0));
    assert.equal(notListening.delivered, false);
    assert.equal(classA.receivedDownlinks.length, 0);
    assert.deepEqual(
      device.receivedDownlinks.map((d) => [d.window, d.fCnt]),
      [['rx2', 1]],
    );
  });

  it('reports each delivery through a registered deliver function, with the link given', async () => {
    const device = abpDevice(0x26c00006, 'C');
    const seen: [string, number][] = [];
    gateway.registerClassC(device, {
      link: { rssi: -100, snr: -3 },
      deliver: (phy, window, link) => {
        seen.push([window.name, link.snr]);
        return device.receive(phy, { window: window.name, snr: link.snr }).status === 'accepted';
      },
    });
    assert.equal((await send(frameFor(0x26c00006, 0))).delivered, true);
    assert.deepEqual(seen, [['rxc', -3]]);
    assert.ok(txAcks.length > 0);
  });
});
