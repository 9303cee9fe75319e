/**
 * The outbox behaviour every `LinkOutboxStore` must have, run against the in-memory outbox and
 * the storage repository on SQLite and PostgreSQL (skipped when PostgreSQL is not reachable,
 * failed instead with GALET_REQUIRE_SERVICES=1, as in test/storage).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { InMemoryLinkOutbox, type LinkOutboxStore } from '../../src/link/outbox.js';
import {
  type GaletDatabase,
  isStorageError,
  LinkOutboxRepository,
  openDatabase,
  SecretBox,
} from '../../src/storage/index.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';

const secrets = SecretBox.fromKey(new Uint8Array(32));

interface OutboxPlace {
  /** A store over an empty outbox. */
  open(t: TestContext): Promise<LinkOutboxStore>;
  /** Whether `reopen` gives the same data back (a durable store). */
  reopen?: (t: TestContext, store: LinkOutboxStore) => Promise<LinkOutboxStore>;
}

function body(n: number): string {
  return JSON.stringify({ n, text: `uplink ${n} é` });
}

async function appendMany(
  store: LinkOutboxStore,
  linkId: string,
  count: number,
  maxPending = 1000,
): Promise<number[]> {
  const seqs: number[] = [];
  for (let n = 1; n <= count; n++) {
    const seq = await store.append(linkId, 'uplink', body(n), maxPending);
    assert.ok(seq !== undefined);
    seqs.push(seq);
  }
  return seqs;
}

function outboxSuite(place: OutboxPlace): void {
  it('numbers deliveries from 1 per link, increasing', async (t) => {
    const store = await place.open(t);
    assert.deepEqual(await appendMany(store, 'link-a', 3), [1, 2, 3]);
    assert.deepEqual(await appendMany(store, 'link-b', 2), [1, 2]);
    assert.equal(await store.pendingCount('link-a'), 3);
    assert.equal(await store.pendingCount('link-b'), 2);
    assert.equal(await store.pendingCount('link-c'), 0);
  });

  it('lists pending deliveries after a seq, oldest first, with their topic and body', async (t) => {
    const store = await place.open(t);
    await appendMany(store, 'link-a', 5);
    await store.append('link-a', 'join', '{"devEui":"0102030405060708"}', 1000);
    const after2 = await store.pendingAfter('link-a', 2, 3);
    assert.deepEqual(after2, [
      { seq: 3, topic: 'uplink', bodyJson: body(3) },
      { seq: 4, topic: 'uplink', bodyJson: body(4) },
      { seq: 5, topic: 'uplink', bodyJson: body(5) },
    ]);
    assert.deepEqual(await store.pendingAfter('link-a', 5, 10), [
      { seq: 6, topic: 'join', bodyJson: '{"devEui":"0102030405060708"}' },
    ]);
    assert.deepEqual(await store.pendingAfter('link-a', 6, 10), []);
    assert.deepEqual(await store.pendingAfter('link-other', 0, 10), []);
  });

  it('removes deliveries up to an ack, cumulatively, and ignores an older ack', async (t) => {
    const store = await place.open(t);
    await appendMany(store, 'link-a', 5);
    await store.ackUpTo('link-a', 3);
    assert.equal(await store.pendingCount('link-a'), 2);
    assert.deepEqual(
      (await store.pendingAfter('link-a', 0, 10)).map((entry) => entry.seq),
      [4, 5],
    );
    await store.ackUpTo('link-a', 2);
    assert.equal(await store.pendingCount('link-a'), 2);
    await store.ackUpTo('link-other', 3);
    assert.equal(await store.pendingCount('link-a'), 2);
  });

  it('never gives a seq twice, also after the outbox drained', async (t) => {
    const store = await place.open(t);
    await appendMany(store, 'link-a', 3);
    await store.ackUpTo('link-a', 3);
    assert.equal(await store.pendingCount('link-a'), 0);
    assert.deepEqual(await appendMany(store, 'link-a', 2), [4, 5]);
  });

  it('refuses to append beyond the bound, storing nothing, and takes more after an ack', async (t) => {
    const store = await place.open(t);
    await appendMany(store, 'link-a', 3, 3);
    assert.equal(await store.append('link-a', 'uplink', body(4), 3), undefined);
    assert.equal(await store.pendingCount('link-a'), 3);
    assert.deepEqual(
      (await store.pendingAfter('link-a', 0, 10)).map((entry) => entry.seq),
      [1, 2, 3],
    );
    // Other links have their own bound.
    assert.equal(await store.append('link-b', 'uplink', body(1), 3), 1);
    await store.ackUpTo('link-a', 1);
    assert.equal(await store.append('link-a', 'uplink', body(4), 3), 4);
  });

  it('keeps the bound and the order under concurrent appends', async (t) => {
    const store = await place.open(t);
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, n) => store.append('link-a', 'uplink', body(n), 10)),
    );
    const stored = results.filter((seq): seq is number => seq !== undefined).sort((a, b) => a - b);
    assert.deepEqual(stored, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(await store.pendingCount('link-a'), 10);
  });

  if (place.reopen !== undefined) {
    const reopen = place.reopen;
    it('keeps pending deliveries and the seq counter across a reopen', async (t) => {
      const store = await place.open(t);
      await appendMany(store, 'link-a', 4);
      await store.ackUpTo('link-a', 2);
      const again = await reopen(t, store);
      assert.equal(await again.pendingCount('link-a'), 2);
      assert.deepEqual(
        (await again.pendingAfter('link-a', 0, 10)).map((entry) => entry.seq),
        [3, 4],
      );
      assert.equal(await again.append('link-a', 'uplink', body(5), 1000), 5);
    });
  }
}

