// Webhook deliveries end to end in one process: the dispatcher and the sender on a real SQLite
// event log, POSTing to real HTTP receivers on 127.0.0.1. Signature, receiver down then back,
// ordering per device, a stuck device, timeouts, dead-letter and replay, permanent refusals.
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  type RunningWebhooks,
  startWebhooks,
  verifySignature,
  type WebhookSettings,
} from '../../../src/application/integrations/webhooks/index.js';
import {
  retryDelayMs,
  verdictOf,
} from '../../../src/application/integrations/webhooks/retry-policy.js';
import { signatureHeader } from '../../../src/application/integrations/webhooks/signature.js';
import { silentLogger } from '../../../src/logger.js';
import {
  createStorage,
  openDatabase,
  SecretBox,
  type Storage,
} from '../../../src/storage/index.js';
import { WebhookReceiver, waitUntil } from './webhook-receiver.js';

const SECRET = 'receiver-shared-secret-0123456789';
const FAST: WebhookSettings = {
  timeoutMs: 300,
  retryInitialMs: 20,
  retryMaxMs: 150,
  pollIntervalMs: 20,
  statsIntervalMs: 20,
  concurrency: 4,
};

interface Setup {
  storage: Storage;
  applicationId: string;
  receiver: WebhookReceiver;
  webhooks: RunningWebhooks;
  webhookId: string;
  append(devEui: string, count: number, type?: string): Promise<number[]>;
}

async function setUp(
  t: TestContext,
  settings: WebhookSettings = {},
  webhook: { headers?: Record<string, string>; eventTypes?: string[]; listen?: boolean } = {},
): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-webhook-delivery-'));
  const database = await openDatabase({ dataDir });
  const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
  const receiver = new WebhookReceiver();
  await receiver.listen();
  if (webhook.listen === false) await receiver.close();
  const application = await storage.applications.create({ name: 'water' });
  const created = await storage.webhooks.create({
    applicationId: application.id,
    url: receiver.url,
    secret: SECRET,
    ...(webhook.headers === undefined ? {} : { headers: webhook.headers }),
    ...(webhook.eventTypes === undefined ? {} : { eventTypes: webhook.eventTypes }),
  });
  const listeners = new Set<() => void>();
  const webhooks = await startWebhooks({
    storage,
    logger: silentLogger,
    readyUpTo: () => Number.MAX_SAFE_INTEGER,
    onEventsReady: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    settings: { ...FAST, ...settings },
    feedPollIntervalMs: 20,
  });
  t.after(async () => {
    await webhooks.close();
    await receiver.close();
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const fCnts = new Map<string, number>();
  return {
    storage,
    applicationId: application.id,
    receiver,
    webhooks,
    webhookId: created.id,
    async append(devEui, count, type = 'up') {
      const ids: number[] = [];
      for (let n = 0; n < count; n++) {
        const fCnt = fCnts.get(devEui) ?? 0;
        fCnts.set(devEui, fCnt + 1);
        ids.push(
          await storage.events.append({
            devEui,
            applicationId: application.id,
            type,
            time: new Date().toISOString(),
            body: { deviceInfo: { devEui, applicationId: application.id }, fCnt, data: 'AQI=' },
          }),
        );
      }
      for (const listener of listeners) listener();
      return ids;
    },
  };
}

/** Every event reached the receiver, and each device's events arrived in id order. */
function assertOrderedPerDevice(receiver: WebhookReceiver, expected: Map<string, number[]>): void {
  const byDevice = receiver.idsByDevice();
  for (const [devEui, ids] of expected) {
    const received = byDevice.get(devEui) ?? [];
    const sorted = [...received].sort((a, b) => a - b);
    assert.deepEqual(received, sorted, `device ${devEui}: requests in event order`);
    assert.deepEqual([...new Set(received)], ids, `device ${devEui}: every event`);
  }
}

describe('webhook signature and retry policy', () => {
  it('verifies its own signature and refuses a changed body, secret, old time or bad header', () => {
    const body = '{"fCnt":1}';
    const now = 1_767_225_600;
    const header = signatureHeader(SECRET, body, now);
    assert.match(header, /^t=1767225600,v1=[0-9a-f]{64}$/);
    assert.equal(verifySignature(SECRET, header, body, { nowSeconds: now + 10 }), true);
    assert.equal(verifySignature(SECRET, header, '{"fCnt":2}', { nowSeconds: now }), false);
    assert.equal(verifySignature(`${SECRET}x`, header, body, { nowSeconds: now }), false);
    assert.equal(verifySignature(SECRET, header, body, { nowSeconds: now + 301 }), false);
    assert.equal(verifySignature(SECRET, 'v1=00', body, { nowSeconds: now }), false);
    assert.equal(verifySignature(SECRET, undefined, body, { nowSeconds: now }), false);
  });

  it('classifies statuses and backs off exponentially with jitter up to the cap', () => {
    assert.deepEqual([200, 204, 301, 400, 401, 404, 408, 410, 429, 500, 503].map(verdictOf), [
      'delivered',
      'delivered',
      'retry',
      'permanent',
      'permanent',
      'permanent',
      'retry',
      'permanent',
      'retry',
      'retry',
      'retry',
    ]);
    const settings = { retryInitialMs: 1000, retryMaxMs: 60_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 10].map((n) => retryDelayMs(n, settings, () => 1)),
      [1000, 2000, 4000, 8000, 60_000],
    );
    assert.deepEqual(
      [1, 2, 3].map((n) => retryDelayMs(n, settings, () => 0)),
      [500, 1000, 2000],
    );
    assert.equal(
      retryDelayMs(1, settings, () => 0, 30),
      30_000,
      'Retry-After honoured',
    );
    assert.equal(
      retryDelayMs(1, settings, () => 0, 3600),
      60_000,
      'up to the cap',
    );
  });
});

