/**
 * Measurements and retention on both engines: recording (idempotent per event, dropped fields),
 * raw and aggregated queries, the retention job, and PostgreSQL's monthly partitions.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { RetentionJob } from '../../../src/application/retention.js';
import { silentLogger } from '../../../src/logger.js';
import {
  createStorage,
  type GaletDatabase,
  type MeasurementAggregate,
  openDatabase,
  SecretBox,
  type Storage,
} from '../../../src/storage/index.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../../helpers/services.js';

const secrets = SecretBox.fromKey(randomBytes(32));
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

function eui(): string {
  return randomBytes(8).toString('hex');
}

let nextEventId = 1;
function eventId(): number {
  nextEventId += 1;
  return nextEventId;
}

interface Engine {
  storage: Storage;
  database: GaletDatabase;
}

/** The suite every engine runs; `open` gives a database of its own to each describe. */
function measurementSuite(name: string, open: () => Promise<GaletDatabase>): void {
  describe(`measurements on ${name}`, () => {
    let engine: Engine;
    before(async () => {
      const database = await open();
      engine = { database, storage: createStorage(database, secrets) };
    });
    after(async () => {
      await engine.database.close();
    });

    it('stores the flattened values of a decoded object, once per event', async () => {
      const { storage } = engine;
      const application = await storage.applications.create({ name: 'water' });
      const devEui = eui();
      const uplink = {
        eventId: eventId(),
        devEui: devEui.toUpperCase(),
        applicationId: application.id,
        time: '2026-03-01T10:00:00Z',
        object: { temperature: 21.5, valve: true, state: 'open', sensors: [{ value: 3 }] },
      };
      const first = await storage.measurements.recordDecoded(uplink);
      assert.deepEqual(first, { inserted: 4, duplicates: 0, skipped: 0, truncated: false });
      const replay = await storage.measurements.recordDecoded(uplink);
      assert.deepEqual(replay, { inserted: 0, duplicates: 4, skipped: 0, truncated: false });
      const points = await storage.measurements.list({
        devEui,
        from: '2026-03-01T00:00:00Z',
        to: '2026-03-02T00:00:00Z',
        limit: 100,
      });
      assert.deepEqual(
        points.map(({ field, value, time }) => ({ field, value, time })),
        [
          { field: 'sensors.0.value', value: 3, time: '2026-03-01T10:00:00.000Z' },
          { field: 'state', value: 'open', time: '2026-03-01T10:00:00.000Z' },
          { field: 'temperature', value: 21.5, time: '2026-03-01T10:00:00.000Z' },
          { field: 'valve', value: 1, time: '2026-03-01T10:00:00.000Z' },
        ],
      );
      assert.ok(points.every((point) => point.eventId === uplink.eventId));
    });

    it("applies the application's dropped fields itself", async () => {
      const { storage } = engine;
      const application = await storage.applications.create({
        name: 'people counters',
        dropFields: ['location', 'sensors.*.serial'],
      });
      const devEui = eui();
      await storage.measurements.recordDecoded({
        eventId: eventId(),
        devEui,
        applicationId: application.id,
        time: '2026-03-01T10:00:00Z',
        object: {
          count: 4,
          location: { latitude: 45.4, longitude: 4.3 },
          sensors: [{ serial: 'A1', value: 1 }],
        },
      });
      const fields = (
        await storage.measurements.list({
          devEui,
          from: '2026-03-01T00:00:00Z',
          to: '2026-03-02T00:00:00Z',
          limit: 100,
        })
      ).map((point) => point.field);
      assert.deepEqual(fields, ['count', 'sensors.0.value']);
    });

    it('records a batch in one call, idempotent too, with each application its dropped fields', async () => {
      const { storage } = engine;
      const plain = await storage.applications.create({ name: 'batch plain' });
      const minimal = await storage.applications.create({
        name: 'batch minimal',
        dropFields: ['serial'],
      });
      const devEui = eui();
      // 300 events x 3 values: more than one INSERT, so one transaction.
      const uplinks = Array.from({ length: 300 }, (_, index) => ({
        eventId: eventId(),
        devEui,
        applicationId: index % 2 === 0 ? plain.id : minimal.id,
        time: new Date(Date.UTC(2026, 3, 1) + index * 60_000).toISOString(),
        object: { index, serial: `S${index}`, ok: true },
      }));
      const first = await storage.measurements.recordDecodedMany(uplinks);
      assert.deepEqual(first, {
        events: 300,
        inserted: 750,
        duplicates: 0,
        skipped: 0,
        truncatedEvents: 0,
      });
      const replay = await storage.measurements.recordDecodedMany(uplinks);
      assert.equal(replay.inserted, 0);
      assert.equal(replay.duplicates, 750);
      const serials = await storage.measurements.list({
        devEui,
        field: 'serial',
        from: '2026-04-01T00:00:00Z',
        to: '2026-04-02T00:00:00Z',
        limit: 1000,
      });
      assert.equal(serials.length, 150);
      await assert.rejects(
        storage.measurements.recordDecodedMany([
          { ...uplinks[0]!, eventId: eventId() },
          { ...uplinks[1]!, devEui: 'not an eui' },
        ]),
        { code: 'INVALID_INPUT' },
      );
    });

    it('filters on field and on [from, to)', async () => {
      const { storage } = engine;
      const application = await storage.applications.create({ name: 'range' });
      const devEui = eui();
      for (const hour of [0, 1, 2]) {
        await storage.measurements.recordDecoded({
          eventId: eventId(),
          devEui,
          applicationId: application.id,
          time: new Date(Date.UTC(2026, 2, 1, hour)).toISOString(),
          object: { a: hour, b: -hour },
        });
      }
      const points = await storage.measurements.list({
        devEui,
        field: 'a',
        from: '2026-03-01T01:00:00Z',
        to: '2026-03-01T02:00:00Z',
        limit: 100,
      });
      assert.deepEqual(
        points.map((point) => point.value),
        [1],
      );
      const limited = await storage.measurements.list({
        devEui,
        from: '2026-03-01T00:00:00Z',
        to: '2026-03-02T00:00:00Z',
        limit: 3,
      });
      assert.equal(limited.length, 3);
    });

    it('aggregates per interval with min, max, avg, sum, last and count', async () => {
      const { storage } = engine;
      const application = await storage.applications.create({ name: 'aggregates' });
      const devEui = eui();
      const start = Date.UTC(2026, 2, 1);
      // 3 days, a value every 20 minutes (ids in time order), plus a text field.
      const values: Array<{ time: number; value: number }> = [];
      for (let index = 0; index < 3 * 72; index += 1) {
        const time = start + index * 20 * 60_000;
        const value = Math.round(Math.sin(index) * 1000) / 10;
        values.push({ time, value });
        await storage.measurements.recordDecoded({
          eventId: eventId(),
          devEui,
          applicationId: application.id,
          time: new Date(time).toISOString(),
          object: { level: value, mode: index % 2 === 0 ? 'even' : 'odd' },
        });
      }
      const expected = (intervalMs: number, aggregate: MeasurementAggregate) => {
        const buckets = new Map<number, number[]>();
        for (const { time, value } of values) {
          const bucket = Math.floor(time / intervalMs) * intervalMs;
          buckets.set(bucket, [...(buckets.get(bucket) ?? []), value]);
        }
        return [...buckets].map(([bucket, list]) => {
          const sum = list.reduce((a, b) => a + b, 0);
          const value = {
            min: Math.min(...list),
            max: Math.max(...list),
            avg: sum / list.length,
            sum,
            last: list.at(-1)!,
            count: list.length,
          }[aggregate];
          return { time: new Date(bucket).toISOString(), value, count: list.length };
        });
      };
      for (const intervalMs of [HOUR_MS, 6 * HOUR_MS, DAY_MS]) {
        for (const aggregate of ['min', 'max', 'avg', 'sum', 'last', 'count'] as const) {
          const buckets = await storage.measurements.aggregate({
            devEui,
            field: 'level',
            from: new Date(start).toISOString(),
            to: new Date(start + 3 * DAY_MS).toISOString(),
            limit: 1000,
            intervalMs,
            aggregate,
          });
          const want = expected(intervalMs, aggregate);
          assert.equal(buckets.length, want.length, `${aggregate} per ${intervalMs} ms`);
          buckets.forEach((bucket, index) => {
            const target = want[index]!;
            assert.equal(bucket.field, 'level');
            assert.equal(bucket.time, target.time);
            assert.equal(bucket.count, target.count);
            assert.ok(
              Math.abs((bucket.value as number) - target.value) < 1e-9,
              `${aggregate} of ${bucket.time}: ${bucket.value} != ${target.value}`,
            );
          });
        }
      }
      const modes = await storage.measurements.aggregate({
        devEui,
        field: 'mode',
        from: new Date(start).toISOString(),
        to: new Date(start + DAY_MS).toISOString(),
        limit: 1000,
        intervalMs: DAY_MS,
        aggregate: 'last',
      });
      assert.deepEqual(modes, [
        { time: new Date(start).toISOString(), field: 'mode', value: 'odd', count: 72 },
      ]);
      const averageOfText = await storage.measurements.aggregate({
        devEui,
        field: 'mode',
        from: new Date(start).toISOString(),
        to: new Date(start + DAY_MS).toISOString(),
        limit: 1000,
        intervalMs: DAY_MS,
        aggregate: 'avg',
      });
      assert.equal(averageOfText[0]?.value, null);
    });

    it("takes the tenant's events retention for an application without its own", async () => {
      const { storage } = engine;
      const tenant = await storage.tenants.create({
        name: `commune ${eui()}`,
        kind: 'commune',
        settings: { retention: { eventsDays: 90 } },
      });
      const inherits = await storage.applications.create({ name: 'inherits', tenantId: tenant.id });
      const own = await storage.applications.create({
        name: 'own',
        tenantId: tenant.id,
        retention: { eventsDays: 5 },
      });
      const settings = await storage.applications.listDataSettings();
      assert.deepEqual(settings.find((s) => s.id === inherits.id)?.retention, {
        eventsDays: 90,
        measurementsDays: null,
      });
      assert.deepEqual(settings.find((s) => s.id === own.id)?.retention, {
        eventsDays: 5,
        measurementsDays: null,
      });
    });

    it('refuses a malformed query with INVALID_INPUT', async () => {
      const { storage } = engine;
      const query = { devEui: eui(), from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z' };
      for (const bad of [
        { ...query, limit: 10 },
        { ...query, from: 'yesterday', limit: 10 },
        { ...query, to: '2026-03-03T00:00:00Z', limit: 0 },
        { ...query, devEui: 'nope', to: '2026-03-03T00:00:00Z', limit: 10 },
      ]) {
        await assert.rejects(storage.measurements.list(bad), { code: 'INVALID_INPUT' });
      }
      await assert.rejects(
        storage.measurements.recordDecoded({
          eventId: -1,
          devEui: eui(),
          applicationId: 'x',
          time: '2026-03-01T00:00:00Z',
          object: {},
        }),
        { code: 'INVALID_INPUT' },
      );
    });

    it("purges each application's old events and measurements, in batches, and nothing else", async () => {
      const { storage } = engine;
      const now = new Date('2026-06-15T12:00:00Z');
      const short = await storage.applications.create({
        name: 'short',
        retention: { eventsDays: 10, measurementsDays: 30 },
      });
      const forever = await storage.applications.create({ name: 'forever' });
      const devices = { [short.id]: eui(), [forever.id]: eui() };
      for (const application of [short, forever]) {
        for (const daysAgo of [1, 5, 20, 40, 60]) {
          const time = new Date(now.getTime() - daysAgo * DAY_MS).toISOString();
          const devEui = devices[application.id]!;
          const id = await storage.events.append({
            devEui,
            applicationId: application.id,
            type: 'up',
            time,
            body: { daysAgo },
          });
          await storage.measurements.recordDecoded({
            eventId: id,
            devEui,
            applicationId: application.id,
            time,
            object: { daysAgo, x: 1 },
          });
        }
      }
      const job = new RetentionJob({
        storage,
        logger: silentLogger,
        batchRows: 3,
        now: () => now,
      });
      const summary = await job.runOnce();
      // short: events older than 10 days (20, 40, 60), measurements older than 30 (40, 60: 2
      // fields each). Other tests' applications keep everything.
      assert.equal(summary?.eventsDeleted, 3);
      assert.equal(summary?.measurementsDeleted, 4);
      assert.equal(job.counters.eventsPurged, 3);
      assert.equal(job.counters.measurementsPurged, 4);
      const remaining = async (devEui: string) => ({
        events: (await storage.events.listForDevice(devEui)).map(
          (event) => (event.body as { daysAgo: number }).daysAgo,
        ),
        measurements: (
          await storage.measurements.list({
            devEui,
            field: 'daysAgo',
            from: '2020-01-01T00:00:00Z',
            to: '2030-01-01T00:00:00Z',
            limit: 100,
          })
        ).map((point) => point.value),
      });
      assert.deepEqual(await remaining(devices[short.id]!), {
        // Events newest first (by id, appended oldest daysAgo last).
        events: [5, 1],
        measurements: [20, 5, 1],
      });
      assert.deepEqual(await remaining(devices[forever.id]!), {
        events: [60, 40, 20, 5, 1],
        measurements: [60, 40, 20, 5, 1],
      });
      const again = await job.runOnce();
      assert.equal(again?.eventsDeleted, 0);
      assert.equal(again?.measurementsDeleted, 0);
      await job.close();
    });
  });
}

measurementSuite('SQLite', () => openDatabase({ url: ':memory:' }));

const reachable = await postgresReachable();
if (!reachable) {
  describe('measurements on PostgreSQL', () => {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
  });
} else {
  const urls: string[] = [];
  const postgres = async (): Promise<GaletDatabase> => {
    const url = await postgresTestUrl();
    if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
    urls.push(url);
    return openDatabase({ url });
  };
  after(async () => {
    for (const url of urls) await dropPostgresTestDatabase(url);
  });
  measurementSuite('PostgreSQL', postgres);

  describe('measurement partitions on PostgreSQL', () => {
    let database: GaletDatabase;
    let storage: Storage;
    before(async () => {
      database = await postgres();
      storage = createStorage(database, secrets);
    });
    after(async () => {
      await database.close();
    });

    async function partitionOf(devEui: string): Promise<string[]> {
      const result = await sql<{
        partition: string;
      }>`select distinct tableoid::regclass::text as partition
        from measurements where dev_eui = ${devEui}`.execute(database.db);
      return result.rows.map((row) => row.partition);
    }

    it('creates the coming months, moves stray rows out of the default partition and drops expired months', async () => {
      const keeper = await storage.applications.create({ name: 'keeper' });
      const expiring = await storage.applications.create({
        name: 'expiring',
        retention: { measurementsDays: 30 },
      });
      const now = new Date('2026-11-15T00:00:00Z');
      const job = new RetentionJob({
        storage,
        logger: silentLogger,
        monthsAhead: 2,
        now: () => now,
      });
      await job.start();
      await job.close();
      assert.deepEqual(
        (await storage.measurements.listPartitions()).map((partition) => partition.name),
        ['measurements_p2026_11', 'measurements_p2026_12', 'measurements_p2027_01'],
      );

      const recent = eui();
      await storage.measurements.recordDecoded({
        eventId: eventId(),
        devEui: recent,
        applicationId: expiring.id,
        time: '2026-11-20T00:00:00Z',
        object: { v: 1 },
      });
      assert.deepEqual(await partitionOf(recent), ['measurements_p2026_11']);

      // Older rows: no partition yet, so the default one takes them.
      const old = eui();
      const oldKeeper = eui();
      for (const [devEui, applicationId, time] of [
        [old, expiring.id, '2025-03-10T00:00:00Z'],
        [old, expiring.id, '2025-05-10T00:00:00Z'],
        [oldKeeper, keeper.id, '2025-05-11T00:00:00Z'],
      ] as const) {
        await storage.measurements.recordDecoded({
          eventId: eventId(),
          devEui,
          applicationId,
          time,
          object: { v: 2 },
        });
      }
      assert.deepEqual(await partitionOf(old), ['measurements_default']);
      assert.deepEqual(await storage.measurements.ensurePartitions(new Date('2025-03-01Z'), 0), [
        'measurements_p2025_03',
      ]);
      assert.deepEqual(await storage.measurements.ensurePartitions(new Date('2025-05-01Z'), 0), [
        'measurements_p2025_05',
      ]);
      assert.deepEqual((await partitionOf(old)).sort(), [
        'measurements_p2025_03',
        'measurements_p2025_05',
      ]);
      assert.deepEqual(await partitionOf(oldKeeper), ['measurements_p2025_05']);
      // Idempotent.
      assert.deepEqual(await storage.measurements.ensurePartitions(new Date('2025-03-01Z'), 0), []);

      const summary = await new RetentionJob({
        storage,
        logger: silentLogger,
        now: () => now,
      }).runOnce();
      // 2025-03 holds only the expiring application's rows: dropped whole. 2025-05 holds a row
      // the keeper keeps forever: kept, and the expiring row in it deleted on its own.
      assert.deepEqual(summary?.partitionsDropped, ['measurements_p2025_03']);
      assert.equal(summary?.measurementsDeleted, 1);
      assert.deepEqual(await partitionOf(old), []);
      assert.deepEqual(await partitionOf(oldKeeper), ['measurements_p2025_05']);
      assert.deepEqual(await partitionOf(recent), ['measurements_p2026_11']);
    });
  });
}
