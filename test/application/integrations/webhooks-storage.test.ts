// The webhook repository and its outbox on real SQLite and real PostgreSQL (skipped when
// PostgreSQL is not reachable, failed instead with GALET_REQUIRE_SERVICES=1): sealed secrets,
// idempotent queueing, per-device heads, leases, outcomes, replay, stats and purge.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { webhookEnqueuer } from '../../../src/application/integrations/webhooks/dispatcher.js';
import {
  createStorage,
  type GaletDatabase,
  isStorageError,
  type NewWebhook,
  openDatabase,
  SecretBox,
  type Storage,
} from '../../../src/storage/index.js';
import { postgresTestTarget } from '../../helpers/postgres-places.js';
import { postgresReachable, postgresTestHost, skipOrFail } from '../../helpers/services.js';
import type { StorageTestTarget } from '../../storage/storage-suite.js';

const SECRET = 'a-webhook-secret-of-some-length';

/** A new data directory per test: a SQLite file costs nothing to create. */
const sqliteTarget: StorageTestTarget = {
  fresh: async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-webhooks-'));
    return {
      open: (logger) => openDatabase({ dataDir, logger }),
      dispose: () => rm(dataDir, { recursive: true, force: true }),
    };
  },
  pristine: () => sqliteTarget.fresh(),
};

/** Storage on an empty database of `target`, closed when the test ends. */
async function openStorage(
  target: StorageTestTarget,
  t: TestContext,
  now?: () => Date,
): Promise<{ storage: Storage; database: GaletDatabase }> {
  const place = await target.fresh();
  const database = await place.open();
  t.after(async () => {
    await database.close();
    await place.dispose();
  });
  return {
    database,
    storage: createStorage(database, SecretBox.fromKey(randomBytes(32)), now ? { now } : {}),
  };
}

/** An application `water` with one webhook to https://example.org/hook, as `changes` say. */
async function waterWebhook(storage: Storage, changes: Partial<NewWebhook> = {}) {
  const application = await storage.applications.create({ name: 'water' });
  const webhook = await storage.webhooks.create({
    applicationId: application.id,
    url: 'https://example.org/hook',
    secret: SECRET,
    ...changes,
  });
  return { application, webhook };
}

/** Queues every stored event for the webhooks that take it; returns the rows added. */
async function enqueueAll(storage: Storage): Promise<number> {
  return webhookEnqueuer(storage.webhooks)(await storage.events.listAfter(0));
}

async function appendEvents(
  storage: Storage,
  applicationId: string,
  devEuis: string[],
  perDevice: number,
  type = 'up',
): Promise<number[]> {
  const ids: number[] = [];
  for (let n = 0; n < perDevice; n++) {
    for (const devEui of devEuis) {
      ids.push(
        await storage.events.append({
          devEui,
          applicationId,
          type,
          time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
          body: { deviceInfo: { devEui }, fCnt: n },
        }),
      );
    }
  }
  return ids;
}

