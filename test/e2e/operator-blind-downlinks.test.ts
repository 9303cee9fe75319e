/**
 * Operator-blind downlinks (issue 5) with two real processes: the provider queues a downlink on
 * its own API, encrypts it for the counter the network names and hands it over the link; the
 * simulated device receives it through the operator's UDP port and decrypts it. A confirmed
 * downlink the device misses is sent again with a new counter: the network hands it back and the
 * provider encrypts it again. An item deleted on the provider is withdrawn from the operator at
 * once. A LoRaWAN 1.1 device goes through the same flow (AFCntDown). The operator's files, log
 * and (on PostgreSQL, each role with a database of its own) rows never hold a downlink's
 * plaintext or a key.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { SimulatedDevice } from '../../src/sim/device.js';
import { ENGINE_NAMES, roleDatabases } from '../helpers/engine-places.js';
import { APP_KEY, JOIN_EUI, NWK_KEY, waitFor } from '../scenarios/helpers.js';
import {
  assertHoldsNone,
  filesUnder,
  type GaletProcess,
  PROVIDER_TOKEN,
  postgresDump,
  request,
  startOperator,
  startProviderProcess,
  stop,
} from './operator-blind-helpers.js';

const GW = 'aa555a0000000e02';

interface QueueItem {
  id: string;
  data: string;
  status: string;
  encryptedFor: { fCntDown: number; sessionKeyId: string } | null;
}

// The engines side by side: each run waits on its processes and radio windows most of the time.
describe('operator-blind downlinks across two processes', { concurrency: true }, () => {
  for (const engine of ENGINE_NAMES) {
    it(`sends the provider’s downlinks encrypted, re-encrypts them when the counter moved on, withdraws a deleted one, and serves a 1.1 device (${engine})`, {
      timeout: 90_000,
    }, async (t) => {
      // On PostgreSQL each role has a database of its own, as two organisations would.
      const databases = await roleDatabases(t, engine, ['operator', 'provider']);
      if (databases === undefined) return;
      const operatorSide = await startOperator(GW, databases.operator);
      const { opDir, provDir, operator, net } = operatorSide;
      let provider: GaletProcess | undefined;
      try {
        const applicationId = net.applicationId;
        provider = (await startProviderProcess(operatorSide, databases.provider)).provider;
        const providerPort = provider.httpPort;
        const onProvider = (method: string, path: string, body?: unknown) =>
          request(providerPort, PROVIDER_TOKEN, method, path, body);

        const register = async (devEui: string, macVersion: '1.0.4' | '1.1.0') => {
          const created = await onProvider('POST', '/api/v1/devices', {
            devEui,
            joinEui: JOIN_EUI,
            name: `meter ${devEui}`,
            applicationId,
            macVersion,
            appKey: Buffer.from(APP_KEY).toString('hex'),
            ...(macVersion === '1.1.0' ? { nwkKey: Buffer.from(NWK_KEY).toString('hex') } : {}),
          });
          assert.equal(created.status, 201, JSON.stringify(created.json));
        };
        const queueOnProvider = async (
          devEui: string,
          data: Buffer,
          confirmed: boolean,
        ): Promise<string> => {
          const queued = await onProvider('POST', `/api/v1/devices/${devEui}/queue`, {
            fPort: 10,
            data: data.toString('base64'),
            confirmed,
          });
          assert.equal(queued.status, 201, JSON.stringify(queued.json));
          return queued.json.id;
        };
        /** The item as the operator holds it, once `ready` says so. */
        const onOperator = (devEui: string, id: string, ready: (item: QueueItem) => boolean) =>
          waitFor(`the operator holds downlink ${id}`, async () => {
            const listed = await net.galet.request('GET', `/api/v1/devices/${devEui}/queue`);
            const item = (listed.json.items as QueueItem[]).find((i) => i.id === id);
            return item !== undefined && ready(item) ? item : undefined;
          });
        const providerEvent = (devEui: string, type: string, queueItemId: string) =>
          waitFor(`the provider's ${type} event of ${queueItemId}`, async () => {
            const events = (await onProvider('GET', `/api/v1/devices/${devEui}/events?limit=100`))
              .json.events as { event: string; queueItemId?: string; acknowledged?: boolean }[];
            return events.find((e) => e.event === type && e.queueItemId === queueItemId);
          });
        const providerUp = (devEui: string, fCnt: number) =>
          waitFor(`the provider's up event ${fCnt} of ${devEui}`, async () => {
            const events = (await onProvider('GET', `/api/v1/devices/${devEui}/events?limit=100`))
              .json.events as { event: string; fCnt: number; data?: string }[];
            return events.find((e) => e.event === 'up' && e.fCnt === fCnt);
          });
        const downlinkAfter = async (device: SimulatedDevice, uplink: Buffer) => {
          const before = device.receivedDownlinks.length;
          await net.uplink(device, { fPort: 3, payload: uplink });
          return net.waitForDownlink(device, before + 1);
        };
        const plaintexts: Buffer[] = [];
        const uplinkPayload = (n: number) => Buffer.from(`index=${n}17 m3`);

        // A LoRaWAN 1.0.4 device: one FCntDown for everything.
        const devEui = '00000000000e0101';
        await register(devEui, '1.0.4');
        const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false });
        await net.join(device);
        await net.uplink(device, { fPort: 3, payload: uplinkPayload(0) });
        await providerUp(devEui, 0);

        // The provider's downlink reaches the device in RX1, encrypted by the provider alone.
        const open = Buffer.from('valve=open until=06:00');
        plaintexts.push(open);
        const openId = await queueOnProvider(devEui, open, false);
        const openHeld = await onOperator(devEui, openId, () => true);
        assert.notEqual(openHeld.data, open.toString('base64'), 'the operator holds ciphertext');
        assert.equal(Buffer.from(openHeld.data, 'base64').length, open.length);
        const first = await downlinkAfter(device, uplinkPayload(1));
        assert.deepEqual(Buffer.from(first.payload), open);
        assert.equal(first.fPort, 10);
        assert.equal(first.window, 'rx1');
        assert.equal(first.fCnt, openHeld.encryptedFor!.fCntDown);
        await providerEvent(devEui, 'txack', openId);

        // The counter race: the device misses a confirmed downlink (FCntDown N). Its next uplink,
        // confirmed and without ACK, is answered by an ACK-only frame that takes N + 1; the
        // retransmission needs N + 2, so the network hands the item back and the provider
        // encrypts it again for N + 2.
        const close = Buffer.from('valve=close flow<12.5');
        plaintexts.push(close);
        const closeId = await queueOnProvider(devEui, close, true);
        const closeHeld = await onOperator(devEui, closeId, () => true);
        const n = closeHeld.encryptedFor!.fCntDown;
        net.setDeaf(device, true);
        await net.uplink(device, { fPort: 3, payload: uplinkPayload(2) });
        await providerEvent(devEui, 'txack', closeId);
        net.setDeaf(device, false);
        const before = device.receivedDownlinks.length;
        await net.uplink(device, { fPort: 3, payload: uplinkPayload(3), confirmed: true });
        const ackOnly = await net.waitForDownlink(device, before + 1);
        assert.equal(ackOnly.ack, true);
        assert.equal(ackOnly.fPort, undefined, 'the ACK went out without the stale item');
        assert.equal(ackOnly.fCnt, n + 1);
        const reencrypted = await onOperator(
          devEui,
          closeId,
          (item) => item.encryptedFor!.fCntDown !== n,
        );
        assert.equal(reencrypted.encryptedFor!.fCntDown, n + 2);
        assert.notEqual(reencrypted.data, closeHeld.data);
        const second = await downlinkAfter(device, uplinkPayload(4));
        assert.deepEqual(Buffer.from(second.payload), close);
        assert.equal(second.confirmed, true);
        assert.equal(second.fCnt, reencrypted.encryptedFor!.fCntDown);
        await net.uplink(device, { fPort: 3, payload: uplinkPayload(5) }); // carries the ACK
        const ack = await providerEvent(devEui, 'ack', closeId);
        assert.equal(ack.acknowledged, true);
        const left = await onProvider('GET', `/api/v1/devices/${devEui}/queue`);
        assert.deepEqual(left.json.items, [], 'nothing left in the provider’s queue');
        assert.ok((await net.metric('galet_network_blind_downlinks_handed_back_total')) >= 1);
        assert.ok(
          (await net.metric('galet_provider_links_blind_downlinks_reencrypted_total')) >= 1,
        );

        // Deleted on the provider's API: the operator's copy is withdrawn before the answer.
        const withdrawn = Buffer.from('valve=open until=07:00');
        plaintexts.push(withdrawn);
        const withdrawnId = await queueOnProvider(devEui, withdrawn, false);
        await onOperator(devEui, withdrawnId, () => true);
        const deleted = await onProvider(
          'DELETE',
          `/api/v1/devices/${devEui}/queue/${withdrawnId}`,
        );
        assert.equal(deleted.status, 204, JSON.stringify(deleted.json));
        const held = await net.galet.request('GET', `/api/v1/devices/${devEui}/queue`);
        assert.deepEqual(held.json.items, [], 'nothing left pending on the operator');
        assert.equal(await net.metric('galet_provider_links_blind_downlinks_withdrawn_total'), 1);

        // A LoRaWAN 1.1 device: application downlinks count with AFCntDown.
        const devEui11 = '00000000000e0111';
        await register(devEui11, '1.1.0');
        const device11 = await net.addOtaaDevice(devEui11, '1.1', { register: false });
        await net.join(device11);
        const p11 = Buffer.from('level=3.27 m');
        plaintexts.push(p11);
        await net.uplink(device11, { fPort: 3, payload: p11 });
        const up11 = await providerUp(devEui11, 0);
        assert.deepEqual(Buffer.from(up11.data!, 'base64'), p11, 'decrypted at the provider');
        // Two frames on NFCntDown first: the ACKs of confirmed uplinks.
        for (const n of [1, 2]) {
          const before = device11.receivedDownlinks.length;
          await net.uplink(device11, { fPort: 3, payload: uplinkPayload(n), confirmed: true });
          const acked = await net.waitForDownlink(device11, before + 1);
          assert.equal(acked.ack, true);
          assert.equal(acked.fPort, undefined);
        }
        const nFCntDownUsed = device11.receivedDownlinks.at(-1)!.fCnt;
        const pump = Buffer.from('pump=off');
        plaintexts.push(pump);
        const pumpId = await queueOnProvider(devEui11, pump, false);
        const pumpHeld = await onOperator(devEui11, pumpId, () => true);
        assert.equal(pumpHeld.encryptedFor!.fCntDown, 0, 'the first AFCntDown');
        const third = await downlinkAfter(device11, uplinkPayload(3));
        assert.deepEqual(Buffer.from(third.payload), pump);
        assert.equal(third.fCnt, 0);
        assert.ok(nFCntDownUsed >= 1, 'NFCntDown moved on meanwhile');

        // Nothing the operator keeps or logs holds a key or a plaintext downlink.
        await stop(operator);
        const secrets = [
          ['AppKey', Buffer.from(APP_KEY)],
          ['NwkKey', Buffer.from(NWK_KEY)],
          ['AppSKey (1.0)', Buffer.from(device.sessionKeys()!.appSKey)],
          ['AppSKey (1.1)', Buffer.from(device11.sessionKeys()!.appSKey)],
          ...plaintexts.map((plaintext) => [`plaintext ${plaintext}`, plaintext] as const),
        ] as const;
        for (const [path, content] of await filesUnder(opDir)) {
          assertHoldsNone(path, content, secrets);
        }
        assertHoldsNone('the operator log', Buffer.from(operator.output.join('')), secrets);
        if (databases.operator !== undefined) {
          const dump = await postgresDump(databases.operator);
          // The scan reads real rows: the provider's items are there, encrypted.
          assert.ok(dump.includes(closeId) && dump.includes(withdrawnId));
          assertHoldsNone('the operator database', dump, secrets);
        }
      } finally {
        await net.close();
        if (provider !== undefined) await stop(provider);
        await stop(operator);
        await rm(opDir, { recursive: true, force: true });
        await rm(provDir, { recursive: true, force: true });
      }
    });
  }
});
