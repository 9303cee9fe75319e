/**
 * The storage behaviour every engine must have. `sqlite.test.ts` and `postgres.test.ts` run it
 * against a fresh database per test; nothing here may depend on the engine.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import {
  createStorage,
  type DeviceProfile,
  type DeviceProfileSettings,
  type DeviceSessionInput,
  defaultDeviceProfileSettings,
  type GaletDatabase,
  isStorageError,
  MIGRATION_TABLE,
  type NewDevice,
  type NewDeviceProfile,
  type RepositoryOptions,
  SecretBox,
  type Storage,
  type StorageErrorCode,
  type StorageLogger,
} from '../../src/storage/index.js';
import { migrations } from '../../src/storage/migrations/index.js';
import { deviceSessionInput } from '../helpers/device-session.js';

/** Every migration Galet knows, in order. */
const MIGRATION_NAMES = Object.keys(migrations('sqlite'));

/** One database that can be opened (and reopened) and finally deleted. */
export interface TestDatabasePlace {
  open(logger?: StorageLogger): Promise<GaletDatabase>;
  dispose(): Promise<void>;
}

export interface StorageTestTarget {
  /** An empty database; it may have been migrated already. */
  fresh(): Promise<TestDatabasePlace>;
  /** A database never opened before: the first open migrates it. */
  pristine(): Promise<TestDatabasePlace>;
}

const MASTER_KEY = randomBytes(32);
const secrets = SecretBox.fromKey(MASTER_KEY);
const UINT32_MAX = 0xffff_ffff;

interface Setup {
  place: TestDatabasePlace;
  database: GaletDatabase;
  storage: Storage;
}

async function setup(
  target: StorageTestTarget,
  t: TestContext,
  options?: RepositoryOptions,
): Promise<Setup> {
  const place = await target.fresh();
  let database: GaletDatabase;
  try {
    database = await place.open();
  } catch (error) {
    await place.dispose();
    throw error;
  }
  t.after(async () => {
    await database.close();
    await place.dispose();
  });
  return { place, database, storage: createStorage(database, secrets, options) };
}

function eui(): string {
  return randomBytes(8).toString('hex');
}

