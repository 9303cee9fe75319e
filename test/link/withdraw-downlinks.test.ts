/**
 * A provider's deleted downlinks are withdrawn from the operator's network at once, over a real
 * link (`withdrawDownlinks`): the network's copy fails and never goes out; an item transmitted
 * already is kept and answered 409 ALREADY_SENT; a flush takes every pending item back; with the
 * link down nothing is deleted (503). Also: the sessions the provider's join server issues are
 * the ones its keystream memory keeps (the network names them alike).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isLinkError, WITHDRAW_DOWNLINKS_METHOD } from '../../src/link/index.js';
import type { RunningProvider } from '../../src/server/start-provider.js';
import { capturingLogger, type LogEntry } from '../helpers/capture.js';
import { linkProvider, PROVIDER_TOKEN, providerRequest } from '../helpers/linked-provider.js';
import { APP_KEY, JOIN_EUI, ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

const GW = 'aa555a0000000d01';

async function providerMetric(provider: RunningProvider, name: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${provider.httpPort}/api/v1/metrics`, {
    headers: { authorization: `Bearer ${PROVIDER_TOKEN}` },
  });
  assert.equal(response.status, 200);
  for (const line of (await response.text()).split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return 0;
}

describe('provider link: withdrawing deleted downlinks', () => {
  it('withdraws a deleted item from the network at once, keeps a transmitted one, flushes, and deletes nothing while the link is down', {
    timeout: 60_000,
  }, async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, {
      roles: ['network'],
    });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-withdraw-'));
    const logs: LogEntry[] = [];
    let provider: RunningProvider | undefined;
    let networkUp = true;
    try {
      ({ provider } = await linkProvider(net, providerDir, { logger: capturingLogger(logs) }));
      const devEui = '00000000000d0001';
      const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
        devEui,
        joinEui: JOIN_EUI,
        name: 'valve',
        applicationId: net.applicationId,
        macVersion: '1.0.4',
        appKey: Buffer.from(APP_KEY).toString('hex'),
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false });
      await net.join(device);
      await net.uplink(device, { fPort: 2, payload: Buffer.from('open=0') });

      const onProvider = (method: string, path: string, body?: unknown) =>
        providerRequest(provider!, method, path, body);
      const queue = async (text: string, confirmed = false): Promise<string> => {
        const queued = await onProvider('POST', `/api/v1/devices/${devEui}/queue`, {
          fPort: 12,
          data: Buffer.from(text).toString('base64'),
          confirmed,
        });
        assert.equal(queued.status, 201, JSON.stringify(queued.json));
        return queued.json.id;
      };
      const onNetwork = (id: string) => net.galet.storage.downlinkQueue.get(id);
      const heldByNetwork = (id: string) =>
        waitFor(`the network holds ${id}`, async () => {
          const item = await onNetwork(id);
          return item?.status === 'pending' ? item : undefined;
        });

      // The sessions the provider's join server issued are those the network names.
      const first = await queue('valve=open');
      const held = await heldByNetwork(first);
      const sessions = await provider.storage.downlinkKeystreams.sessionsOf(devEui);
      assert.deepEqual(
        sessions.map((s) => s.sessionKeyId),
        [held.encryptedFor!.sessionKeyId],
      );

      // Deleted on the provider: the network's copy fails at once and never goes out.
      const deleted = await onProvider('DELETE', `/api/v1/devices/${devEui}/queue/${first}`);
      assert.equal(deleted.status, 204, JSON.stringify(deleted.json));
      const withdrawn = await onNetwork(first);
      assert.equal(withdrawn?.status, 'failed');
      assert.equal(withdrawn?.lastError, 'withdrawn by the provider');
      assert.equal((await provider.storage.downlinkQueue.get(first))?.status, 'failed');
      const left = await onProvider('GET', `/api/v1/devices/${devEui}/queue`);
      assert.deepEqual(left.json.items, []);
      const received = device.receivedDownlinks.length;
      await net.uplink(device, { fPort: 2, payload: Buffer.from('open=0') });
      await new Promise((resolve) => setTimeout(resolve, 1500)); // past RX1 and RX2
      assert.equal(device.receivedDownlinks.length, received, 'nothing reaches the device');
      assert.equal(
        (await onProvider('DELETE', `/api/v1/devices/${devEui}/queue/${first}`)).status,
        409,
        'a withdrawn item is no longer pending',
      );
      assert.equal(
        (await onProvider('DELETE', `/api/v1/devices/${devEui}/queue/${crypto.randomUUID()}`))
          .status,
        404,
      );
      assert.equal(await net.metric('galet_provider_links_blind_downlinks_withdrawn_total'), 1);
      assert.equal(
        await providerMetric(provider, 'galet_provider_link_downlinks_withdrawn_total'),
        1,
      );
      assert.ok(
        logs.some(
          (e) =>
            e.message === 'downlink deleted and withdrawn from the network' &&
            e.fields['queueItemId'] === first,
        ),
      );

      // Queued and deleted at once: the deletion waits for the hand-over, so the network's copy
      // (if it got one) is never left pending.
      const hasty = await queue('valve=half');
      assert.equal(
        (await onProvider('DELETE', `/api/v1/devices/${devEui}/queue/${hasty}`)).status,
        204,
      );
      const hastyOnNetwork = await onNetwork(hasty);
      assert.ok(
        hastyOnNetwork === undefined || hastyOnNetwork.status === 'failed',
        JSON.stringify(hastyOnNetwork),
      );

      // Transmitted already: the network answers `sent` with its counter; the API says so.
      const second = await queue('valve=closed', true);
      await heldByNetwork(second);
      const before = device.receivedDownlinks.length;
      await net.uplink(device, { fPort: 2, payload: Buffer.from('open=1') });
      const downlink = await net.waitForDownlink(device, before + 1);
      assert.deepEqual(Buffer.from(downlink.payload), Buffer.from('valve=closed'));
      const request = { devEui, ids: [second] };
      assert.deepEqual(await provider.link.client.request(WITHDRAW_DOWNLINKS_METHOD, request), {
        items: [{ id: second, status: 'sent', fCntDown: downlink.fCnt }],
      });
      const tooLate = await onProvider('DELETE', `/api/v1/devices/${devEui}/queue/${second}`);
      assert.equal(tooLate.status, 409, JSON.stringify(tooLate.json));
      assert.equal(tooLate.json.error, 'ALREADY_SENT');
      assert.equal(tooLate.json.details.fCntDown, downlink.fCnt);
      assert.equal((await onNetwork(second))?.status, 'sent', 'left as it was');
      assert.ok(
        (await net.metric('galet_provider_links_blind_downlink_withdrawals_too_late_total')) >= 1,
      );

      // Malformed or foreign withdrawals are refused and counted.
      const refusedBefore = await net.metric(
        'galet_provider_links_downlink_requests_refused_total',
      );
      for (const [body, code] of [
        [{ devEui, ids: [] }, 'INVALID_INPUT'],
        [{ devEui, ids: [second, second] }, 'INVALID_INPUT'],
        [{ devEui: '00000000000d0999', ids: [second] }, 'NOT_FOUND'],
      ] as const) {
        await assert.rejects(
          provider.link.client.request(WITHDRAW_DOWNLINKS_METHOD, body),
          (error) => isLinkError(error, 'REMOTE_ERROR') && error.remote?.code === code,
        );
      }
      assert.equal(
        await net.metric('galet_provider_links_downlink_requests_refused_total'),
        refusedBefore + 3,
      );

      // A flush takes every pending item back.
      const flushed = [await queue('a=1'), await queue('a=2')];
      for (const id of flushed) await heldByNetwork(id);
      const flush = await onProvider('DELETE', `/api/v1/devices/${devEui}/queue`);
      assert.equal(flush.status, 200, JSON.stringify(flush.json));
      assert.deepEqual(flush.json, { withdrawn: flushed, sent: [] });
      for (const id of flushed) assert.equal((await onNetwork(id))?.status, 'failed');

      // The link down: nothing is deleted, the caller is told to try again.
      const stranded = await queue('a=3');
      await heldByNetwork(stranded);
      await net.close();
      networkUp = false;
      await waitFor('the provider sees the link down', () =>
        provider!.link.client.state === 'connected' ? undefined : true,
      );
      const unavailable = await onProvider('DELETE', `/api/v1/devices/${devEui}/queue/${stranded}`);
      assert.equal(unavailable.status, 503, JSON.stringify(unavailable.json));
      assert.equal(unavailable.json.error, 'NETWORK_UNAVAILABLE');
      assert.equal((await provider.storage.downlinkQueue.get(stranded))?.status, 'pending');
      assert.equal(
        await providerMetric(
          provider,
          'galet_provider_link_downlink_withdrawals_unavailable_total',
        ),
        1,
      );
    } finally {
      await provider?.close();
      if (networkUp) await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });
});
