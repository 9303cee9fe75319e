/**
 * Deleting queued downlinks through the API of a Galet that runs its own network (all-in-one):
 * a pending item is taken out (failed, "deleted through the API") and never transmitted; one
 * transmitted already (a confirmed one waiting for its retransmission too) stays and is answered
 * 409 ALREADY_SENT with its counter; a flush takes every pending item out. (A provider's Galet
 * withdraws them from the operator's network first: test/link/withdraw-downlinks.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { ScenarioNetwork } from '../scenarios/helpers.js';

const GW = 'aa555a0000000d02';

describe('DELETE of queued downlinks (all-in-one)', () => {
  it('takes pending items out before they go, keeps a transmitted one, flushes the rest', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }]);
    try {
      const devEui = '00000000000d0101';
      const device = await net.addOtaaDevice(devEui, '1.0.4');
      await net.join(device);
      const queue = net.galet.storage.downlinkQueue;

      const deleted = await net.queueDownlink(devEui, 5, Buffer.from('never'));
      const answer = await net.galet.request(
        'DELETE',
        `/api/v1/devices/${devEui}/queue/${deleted}`,
      );
      assert.equal(answer.status, 204, JSON.stringify(answer.json));
      assert.equal((await queue.get(deleted))?.lastError, 'deleted through the API');
      const kept = await net.queueDownlink(devEui, 5, Buffer.from('sent'), true);
      await net.uplink(device, { fPort: 1, payload: Buffer.from([1]) });
      const downlink = await net.waitForDownlink(device, 1);
      assert.deepEqual(Buffer.from(downlink.payload), Buffer.from('sent'), 'not the deleted one');

      const tooLate = await net.galet.request('DELETE', `/api/v1/devices/${devEui}/queue/${kept}`);
      assert.equal(tooLate.status, 409);
      assert.equal(tooLate.json.error, 'ALREADY_SENT');
      assert.equal(tooLate.json.details.fCntDown, downlink.fCnt);
      assert.equal((await queue.get(kept))?.status, 'sent');
      // A confirmed item back in the queue for a retransmission went out already: kept too.
      const retried = await net.queueDownlink(devEui, 5, Buffer.from('retry'), true);
      await queue.markSent(retried, 40);
      await queue.requeue(retried, 'not acknowledged (attempt 1 of 3); sending again');
      const retry = await net.galet.request('DELETE', `/api/v1/devices/${devEui}/queue/${retried}`);
      assert.equal(retry.status, 409);
      assert.equal(retry.json.error, 'ALREADY_SENT');
      assert.equal(retry.json.details.fCntDown, 40);
      assert.equal((await queue.get(retried))?.status, 'pending');
      await assert.rejects(queue.withdraw(retried, 'x'), { code: 'INVALID_STATE' });
      await queue.markFailed(retried, 'test over');
      const again = await net.galet.request('DELETE', `/api/v1/devices/${devEui}/queue/${deleted}`);
      assert.equal(again.status, 409);
      assert.equal(again.json.error, 'INVALID_STATE');
      for (const path of [
        `/api/v1/devices/${devEui}/queue/${randomUUID()}`,
        `/api/v1/devices/${devEui}/queue/not-an-id`,
        `/api/v1/devices/00000000000d0999/queue/${kept}`,
      ]) {
        assert.equal((await net.galet.request('DELETE', path)).status, 404, path);
      }

      const flushed = [
        await net.queueDownlink(devEui, 6, Buffer.from('a')),
        await net.queueDownlink(devEui, 6, Buffer.from('b')),
      ];
      const flush = await net.galet.request('DELETE', `/api/v1/devices/${devEui}/queue`);
      assert.equal(flush.status, 200);
      assert.deepEqual(flush.json, { withdrawn: flushed, sent: [] });
      assert.deepEqual(
        (await net.galet.request('GET', `/api/v1/devices/${devEui}/queue`)).json.items,
        [],
      );
      const empty = await net.galet.request('DELETE', `/api/v1/devices/${devEui}/queue`);
      assert.deepEqual(empty.json, { withdrawn: [], sent: [] });
      const audit = await net.galet.request('GET', '/api/v1/audit?limit=10');
      const actions = (audit.json.entries as { action: string }[]).map((e) => e.action);
      assert.ok(actions.includes('device.queue-delete') && actions.includes('device.queue-flush'));
    } finally {
      await net.close();
    }
  });
});
