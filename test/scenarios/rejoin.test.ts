/**
 * LoRaWAN 1.1 rejoin scenarios over real UDP: a joined 1.1 device sends RejoinRequests of types
 * 0, 1 and 2; the network checks what it can (types 0/2: SNwkSIntKey MIC and RJcount0), the join
 * server the rest (type 1: JSIntKey MIC and RJcount1), and the device moves to the new session
 * while a 1.0.4 device works beside it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SimulatedDevice } from '../../src/sim/device.js';
import { ScenarioNetwork, waitFor } from './helpers.js';

const GW1 = 'aa555a0000000011';
const bytes = (...values: number[]) => Uint8Array.from(values);
const hex = (value: number | undefined) => (value ?? -1).toString(16).padStart(8, '0');

/** An uplink in the device's current session: its `up` event (matched by DevAddr and FCnt). */
async function uplinkInSession(
  net: ScenarioNetwork,
  device: SimulatedDevice,
  options: Parameters<SimulatedDevice['uplink']>[0],
) {
  const transmission = device.uplink(options);
  net.transmit(device, transmission);
  return net.waitForEvent(
    device.devEui,
    (e) => e.event === 'up' && e.fCnt === transmission.counter && e.devAddr === hex(device.devAddr),
    `up event ${transmission.counter} from ${hex(device.devAddr)}`,
  );
}

async function withNetwork(scenario: (net: ScenarioNetwork) => Promise<void>): Promise<void> {
  const net = await ScenarioNetwork.start([{ gatewayId: GW1 }]);
  try {
    await scenario(net);
  } finally {
    await net.close();
  }
}