function repositorySuite(open: (t: TestContext) => Promise<LinkOutboxRepository>): void {
  it('stops an ack beyond the last seq at the last seq', async (t) => {
    const store = await open(t);
    await appendMany(store, 'link-a', 2);
    await store.ackUpTo('link-a', 99);
    assert.equal(await store.pendingCount('link-a'), 0);
    assert.equal(await store.append('link-a', 'uplink', body(3), 10), 3);
    assert.equal(await store.pendingCount('link-a'), 1);
  });

  it('refuses malformed input with INVALID_INPUT', async (t) => {
    const store = await open(t);
    const invalid = (error: unknown) => isStorageError(error, 'INVALID_INPUT');
    await assert.rejects(store.append('', 'uplink', '{}', 10), invalid);
    await assert.rejects(store.append('link-a', '', '{}', 10), invalid);
    await assert.rejects(store.append('link-a', 'uplink', '', 10), invalid);
    await assert.rejects(store.append('link-a', 'uplink', '{}', 0), invalid);
    await assert.rejects(store.pendingAfter('link-a', -1, 10), invalid);
    await assert.rejects(store.pendingAfter('link-a', 0, 0), invalid);
    await assert.rejects(store.ackUpTo('link-a', 1.5), invalid);
  });
}

describe('link outbox in memory', () => {
  outboxSuite({ open: async () => new InMemoryLinkOutbox() });
});

describe('link outbox on SQLite', () => {
  const databases = new WeakMap<LinkOutboxStore, string>();
  const open = async (t: TestContext): Promise<LinkOutboxRepository> => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-link-outbox-'));
    const database = await openDatabase({ dataDir });
    t.after(async () => {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    const store = new LinkOutboxRepository(database, secrets);
    databases.set(store, dataDir);
    return store;
  };
  outboxSuite({
    open,
    async reopen(t, store) {
      const dataDir = databases.get(store)!;
      const database = await openDatabase({ dataDir });
      t.after(() => database.close());
      return new LinkOutboxRepository(database, secrets);
    },
  });
  repositorySuite(open);
});

const postgresUp = await postgresReachable();

describe('link outbox on PostgreSQL', () => {
  if (!postgresUp) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }
  // One database for the file, emptied before each test (CREATE DATABASE is slow).
  let shared: Promise<string> | undefined;
  after(async () => {
    if (shared) await dropPostgresTestDatabase(await shared);
  });
  const connect = async (t: TestContext): Promise<GaletDatabase> => {
    shared ??= postgresTestUrl().then((url) => {
      if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
      return url;
    });
    const database = await openDatabase({ url: await shared });
    t.after(() => database.close());
    return database;
  };
  const open = async (t: TestContext): Promise<LinkOutboxRepository> => {
    const database = await connect(t);
    await database.db.deleteFrom('link_outbox').execute();
    await database.db.deleteFrom('link_outbox_cursors').execute();
    return new LinkOutboxRepository(database, secrets);
  };
  outboxSuite({
    open,
    reopen: async (t) => new LinkOutboxRepository(await connect(t), secrets),
  });
  repositorySuite(open);
});
