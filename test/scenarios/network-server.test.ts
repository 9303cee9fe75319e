/**
 * Scenario tests of the network server: a real Galet (SQLite in a temporary directory, HTTP API,
 * Semtech UDP on 127.0.0.1) driven by simulated devices and gateways over real UDP sockets.
 * Assertions use the public surface only: the HTTP API (events, queue, devices), the Prometheus
 * metrics, and what the simulated devices and gateways received.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRandom } from '../../src/sim/random.js';
import { type ApiEvent, type GatewaySpec, ScenarioNetwork, waitFor } from './helpers.js';

const COUNTER_MODULO = 2 ** 32;

const bytes = (...values: number[]) => Uint8Array.from(values);
const base64 = (data: Uint8Array) => Buffer.from(data).toString('base64');
const hex = (value: number) => value.toString(16).padStart(8, '0');

let gatewaySerial = 0;

/** A gateway EUI no earlier test used: Galet's state of it (stats, traffic) starts empty. */
function freshGatewayId(): string {
  gatewaySerial += 1;
  return `aa555a${gatewaySerial.toString(16).padStart(10, '0')}`;
}

/** The Galet the tests of the describe share (started in `before`, closed in `after`). */
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

function gatewayIdsOf(event: ApiEvent): string[] {
  return (event.rxInfo as { gatewayId: string }[]).map((rx) => rx.gatewayId).sort();
}

