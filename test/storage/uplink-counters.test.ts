// The uplink counters written behind on SQLite: the compare-and-set still refuses a stale
// counter, reads show the waiting value, a new session ignores an old session's counter, a flush
// writes them (sorted, in chunks), and after a crash the stored events bring them back.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  createStorage,
  type GaletDatabase,
  openDatabase,
  SecretBox,
  type Storage,
  type UplinkCommit,
} from '../../src/storage/index.js';
import { deviceSessionInput } from '../helpers/device-session.js';
import { storedMeter } from '../helpers/stored-device.js';

const secrets = SecretBox.fromKey(randomBytes(32));

interface Place {
  dataDir: string;
  database: GaletDatabase;
  storage: Storage;
}

async function place(t: TestContext): Promise<Place> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-counters-'));
  const database = await openDatabase({ dataDir });
  const storage = createStorage(database, secrets);
  t.after(async () => {
    await database.close().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });
  return { dataDir, database, storage };
}

/** The same file opened again, as a new process after a crash would (nothing flushed). */
async function reopen(t: TestContext, dataDir: string): Promise<Storage> {
  const database = await openDatabase({ dataDir });
  t.after(() => database.close());
  return createStorage(database, secrets);
}

async function storedCounter(database: GaletDatabase, devEui: string): Promise<number | null> {
  const row = await database.db
    .selectFrom('device_sessions')
    .select('f_cnt_up')
    .where('dev_eui', '=', devEui)
    .executeTakeFirstOrThrow();
  return row.f_cnt_up;
}

async function deviceWithSession(storage: Storage, createdAt?: string): Promise<string> {
  const { devEui } = await storedMeter(storage, { activation: 'abp' });
  await newSession(storage, devEui, createdAt);
  return devEui;
}

async function newSession(storage: Storage, devEui: string, createdAt?: string): Promise<void> {
  await storage.deviceSessions.upsert(
    deviceSessionInput({
      devEui,
      devAddr: 0x2601_1234,
      keys: { lorawan: '1.0', nwkSKey: randomBytes(16), appSKey: randomBytes(16) },
      ...(createdAt === undefined ? {} : { createdAt }),
    }),
  );
}

function up(devEui: string, expected: number | null, next: number): UplinkCommit {
  return {
    devEui,
    expectedFCntUp: expected,
    nextFCntUp: next,
    event: {
      devEui,
      applicationId: 'app',
      type: 'up',
      time: new Date().toISOString(),
      body: { fCnt: next },
    },
  };
}

