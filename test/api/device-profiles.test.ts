import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ApiNetwork, buildApi } from '../../src/api/server.js';
import { EU868 } from '../../src/lorawan/regions/index.js';
import { defaultNetworkConfig } from '../../src/network/network-server.js';
import {
  createStorage,
  defaultDeviceProfileSettings,
  openDatabase,
  SecretBox,
} from '../../src/storage/index.js';
import { removeDir, startTestGalet, type TestGalet } from '../helpers/galet.js';

describe('device profiles API', () => {
  let galet: TestGalet;
  let applicationId: string;

  before(async () => {
    galet = await startTestGalet();
    applicationId = (await galet.request('POST', '/api/v1/applications', { name: 'Commune' })).json
      .id;
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
  });

  async function newProfile(body: Record<string, unknown> = {}): Promise<string> {
    const created = await galet.request('POST', '/api/v1/device-profiles', {
      name: 'profile',
      ...body,
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    return created.json.id;
  }

  function otaaDevice(devEui: string, extra: Record<string, unknown> = {}) {
    return {
      devEui,
      joinEui: '70b3d57ed0000000',
      name: `device ${devEui}`,
      applicationId,
      macVersion: '1.0.4',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
      ...extra,
    };
  }

  it('creates a profile with every default and returns it flat', async () => {
    const created = await galet.request('POST', '/api/v1/device-profiles', {
      name: 'Water meters',
    });
    assert.equal(created.status, 201);
    const { id, createdAt, updatedAt, ...rest } = created.json;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.match(createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(updatedAt, createdAt);
    assert.deepEqual(rest, {
      name: 'Water meters',
      region: 'EU868',
      tenantId: null,
      ...defaultDeviceProfileSettings(),
    });
    const got = await galet.request('GET', `/api/v1/device-profiles/${id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, created.json);
    const listed = await galet.request('GET', '/api/v1/device-profiles');
    assert.ok(listed.json.deviceProfiles.some((p: { id: string }) => p.id === id));
  });

  it('takes every setting and lists with paging', async () => {
    const body = {
      name: 'Class C valves',
      region: 'EU868',
      macVersion: '1.1.0',
      adr: { enabled: false, minDr: 1, maxDr: 4, installationMarginDb: 7.5 },
      rx1DelaySeconds: 2,
      rx1DrOffset: 1,
      rx2Dr: 3,
      rx2FrequencyHz: 869_525_000,
      extraChannels: [
        { frequencyHz: 867_100_000, minDr: 0, maxDr: 5 },
        { frequencyHz: 867_300_000, minDr: 0, maxDr: 5 },
      ],
      // Channel 4 is the second extra channel.
      dlChannels: [
        { index: 0, frequencyHz: 868_500_000 },
        { index: 4, frequencyHz: 869_525_000 },
      ],
      maxDutyCycle: 4,
      devStatusIntervalSeconds: 3600,
      confirmedDownlink: { maxAttempts: 5, classCTimeoutSeconds: 60 },
      adrAckLimitExp: 6,
      adrAckDelayExp: 5,
      rejoin: { maxTimeN: 10, maxCountN: 8 },
      uplinkIntervalSeconds: 900,
    };
    const created = await galet.request('POST', '/api/v1/device-profiles', body);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const { id, createdAt, updatedAt, ...rest } = created.json;
    assert.deepEqual(rest, { ...body, tenantId: null });
    const all = (await galet.request('GET', '/api/v1/device-profiles?limit=1000')).json
      .deviceProfiles;
    assert.ok(all.length >= 2);
    const page = await galet.request('GET', '/api/v1/device-profiles?limit=1&offset=1');
    assert.deepEqual(page.json.deviceProfiles, [all[1]]);
    assert.equal((await galet.request('GET', '/api/v1/device-profiles?limit=0')).status, 400);
  });

  it('refuses out-of-range values, unknown fields and bad combinations with a clear 400', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /body must have required property 'name'/],
      [{ name: '' }, /body\.name must NOT have fewer than 1 characters/],
      [{ name: 'x', colour: 'blue' }, /body has an unknown field "colour"/],
      [{ name: 'x', adr: { enabled: true, speed: 3 } }, /body\.adr has an unknown field "speed"/],
      [{ name: 'x', region: 'US915' }, /body\.region must be one of "EU868"/],
      [{ name: 'x', macVersion: '1.2' }, /body\.macVersion must be one of "1\.0\.2"/],
      [{ name: 'x', adr: { minDr: 16 } }, /body\.adr\.minDr must be <= 15/],
      [{ name: 'x', adr: { enabled: 'maybe' } }, /body\.adr\.enabled must be true or false/],
      [{ name: 'x', adr: { minDr: 5, maxDr: 2 } }, /adr\.minDr \(5\) must not be above/],
      [{ name: 'x', adr: { installationMarginDb: 31 } }, /installationMarginDb must be <= 30/],
      [{ name: 'x', rx1DelaySeconds: 16 }, /body\.rx1DelaySeconds must be <= 15/],
      [{ name: 'x', rx1DrOffset: 6 }, /body\.rx1DrOffset must be <= 5/],
      [{ name: 'x', rx2FrequencyHz: 5 }, /body\.rx2FrequencyHz must be >= 100000000/],
      [{ name: 'x', rx2FrequencyHz: 869_525_001 }, /multiple of 100 Hz/],
      [{ name: 'x', rx2FrequencyHz: 915_000_000 }, /rx2FrequencyHz: 915000000 Hz is outside EU868/],
      [{ name: 'x', rx2Dr: 9 }, /rx2Dr: DR9 is not defined in EU868/],
      [{ name: 'x', maxDutyCycle: 16 }, /body\.maxDutyCycle must be <= 15/],
      [{ name: 'x', devStatusIntervalSeconds: 30 }, /0 \(never\) or an integer from 60/],
      [{ name: 'x', devStatusIntervalSeconds: 31_536_001 }, /must be <= 31536000/],
      [{ name: 'x', confirmedDownlink: { maxAttempts: 11 } }, /maxAttempts must be <= 10/],
      [
        { name: 'x', confirmedDownlink: { classCTimeoutSeconds: 0 } },
        /classCTimeoutSeconds must be >= 1/,
      ],
      [{ name: 'x', adrAckLimitExp: 16 }, /body\.adrAckLimitExp must be <= 15/],
      [{ name: 'x', rejoin: { maxTimeN: 1 } }, /rejoin needs both maxTimeN and maxCountN/],
      [{ name: 'x', uplinkIntervalSeconds: 604_801 }, /uplinkIntervalSeconds must be <= 604800/],
      [{ name: 'x', uplinkIntervalSeconds: 1.5 }, /uplinkIntervalSeconds must be an integer/],
      [
        { name: 'x', extraChannels: [{ minDr: 0 }] },
        /body\.extraChannels\[0\] must have required property 'frequencyHz'/,
      ],
      [
        { name: 'x', extraChannels: [{ frequencyHz: 868_100_000 }] },
        /extraChannels\[0\]\.frequencyHz: 868100000 Hz is default channel 0 of EU868/,
      ],
      [
        { name: 'x', extraChannels: [{ frequencyHz: 902_300_000 }] },
        /extraChannels\[0\]\.frequencyHz: 902300000 Hz is outside EU868/,
      ],
      [
        {
          name: 'x',
          extraChannels: Array.from({ length: 14 }, (_, i) => ({
            frequencyHz: 867_000_000 + i * 100_000,
          })),
        },
        /body\.extraChannels must NOT have more than 13 items/,
      ],
      [
        { name: 'x', dlChannels: [{ index: 0 }] },
        /body\.dlChannels\[0\] must have required property 'frequencyHz'/,
      ],
      [
        { name: 'x', dlChannels: [{ index: 0, frequencyHz: 868_500_000, minDr: 0 }] },
        /body\.dlChannels\[0\] has an unknown field "minDr"/,
      ],
      [
        { name: 'x', dlChannels: [{ index: 16, frequencyHz: 868_500_000 }] },
        /body\.dlChannels\[0\]\.index must be <= 15/,
      ],
      [
        { name: 'x', dlChannels: [{ index: 0, frequencyHz: 902_300_000 }] },
        /dlChannels\[0\]\.frequencyHz: 902300000 Hz is outside EU868/,
      ],
      [
        { name: 'x', dlChannels: [{ index: 0, frequencyHz: 868_500_010 }] },
        /dlChannels\[0\]\.frequencyHz must be a multiple of 100 Hz/,
      ],
      [
        {
          name: 'x',
          dlChannels: [
            { index: 2, frequencyHz: 868_500_000 },
            { index: 2, frequencyHz: 868_700_000 },
          ],
        },
        /dlChannels\[1\]\.index 2 is already given a frequency by another entry/,
      ],
      [
        {
          name: 'x',
          extraChannels: [{ frequencyHz: 867_100_000 }],
          dlChannels: [{ index: 4, frequencyHz: 868_500_000 }],
        },
        /dlChannels\[0\]\.index: channel 4 is not defined: the default channels and extraChannels define channels 0 to 3/,
      ],
      [
        {
          name: 'x',
          dlChannels: Array.from({ length: 17 }, (_, index) => ({
            index,
            frequencyHz: 868_500_000,
          })),
        },
        /body\.dlChannels must NOT have more than 16 items/,
      ],
    ];
    const before = (await galet.request('GET', '/api/v1/device-profiles?limit=1000')).json
      .deviceProfiles.length;
    for (const [body, message] of cases) {
      const answer = await galet.request('POST', '/api/v1/device-profiles', body);
      assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(answer.json)}`);
      assert.equal(answer.json.error, 'BAD_REQUEST');
      assert.match(answer.json.message, message, JSON.stringify(body));
    }
    const after = (await galet.request('GET', '/api/v1/device-profiles?limit=1000')).json
      .deviceProfiles.length;
    assert.equal(after, before, 'nothing was stored');
  });

  it('answers 404 for an unknown profile', async () => {
    for (const method of ['GET', 'DELETE']) {
      const answer = await galet.request(method, '/api/v1/device-profiles/no-such-profile');
      assert.equal(answer.status, 404);
      assert.deepEqual(answer.json, {
        error: 'NOT_FOUND',
        message: 'device profile no-such-profile not found',
      });
    }
    const patch = await galet.request('PATCH', '/api/v1/device-profiles/no-such-profile', {
      rx2Dr: 1,
    });
    assert.equal(patch.status, 404);
  });

  it('merges a PATCH field by field and validates the result the same way', async () => {
    const id = await newProfile({
      name: 'meters',
      adr: { maxDr: 4 },
      rejoin: { maxTimeN: 1, maxCountN: 2 },
      uplinkIntervalSeconds: 3600,
    });
    const patched = await galet.request('PATCH', `/api/v1/device-profiles/${id}`, {
      name: 'meters (2025)',
      adr: { minDr: 1 },
      confirmedDownlink: { classCTimeoutSeconds: 120 },
      rejoin: { maxCountN: 5 },
      uplinkIntervalSeconds: null,
      extraChannels: [{ frequencyHz: 867_500_000 }],
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    assert.equal(patched.json.name, 'meters (2025)');
    assert.deepEqual(patched.json.adr, {
      enabled: true,
      minDr: 1,
      maxDr: 4,
      installationMarginDb: 10,
    });
    assert.deepEqual(patched.json.confirmedDownlink, { maxAttempts: 3, classCTimeoutSeconds: 120 });
    assert.deepEqual(patched.json.rejoin, { maxTimeN: 1, maxCountN: 5 });
    assert.equal('uplinkIntervalSeconds' in patched.json, false);
    assert.deepEqual(patched.json.extraChannels, [
      { frequencyHz: 867_500_000, minDr: 0, maxDr: 5 },
    ]);
    assert.deepEqual(
      (await galet.request('GET', `/api/v1/device-profiles/${id}`)).json,
      patched.json,
    );

    // Checked on the merged result: minDr 5 alone is in range, but above the stored maxDr 4.
    const crossed = await galet.request('PATCH', `/api/v1/device-profiles/${id}`, {
      adr: { minDr: 5 },
    });
    assert.equal(crossed.status, 400);
    assert.match(crossed.json.message, /adr\.minDr \(5\) must not be above adr\.maxDr \(4\)/);
    for (const [body, message] of [
      [{ region: 'EU868' }, /body has an unknown field "region"/],
      [{ rx2Dr: 16 }, /body\.rx2Dr must be <= 15/],
      [{ adr: { maxDr: 8 } }, /adr\.maxDr: DR8 is not defined in EU868/],
      [{ name: null }, /body\.name must NOT have fewer than 1 characters/],
      // The stored extraChannels define channels 0 to 3 only.
      [
        { dlChannels: [{ index: 4, frequencyHz: 868_500_000 }] },
        /dlChannels\[0\]\.index: channel 4 is not defined/,
      ],
    ] as const) {
      const answer = await galet.request('PATCH', `/api/v1/device-profiles/${id}`, body);
      assert.equal(answer.status, 400, JSON.stringify(answer.json));
      assert.match(answer.json.message, message);
    }
    assert.deepEqual(
      (await galet.request('GET', `/api/v1/device-profiles/${id}`)).json,
      patched.json,
    );

    const reset = await galet.request('PATCH', `/api/v1/device-profiles/${id}`, {
      adr: null,
      rejoin: null,
    });
    assert.deepEqual(reset.json.adr, defaultDeviceProfileSettings().adr);
    assert.equal('rejoin' in reset.json, false);
  });

  it('gives devices a profile on creation and by PATCH, and returns deviceProfileId', async () => {
    const id = await newProfile();
    const other = await newProfile();
    const created = await galet.request(
      'POST',
      '/api/v1/devices',
      otaaDevice('70b3d57ed0000201', { deviceProfileId: id }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.deviceProfileId, id);
    assert.equal(
      (await galet.request('GET', '/api/v1/devices/70b3d57ed0000201')).json.deviceProfileId,
      id,
    );
    const without = await galet.request('POST', '/api/v1/devices', otaaDevice('70b3d57ed0000202'));
    assert.equal(without.json.deviceProfileId, null);
    const listed = await galet.request('GET', `/api/v1/devices?deviceProfileId=${id}`);
    assert.deepEqual(
      listed.json.devices.map((d: { devEui: string }) => d.devEui),
      ['70b3d57ed0000201'],
    );

    const moved = await galet.request('PATCH', '/api/v1/devices/70B3D57ED0000202', {
      deviceProfileId: other,
      name: 'valve 2',
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.json));
    assert.equal(moved.json.deviceProfileId, other);
    assert.equal(moved.json.name, 'valve 2');
    assert.equal(moved.json.activated, false);
    const cleared = await galet.request('PATCH', '/api/v1/devices/70b3d57ed0000202', {
      deviceProfileId: null,
    });
    assert.equal(cleared.json.deviceProfileId, null);
    assert.equal(cleared.json.name, 'valve 2');
  });

  it('refuses an unknown profile for a device, and bad device PATCHes', async () => {
    const unknown = await galet.request(
      'POST',
      '/api/v1/devices',
      otaaDevice('70b3d57ed0000203', { deviceProfileId: 'no-such-profile' }),
    );
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.json, {
      error: 'UNKNOWN_REFERENCE',
      message: 'device 70b3d57ed0000203: device profile no-such-profile does not exist',
    });
    assert.equal((await galet.request('GET', '/api/v1/devices/70b3d57ed0000203')).status, 404);

    await galet.request('POST', '/api/v1/devices', otaaDevice('70b3d57ed0000204'));
    const patchUnknown = await galet.request('PATCH', '/api/v1/devices/70b3d57ed0000204', {
      deviceProfileId: 'no-such-profile',
    });
    assert.equal(patchUnknown.status, 400);
    assert.equal(patchUnknown.json.error, 'UNKNOWN_REFERENCE');
    assert.match(patchUnknown.json.message, /device profile no-such-profile does not exist/);
    const noDevice = await galet.request('PATCH', '/api/v1/devices/70b3d57ed00002ff', {
      name: 'x',
    });
    assert.equal(noDevice.status, 404);
    const empty = await galet.request('PATCH', '/api/v1/devices/70b3d57ed0000204', {});
    assert.equal(empty.status, 400);
    const keys = await galet.request('PATCH', '/api/v1/devices/70b3d57ed0000204', {
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
    });
    assert.equal(keys.status, 400);
    assert.match(keys.json.message, /body has an unknown field "appKey"/);
  });

  it('refuses with 409 to delete a profile that devices use, then deletes it', async () => {
    const id = await newProfile();
    await galet.request(
      'POST',
      '/api/v1/devices',
      otaaDevice('70b3d57ed0000205', { deviceProfileId: id }),
    );
    const inUse = await galet.request('DELETE', `/api/v1/device-profiles/${id}`);
    assert.equal(inUse.status, 409);
    assert.deepEqual(inUse.json, {
      error: 'STILL_REFERENCED',
      message: `device profile ${id} is still used by 1 device: give them another profile or none first`,
    });
    assert.equal((await galet.request('GET', `/api/v1/device-profiles/${id}`)).status, 200);
    await galet.request('PATCH', '/api/v1/devices/70b3d57ed0000205', { deviceProfileId: null });
    assert.equal((await galet.request('DELETE', `/api/v1/device-profiles/${id}`)).status, 204);
    assert.equal((await galet.request('GET', `/api/v1/device-profiles/${id}`)).status, 404);
  });
});

describe('device profile and device changes reach the network server', () => {
  it('calls deviceProfileChanged and deviceChanged after each write', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-api-hooks-'));
    const database = await openDatabase({ dataDir });
    const calls: string[] = [];
    const network: ApiNetwork = {
      config: defaultNetworkConfig(EU868),
      sessionChanged: () => undefined,
      sessionRemoved: (devEui) => calls.push(`sessionRemoved ${devEui}`),
      downlinkQueued: () => undefined,
      gatewayAdded: () => undefined,
      deviceProfileChanged: (id) => calls.push(`deviceProfileChanged ${id}`),
      deviceChanged: (devEui) => calls.push(`deviceChanged ${devEui}`),
    };
    const api = await buildApi({
      storage: createStorage(database, SecretBox.fromKey(randomBytes(32))),
      network,
      region: EU868,
      adminToken: 'hooks-test-token-0123456789',
    });
    t.after(async () => {
      await api.close();
      await database.close();
      await removeDir(dataDir);
    });
    const request = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) => {
      const response = await api.inject({
        method,
        url: `/api/v1${url}`,
        headers: { authorization: 'Bearer hooks-test-token-0123456789' },
        ...(payload === undefined ? {} : { payload }),
      });
      assert.ok(response.statusCode < 300, response.body);
      return response.body === '' ? undefined : JSON.parse(response.body);
    };
    const profile = await request('POST', '/device-profiles', { name: 'p' });
    const application = await request('POST', '/applications', { name: 'a' });
    await request('POST', '/devices', {
      devEui: '70b3d57ed0000301',
      joinEui: '70b3d57ed0000000',
      name: 'd',
      applicationId: application.id,
      macVersion: '1.0.4',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
      deviceProfileId: profile.id,
    });
    await request('PATCH', `/device-profiles/${profile.id}`, { rx2Dr: 1 });
    await request('PATCH', '/devices/70b3d57ed0000301', { deviceProfileId: null });
    await request('DELETE', '/devices/70b3d57ed0000301');
    await request('DELETE', `/device-profiles/${profile.id}`);
    assert.deepEqual(calls, [
      `deviceProfileChanged ${profile.id}`,
      'deviceChanged 70b3d57ed0000301',
      `deviceProfileChanged ${profile.id}`,
      'deviceChanged 70b3d57ed0000301',
      'sessionRemoved 70b3d57ed0000301',
      'deviceChanged 70b3d57ed0000301',
      `deviceProfileChanged ${profile.id}`,
    ]);
  });
});