describe('network server scenarios', () => {
  // One Galet for all: the tests use distinct devices and gateways, and count from their start.
  // The copies of a frame heard by several gateways leave the simulators together: a 50 ms
  // deduplication window (the test default is 100 ms) merges them, and each uplink waits less.
  before(async () => {
    shared = await ScenarioNetwork.start([], undefined, { deduplicationWindowMs: 50 });
  });
  after(async () => {
    await shared?.close();
  });

  it('joins a 1.0.3 OTAA device at +5 s in RX1 and delivers a queued downlink at +1 s in RX1', async () => {
    // The gateway counter starts 4 s before it wraps: the JoinAccept's tmst wraps past 2^32.
    await withNetwork([{ counterStartUs: COUNTER_MODULO - 4_000_000 }], async (net) => {
      const gateway = net.gateways[0]!;
      const device = await net.addOtaaDevice('0000000000000101', '1.0.3');
      const {
        tmst: [joinTmst],
      } = await net.join(device);
      const accept = gateway.downlinks[0]!;
      assert.ok(joinTmst! + 5_000_000 >= COUNTER_MODULO, 'the JoinAccept time wraps the counter');
      assert.equal(accept.txpk.tmst, (joinTmst! + 5_000_000) % COUNTER_MODULO);
      assert.equal(accept.offsetUs, 5_000_000);
      assert.equal(accept.window, 'rx1');
      assert.equal(accept.txAckStatus, 'NONE');
      assert.equal(accept.delivered, true);
      const join = await net.waitForEvent(device.devEui, (e) => e.event === 'join', 'join event');
      assert.equal(join.devAddr, hex(device.devAddr!));

      const payloads = [bytes(0x01, 0x17, 0x2a), bytes(0x02, 0x18)];
      for (const [fCnt, payload] of payloads.entries()) {
        const { event } = await net.uplink(device, { fPort: 2, payload });
        assert.equal(event.fCnt, fCnt);
        assert.equal(event.fPort, 2);
        assert.equal(event.data, base64(payload));
        assert.equal(event.confirmed, false);
      }
      assert.equal(gateway.downlinks.length, 1, 'nothing to send after unconfirmed uplinks');

      const queueItemId = await net.queueDownlink(device.devEui, 10, bytes(0xca, 0xfe));
      const {
        tmst: [uplinkTmst],
      } = await net.uplink(device, { fPort: 2, payload: bytes(0x03) });
      const downlink = await net.waitForDownlink(device, 1);
      assert.deepEqual(downlink.payload, bytes(0xca, 0xfe));
      assert.equal(downlink.fPort, 10);
      assert.equal(downlink.fCnt, 0);
      assert.equal(downlink.window, 'rx1');
      const record = gateway.downlinks[1]!;
      assert.equal(record.txpk.tmst, (uplinkTmst! + 1_000_000) % COUNTER_MODULO);
      assert.equal(record.offsetUs, 1_000_000);
      assert.equal(record.window, 'rx1');
      assert.equal(record.delivered, true);
      const txAck = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'txack' && e.queueItemId === queueItemId,
        'txack of the queued downlink',
      );
      assert.equal(txAck.status, 'NONE');
      assert.equal(txAck.window, 'RX1');
      assert.equal(txAck.gatewayId, gateway.gatewayId);
      const queue = await net.galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
      assert.deepEqual(queue.json.items, []);
      assert.equal(gateway.downlinks.length, 2, 'the JoinAccept and the queued downlink only');
    });
  });

  it('merges one uplink heard by three gateways into one up event listing the three', async () => {
    await withNetwork([{}, {}, {}], async (net) => {
      const device = await net.addAbpDevice('0000000000000201', '1.0.3', 0x26000201);
      const [gw1, gw2, gw3] = net.gateways;
      const { event, tmst } = await net.uplink(device, { fPort: 1, payload: bytes(1, 2, 3) }, [
        { gateway: gw1!, link: { rssi: -110, snr: -4 } },
        { gateway: gw2!, link: { rssi: -70, snr: 9 } },
        { gateway: gw3!, link: { rssi: -95, snr: 2.5 } },
      ]);
      assert.deepEqual(
        gatewayIdsOf(event),
        [gw1!, gw2!, gw3!].map((gateway) => gateway.gatewayId).sort(),
      );
      for (const [index, gateway] of [gw1!, gw2!, gw3!].entries()) {
        const rx = event.rxInfo.find(
          (r: { gatewayId: string }) => r.gatewayId === gateway.gatewayId,
        );
        // The context carries the gateway's own counter: what a downlink through it is timed on.
        assert.equal(Buffer.from(rx.context, 'base64').readUInt32BE(0), tmst[index]);
      }
      assert.deepEqual(
        event.rxInfo.map((rx: { snr: number; rssi: number }) => [rx.rssi, rx.snr]).sort(),
        [
          [-110, -4],
          [-70, 9],
          [-95, 2.5],
        ].sort(),
      );
      // A later uplink of the device is processed after any late copy of the first one.
      await net.uplink(device, { fPort: 1, payload: bytes(4) }, [gw2!]);
      const ups = await net.events(device.devEui, 'up');
      assert.deepEqual(
        ups.map((e) => e.fCnt),
        [0, 1],
      );
      const metrics = await net.metrics();
      assert.equal(metrics.get('galet_network_uplink_copies_total'), 4);
      assert.equal(metrics.get('galet_network_uplinks_deduplicated_total'), 2);
      assert.equal(metrics.get('galet_network_uplinks_accepted_total'), 2);
    });
  });

  it('refuses a re-sent frame and an older frame, counts them and stores no second event', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addAbpDevice('0000000000000301', '1.0.3', 0x26000301);
      const sent = [];
      for (let n = 0; n < 3; n++) {
        sent.push((await net.uplink(device, { fPort: 5, payload: bytes(n) })).transmission);
      }
      // The same bytes again after acceptance, then a frame from before the last one.
      net.transmit(device, sent[2]!);
      await net.waitForMetric('galet_network_uplinks_retransmitted_total', 1);
      net.transmit(device, sent[1]!);
      await net.waitForMetric('galet_network_uplinks_replayed_total', 1);
      await net.uplink(device, { fPort: 5, payload: bytes(3) });
      const ups = await net.events(device.devEui, 'up');
      assert.deepEqual(
        ups.map((e) => e.fCnt),
        [0, 1, 2, 3],
      );
      const metrics = await net.metrics();
      assert.equal(metrics.get('galet_network_uplinks_replayed_total'), 1);
      assert.equal(metrics.get('galet_network_uplinks_retransmitted_total'), 1);
      assert.equal(metrics.get('galet_network_uplinks_accepted_total'), 4);
      assert.equal(metrics.get('galet_network_uplinks_mic_failed_total'), 0);
      const got = await net.galet.request('GET', `/api/v1/devices/${device.devEui}`);
      assert.equal(got.json.fCntUp, 3);
    });
  });

  it('keeps accepting uplinks when FCnt passes 65,535 (32-bit counter, MIC and payload)', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addAbpDevice('0000000000000401', '1.0.4', 0x26000401, {
        fCntUp: 65_533,
      });
      const fCnts: number[] = [];
      for (let n = 0; n < 5; n++) {
        const payload = bytes(0x40, n, 0xff - n);
        const { event } = await net.uplink(device, { fPort: 7, payload });
        fCnts.push(event.fCnt);
        // FRMPayload decrypted with the 32-bit counter (its high bits are in the keystream).
        assert.equal(event.data, base64(payload));
      }
      assert.deepEqual(fCnts, [65_533, 65_534, 65_535, 65_536, 65_537]);
      await net.queueDownlink(device.devEui, 3, bytes(0x0d));
      await net.uplink(device, { fPort: 7, payload: bytes(0x41) });
      const downlink = await net.waitForDownlink(device, 1);
      assert.deepEqual(downlink.payload, bytes(0x0d));
      const got = await net.galet.request('GET', `/api/v1/devices/${device.devEui}`);
      assert.equal(got.json.fCntUp, 65_538);
      assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
    });
  });

  it('refuses a JoinRequest with a used DevNonce (1.0.4 counter rule, 1.0.2 used-nonce rule)', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const refusals = async (devEui: string) =>
        (await net.events(devEui, 'log')).filter((e) => e.code === 'OTAA');
      const expectRefused = async (
        devEui: string,
        twin: Awaited<ReturnType<typeof net.addOtaaDevice>>,
        count: number,
      ) => {
        const downlinksBefore = gateway.downlinks.length;
        net.transmit(twin, twin.joinRequest());
        const logs = await waitFor(`${count} OTAA refusals for ${devEui}`, async () => {
          const found = await refusals(devEui);
          return found.length >= count ? found : undefined;
        });
        assert.equal(logs[count - 1]!.level, 'ERROR');
        assert.match(logs[count - 1]!.description, /replay/);
        assert.equal(twin.activated, false);
        assert.equal(gateway.downlinks.length, downlinksBefore, 'no JoinAccept sent');
      };

      // LoRaWAN 1.0.4: DevNonce is a counter; the same value again or a lower one is a replay.
      const counting = await net.addOtaaDevice('0000000000000501', '1.0.4', { devNonce: 10 });
      await net.join(counting);
      const sameNonce = await net.addOtaaDevice(counting.devEui, '1.0.4', {
        devNonce: 10,
        register: false,
      });
      await expectRefused(counting.devEui, sameNonce, 1);
      const lowerNonce = await net.addOtaaDevice(counting.devEui, '1.0.4', {
        devNonce: 4,
        register: false,
      });
      await expectRefused(counting.devEui, lowerNonce, 2);
      assert.match((await refusals(counting.devEui))[1]!.description, /not above the last one/);

      // LoRaWAN 1.0.2: random DevNonces; only a value used before is a replay.
      const random = await net.addOtaaDevice('0000000000000502', '1.0.2', { devNonce: 20 });
      await net.join(random);
      const reused = await net.addOtaaDevice(random.devEui, '1.0.2', {
        devNonce: 20,
        register: false,
      });
      await expectRefused(random.devEui, reused, 1);
      assert.match((await refusals(random.devEui))[0]!.description, /already used/);
      const lower = await net.addOtaaDevice(random.devEui, '1.0.2', {
        devNonce: 5,
        register: false,
      });
      await net.join(lower);

      // The refused attempts did not disturb the 1.0.4 device's session.
      const { event } = await net.uplink(counting, { fPort: 1, payload: bytes(9) });
      assert.equal(event.devAddr, hex(counting.devAddr!));
      const metrics = await net.metrics();
      assert.equal(metrics.get('galet_network_join_requests_total'), 6);
      assert.equal(metrics.get('galet_network_joins_rejected_total'), 3);
      assert.equal(metrics.get('galet_network_joins_accepted_total'), 3);
      assert.equal((await net.events(counting.devEui, 'join')).length, 1);
      assert.equal((await net.events(random.devEui, 'join')).length, 2);
    });
  });

  it('drops and counts an uplink from an unknown DevAddr (and one that fails the MIC)', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const known = await net.addAbpDevice('0000000000000601', '1.0.3', 0x26000601);
      const stranger = await net.addAbpDevice('0000000000000602', '1.0.3', 0x01abcdef, {
        register: false,
      });
      // Same DevAddr as the known device, other keys: found by DevAddr, refused by the MIC.
      const impostor = await net.addAbpDevice(known.devEui, '1.0.3', 0x26000601, {
        register: false,
        keySeed: 0x99,
      });
      net.transmit(stranger, stranger.uplink({ fPort: 1, payload: bytes(1), confirmed: true }));
      await net.waitForMetric('galet_network_uplinks_unknown_dev_addr_total', 1);
      net.transmit(impostor, impostor.uplink({ fPort: 1, payload: bytes(2), confirmed: true }));
      await net.waitForMetric('galet_network_uplinks_mic_failed_total', 1);
      await net.uplink(known, { fPort: 1, payload: bytes(3) });
      assert.equal(gateway.downlinks.length, 0, 'no ACK for the dropped confirmed uplinks');
      assert.deepEqual(
        (await net.events(known.devEui)).map((e) => [e.event, e.fCnt]),
        [['up', 0]],
      );
      const missing = await net.galet.request('GET', `/api/v1/devices/${stranger.devEui}/events`);
      assert.equal(missing.status, 404);
      const metrics = await net.metrics();
      assert.equal(metrics.get('galet_network_uplinks_unknown_dev_addr_total'), 1);
      assert.equal(metrics.get('galet_network_uplinks_mic_failed_total'), 1);
      assert.equal(metrics.get('galet_network_uplinks_accepted_total'), 1);
    });
  });

  it('refuses the traffic of a gateway once it is deleted through the API', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addAbpDevice('0000000000000611', '1.0.4', 0x26000611);
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      const deleted = await net.galet.request(
        'DELETE',
        `/api/v1/gateways/${net.gateways[0]!.gatewayId}`,
      );
      assert.equal(deleted.status, 204);
      net.transmit(device, device.uplink({ fPort: 1, payload: bytes(2) }));
      await net.waitForMetric('galet_semtech_udp_unknown_gateway_datagrams_total', 1);
      assert.deepEqual(
        (await net.events(device.devEui)).map((e) => [e.event, e.fCnt]),
        [['up', 0]],
        'nothing stored from the deleted gateway',
      );
    });
  });

  it('copies the device tags into the events (deviceInfo.tags), also after a change', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addAbpDevice('0000000000000612', '1.0.4', 0x26000612);
      const patched = await net.galet.request('PATCH', `/api/v1/devices/${device.devEui}`, {
        tags: { commune: 'Saint-Galmier', usage: 'frost' },
      });
      assert.equal(patched.status, 200, JSON.stringify(patched.json));
      const { event } = await net.uplink(device, { fPort: 1, payload: bytes(1) });
      assert.deepEqual(event.deviceInfo.tags, { commune: 'Saint-Galmier', usage: 'frost' });
    });
  });

  it('stores uplinks through the SQLite writer thread and keeps their counters across a restart', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: freshGatewayId() }], undefined, {
      sqliteWriterThread: true,
    });
    try {
      assert.ok(net.galet.storage.uplinkCommits.writerForTest !== undefined);
      const device = await net.addAbpDevice('0000000000000613', '1.0.4', 0x26000613);
      for (let i = 0; i < 3; i++) await net.uplink(device, { fPort: 1, payload: bytes(i) });
      await net.restart();
      const old = device.uplink({ fPort: 1, payload: bytes(9) });
      await net.uplink(device, { fPort: 1, payload: bytes(3) });
      net.transmit(device, old);
      await net.waitForMetric('galet_network_uplinks_replayed_total', 1);
      assert.deepEqual(
        (await net.events(device.devEui, 'up')).map((e) => e.fCnt),
        [0, 1, 2, 4],
      );
    } finally {
      await net.close();
    }
  });

  it('acknowledges a confirmed uplink: the device sees ACK, the up event says confirmed', async () => {
    await withNetwork([{}], async (net) => {
      const gateway = net.gateways[0]!;
      const device = await net.addOtaaDevice('0000000000000701', '1.0.3');
      await net.join(device);
      await net.uplink(device, { fPort: 4, payload: bytes(0) });
      const {
        event,
        tmst: [tmst],
      } = await net.uplink(device, { fPort: 4, payload: bytes(1), confirmed: true });
      assert.equal(event.confirmed, true);
      const downlink = await net.waitForDownlink(device, 1);
      assert.equal(downlink.ack, true);
      assert.equal(downlink.fPort, undefined);
      assert.equal(device.awaitingAck, false);
      // JoinAccept and the ACK: the unconfirmed uplink got no downlink.
      assert.equal(gateway.downlinks.length, 2);
      assert.equal(gateway.downlinks[1]!.txpk.tmst, (tmst! + 1_000_000) % COUNTER_MODULO);
      assert.equal(await net.metric('galet_network_downlinks_scheduled_total'), 2);
    });
  });

  it('resends in RX2 (+2 s, 869.525 MHz, DR0) when the gateway answers TOO_LATE to RX1', async () => {
    await withNetwork(
      [
        {
          txAckStatus: (pullResp) => (pullResp.window === 'rx1' ? 'TOO_LATE' : undefined),
        },
      ],
      async (net) => {
        const gateway = net.gateways[0]!;
        const device = await net.addAbpDevice('0000000000000801', '1.0.3', 0x26000801);
        const queueItemId = await net.queueDownlink(device.devEui, 20, bytes(0xb0, 0x0b));
        const {
          tmst: [tmst],
        } = await net.uplink(device, { fPort: 1, payload: bytes(1) });
        const downlink = await net.waitForDownlink(device, 1);
        assert.deepEqual(downlink.payload, bytes(0xb0, 0xb));
        assert.equal(downlink.window, 'rx2');
        const [rx1, rx2] = gateway.downlinks;
        assert.equal(rx1!.window, 'rx1');
        assert.equal(rx1!.txAckStatus, 'TOO_LATE');
        assert.equal(rx1!.delivered, false);
        assert.equal(rx2!.window, 'rx2');
        assert.equal(rx2!.offsetUs, 2_000_000);
        assert.equal(rx2!.txpk.tmst, (tmst! + 2_000_000) % COUNTER_MODULO);
        assert.equal(rx2!.txpk.freq, 869.525);
        assert.equal(rx2!.txpk.datr, 'SF12BW125');
        assert.equal(rx2!.txAckStatus, 'NONE');
        assert.equal(rx2!.delivered, true);
        assert.equal(rx2!.txpk.data, rx1!.txpk.data, 'the same frame, not a new FCntDown');

        const txAcks = await waitFor('two txack events', async () => {
          const found = await net.events(device.devEui, 'txack');
          return found.length >= 2 ? found : undefined;
        });
        assert.deepEqual(
          txAcks.map((e) => [e.window, e.status, e.queueItemId, e.fCntDown]),
          [
            ['RX1', 'TOO_LATE', queueItemId, 0],
            ['RX2', 'NONE', queueItemId, 0],
          ],
        );
        assert.equal(txAcks[1]!.txInfo.frequency, 869_525_000);
        const metrics = await net.metrics();
        assert.equal(metrics.get('galet_network_downlinks_rx2_fallback_total'), 1);
        assert.equal(metrics.get('galet_semtech_udp_tx_acks_total{kind="TOO_LATE"}'), 1);
        assert.equal(metrics.get('galet_semtech_udp_tx_acks_total{kind="NONE"}'), 1);
      },
    );
  });

  it('keeps sessions and counters across a restart: next FCnt accepted, old frame refused', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addOtaaDevice('0000000000000901', '1.0.4');
      await net.join(device);
      const sent = [];
      for (let n = 0; n < 3; n++) {
        if (n === 2) await net.queueDownlink(device.devEui, 1, bytes(0xa0));
        sent.push((await net.uplink(device, { fPort: 3, payload: bytes(n) })).transmission);
      }
      assert.equal((await net.waitForDownlink(device, 1)).fCnt, 0);
      // Still queued when Galet stops: the new instance must find it.
      await net.queueDownlink(device.devEui, 1, bytes(0xa1));
      const devAddr = device.devAddr;

      await net.restart();

      const got = await net.galet.request('GET', `/api/v1/devices/${device.devEui}`);
      assert.equal(got.json.activated, true);
      assert.equal(got.json.fCntUp, 2);
      assert.equal(got.json.devAddr, hex(devAddr!));
      const { event } = await net.uplink(device, { fPort: 3, payload: bytes(3) });
      assert.equal(event.fCnt, 3);
      // The downlink counter continued too: FCntDown 0 again would be refused by the device.
      const downlink = await net.waitForDownlink(device, 2);
      assert.equal(downlink.fCnt, 1);
      assert.deepEqual(downlink.payload, bytes(0xa1));

      net.transmit(device, sent[1]!);
      await net.waitForMetric('galet_network_uplinks_replayed_total', 1);
      await net.uplink(device, { fPort: 3, payload: bytes(4) });
      assert.deepEqual(
        (await net.events(device.devEui, 'up')).map((e) => e.fCnt),
        [0, 1, 2, 3, 4],
      );
      assert.equal((await net.events(device.devEui, 'join')).length, 1);
      assert.equal(await net.metric('galet_network_join_requests_total'), 0);
    });
  });

  it('remembers across a restart the confirmed downlink a 1.1 device has to acknowledge', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addOtaaDevice('0000000000000911', '1.1');
      await net.join(device);
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      await net.waitForDownlink(device, 1); // RekeyConf
      const queueItemId = await net.queueDownlink(device.devEui, 31, bytes(0xc1), true);
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      const confirmed = await net.waitForDownlink(device, 2);
      assert.equal(confirmed.confirmed, true);

      await net.restart();

      // The ACK uplink's 1.1 MIC covers the FCntDown of that downlink (ConfFCnt): the new
      // instance must know it, or the uplink fails its MIC check and is lost.
      const { event } = await net.uplink(device, { fPort: 1, payload: bytes(3) });
      assert.equal(event.fCnt, 2);
      const ack = await net.waitForEvent(device.devEui, (e) => e.event === 'ack', 'ack event');
      assert.equal(ack.queueItemId, queueItemId);
      assert.equal(ack.acknowledged, true);
      assert.equal(ack.fCntDown, confirmed.fCnt);
      assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
    });
  });

  it('records gateway stat reports: last seen, counters summed, and no stats from unknown gateways', async () => {
    await withNetwork([{}], async (net) => {
      const device = await net.addOtaaDevice('0000000000000921', '1.0.3');
      await net.join(device);
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      const gateway = net.gateways[0]!;
      gateway.sendStat();
      const first = await waitFor('stats recorded', async () => {
        const got = await net.galet.request('GET', `/api/v1/gateways/${gateway.gatewayId}`);
        return got.json.lastSeenAt !== null && got.json.counters.rxReceived > 0
          ? got.json
          : undefined;
      });
      // The join request and the uplink: two frames received and forwarded since the start.
      assert.equal(first.counters.rxReceived, 2);
      assert.equal(first.counters.rxForwarded, 2);
      await net.uplink(device, { fPort: 1, payload: bytes(2) });
      gateway.sendStat();
      const second = await waitFor('second report added', async () => {
        const got = await net.galet.request('GET', `/api/v1/gateways/${gateway.gatewayId}`);
        return got.json.counters.rxReceived === 3 ? got.json : undefined;
      });
      assert.equal(second.counters.rxForwarded, 3);
      assert.ok(second.lastSeenAt >= first.lastSeenAt);
    });
  });

  it('survives garbage, bad JSON, bad base64 and short datagrams and counts each', async () => {
    await withNetwork([{}], async (net) => {
      const random = createRandom(10);
      const eui = Buffer.from(net.gateways[0]!.gatewayId, 'hex');
      const header = (type: number) =>
        Buffer.from([2, random.int(0, 255), random.int(0, 255), type]);
      const pushData = (json: string) => Buffer.concat([header(0), eui, Buffer.from(json)]);
      const rxpk = (data: string, size: number) =>
        JSON.stringify({
          rxpk: [
            {
              tmst: 1000,
              freq: 868.1,
              chan: 0,
              rfch: 0,
              stat: 1,
              modu: 'LORA',
              datr: 'SF7BW125',
              codr: '4/5',
              rssi: -80,
              lsnr: 7,
              size,
              data,
            },
          ],
        });
      const garbage = Buffer.from(random.bytes(40));
      garbage[0] = 0x7f; // not protocol version 1 or 2
      await net.sendRaw([
        garbage,
        Buffer.from([2, 0]), // shorter than a header
        Buffer.concat([header(0), eui.subarray(0, 3)]), // PUSH_DATA cut inside the EUI
        Buffer.from([2, 1, 2, 0x09]), // no such packet type
        pushData('{"rxpk":[{"tmst":'), // JSON cut short
        pushData(rxpk('!!not*base64!!', 3)), // rxpk data is not base64
        pushData(rxpk(base64(bytes(0x40, 1, 2)), 3)), // well-formed, but 3 bytes are no frame
      ]);
      const malformed = 'galet_semtech_udp_malformed_datagrams_total';
      await waitFor('the network counted the malformed frame', async () => {
        const metrics = await net.metrics();
        return metrics.get('galet_network_uplinks_malformed_total') === 1 ? metrics : undefined;
      });
      const metrics = await net.metrics();
      assert.equal(metrics.get(`${malformed}{kind="BAD_VERSION"}`), 1);
      assert.equal(metrics.get(`${malformed}{kind="SHORT_HEADER"}`), 2);
      assert.equal(metrics.get(`${malformed}{kind="UNKNOWN_TYPE"}`), 1);
      assert.equal(metrics.get(`${malformed}{kind="BAD_JSON"}`), 1);
      assert.equal(metrics.get('galet_semtech_udp_invalid_rxpk_total{kind="BAD_BASE64"}'), 1);

      const device = await net.addAbpDevice('0000000000000a01', '1.0.3', 0x26000a01);
      await net.queueDownlink(device.devEui, 2, bytes(0x0a));
      const { event } = await net.uplink(device, { fPort: 2, payload: bytes(1, 2) });
      assert.equal(event.data, base64(bytes(1, 2)));
      assert.deepEqual((await net.waitForDownlink(device, 1)).payload, bytes(0x0a));
    });
  });

  it('serves ABP devices created through the API (1.0.4 and 1.1.0): uplinks and downlinks', async () => {
    await withNetwork([{}], async (net) => {
      const v104 = await net.addAbpDevice('0000000000000b01', '1.0.4', 0x26000b01);
      const v11 = await net.addAbpDevice('0000000000000b02', '1.1', 0x26000b02);
      await net.queueDownlink(v104.devEui, 8, bytes(0x10, 0x4));
      await net.queueDownlink(v11.devEui, 8, bytes(0x11, 0x0));
      for (const device of [v104, v11]) {
        const { event } = await net.uplink(device, { fPort: 9, payload: bytes(0x55) });
        assert.equal(event.fCnt, 0);
        assert.equal(event.data, base64(bytes(0x55)));
      }
      const d104 = await net.waitForDownlink(v104, 1);
      assert.deepEqual(d104.payload, bytes(0x10, 0x4));
      assert.equal(d104.fPort, 8);
      const d11 = await net.waitForDownlink(v11, 1);
      assert.deepEqual(d11.payload, bytes(0x11, 0x0));
      // LoRaWAN 1.1 §5.1: the ABP device's ResetInd is confirmed in the same downlink.
      assert.deepEqual(d11.macCommands, [{ cid: 'ResetConf', minorVersion: 1 }]);
      // Application payload on AFCntDown (1.1 §4.3.1.5).
      const got11 = await net.galet.request('GET', `/api/v1/devices/${v11.devEui}`);
      assert.equal(got11.json.aFCntDown, 1);
      assert.equal(got11.json.fCntDown, 0);
      for (const device of [v104, v11]) {
        const { event } = await net.uplink(device, { fPort: 9, payload: bytes(0x56) });
        assert.equal(event.fCnt, 1);
      }
      assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
    });
  });

  it('joins a 1.1.0 OTAA device (OptNeg) beside a 1.0.3 one; both get downlinks', async () => {
    await withNetwork([{}, {}], async (net) => {
      const [gw1, gw2] = net.gateways;
      const v11 = await net.addOtaaDevice('0000000000000c01', '1.1');
      const v103 = await net.addOtaaDevice('0000000000000c02', '1.0.3');
      await Promise.all([net.join(v11, [gw1!]), net.join(v103, [gw2!])]);
      assert.ok(v11.sessionKeys() !== undefined && 'fNwkSIntKey' in v11.sessionKeys()!);
      assert.ok(v103.sessionKeys() !== undefined && 'nwkSKey' in v103.sessionKeys()!);
      assert.notEqual(v11.devAddr, v103.devAddr);

      await net.queueDownlink(v11.devEui, 30, bytes(0x11));
      await net.queueDownlink(v103.devEui, 30, bytes(0x10));
      // Side by side: both uplinks in the air at once, the 1.1 one confirmed.
      const [up11, up103] = await Promise.all([
        net.uplink(v11, { fPort: 1, payload: bytes(1), confirmed: true }, [gw1!, gw2!]),
        net.uplink(v103, { fPort: 1, payload: bytes(2) }, [gw1!, gw2!]),
      ]);
      assert.equal(up11.event.confirmed, true);
      assert.equal(up103.event.data, base64(bytes(2)));
      const d11 = await net.waitForDownlink(v11, 1);
      assert.deepEqual(d11.payload, bytes(0x11));
      assert.equal(d11.ack, true, 'MIC with ConfFCnt of the confirmed uplink verified');
      // LoRaWAN 1.1 §5.10: RekeyInd after an OptNeg join is confirmed with RekeyConf.
      assert.deepEqual(d11.macCommands, [{ cid: 'RekeyConf', minorVersion: 1 }]);
      const d103 = await net.waitForDownlink(v103, 1);
      assert.deepEqual(d103.payload, bytes(0x10));

      const [next11, next103] = await Promise.all([
        net.uplink(v11, { fPort: 1, payload: bytes(3) }, [gw2!]),
        net.uplink(v103, { fPort: 1, payload: bytes(4) }, [gw1!]),
      ]);
      assert.equal(next11.event.fCnt, 1);
      assert.equal(next103.event.fCnt, 1);

      // A confirmed downlink: the 1.1 device's ACK carries its ConfFCnt in the uplink MIC.
      const queueItemId = await net.queueDownlink(v11.devEui, 31, bytes(0xc0), true);
      await net.uplink(v11, { fPort: 1, payload: bytes(5) }, [gw1!]);
      const confirmed = await net.waitForDownlink(v11, 2);
      assert.equal(confirmed.confirmed, true);
      assert.deepEqual(confirmed.payload, bytes(0xc0));
      await net.uplink(v11, { fPort: 1, payload: bytes(6) }, [gw1!]);
      const ack = await net.waitForEvent(v11.devEui, (e) => e.event === 'ack', 'ack event');
      assert.equal(ack.queueItemId, queueItemId);
      assert.equal(ack.acknowledged, true);
      assert.equal(ack.fCntDown, confirmed.fCnt);
      const metrics = await net.metrics();
      assert.equal(metrics.get('galet_network_uplinks_mic_failed_total'), 0);
      assert.equal(metrics.get('galet_network_joins_accepted_total'), 2);
    });
  });

  it('answers LinkCheckReq and DeviceTimeReq in the downlink after the uplink', async () => {
    await withNetwork([{}, {}], async (net) => {
      const [gw1, gw2] = net.gateways;
      const device = await net.addAbpDevice('0000000000000d01', '1.0.3', 0x26000d01);
      const before = Date.now();
      await net.uplink(
        device,
        {
          fPort: 1,
          payload: bytes(1),
          macCommands: [{ cid: 'LinkCheckReq' }, { cid: 'DeviceTimeReq' }],
        },
        [
          { gateway: gw1!, link: { rssi: -100, snr: -3 } },
          { gateway: gw2!, link: { rssi: -75, snr: 5 } },
        ],
      );
      const after = Date.now();
      const downlink = await net.waitForDownlink(device, 1);
      assert.equal(downlink.fPort, undefined, 'MAC answers only, in FOpts');
      const linkCheck = downlink.macCommands.find((c) => c.cid === 'LinkCheckAns');
      // Best SNR 5 dB at SF7 (floor -7.5 dB): margin 12 dB; two gateways heard it.
      assert.deepEqual(linkCheck, { cid: 'LinkCheckAns', margin: 12, gatewayCount: 2 });
      const deviceTime = downlink.macCommands.find((c) => c.cid === 'DeviceTimeAns');
      assert.ok(deviceTime?.cid === 'DeviceTimeAns');
      // GPS time = Unix time − 315 964 800 s + 18 leap seconds.
      const gpsSeconds = (unixMs: number) => Math.floor(unixMs / 1000) - 315_964_800 + 18;
      assert.ok(
        deviceTime.gpsEpochSeconds >= gpsSeconds(before) &&
          deviceTime.gpsEpochSeconds <= gpsSeconds(after),
        `${deviceTime.gpsEpochSeconds} in [${gpsSeconds(before)}, ${gpsSeconds(after)}]`,
      );
      // The downlink went through the gateway with the better signal.
      assert.equal(gw2!.downlinks.length, 1);
      assert.equal(gw1!.downlinks.length, 0);
    });
  });
});
