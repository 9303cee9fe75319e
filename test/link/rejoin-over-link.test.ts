/**
 * LoRaWAN 1.1 RejoinRequests of a linked provider's device (types 0, 2 and 1) reach the
 * provider's join server over the link as Backend Interfaces RejoinReq: the device gets a new
 * session each time, its uplinks are decrypted at the provider with the new AppSKey, and the
 * provider's downlink keystream memory holds the session the network names.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { RunningProvider } from '../../src/server/start-provider.js';
import type { SimulatedDevice } from '../../src/sim/device.js';
import { KEPT_KEYSTREAM_SESSIONS } from '../../src/storage/index.js';
import { linkProvider, providerRequest } from '../helpers/linked-provider.js';
import { APP_KEY, JOIN_EUI, NWK_KEY, ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

const GW = 'aa555a0000000d11';

describe('provider link: rejoins', () => {
  it('answers RejoinRequests of types 0, 2 and 1 from the provider’s join server', {
    timeout: 60_000,
  }, async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, {
      roles: ['network'],
    });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-rejoin-'));
    let provider: RunningProvider | undefined;
    try {
      ({ provider } = await linkProvider(net, providerDir));
      const devEui = '00000000000d1101';
      const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
        devEui,
        joinEui: JOIN_EUI,
        name: 'flow meter',
        applicationId: net.applicationId,
        macVersion: '1.1.0',
        appKey: Buffer.from(APP_KEY).toString('hex'),
        nwkKey: Buffer.from(NWK_KEY).toString('hex'),
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const device = await net.addOtaaDevice(devEui, '1.1', { register: false });
      await net.join(device);

      let sent = 0;
      /** An uplink in the device's current session, decrypted at the provider. */
      const decryptedAtProvider = async (d: SimulatedDevice) => {
        const payload = Buffer.from(`flow=${++sent}`);
        await net.uplink(d, { fPort: 2, payload });
        const up = await waitFor(`the provider decrypts uplink ${sent}`, async () => {
          const events = await providerRequest(
            provider!,
            'GET',
            `/api/v1/devices/${devEui}/events?limit=50`,
          );
          return (events.json.events as { event: string; data?: string }[]).find(
            (e) => e.event === 'up' && e.data === payload.toString('base64'),
          );
        });
        assert.ok(up);
      };
      await decryptedAtProvider(device);

      const sessionsSeen = new Set<string>();
      for (const rejoinType of [0, 2, 1] as const) {
        const keysBefore = JSON.stringify(device.sessionKeys());
        net.transmit(device, device.rejoinRequest(rejoinType));
        await net.waitForEvent(
          devEui,
          (e) => e.event === 'join' && e.rejoinType === rejoinType,
          `the join event of the type ${rejoinType} rejoin`,
        );
        await waitFor(`the device takes the type ${rejoinType} JoinAccept`, () =>
          JSON.stringify(device.sessionKeys()) !== keysBefore ? true : undefined,
        );
        await decryptedAtProvider(device);
        const [newest] = await provider.storage.downlinkKeystreams.sessionsOf(devEui);
        assert.ok(newest !== undefined && !sessionsSeen.has(newest.sessionKeyId));
        sessionsSeen.add(newest.sessionKeyId);
      }
      const kept = await provider.storage.downlinkKeystreams.sessionsOf(devEui);
      assert.equal(kept.length, KEPT_KEYSTREAM_SESSIONS, 'the join and three rejoins: three kept');

      // A downlink of the provider goes out in the newest session, the one the network names.
      const command = Buffer.from('reset=1');
      const queued = await providerRequest(provider, 'POST', `/api/v1/devices/${devEui}/queue`, {
        fPort: 4,
        data: command.toString('base64'),
      });
      assert.equal(queued.status, 201);
      const held = await waitFor('the network holds the downlink', async () => {
        const item = await net.galet.storage.downlinkQueue.get(queued.json.id);
        return item?.encryptedFor;
      });
      assert.equal(held.sessionKeyId, kept[0]!.sessionKeyId);
      const before = device.receivedDownlinks.length;
      await net.uplink(device, { fPort: 2, payload: Buffer.from('flow=last') });
      const downlink = await net.waitForDownlink(device, before + 1);
      assert.deepEqual(Buffer.from(downlink.payload), command);
    } finally {
      await provider?.close();
      await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });
});