function suite(target: StorageTestTarget): void {
  it('seals the secret and header values, and opens them only through credentials', async (t) => {
    const { storage, database } = await openStorage(target, t);
    const application = await storage.applications.create({ name: 'water' });
    const webhook = await storage.webhooks.create({
      applicationId: application.id,
      url: 'http://127.0.0.1:9/hook?x=1',
      secret: SECRET,
      headers: { Authorization: 'Bearer very-secret-token' },
      eventTypes: ['up', 'join', 'up'],
    });
    assert.deepEqual(webhook.eventTypes, ['join', 'up']);
    assert.deepEqual(webhook.headerNames, ['authorization']);
    assert.equal(webhook.enabled, true);
    assert.equal(JSON.stringify(webhook).includes('very-secret-token'), false);
    assert.equal(JSON.stringify(webhook).includes(SECRET), false);
    const row = await database.db
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', webhook.id)
      .executeTakeFirstOrThrow();
    const raw = Buffer.concat([Buffer.from(row.secret_enc), Buffer.from(row.headers_enc ?? [])]);
    assert.equal(raw.includes(Buffer.from(SECRET)), false);
    assert.equal(raw.includes(Buffer.from('very-secret-token')), false);
    assert.deepEqual(await storage.webhooks.credentials(webhook.id), {
      secret: SECRET,
      headers: { authorization: 'Bearer very-secret-token' },
    });
    // A sealed value moved to another webhook's row does not open.
    const other = await storage.webhooks.create({
      applicationId: application.id,
      url: 'https://example.org/hook',
      secret: 'another-secret-0123456789',
    });
    await database.db
      .updateTable('webhooks')
      .set({ secret_enc: row.secret_enc })
      .where('id', '=', other.id)
      .execute();
    await assert.rejects(storage.webhooks.credentials(other.id), (error) =>
      isStorageError(error, 'SECRET_OPEN_FAILED'),
    );
  });

  it('refuses bad urls, reserved headers and bad event types with typed errors', async (t) => {
    const { storage } = await openStorage(target, t);
    const application = await storage.applications.create({ name: 'water' });
    const base = { applicationId: application.id, secret: SECRET };
    const inputs: NewWebhook[] = [
      { ...base, url: 'ftp://example.org/x' },
      { ...base, url: 'not a url' },
      { ...base, url: 'https://user:pass@example.org/x' },
      { ...base, url: 'https://example.org/x', headers: { 'X-Galet-Signature': 'forged' } },
      { ...base, url: 'https://example.org/x', headers: { 'Content-Type': 'text/plain' } },
      { ...base, url: 'https://example.org/x', headers: { 'bad name': 'x' } },
      { ...base, url: 'https://example.org/x', headers: { ok: 'line\nbreak' } },
      { ...base, url: 'https://example.org/x', eventTypes: ['Up!'] },
      { ...base, url: 'https://example.org/x', secret: 'short' },
    ];
    for (const input of inputs) {
      await assert.rejects(storage.webhooks.create(input), (error) =>
        isStorageError(error, 'INVALID_INPUT'),
      );
    }
    await assert.rejects(
      storage.webhooks.create({ ...base, applicationId: 'nope', url: 'https://example.org/' }),
      (error) => isStorageError(error, 'NOT_FOUND'),
    );
  });

  it('queues one row per matching webhook and event, once, from after the webhook was made', async (t) => {
    const { storage } = await openStorage(target, t);
    const water = await storage.applications.create({ name: 'water' });
    const lights = await storage.applications.create({ name: 'lights' });
    const before = await appendEvents(storage, water.id, ['0000000000000001'], 1);
    const all = await storage.webhooks.create({
      applicationId: water.id,
      url: 'https://example.org/all',
      secret: SECRET,
    });
    const joins = await storage.webhooks.create({
      applicationId: water.id,
      url: 'https://example.org/joins',
      secret: SECRET,
      eventTypes: ['join'],
    });
    const off = await storage.webhooks.create({
      applicationId: water.id,
      url: 'https://example.org/off',
      secret: SECRET,
      enabled: false,
    });
    await storage.webhooks.create({
      applicationId: lights.id,
      url: 'https://example.org/lights',
      secret: SECRET,
    });
    const ups = await appendEvents(storage, water.id, ['0000000000000001'], 2);
    const join = await appendEvents(storage, water.id, ['0000000000000002'], 1, 'join');
    assert.equal(await enqueueAll(storage), 4, 'all: 2 ups + 1 join; joins: 1 join');
    assert.equal(await enqueueAll(storage), 0, 'a batch handed out again adds nothing');
    const queuedAll = await storage.webhooks.listDeliveries(all.id);
    assert.deepEqual(
      queuedAll.map((d) => d.eventId),
      [...ups, ...join],
      `not the event from before the webhook (${before})`,
    );
    assert.deepEqual(
      (await storage.webhooks.listDeliveries(joins.id)).map((d) => [d.eventId, d.eventType]),
      [[join[0], 'join']],
    );
    assert.deepEqual(await storage.webhooks.listDeliveries(off.id), []);
    assert.equal((await storage.webhooks.pendingStats()).pending, 4);
  });

  it('hands out only the head of each device, claims it once, and records outcomes', async (t) => {
    let nowMs = Date.parse('2026-02-01T00:00:00.000Z');
    const { storage } = await openStorage(target, t, () => new Date(nowMs));
    const { application, webhook } = await waterWebhook(storage);
    const a = '00000000000000aa';
    const b = '00000000000000bb';
    const ids = await appendEvents(storage, application.id, [a, b], 3); // a1 b1 a2 b2 a3 b3
    await enqueueAll(storage);
    let due = await storage.webhooks.due(100);
    assert.deepEqual(
      due.map((d) => [d.devEui, d.eventId]),
      [
        [a, ids[0]],
        [b, ids[1]],
      ],
    );
    assert.equal(JSON.parse(due[0]?.eventBody ?? 'null').fCnt, 0);
    const head = due[0]!;
    const lease = new Date(nowMs + 15_000).toISOString();
    assert.equal(await storage.webhooks.claim(head, head.nextAttemptAt, lease), true);
    assert.equal(await storage.webhooks.claim(head, head.nextAttemptAt, lease), false, 'taken');
    due = await storage.webhooks.due(100);
    assert.deepEqual(
      due.map((d) => d.eventId),
      [ids[1]],
      'a leased head blocks its device and is not due',
    );
    // The lease runs out (a crash): due again.
    nowMs += 16_000;
    due = await storage.webhooks.due(100);
    assert.deepEqual(
      due.map((d) => d.eventId),
      [ids[1], ids[0]],
    );
    await storage.webhooks.markRetry(
      head,
      { error: 'HTTP 503', httpStatus: 503 },
      new Date(nowMs + 60_000).toISOString(),
    );
    await storage.webhooks.markDelivered({ webhookId: webhook.id, eventId: ids[1]! }, 204);
    due = await storage.webhooks.due(100);
    assert.deepEqual(
      due.map((d) => d.eventId),
      [ids[3]],
      "b's next; a waits for its retry",
    );
    await storage.webhooks.markDead(head, { error: 'HTTP 410', httpStatus: 410 });
    due = await storage.webhooks.due(100);
    assert.deepEqual(
      due.map((d) => d.eventId).sort((x, y) => x - y),
      [ids[2], ids[3]],
      "a's next once its head is dead-lettered",
    );
    const dead = await storage.webhooks.listDeliveries(webhook.id, { status: 'dead' });
    assert.deepEqual(
      dead.map((d) => [d.eventId, d.attempts, d.lastError, d.lastHttpStatus]),
      [[ids[0], 2, 'HTTP 410', 410]],
    );
    await storage.webhooks.recordError(webhook.id, { error: 'HTTP 410', httpStatus: 410 });
    assert.deepEqual((await storage.webhooks.get(webhook.id))?.lastError, {
      message: 'HTTP 410',
      httpStatus: 410,
      at: new Date(nowMs).toISOString(),
    });
    // Disabled: nothing due; enabled again: due again.
    await storage.webhooks.update(webhook.id, { enabled: false });
    assert.deepEqual(await storage.webhooks.due(100), []);
    await storage.webhooks.update(webhook.id, { enabled: true });
    assert.equal((await storage.webhooks.due(100)).length, 2);
  });

  it('keeps the rows behind a head waiting, and repairs a device left without a head', async (t) => {
    const { storage, database } = await openStorage(target, t);
    const { application, webhook } = await waterWebhook(storage);
    const ids = await appendEvents(storage, application.id, ['00000000000000ee'], 3);
    await enqueueAll(storage);
    const waiting = await storage.webhooks.listDeliveries(webhook.id);
    assert.deepEqual(
      waiting.map((d) => d.nextAttemptAt === null),
      [false, true, true],
      'only the head has a next attempt',
    );
    // A crash between a finished head and its promotion: the device has no due head.
    await database.db
      .updateTable('webhook_deliveries')
      .set({ status: 'delivered', delivered_at: new Date().toISOString() })
      .where('webhook_id', '=', webhook.id)
      .where('event_id', '=', ids[0]!)
      .execute();
    assert.deepEqual(await storage.webhooks.due(100), []);
    assert.equal(await storage.webhooks.unblockHeads(), 1);
    assert.equal(await storage.webhooks.unblockHeads(), 0);
    assert.deepEqual(
      (await storage.webhooks.due(100)).map((d) => d.eventId),
      [ids[1]],
    );
  });

  it('replays dead deliveries, or a range of events, and leaves pending ones alone', async (t) => {
    const { storage } = await openStorage(target, t);
    const { application, webhook } = await waterWebhook(storage, { eventTypes: ['up'] });
    const devEui = '00000000000000cc';
    const ids = await appendEvents(storage, application.id, [devEui], 4);
    await appendEvents(storage, application.id, [devEui], 1, 'status');
    await enqueueAll(storage);
    const key = (eventId: number) => ({ webhookId: webhook.id, eventId });
    await storage.webhooks.markDead(key(ids[0]!), { error: 'x' });
    await storage.webhooks.markDelivered(key(ids[1]!), 200);
    await storage.webhooks.markDead(key(ids[2]!), { error: 'x' });
    assert.deepEqual(await storage.webhooks.replay(webhook.id, { status: 'dead' }), {
      requeued: 2,
      nextFromEventId: null,
    });
    const statuses = async () =>
      (await storage.webhooks.listDeliveries(webhook.id)).map((d) => [d.eventId, d.status]);
    assert.deepEqual(await statuses(), [
      [ids[0], 'pending'],
      [ids[1], 'delivered'],
      [ids[2], 'pending'],
      [ids[3], 'pending'],
    ]);
    // A range re-queues delivered ones; pending stay as they are; the filter holds.
    const replayed = await storage.webhooks.replay(webhook.id, { fromEventId: ids[1]! });
    assert.deepEqual(replayed, { requeued: 1, nextFromEventId: null });
    const delivery = (await storage.webhooks.listDeliveries(webhook.id))[1];
    assert.deepEqual([delivery?.status, delivery?.attempts], ['pending', 0]);
    await assert.rejects(storage.webhooks.replay(webhook.id, {}), (error) =>
      isStorageError(error, 'INVALID_INPUT'),
    );
    // Deleting the webhook deletes its deliveries.
    assert.equal(await storage.webhooks.delete(webhook.id), true);
    assert.deepEqual(await storage.webhooks.listDeliveries(webhook.id), []);
    assert.equal((await storage.webhooks.pendingStats()).pending, 0);
  });

  it('reports the oldest pending delivery and purges old delivered ones', async (t) => {
    let nowMs = Date.parse('2026-02-01T00:00:00.000Z');
    const { storage } = await openStorage(target, t, () => new Date(nowMs));
    const { application, webhook } = await waterWebhook(storage);
    const ids = await appendEvents(storage, application.id, ['00000000000000dd'], 3);
    await enqueueAll(storage);
    assert.deepEqual(await storage.webhooks.pendingStats(), {
      pending: 3,
      oldestQueuedAt: '2026-02-01T00:00:00.000Z',
    });
    await storage.webhooks.markDelivered({ webhookId: webhook.id, eventId: ids[0]! }, 200);
    nowMs += 3_600_000;
    await storage.webhooks.markDelivered({ webhookId: webhook.id, eventId: ids[1]! }, 200);
    assert.equal(await storage.webhooks.purgeDelivered('2026-02-01T00:30:00.000Z'), 1);
    assert.deepEqual(
      (await storage.webhooks.listDeliveries(webhook.id)).map((d) => d.eventId),
      [ids[1], ids[2]],
    );
  });
}

describe('webhook storage on SQLite', () => {
  suite(sqliteTarget);
});

const reachable = await postgresReachable();
describe('webhook storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }
  suite(postgresTestTarget(['webhook_deliveries', 'webhooks', 'events', 'applications']));
});
