/**
 * Tenant-owned objects in storage (migration 0008): applications, gateways, devices and device
 * profiles with their tenant, shared gateways, tags, list scopes, sorting with keyset positions,
 * quotas, moves. `tenancy-sqlite.test.ts` and `tenancy-postgres.test.ts` run it on each engine.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import {
  createStorage,
  type GaletDatabase,
  isStorageError,
  MIGRATION_TABLE,
  type NewDevice,
  SecretBox,
  type Storage,
  type StorageErrorCode,
} from '../../src/storage/index.js';
import type { StorageTestTarget } from '../storage/storage-suite.js';

const secrets = SecretBox.fromKey(randomBytes(32));

async function setup(
  target: StorageTestTarget,
  t: TestContext,
): Promise<{ database: GaletDatabase; storage: Storage }> {
  const place = await target.fresh();
  const database = await place.open();
  t.after(async () => {
    await database.close();
    await place.dispose();
  });
  let clock = Date.parse('2026-03-01T08:00:00.000Z');
  const now = () => {
    clock += 1000;
    return new Date(clock);
  };
  return { database, storage: createStorage(database, secrets, { now }) };
}

async function rejectsWith(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isStorageError(error), `expected a StorageError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function eui(): string {
  return randomBytes(8).toString('hex');
}

function device(applicationId: string, extra: Partial<NewDevice> = {}): NewDevice {
  return {
    devEui: eui(),
    joinEui: eui(),
    name: 'meter',
    applicationId,
    macVersion: '1.0.3',
    deviceClass: 'A',
    activation: 'otaa',
    appKey: new Uint8Array(randomBytes(16)),
    ...extra,
  };
}

export function tenancyStorageSuite(target: StorageTestTarget): void {
  describe('tenancy migration', () => {
    it('records 0008_tenancy', async (t) => {
      const { database } = await setup(target, t);
      const names = (
        (await database.db
          .selectFrom(MIGRATION_TABLE as never)
          .select('name' as never)
          .execute()) as { name: string }[]
      ).map((row) => row.name);
      assert.ok(names.includes('0008_tenancy'), names.join());
    });
  });

  describe('tenant-owned objects', () => {
    it('gives a device its application’s tenant, and moves them together', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B', quotas: { maxDevices: 1 } });
      const application = await storage.applications.create({ name: 'meters', tenantId: a.id });
      assert.equal(application.tenantId, a.id);
      const unowned = await storage.applications.create({ name: 'noc' });
      assert.equal(unowned.tenantId, null);
      const first = await storage.devices.create(
        device(application.id, { tags: { b: '2', a: '1' } }),
      );
      assert.equal(first.tenantId, a.id);
      assert.deepEqual(first.tags, { a: '1', b: '2' });
      assert.deepEqual((await storage.devices.get(first.devEui))?.tags, { a: '1', b: '2' });
      const second = await storage.devices.create(device(application.id));
      // Moving the application (two devices) to B would exceed B's quota of 1.
      await rejectsWith(
        storage.applications.update(application.id, { tenantId: b.id }),
        'QUOTA_EXCEEDED',
      );
      assert.equal((await storage.devices.get(first.devEui))?.tenantId, a.id, 'nothing moved');
      await storage.tenants.update(b.id, { quotas: { maxDevices: null } });
      const moved = await storage.applications.update(application.id, { tenantId: b.id });
      assert.equal(moved?.tenantId, b.id);
      for (const eui of [first.devEui, second.devEui]) {
        assert.equal((await storage.devices.get(eui))?.tenantId, b.id);
      }
      await rejectsWith(
        storage.applications.create({ name: 'x', tenantId: 'no-such-tenant' }),
        'MISSING_REFERENCE',
      );
      await rejectsWith(storage.tenants.delete(b.id), 'STILL_REFERENCED');
      assert.equal(await storage.applications.update('nope', { name: 'x' }), undefined);
    });

    it('refuses a device profile of another tenant, accepts the catalogue', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B' });
      const application = await storage.applications.create({ name: 'meters', tenantId: a.id });
      const ofB = await storage.deviceProfiles.create({ name: 'b', tenantId: b.id });
      const ofA = await storage.deviceProfiles.create({ name: 'a', tenantId: a.id });
      const catalogue = await storage.deviceProfiles.create({ name: 'catalogue' });
      assert.equal(ofB.tenantId, b.id);
      assert.equal(catalogue.tenantId, null);
      await rejectsWith(
        storage.devices.create(device(application.id, { deviceProfileId: ofB.id })),
        'MISSING_REFERENCE',
      );
      const withCatalogue = await storage.devices.create(
        device(application.id, { deviceProfileId: catalogue.id }),
      );
      await rejectsWith(
        storage.devices.update(withCatalogue.devEui, { deviceProfileId: ofB.id }),
        'MISSING_REFERENCE',
      );
      const updated = await storage.devices.update(withCatalogue.devEui, {
        deviceProfileId: ofA.id,
        tags: { zone: 'north' },
      });
      assert.equal(updated?.deviceProfileId, ofA.id);
      assert.deepEqual(updated?.tags, { zone: 'north' });
      const inB = await storage.applications.create({ name: 'b', tenantId: b.id });
      // Its profile is A's: it cannot go to B with it.
      await rejectsWith(storage.devices.move(withCatalogue.devEui, inB.id), 'INVALID_STATE');
      const scoped = await storage.deviceProfiles.list({
        scope: { tenantIds: [a.id], untenanted: true },
      });
      assert.deepEqual(scoped.map((p) => p.name).sort(), ['a', 'catalogue']);
      await rejectsWith(
        storage.deviceProfiles.create({ name: 'x', tenantId: 'no-such-tenant' }),
        'MISSING_REFERENCE',
      );
    });

    it('moves a device between applications and tenants, within quotas', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B', quotas: { maxDevices: 0 } });
      const meters = await storage.applications.create({ name: 'meters', tenantId: a.id });
      const lights = await storage.applications.create({ name: 'lights', tenantId: a.id });
      const ofB = await storage.applications.create({ name: 'b', tenantId: b.id });
      const created = await storage.devices.create(device(meters.id));
      const moved = await storage.devices.move(created.devEui, lights.id);
      assert.equal(moved?.applicationId, lights.id);
      assert.equal(moved?.tenantId, a.id);
      await rejectsWith(storage.devices.move(created.devEui, ofB.id), 'QUOTA_EXCEEDED');
      await rejectsWith(storage.devices.move(created.devEui, 'nope'), 'MISSING_REFERENCE');
      assert.equal(await storage.devices.move(eui(), lights.id), undefined);
      await storage.tenants.update(b.id, { quotas: { maxDevices: 1 } });
      assert.equal((await storage.devices.move(created.devEui, ofB.id))?.tenantId, b.id);
    });

    it('creates many devices in one transaction, or none', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A', quotas: { maxDevices: 5 } });
      const application = await storage.applications.create({ name: 'meters', tenantId: a.id });
      const taken = await storage.devices.create(device(application.id));
      const batch = [
        device(application.id),
        device(application.id),
        { ...device(application.id), devEui: taken.devEui },
      ];
      await rejectsWith(storage.devices.createMany(batch), 'ALREADY_EXISTS');
      assert.deepEqual(
        await storage.devices.existing(batch.map((d) => d.devEui)),
        [taken.devEui],
        'nothing of the batch was written',
      );
      await rejectsWith(
        storage.devices.createMany([1, 2, 3, 4, 5].map(() => device(application.id))),
        'QUOTA_EXCEEDED',
      );
      assert.equal(await storage.devices.createMany(batch.slice(0, 2)), 2);
      assert.equal((await storage.devices.list({ tenantId: a.id })).length, 3);
      assert.equal(await storage.devices.createMany([]), 0);
    });

    it('applies the same checks to create and createMany', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A', quotas: { maxDevices: 1 } });
      const b = await storage.tenants.create({ name: 'B' });
      const application = await storage.applications.create({ name: 'meters', tenantId: a.id });
      const ofB = await storage.deviceProfiles.create({ name: 'b', tenantId: b.id });
      const inB = await storage.applications.create({ name: 'b', tenantId: b.id });
      const taken = await storage.devices.create(device(inB.id));
      const refused: [string, NewDevice, StorageErrorCode][] = [
        ['an unknown application', device('no-such-application'), 'MISSING_REFERENCE'],
        [
          'an unknown profile',
          device(application.id, { deviceProfileId: 'no-such-profile' }),
          'MISSING_REFERENCE',
        ],
        [
          "another tenant's profile",
          device(application.id, { deviceProfileId: ofB.id }),
          'MISSING_REFERENCE',
        ],
        ['a DevEUI taken', { ...device(application.id), devEui: taken.devEui }, 'ALREADY_EXISTS'],
        ['a bad DevEUI', { ...device(application.id), devEui: 'zz' }, 'INVALID_INPUT'],
        [
          'a 1.1 OTAA device without NwkKey',
          device(application.id, { macVersion: '1.1.0' }),
          'INVALID_INPUT',
        ],
        [
          'a NwkKey on a 1.0 device',
          device(application.id, { nwkKey: new Uint8Array(16) }),
          'INVALID_INPUT',
        ],
        ['a short AppKey', device(application.id, { appKey: new Uint8Array(15) }), 'INVALID_INPUT'],
        [
          'an OTAA device without AppKey',
          { ...device(application.id), appKey: undefined } as NewDevice,
          'INVALID_INPUT',
        ],
      ];
      for (const [what, input, code] of refused) {
        await rejectsWith(storage.devices.create(input), code).catch((error: Error) => {
          throw new Error(`create with ${what}: ${error.message}`);
        });
        await rejectsWith(storage.devices.createMany([input]), code).catch((error: Error) => {
          throw new Error(`createMany with ${what}: ${error.message}`);
        });
      }
      // The quota (1 device in A) counts the same way through both.
      const first = device(application.id);
      await rejectsWith(
        storage.devices.createMany([first, device(application.id)]),
        'QUOTA_EXCEEDED',
      );
      await storage.devices.create(first);
      await rejectsWith(storage.devices.create(device(application.id)), 'QUOTA_EXCEEDED');
      await rejectsWith(storage.devices.createMany([device(application.id)]), 'QUOTA_EXCEEDED');
      // A DevEUI given twice in one batch: named, nothing written.
      const twice = device(inB.id);
      await assert.rejects(storage.devices.createMany([twice, device(inB.id), twice]), (error) => {
        assert.ok(isStorageError(error) && error.code === 'ALREADY_EXISTS');
        assert.match(error.message, new RegExp(`${twice.devEui} is given twice`));
        return true;
      });
      assert.deepEqual(await storage.devices.existing([twice.devEui]), []);
      assert.equal((await storage.devices.list({ tenantId: a.id })).length, 1);
    });

    it('lists in a scope, filters, sorts and continues after a position', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B' });
      const inA = await storage.applications.create({ name: 'a', tenantId: a.id });
      const inA2 = await storage.applications.create({ name: 'a2', tenantId: a.id });
      const inB = await storage.applications.create({ name: 'b', tenantId: b.id });
      const names = ['delta', 'alpha', 'charlie', 'bravo 100%', 'echo_1'];
      for (const [i, name] of names.entries()) {
        await storage.devices.create(
          device(i < 3 ? inA.id : inB.id, { name, tags: { floor: String(i % 2) } }),
        );
      }
      await storage.devices.create(device(inA2.id, { name: 'foxtrot' }));
      const namesOf = (devices: { name: string }[]) => devices.map((d) => d.name);
      assert.deepEqual(
        namesOf(await storage.devices.list({ scope: { tenantIds: [a.id] }, sort: 'name' })),
        ['alpha', 'charlie', 'delta', 'foxtrot'],
      );
      assert.deepEqual(
        namesOf(
          await storage.devices.list({
            scope: { tenantIds: [], applicationIds: [inB.id] },
            sort: 'name',
            descending: true,
          }),
        ),
        ['echo_1', 'bravo 100%'],
      );
      assert.deepEqual(await storage.devices.list({ scope: { tenantIds: [] } }), []);
      assert.deepEqual(
        namesOf(await storage.devices.list({ search: 'ALPHA' })),
        ['alpha'],
        'any case',
      );
      assert.deepEqual(namesOf(await storage.devices.list({ search: '0%' })), ['bravo 100%']);
      assert.deepEqual(namesOf(await storage.devices.list({ search: 'o_' })), ['echo_1']);
      assert.deepEqual(
        namesOf(await storage.devices.list({ tag: { key: 'floor', value: '1' }, sort: 'name' })),
        ['alpha', 'bravo 100%'],
      );
      // Keyset: the rows after a position, either way; ties on the sort value go by id.
      const all = await storage.devices.list({ sort: 'name' });
      const third = all[2]!;
      assert.deepEqual(
        await storage.devices.list({
          sort: 'name',
          after: { value: third.name, id: third.devEui },
        }),
        all.slice(3),
      );
      const reversed = await storage.devices.list({ sort: 'name', descending: true });
      assert.deepEqual(reversed, [...all].reverse());
      assert.deepEqual(
        await storage.devices.list({
          sort: 'name',
          descending: true,
          after: { value: third.name, id: third.devEui },
        }),
        [...all].reverse().slice(all.length - 2),
      );
      await rejectsWith(storage.devices.list({ sort: 'colour' }), 'INVALID_INPUT');
      assert.deepEqual(
        (
          await storage.applications.list({ scope: { tenantIds: [], applicationIds: [inB.id] } })
        ).map((x) => x.id),
        [inB.id],
      );
      assert.deepEqual(
        (await storage.applications.list({ tenantId: a.id, sort: 'name', descending: true })).map(
          (x) => x.name,
        ),
        ['a2', 'a'],
      );
      assert.deepEqual(
        (await storage.tenants.list({ search: 'b', sort: 'name' })).map((x) => x.id),
        [b.id],
      );
    });

    it('keeps gateways with their tenant, shared flag, tags and quota', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A', quotas: { maxGateways: 1 } });
      const b = await storage.tenants.create({ name: 'B' });
      const mast = await storage.gateways.create({
        gatewayId: eui(),
        name: 'mast',
        tenantId: a.id,
        tags: { height: '30m' },
      });
      assert.equal(mast.tenantId, a.id);
      assert.equal(mast.shared, false);
      await rejectsWith(
        storage.gateways.create({ gatewayId: eui(), name: 'second', tenantId: a.id }),
        'QUOTA_EXCEEDED',
      );
      const tower = await storage.gateways.create({
        gatewayId: eui(),
        name: 'tower',
        tenantId: b.id,
        shared: true,
      });
      const operator = await storage.gateways.create({ gatewayId: eui(), name: 'noc' });
      const ids = (gateways: { gatewayId: string }[]) => gateways.map((g) => g.gatewayId).sort();
      assert.deepEqual(
        ids(await storage.gateways.list({ scope: { tenantIds: [a.id], shared: true } })),
        [mast.gatewayId, tower.gatewayId].sort(),
      );
      assert.deepEqual(ids(await storage.gateways.list({ shared: true })), [tower.gatewayId]);
      assert.deepEqual(ids(await storage.gateways.list({ tag: { key: 'height', value: '30m' } })), [
        mast.gatewayId,
      ]);
      assert.deepEqual(ids(await storage.gateways.list({ search: 'NO' })), [operator.gatewayId]);
      await rejectsWith(
        storage.gateways.update(operator.gatewayId, { tenantId: a.id }),
        'QUOTA_EXCEEDED',
      );
      const changed = await storage.gateways.update(mast.gatewayId, {
        name: 'mast 2',
        location: { latitude: 45.5, longitude: 4.3 },
        shared: true,
        tags: {},
      });
      assert.equal(changed?.name, 'mast 2');
      assert.equal(changed?.shared, true);
      assert.deepEqual(changed?.tags, {});
      assert.equal(changed?.location?.source, 'configured');
      assert.deepEqual(await storage.gateways.get(mast.gatewayId), changed);
      const cleared = await storage.gateways.update(mast.gatewayId, { location: null });
      assert.equal(cleared?.location, null);
      assert.equal(await storage.gateways.update(eui(), { name: 'x' }), undefined);
      assert.equal(await storage.gateways.delete(mast.gatewayId), true);
      assert.equal(await storage.gateways.delete(mast.gatewayId), false);
      await rejectsWith(
        storage.gateways.create({ gatewayId: eui(), name: 'x', tags: { 'bad key': 'x' } }),
        'INVALID_INPUT',
      );
    });
  });
}
