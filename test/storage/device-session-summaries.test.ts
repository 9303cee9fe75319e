/**
 * The batched reads behind the devices list (issue #6): `deviceSessions.summariesOf` (session
 * state and whether the AppSKey is held in clear) and `devices.withRootKeys`, neither of which
 * opens a sealed key. On SQLite and on PostgreSQL (skipped with a message when no server is
 * reachable, unless CI requires it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createStorage,
  type DeviceSessionInput,
  type GaletDatabase,
  type MacVersion,
  SecretBox,
  type SessionKeys,
  type Storage,
  sessionKeysAssociatedData,
} from '../../src/storage/index.js';
import { testEngines } from '../helpers/test-engines.js';
import { sealFirstFormat } from './master-key-fixtures.js';

const masterKey = randomBytes(32);
const secrets = SecretBox.fromKey(masterKey);
const key = (seed: number) => Uint8Array.from({ length: 16 }, (_, i) => (seed * 17 + i) & 0xff);
/** A 1.0 session wrapped under a 22-byte label is as long as a clear 1.1 one (65 bytes). */
const envelope = (labelLength: number) => ({
  kekLabel: 'k'.repeat(labelLength),
  aesKey: new Uint8Array(24).fill(7),
});

const engines = testEngines('galet-session-summaries');

async function addDevice(
  storage: Storage,
  applicationId: string,
  macVersion: MacVersion,
  how: 'root keys' | 'root keys elsewhere' | 'abp',
): Promise<string> {
  const devEui = randomBytes(8).toString('hex');
  await storage.devices.create({
    devEui,
    joinEui: '70b3d57ed0000000',
    name: `device ${devEui}`,
    applicationId,
    macVersion,
    deviceClass: 'A',
    activation: how === 'abp' ? 'abp' : 'otaa',
    ...(how === 'root keys'
      ? { appKey: key(1), ...(macVersion === '1.1.0' ? { nwkKey: key(2) } : {}) }
      : {}),
    ...(how === 'root keys elsewhere' ? { rootKeysElsewhere: true } : {}),
  });
  return devEui;
}

function session(devEui: string, macVersion: MacVersion, keys: SessionKeys): DeviceSessionInput {
  return {
    devEui,
    devAddr: 0x26011bda + Number.parseInt(devEui.slice(-2), 16),
    macVersion,
    keys,
    fCntUp: Number.parseInt(devEui.slice(-3), 16),
    nFCntDown: 5,
    aFCntDown: 9,
    rx1DelaySeconds: 1,
    rx1DrOffset: 0,
    rx2Dr: 0,
    rx2FrequencyHz: 869_525_000,
  };
}

const keys10 = (app: 'clear' | number): SessionKeys =>
  app === 'clear'
    ? { lorawan: '1.0', nwkSKey: key(3), appSKey: key(4) }
    : { lorawan: '1.0', nwkSKey: key(3), appSKeyEnvelope: envelope(app) };
const keys11 = (app: 'clear' | number): SessionKeys =>
  app === 'clear'
    ? {
        lorawan: '1.1',
        fNwkSIntKey: key(5),
        sNwkSIntKey: key(6),
        nwkSEncKey: key(7),
        appSKey: key(8),
      }
    : {
        lorawan: '1.1',
        fNwkSIntKey: key(5),
        sNwkSIntKey: key(6),
        nwkSEncKey: key(7),
        appSKeyEnvelope: envelope(app),
      };

/** Every kind of session there is, and devices without one; returns what each should show. */
async function populate(storage: Storage) {
  const application = await storage.applications.create({ name: 'Saint-Galmier' });
  const id = application.id;
  const cases: { devEui: string; appSKeyHeld: boolean | undefined; rootKeys: boolean }[] = [];
  const add = async (
    macVersion: MacVersion,
    how: 'root keys' | 'root keys elsewhere' | 'abp',
    keys: SessionKeys | undefined,
  ) => {
    const devEui = await addDevice(storage, id, macVersion, how);
    if (keys !== undefined) await storage.deviceSessions.upsert(session(devEui, macVersion, keys));
    cases.push({
      devEui,
      appSKeyHeld: keys === undefined ? undefined : keys.appSKey !== undefined,
      rootKeys: how === 'root keys',
    });
  };
  await add('1.0.4', 'root keys', keys10('clear'));
  await add('1.1.0', 'root keys', keys11('clear'));
  await add('1.0.3', 'abp', keys10('clear'));
  await add('1.1.0', 'abp', keys11('clear'));
  await add('1.0.4', 'root keys elsewhere', keys10(22));
  await add('1.0.4', 'root keys elsewhere', keys10(1));
  await add('1.1.0', 'root keys elsewhere', keys11(300));
  await add('1.0.4', 'root keys', undefined);
  await add('1.1.0', 'root keys', undefined);
  await add('1.0.4', 'root keys elsewhere', undefined);
  await add('1.0.2', 'abp', undefined);
  return cases;
}

/** The same database read under another master key: any opened secret would fail. */
function underAnotherMasterKey(database: GaletDatabase): Storage {
  return createStorage(database, SecretBox.fromKey(randomBytes(32)));
}

