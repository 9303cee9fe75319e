// The whole path in a real all-in-one Galet: a webhook created through the API, a device that
// joins and sends uplinks through a simulated gateway (real UDP), and a real HTTP receiver that
// gets the join and the decrypted uplinks in order, signed with the secret the API showed once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { verifySignature } from '../../../src/application/integrations/webhooks/index.js';
import { ScenarioNetwork } from '../../scenarios/helpers.js';
import { WebhookReceiver, waitUntil } from './webhook-receiver.js';

const GATEWAY = 'aa555a00000000f1';

describe('webhooks in a running Galet', () => {
  it('delivers a join and uplinks from the radio to the receiver, signed and in order', async (t) => {
    const receiver = new WebhookReceiver();
    await receiver.listen();
    const net = await ScenarioNetwork.start([{ gatewayId: GATEWAY }]);
    t.after(async () => {
      await net.close();
      await receiver.close();
    });
    const created = await net.galet.request(
      'POST',
      `/api/v1/applications/${net.applicationId}/webhooks`,
      { url: receiver.url, eventTypes: ['join', 'up'] },
    );
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const secret = created.json.secret as string;

    const device = await net.addOtaaDevice('00000000000009a1', '1.0.3');
    await net.join(device);
    const payloads = [Uint8Array.of(1), Uint8Array.of(2, 2), Uint8Array.of(3, 3, 3)];
    for (const payload of payloads) await net.uplink(device, { fPort: 2, payload });

    await waitUntil(() => receiver.received.length >= 4, 'the join and three uplinks', 15_000);
    const requests = receiver.received.slice(0, 4);
    assert.deepEqual(
      requests.map((r) => r.url),
      ['/hook?event=join', '/hook?event=up', '/hook?event=up', '/hook?event=up'],
    );
    const ids = requests.map((r) => r.eventId);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    for (const request of requests) {
      assert.equal(
        verifySignature(secret, String(request.headers['x-galet-signature']), request.body),
        true,
      );
      assert.equal(JSON.parse(request.body).deviceInfo.devEui, device.devEui);
    }
    assert.deepEqual(
      requests.slice(1).map((r) => JSON.parse(r.body).data),
      payloads.map((p) => Buffer.from(p).toString('base64')),
    );

    await waitUntil(async () => {
      const answer = await net.galet.request(
        'GET',
        `/api/v1/applications/${net.applicationId}/webhooks/${created.json.id}/deliveries?status=delivered`,
      );
      return answer.json.deliveries.length === 4;
    }, 'four delivered rows');
    const metrics = await fetch(`${net.galet.baseUrl}/api/v1/metrics`, {
      headers: { authorization: `Bearer ${net.galet.adminToken.token}` },
    });
    const text = await metrics.text();
    assert.match(text, /^galet_webhooks_delivered_total 4$/m);
    assert.match(text, /^galet_webhooks_outbox_pending \d+$/m);
    assert.match(text, /^galet_webhooks_oldest_pending_age_seconds /m);
  });
});
