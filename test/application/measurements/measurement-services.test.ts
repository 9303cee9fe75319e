/**
 * The running application services record each decoded uplink's values as measurements (the
 * stage decodes with the device's codec; the store drops the application's fields).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { silentLogger } from '../../../src/logger.js';
import { startApplicationServices } from '../../../src/server/application-services.js';
import { Closers } from '../../../src/server/closers.js';
import { createStorage, openDatabase, SecretBox } from '../../../src/storage/index.js';
import { storedMeter } from '../../helpers/stored-device.js';

const CODEC = `function decodeUplink(input) {
  return { data: { temperature: ((input.bytes[0] << 8) | input.bytes[1]) / 10, serial: 'S-42',
    flags: { open: (input.bytes[2] & 1) === 1 } } };
}`;

it('stores the values of every decoded uplink, without the dropped fields', async (t) => {
  const database = await openDatabase({ url: ':memory:' });
  const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
  const closers = new Closers(silentLogger);
  t.after(async () => {
    await closers.closeAll();
    await database.close();
  });
  const application = await storage.applications.create({
    name: 'meters',
    dropFields: ['serial'],
  });
  const profile = await storage.deviceProfiles.create({
    name: 'meter',
    codec: { type: 'javascript', source: CODEC },
  });
  const { devEui } = await storedMeter(storage, {
    applicationId: application.id,
    deviceProfileId: profile.id,
  });
  const time = '2026-11-29T12:00:00.000Z';
  const eventId = await storage.events.append({
    devEui,
    applicationId: application.id,
    type: 'up',
    time,
    body: { time, fCnt: 1, fPort: 1, data: Buffer.from([0x00, 0xeb, 0x01]).toString('base64') },
  });
  const services = await startApplicationServices({
    storage,
    logger: silentLogger,
    closers,
    onEventsAppended: () => () => undefined,
    settings: { feedPollIntervalMs: 20 },
  });
  const deadline = Date.now() + 15_000;
  while (services.readyUpTo() < eventId && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const points = await storage.measurements.list({
    devEui,
    from: '2026-11-29T00:00:00Z',
    to: '2026-11-30T00:00:00Z',
    limit: 100,
  });
  assert.deepEqual(
    points.map(({ field, value, eventId: id }) => ({ field, value, id })),
    [
      { field: 'flags.open', value: 1, id: eventId },
      { field: 'temperature', value: 23.5, id: eventId },
    ],
  );
  const metrics = services.metricSources['measurements']?.();
  assert.equal(metrics?.['rowsInserted'], 2);
  assert.equal(metrics?.['refused'], 0);
});
