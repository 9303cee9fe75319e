/**
 * The downlink queue's operator-blind items (migration 0012): stored with the provider's id and
 * the counter and session they are encrypted for, encrypted again while pending. On SQLite and
 * on PostgreSQL (skipped with a message when no server is reachable, unless CI requires it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { newTimeOrderedId } from '../../src/storage/ids.js';
import { createStorage, SecretBox, type Storage } from '../../src/storage/index.js';
import { storedMeter } from '../helpers/stored-device.js';
import { testEngines } from '../helpers/test-engines.js';

const secrets = SecretBox.fromKey(randomBytes(32));

const engines = testEngines('galet-blind');

async function withDevice(storage: Storage): Promise<string> {
  return (await storedMeter(storage, { rootKeysElsewhere: true })).devEui;
}

const sessionKeyId = 'ab'.repeat(16);

for (const engine of engines) {
  describe(`operator-blind downlink items on ${engine.name}`, () => {
    it('keeps the provider’s id and what the payload is encrypted for; refuses the same id twice', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, secrets);
      const devEui = await withDevice(storage);
      const id = newTimeOrderedId();
      const queued = await storage.downlinkQueue.enqueue({
        id,
        devEui,
        fPort: 10,
        data: new Uint8Array([1, 2, 3]),
        confirmed: true,
        encryptedFor: { fCntDown: 4294967295, sessionKeyId },
      });
      assert.equal(queued.id, id);
      assert.deepEqual(queued.encryptedFor, { fCntDown: 4294967295, sessionKeyId });
      assert.deepEqual(await storage.downlinkQueue.nextPending(devEui), queued);
      const plain = await storage.downlinkQueue.enqueue({
        devEui,
        fPort: 1,
        data: new Uint8Array([9]),
        confirmed: false,
      });
      assert.equal('encryptedFor' in plain, false, 'a plaintext item has no encryptedFor');
      await assert.rejects(
        storage.downlinkQueue.enqueue({
          id,
          devEui,
          fPort: 10,
          data: new Uint8Array([1]),
          confirmed: false,
          encryptedFor: { fCntDown: 1, sessionKeyId },
        }),
        { code: 'ALREADY_EXISTS' },
      );
      for (const encryptedFor of [
        { fCntDown: -1, sessionKeyId },
        { fCntDown: 1, sessionKeyId: 'AB'.repeat(16) },
      ]) {
        await assert.rejects(
          storage.downlinkQueue.enqueue({
            devEui,
            fPort: 10,
            data: new Uint8Array([1]),
            confirmed: false,
            encryptedFor,
          }),
          { code: 'INVALID_INPUT' },
        );
      }
      await assert.rejects(
        storage.downlinkQueue.enqueue({
          id: 'not-a-uuid',
          devEui,
          fPort: 10,
          data: new Uint8Array([1]),
          confirmed: false,
        }),
        { code: 'INVALID_INPUT' },
      );
    });

    it('encrypts a pending item again, and nothing else', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, secrets);
      const devEui = await withDevice(storage);
      const item = await storage.downlinkQueue.enqueue({
        id: newTimeOrderedId(),
        devEui,
        fPort: 10,
        data: new Uint8Array([1, 2, 3]),
        confirmed: false,
        encryptedFor: { fCntDown: 4, sessionKeyId },
      });
      const again = await storage.downlinkQueue.reencrypt(item.id, new Uint8Array([7, 8, 9]), {
        fCntDown: 6,
        sessionKeyId: 'cd'.repeat(16),
      });
      assert.deepEqual(again.data, new Uint8Array([7, 8, 9]));
      assert.deepEqual(again.encryptedFor, { fCntDown: 6, sessionKeyId: 'cd'.repeat(16) });
      assert.equal(again.status, 'pending');
      await storage.downlinkQueue.markSent(item.id, 6);
      await assert.rejects(
        storage.downlinkQueue.reencrypt(item.id, new Uint8Array([1]), {
          fCntDown: 7,
          sessionKeyId,
        }),
        { code: 'INVALID_STATE' },
      );
      const plain = await storage.downlinkQueue.enqueue({
        devEui,
        fPort: 1,
        data: new Uint8Array([9]),
        confirmed: false,
      });
      await assert.rejects(
        storage.downlinkQueue.reencrypt(plain.id, new Uint8Array([1]), {
          fCntDown: 1,
          sessionKeyId,
        }),
        { code: 'INVALID_STATE' },
      );
      await assert.rejects(
        storage.downlinkQueue.reencrypt(newTimeOrderedId(), new Uint8Array([1]), {
          fCntDown: 1,
          sessionKeyId,
        }),
        { code: 'NOT_FOUND' },
      );
    });
  });
}
