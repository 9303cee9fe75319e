// `npm run bench -- measurements`: measurement storage on SQLite and PostgreSQL. Records a
// sample of decoded uplinks through `measurements.recordDecoded` (events/s), fills the table to
// N devices x D days x 24 uplinks (5 values each) with multi-row INSERTs, then times one
// device's one-day and one-month queries (raw and aggregated) and reports the bytes per row,
// the index sizes and the partitions. Sizes are environment variables:
//   GALET_BENCH_MEASUREMENT_DEVICES (default 200), GALET_BENCH_MEASUREMENT_DAYS (default 31),
//   GALET_BENCH_MEASUREMENT_ENGINES (default "sqlite,postgres"),
//   GALET_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres: a database
//   galet_bench_measurements_<pid> is created there and dropped after).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import {
  createStorage,
  type GaletDatabase,
  openDatabase,
  SecretBox,
  type Storage,
} from '../src/storage/index.js';

const DAY_MS = 86_400_000;
const UPLINKS_PER_DAY = 24;
const SINGLE_EVENTS = 1000;
const BATCHED_EVENTS = 5000;
const BATCH_EVENTS = 100;
const FILL_ROWS_PER_INSERT = 1000;
const QUERY_DEVICES = 25;

function setting(name: string, fallback: string): string {
  return process.env[`GALET_BENCH_${name}`] ?? fallback;
}

interface Sizes {
  rows: number;
  tableBytes: number;
  indexBytes: Record<string, number>;
  partitions: number;
}

interface EngineResult {
  engine: string;
  recordPerSecond: number;
  recordManyPerSecond: number;
  fillRowsPerSecond: number;
  sizes: Sizes;
  queries: Record<string, { medianMs: number; p95Ms: number; rows: number }>;
}

