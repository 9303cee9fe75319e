/**
 * Measurement shares (migration 0013): a provider's application shares field paths of one
 * device with another tenant. On SQLite and on PostgreSQL (skipped with a message when no server
 * is reachable, unless CI requires it).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createStorage,
  type GaletDatabase,
  MAX_SHARED_FIELDS,
  SecretBox,
  type Storage,
} from '../../src/storage/index.js';
import { testEngines } from '../helpers/test-engines.js';

const secrets = SecretBox.fromKey(randomBytes(32));

const engines = testEngines('galet-shares');

/** A provider with a water application and its meter, a commune, and a clock a second apart. */
async function setUp(database: GaletDatabase) {
  let tick = Date.parse('2026-03-01T08:00:00.000Z');
  const now = () => {
    tick += 1000;
    return new Date(tick);
  };
  const storage = createStorage(database, secrets, { now });
  const provider = await storage.tenants.create({ name: 'Eaux du Forez', kind: 'provider' });
  const commune = await storage.tenants.create({ name: 'Veauche' });
  const application = await storage.applications.create({
    name: 'water meters',
    tenantId: provider.id,
  });
  const otherApplication = await storage.applications.create({
    name: 'valves',
    tenantId: provider.id,
  });
  const meter = await newDevice(storage, application.id, 'town hall meter');
  return { storage, provider, commune, application, otherApplication, meter };
}

async function newDevice(storage: Storage, applicationId: string, name: string): Promise<string> {
  const devEui = randomBytes(8).toString('hex');
  await storage.devices.create({
    devEui,
    joinEui: '70b3d57ed0000000',
    name,
    applicationId,
    macVersion: '1.0.4',
    deviceClass: 'A',
    activation: 'otaa',
    rootKeysElsewhere: true,
  });
  return devEui;
}