describe('uplink counters written behind (SQLite)', () => {
  it('keeps the compare-and-set, shows waiting counters and writes them on flush', async (t) => {
    const { database, storage } = await place(t);
    assert.equal(storage.uplinkCommits.countersWrittenBehind, true);
    const a = await deviceWithSession(storage);
    const b = await deviceWithSession(storage);
    assert.deepEqual(await storage.uplinkCommits.commit([up(a, null, 0), up(b, null, 7)]), [
      true,
      true,
    ]);
    assert.deepEqual(
      await storage.uplinkCommits.commit([up(a, 0, 1), up(b, 3, 8), up(a, 1, 2)]),
      [true, false, true],
      'a stale expected counter loses; one device twice in a batch chains',
    );
    assert.equal(await storedCounter(database, a), null, 'not written yet');
    assert.equal((await storage.deviceSessions.get(a))?.fCntUp, 2, 'reads show the waiting value');
    const listed = await storage.deviceSessions.listAll();
    assert.equal(listed.find((s) => s.devEui === b)?.fCntUp, 7);
    assert.equal((await storage.events.listForDevice(a)).length, 3);
    assert.equal((await storage.events.listForDevice(b)).length, 1, 'no event for the loser');

    await storage.uplinkCommits.flushLastSeen();
    assert.equal(await storedCounter(database, a), 2);
    assert.equal(await storedCounter(database, b), 7);
    assert.equal(
      await storage.consumerCursors.get('uplink-counters-written'),
      await storage.events.lastId(),
      'the flush notes the last event it covers',
    );
    assert.equal(storage.uplinkCommits.pendingCounter(a), undefined);
  });

  it('does not carry a counter into a new session of the device', async (t) => {
    const { database, storage } = await place(t);
    const devEui = await deviceWithSession(storage, '2026-11-29T10:00:00.000Z');
    assert.deepEqual(await storage.uplinkCommits.commit([up(devEui, null, 40)]), [true]);
    // The device joins again: a new session, counters from zero.
    await newSession(storage, devEui, '2026-11-29T10:00:05.000Z');
    assert.equal((await storage.deviceSessions.get(devEui))?.fCntUp, null);
    assert.deepEqual(
      await storage.uplinkCommits.commit([up(devEui, 40, 41)]),
      [false],
      'the old session is over',
    );
    assert.deepEqual(await storage.uplinkCommits.commit([up(devEui, null, 0)]), [true]);
    await storage.uplinkCommits.flushLastSeen();
    assert.equal(await storedCounter(database, devEui), 0);
  });

  it('never moves a stored counter backwards', async (t) => {
    const { database, storage } = await place(t);
    const devEui = await deviceWithSession(storage);
    await storage.uplinkCommits.commit([up(devEui, null, 5)]);
    // Another writer (the network saving the whole session) stored a newer counter meanwhile.
    await database.db
      .updateTable('device_sessions')
      .set({ f_cnt_up: 9 })
      .where('dev_eui', '=', devEui)
      .execute();
    await storage.uplinkCommits.flushLastSeen();
    assert.equal(await storedCounter(database, devEui), 9);
  });

  it('flushes many devices in chunks, the event loop running between them', async (t) => {
    const { database, storage } = await place(t);
    const devices: string[] = [];
    for (let i = 0; i < 30; i++) devices.push(await deviceWithSession(storage));
    await storage.uplinkCommits.commit(devices.map((devEui, i) => up(devEui, null, i)));
    await storage.uplinkCommits.flushLastSeen();
    for (const [i, devEui] of devices.entries()) {
      assert.equal(await storedCounter(database, devEui), i);
    }
  });

  it('brings the counters back from the stored events after a crash', async (t) => {
    const { dataDir, database, storage } = await place(t);
    const steady = await deviceWithSession(storage);
    const rejoined = await deviceWithSession(storage, '2026-11-29T09:00:00.000Z');
    const flushed = await deviceWithSession(storage);
    await storage.uplinkCommits.commit([up(flushed, null, 3), up(steady, null, 0)]);
    await storage.uplinkCommits.flushLastSeen();
    assert.equal(await storedCounter(database, steady), 0);

    // After the last flush: uplinks, and a device that joins again in the middle.
    await storage.uplinkCommits.commit([up(steady, 0, 1), up(rejoined, null, 70)]);
    await storage.uplinkCommits.commit([up(steady, 1, 2)]);
    await storage.events.append({
      devEui: rejoined,
      applicationId: 'app',
      type: 'join',
      time: new Date().toISOString(),
      body: {},
    });
    await newSession(storage, rejoined, new Date().toISOString());
    await new Promise((resolve) => setTimeout(resolve, 2));
    await storage.uplinkCommits.commit([up(rejoined, null, 0), up(rejoined, 0, 1)]);
    // A session replaced without its join event stored (a crash in between): its older
    // uplinks must not count for it.
    const replaced = await deviceWithSession(storage, '2026-11-29T09:00:00.000Z');
    await storage.uplinkCommits.commit([up(replaced, null, 500)]);
    await new Promise((resolve) => setTimeout(resolve, 2));
    await newSession(storage, replaced, new Date().toISOString());

    // Crash: nothing of the above was flushed.
    assert.equal(await storedCounter(database, steady), 0);
    const after = await reopen(t, dataDir);
    const recovered = await after.uplinkCommits.recoverCounters();
    assert.equal(recovered.events, 7, 'six ups and a join after the last flush');
    assert.equal(recovered.sessions, 2);
    assert.equal((await after.deviceSessions.get(steady))?.fCntUp, 2);
    assert.equal((await after.deviceSessions.get(rejoined))?.fCntUp, 1);
    assert.equal((await after.deviceSessions.get(replaced))?.fCntUp, null);
    assert.equal((await after.deviceSessions.get(flushed))?.fCntUp, 3);
    assert.deepEqual(
      await after.uplinkCommits.recoverCounters(),
      { events: 0, sessions: 0 },
      'a second recovery finds nothing left',
    );
    // A replayed frame stays refused; the next one goes in.
    assert.deepEqual(await after.uplinkCommits.commit([up(steady, 1, 2)]), [false]);
    assert.deepEqual(await after.uplinkCommits.commit([up(steady, 2, 3)]), [true]);
  });

  it('can be switched off: the counters are written with each commit', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-counters-'));
    const database = await openDatabase({ dataDir });
    t.after(async () => {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    const storage = createStorage(database, secrets, { counterWriteBehind: false });
    assert.equal(storage.uplinkCommits.countersWrittenBehind, false);
    const devEui = await deviceWithSession(storage);
    assert.deepEqual(await storage.uplinkCommits.commit([up(devEui, null, 4)]), [true]);
    assert.equal(await storedCounter(database, devEui), 4);
  });
});
