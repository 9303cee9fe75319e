import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  createStorage,
  isStorageError,
  openDatabase,
  SecretBox,
  type Storage,
  type UplinkCommit,
} from '../../src/storage/index.js';
import { deviceSessionInput } from '../helpers/device-session.js';
import { storedMeter } from '../helpers/stored-device.js';

const secrets = SecretBox.fromKey(randomBytes(32));

async function writerStorage(t: TestContext): Promise<Storage> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-writer-'));
  const database = await openDatabase({ dataDir });
  const storage = createStorage(database, secrets, { uplinkWriterThread: true });
  t.after(async () => {
    await storage.uplinkCommits.close();
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return storage;
}

async function deviceWithSession(storage: Storage, fCntUp: number | null): Promise<string> {
  const { devEui } = await storedMeter(storage, { activation: 'abp' });
  await storage.deviceSessions.upsert(
    deviceSessionInput({
      devEui,
      devAddr: 0x2601_1234,
      keys: { lorawan: '1.0', nwkSKey: randomBytes(16), appSKey: randomBytes(16) },
      fCntUp,
    }),
  );
  return devEui;
}

function up(devEui: string, expected: number | null, next: number, second = 0): UplinkCommit {
  return {
    devEui,
    expectedFCntUp: expected,
    nextFCntUp: next,
    event: {
      devEui,
      applicationId: 'app',
      type: 'up',
      time: `2026-11-29T12:00:0${second}.000Z`,
      body: { fCnt: next },
    },
  };
}

describe('SQLite uplink writer thread', () => {
  it('commits on its own connection with the same compare-and-set and events', async (t) => {
    const storage = await writerStorage(t);
    assert.ok(storage.uplinkCommits.writerForTest !== undefined, 'the repository uses a thread');
    const a = await deviceWithSession(storage, 9);
    const b = await deviceWithSession(storage, null);
    const won = await storage.uplinkCommits.commit([
      up(a, 9, 10, 1),
      up(a, 9, 11, 2), // same expected value: loses
      up(b, null, 3, 3),
    ]);
    assert.deepEqual(won, [true, false, true]);
    // Written by the thread, read through the main connection.
    assert.equal((await storage.deviceSessions.get(a))?.fCntUp, 10);
    assert.equal((await storage.deviceSessions.get(b))?.fCntUp, 3);
    assert.deepEqual(
      (await storage.events.listForDevice(a)).map((event) => event.body),
      [{ fCnt: 10 }],
    );
    await storage.uplinkCommits.flushLastSeen();
    assert.equal((await storage.devices.get(b))?.lastSeenAt, '2026-11-29T12:00:03.000Z');
  });

  it('lets exactly one of concurrent commits with the same expected counter win', async (t) => {
    const storage = await writerStorage(t);
    const devEui = await deviceWithSession(storage, 41);
    const results = await Promise.all([
      storage.uplinkCommits.commit([up(devEui, 41, 42)]),
      storage.uplinkCommits.commit([up(devEui, 41, 43)]),
      storage.uplinkCommits.commit([up(devEui, 41, 44)]),
    ]);
    assert.equal(results.flat().filter(Boolean).length, 1);
    assert.equal((await storage.events.listForDevice(devEui)).length, 1);
  });

  it('fails the commits of a thread that died, stores nothing half, and starts a new one', async (t) => {
    const storage = await writerStorage(t);
    const devEui = await deviceWithSession(storage, 0);
    const writer = storage.uplinkCommits.writerForTest!;
    assert.deepEqual(await storage.uplinkCommits.commit([up(devEui, 0, 1)]), [true]);
    // A commit under way when the thread dies: it fails whole, unless it finished first.
    const inFlight = storage.uplinkCommits.commit([up(devEui, 1, 2)]).then(
      (won) => ({ won }),
      (error: unknown) => ({ error }),
    );
    await writer.killForTest();
    const outcome = await inFlight;
    if ('error' in outcome) {
      assert.ok(isStorageError(outcome.error) && outcome.error.code === 'DATABASE_UNAVAILABLE');
    } else {
      assert.deepEqual(outcome.won, [true]);
    }
    const counter = (await storage.deviceSessions.get(devEui))?.fCntUp ?? 0;
    const events = await storage.events.listForDevice(devEui);
    assert.equal(events.length, counter, 'every counter step has its event, no more');
    assert.deepEqual(await storage.uplinkCommits.commit([up(devEui, counter, counter + 1)]), [
      true,
    ]);
  });

  it('refuses work after close', async (t) => {
    const storage = await writerStorage(t);
    const devEui = await deviceWithSession(storage, null);
    await storage.uplinkCommits.close();
    await assert.rejects(storage.uplinkCommits.commit([up(devEui, null, 1)]), (error: unknown) =>
      isStorageError(error),
    );
  });
});