for (const engine of engines) {
  describe(`measurement shares on ${engine.name}`, () => {
    it('stores a share and shows it to the provider and to the receiving tenant', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const { storage, provider, commune, application, meter } = await setUp(database);
      const share = await storage.measurementShares.create({
        applicationId: application.id,
        devEui: meter.toUpperCase(),
        tenantId: commune.id,
        fields: ['volume', 'sensors.0.value', 'volume'],
        note: 'daily volume for the town hall',
        createdBy: 'user:u1',
      });
      assert.equal(share.devEui, meter, 'lower case');
      assert.deepEqual(share.fields, ['volume', 'sensors.0.value'], 'duplicates dropped, in order');
      assert.equal(share.tenantName, 'Veauche');
      assert.equal(share.active, true);
      assert.equal(share.createdBy, 'user:u1');
      assert.deepEqual(await storage.measurementShares.get(share.id), share);
      assert.deepEqual(await storage.measurementShares.listForApplication(application.id), [share]);
      const received = await storage.measurementShares.listReceived({ tenantIds: [commune.id] });
      assert.deepEqual(received, [
        {
          id: share.id,
          tenantId: commune.id,
          devEui: meter,
          deviceName: 'town hall meter',
          fields: ['volume', 'sensors.0.value'],
          providerName: 'Eaux du Forez',
          createdAt: share.createdAt,
        },
      ]);
      assert.deepEqual(await storage.measurementShares.getReceived(share.id), received[0]);
      assert.deepEqual(
        await storage.measurementShares.listReceived({ tenantIds: [provider.id] }),
        [],
        'the provider receives nothing',
      );
      assert.deepEqual(await storage.measurementShares.listReceived({ tenantIds: [] }), []);
      assert.equal(await storage.measurementShares.delete('another-application', share.id), false);
      assert.equal(await storage.measurementShares.delete(application.id, share.id), true);
      assert.equal(await storage.measurementShares.get(share.id), undefined);
      assert.equal(await storage.measurementShares.getReceived(share.id), undefined);
    });

    it('refuses a device of another application, an unknown or own tenant, bad fields, a second share', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const { storage, provider, commune, application, otherApplication, meter } =
        await setUp(database);
      const base = { applicationId: application.id, devEui: meter, tenantId: commune.id };
      await assert.rejects(
        storage.measurementShares.create({
          ...base,
          applicationId: otherApplication.id,
          fields: ['volume'],
        }),
        { code: 'MISSING_REFERENCE' },
      );
      await assert.rejects(
        storage.measurementShares.create({
          ...base,
          devEui: 'ffffffffffffffff',
          fields: ['volume'],
        }),
        { code: 'MISSING_REFERENCE' },
      );
      await assert.rejects(
        storage.measurementShares.create({ ...base, tenantId: 'no-such-tenant', fields: ['v'] }),
        { code: 'MISSING_REFERENCE' },
      );
      await assert.rejects(
        storage.measurementShares.create({ ...base, tenantId: provider.id, fields: ['v'] }),
        { code: 'INVALID_INPUT' },
      );
      const tooMany = Array.from({ length: MAX_SHARED_FIELDS + 1 }, (_, i) => `f${i}`);
      for (const fields of [[], tooMany, [''], ['x'.repeat(201)]]) {
        await assert.rejects(storage.measurementShares.create({ ...base, fields }), {
          code: 'INVALID_INPUT',
        });
      }
      await assert.rejects(storage.measurementShares.create({ ...base, fields: ['v'], note: '' }), {
        code: 'INVALID_INPUT',
      });
      await storage.measurementShares.create({ ...base, fields: ['volume'] });
      await assert.rejects(storage.measurementShares.create({ ...base, fields: ['index'] }), {
        code: 'ALREADY_EXISTS',
      });
      assert.equal((await storage.measurementShares.listForApplication(application.id)).length, 1);
    });

    it('changes the fields and the note of a share of the application, nothing else', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const { storage, provider, commune, application, otherApplication, meter } =
        await setUp(database);
      const share = await storage.measurementShares.create({
        applicationId: application.id,
        devEui: meter,
        tenantId: commune.id,
        fields: ['volume'],
        note: 'town hall',
      });
      const widened = await storage.measurementShares.update(application.id, share.id, {
        fields: ['volume', 'index', 'volume'],
      });
      assert.deepEqual(widened, { ...share, fields: ['volume', 'index'] }, 'only the fields');
      assert.deepEqual(await storage.measurementShares.get(share.id), widened);
      assert.deepEqual((await storage.measurementShares.getReceived(share.id))?.fields, [
        'volume',
        'index',
      ]);
      const renamed = await storage.measurementShares.update(application.id, share.id, {
        note: 'daily volume',
      });
      assert.equal(renamed?.note, 'daily volume');
      assert.deepEqual(renamed?.fields, ['volume', 'index'], 'fields kept');
      const cleared = await storage.measurementShares.update(application.id, share.id, {
        fields: ['index'],
        note: null,
      });
      assert.equal(cleared?.note, null);
      assert.deepEqual(cleared?.fields, ['index']);
      assert.equal(
        await storage.measurementShares.update(otherApplication.id, share.id, { fields: ['x'] }),
        undefined,
        'reached through its application only',
      );
      assert.equal(
        await storage.measurementShares.update(application.id, 'no-such-share', { note: 'x' }),
        undefined,
      );
      const tooMany = Array.from({ length: MAX_SHARED_FIELDS + 1 }, (_, i) => `f${i}`);
      for (const changes of [
        {},
        { fields: [] },
        { fields: tooMany },
        { fields: [''] },
        { note: '' },
        { note: 'x'.repeat(501) },
      ]) {
        await assert.rejects(storage.measurementShares.update(application.id, share.id, changes), {
          code: 'INVALID_INPUT',
        });
      }
      assert.deepEqual((await storage.measurementShares.get(share.id))?.fields, ['index']);
      // What the audit entry of a read names: the application and its tenant.
      const withProvider = await storage.measurementShares.getReceivedWithProvider(share.id);
      assert.deepEqual(withProvider, {
        share: await storage.measurementShares.getReceived(share.id),
        applicationId: application.id,
        providerTenantId: provider.id,
      });
      await storage.devices.move(meter, otherApplication.id);
      assert.equal(
        await storage.measurementShares.getReceivedWithProvider(share.id),
        undefined,
        'inert',
      );
    });

    it('goes with its device and with the receiving tenant; is inert while the device is elsewhere', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const { storage, commune, application, otherApplication, meter } = await setUp(database);
      const share = await storage.measurementShares.create({
        applicationId: application.id,
        devEui: meter,
        tenantId: commune.id,
        fields: ['volume'],
      });
      // Moved to another application of the provider: the share serves nothing.
      await storage.devices.move(meter, otherApplication.id);
      assert.equal((await storage.measurementShares.get(share.id))?.active, false);
      assert.equal(await storage.measurementShares.getReceived(share.id), undefined);
      assert.deepEqual(
        await storage.measurementShares.listReceived({ tenantIds: [commune.id] }),
        [],
      );
      await storage.devices.move(meter, application.id);
      assert.equal((await storage.measurementShares.get(share.id))?.active, true);
      assert.equal((await storage.measurementShares.getReceived(share.id))?.id, share.id);

      assert.equal(await storage.devices.delete(meter), true);
      assert.equal(
        await storage.measurementShares.get(share.id),
        undefined,
        'gone with the device',
      );
      assert.equal(await storage.applications.delete(application.id), true);

      // The receiving tenant deleted: its shares go (and they do not hold the tenant back).
      const valve = await newDevice(storage, otherApplication.id, 'valve');
      const other = await storage.measurementShares.create({
        applicationId: otherApplication.id,
        devEui: valve,
        tenantId: commune.id,
        fields: ['open'],
      });
      assert.equal(await storage.tenants.delete(commune.id), true);
      assert.equal(await storage.measurementShares.get(other.id), undefined);
    });

    it('pages the received shares by creation time or DevEUI', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const { storage, commune, application } = await setUp(database);
      const ids: string[] = [];
      for (let index = 0; index < 3; index += 1) {
        const devEui = await newDevice(storage, application.id, `meter ${index}`);
        const share = await storage.measurementShares.create({
          applicationId: application.id,
          devEui,
          tenantId: commune.id,
          fields: ['volume'],
        });
        ids.push(share.id);
      }
      const first = await storage.measurementShares.listReceived({
        tenantIds: [commune.id],
        limit: 2,
      });
      assert.deepEqual(
        first.map((share) => share.id),
        ids.slice(0, 2),
      );
      const last = first[1];
      assert.ok(last);
      const rest = await storage.measurementShares.listReceived({
        tenantIds: [commune.id],
        after: { value: last.createdAt, id: last.id },
      });
      assert.deepEqual(
        rest.map((share) => share.id),
        ids.slice(2),
      );
      const byEui = await storage.measurementShares.listReceived({
        tenantIds: [commune.id],
        sort: 'devEui',
        descending: true,
      });
      const euis = byEui.map((share) => share.devEui);
      assert.deepEqual(euis, [...euis].sort().reverse());
      const provider = await storage.measurementShares.listForApplication(application.id, {
        devEui: byEui[0]?.devEui as string,
      });
      assert.equal(provider.length, 1);
    });
  });
}