/** The decoded object of a typical environment sensor: 5 values. */
function decoded(index: number) {
  return {
    temperature: 18 + Math.sin(index / 7) * 4,
    humidity: 40 + (index % 30),
    battery: 3.6 - index / 100_000,
    co2: 400 + (index % 700),
    flags: { open: index % 5 === 0 },
  };
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

async function runEngine(
  engine: string,
  database: GaletDatabase,
  devices: number,
  days: number,
): Promise<EngineResult> {
  const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
  const application = await storage.applications.create({ name: 'bench' });
  const end = Date.UTC(2026, 10, 1);
  const start = end - days * DAY_MS;
  // Partitions for every month of the data (the retention job does this for the coming months).
  for (let month = new Date(start); month.getTime() < end; ) {
    await storage.measurements.ensurePartitions(month, 0);
    month = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));
  }
  const euis = Array.from({ length: devices }, (_, index) =>
    (0x70b3d5_0000_0000n + BigInt(index)).toString(16).padStart(16, '0'),
  );

  // 1. recordDecoded one event at a time, then recordDecodedMany in batches of 100.
  let eventId = 0;
  const perDevice = days * UPLINKS_PER_DAY;
  const total = devices * perDevice;
  const uplinkAt = (index: number) => ({
    eventId: index + 1,
    devEui: euis[index % devices]!,
    applicationId: application.id,
    time: new Date(start + Math.floor(index / devices) * 3_600_000).toISOString(),
    object: decoded(index),
  });
  const singleStarted = performance.now();
  const singles = Math.min(SINGLE_EVENTS, total);
  for (; eventId < singles; eventId += 1)
    await storage.measurements.recordDecoded(uplinkAt(eventId));
  const recordPerSecond = singles / ((performance.now() - singleStarted) / 1000);
  const batchStarted = performance.now();
  const batched = Math.min(BATCHED_EVENTS, total - eventId);
  for (let done = 0; done < batched; done += BATCH_EVENTS) {
    const batch = [];
    for (let index = 0; index < Math.min(BATCH_EVENTS, batched - done); index += 1) {
      batch.push(uplinkAt(eventId));
      eventId += 1;
    }
    await storage.measurements.recordDecodedMany(batch);
  }
  const recordManyPerSecond =
    batched === 0 ? 0 : batched / ((performance.now() - batchStarted) / 1000);
  const sampled = eventId;

  // 2. The rest of the volume in multi-row INSERTs.
  const fillStarted = performance.now();
  let filledRows = 0;
  let batch: Array<Record<string, unknown>> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await database.db
      .insertInto('measurements')
      .values(batch as never)
      .execute();
    filledRows += batch.length;
    batch = [];
  };
  for (let index = sampled; index < devices * perDevice; index += 1) {
    eventId += 1;
    const values = decoded(index);
    const row = {
      dev_eui: euis[index % devices]!,
      application_id: application.id,
      time_ms: start + Math.floor(index / devices) * 3_600_000,
      event_id: eventId,
    };
    for (const [field, value] of [
      ['temperature', values.temperature],
      ['humidity', values.humidity],
      ['battery', values.battery],
      ['co2', values.co2],
      ['flags.open', values.flags.open ? 1 : 0],
    ] as const) {
      batch.push({ ...row, field, number_value: value, text_value: null });
    }
    if (batch.length >= FILL_ROWS_PER_INSERT) await flush();
  }
  await flush();
  const fillRowsPerSecond = filledRows / ((performance.now() - fillStarted) / 1000);
  if (database.dialect === 'postgres') await sql`analyze measurements`.execute(database.db);
  else await sql`analyze`.execute(database.db);

  // 3. Queries of one device: the last day and the whole month, raw and aggregated.
  const queries: EngineResult['queries'] = {};
  const time = async (label: string, run: (devEui: string) => Promise<number>) => {
    const durations: number[] = [];
    let rows = 0;
    for (let index = 0; index < QUERY_DEVICES; index += 1) {
      const devEui = euis[(index * 7919) % devices]!;
      const started = performance.now();
      rows = await run(devEui);
      durations.push(performance.now() - started);
    }
    queries[label] = {
      medianMs: percentile(durations, 0.5),
      p95Ms: percentile(durations, 0.95),
      rows,
    };
  };
  const lastDay = { from: new Date(end - DAY_MS).toISOString(), to: new Date(end).toISOString() };
  const month = {
    from: new Date(end - Math.min(days, 31) * DAY_MS).toISOString(),
    to: new Date(end).toISOString(),
  };
  const m = storage.measurements;
  await time('1 day raw, 1 field', async (devEui) => {
    return (await m.list({ devEui, field: 'temperature', ...lastDay, limit: 10_000 })).length;
  });
  await time('1 day raw, all fields', async (devEui) => {
    return (await m.list({ devEui, ...lastDay, limit: 10_000 })).length;
  });
  await time('1 month raw, 1 field', async (devEui) => {
    return (await m.list({ devEui, field: 'temperature', ...month, limit: 10_000 })).length;
  });
  await time('1 month hourly avg', async (devEui) => {
    const buckets = await m.aggregate({
      devEui,
      field: 'temperature',
      ...month,
      limit: 10_000,
      intervalMs: 3_600_000,
      aggregate: 'avg',
    });
    return buckets.length;
  });
  await time('1 month daily max', async (devEui) => {
    const buckets = await m.aggregate({
      devEui,
      field: 'temperature',
      ...month,
      limit: 10_000,
      intervalMs: DAY_MS,
      aggregate: 'max',
    });
    return buckets.length;
  });
  await time('1 month daily last', async (devEui) => {
    const buckets = await m.aggregate({
      devEui,
      field: 'temperature',
      ...month,
      limit: 10_000,
      intervalMs: DAY_MS,
      aggregate: 'last',
    });
    return buckets.length;
  });

  return {
    engine,
    recordPerSecond,
    recordManyPerSecond,
    fillRowsPerSecond,
    sizes: await sizesOf(database, storage),
    queries,
  };
}