for (const engine of engines) {
  describe(`batched session reads for device lists on ${engine.name}`, () => {
    it('summarises each session as get() shows it, and tells a clear AppSKey from a wrapped one', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, secrets);
      const cases = await populate(storage);
      const unknown = randomBytes(8).toString('hex');
      const summaries = await storage.deviceSessions.summariesOf([
        ...cases.map((c) => c.devEui.toUpperCase()),
        unknown,
        cases[0]!.devEui,
      ]);
      assert.deepEqual(
        [...summaries.keys()].sort(),
        cases
          .filter((c) => c.appSKeyHeld !== undefined)
          .map((c) => c.devEui)
          .sort(),
      );
      for (const { devEui, appSKeyHeld } of cases) {
        const full = await storage.deviceSessions.get(devEui);
        const summary = summaries.get(devEui);
        if (full === undefined) {
          assert.equal(summary, undefined, devEui);
          continue;
        }
        assert.deepEqual(
          summary,
          {
            devEui,
            devAddr: full.devAddr,
            macVersion: full.macVersion,
            fCntUp: full.fCntUp,
            nFCntDown: full.nFCntDown,
            aFCntDown: full.aFCntDown,
            appSKeyHeld: full.keys.appSKey !== undefined,
          },
          devEui,
        );
        assert.equal(summary?.appSKeyHeld, appSKeyHeld, devEui);
      }
      assert.equal((await storage.deviceSessions.summariesOf([])).size, 0);
    });

    it('opens no key: the same answers under a master key that opens nothing', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, secrets);
      const cases = await populate(storage);
      const devEuis = cases.map((c) => c.devEui);
      const blind = underAnotherMasterKey(database);
      await assert.rejects(blind.deviceSessions.get(devEuis[0]!), { code: 'SECRET_OPEN_FAILED' });
      await assert.rejects(blind.devices.getRootKeys(devEuis[0]!), { code: 'SECRET_OPEN_FAILED' });
      assert.deepEqual(
        await blind.deviceSessions.summariesOf(devEuis),
        await storage.deviceSessions.summariesOf(devEuis),
      );
      assert.deepEqual(
        [...(await blind.devices.withRootKeys(devEuis))].sort(),
        cases
          .filter((c) => c.rootKeys)
          .map((c) => c.devEui)
          .sort(),
      );
    });

    it('reads sessions sealed in the first SecretBox format (no key id) too', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, secrets);
      const application = await storage.applications.create({ name: 'legacy' });
      const clear = await addDevice(storage, application.id, '1.0.4', 'abp');
      const wrapped = await addDevice(storage, application.id, '1.0.4', 'root keys elsewhere');
      const layouts: [string, Uint8Array][] = [
        [clear, Uint8Array.from([0x10, ...key(3), ...key(4)])],
        [
          wrapped,
          Uint8Array.from([
            0x12,
            ...key(3),
            0,
            22,
            ...Buffer.from('k'.repeat(22)),
            ...new Uint8Array(24).fill(7),
          ]),
        ],
      ];
      for (const [devEui, plaintext] of layouts) {
        await storage.deviceSessions.upsert(session(devEui, '1.0.4', keys10('clear')));
        await database.db
          .updateTable('device_sessions')
          .set({
            keys_enc: sealFirstFormat(masterKey, plaintext, sessionKeysAssociatedData(devEui)),
          })
          .where('dev_eui', '=', devEui)
          .execute();
      }
      // The rows are what an older Galet wrote: get() opens them.
      assert.ok((await storage.deviceSessions.get(clear))?.keys.appSKey);
      assert.ok((await storage.deviceSessions.get(wrapped))?.keys.appSKeyEnvelope);
      const summaries = await storage.deviceSessions.summariesOf([clear, wrapped]);
      assert.equal(summaries.get(clear)?.appSKeyHeld, true);
      assert.equal(summaries.get(wrapped)?.appSKeyHeld, false);
    });

    it('answers a whole page of 1000 devices', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, secrets);
      const application = await storage.applications.create({ name: 'many' });
      const devEuis = Array.from(
        { length: 1000 },
        (_, i) => `70b3d5c1${i.toString(16).padStart(8, '0')}`,
      );
      await storage.devices.createMany(
        devEuis.map((devEui, i) => ({
          devEui,
          joinEui: '70b3d57ed0000000',
          name: devEui,
          applicationId: application.id,
          macVersion: '1.0.4' as const,
          deviceClass: 'A' as const,
          activation: i % 2 === 0 ? ('otaa' as const) : ('abp' as const),
          ...(i % 2 === 0 ? { appKey: key(1) } : {}),
        })),
      );
      await storage.deviceSessions.upsert(session(devEuis[999]!, '1.0.4', keys10('clear')));
      const rooted = await storage.devices.withRootKeys(devEuis);
      assert.equal(rooted.size, 500);
      assert.ok(rooted.has(devEuis[998]!) && !rooted.has(devEuis[999]!));
      const summaries = await storage.deviceSessions.summariesOf(devEuis);
      assert.deepEqual([...summaries.keys()], [devEuis[999]]);
    });
  });
}
