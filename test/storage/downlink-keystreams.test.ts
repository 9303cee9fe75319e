/**
 * The provider's memory of downlink keystreams (migration 0014): one queue item per (session,
 * downlink counter), across restarts, with exactly one winner among concurrent claims, and
 * bounded (a few sessions per device, a few hundred counters per session under a floor). On
 * SQLite and on PostgreSQL (skipped with a message when no server is reachable, unless CI
 * requires it).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import {
  createStorage,
  KEPT_KEYSTREAM_SESSIONS,
  KEPT_KEYSTREAMS_PER_SESSION,
  openDatabase,
  SecretBox,
  type Storage,
} from '../../src/storage/index.js';
import { ENGINE_NAMES, reopenablePlace } from '../helpers/engine-places.js';
import { storedMeter } from '../helpers/stored-device.js';
import { testEngines } from '../helpers/test-engines.js';

const secrets = SecretBox.fromKey(randomBytes(32));
const engines = testEngines('galet-keystreams');

async function withDevice(storage: Storage): Promise<string> {
  return (await storedMeter(storage)).devEui;
}

const sessionId = () => randomBytes(16).toString('hex');

/** A store on `engine` holding one device in a session just started (undefined: engine absent). */
async function deviceInSession(
  engine: (typeof engines)[number],
  t: TestContext,
): Promise<{ storage: Storage; devEui: string; session: string } | undefined> {
  const database = await engine.open(t);
  if (database === undefined) return undefined;
  const storage = createStorage(database, secrets);
  const devEui = await withDevice(storage);
  const session = sessionId();
  await storage.downlinkKeystreams.startSession(devEui, session);
  return { storage, devEui, session };
}