async function sizesOf(database: GaletDatabase, storage: Storage): Promise<Sizes> {
  const count = await database.db
    .selectFrom('measurements')
    .select((eb) => eb.fn.countAll<number | string>().as('rows'))
    .executeTakeFirstOrThrow();
  const rows = Number(count.rows);
  if (database.dialect === 'sqlite') {
    // dbstat: the pages of each table and index.
    const result = await sql<{ name: string; bytes: number }>`select name, sum(pgsize) as bytes
      from dbstat where name in ('measurements', 'measurements_application_time_idx')
        or name like 'sqlite_autoindex_measurements%' group by name`.execute(database.db);
    const indexBytes: Record<string, number> = {};
    let tableBytes = 0;
    for (const row of result.rows) {
      if (row.name === 'measurements') tableBytes = Number(row.bytes);
      else
        indexBytes[row.name.startsWith('sqlite_autoindex') ? 'series key (unique)' : row.name] =
          Number(row.bytes);
    }
    return { rows, tableBytes, indexBytes, partitions: 0 };
  }
  const result = await sql<{ kind: string; name: string; bytes: string }>`
    select 'table' as kind, c.relname as name, pg_relation_size(c.oid)::text as bytes
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'measurements'::regclass
    union all
    select 'index' as kind, pi.relname as name, pg_relation_size(x.indexrelid)::text as bytes
      from pg_inherits i join pg_index x on x.indrelid = i.inhrelid
      join pg_class pi on pi.oid = x.indexrelid
      where i.inhparent = 'measurements'::regclass`.execute(database.db);
  let tableBytes = 0;
  const indexBytes: Record<string, number> = {};
  for (const row of result.rows) {
    if (row.kind === 'table') tableBytes += Number(row.bytes);
    else {
      const name = row.name.includes('application') ? 'application_time' : 'series key (unique)';
      indexBytes[name] = (indexBytes[name] ?? 0) + Number(row.bytes);
    }
  }
  return {
    rows,
    tableBytes,
    indexBytes,
    partitions: (await storage.measurements.listPartitions()).length,
  };
}

function report(result: EngineResult): void {
  const { sizes } = result;
  const indexTotal = Object.values(sizes.indexBytes).reduce((a, b) => a + b, 0);
  const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`;
  console.log(`\n${result.engine}`);
  console.log(`  recordDecoded: ${Math.round(result.recordPerSecond)} events/s (5 values each)`);
  console.log(
    `  recordDecodedMany (100 per call): ${Math.round(result.recordManyPerSecond)} events/s`,
  );
  console.log(`  bulk fill: ${Math.round(result.fillRowsPerSecond)} rows/s`);
  console.log(
    `  rows ${sizes.rows}, table ${mb(sizes.tableBytes)} (${(sizes.tableBytes / sizes.rows).toFixed(1)} B/row), ` +
      `indexes ${mb(indexTotal)} (${(indexTotal / sizes.rows).toFixed(1)} B/row), ` +
      `total ${((sizes.tableBytes + indexTotal) / sizes.rows).toFixed(1)} B/row` +
      (result.engine === 'postgres' ? `, ${sizes.partitions} monthly partitions` : ''),
  );
  for (const [name, bytes] of Object.entries(sizes.indexBytes)) {
    console.log(`    index ${name}: ${mb(bytes)}`);
  }
  for (const [label, query] of Object.entries(result.queries)) {
    console.log(
      `  ${label.padEnd(24)} median ${query.medianMs.toFixed(2)} ms, p95 ${query.p95Ms.toFixed(2)} ms (${query.rows} rows)`,
    );
  }
}

export async function runMeasurementsBench(): Promise<void> {
  const devices = Number(setting('MEASUREMENT_DEVICES', '200'));
  const days = Number(setting('MEASUREMENT_DAYS', '31'));
  const engines = setting('MEASUREMENT_ENGINES', 'sqlite,postgres').split(',');
  console.log(
    `measurements: ${devices} devices x ${days} days x ${UPLINKS_PER_DAY} uplinks x 5 values = ` +
      `${devices * days * UPLINKS_PER_DAY * 5} rows per engine`,
  );
  if (engines.includes('sqlite')) {
    const dir = await mkdtemp(join(tmpdir(), 'galet-bench-measurements-'));
    const database = await openDatabase({ url: `sqlite:${join(dir, 'bench.sqlite')}` });
    try {
      report(await runEngine('sqlite', database, devices, days));
    } finally {
      await database.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (engines.includes('postgres')) {
    const adminUrl = setting('POSTGRES_URL', 'postgres://postgres@127.0.0.1:5432/postgres');
    const name = `galet_bench_measurements_${process.pid}`;
    const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
    try {
      await admin.connect();
    } catch (error) {
      console.log(`\npostgres: skipped, ${adminUrl} not reachable (${(error as Error).message})`);
      return;
    }
    // The name is made of letters, digits and the pid only.
    await admin.query(`create database "${name}"`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const database = await openDatabase({ url: url.toString() });
    try {
      report(await runEngine('postgres', database, devices, days));
    } finally {
      await database.close();
      await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.end();
    }
  }
}