function key(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

async function rejectsWith(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isStorageError(error), `expected a StorageError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

async function newApplication(storage: Storage, name = 'Water meters'): Promise<string> {
  return (await storage.applications.create({ name })).id;
}

async function newDevice(
  storage: Storage,
  overrides: Partial<NewDevice> = {},
): Promise<NewDevice & { devEui: string }> {
  const input = {
    devEui: eui(),
    joinEui: '70b3d57ed0000000',
    name: 'meter',
    applicationId: overrides.applicationId ?? (await newApplication(storage)),
    macVersion: '1.0.4' as const,
    deviceClass: 'A' as const,
    activation: 'otaa' as const,
    appKey: key(),
    ...overrides,
  };
  await storage.devices.create(input);
  return input;
}

/**
 * The uplink counter's compare-and-set, as the server does it: one uplink committed alone
 * (its event is stored only when the counter moved).
 */
function casThroughUplinkCommit(storage: Storage) {
  return async (devEui: string, expected: number | null, next: number): Promise<boolean> => {
    const [won] = await storage.uplinkCommits.commit([
      {
        devEui,
        expectedFCntUp: expected,
        nextFCntUp: next,
        event: {
          devEui,
          applicationId: 'app',
          type: 'up',
          time: '2026-11-29T12:00:00.000Z',
          body: { fCnt: next },
        },
      },
    ]);
    return won!;
  };
}

function session10(
  devEui: string,
  overrides: Partial<DeviceSessionInput> = {},
): DeviceSessionInput {
  return deviceSessionInput({
    devEui,
    devAddr: 0x2601_1234,
    macVersion: '1.0.4',
    keys: { lorawan: '1.0', nwkSKey: key(), appSKey: key() },
    ...overrides,
  });
}

function session11(
  devEui: string,
  overrides: Partial<DeviceSessionInput> = {},
): DeviceSessionInput {
  return session10(devEui, {
    macVersion: '1.1.0',
    keys: {
      lorawan: '1.1',
      fNwkSIntKey: key(),
      sNwkSIntKey: key(),
      nwkSEncKey: key(),
      appSKey: key(),
    },
    ...overrides,
  });
}

function fixedClock(iso = '2025-03-01T10:00:00.000Z'): RepositoryOptions {
  const date = new Date(iso);
  return { now: () => date };
}

export function storageSuite(target: StorageTestTarget): void {
  describe('migrations', () => {
    it('applies every migration once and is a no-op when the database is reopened', async (t) => {
      const place = await target.pristine();
      const logged: string[] = [];
      const logger: StorageLogger = {
        info: (fields, message) => logged.push(`${message} ${String(fields.migration)}`),
        warn: (_fields, message) => logged.push(`warn: ${message}`),
      };
      const database = await place.open(logger);
      t.after(async () => {
        await database.close();
        await place.dispose();
      });
      assert.deepEqual(
        logged,
        MIGRATION_NAMES.map((name) => `applied database migration ${name}`),
      );
      const applied = await database.db
        .selectFrom(MIGRATION_TABLE as never)
        .select('name' as never)
        .execute();
      assert.deepEqual(
        applied,
        MIGRATION_NAMES.map((name) => ({ name })),
      );
      const app = await createStorage(database, secrets).applications.create({ name: 'kept' });

      logged.length = 0;
      const again = await place.open(logger);
      try {
        const rows = await again.db
          .selectFrom(MIGRATION_TABLE as never)
          .select('name' as never)
          .execute();
        assert.deepEqual(
          rows,
          MIGRATION_NAMES.map((name) => ({ name })),
        );
        assert.deepEqual(logged, []);
        assert.deepEqual(await createStorage(again, secrets).applications.get(app.id), app);
      } finally {
        await again.close();
      }
    });

    it('closes twice without error', async (t) => {
      const { place } = await setup(target, t);
      const other = await place.open();
      await other.close();
      await other.close();
    });
  });

  describe('applications', () => {
    it('creates, gets, lists oldest first with paging, and deletes', async (t) => {
      let clock = Date.parse('2025-01-01T00:00:00Z');
      const tick = () => {
        clock += 1000;
        return new Date(clock);
      };
      const { storage } = await setup(target, t, { now: tick });
      const a = await storage.applications.create({ name: 'A' });
      const b = await storage.applications.create({ name: 'B' });
      const c = await storage.applications.create({ name: 'C' });
      assert.match(a.id, /^[0-9a-f-]{36}$/);
      assert.equal(a.createdAt, '2025-01-01T00:00:01.000Z');
      assert.deepEqual(await storage.applications.get(b.id), b);
      assert.equal(await storage.applications.get('no-such-id'), undefined);
      assert.deepEqual(await storage.applications.list(), [a, b, c]);
      assert.deepEqual(await storage.applications.list({ limit: 2 }), [a, b]);
      assert.deepEqual(await storage.applications.list({ limit: 2, offset: 2 }), [c]);
      assert.equal(await storage.applications.delete(b.id), true);
      assert.equal(await storage.applications.delete(b.id), false);
      assert.deepEqual(await storage.applications.list(), [a, c]);
    });

    it('refuses an empty name and a bad page', async (t) => {
      const { storage } = await setup(target, t);
      await rejectsWith(storage.applications.create({ name: '  ' }), 'INVALID_INPUT');
      await rejectsWith(storage.applications.list({ limit: 0 }), 'INVALID_INPUT');
      await rejectsWith(storage.applications.list({ offset: -1 }), 'INVALID_INPUT');
    });

    it('refuses to delete an application that still has devices (on delete restrict)', async (t) => {
      const { storage } = await setup(target, t);
      const device = await newDevice(storage);
      await rejectsWith(storage.applications.delete(device.applicationId), 'STILL_REFERENCED');
      assert.ok(await storage.applications.get(device.applicationId));
      assert.equal(await storage.devices.delete(device.devEui), true);
      assert.equal(await storage.applications.delete(device.applicationId), true);
    });
  });

  describe('gateways', () => {
    it('creates with a configured location, normalises the EUI and refuses a duplicate', async (t) => {
      const { storage } = await setup(target, t, fixedClock());
      const gateway = await storage.gateways.create({
        gatewayId: 'AA555A0000000101',
        name: 'Town hall roof',
        location: { latitude: 48.85, longitude: 2.35, altitude: 42 },
      });
      assert.deepEqual(gateway, {
        gatewayId: 'aa555a0000000101',
        name: 'Town hall roof',
        location: { latitude: 48.85, longitude: 2.35, altitude: 42, source: 'configured' },
        lastSeenAt: null,
        counters: { rxReceived: 0, rxReceivedOk: 0, rxForwarded: 0, txReceived: 0, txEmitted: 0 },
        tenantId: null,
        shared: false,
        tags: {},
        createdAt: '2025-03-01T10:00:00.000Z',
        updatedAt: '2025-03-01T10:00:00.000Z',
      });
      assert.deepEqual(await storage.gateways.get('aa555a0000000101'), gateway);
      await rejectsWith(
        storage.gateways.create({ gatewayId: 'aa555a0000000101', name: 'again' }),
        'ALREADY_EXISTS',
      );
      await rejectsWith(
        storage.gateways.create({ gatewayId: 'xyz', name: 'bad' }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.gateways.create({
          gatewayId: eui(),
          name: 'bad',
          location: { latitude: 91, longitude: 0 },
        }),
        'INVALID_INPUT',
      );
    });

    it('adds stats counters, takes the reported location and never moves last_seen_at back', async (t) => {
      const { storage } = await setup(target, t);
      const gatewayId = eui();
      await storage.gateways.create({ gatewayId, name: 'church' });
      const report = {
        receivedAt: '2025-03-01T10:00:00Z',
        rxReceived: 10,
        rxReceivedOk: 8,
        rxForwarded: 8,
        txReceived: 2,
        txEmitted: 2,
        location: { latitude: 45.1, longitude: 5.7, altitude: 210 },
      };
      assert.equal(await storage.gateways.recordStats(gatewayId, report), true);
      assert.equal(
        await storage.gateways.recordStats(gatewayId, {
          ...report,
          receivedAt: '2025-03-01T09:59:00+00:00',
          rxReceived: 3_000_000_000,
          location: { latitude: 45.2, longitude: 5.8 },
        }),
        true,
      );
      const gateway = await storage.gateways.get(gatewayId);
      assert.deepEqual(gateway?.counters, {
        rxReceived: 3_000_000_010,
        rxReceivedOk: 16,
        rxForwarded: 16,
        txReceived: 4,
        txEmitted: 4,
      });
      assert.deepEqual(gateway?.location, {
        latitude: 45.2,
        longitude: 5.8,
        altitude: null,
        source: 'gateway',
      });
      assert.equal(gateway?.lastSeenAt, '2025-03-01T10:00:00.000Z');
      assert.equal(await storage.gateways.recordStats(eui(), report), false);
      await rejectsWith(
        storage.gateways.recordStats(gatewayId, { ...report, rxReceived: -1 }),
        'INVALID_INPUT',
      );
    });

    it('keeps a configured location when the gateway reports another', async (t) => {
      const { storage } = await setup(target, t);
      const gatewayId = eui();
      const location = { latitude: 48.1, longitude: -1.6, altitude: 30 };
      await storage.gateways.create({ gatewayId, name: 'water tower', location });
      await storage.gateways.recordStats(gatewayId, {
        receivedAt: '2025-03-01T10:00:00Z',
        rxReceived: 1,
        rxReceivedOk: 1,
        rxForwarded: 1,
        txReceived: 0,
        txEmitted: 0,
        location: { latitude: 0, longitude: 0, altitude: 0 },
      });
      const gateway = await storage.gateways.get(gatewayId);
      assert.deepEqual(gateway?.location, { ...location, source: 'configured' });
      assert.equal(gateway?.counters.rxReceived, 1);
    });

    it('touches last_seen_at forward only and lists by gateway id', async (t) => {
      const { storage } = await setup(target, t);
      const ids = [eui(), eui(), eui()];
      for (const gatewayId of ids) await storage.gateways.create({ gatewayId, name: 'gw' });
      assert.equal(await storage.gateways.touch(ids[0]!, '2025-03-01T10:00:05.000Z'), true);
      assert.equal(await storage.gateways.touch(ids[0]!, '2025-03-01T10:00:01.000Z'), true);
      assert.equal((await storage.gateways.get(ids[0]!))?.lastSeenAt, '2025-03-01T10:00:05.000Z');
      assert.equal(await storage.gateways.touch(eui(), '2025-03-01T10:00:05.000Z'), false);
      await rejectsWith(storage.gateways.touch(ids[0]!, 'yesterday'), 'INVALID_INPUT');
      const listed = (await storage.gateways.list()).map((gateway) => gateway.gatewayId);
      assert.deepEqual(listed, [...ids].sort());
      assert.equal((await storage.gateways.list({ limit: 1, offset: 1 }))[0]?.gatewayId, listed[1]);
      assert.equal(await storage.gateways.get(eui()), undefined);
    });
  });

  describe('devices', () => {
    it('creates and gets a device without its keys; getRootKeys decrypts them', async (t) => {
      const { storage } = await setup(target, t, fixedClock());
      const applicationId = await newApplication(storage);
      const appKey = key();
      const nwkKey = key();
      const device = await storage.devices.create({
        devEui: '0004A30B001C0530',
        joinEui: '70B3D57ED0000000',
        name: 'Pump 3',
        applicationId,
        macVersion: '1.1.0',
        deviceClass: 'C',
        activation: 'otaa',
        appKey,
        nwkKey,
      });
      const expected = {
        devEui: '0004a30b001c0530',
        joinEui: '70b3d57ed0000000',
        name: 'Pump 3',
        applicationId,
        macVersion: '1.1.0',
        deviceClass: 'C',
        activation: 'otaa',
        deviceProfileId: null,
        tenantId: null,
        tags: {},
        lastSeenAt: null,
        createdAt: '2025-03-01T10:00:00.000Z',
        updatedAt: '2025-03-01T10:00:00.000Z',
      };
      assert.deepEqual(device, expected);
      assert.deepEqual(await storage.devices.get('0004a30b001c0530'), expected);
      assert.deepEqual(await storage.devices.getRootKeys('0004a30b001c0530'), { appKey, nwkKey });
      assert.equal(await storage.devices.get(eui()), undefined);
      assert.equal(await storage.devices.getRootKeys(eui()), undefined);
    });

    it('keeps a 1.0 device to its AppKey, and an ABP device to no root key', async (t) => {
      const { storage } = await setup(target, t);
      const appKey = key();
      const otaa = await newDevice(storage, { appKey });
      assert.deepEqual(await storage.devices.getRootKeys(otaa.devEui), { appKey });
      const abp = await newDevice(storage, { activation: 'abp', appKey: undefined });
      assert.equal(await storage.devices.getRootKeys(abp.devEui), undefined);
    });

    it('refuses invalid devices, duplicates and unknown applications', async (t) => {
      const { storage } = await setup(target, t);
      const applicationId = await newApplication(storage);
      const base: NewDevice = {
        devEui: eui(),
        joinEui: eui(),
        name: 'd',
        applicationId,
        macVersion: '1.0.3',
        deviceClass: 'A',
        activation: 'otaa',
        appKey: key(),
      };
      await rejectsWith(storage.devices.create({ ...base, appKey: undefined }), 'INVALID_INPUT');
      await rejectsWith(storage.devices.create({ ...base, nwkKey: key() }), 'INVALID_INPUT');
      await rejectsWith(storage.devices.create({ ...base, macVersion: '1.1.0' }), 'INVALID_INPUT');
      await rejectsWith(
        storage.devices.create({ ...base, appKey: new Uint8Array(15) }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.devices.create({ ...base, macVersion: '1.2' as never }),
        'INVALID_INPUT',
      );
      await rejectsWith(storage.devices.create({ ...base, devEui: '01' }), 'INVALID_INPUT');
      await rejectsWith(
        storage.devices.create({ ...base, applicationId: 'missing' }),
        'MISSING_REFERENCE',
      );
      await storage.devices.create(base);
      await rejectsWith(storage.devices.create(base), 'ALREADY_EXISTS');
      await rejectsWith(
        storage.devices.create({ ...base, devEui: base.devEui.toUpperCase() }),
        'ALREADY_EXISTS',
      );
    });

    it('lists by DevEUI, filtered by application, with paging', async (t) => {
      const { storage } = await setup(target, t);
      const first = await newApplication(storage, 'first');
      const second = await newApplication(storage, 'second');
      const inFirst = [eui(), eui(), eui()];
      for (const devEui of inFirst) await newDevice(storage, { devEui, applicationId: first });
      const inSecond = await newDevice(storage, { applicationId: second });
      const sorted = [...inFirst].sort();
      const euis = (devices: { devEui: string }[]) => devices.map((device) => device.devEui);
      assert.deepEqual(euis(await storage.devices.list({ applicationId: first })), sorted);
      assert.deepEqual(euis(await storage.devices.list({ applicationId: second })), [
        inSecond.devEui,
      ]);
      assert.deepEqual(
        euis(await storage.devices.list({ applicationId: first, limit: 2, offset: 1 })),
        sorted.slice(1),
      );
      assert.equal((await storage.devices.list()).length, 4);
      assert.equal((await storage.devices.list())[0]?.name, 'meter');
      assert.deepEqual(euis(await storage.devices.listAll()), [...inFirst, inSecond.devEui].sort());
    });

    it('touches last_seen_at forward only', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      assert.equal(await storage.devices.touch(devEui, '2025-03-01T10:00:00+01:00'), true);
      assert.equal(await storage.devices.touch(devEui, '2025-03-01T08:00:00Z'), true);
      assert.equal((await storage.devices.get(devEui))?.lastSeenAt, '2025-03-01T09:00:00.000Z');
      assert.equal(await storage.devices.touch(eui(), '2025-03-01T08:00:00Z'), false);
    });

    it('keeps RJcount1 only upwards: one of two racing copies is new, the other a replay', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      assert.equal(await storage.devices.lastRjCount1(devEui), null);
      assert.equal(await storage.devices.recordRjCount1(devEui, 0), 'new');
      assert.equal(await storage.devices.recordRjCount1(devEui, 0), 'replayed');
      const racing = await Promise.all([
        storage.devices.recordRjCount1(devEui, 5),
        storage.devices.recordRjCount1(devEui, 5),
      ]);
      assert.deepEqual([...racing].sort(), ['new', 'replayed']);
      assert.equal(await storage.devices.recordRjCount1(devEui, 4), 'replayed');
      assert.equal(await storage.devices.lastRjCount1(devEui), 5);
      assert.equal(await storage.devices.recordRjCount1(eui(), 1), 'replayed');
      await rejectsWith(storage.devices.recordRjCount1(devEui, 0x1_0000), 'INVALID_INPUT');
    });

    it('issues JoinNonces 1, 2, 3 ... distinct under concurrency, and stops at 2^24 - 1', async (t) => {
      const { storage, database } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      assert.equal(await storage.devices.nextJoinNonce(devEui), 1);
      assert.equal(await storage.devices.nextJoinNonce(devEui), 2);
      const concurrent = await Promise.all(
        Array.from({ length: 12 }, () => storage.devices.nextJoinNonce(devEui)),
      );
      assert.deepEqual(
        [...concurrent].sort((a, b) => a - b),
        Array.from({ length: 12 }, (_, i) => i + 3),
      );
      await database.db
        .updateTable('devices')
        .set({ join_nonce: 0xff_fffe })
        .where('dev_eui', '=', devEui)
        .execute();
      assert.equal(await storage.devices.nextJoinNonce(devEui), 0xff_ffff);
      await rejectsWith(storage.devices.nextJoinNonce(devEui), 'COUNTER_EXHAUSTED');
      await rejectsWith(storage.devices.nextJoinNonce(eui()), 'NOT_FOUND');
    });

    it('deletes a device with its session, DevNonces and downlinks (on delete cascade)', async (t) => {
      const { storage, database } = await setup(target, t);
      const { devEui, applicationId } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui));
      await storage.devNonces.record(devEui, 1);
      await storage.downlinkQueue.enqueue({
        devEui,
        fPort: 1,
        data: new Uint8Array([1]),
        confirmed: false,
      });
      await storage.events.append({
        devEui,
        applicationId,
        type: 'up',
        time: '2025-03-01T10:00:00Z',
        body: {},
      });
      assert.equal(await storage.devices.delete(devEui), true);
      assert.equal(await storage.devices.delete(devEui), false);
      assert.equal(await storage.devices.get(devEui), undefined);
      assert.equal(await storage.deviceSessions.get(devEui), undefined);
      assert.equal(await storage.devNonces.maxFor(devEui), null);
      assert.deepEqual(await storage.downlinkQueue.list(devEui), []);
      for (const table of ['device_sessions', 'dev_nonces', 'downlink_queue'] as const) {
        const rows = await database.db
          .selectFrom(table)
          .select('dev_eui')
          .where('dev_eui', '=', devEui)
          .execute();
        assert.deepEqual(rows, [], table);
      }
      // The event log is history: it outlives the device.
      assert.equal((await storage.events.listForDevice(devEui)).length, 1);
    });
  });

  describe('device profiles', () => {
    it('creates a profile with every default, stores them as JSON, gets and lists it', async (t) => {
      let clock = Date.parse('2025-01-01T00:00:00Z');
      const tick = () => {
        clock += 1000;
        return new Date(clock);
      };
      const { storage, database } = await setup(target, t, { now: tick });
      const profile = await storage.deviceProfiles.create({ name: 'Water meters' });
      assert.match(profile.id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(profile, {
        id: profile.id,
        name: 'Water meters',
        region: 'EU868',
        tenantId: null,
        ...defaultDeviceProfileSettings(),
        createdAt: '2025-01-01T00:00:01.000Z',
        updatedAt: '2025-01-01T00:00:01.000Z',
      });
      assert.deepEqual(defaultDeviceProfileSettings(), {
        adr: { enabled: true, minDr: 0, maxDr: 5, installationMarginDb: 10 },
        rx1DelaySeconds: 1,
        rx1DrOffset: 0,
        rx2Dr: 0,
        rx2FrequencyHz: 869_525_000,
        extraChannels: [],
        dlChannels: [],
        maxDutyCycle: 0,
        devStatusIntervalSeconds: 86_400,
        confirmedDownlink: { maxAttempts: 3, classCTimeoutSeconds: 30 },
      });
      const row = await database.db
        .selectFrom('device_profiles')
        .selectAll()
        .where('id', '=', profile.id)
        .executeTakeFirstOrThrow();
      assert.deepEqual(JSON.parse(row.settings), defaultDeviceProfileSettings());
      assert.equal(row.region, 'EU868');
      assert.deepEqual(await storage.deviceProfiles.get(profile.id), profile);
      assert.equal(await storage.deviceProfiles.get('no-such-id'), undefined);

      const second = await storage.deviceProfiles.create({ name: 'B' });
      const third = await storage.deviceProfiles.create({ name: 'C' });
      assert.deepEqual(await storage.deviceProfiles.list(), [profile, second, third]);
      assert.deepEqual(await storage.deviceProfiles.list({ limit: 2, offset: 1 }), [second, third]);
      assert.deepEqual(await storage.deviceProfiles.listAll(), [profile, second, third]);
      await rejectsWith(storage.deviceProfiles.list({ limit: 0 }), 'INVALID_INPUT');
    });

    it('round-trips every setting through the JSON document', async (t) => {
      const { storage, database } = await setup(target, t);
      const settings: DeviceProfileSettings = {
        macVersion: '1.1.0',
        adr: { enabled: false, minDr: 1, maxDr: 4, installationMarginDb: 12.5 },
        rx1DelaySeconds: 5,
        rx1DrOffset: 2,
        rx2Dr: 3,
        rx2FrequencyHz: 869_525_000,
        extraChannels: [
          { frequencyHz: 867_100_000, minDr: 0, maxDr: 5 },
          { frequencyHz: 868_800_000, minDr: 7, maxDr: 7 },
        ],
        dlChannels: [
          { index: 0, frequencyHz: 868_500_000 },
          { index: 15, frequencyHz: 869_525_000 },
        ],
        maxDutyCycle: 7,
        devStatusIntervalSeconds: 0,
        confirmedDownlink: { maxAttempts: 10, classCTimeoutSeconds: 3600 },
        adrAckLimitExp: 6,
        adrAckDelayExp: 5,
        rejoin: { maxTimeN: 15, maxCountN: 0 },
        uplinkIntervalSeconds: 604_800,
      };
      const profile = await storage.deviceProfiles.create({ name: 'Everything', ...settings });
      const { id, name, region, tenantId, createdAt, updatedAt, ...stored } = profile;
      assert.equal(tenantId, null);
      assert.deepEqual(stored, settings);
      assert.deepEqual(await storage.deviceProfiles.get(id), profile);
      const row = await database.db
        .selectFrom('device_profiles')
        .select('settings')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      assert.deepEqual(JSON.parse(row.settings), settings);
      assert.equal(name, 'Everything');
      assert.equal(region, 'EU868');
      assert.equal(createdAt, updatedAt);
    });

    it('fills defaults missing from a stored document (written by an older Galet)', async (t) => {
      const { storage, database } = await setup(target, t);
      const { id } = await storage.deviceProfiles.create({ name: 'old' });
      await database.db
        .updateTable('device_profiles')
        .set({ settings: JSON.stringify({ adr: { maxDr: 3 }, rx2Dr: 2 }) })
        .where('id', '=', id)
        .execute();
      const profile = await storage.deviceProfiles.get(id);
      assert.deepEqual(profile?.adr, { ...defaultDeviceProfileSettings().adr, maxDr: 3 });
      assert.equal(profile?.rx2Dr, 2);
      assert.equal(profile?.devStatusIntervalSeconds, 86_400);
      assert.deepEqual(profile?.dlChannels, []);
    });

    it('refuses settings out of range, crossed DR bounds and duplicate channels', async (t) => {
      const { storage } = await setup(target, t);
      const refused: [NewDeviceProfile, RegExp][] = [
        [{ name: '' }, /name/],
        [{ name: 'x', adr: { minDr: 16 } }, /adr\.minDr must be an integer from 0 to 15/],
        [{ name: 'x', adr: { minDr: 5, maxDr: 3 } }, /adr\.minDr \(5\) must not be above/],
        [{ name: 'x', adr: { installationMarginDb: 31 } }, /installationMarginDb/],
        [{ name: 'x', rx1DelaySeconds: 0 }, /rx1DelaySeconds/],
        [{ name: 'x', rx1DrOffset: 6 }, /rx1DrOffset/],
        [{ name: 'x', rx2FrequencyHz: 869_525_050 }, /multiple of 100 Hz/],
        [{ name: 'x', rx2FrequencyHz: 99_999_900 }, /rx2FrequencyHz/],
        [{ name: 'x', maxDutyCycle: 16 }, /maxDutyCycle/],
        [{ name: 'x', devStatusIntervalSeconds: 59 }, /0 \(never\) or an integer from 60/],
        [{ name: 'x', confirmedDownlink: { maxAttempts: 0 } }, /maxAttempts/],
        [{ name: 'x', adrAckLimitExp: 16 }, /adrAckLimitExp/],
        [{ name: 'x', rejoin: { maxTimeN: 3 } }, /rejoin needs both/],
        [{ name: 'x', uplinkIntervalSeconds: 0 }, /uplinkIntervalSeconds/],
        [{ name: 'x', macVersion: '1.2' as never }, /macVersion/],
        [
          {
            name: 'x',
            extraChannels: [{ frequencyHz: 867_100_000 }, { frequencyHz: 867_100_000 }],
          },
          /extraChannels\[1\]\.frequencyHz 867100000 is already another extra channel/,
        ],
        [
          { name: 'x', extraChannels: [{ frequencyHz: 867_100_000, minDr: 5, maxDr: 0 }] },
          /extraChannels\[0\]\.minDr/,
        ],
        [
          {
            name: 'x',
            extraChannels: Array.from({ length: 14 }, (_, i) => ({
              frequencyHz: 867_000_000 + i * 100_000,
            })),
          },
          /at most 13/,
        ],
        [
          {
            name: 'x',
            dlChannels: [
              { index: 1, frequencyHz: 868_500_000 },
              { index: 1, frequencyHz: 868_700_000 },
            ],
          },
          /dlChannels\[1\]\.index 1 is already given a frequency by another entry/,
        ],
        [
          { name: 'x', dlChannels: [{ index: 16, frequencyHz: 868_500_000 }] },
          /dlChannels\[0\]\.index must be an integer from 0 to 15, got 16/,
        ],
        [
          { name: 'x', dlChannels: [{ index: -1, frequencyHz: 868_500_000 }] },
          /dlChannels\[0\]\.index/,
        ],
        [
          { name: 'x', dlChannels: [{ index: 0, frequencyHz: 868_500_050 }] },
          /dlChannels\[0\]\.frequencyHz must be a multiple of 100 Hz/,
        ],
        [
          { name: 'x', dlChannels: [{ index: 0, frequencyHz: 2_000_000_000 }] },
          /dlChannels\[0\]\.frequencyHz must be an integer/,
        ],
        [
          { name: 'x', dlChannels: [{ index: 0 }] },
          /dlChannels\[0\] needs an index and a frequencyHz/,
        ],
      ];
      for (const [input, message] of refused) {
        await assert.rejects(storage.deviceProfiles.create(input), (error: unknown) => {
          assert.ok(isStorageError(error, 'INVALID_INPUT'), String(error));
          assert.match(error.message, message);
          return true;
        });
      }
      assert.deepEqual(await storage.deviceProfiles.list(), []);
    });

    it('updates field by field: nested objects merge, null resets to the default', async (t) => {
      let clock = Date.parse('2025-01-01T00:00:00Z');
      const tick = () => {
        clock += 1000;
        return new Date(clock);
      };
      const { storage } = await setup(target, t, { now: tick });
      const created = await storage.deviceProfiles.create({
        name: 'meters',
        adr: { maxDr: 4 },
        rejoin: { maxTimeN: 1, maxCountN: 2 },
        uplinkIntervalSeconds: 3600,
        extraChannels: [{ frequencyHz: 867_100_000 }],
        dlChannels: [{ index: 3, frequencyHz: 868_500_000 }],
      });
      const updated = await storage.deviceProfiles.update(created.id, {
        name: 'meters v2',
        adr: { minDr: 2, installationMarginDb: null },
        confirmedDownlink: { maxAttempts: 5 },
        rejoin: { maxCountN: 9 },
        uplinkIntervalSeconds: null,
      });
      assert.ok(updated);
      assert.equal(updated.name, 'meters v2');
      assert.deepEqual(updated.adr, {
        enabled: true,
        minDr: 2,
        maxDr: 4,
        installationMarginDb: 10,
      });
      assert.deepEqual(updated.confirmedDownlink, { maxAttempts: 5, classCTimeoutSeconds: 30 });
      assert.deepEqual(updated.rejoin, { maxTimeN: 1, maxCountN: 9 });
      assert.equal('uplinkIntervalSeconds' in updated, false);
      assert.deepEqual(updated.extraChannels, [{ frequencyHz: 867_100_000, minDr: 0, maxDr: 5 }]);
      assert.deepEqual(updated.dlChannels, [{ index: 3, frequencyHz: 868_500_000 }]);
      assert.equal(updated.createdAt, created.createdAt);
      assert.notEqual(updated.updatedAt, created.updatedAt);
      assert.deepEqual(await storage.deviceProfiles.get(created.id), updated);

      // Arrays are replaced; null removes a setting without a default, or resets one.
      const again = await storage.deviceProfiles.update(created.id, {
        extraChannels: [{ frequencyHz: 867_300_000, maxDr: 3 }],
        dlChannels: [
          { index: 0, frequencyHz: 868_900_000 },
          { index: 1, frequencyHz: 869_100_000 },
        ],
        rejoin: null,
        adr: null,
      });
      assert.deepEqual(again?.extraChannels, [{ frequencyHz: 867_300_000, minDr: 0, maxDr: 3 }]);
      assert.deepEqual(again?.dlChannels, [
        { index: 0, frequencyHz: 868_900_000 },
        { index: 1, frequencyHz: 869_100_000 },
      ]);
      assert.equal(again?.rejoin, undefined);
      assert.deepEqual(again?.adr, defaultDeviceProfileSettings().adr);

      // An update that changes nothing writes nothing.
      assert.deepEqual(await storage.deviceProfiles.update(created.id, { rx2Dr: 0 }), again);
      assert.equal(await storage.deviceProfiles.update('no-such-id', { rx2Dr: 1 }), undefined);
      await rejectsWith(
        storage.deviceProfiles.update(created.id, { adr: { minDr: 5, maxDr: 1 } }),
        'INVALID_INPUT',
      );
      await rejectsWith(storage.deviceProfiles.update(created.id, { name: ' ' }), 'INVALID_INPUT');
      await rejectsWith(
        storage.deviceProfiles.update(created.id, {
          dlChannels: [
            { index: 2, frequencyHz: 868_500_000 },
            { index: 2, frequencyHz: 0 },
          ],
        }),
        'INVALID_INPUT',
      );
      assert.deepEqual(await storage.deviceProfiles.get(created.id), again);

      // null empties dlChannels (its default): the devices keep the frequencies they have.
      const reset = await storage.deviceProfiles.update(created.id, { dlChannels: null });
      assert.deepEqual(reset?.dlChannels, []);
    });

    it('checks the merged profile with the caller’s validate before writing it', async (t) => {
      const { storage } = await setup(target, t);
      const refuseDr7 = {
        validate(profile: DeviceProfile) {
          if (profile.adr.maxDr > 6) throw new Error(`DR${profile.adr.maxDr} refused`);
        },
      };
      await assert.rejects(
        storage.deviceProfiles.create({ name: 'x', adr: { maxDr: 7 } }, refuseDr7),
        /DR7 refused/,
      );
      assert.deepEqual(await storage.deviceProfiles.list(), []);
      const profile = await storage.deviceProfiles.create({ name: 'x', adr: { maxDr: 6 } });
      await assert.rejects(
        storage.deviceProfiles.update(profile.id, { adr: { maxDr: 7 } }, refuseDr7),
        /DR7 refused/,
      );
      assert.deepEqual(await storage.deviceProfiles.get(profile.id), profile);
    });

    it('keeps both of two concurrent updates to different fields', async (t) => {
      const { storage } = await setup(target, t);
      const profile = await storage.deviceProfiles.create({ name: 'x' });
      await Promise.all([
        storage.deviceProfiles.update(profile.id, { adr: { minDr: 1 } }),
        storage.deviceProfiles.update(profile.id, { adr: { maxDr: 4 } }),
        storage.deviceProfiles.update(profile.id, { rx2Dr: 3 }),
        storage.deviceProfiles.update(profile.id, { name: 'y' }),
      ]);
      const merged = await storage.deviceProfiles.get(profile.id);
      assert.equal(merged?.adr.minDr, 1);
      assert.equal(merged?.adr.maxDr, 4);
      assert.equal(merged?.rx2Dr, 3);
      assert.equal(merged?.name, 'y');
    });

    it('gives devices a profile, changes and removes it, and lists the devices of a profile', async (t) => {
      const { storage } = await setup(target, t);
      const profile = await storage.deviceProfiles.create({ name: 'meters' });
      const other = await storage.deviceProfiles.create({ name: 'valves' });
      const withProfile = await newDevice(storage, { deviceProfileId: profile.id });
      const without = await newDevice(storage);
      assert.equal((await storage.devices.get(withProfile.devEui))?.deviceProfileId, profile.id);
      assert.equal((await storage.devices.get(without.devEui))?.deviceProfileId, null);
      const euis = (devices: { devEui: string }[]) => devices.map((device) => device.devEui);
      assert.deepEqual(euis(await storage.devices.list({ deviceProfileId: profile.id })), [
        withProfile.devEui,
      ]);

      const moved = await storage.devices.update(without.devEui, {
        deviceProfileId: other.id,
        name: 'renamed',
      });
      assert.equal(moved?.deviceProfileId, other.id);
      assert.equal(moved?.name, 'renamed');
      assert.deepEqual(await storage.devices.get(without.devEui), moved);
      const cleared = await storage.devices.update(without.devEui, { deviceProfileId: null });
      assert.equal(cleared?.deviceProfileId, null);
      assert.equal(cleared?.name, 'renamed');
      assert.deepEqual(await storage.devices.update(without.devEui, {}), cleared);
      assert.equal(await storage.devices.update(eui(), { name: 'x' }), undefined);
      await rejectsWith(
        storage.devices.update(without.devEui, { deviceProfileId: 'missing' }),
        'MISSING_REFERENCE',
      );
      await rejectsWith(storage.devices.update(without.devEui, { name: '' }), 'INVALID_INPUT');
    });

    it('refuses a device with an unknown profile, naming the profile', async (t) => {
      const { storage } = await setup(target, t);
      await assert.rejects(newDevice(storage, { deviceProfileId: 'missing' }), (error) => {
        assert.ok(isStorageError(error, 'MISSING_REFERENCE'), String(error));
        assert.match(error.message, /device profile missing does not exist/);
        return true;
      });
      await assert.rejects(
        newDevice(storage, { applicationId: 'nope', deviceProfileId: 'missing' }),
        (error) => isStorageError(error, 'MISSING_REFERENCE'),
      );
      await assert.rejects(newDevice(storage, { applicationId: 'nope' }), (error) => {
        assert.ok(isStorageError(error, 'MISSING_REFERENCE'), String(error));
        assert.match(error.message, /application nope does not exist/);
        return true;
      });
    });

    it('refuses to delete a profile that devices use (on delete restrict), then deletes it', async (t) => {
      const { storage } = await setup(target, t);
      const profile = await storage.deviceProfiles.create({ name: 'meters' });
      const a = await newDevice(storage, { deviceProfileId: profile.id });
      const b = await newDevice(storage, { deviceProfileId: profile.id });
      assert.equal(await storage.deviceProfiles.countDevices(profile.id), 2);
      await assert.rejects(storage.deviceProfiles.delete(profile.id), (error) => {
        assert.ok(isStorageError(error, 'STILL_REFERENCED'), String(error));
        assert.match(error.message, /still used by 2 devices/);
        return true;
      });
      assert.ok(await storage.deviceProfiles.get(profile.id));
      await storage.devices.delete(a.devEui);
      await storage.devices.update(b.devEui, { deviceProfileId: null });
      assert.equal(await storage.deviceProfiles.delete(profile.id), true);
      assert.equal(await storage.deviceProfiles.delete(profile.id), false);
      assert.equal(await storage.deviceProfiles.get(profile.id), undefined);
    });
  });

  describe('device sessions', () => {
    it('stores and reads back 1.0 and 1.1 sessions, DevAddr and counters beyond 2^31', async (t) => {
      const { storage } = await setup(target, t, fixedClock());
      const a = await newDevice(storage);
      const b = await newDevice(storage, { macVersion: '1.1.0', nwkKey: key() });
      const s10 = session10(a.devEui, {
        devAddr: 0xfe00_0001,
        fCntUp: UINT32_MAX,
        nFCntDown: UINT32_MAX + 1,
      });
      const s11 = session11(b.devEui, { devAddr: 0x0000_0001, fCntUp: 0, aFCntDown: 0x8000_0000 });
      const stored10 = await storage.deviceSessions.upsert(s10);
      const stored11 = await storage.deviceSessions.upsert(s11);
      const times = {
        awaitingAck: null,
        macState: null,
        createdAt: '2025-03-01T10:00:00.000Z',
        updatedAt: '2025-03-01T10:00:00.000Z',
      };
      assert.deepEqual(stored10, { ...s10, ...times });
      assert.deepEqual(await storage.deviceSessions.get(a.devEui), { ...s10, ...times });
      assert.deepEqual(await storage.deviceSessions.get(b.devEui), { ...s11, ...times });
      assert.deepEqual(stored11.keys, s11.keys);
      assert.equal(await storage.deviceSessions.get(eui()), undefined);
    });

    it('keeps the confirmed downlink awaiting its ACK with the session', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui));
      assert.equal((await storage.deviceSessions.get(devEui))?.awaitingAck, null);
      assert.equal(
        await storage.deviceSessions.setAwaitingAck(devEui, { queueItemId: 'q1', fCntDown: 7 }),
        true,
      );
      assert.deepEqual((await storage.deviceSessions.get(devEui))?.awaitingAck, {
        queueItemId: 'q1',
        fCntDown: 7,
      });
      assert.deepEqual((await storage.deviceSessions.listAll())[0]?.awaitingAck, {
        queueItemId: 'q1',
        fCntDown: 7,
      });
      await storage.deviceSessions.setAwaitingAck(devEui, null);
      assert.equal((await storage.deviceSessions.get(devEui))?.awaitingAck, null);
      assert.equal(await storage.deviceSessions.setAwaitingAck(eui(), null), false);
      await rejectsWith(
        storage.deviceSessions.setAwaitingAck(devEui, { queueItemId: 'q', fCntDown: -1 }),
        'INVALID_INPUT',
      );
    });

    it('keeps the MAC state with the session as JSON, replaced on upsert or alone', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui));
      assert.equal((await storage.deviceSessions.get(devEui))?.macState, null);
      const state = { rx1DelaySeconds: 2, channels: [{ frequencyHz: 868_100_000 }, null] };
      assert.equal(await storage.deviceSessions.setMacState(devEui, state), true);
      assert.deepEqual((await storage.deviceSessions.get(devEui))?.macState, state);
      assert.deepEqual((await storage.deviceSessions.listAll())[0]?.macState, state);
      await storage.deviceSessions.upsert({ ...session10(devEui), macState: { dr: 5 } });
      assert.deepEqual((await storage.deviceSessions.get(devEui))?.macState, { dr: 5 });
      await storage.deviceSessions.setMacState(devEui, null);
      assert.equal((await storage.deviceSessions.get(devEui))?.macState, null);
      assert.equal(await storage.deviceSessions.setMacState(eui(), {}), false);
      await rejectsWith(
        storage.deviceSessions.setMacState(devEui, { big: 'x'.repeat(70_000) }),
        'INVALID_INPUT',
      );
    });

    it('replaces a session on upsert, keeping created_at unless one is given', async (t) => {
      let now = Date.parse('2025-03-01T10:00:00Z');
      const { storage } = await setup(target, t, { now: () => new Date(now) });
      const { devEui } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui, { fCntUp: 10 }));
      now += 60_000;
      const replacement = session10(devEui, { devAddr: 0x2601_9999, fCntUp: null, rx2Dr: 3 });
      const stored = await storage.deviceSessions.upsert(replacement);
      assert.equal(stored.createdAt, '2025-03-01T10:00:00.000Z');
      assert.equal(stored.updatedAt, '2025-03-01T10:01:00.000Z');
      assert.deepEqual(await storage.deviceSessions.get(devEui), stored);
      const rejoined = await storage.deviceSessions.upsert({
        ...replacement,
        createdAt: '2025-03-01T10:01:00Z',
      });
      assert.equal(rejoined.createdAt, '2025-03-01T10:01:00.000Z');
      assert.equal(
        (await storage.deviceSessions.get(devEui))?.createdAt,
        '2025-03-01T10:01:00.000Z',
      );
    });

    it('refuses sessions with mismatched keys, bad values or no device', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      await rejectsWith(
        storage.deviceSessions.upsert(session10(devEui, { macVersion: '1.1.0' })),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.deviceSessions.upsert(session10(devEui, { devAddr: 2 ** 32 })),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.deviceSessions.upsert(session10(devEui, { fCntUp: -1 })),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.deviceSessions.upsert(
          session10(devEui, {
            keys: { lorawan: '1.0', nwkSKey: key(), appSKey: new Uint8Array(8) },
          }),
        ),
        'INVALID_INPUT',
      );
      await rejectsWith(storage.deviceSessions.upsert(session10(eui())), 'MISSING_REFERENCE');
    });

    it('finds every session with a DevAddr, and lists all sessions', async (t) => {
      const { storage } = await setup(target, t);
      const devices = [
        await newDevice(storage),
        await newDevice(storage),
        await newDevice(storage),
      ];
      await storage.deviceSessions.upsert(session10(devices[0]!.devEui, { devAddr: 0xfc00_ac01 }));
      await storage.deviceSessions.upsert(session10(devices[1]!.devEui, { devAddr: 0xfc00_ac01 }));
      await storage.deviceSessions.upsert(session10(devices[2]!.devEui, { devAddr: 0x0000_0042 }));
      const shared = await storage.deviceSessions.listByDevAddr(0xfc00_ac01);
      assert.deepEqual(
        shared.map((session) => session.devEui).sort(),
        [devices[0]!.devEui, devices[1]!.devEui].sort(),
      );
      assert.deepEqual(
        (await storage.deviceSessions.listByDevAddr(0x42)).map((session) => session.devEui),
        [devices[2]!.devEui],
      );
      assert.deepEqual(await storage.deviceSessions.listByDevAddr(0x1234), []);
      const all = await storage.deviceSessions.listAll();
      assert.deepEqual(
        all.map((session) => session.devEui),
        devices.map((device) => device.devEui).sort(),
      );
      await rejectsWith(storage.deviceSessions.listByDevAddr(-1), 'INVALID_INPUT');
    });

    it('compare-and-sets FCntUp from null, then from the last value only', async (t) => {
      const { storage } = await setup(target, t);
      const cas = casThroughUplinkCommit(storage);
      const { devEui } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui));
      assert.equal(await cas(devEui, 5, 6), false);
      assert.equal(await cas(devEui, null, 5), true);
      assert.equal(await cas(devEui, null, 6), false);
      assert.equal(await cas(devEui, 4, 6), false);
      assert.equal(await cas(devEui, 5, UINT32_MAX), true);
      assert.equal((await storage.deviceSessions.get(devEui))?.fCntUp, UINT32_MAX);
      assert.equal(await cas(eui(), null, 1), false);
      await rejectsWith(cas(devEui, UINT32_MAX, 2 ** 32), 'INVALID_INPUT');
    });

    it('commits a batch of uplinks: counters and events together, only for the winners', async (t) => {
      const { storage, database } = await setup(target, t);
      const a = await newDevice(storage);
      const b = await newDevice(storage, { applicationId: a.applicationId });
      await storage.deviceSessions.upsert(session10(a.devEui, { fCntUp: 9 }));
      await storage.deviceSessions.upsert(session10(b.devEui));
      const event = (devEui: string, fCnt: number) => ({
        devEui,
        applicationId: a.applicationId,
        type: 'up',
        time: `2026-11-29T12:00:0${fCnt % 10}.000Z`,
        body: { fCnt },
      });
      const won = await storage.uplinkCommits.commit([
        { devEui: a.devEui, expectedFCntUp: 9, nextFCntUp: 10, event: event(a.devEui, 10) },
        // Same expected value again: the first one moved the counter, this one loses.
        { devEui: a.devEui, expectedFCntUp: 9, nextFCntUp: 11, event: event(a.devEui, 11) },
        { devEui: b.devEui, expectedFCntUp: null, nextFCntUp: 3, event: event(b.devEui, 3) },
      ]);
      assert.deepEqual(won, [true, false, true]);
      assert.equal((await storage.deviceSessions.get(a.devEui))?.fCntUp, 10);
      assert.equal((await storage.deviceSessions.get(b.devEui))?.fCntUp, 3);
      const eventsA = await storage.events.listForDevice(a.devEui);
      assert.deepEqual(
        eventsA.map((e) => e.body),
        [{ fCnt: 10 }],
      );
      // last_seen_at is written behind: visible as pending at once, stored on flush.
      assert.equal(storage.uplinkCommits.pendingLastSeen(b.devEui), '2026-11-29T12:00:03.000Z');
      const storedLastSeen = async () =>
        (
          await database.db
            .selectFrom('devices')
            .select('last_seen_at')
            .where('dev_eui', '=', b.devEui)
            .executeTakeFirstOrThrow()
        ).last_seen_at;
      assert.equal(await storedLastSeen(), null, 'not written yet');
      // What the device repository reads already shows it.
      assert.equal((await storage.devices.get(b.devEui))?.lastSeenAt, '2026-11-29T12:00:03.000Z');
      await storage.uplinkCommits.flushLastSeen();
      assert.equal(await storedLastSeen(), '2026-11-29T12:00:03.000Z');
      assert.equal(storage.uplinkCommits.pendingLastSeen(b.devEui), undefined);
      assert.equal((await storage.devices.get(b.devEui))?.lastSeenAt, '2026-11-29T12:00:03.000Z');
      assert.deepEqual(await storage.uplinkCommits.commit([]), []);
      // An older time never moves last_seen_at back.
      await storage.uplinkCommits.commit([
        { devEui: b.devEui, expectedFCntUp: 3, nextFCntUp: 4, event: event(b.devEui, 1) },
      ]);
      await storage.uplinkCommits.flushLastSeen();
      assert.equal((await storage.devices.get(b.devEui))?.lastSeenAt, '2026-11-29T12:00:03.000Z');
    });

    it('lets exactly one of two concurrent compare-and-sets with the same expected value win', async (t) => {
      const { storage } = await setup(target, t);
      const cas = casThroughUplinkCommit(storage);
      const { devEui } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui, { fCntUp: 41 }));
      for (let round = 0; round < 5; round++) {
        const expected = 41 + round;
        const outcomes = await Promise.all([
          cas(devEui, expected, expected + 1),
          cas(devEui, expected, expected + 1),
        ]);
        assert.deepEqual(outcomes.filter(Boolean).length, 1, `round ${round}: ${outcomes}`);
      }
      assert.equal((await storage.deviceSessions.get(devEui))?.fCntUp, 46);
      // From null as well: the first uplink of a session, received by two instances.
      const other = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(other.devEui));
      const fromNull = await Promise.all([
        cas(other.devEui, null, 0),
        cas(other.devEui, null, 0),
        cas(other.devEui, null, 0),
      ]);
      assert.equal(fromNull.filter(Boolean).length, 1);
    });

    it('takes downlink counters atomically: distinct, consecutive values under concurrency', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage, { macVersion: '1.1.0', nwkKey: key() });
      await storage.deviceSessions.upsert(session11(devEui, { nFCntDown: 10, aFCntDown: 0 }));
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'n'), 10);
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'a'), 0);
      const taken = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          storage.deviceSessions.takeFCntDown(devEui, i % 5 === 0 ? 'a' : 'n'),
        ),
      );
      const n = taken.filter((_, i) => i % 5 !== 0).sort((x, y) => x - y);
      const a = taken.filter((_, i) => i % 5 === 0).sort((x, y) => x - y);
      assert.deepEqual(
        n,
        Array.from({ length: 20 }, (_, i) => 11 + i),
      );
      assert.deepEqual(a, [1, 2, 3, 4, 5]);
      const session = await storage.deviceSessions.get(devEui);
      assert.equal(session?.nFCntDown, 31);
      assert.equal(session?.aFCntDown, 6);
    });

    it('ends the downlink counter at 2^32 - 1 and reports a missing session', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(devEui, { nFCntDown: UINT32_MAX }));
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'n'), UINT32_MAX);
      await rejectsWith(storage.deviceSessions.takeFCntDown(devEui, 'n'), 'COUNTER_EXHAUSTED');
      await rejectsWith(storage.deviceSessions.takeFCntDown(eui(), 'n'), 'NOT_FOUND');
      assert.equal(await storage.deviceSessions.delete(devEui), true);
      assert.equal(await storage.deviceSessions.delete(devEui), false);
      await rejectsWith(storage.deviceSessions.takeFCntDown(devEui, 'a'), 'NOT_FOUND');
      assert.ok(await storage.devices.get(devEui), 'deleting the session keeps the device');
    });

    it('skips the downlink counter forward to a later one asked for, never back', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage, { macVersion: '1.1.0', nwkKey: key() });
      await storage.deviceSessions.upsert(session11(devEui, { nFCntDown: 3, aFCntDown: 5 }));
      // An operator-blind item encrypted for AFCntDown 9: 5 to 8 are skipped.
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'a', 9), 9);
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'a', 4), 10, 'never back');
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'n', 3), 3);
      const session = await storage.deviceSessions.get(devEui);
      assert.equal(session?.aFCntDown, 11);
      assert.equal(session?.nFCntDown, 4);
      await rejectsWith(storage.deviceSessions.takeFCntDown(devEui, 'a', -1), 'INVALID_INPUT');
      assert.equal(await storage.deviceSessions.takeFCntDown(devEui, 'a', UINT32_MAX), UINT32_MAX);
      await rejectsWith(storage.deviceSessions.takeFCntDown(devEui, 'a', 1), 'COUNTER_EXHAUSTED');
    });
  });

  describe('DevNonces', () => {
    it('records a DevNonce once and calls the second one a replay', async (t) => {
      const { storage } = await setup(target, t);
      const a = await newDevice(storage);
      const b = await newDevice(storage);
      assert.equal(await storage.devNonces.maxFor(a.devEui), null);
      assert.equal(await storage.devNonces.record(a.devEui, 7), 'new');
      assert.equal(await storage.devNonces.record(a.devEui, 7), 'replayed');
      assert.equal(await storage.devNonces.record(a.devEui.toUpperCase(), 7), 'replayed');
      assert.equal(await storage.devNonces.record(b.devEui, 7), 'new');
      assert.equal(await storage.devNonces.record(a.devEui, 0xffff), 'new');
      assert.equal(await storage.devNonces.record(a.devEui, 3), 'new');
      assert.equal(await storage.devNonces.maxFor(a.devEui), 0xffff);
      assert.equal(await storage.devNonces.maxFor(b.devEui), 7);
      await rejectsWith(storage.devNonces.record(a.devEui, 0x1_0000), 'INVALID_INPUT');
      await rejectsWith(storage.devNonces.record(eui(), 1), 'MISSING_REFERENCE');
    });

    it('calls exactly one of concurrent JoinRequests with the same DevNonce new', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, () => storage.devNonces.record(devEui, 1234)),
      );
      assert.deepEqual([...outcomes].sort(), ['new', 'replayed', 'replayed', 'replayed']);
    });
  });

  describe('downlink queue', () => {
    it('keeps enqueue order, even within one millisecond', async (t) => {
      const { storage } = await setup(target, t, fixedClock());
      const { devEui } = await newDevice(storage);
      const items = [];
      for (let i = 0; i < 6; i++) {
        items.push(
          await storage.downlinkQueue.enqueue({
            devEui,
            fPort: 1 + i,
            data: new Uint8Array([i, 0xff]),
            confirmed: i % 2 === 0,
          }),
        );
      }
      assert.deepEqual(await storage.downlinkQueue.listPending(devEui), items);
      assert.deepEqual(await storage.downlinkQueue.nextPending(devEui), items[0]);
      assert.deepEqual(items[1], {
        id: items[1]!.id,
        devEui,
        fPort: 2,
        data: new Uint8Array([1, 0xff]),
        confirmed: false,
        status: 'pending',
        fCntDown: null,
        attempts: 0,
        lastError: null,
        createdAt: '2025-03-01T10:00:00.000Z',
        updatedAt: '2025-03-01T10:00:00.000Z',
      });
      const other = await newDevice(storage);
      assert.deepEqual(await storage.downlinkQueue.listPending(other.devEui), []);
      assert.equal(await storage.downlinkQueue.nextPending(other.devEui), undefined);
    });

    it('orders by enqueue time across the clock', async (t) => {
      let now = Date.parse('2025-03-01T10:00:00Z');
      const { storage } = await setup(target, t, { now: () => new Date(now) });
      const { devEui } = await newDevice(storage);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        now += 1000;
        ids.push(
          (
            await storage.downlinkQueue.enqueue({
              devEui,
              fPort: 10,
              data: new Uint8Array(0),
              confirmed: false,
            })
          ).id,
        );
      }
      assert.deepEqual(
        (await storage.downlinkQueue.list(devEui)).map((item) => item.id),
        ids,
      );
    });

    it('moves items through sent, acked, failed and expired, and refuses other moves', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      const enqueue = () =>
        storage.downlinkQueue.enqueue({
          devEui,
          fPort: 5,
          data: new Uint8Array([1, 2, 3]),
          confirmed: true,
        });
      const first = await enqueue();
      const second = await enqueue();
      const third = await enqueue();
      const fourth = await enqueue();

      const sent = await storage.downlinkQueue.markSent(first.id, 17);
      assert.equal(sent.status, 'sent');
      assert.equal(sent.fCntDown, 17);
      assert.equal(sent.attempts, 1);
      const resent = await storage.downlinkQueue.markSent(first.id, 18);
      assert.equal(resent.attempts, 2);
      assert.equal(resent.fCntDown, 18);
      assert.deepEqual(await storage.downlinkQueue.nextPending(devEui), second);
      const acked = await storage.downlinkQueue.markAcked(first.id);
      assert.equal(acked.status, 'acked');
      assert.equal(acked.fCntDown, 18);

      await rejectsWith(storage.downlinkQueue.markAcked(second.id), 'INVALID_STATE');
      await rejectsWith(storage.downlinkQueue.markSent(first.id, 19), 'INVALID_STATE');
      await rejectsWith(storage.downlinkQueue.markAcked('missing'), 'NOT_FOUND');
      await rejectsWith(storage.downlinkQueue.markSent(second.id, -1), 'INVALID_INPUT');

      const failed = await storage.downlinkQueue.markFailed(second.id, 'TOO_LATE from gateway');
      assert.equal(failed.status, 'failed');
      assert.equal(failed.lastError, 'TOO_LATE from gateway');
      assert.equal((await storage.downlinkQueue.markExpired(third.id)).status, 'expired');
      await rejectsWith(storage.downlinkQueue.markFailed(third.id, 'x'), 'INVALID_STATE');

      assert.deepEqual(await storage.downlinkQueue.listPending(devEui), [fourth]);
      const statuses = (await storage.downlinkQueue.list(devEui)).map((item) => item.status);
      assert.deepEqual(statuses, ['acked', 'failed', 'expired', 'pending']);
      const done = await storage.downlinkQueue.list(devEui, { statuses: ['acked', 'expired'] });
      assert.deepEqual(
        done.map((item) => item.id),
        [first.id, third.id],
      );
      assert.deepEqual(await storage.downlinkQueue.list(devEui, { statuses: [] }), []);
    });

    it('puts an item that was never transmitted back in the queue, first in line', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      const enqueue = () =>
        storage.downlinkQueue.enqueue({
          devEui,
          fPort: 7,
          data: new Uint8Array([9]),
          confirmed: false,
        });
      const first = await enqueue();
      const second = await enqueue();
      await storage.downlinkQueue.markSent(first.id, 3);
      assert.deepEqual(await storage.downlinkQueue.nextPending(devEui), second);
      const requeued = await storage.downlinkQueue.requeue(first.id, 'gateway refused: TOO_LATE');
      assert.equal(requeued.status, 'pending');
      assert.equal(requeued.lastError, 'gateway refused: TOO_LATE');
      assert.equal((await storage.downlinkQueue.nextPending(devEui))?.id, first.id);
      await storage.downlinkQueue.markSent(first.id, 4);
      await storage.downlinkQueue.markAcked(first.id);
      await rejectsWith(storage.downlinkQueue.requeue(first.id, 'x'), 'INVALID_STATE');
    });

    it('lists the devices that have pending downlinks', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      assert.deepEqual(await storage.downlinkQueue.devicesWithPending(), []);
      const item = await storage.downlinkQueue.enqueue({
        devEui,
        fPort: 2,
        data: new Uint8Array([1]),
        confirmed: false,
      });
      await storage.downlinkQueue.enqueue({
        devEui,
        fPort: 2,
        data: new Uint8Array([2]),
        confirmed: false,
      });
      assert.deepEqual(await storage.downlinkQueue.devicesWithPending(), [devEui]);
      assert.equal(await storage.downlinkQueue.countPending(devEui), 2);
      await storage.downlinkQueue.markSent(item.id, 1);
      assert.deepEqual(await storage.downlinkQueue.devicesWithPending(), [devEui]);
      assert.equal(await storage.downlinkQueue.countPending(devEui), 1);
      assert.equal(await storage.downlinkQueue.countPending(eui()), 0);
    });

    it('refuses bad downlinks and unknown devices', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui } = await newDevice(storage);
      const ok = { devEui, fPort: 1, data: new Uint8Array(242), confirmed: false };
      await storage.downlinkQueue.enqueue(ok);
      await rejectsWith(storage.downlinkQueue.enqueue({ ...ok, fPort: 0 }), 'INVALID_INPUT');
      await rejectsWith(storage.downlinkQueue.enqueue({ ...ok, fPort: 224 }), 'INVALID_INPUT');
      await rejectsWith(
        storage.downlinkQueue.enqueue({ ...ok, data: new Uint8Array(243) }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.downlinkQueue.enqueue({ ...ok, devEui: eui() }),
        'MISSING_REFERENCE',
      );
      await rejectsWith(
        storage.downlinkQueue.list(devEui, { statuses: ['lost' as never] }),
        'INVALID_INPUT',
      );
    });
  });

  describe('events', () => {
    it('lists a device’s events newest first, with a limit and a cursor', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui, applicationId } = await newDevice(storage);
      const other = await newDevice(storage, { applicationId });
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push(
          await storage.events.append({
            devEui,
            applicationId,
            type: i === 0 ? 'join' : 'up',
            time: `2025-03-01T10:00:0${i}Z`,
            body: { fCnt: i, object: { temperature: 20.5 + i }, data: 'AQI=' },
          }),
        );
        await storage.events.append({
          devEui: other.devEui,
          applicationId,
          type: 'up',
          time: '2025-03-01T10:00:00Z',
          body: {},
        });
      }
      assert.deepEqual(
        [...ids].sort((a, b) => a - b),
        ids,
      );
      const latest = await storage.events.listForDevice(devEui, { limit: 2 });
      assert.deepEqual(latest, [
        {
          id: ids[4],
          type: 'up',
          time: '2025-03-01T10:00:04.000Z',
          body: { fCnt: 4, object: { temperature: 24.5 }, data: 'AQI=' },
        },
        {
          id: ids[3],
          type: 'up',
          time: '2025-03-01T10:00:03.000Z',
          body: { fCnt: 3, object: { temperature: 23.5 }, data: 'AQI=' },
        },
      ]);
      const older = await storage.events.listForDevice(devEui, { limit: 10, beforeId: ids[3] });
      assert.deepEqual(
        older.map((event) => event.id),
        [ids[2], ids[1], ids[0]],
      );
      assert.equal(older[2]?.type, 'join');
      assert.equal((await storage.events.listForDevice(devEui)).length, 5);
      assert.deepEqual(await storage.events.listForDevice(eui()), []);
    });

    it('reads events after a cursor, oldest first, narrowed by application or device', async (t) => {
      const { storage } = await setup(target, t);
      const a = await newDevice(storage);
      const b = await newDevice(storage);
      const start = await storage.events.lastId();
      const ids: number[] = [];
      for (const [i, device] of [a, b, a].entries()) {
        ids.push(
          await storage.events.append({
            devEui: device.devEui,
            applicationId: device.applicationId,
            type: 'up',
            time: `2025-03-01T10:00:0${i}Z`,
            body: { i },
          }),
        );
      }
      assert.equal(await storage.events.lastId(), ids[2]);
      const all = await storage.events.listAfter(start);
      assert.deepEqual(
        all.map((event) => [event.id, event.devEui, event.applicationId, event.body]),
        [
          [ids[0], a.devEui, a.applicationId, { i: 0 }],
          [ids[1], b.devEui, b.applicationId, { i: 1 }],
          [ids[2], a.devEui, a.applicationId, { i: 2 }],
        ],
      );
      assert.deepEqual(
        (await storage.events.listAfter(ids[0] as number, { limit: 1 })).map((e) => e.id),
        [ids[1]],
      );
      assert.deepEqual(
        (await storage.events.listAfter(start, { devEui: a.devEui })).map((e) => e.id),
        [ids[0], ids[2]],
      );
      assert.deepEqual(
        (await storage.events.listAfter(start, { applicationId: b.applicationId })).map(
          (e) => e.id,
        ),
        a.applicationId === b.applicationId ? ids : [ids[1]],
      );
      await assert.rejects(storage.events.listAfter(-1), /afterId/);
      const heads = await storage.events.listHeadsAfter(start, { limit: 2 });
      assert.deepEqual(
        heads.map((head) => [head.id, head.devEui, head.type, 'body' in head]),
        [
          [ids[0], a.devEui, 'up', false],
          [ids[1], b.devEui, 'up', false],
        ],
      );
      const bodies = await storage.events.bodiesOf([ids[2] as number, ids[0] as number, 999_999]);
      assert.deepEqual(
        [...bodies].sort((x, y) => x[0] - y[0]),
        [
          [ids[0], { i: 0 }],
          [ids[2], { i: 2 }],
        ],
      );
    });

    it('keeps consumer cursors, which never move back', async (t) => {
      const { storage } = await setup(target, t);
      assert.equal(await storage.consumerCursors.get('webhooks'), 0);
      await storage.consumerCursors.save('webhooks', 42);
      await storage.consumerCursors.save('mqtt:app-1', 7);
      assert.equal(await storage.consumerCursors.get('webhooks'), 42);
      await storage.consumerCursors.save('webhooks', 41);
      assert.equal(await storage.consumerCursors.get('webhooks'), 42);
      await storage.consumerCursors.save('webhooks', 3_000_000_000);
      assert.equal(await storage.consumerCursors.get('webhooks'), 3_000_000_000);
      assert.equal(await storage.consumerCursors.get('mqtt:app-1'), 7);
      await storage.consumerCursors.remove('mqtt:app-1');
      assert.equal(await storage.consumerCursors.get('mqtt:app-1'), 0);
      await assert.rejects(storage.consumerCursors.save('Bad Name', 1), /cursor name/);
      await assert.rejects(storage.consumerCursors.save('webhooks', -1), /lastEventId/);
    });

    it('appends a batch in one go and returns ids in input order', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui, applicationId } = await newDevice(storage);
      assert.deepEqual(await storage.events.appendMany([]), []);
      const batch = Array.from({ length: 1203 }, (_, i) => ({
        devEui,
        applicationId,
        type: 'up',
        time: '2025-03-01T10:00:00Z',
        body: { i },
      }));
      const ids = await storage.events.appendMany(batch);
      assert.equal(ids.length, 1203);
      assert.equal(new Set(ids).size, 1203);
      assert.deepEqual(
        [...ids].sort((a, b) => a - b),
        ids,
      );
      const newest = await storage.events.listForDevice(devEui, { limit: 3 });
      assert.deepEqual(
        newest.map((event) => event.body),
        [{ i: 1202 }, { i: 1201 }, { i: 1200 }],
      );
      assert.equal(newest[0]?.id, ids[1202]);
    });

    it('refuses a body that is not JSON and a time without a zone', async (t) => {
      const { storage } = await setup(target, t);
      const { devEui, applicationId } = await newDevice(storage);
      const event = { devEui, applicationId, type: 'up', time: '2025-03-01T10:00:00Z', body: {} };
      await rejectsWith(storage.events.append({ ...event, body: { n: 1n } }), 'INVALID_INPUT');
      await rejectsWith(
        storage.events.append({ ...event, time: '2025-03-01 10:00' }),
        'INVALID_INPUT',
      );
      await rejectsWith(storage.events.append({ ...event, type: '' }), 'INVALID_INPUT');
      await rejectsWith(
        storage.events.appendMany([event, { ...event, devEui: 'x' }]),
        'INVALID_INPUT',
      );
      assert.deepEqual(await storage.events.listForDevice(devEui), []);
    });
  });

  describe('keys at rest', () => {
    it('stores root keys and session keys encrypted: the key bytes are not in the rows', async (t) => {
      const { storage, database } = await setup(target, t);
      const appKey = key();
      const nwkKey = key();
      const { devEui } = await newDevice(storage, { macVersion: '1.1.0', appKey, nwkKey });
      const session = session11(devEui);
      await storage.deviceSessions.upsert(session);

      const device = await database.db
        .selectFrom('devices')
        .selectAll()
        .where('dev_eui', '=', devEui)
        .executeTakeFirstOrThrow();
      const sessionRow = await database.db
        .selectFrom('device_sessions')
        .selectAll()
        .where('dev_eui', '=', devEui)
        .executeTakeFirstOrThrow();
      const stored = [device.app_key_enc!, device.nwk_key_enc!, sessionRow.keys_enc];
      // version | master key id | nonce | ciphertext | tag (secret-box.ts)
      assert.equal(device.app_key_enc?.length, 1 + 4 + 12 + 16 + 16);
      assert.equal(sessionRow.keys_enc.length, 1 + 4 + 12 + 65 + 16);
      const keys = session.keys.lorawan === '1.1' ? session.keys : assert.fail('1.1 keys');
      for (const secret of [
        appKey,
        nwkKey,
        keys.fNwkSIntKey,
        keys.sNwkSIntKey,
        keys.nwkSEncKey,
        keys.appSKey ?? assert.fail('an AppSKey in clear'),
      ]) {
        for (const blob of stored) assert.equal(containsBytes(blob, secret), false);
        const hex = Buffer.from(secret).toString('hex');
        assert.equal(JSON.stringify(device).includes(hex), false);
        assert.equal(JSON.stringify(sessionRow).includes(hex), false);
      }
    });

    it('keeps an operator-blind session: network keys sealed, the AppSKey only as its envelope', async (t) => {
      const { storage } = await setup(target, t);
      const d10 = await newDevice(storage);
      const d11 = await newDevice(storage, { macVersion: '1.1.0', nwkKey: key() });
      const envelope = {
        kekLabel: 'galet-app:provider-1',
        aesKey: new Uint8Array(randomBytes(24)),
      };
      const nwkSKey = key();
      await storage.deviceSessions.upsert(
        session10(d10.devEui, { keys: { lorawan: '1.0', nwkSKey, appSKeyEnvelope: envelope } }),
      );
      const keys11 = {
        lorawan: '1.1' as const,
        fNwkSIntKey: key(),
        sNwkSIntKey: key(),
        nwkSEncKey: key(),
        appSKeyEnvelope: envelope,
      };
      await storage.deviceSessions.upsert({ ...session11(d11.devEui), keys: keys11 });
      const got10 = await storage.deviceSessions.get(d10.devEui);
      assert.deepEqual(got10?.keys, { lorawan: '1.0', nwkSKey, appSKeyEnvelope: envelope });
      assert.equal(got10?.keys.appSKey, undefined);
      assert.deepEqual((await storage.deviceSessions.get(d11.devEui))?.keys, keys11);
      await rejectsWith(
        storage.deviceSessions.upsert(
          session10(d10.devEui, {
            keys: {
              lorawan: '1.0',
              nwkSKey,
              appSKeyEnvelope: { kekLabel: '', aesKey: randomBytes(24) },
            },
          }),
        ),
        'INVALID_INPUT',
      );
    });

    it('fails with SECRET_OPEN_FAILED on a tampered ciphertext, a moved one or another master key', async (t) => {
      const { storage, database } = await setup(target, t);
      const a = await newDevice(storage);
      const b = await newDevice(storage);
      await storage.deviceSessions.upsert(session10(a.devEui));

      const row = await database.db
        .selectFrom('devices')
        .select('app_key_enc')
        .where('dev_eui', '=', a.devEui)
        .executeTakeFirstOrThrow();
      const tampered = Buffer.from(row.app_key_enc!);
      tampered[20] = tampered[20]! ^ 0x01;
      await database.db
        .updateTable('devices')
        .set({ app_key_enc: tampered })
        .where('dev_eui', '=', a.devEui)
        .execute();
      await rejectsWith(storage.devices.getRootKeys(a.devEui), 'SECRET_OPEN_FAILED');

      // A sealed key copied to another device's row does not open there.
      const rowB = await database.db
        .selectFrom('devices')
        .select('app_key_enc')
        .where('dev_eui', '=', b.devEui)
        .executeTakeFirstOrThrow();
      await database.db
        .updateTable('devices')
        .set({ app_key_enc: rowB.app_key_enc })
        .where('dev_eui', '=', a.devEui)
        .execute();
      await rejectsWith(storage.devices.getRootKeys(a.devEui), 'SECRET_OPEN_FAILED');
      assert.ok(await storage.devices.getRootKeys(b.devEui));

      const session = await database.db
        .selectFrom('device_sessions')
        .select('keys_enc')
        .where('dev_eui', '=', a.devEui)
        .executeTakeFirstOrThrow();
      const cut = Buffer.from(session.keys_enc).subarray(0, session.keys_enc.length - 1);
      await database.db
        .updateTable('device_sessions')
        .set({ keys_enc: cut })
        .where('dev_eui', '=', a.devEui)
        .execute();
      await rejectsWith(storage.deviceSessions.get(a.devEui), 'SECRET_OPEN_FAILED');

      const otherKey = createStorage(database, SecretBox.fromKey(randomBytes(32)));
      await rejectsWith(otherKey.devices.getRootKeys(b.devEui), 'SECRET_OPEN_FAILED');
    });
  });
}