for (const engine of engines) {
  describe(`downlink keystream memory on ${engine.name}`, () => {
    it('claims a keystream for one item only; the same item again is harmless', async (t) => {
      const opened = await deviceInSession(engine, t);
      if (opened === undefined) return;
      const { storage, devEui, session } = opened;
      const [first, second] = [randomUUID(), randomUUID()];
      const claim = (queueItemId: string, fCntDown: number, sessionKeyId = session) =>
        storage.downlinkKeystreams.claim({ devEui, sessionKeyId, fCntDown, queueItemId });
      assert.deepEqual(await claim(first, 7), { outcome: 'claimed', again: false });
      assert.deepEqual(await claim(first, 7), { outcome: 'claimed', again: true });
      assert.deepEqual(await claim(second, 7), { outcome: 'taken', queueItemId: first });
      assert.deepEqual(await claim(second, 8), { outcome: 'claimed', again: false });
      assert.deepEqual(await claim(second, 4294967295), { outcome: 'claimed', again: false });
      // Another session of the device is another keystream for the same counter.
      const next = sessionId();
      await storage.downlinkKeystreams.startSession(devEui, next);
      assert.deepEqual(await claim(second, 7, next), { outcome: 'claimed', again: false });
      await assert.rejects(claim(first, -1), { code: 'INVALID_INPUT' });
      await assert.rejects(claim('not-a-uuid', 9), { code: 'INVALID_INPUT' });
      await assert.rejects(claim(first, 9, 'AB'.repeat(16)), { code: 'INVALID_INPUT' });
      await assert.rejects(
        storage.downlinkKeystreams.claim({
          devEui: '0000000000000bad',
          sessionKeyId: session,
          fCntDown: 1,
          queueItemId: first,
        }),
        { code: 'MISSING_REFERENCE' },
      );
    });

    it('gives a keystream to exactly one of many concurrent claims', async (t) => {
      const opened = await deviceInSession(engine, t);
      if (opened === undefined) return;
      const { storage, devEui, session } = opened;
      for (const fCntDown of [1, 2, 3]) {
        const items = Array.from({ length: 12 }, () => randomUUID());
        const outcomes = await Promise.all(
          items.map((queueItemId) =>
            storage.downlinkKeystreams.claim({
              devEui,
              sessionKeyId: session,
              fCntDown,
              queueItemId,
            }),
          ),
        );
        const winners = outcomes.flatMap((o, i) => (o.outcome === 'claimed' ? [items[i]] : []));
        assert.equal(winners.length, 1, `one winner for counter ${fCntDown}`);
        for (const outcome of outcomes) {
          if (outcome.outcome !== 'claimed') {
            assert.deepEqual(outcome, { outcome: 'taken', queueItemId: winners[0] });
          }
        }
      }
      // A device's first unknown session is adopted once, even by concurrent claims.
      const legacy = await withDevice(storage);
      const sessions = [sessionId(), sessionId(), sessionId(), sessionId()];
      const outcomes = await Promise.all(
        sessions.map((sessionKeyId) =>
          storage.downlinkKeystreams.claim({
            devEui: legacy,
            sessionKeyId,
            fCntDown: 0,
            queueItemId: randomUUID(),
          }),
        ),
      );
      assert.equal(outcomes.filter((o) => o.outcome === 'claimed').length, 1);
      assert.equal(outcomes.filter((o) => o.outcome === 'unknownSession').length, 3);
      assert.equal((await storage.downlinkKeystreams.sessionsOf(legacy)).length, 1);
    });

    it('keeps the latest sessions of a device and refuses the forgotten ones', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      let clock = Date.parse('2025-05-01T00:00:00Z');
      const tick = () => {
        clock += 1000;
        return new Date(clock);
      };
      const storage = createStorage(database, secrets, { now: tick });
      const devEui = await withDevice(storage);
      const other = await withDevice(storage);
      const issued = Array.from({ length: KEPT_KEYSTREAM_SESSIONS + 2 }, sessionId);
      const item = randomUUID();
      for (const session of issued) {
        await storage.downlinkKeystreams.startSession(devEui, session);
        assert.equal(
          (
            await storage.downlinkKeystreams.claim({
              devEui,
              sessionKeyId: session,
              fCntDown: 0,
              queueItemId: item,
            })
          ).outcome,
          'claimed',
        );
      }
      await storage.downlinkKeystreams.startSession(devEui, issued.at(-1)!); // again: no change
      assert.deepEqual(
        (await storage.downlinkKeystreams.sessionsOf(devEui)).map((s) => s.sessionKeyId),
        issued.slice(-KEPT_KEYSTREAM_SESSIONS).reverse(),
      );
      const claim = (sessionKeyId: string, eui = devEui) =>
        storage.downlinkKeystreams.claim({
          devEui: eui,
          sessionKeyId,
          fCntDown: 1,
          queueItemId: randomUUID(),
        });
      // Forgotten: never encrypted for again (the network may hold their ciphertexts).
      assert.deepEqual(await claim(issued[0]!), { outcome: 'unknownSession' });
      // Never issued for this device: not adopted, since it has sessions.
      assert.deepEqual(await claim(sessionId()), { outcome: 'unknownSession' });
      // Another device's session is not this one's.
      await storage.downlinkKeystreams.startSession(other, sessionId());
      assert.deepEqual(await claim(issued.at(-1)!, other), { outcome: 'unknownSession' });
      await assert.rejects(storage.downlinkKeystreams.startSession(other, issued.at(-1)!), {
        code: 'ALREADY_EXISTS',
      });
      // The rows of the forgotten sessions are gone; a deleted device takes its own along.
      const rows = async () =>
        (await database.db.selectFrom('downlink_keystreams').select('session_key_id').execute())
          .map((row) => row.session_key_id)
          .sort();
      assert.deepEqual(await rows(), issued.slice(-KEPT_KEYSTREAM_SESSIONS).sort());
      assert.equal(await storage.devices.delete(devEui), true);
      assert.deepEqual(await rows(), []);
      assert.deepEqual(await storage.downlinkKeystreams.sessionsOf(devEui), []);
    });

    it('keeps a session’s highest counters and refuses every one below them', async (t) => {
      const opened = await deviceInSession(engine, t);
      if (opened === undefined) return;
      const { storage, devEui, session } = opened;
      const claim = (fCntDown: number, queueItemId = randomUUID()) =>
        storage.downlinkKeystreams.claim({ devEui, sessionKeyId: session, fCntDown, queueItemId });
      // Counters 0, 2, 4, ...: the gaps below the floor are refused too.
      const extra = 5;
      const first = randomUUID();
      for (let n = 0; n < KEPT_KEYSTREAMS_PER_SESSION + extra; n++) {
        assert.equal((await claim(2 * n, n === extra ? first : undefined)).outcome, 'claimed');
      }
      const [kept] = await storage.downlinkKeystreams.sessionsOf(devEui);
      assert.deepEqual(kept, {
        sessionKeyId: session,
        floor: 2 * extra,
        counters: KEPT_KEYSTREAMS_PER_SESSION,
      });
      assert.deepEqual(await claim(0), { outcome: 'belowFloor', floor: 2 * extra });
      assert.deepEqual(await claim(2 * extra - 1), { outcome: 'belowFloor', floor: 2 * extra });
      // The lowest counter kept still names its item; the gaps above the floor are free.
      assert.deepEqual(await claim(2 * extra), { outcome: 'taken', queueItemId: first });
      assert.deepEqual(await claim(2 * extra, first), { outcome: 'claimed', again: true });
      assert.equal((await claim(2 * extra + 1)).outcome, 'claimed');
      assert.equal(
        (await storage.downlinkKeystreams.sessionsOf(devEui))[0]!.counters,
        KEPT_KEYSTREAMS_PER_SESSION,
        'still bounded',
      );
    });
  });
}

for (const engine of ENGINE_NAMES) {
  describe(`downlink keystream memory across a reopen on ${engine}`, () => {
    it('still refuses a keystream claimed before the database was closed', async (t) => {
      const place = await reopenablePlace(t, engine, 'galet-keystreams');
      if (place === undefined) return;
      const session = sessionId();
      const [first, second] = [randomUUID(), randomUUID()];
      let database = await openDatabase(place);
      let devEui: string;
      try {
        const storage = createStorage(database, secrets);
        devEui = await withDevice(storage);
        await storage.downlinkKeystreams.startSession(devEui, session);
        const claimed = await storage.downlinkKeystreams.claim({
          devEui,
          sessionKeyId: session,
          fCntDown: 12,
          queueItemId: first,
        });
        assert.equal(claimed.outcome, 'claimed');
      } finally {
        await database.close();
      }
      database = await openDatabase(place);
      try {
        const storage = createStorage(database, secrets);
        assert.deepEqual(
          await storage.downlinkKeystreams.claim({
            devEui,
            sessionKeyId: session,
            fCntDown: 12,
            queueItemId: second,
          }),
          { outcome: 'taken', queueItemId: first },
        );
      } finally {
        await database.close();
      }
    });
  });
}