describe('webhook deliveries', () => {
  it('POSTs the event body with a signature a receiver can verify, and its headers', async (t) => {
    const setup = await setUp(t, {}, { headers: { Authorization: 'Bearer receiver-token' } });
    const [id] = await setup.append('0102030405060708', 1);
    await waitUntil(() => setup.receiver.received.length === 1, 'the delivery');
    const request = setup.receiver.received[0]!;
    assert.equal(request.url, '/hook?event=up');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['authorization'], 'Bearer receiver-token');
    assert.equal(request.headers['x-galet-event-id'], String(id));
    assert.equal(request.headers['x-galet-event-type'], 'up');
    assert.equal(request.headers['x-galet-delivery-attempt'], '1');
    assert.deepEqual(JSON.parse(request.body), {
      deviceInfo: { devEui: '0102030405060708', applicationId: setup.applicationId },
      fCnt: 0,
      data: 'AQI=',
    });
    const signature = String(request.headers['x-galet-signature']);
    assert.equal(verifySignature(SECRET, signature, request.body), true);
    // The check docs/webhooks.md shows a receiver, written out independently of Galet's code.
    const [, t1, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature) ?? [];
    const expected = createHmac('sha256', SECRET).update(`${t1}.${request.body}`).digest();
    assert.equal(timingSafeEqual(Buffer.from(v1!, 'hex'), expected), true);
    assert.ok(Math.abs(Date.now() / 1000 - Number(t1)) < 60);
    await waitUntil(async () => {
      const [delivery] = await setup.storage.webhooks.listDeliveries(setup.webhookId);
      return delivery?.status === 'delivered';
    }, 'the delivery recorded');
    assert.equal(setup.webhooks.metricSource()['delivered'], 1);
  });

  it('delivers every event in order per device after the receiver was down for a while', async (t) => {
    const setup = await setUp(t, {}, { listen: false });
    const devices = ['00000000000000a1', '00000000000000a2', '00000000000000a3'];
    const expected = new Map<string, number[]>();
    for (let round = 0; round < 4; round++) {
      for (const devEui of devices) {
        expected.set(devEui, [...(expected.get(devEui) ?? []), ...(await setup.append(devEui, 3))]);
      }
    }
    // Down: connections refused, attempts fail and are retried.
    await waitUntil(
      () => (setup.webhooks.metricSource()['failedAttempts'] as number) >= 6,
      'failed attempts while down',
    );
    assert.equal(setup.receiver.received.length, 0);
    // Back, but answering 503 to the first requests.
    let refused = 0;
    setup.receiver.answer = () => (refused++ < 4 ? 503 : 200);
    await setup.receiver.listen();
    await waitUntil(
      async () =>
        (await setup.storage.webhooks.listDeliveries(setup.webhookId, { status: 'delivered' }))
          .length === 36,
      'every delivery',
    );
    assertOrderedPerDevice(setup.receiver, expected);
    const webhook = await setup.storage.webhooks.get(setup.webhookId);
    assert.match(webhook?.lastError?.message ?? '', /HTTP 503|connection failed/);
    await waitUntil(() => setup.webhooks.sender.pending === 0, 'the gauge drains');
    assert.equal(setup.webhooks.gauges['webhooks_oldest_pending_age_seconds']?.read(), 0);
  });

  it('keeps other devices going while one device is stuck on a failing event', async (t) => {
    const setup = await setUp(t);
    const stuck = '00000000000000b1';
    const fine = '00000000000000b2';
    // The stuck device's requests time out (no answer), then get 500s.
    setup.receiver.answer = (request) =>
      request.devEui === stuck ? (request.attempt <= 2 ? 'hang' : 500) : 200;
    const stuckIds = await setup.append(stuck, 3);
    const fineIds = await setup.append(fine, 10);
    await waitUntil(
      () => new Set(setup.receiver.idsByDevice().get(fine)).size === 10,
      "the other device's events",
    );
    await waitUntil(
      () => (setup.receiver.idsByDevice().get(stuck) ?? []).length >= 4,
      'several attempts of the stuck event',
    );
    assert.deepEqual(
      [...new Set(setup.receiver.idsByDevice().get(stuck))],
      [stuckIds[0]],
      'only the head of the stuck device was tried',
    );
    assertOrderedPerDevice(setup.receiver, new Map([[fine, fineIds]]));
    const [head] = await setup.storage.webhooks.listDeliveries(setup.webhookId, {
      status: 'pending',
    });
    assert.equal(head?.eventId, stuckIds[0]);
    assert.ok((head?.attempts ?? 0) >= 3);
    assert.ok(head?.lastError === 'HTTP 500' || head?.lastError?.startsWith('no response within'));
  });

  it('dead-letters after the configured age, then a replay delivers them in order', async (t) => {
    const setup = await setUp(t, { deadLetterAfterMs: 250 });
    setup.receiver.answer = () => 500;
    const devices = ['00000000000000c1', '00000000000000c2'];
    const expected = new Map<string, number[]>();
    for (const devEui of devices) expected.set(devEui, await setup.append(devEui, 3));
    await waitUntil(
      async () =>
        (await setup.storage.webhooks.listDeliveries(setup.webhookId, { status: 'dead' }))
          .length === 6,
      'every delivery dead-lettered',
    );
    assert.equal(setup.webhooks.metricSource()['dead'], 6);
    setup.receiver.received.length = 0;
    setup.receiver.answer = () => 200;
    assert.deepEqual(await setup.storage.webhooks.replay(setup.webhookId, { status: 'dead' }), {
      requeued: 6,
      nextFromEventId: null,
    });
    setup.webhooks.sender.wake();
    await waitUntil(
      async () =>
        (await setup.storage.webhooks.listDeliveries(setup.webhookId, { status: 'delivered' }))
          .length === 6,
      'the replayed deliveries',
    );
    assertOrderedPerDevice(setup.receiver, expected);
  });

  it('dead-letters at once on a permanent refusal (4xx) and shows it on the webhook', async (t) => {
    const setup = await setUp(t);
    setup.receiver.answer = (request) => (request.eventId % 2 === 1 ? 410 : 200);
    const ids = await setup.append('00000000000000d1', 4);
    await waitUntil(async () => {
      const deliveries = await setup.storage.webhooks.listDeliveries(setup.webhookId);
      return deliveries.length === 4 && deliveries.every((d) => d.status !== 'pending');
    }, 'every delivery finished');
    const deliveries = await setup.storage.webhooks.listDeliveries(setup.webhookId);
    assert.deepEqual(
      deliveries.map((d) => [d.eventId, d.status, d.attempts]),
      ids.map((id) => [id, id % 2 === 1 ? 'dead' : 'delivered', 1]),
    );
    const webhook = await setup.storage.webhooks.get(setup.webhookId);
    assert.equal(webhook?.lastError?.httpStatus, 410);
    assert.equal(setup.receiver.received.length, 4, 'no retry of a permanent refusal');
  });

  it('sends nothing when the secret does not open, and dead-letters a purged event', async (t) => {
    const setup = await setUp(t, { deadLetterAfterMs: 60_000 });
    const db = setup.storage.database.db;
    const other = await setup.storage.webhooks.create({
      applicationId: setup.applicationId,
      url: setup.receiver.url,
      secret: 'another-secret-0123456789',
      enabled: false,
    });
    const sealedElsewhere = await db
      .selectFrom('webhooks')
      .select('secret_enc')
      .where('id', '=', other.id)
      .executeTakeFirstOrThrow();
    await db
      .updateTable('webhooks')
      .set({ secret_enc: sealedElsewhere.secret_enc, updated_at: new Date().toISOString() })
      .where('id', '=', setup.webhookId)
      .execute();
    const [id] = await setup.append('00000000000000f1', 1);
    await waitUntil(async () => {
      const webhook = await setup.storage.webhooks.get(setup.webhookId);
      return webhook?.lastError?.message.startsWith("cannot open the webhook's secret") === true;
    }, 'the failure on the webhook');
    assert.equal(setup.receiver.received.length, 0, 'nothing sent unsigned');
    // Retention purges the event before it could be sent: dead-lettered, not sent.
    await db.deleteFrom('events').where('id', '=', id!).execute();
    await waitUntil(async () => {
      const [delivery] = await setup.storage.webhooks.listDeliveries(setup.webhookId);
      return delivery?.status === 'dead';
    }, 'the dead letter');
    const [delivery] = await setup.storage.webhooks.listDeliveries(setup.webhookId);
    assert.match(delivery?.lastError ?? '', /no longer stored/);
    assert.equal(setup.receiver.received.length, 0);
  });

  it('sends only the event types the webhook takes', async (t) => {
    const setup = await setUp(t, {}, { eventTypes: ['join'] });
    await setup.append('00000000000000e1', 2, 'up');
    const [join] = await setup.append('00000000000000e1', 1, 'join');
    await setup.append('00000000000000e1', 2, 'up');
    await waitUntil(() => setup.webhooks.feed.position >= (join ?? 0) + 2, 'the feed');
    await waitUntil(() => setup.receiver.received.length === 1, 'the join');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      setup.receiver.received.map((r) => [r.eventId, r.url]),
      [[join, '/hook?event=join']],
    );
  });
});