describe('LoRaWAN 1.1 rejoin scenarios', () => {
  it('serves rejoins of types 0, 2 and 1 with new sessions; traffic follows; replays refused', async () => {
    await withNetwork(async (net) => {
      const device = await net.addOtaaDevice('0000000000001101', '1.1');
      const old = await net.addOtaaDevice('0000000000001102', '1.0.4');
      await net.join(device);
      await net.join(old);
      await net.uplink(device, { fPort: 1, payload: bytes(1) });
      // The API shows the MAC state the join set up: CFList channels, RX settings, class.
      const shown = await net.galet.request('GET', `/api/v1/devices/${device.devEui}`);
      assert.equal(shown.status, 200);
      assert.equal(shown.json.mac.deviceClass, 'A');
      assert.equal(shown.json.mac.rx1DelaySeconds, 1);
      assert.deepEqual(
        shown.json.mac.channels.map((c: { frequencyHz: number }) => c.frequencyHz / 1e5),
        [8681, 8683, 8685, 8671, 8673, 8675, 8677, 8679],
      );
      assert.equal(shown.json.deviceStatus, null);
      const firstAddr = device.devAddr;
      const firstKeys = device.sessionKeys();

      // Type 0: new DevAddr, new keys, counters from 0.
      const rejoin0 = device.rejoinRequest(0);
      net.transmit(device, rejoin0);
      await waitFor('rejoin type 0 accepted', () => device.devAddr !== firstAddr);
      const join0 = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'join' && e.rejoinType === 0,
        'join event of the type 0 rejoin',
      );
      assert.equal(join0.devAddr, hex(device.devAddr));
      assert.notDeepEqual(device.sessionKeys(), firstKeys);
      const after0 = await uplinkInSession(net, device, { fPort: 2, payload: bytes(2) });
      assert.equal(after0.fCnt, 0);

      // The same type-0 frame again: signed with the old session's key, and the device has used
      // its new session since (so the old one is gone): refused.
      net.transmit(device, rejoin0);
      await net.waitForMetric('galet_network_rejoins_rejected_total', 1);

      // Type 2: keys only; the DevAddr stays.
      const addrBefore2 = device.devAddr;
      const keysBefore2 = device.sessionKeys();
      net.transmit(device, device.rejoinRequest(2));
      await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'join' && e.rejoinType === 2,
        'join event of the type 2 rejoin',
      );
      await waitFor('device took the type 2 JoinAccept', () => {
        const keys = device.sessionKeys();
        return keys !== undefined && JSON.stringify(keys) !== JSON.stringify(keysBefore2);
      });
      assert.equal(device.devAddr, addrBefore2);
      const downlinksBefore = device.receivedDownlinks.length;
      const after2 = await uplinkInSession(net, device, {
        fPort: 3,
        payload: bytes(3),
        confirmed: true,
      });
      assert.equal(after2.fCnt, 0);
      const acked = await net.waitForDownlink(device, downlinksBefore + 1);
      assert.equal(acked.ack, true);

      // Type 1: checked by the join server (JSIntKey, RJcount1).
      const rejoin1 = device.rejoinRequest(1);
      const addrBefore1 = device.devAddr;
      net.transmit(device, rejoin1);
      await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'join' && e.rejoinType === 1,
        'join event of the type 1 rejoin',
      );
      await waitFor('device took the type 1 JoinAccept', () => device.devAddr !== addrBefore1);
      const rejectedBefore = await net.metric('galet_network_rejoins_rejected_total');
      net.transmit(device, rejoin1);
      await net.waitForMetric('galet_network_rejoins_rejected_total', rejectedBefore + 1);
      const after1 = await uplinkInSession(net, device, { fPort: 4, payload: bytes(4) });
      assert.equal(after1.fCnt, 0);

      const refusals = (await net.events(device.devEui, 'log')).filter((e) => e.code === 'REJOIN');
      assert.equal(refusals.length, 2);
      assert.match(refusals[0]!.description, /MIC does not verify/);
      assert.match(refusals[1]!.description, /RJcount1|replay/i);

      // The 1.0.4 device beside it was never disturbed.
      const oldUp = await net.uplink(old, { fPort: 1, payload: bytes(9) });
      assert.equal(oldUp.event.fCnt, 0);
      assert.equal(oldUp.event.data, Buffer.from(bytes(9)).toString('base64'));
      const metrics = await net.metrics();
      assert.equal(metrics.get('galet_network_rejoins_accepted_total'), 3);
      assert.equal(metrics.get('galet_network_uplinks_mic_failed_total'), 0);
    });
  });

  it('sends a ForceRejoinReq asked through the API; the device rejoins as told', async () => {
    await withNetwork(async (net) => {
      const device = await net.addOtaaDevice('0000000000001106', '1.1');
      const old = await net.addOtaaDevice('0000000000001107', '1.0.4');
      await net.join(device);
      await net.join(old);
      await uplinkInSession(net, device, { fPort: 1, payload: bytes(1) });

      const refused = await net.galet.request(
        'POST',
        `/api/v1/devices/${old.devEui}/force-rejoin`,
        {},
      );
      assert.equal(refused.status, 409);
      assert.match(refused.json.message, /1\.1 only/);
      const invalid = await net.galet.request(
        'POST',
        `/api/v1/devices/${device.devEui}/force-rejoin`,
        { rejoinType: 1 },
      );
      assert.equal(invalid.status, 400);

      const asked = await net.galet.request(
        'POST',
        `/api/v1/devices/${device.devEui}/force-rejoin`,
        { rejoinType: 2, maxRetries: 2, period: 1 },
      );
      assert.equal(asked.status, 202);
      assert.equal(typeof asked.json.id, 'string');

      const downlinksBefore = device.receivedDownlinks.length;
      await uplinkInSession(net, device, { fPort: 1, payload: bytes(2) });
      const carrying = await net.waitForDownlink(device, downlinksBefore + 1);
      const force = carrying.macCommands.find((c) => c.cid === 'ForceRejoinReq');
      assert.ok(force?.cid === 'ForceRejoinReq');
      assert.equal(force.rejoinType, 2);
      assert.equal(force.maxRetries, 2);
      assert.equal(force.period, 1);
      assert.equal(force.dataRate, 5, 'defaults to the data rate the device uses');
      assert.equal(device.forcedRejoin?.rejoinType, 2);

      // Sent once: the next downlink does not carry it again.
      await net.queueDownlink(device.devEui, 5, bytes(0x55));
      await uplinkInSession(net, device, { fPort: 1, payload: bytes(3) });
      const next = await net.waitForDownlink(device, downlinksBefore + 2);
      assert.equal(
        next.macCommands.some((c) => c.cid === 'ForceRejoinReq'),
        false,
      );

      const keysBefore = device.sessionKeys();
      net.transmit(device, device.rejoinRequest());
      await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'join' && e.rejoinType === 2,
        'join event of the forced type 2 rejoin',
      );
      await waitFor(
        'device took the JoinAccept',
        () => JSON.stringify(device.sessionKeys()) !== JSON.stringify(keysBefore),
      );
      const after = await uplinkInSession(net, device, { fPort: 1, payload: bytes(4) });
      assert.equal(after.fCnt, 0);
    });
  });

  it('keeps the session before a rejoin until the device uses the new one (lost JoinAccept)', async () => {
    await withNetwork(async (net) => {
      const device = await net.addOtaaDevice('0000000000001108', '1.1');
      await net.join(device);
      await uplinkInSession(net, device, { fPort: 1, payload: bytes(1) });
      const firstAddr = device.devAddr;

      // The network accepts the rejoin, but the device never hears the JoinAccept.
      net.setDeaf(device, true);
      const firstRejoin = device.rejoinRequest(0);
      net.transmit(device, firstRejoin);
      await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'join' && e.rejoinType === 0,
        'join event of the rejoin',
      );
      await net.waitForMetric('galet_network_tx_acks_ok_total', 1);
      assert.equal(device.devAddr, firstAddr, 'the device still has its old session');

      // Its next uplink, in the old session, is still stored (nothing accepted is lost).
      const lost = await uplinkInSession(net, device, { fPort: 2, payload: bytes(2) });
      assert.equal(lost.data, Buffer.from(bytes(2)).toString('base64'));
      assert.equal(await net.metric('galet_network_uplinks_on_previous_session_total'), 1);
      const warning = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'log' && e.code === 'REJOIN_NOT_TAKEN',
        'log event about the old session',
      );
      assert.match(warning.description, /missed the JoinAccept/);

      // A replay of that rejoin verifies with the old session but does not count above it.
      net.transmit(device, firstRejoin);
      await net.waitForMetric('galet_network_rejoins_rejected_total', 1);
      const replay = await net.waitForEvent(
        device.devEui,
        (e) => e.event === 'log' && e.code === 'REJOIN',
        'replayed rejoin refused',
      );
      assert.match(replay.description, /RJcount0 0 is not above the last one \(0\)/);

      // It rejoins again, still signing with the old session; this time it hears the answer.
      net.setDeaf(device, false);
      net.transmit(device, device.rejoinRequest(0));
      await waitFor('device took the second JoinAccept', () => device.devAddr !== firstAddr);
      const after = await uplinkInSession(net, device, { fPort: 3, payload: bytes(3) });
      assert.equal(after.fCnt, 0);
      assert.equal(await net.metric('galet_network_rejoins_accepted_total'), 2);
      assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
    });
  });
});
