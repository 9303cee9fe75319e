import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runDemo } from '../../src/server/demo.js';
import { removeDir, startTestGalet, type TestGalet } from '../helpers/galet.js';

describe('galet start --demo', () => {
  let galet: TestGalet;

  before(async () => {
    galet = await startTestGalet();
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
  });

  it('registers a demo commune and shows its simulated sensors joining and sending data', async () => {
    const out = new PassThrough();
    let printed = '';
    out.on('data', (chunk: Buffer) => {
      printed += chunk.toString('utf8');
    });
    const stop = await runDemo(galet, { out, devices: 4, gateways: 2, uplinkIntervalMs: 500 });
    try {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && (printed.match(/ up /g) ?? []).length < 4) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await stop();
    }
    assert.match(printed, /Demo: 4 simulated sensors and 2 gateways/);
    assert.equal((printed.match(/ join /g) ?? []).length >= 4, true, printed);
    assert.ok((printed.match(/ up /g) ?? []).length >= 4, printed);
    assert.match(printed, /road-frost-1 .*roadSurfaceTemperatureC/);
    const devices = await galet.request('GET', '/api/v1/devices');
    assert.equal(devices.json.devices.length, 4);
    const events = await galet.request(
      'GET',
      `/api/v1/devices/${devices.json.devices[0].devEui}/events`,
    );
    assert.ok(events.json.events.some((e: { event: string }) => e.event === 'up'));
  });
});
