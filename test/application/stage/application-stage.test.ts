// The application stage on a real SQLite event log with the real codec process: decoded
// uplinks get ChirpStack's `object`, failures become UPLINK_CODEC log events without stopping
// the stage, a runaway codec does not hold other devices back, the position survives a
// restart, and a batch handled again does not log a failure twice.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { memoryCursor } from '../../../src/application/event-feed.js';
import {
  ApplicationStage,
  type DecodedUplink,
  DeviceCodecLookup,
  PayloadCodecs,
  type RunningApplicationStage,
  startApplicationStage,
} from '../../../src/application/stage/index.js';
import { silentLogger } from '../../../src/logger.js';
import {
  type CodecSettings,
  createStorage,
  type GaletDatabase,
  openDatabase,
  SecretBox,
  type Storage,
  type StoredEvent,
} from '../../../src/storage/index.js';
import {
  dropPostgresTestDatabase,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../../helpers/services.js';
import { vendorCodec } from '../codecs/helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read event fields directly and assert on them
type Body = Record<string, any>;

const TH_SENSOR = vendorCodec('th-sensor-ttn.js');
const TH_FRAME = '010ce409297b00';
const TH_DATA = {
  version: 1,
  batteryVoltage: 3.3,
  temperature: 23.45,
  humidity: 61.5,
  buttonPressed: false,
  alarms: { high: false, low: false },
};
const THROWING = `function decodeUplink(input) {
  if (input.bytes[0] === 0xff) throw new RangeError('unknown frame type ' + input.bytes[0]);
  return { data: { first: input.bytes[0] } };
}`;
const RUNAWAY = 'function decodeUplink(input) { for (;;) {} }';

interface Fixture {
  storage: Storage;
  applicationId: string;
  /** Creates a device (with a profile holding `codec`, if given) and returns its DevEUI. */
  device(codec?: CodecSettings): Promise<string>;
  /** Appends an `up` event with this payload (hex) on FPort 1. */
  up(devEui: string, payloadHex: string, fCnt?: number): Promise<number>;
  upEvent(devEui: string, id: number): Promise<StoredEvent>;
  logEvents(devEui: string): Promise<StoredEvent[]>;
}

type Engine = 'sqlite' | 'postgresql';

/** A fresh database of the engine; undefined when PostgreSQL is not there (the test skipped). */
async function fixture(t: TestContext, engine: Engine): Promise<Fixture | undefined> {
  let database: GaletDatabase;
  if (engine === 'sqlite') {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-stage-'));
    database = await openDatabase({ dataDir });
    t.after(async () => {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    });
  } else {
    const url = await postgresTestUrl();
    if (url === undefined) {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
      return undefined;
    }
    database = await openDatabase({ url });
    t.after(async () => {
      await database.close();
      await dropPostgresTestDatabase(url);
    });
  }
  const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
  const application = await storage.applications.create({ name: 'Saint-Galmier' });
  const events = async (devEui: string) => storage.events.listForDevice(devEui, { limit: 1000 });
  return {
    storage,
    applicationId: application.id,
    async device(codec) {
      const devEui = randomBytes(8).toString('hex');
      const profile =
        codec === undefined
          ? undefined
          : await storage.deviceProfiles.create({ name: `profile ${devEui}`, codec });
      await storage.devices.create({
        devEui,
        joinEui: '70b3d57ed0000000',
        name: `device ${devEui}`,
        applicationId: application.id,
        macVersion: '1.0.4',
        deviceClass: 'A',
        activation: 'otaa',
        appKey: randomBytes(16),
        ...(profile === undefined ? {} : { deviceProfileId: profile.id }),
      });
      return devEui;
    },
    async up(devEui, payloadHex, fCnt = 0) {
      const time = new Date(Date.UTC(2026, 10, 29, 12, 0, fCnt)).toISOString();
      return storage.events.append({
        devEui,
        applicationId: application.id,
        type: 'up',
        time,
        body: {
          deduplicationId: randomBytes(16).toString('hex'),
          time,
          deviceInfo: { devEui, applicationId: application.id },
          fCnt,
          fPort: 1,
          data: Buffer.from(payloadHex, 'hex').toString('base64'),
        },
      });
    },
    async upEvent(devEui, id) {
      const found = (await events(devEui)).find((event) => event.id === id);
      assert.ok(found, `event ${id} of ${devEui}`);
      return found;
    },
    async logEvents(devEui) {
      return (await events(devEui)).filter((event) => event.type === 'log').reverse();
    },
  };
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function startStage(
  t: TestContext,
  storage: Storage,
  settings: Parameters<typeof startApplicationStage>[2] = {},
): Promise<RunningApplicationStage> {
  const running = await startApplicationStage(storage, silentLogger, {
    pollIntervalMs: 20,
    ...settings,
  });
  t.after(() => running.close());
  return running;
}

for (const engine of ['sqlite', 'postgresql'] as const) {
  describe(`application stage on ${engine}`, () => {
    // What depends on the engine (event writes, the replayed batch's read) runs on both; the
    // rest, which only exercises the stage and the codec process, on SQLite alone.
    const sqliteOnly = engine === 'sqlite' ? it : () => undefined;
    it('writes a vendor codec decode into the stored up event and tells its listeners', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const devEui = await f.device({ type: 'javascript', source: TH_SENSOR });
      const plain = await f.device();
      const { stage } = await startStage(t, f.storage);
      const heard: DecodedUplink[] = [];
      stage.onDecoded(async (uplink) => {
        heard.push(uplink);
      });
      let advances = 0;
      stage.onAdvanced(() => {
        advances += 1;
      });
      const id = await f.up(devEui, TH_FRAME);
      const untouched = await f.up(plain, TH_FRAME);
      stage.wake();
      await waitUntil('the stage passes both uplinks', () => stage.readyUpTo >= untouched);

      const up = await f.upEvent(devEui, id);
      assert.deepEqual((up.body as { object: unknown }).object, TH_DATA);
      assert.equal((up.body as { fCnt: number }).fCnt, 0, 'the rest of the event is kept');
      const other = await f.upEvent(plain, untouched);
      assert.equal('object' in (other.body as object), false, 'a device without codec: no object');
      assert.deepEqual(
        heard.map((uplink) => ({ ...uplink })),
        [
          {
            eventId: id,
            devEui,
            applicationId: f.applicationId,
            time: up.time,
            object: TH_DATA,
          },
        ],
      );
      assert.ok(advances >= 1);
      assert.equal(stage.counters.decodes['ok'], 1);
      assert.deepEqual(await f.logEvents(devEui), []);
    });

    sqliteOnly(
      'moves past events unread while no profile has a codec, and decodes those after one appears',
      async (t) => {
        const f = await fixture(t, engine);
        if (f === undefined) return;
        const plain = await f.device();
        // The codec lookup is not cached here, so that the profile made below counts at once.
        const { stage } = await startStage(t, f.storage, { codecCacheTtlMs: 0 });
        const skipped = await f.up(plain, TH_FRAME);
        stage.wake();
        await waitUntil('the stage passes the uplink', () => stage.readyUpTo >= skipped);
        assert.equal(stage.counters.events, 0, 'no event was read: nothing could be decoded');
        const devEui = await f.device({ type: 'javascript', source: TH_SENSOR });
        const id = await f.up(devEui, TH_FRAME, 1);
        stage.wake();
        await waitUntil('the stage decodes the next uplink', () => stage.readyUpTo >= id);
        assert.deepEqual((await f.upEvent(devEui, id)).body, {
          ...((await f.upEvent(devEui, id)).body as object),
          object: TH_DATA,
        });
        assert.equal(stage.counters.decodes['ok'], 1);
      },
    );

    sqliteOnly(
      'drops the fields the application never keeps before storing the object',
      async (t) => {
        const f = await fixture(t, engine);
        if (f === undefined) return;
        await f.storage.applications.update(f.applicationId, {
          dropFields: ['batteryVoltage', 'alarms.low'],
        });
        const devEui = await f.device({ type: 'javascript', source: TH_SENSOR });
        const { stage } = await startStage(t, f.storage);
        const heard: DecodedUplink[] = [];
        stage.onDecoded(async (uplink) => {
          heard.push(uplink);
        });
        const id = await f.up(devEui, TH_FRAME);
        stage.wake();
        await waitUntil('the stage passes the uplink', () => stage.readyUpTo >= id);
        const { batteryVoltage: _dropped, ...kept } = TH_DATA;
        const expected = { ...kept, alarms: { high: false } };
        assert.deepEqual((await f.upEvent(devEui, id)).body, {
          ...((await f.upEvent(devEui, id)).body as object),
          object: expected,
        });
        assert.deepEqual(heard[0]?.object, expected, 'listeners (measurements) get the same');
        const stored = JSON.stringify((await f.upEvent(devEui, id)).body);
        assert.equal(stored.includes('batteryVoltage'), false);
      },
    );

    it('logs a throwing codec as an UPLINK_CODEC log event and goes on with the next device', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const throwing = await f.device({ type: 'javascript', source: THROWING });
      const lpp = await f.device({ type: 'cayenne-lpp' });
      const { stage } = await startStage(t, f.storage);
      const bad = await f.up(throwing, 'ff01', 7);
      const good = await f.up(throwing, '0102', 8);
      // Cayenne LPP: channel 3, temperature 27.2 C.
      const lppId = await f.up(lpp, '03670110', 9);
      stage.wake();
      await waitUntil('the stage passes the batch', () => stage.readyUpTo >= lppId);

      const [log, ...more] = await f.logEvents(throwing);
      assert.equal(more.length, 0);
      const body = log?.body as Body;
      assert.equal(body.level, 'ERROR');
      assert.equal(body.code, 'UPLINK_CODEC');
      assert.match(body.description, /RangeError: unknown frame type 255/);
      assert.match(body.description, /CODEC_THREW/);
      const badUp = await f.upEvent(throwing, bad);
      assert.equal(body.context.deduplicationId, (badUp.body as Body).deduplicationId);
      assert.equal(body.context.fCnt, 7);
      assert.deepEqual(body.deviceInfo, (badUp.body as Body).deviceInfo);
      assert.equal('object' in (badUp.body as object), false);
      assert.deepEqual(((await f.upEvent(throwing, good)).body as Body).object, { first: 1 });
      assert.deepEqual(((await f.upEvent(lpp, lppId)).body as Body).object, {
        temperatureSensor: { '3': 27.2 },
      });
      const counters = stage.counters;
      assert.equal(counters.decodes['CODEC_THREW'], 1);
      assert.equal(counters.decodes['ok'], 2);
      assert.equal(counters.logEvents, 1);
    });

    sqliteOnly('does not let a runaway codec hold back the other devices', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const runaway = await f.device({ type: 'javascript', source: RUNAWAY });
      const sensor = await f.device({ type: 'javascript', source: TH_SENSOR });
      const { stage } = await startStage(t, f.storage, { codecs: { timeoutMs: 50 } });
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push(await f.up(runaway, '00', i));
        ids.push(await f.up(sensor, TH_FRAME, i));
      }
      const startedAt = Date.now();
      stage.wake();
      await waitUntil('the stage passes every uplink', () => stage.readyUpTo >= ids.at(-1)!);
      const elapsedMs = Date.now() - startedAt;
      // 3 runaway frames at 50 ms each (plus the batch's first try): far below the 10 s watchdog.
      assert.ok(elapsedMs < 5000, `took ${elapsedMs} ms`);
      for (const [i, id] of ids.entries()) {
        if (i % 2 === 1) {
          assert.deepEqual(((await f.upEvent(sensor, id)).body as Body).object, TH_DATA);
        }
      }
      const logs = await f.logEvents(runaway);
      assert.equal(logs.length, 3);
      for (const log of logs) assert.match((log.body as Body).description, /CODEC_TIMEOUT/);
      assert.equal(stage.counters.decodes['CODEC_TIMEOUT'], 3);
      assert.equal(stage.counters.decodes['ok'], 3);
    });

    sqliteOnly('resumes from its saved position after a restart', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const devEui = await f.device({ type: 'javascript', source: TH_SENSOR });
      const first = await startStage(t, f.storage);
      const before = await f.up(devEui, TH_FRAME, 1);
      first.stage.wake();
      await waitUntil('the first uplink', () => first.stage.readyUpTo >= before);
      await first.close();
      assert.equal(await f.storage.consumerCursors.get('application-stage'), before);

      const after = await f.up(devEui, TH_FRAME, 2);
      const second = await startStage(t, f.storage);
      assert.equal(second.stage.readyUpTo, before, 'starts where the first one stopped');
      second.stage.wake();
      await waitUntil('the second uplink', () => second.stage.readyUpTo >= after);
      assert.equal(second.stage.counters.decodes['ok'], 1, 'only the new uplink is decoded');
      assert.equal(second.stage.counters.alreadyDecoded, 0);
      assert.deepEqual(((await f.upEvent(devEui, after)).body as Body).object, TH_DATA);
    });

    it('handles a batch again without decoding twice or logging a failure twice', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const sensor = await f.device({ type: 'javascript', source: TH_SENSOR });
      const throwing = await f.device({ type: 'javascript', source: THROWING });
      const ok = await f.up(sensor, TH_FRAME);
      const bad = await f.up(throwing, 'ff');
      const codecs = new PayloadCodecs();
      t.after(() => codecs.close());
      const lookup = new DeviceCodecLookup(f.storage);
      // Two runs over the same events from position 0: what a crash before the position was
      // saved leads to. The second finds the object and the log event stored by the first.
      const runs: ApplicationStage[] = [];
      const listened: number[] = [];
      for (let run = 0; run < 2; run++) {
        const stage = new ApplicationStage({
          events: f.storage.events,
          cursor: memoryCursor(0),
          codecsOf: (devEuis) => lookup.codecsOf(devEuis),
          decodeMany: (codec, inputs) => codecs.decodeMany(codec, inputs),
          pollIntervalMs: 20,
        });
        stage.onDecoded(async (uplink) => {
          listened.push(uplink.eventId);
        });
        await stage.start();
        await waitUntil(`run ${run}`, () => stage.readyUpTo >= bad);
        await stage.close();
        runs.push(stage);
      }
      assert.equal(runs[0]!.counters.decodes['ok'], 1);
      assert.equal(runs[1]!.counters.decodes['ok'], 0, 'the stored object is reused');
      assert.equal(runs[1]!.counters.alreadyDecoded, 1);
      assert.deepEqual(listened, [ok, ok], 'listeners hear the uplink again (at least once)');
      assert.equal(runs[1]!.counters.decodes['CODEC_THREW'], 1, 'the failure is decoded again');
      assert.equal((await f.logEvents(throwing)).length, 1, 'but logged once');
      // The log event itself is not an uplink: the stage passes it.
      assert.ok(runs[1]!.readyUpTo > bad);
    });

    sqliteOnly('retries a batch whose listener fails, and only then moves on', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const sensor = await f.device({ type: 'cayenne-lpp' });
      const { stage } = await startStage(t, f.storage);
      let failuresLeft = 2;
      stage.onDecoded(async () => {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error('measurement store unavailable');
        }
      });
      const id = await f.up(sensor, '03670110');
      stage.wake();
      await waitUntil('the uplink after two failed tries', () => stage.readyUpTo >= id);
      assert.equal(failuresLeft, 0);
      assert.equal(stage.counters.failedBatches, 2);
      assert.equal(stage.counters.alreadyDecoded, 2, 'the retries reuse the stored object');
    });

    sqliteOnly('decodes with a changed profile codec once the change is announced', async (t) => {
      const f = await fixture(t, engine);
      if (f === undefined) return;
      const devEui = await f.device({ type: 'javascript', source: THROWING });
      const device = await f.storage.devices.get(devEui);
      const running = await startStage(t, f.storage, { codecCacheTtlMs: 60_000 });
      const first = await f.up(devEui, '05');
      running.stage.wake();
      await waitUntil('first', () => running.stage.readyUpTo >= first);
      assert.deepEqual(((await f.upEvent(devEui, first)).body as Body).object, { first: 5 });
      await f.storage.deviceProfiles.update(device!.deviceProfileId!, {
        codec: { type: 'cayenne-lpp' },
      });
      running.codecs.profileChanged(device!.deviceProfileId!);
      const second = await f.up(devEui, '03670110');
      running.stage.wake();
      await waitUntil('second', () => running.stage.readyUpTo >= second);
      assert.deepEqual(((await f.upEvent(devEui, second)).body as Body).object, {
        temperatureSensor: { '3': 27.2 },
      });
    });
  });
}
