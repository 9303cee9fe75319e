// The event feed on a real SQLite event log: order, at-least-once on failure, a durable
// position across restarts, the ready watermark and the wait on a hole in the ids.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  EventFeed,
  type FeedEventSource,
  memoryCursor,
  storageCursor,
} from '../../src/application/event-feed.js';
import {
  createStorage,
  type FeedEvent,
  openDatabase,
  SecretBox,
  type Storage,
} from '../../src/storage/index.js';
import { storedMeter } from '../helpers/stored-device.js';

async function openStorage(t: TestContext): Promise<{ storage: Storage; devEui: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-feed-'));
  const database = await openDatabase({ dataDir });
  const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
  t.after(async () => {
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const { devEui } = await storedMeter(storage);
  return { storage, devEui };
}

async function appendUps(storage: Storage, devEui: string, count: number): Promise<number[]> {
  const device = await storage.devices.get(devEui);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      await storage.events.append({
        devEui,
        applicationId: (device as { applicationId: string }).applicationId,
        type: 'up',
        time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
        body: { fCnt: i },
      }),
    );
  }
  return ids;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('event feed', () => {
  it('hands out every event once, in id order, in batches, and keeps its position', async (t) => {
    const { storage, devEui } = await openStorage(t);
    const ids = await appendUps(storage, devEui, 25);
    const seen: number[] = [];
    const options = {
      name: 'test',
      events: storage.events,
      cursor: storageCursor(storage.consumerCursors, 'test'),
      batchSize: 10,
      pollIntervalMs: 10,
      handle: async (events: readonly FeedEvent[]) => {
        assert.ok(events.length <= 10);
        seen.push(...events.map((event) => event.id));
      },
    };
    const feed = new EventFeed(options);
    await feed.start();
    await until(() => seen.length === 25, '25 events');
    assert.deepEqual(seen, ids);
    await feed.close();
    assert.equal(await storage.consumerCursors.get('test'), ids[24]);

    const more = await appendUps(storage, devEui, 3);
    const again = new EventFeed(options);
    await again.start();
    again.wake();
    await until(() => seen.length === 28, 'the 3 new events');
    await again.close();
    assert.deepEqual(seen.slice(25), more, 'a restarted feed resumes after its saved position');
    assert.equal(again.stats.events, 3);
  });

  it('hands a failed batch out again after a back-off, and does not move past it', async (t) => {
    const { storage, devEui } = await openStorage(t);
    const ids = await appendUps(storage, devEui, 3);
    const calls: number[][] = [];
    let failuresLeft = 2;
    const feed = new EventFeed({
      name: 'flaky',
      events: storage.events,
      cursor: memoryCursor(),
      pollIntervalMs: 10,
      retryInitialMs: 5,
      handle: async (events) => {
        calls.push(events.map((event) => event.id));
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error('receiver down');
        }
      },
    });
    await feed.start();
    await until(() => feed.position === ids[2], 'the batch to succeed');
    await feed.close();
    assert.deepEqual(calls, [ids, ids, ids]);
    assert.equal(feed.stats.failures, 2);
  });

  it('hands out nothing above the ready watermark', async (t) => {
    const { storage, devEui } = await openStorage(t);
    const ids = await appendUps(storage, devEui, 4);
    let ready = ids[1] as number;
    const seen: number[] = [];
    const feed = new EventFeed({
      name: 'second-stage',
      events: storage.events,
      cursor: memoryCursor(),
      pollIntervalMs: 5,
      readyUpTo: () => ready,
      handle: async (events) => {
        seen.push(...events.map((event) => event.id));
      },
    });
    await feed.start();
    await until(() => seen.length === 2, 'the ready events');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(seen, ids.slice(0, 2));
    ready = ids[3] as number;
    feed.wake();
    await until(() => seen.length === 4, 'the rest');
    await feed.close();
    assert.deepEqual(seen, ids);
  });

  it('moves past events without reading them while the handler has nothing to do (idle)', async (t) => {
    const { storage, devEui } = await openStorage(t);
    const ids = await appendUps(storage, devEui, 3);
    let idle = true;
    let reads = 0;
    let ready = ids[1] as number;
    const seen: number[] = [];
    const saved: number[] = [];
    const feed = new EventFeed({
      name: 'idle-consumer',
      events: {
        listAfter: (afterId, options) => {
          reads += 1;
          return storage.events.listAfter(afterId, options);
        },
        lastId: () => storage.events.lastId(),
      },
      cursor: {
        load: async () => 0,
        save: async (id) => {
          saved.push(id);
        },
      },
      pollIntervalMs: 5,
      readyUpTo: () => ready,
      idle: async () => idle,
      handle: async (events) => {
        seen.push(...events.map((event) => event.id));
      },
    });
    await feed.start();
    // Idle: the position goes to the ready watermark (not beyond), with no read of the log.
    await until(() => feed.position === ids[1], 'the idle skip');
    ready = ids[2] as number;
    feed.wake();
    await until(() => feed.position === ids[2], 'the next idle skip');
    assert.equal(reads, 0);
    assert.deepEqual(seen, []);
    assert.deepEqual(saved, [ids[1], ids[2]]);
    assert.ok(feed.stats.idleSkips >= 2);
    // Something to do again: later events are read and handed out as usual.
    idle = false;
    const later = await appendUps(storage, devEui, 2);
    ready = later[1] as number;
    feed.wake();
    await until(() => seen.length === 2, 'the events after the idle time');
    await feed.close();
    assert.deepEqual(seen, later);
    assert.ok(reads > 0);
  });

  it('waits for a missing id before moving past it', async () => {
    // An event log whose id 2 is held by a transaction that commits late (PostgreSQL sequences).
    const log: FeedEvent[] = [1, 3, 4].map((id) => event(id));
    const source: FeedEventSource = {
      listAfter: async (afterId, options) =>
        log
          .filter((e) => e.id > afterId)
          .sort((a, b) => a.id - b.id)
          .slice(0, options?.limit ?? 100),
    };
    let now = 0;
    const seen: number[] = [];
    const feed = new EventFeed({
      name: 'gap',
      events: source,
      cursor: memoryCursor(),
      pollIntervalMs: 5,
      gapWaitMs: 1000,
      now: () => now,
      handle: async (events) => {
        seen.push(...events.map((e) => e.id));
      },
    });
    await feed.start();
    await until(() => seen.length === 1, 'the event before the hole');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(seen, [1], 'events after the hole wait');
    log.push(event(2));
    await until(() => seen.length === 4, 'the late event and the rest');
    assert.deepEqual(seen, [1, 2, 3, 4], 'the late event is handed out in its place');

    log.push(event(6));
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(seen, [1, 2, 3, 4]);
    now = 1000;
    await until(() => seen.length === 5, 'the event after a hole that never fills');
    await feed.close();
    assert.deepEqual(seen, [1, 2, 3, 4, 6]);
    assert.equal(feed.stats.gapsSkipped, 1);
  });
});

function event(id: number): FeedEvent {
  return {
    id,
    devEui: '0000000000000001',
    applicationId: 'app',
    type: 'up',
    time: '2026-01-01T00:00:00.000Z',
    body: { id },
  };
}
