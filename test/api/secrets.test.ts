import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { runDemo } from '../../src/server/demo.js';
import { demoFleet } from '../../src/server/demo-fleet.js';
import { removeDir, startTestGalet } from '../helpers/galet.js';

describe('secrets', () => {
  it('never appear in logs, events or the database file in clear', async () => {
    const logLines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = pino({ level: 'debug' }, sink);
    const galet = await startTestGalet({ logger });
    const fleet = demoFleet(4);
    try {
      const out = new PassThrough();
      out.resume();
      const stop = await runDemo(galet, { out, devices: 4, gateways: 2, uplinkIntervalMs: 300 });
      try {
        const deadline = Date.now() + 10_000;
        const devEui = fleet[0]!.devEui;
        while (Date.now() < deadline) {
          const events = await galet.request('GET', `/api/v1/devices/${devEui}/events?limit=100`);
          if (events.json.events.filter((e: { event: string }) => e.event === 'up').length >= 2)
            break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await stop();
      }
      const events: string[] = [];
      for (const device of fleet) {
        const got = await galet.request(
          'GET',
          `/api/v1/devices/${device.devEui}/events?limit=1000`,
        );
        events.push(JSON.stringify(got.json));
        events.push(
          JSON.stringify((await galet.request('GET', `/api/v1/devices/${device.devEui}`)).json),
        );
      }
      assert.ok(events.join('').includes('"event":"up"'), 'traffic happened');
      assert.ok(logLines.length > 0, 'something was logged');
      const secrets = fleet.flatMap((device) => [
        device.appKey,
        ...(device.nwkKey === undefined ? [] : [device.nwkKey]),
      ]);
      const database = await readFile(join(galet.dataDir, 'galet.sqlite'));
      const wal = await readFile(join(galet.dataDir, 'galet.sqlite-wal')).catch(() =>
        Buffer.alloc(0),
      );
      for (const secret of secrets) {
        assert.ok(!logLines.join('').includes(secret), 'a root key was logged');
        assert.ok(!events.join('').includes(secret), 'a root key reached the API');
        const bytes = Buffer.from(secret, 'hex');
        assert.equal(database.indexOf(bytes), -1, 'a root key is stored in clear');
        assert.equal(wal.indexOf(bytes), -1, 'a root key is in the WAL in clear');
      }
    } finally {
      await galet.stop();
      await removeDir(galet.dataDir);
    }
  });
});
