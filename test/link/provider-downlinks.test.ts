/**
 * The provider's side of operator-blind downlinks (server/provider.ts) against a bare link
 * server standing in for the network: items handed over encrypted for the counters the network
 * names, re-encrypted on request, a counter never used for two items, txack reports settling
 * the provider's queue.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { wrapKeyEnvelope } from '../../src/join/backend-interfaces/key-envelope.js';
import {
  isLinkError,
  LinkAnswerError,
  type QueueDownlinkRequest,
  readReencryptDownlinkAnswer,
} from '../../src/link/index.js';
import { generateLinkToken } from '../../src/link/link-token.js';
import { silentLogger } from '../../src/logger.js';
import { encryptFrmPayload } from '../../src/lorawan/crypto/frm-payload.js';
import { appSessionKeyId } from '../../src/network/downlink/blind-downlinks.js';
import { applicationKek, ProviderLink } from '../../src/server/provider.js';
import {
  createStorage,
  KEPT_KEYSTREAM_SESSIONS,
  openDatabase,
  SecretBox,
} from '../../src/storage/index.js';
import { ENGINE_NAMES, reopenablePlace } from '../helpers/engine-places.js';
import { eventually, startNetwork } from './harness.js';

const DEV_EUI = '00000000000f0001';
const DEV_ADDR = 0x26011bda;

describe('provider link: operator-blind downlinks', () => {
  it('encrypts for the counters the network names, again on request, never one counter for two items', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-provider-link-'));
    const database = await openDatabase({ dataDir });
    t.after(async () => {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    const masterKey = randomBytes(32);
    const storage = createStorage(database, SecretBox.fromKey(masterKey));
    const application = await storage.applications.create({ name: 'water' });
    await storage.devices.create({
      devEui: DEV_EUI,
      joinEui: '70b3d57ed0000000',
      name: 'meter',
      applicationId: application.id,
      macVersion: '1.0.4',
      deviceClass: 'A',
      activation: 'otaa',
      appKey: randomBytes(16),
    });
    const plaintexts = [Buffer.from('valve=open'), Buffer.from('valve=close')];
    const [first, second] = [
      await storage.downlinkQueue.enqueue({
        devEui: DEV_EUI,
        fPort: 10,
        data: plaintexts[0]!,
        confirmed: true,
      }),
      await storage.downlinkQueue.enqueue({
        devEui: DEV_EUI,
        fPort: 11,
        data: plaintexts[1]!,
        confirmed: false,
      }),
    ];

    // The network's side: the AppSKey travels wrapped under the provider's application KEK.
    const kek = applicationKek(masterKey);
    const appSKey = new Uint8Array(randomBytes(16));
    const envelope = wrapKeyEnvelope(appSKey, kek);
    const wrapped = {
      kekLabel: envelope.kekLabel,
      aesKey: Buffer.from(envelope.aesKey).toString('hex'),
    };
    const sessionKeyId = appSessionKeyId(envelope);
    const network = await startNetwork(t, { authenticate: async () => ({ linkId: 'app' }) });
    network.server.onRequest('hello', async () => ({
      applicationId: application.id,
      name: 'water',
    }));
    network.server.onRequest('downlinkSession', async () => ({
      devAddr: DEV_ADDR.toString(16),
      sessionKeyId,
      fCntDown: 5,
      appSKey: wrapped,
      queuedIds: [],
    }));
    const handedOver: QueueDownlinkRequest[] = [];
    network.server.onRequest('queueDownlink', async (_linkId, body) => {
      handedOver.push(body as QueueDownlinkRequest);
      return { queued: true };
    });

    const link = new ProviderLink({
      networkUrl: network.url,
      token: generateLinkToken().token,
      dataDir,
      storage,
      applicationKek: kek,
      logger: silentLogger,
    });
    t.after(() => link.close());
    link.start();
    await link.ready();
    // Pending items go over once connected, in order, each for its own counter.
    await eventually(() => handedOver.length === 2, 'both items handed over');
    assert.deepEqual(
      handedOver.map((item) => [item.id, item.fPort, item.confirmed, item.fCntDown]),
      [
        [first.id, 10, true, 5],
        [second.id, 11, false, 6],
      ],
    );
    for (const [index, item] of handedOver.entries()) {
      assert.equal(item.sessionKeyId, sessionKeyId);
      const ciphertext = Buffer.from(item.frmPayload, 'base64');
      assert.notDeepEqual(ciphertext, plaintexts[index]);
      assert.deepEqual(
        Buffer.from(encryptFrmPayload(appSKey, 'downlink', DEV_ADDR, item.fCntDown, ciphertext)),
        plaintexts[index],
      );
    }

    const reencrypt = (
      id: string,
      fCntDown: number,
      keyId = sessionKeyId,
      laterFCntDownAccepted?: true,
    ) =>
      network.server.request('app', 'reencryptDownlink', {
        devEui: DEV_EUI,
        id,
        devAddr: DEV_ADDR.toString(16),
        sessionKeyId: keyId,
        fCntDown,
        appSKey: wrapped,
        ...(laterFCntDownAccepted === undefined ? {} : { laterFCntDownAccepted }),
      });
    const again = readReencryptDownlinkAnswer(await reencrypt(first.id, 7), { fCntDown: 7 });
    assert.deepEqual(
      Buffer.from(
        encryptFrmPayload(
          appSKey,
          'downlink',
          DEV_ADDR,
          7,
          Buffer.from(again.frmPayload, 'base64'),
        ),
      ),
      plaintexts[0],
    );
    const remoteCode = async (call: Promise<unknown>) => {
      try {
        await call;
      } catch (error) {
        if (isLinkError(error, 'REMOTE_ERROR')) return error.remote?.code;
        throw error;
      }
      return 'answered';
    };
    // The same item again for the same counter is harmless; another item for it is not.
    assert.equal(await remoteCode(reencrypt(first.id, 7)), 'answered');
    assert.equal(await remoteCode(reencrypt(second.id, 7)), 'COUNTER_REUSED');
    assert.equal(await remoteCode(reencrypt(second.id, 5)), 'COUNTER_REUSED');
    assert.equal(await remoteCode(reencrypt(second.id, 8, 'ab'.repeat(16))), 'INVALID_INPUT');
    // A network that skips counters gets the next one this item may use, and is told which.
    const later = readReencryptDownlinkAnswer(await reencrypt(second.id, 7, sessionKeyId, true), {
      fCntDown: 7,
      laterFCntDownAccepted: true,
    });
    assert.equal(later.fCntDown, 8, '7 encrypted the first item');
    assert.deepEqual(
      Buffer.from(
        encryptFrmPayload(
          appSKey,
          'downlink',
          DEV_ADDR,
          8,
          Buffer.from(later.frmPayload, 'base64'),
        ),
      ),
      plaintexts[1],
    );
    assert.equal(
      await remoteCode(reencrypt('0190f1e2-3a4b-7c5d-8e6f-0123456789ab', 9)),
      'NOT_FOUND',
    );

    // The network's txack settles the provider's item and is stored as an event there.
    await network.server.deliver('app', 'downlinkEvent', {
      type: 'txack',
      devEui: DEV_EUI,
      time: new Date().toISOString(),
      body: { queueItemId: second.id, fCntDown: 6, status: 'NONE' },
    });
    await eventually(
      async () => (await storage.downlinkQueue.get(second.id))?.status === 'sent',
      'the txack settles the item',
    );
    const events = await storage.events.listForDevice(DEV_EUI);
    assert.deepEqual(
      events.map((event) => event.type),
      ['txack'],
    );
  });
});

for (const engine of ENGINE_NAMES) {
  describe(`provider link: the keystream memory across a restart on ${engine}`, () => {
    it('still refuses, after a restart on the same data, a counter another item used', async (t) => {
      const place = await reopenablePlace(t, engine, 'galet-provider-restart');
      if (place === undefined) return;
      const dataDir =
        'dataDir' in place ? place.dataDir : await mkdtemp(join(tmpdir(), 'galet-provider-'));
      if (!('dataDir' in place)) t.after(() => rm(dataDir, { recursive: true, force: true }));
      const masterKey = randomBytes(32);
      const kek = applicationKek(masterKey);
      const appSKey = new Uint8Array(randomBytes(16));
      const envelope = wrapKeyEnvelope(appSKey, kek);
      const wrapped = {
        kekLabel: envelope.kekLabel,
        aesKey: Buffer.from(envelope.aesKey).toString('hex'),
      };
      const sessionKeyId = appSessionKeyId(envelope);
      let applicationId = '';
      const network = await startNetwork(t, { authenticate: async () => ({ linkId: 'app' }) });
      network.server.onRequest('hello', async () => ({ applicationId, name: 'water' }));
      network.server.onRequest('downlinkSession', async () => {
        throw new LinkAnswerError('NO_SESSION', 'not joined');
      });
      const token = generateLinkToken().token;

      /** The provider's storage and link on `place`, until `stop`. */
      const startProvider = async () => {
        const database = await openDatabase({ ...place, dataDir });
        const storage = createStorage(database, SecretBox.fromKey(masterKey));
        const link = new ProviderLink({
          networkUrl: network.url,
          token,
          dataDir,
          storage,
          applicationKek: kek,
          logger: silentLogger,
        });
        return {
          storage,
          link,
          stop: async () => {
            await link.close();
            await database.close();
          },
        };
      };
      const reencrypt = (id: string, fCntDown: number) =>
        network.server.request('app', 'reencryptDownlink', {
          devEui: DEV_EUI,
          id,
          devAddr: DEV_ADDR.toString(16),
          sessionKeyId,
          fCntDown,
          appSKey: wrapped,
        });

      let provider = await startProvider();
      try {
        applicationId = (await provider.storage.applications.create({ name: 'water' })).id;
        await provider.storage.devices.create({
          devEui: DEV_EUI,
          joinEui: '70b3d57ed0000000',
          name: 'meter',
          applicationId,
          macVersion: '1.0.4',
          deviceClass: 'A',
          activation: 'otaa',
          appKey: randomBytes(16),
        });
        // The session the provider's join server issued (as a JoinAccept over the link does).
        await provider.storage.downlinkKeystreams.startSession(DEV_EUI, sessionKeyId);
        provider.link.start();
        await provider.link.ready();
        t.after(() => provider.stop());
      } catch (error) {
        await provider.stop();
        throw error;
      }
      const enqueue = async (text: string) =>
        (
          await provider.storage.downlinkQueue.enqueue({
            devEui: DEV_EUI,
            fPort: 3,
            data: Buffer.from(text),
            confirmed: false,
          })
        ).id;
      const [first, second] = [await enqueue('dose=12'), await enqueue('dose=0')];
      readReencryptDownlinkAnswer(await reencrypt(first, 40), { fCntDown: 40 });

      await provider.stop();
      provider = await startProvider();
      provider.link.start();
      await provider.link.ready();
      assert.equal(await remoteCodeOf(reencrypt(second, 40)), 'COUNTER_REUSED');
      assert.equal(await remoteCodeOf(reencrypt(first, 40)), 'answered', 'its own counter again');
      assert.equal(await remoteCodeOf(reencrypt(second, 41)), 'answered');
      // Sessions issued after it push it out of the memory: never encrypted for again.
      for (let n = 0; n < KEPT_KEYSTREAM_SESSIONS; n++) {
        await provider.storage.downlinkKeystreams.startSession(
          DEV_EUI,
          randomBytes(16).toString('hex'),
        );
      }
      assert.equal(await remoteCodeOf(reencrypt(second, 42)), 'UNKNOWN_SESSION');
    });
  });
}

async function remoteCodeOf(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
  } catch (error) {
    if (isLinkError(error, 'REMOTE_ERROR')) return error.remote?.code;
    throw error;
  }
  return 'answered';
}
