// Codecs through the public surface of a real all-in-one Galet: profiles with a codec (checked
// on write, kept out of lists), the codec test bench, a real uplink from a simulated device
// decoded by the application stage, and a downlink queued as an object.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { vendorCodec } from '../application/codecs/helpers.js';
import { ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

const GATEWAY = 'aa555a00000000c1';
const TH_SENSOR = vendorCodec('th-sensor-ttn.js');
const TH_DATA = {
  version: 1,
  batteryVoltage: 3.3,
  temperature: 23.45,
  humidity: 61.5,
  buttonPressed: false,
  alarms: { high: false, low: false },
};

describe('device profile codecs', () => {
  let net: ScenarioNetwork;
  let sensorProfile: string;

  before(async () => {
    net = await ScenarioNetwork.start([{ gatewayId: GATEWAY }]);
    sensorProfile = await net.createDeviceProfile('TH-20', {
      codec: { type: 'javascript', source: TH_SENSOR },
    });
  });
  after(async () => {
    await net?.close();
  });

  const request = (method: string, path: string, body?: unknown) =>
    net.galet.request(method, `/api/v1${path}`, body);

  it('refuses a codec that does not load, with the codec error', async () => {
    const syntax = await request('POST', '/device-profiles', {
      name: 'broken',
      codec: { type: 'javascript', source: 'function decodeUplink(input) { return {' },
    });
    assert.equal(syntax.status, 400);
    assert.equal(syntax.json.error, 'BAD_REQUEST');
    assert.match(syntax.json.message, /^codec\.source does not load: .*codec\.js:1/);
    assert.deepEqual(syntax.json.details, { code: 'CODEC_COMPILE_ERROR' });

    const nothing = await request('PATCH', `/device-profiles/${sensorProfile}`, {
      codec: { type: 'javascript', source: 'var x = 1;' },
    });
    assert.equal(nothing.status, 400);
    assert.deepEqual(nothing.json.details, { code: 'CODEC_FUNCTION_MISSING' });

    const noSource = await request('POST', '/device-profiles', {
      name: 'no source',
      codec: { type: 'javascript' },
    });
    assert.equal(noSource.status, 400);
    assert.match(noSource.json.message, /needs its source/);
    const unchanged = await request('GET', `/device-profiles/${sensorProfile}`);
    assert.equal(unchanged.json.codec.source, TH_SENSOR, 'a refused update changes nothing');
  });

  it('shows the source in the profile and only its size in lists', async () => {
    const one = await request('GET', `/device-profiles/${sensorProfile}`);
    assert.deepEqual(one.json.codec, { type: 'javascript', source: TH_SENSOR });
    const list = await request('GET', '/device-profiles?limit=100');
    const listed = list.json.deviceProfiles.find((p: { id: string }) => p.id === sensorProfile);
    assert.deepEqual(listed.codec, { type: 'javascript', sourceChars: TH_SENSOR.length });
    const lpp = await net.createDeviceProfile('LPP', { codec: { type: 'cayenne-lpp' } });
    const cleared = await request('PATCH', `/device-profiles/${lpp}`, { codec: { type: 'none' } });
    assert.equal(cleared.status, 200);
    assert.equal(cleared.json.codec, undefined, '"none" is stored as no codec');
  });

  it('runs the profile codec on the test bench', async () => {
    const decoded = await request('POST', `/device-profiles/${sensorProfile}/codec/decode`, {
      fPort: 1,
      hex: '010ce409297b00',
    });
    assert.equal(decoded.status, 200);
    assert.deepEqual(decoded.json, { ok: true, data: TH_DATA, warnings: [] });
    const base64 = await request('POST', `/device-profiles/${sensorProfile}/codec/decode`, {
      fPort: 1,
      data: Buffer.from('010ce409297b00', 'hex').toString('base64'),
    });
    assert.deepEqual(base64.json, decoded.json);
    const refused = await request('POST', `/device-profiles/${sensorProfile}/codec/decode`, {
      fPort: 1,
      hex: '09',
    });
    assert.equal(refused.status, 200, 'the outcome of the codec is the answer');
    assert.equal(refused.json.ok, false);
    assert.equal(refused.json.error.code, 'CODEC_REPORTED_ERRORS');
    const both = await request('POST', `/device-profiles/${sensorProfile}/codec/decode`, {
      fPort: 1,
      hex: '01',
      data: 'AQ==',
    });
    assert.equal(both.status, 400);

    const encoded = await request('POST', `/device-profiles/${sensorProfile}/codec/encode`, {
      data: { intervalMinutes: 15 },
    });
    assert.equal(encoded.status, 200);
    assert.deepEqual(encoded.json, {
      ok: true,
      fPort: 10,
      hex: '01000f',
      data: Buffer.from('01000f', 'hex').toString('base64'),
      warnings: [],
    });
    const plain = await net.createDeviceProfile('no codec', {});
    const none = await request('POST', `/device-profiles/${plain}/codec/encode`, { data: {} });
    assert.equal(none.status, 409);
    const missing = await request('POST', '/device-profiles/nope/codec/decode', {
      fPort: 1,
      hex: '00',
    });
    assert.equal(missing.status, 404);
  });

  it('decodes a real uplink into the stored up event, and queues a downlink given as an object', async () => {
    const device = await net.addAbpDevice('00000000000c0de1', '1.0.3', 0x260c0de1, {
      deviceProfileId: sensorProfile,
    });
    await net.uplink(device, { fPort: 1, payload: Buffer.from('010ce409297b00', 'hex') });
    const up = await net.waitForEvent(
      device.devEui,
      (event) => event.event === 'up' && event.object !== undefined,
      'decoded up event',
    );
    assert.deepEqual(up.object, TH_DATA);
    assert.equal(up.data, Buffer.from('010ce409297b00', 'hex').toString('base64'));

    // A frame the codec refuses: a log event, and the stage goes on.
    await net.uplink(device, { fPort: 1, payload: Uint8Array.of(0x01) });
    const log = await net.waitForEvent(device.devEui, (e) => e.event === 'log', 'log event');
    assert.equal(log.code, 'UPLINK_CODEC');
    assert.equal(log.level, 'ERROR');
    await waitFor('metrics', async () => {
      const metrics = await net.metrics();
      return (
        metrics.get('galet_application_stage_decodes_total{kind="ok"}') === 1 &&
        (metrics.get('galet_application_stage_log_events_total') ?? 0) >= 1 &&
        metrics.get('galet_application_stage_lag_events') === 0 &&
        (metrics.get('galet_application_stage_position') ?? 0) >= log.id
      );
    });

    const queued = await request('POST', `/devices/${device.devEui}/queue`, {
      fPort: 10,
      object: { intervalMinutes: 15 },
    });
    assert.equal(queued.status, 201, JSON.stringify(queued.json));
    const queue = await request('GET', `/devices/${device.devEui}/queue`);
    assert.deepEqual(
      queue.json.items.map((item: { fPort: number; data: string }) => [item.fPort, item.data]),
      [[10, Buffer.from('01000f', 'hex').toString('base64')]],
    );
    const bad = await request('POST', `/devices/${device.devEui}/queue`, {
      fPort: 10,
      object: { intervalMinutes: 0 },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.json.message, /intervalMinutes must be an integer 1-1440/);
    assert.equal(bad.json.details.code, 'CODEC_REPORTED_ERRORS');
    const neither = await request('POST', `/devices/${device.devEui}/queue`, { fPort: 10 });
    assert.equal(neither.status, 400);
  });
});
