/**
 * A service provider rotates its master key (issue 5): the network keeps holding the AppSKey
 * envelopes of the sessions opened before, so the provider's application KEK must outlive the
 * rotation. An operator's Galet (roles network) and a linked provider, in this process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rotateMasterKey } from '../../src/cli/master-key-command.js';
import type { RunningProvider } from '../../src/server/start-provider.js';
import { linkProvider, providerRequest } from '../helpers/linked-provider.js';
import { APP_KEY, JOIN_EUI, ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

const GW = 'aa555a0000000d01';

async function decryptedUplink(provider: RunningProvider, devEui: string, fCnt: number) {
  return waitFor(`the provider stores uplink ${fCnt} decrypted`, async () => {
    const events = await providerRequest(provider, 'GET', `/api/v1/devices/${devEui}/events`);
    const up = (events.json.events as { event: string; fCnt?: number; data?: string }[]).find(
      (event) => event.event === 'up' && event.fCnt === fCnt,
    );
    return up?.data === undefined ? undefined : Buffer.from(up.data, 'base64');
  });
}

describe('a provider rotating its master key', () => {
  it('still decrypts the uplinks of a session opened before the rotation', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, { roles: ['network'] });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-provider-rotation-'));
    let provider: RunningProvider | undefined;
    try {
      const linked = await linkProvider(net, providerDir);
      provider = linked.provider;
      const devEui = '00000000000d0001';
      const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
        devEui,
        joinEui: JOIN_EUI,
        name: 'meter',
        applicationId: net.applicationId,
        macVersion: '1.0.4',
        appKey: Buffer.from(APP_KEY).toString('hex'),
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false });
      await net.join(device);
      const before = await net.uplink(device, { fPort: 2, payload: Buffer.from('index=1') });
      assert.deepEqual(
        await decryptedUplink(provider, devEui, before.transmission.counter),
        Buffer.from('index=1'),
      );
      const masterKeyBefore = await readFile(join(providerDir, 'master.key'), 'utf8');

      await provider.close();
      provider = undefined;
      const lines: string[] = [];
      const rotated = await rotateMasterKey({
        dataDir: providerDir,
        env: {},
        out: (line) => lines.push(line),
      });
      assert.equal(rotated.outcome, 'rotated', lines.join('\n'));
      assert.notEqual(await readFile(join(providerDir, 'master.key'), 'utf8'), masterKeyBefore);

      // Same session on the network (no rejoin): its envelope is under the KEK of before.
      ({ provider } = await linkProvider(net, providerDir, { token: linked.token }));
      const after = await net.uplink(device, { fPort: 2, payload: Buffer.from('index=2') });
      assert.deepEqual(
        await decryptedUplink(provider, devEui, after.transmission.counter),
        Buffer.from('index=2'),
      );
      // And a new join after the rotation is wrapped under that same KEK.
      await net.join(device);
      const rejoined = await net.uplink(device, { fPort: 2, payload: Buffer.from('index=3') });
      assert.deepEqual(
        await decryptedUplink(provider, devEui, rejoined.transmission.counter),
        Buffer.from('index=3'),
      );
    } finally {
      await provider?.close();
      await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });
});
