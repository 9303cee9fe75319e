import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningProvider } from '../../src/server/start-provider.js';
import { removeDir, startTestGalet, type TestGalet } from '../helpers/galet.js';
import { startLinkedProvider } from '../helpers/linked-provider.js';
import { ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

describe('HTTP API', () => {
  let galet: TestGalet;
  let applicationId: string;

  before(async () => {
    galet = await startTestGalet();
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
  });

  it('refuses requests without the admin bearer token', async () => {
    const response = await fetch(`${galet.baseUrl}/api/v1/applications`);
    assert.equal(response.status, 401);
    assert.deepEqual(await response.json(), {
      error: 'UNAUTHORIZED',
      message: 'missing or invalid bearer token',
    });
    const wrong = await fetch(`${galet.baseUrl}/api/v1/applications`, {
      headers: { authorization: 'Bearer nope' },
    });
    assert.equal(wrong.status, 401);
  });

  it('creates, lists and gets applications', async () => {
    const created = await galet.request('POST', '/api/v1/applications', {
      name: 'Commune de Saint-Galmier',
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.name, 'Commune de Saint-Galmier');
    applicationId = created.json.id;
    const list = await galet.request('GET', '/api/v1/applications');
    assert.ok(list.json.applications.some((a: { id: string }) => a.id === applicationId));
    assert.equal(
      (await galet.request('GET', `/api/v1/applications/${applicationId}`)).json.id,
      applicationId,
    );
    assert.equal((await galet.request('GET', '/api/v1/applications/nope')).status, 404);
  });

  it('registers gateways with a location and shows them', async () => {
    const created = await galet.request('POST', '/api/v1/gateways', {
      gatewayId: 'AA555A0000000001',
      name: 'Mairie',
      location: { latitude: 45.55, longitude: 4.31, altitude: 400 },
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.gatewayId, 'aa555a0000000001');
    const got = await galet.request('GET', '/api/v1/gateways/aa555a0000000001');
    assert.equal(got.json.name, 'Mairie');
    assert.equal(got.json.lastSeenAt, null);
    assert.equal(
      (
        await galet.request('POST', '/api/v1/gateways', {
          gatewayId: 'aa555a0000000001',
          name: 'x',
        })
      ).status,
      409,
    );
  });

  it('creates OTAA and ABP devices and never returns their keys', async () => {
    const otaa = await galet.request('POST', '/api/v1/devices', {
      devEui: '70b3d57ed0000001',
      joinEui: '70b3d57ed0000000',
      name: 'frost-1',
      applicationId,
      macVersion: '1.0.3',
      deviceClass: 'A',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
    });
    assert.equal(otaa.status, 201, JSON.stringify(otaa.json));
    assert.equal(otaa.json.activated, false);
    const abp = await galet.request('POST', '/api/v1/devices', {
      devEui: '70b3d57ed0000002',
      name: 'meter-1',
      applicationId,
      macVersion: '1.0.4',
      abp: {
        devAddr: '26011bda',
        nwkSKey: '000102030405060708090a0b0c0d0e0f',
        appSKey: '0f0e0d0c0b0a09080706050403020100',
      },
    });
    assert.equal(abp.status, 201, JSON.stringify(abp.json));
    assert.equal(abp.json.devAddr, '26011bda');
    assert.equal(abp.json.fCntDown, 0);
    const text = JSON.stringify([
      otaa.json,
      abp.json,
      (await galet.request('GET', '/api/v1/devices')).json,
    ]);
    for (const key of ['2b7e1516', '00010203', '0f0e0d0c'])
      assert.ok(!text.includes(key), `key ${key} leaked`);
    const got = await galet.request('GET', '/api/v1/devices/70b3d57ed0000002');
    assert.equal(got.json.devAddr, '26011bda');
    assert.equal(got.json.fCntUp, null);
  });

  it('validates device input with clear 4xx errors', async () => {
    const missingKey = await galet.request('POST', '/api/v1/devices', {
      devEui: '70b3d57ed0000003',
      joinEui: '70b3d57ed0000000',
      name: 'x',
      applicationId,
      macVersion: '1.1.0',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
    });
    assert.equal(missingKey.status, 400);
    assert.match(missingKey.json.message, /nwkKey/);
    const badEui = await galet.request('POST', '/api/v1/devices', {
      devEui: 'zz',
      name: 'x',
      applicationId,
      macVersion: '1.0.3',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
    });
    assert.equal(badEui.status, 400);
    assert.equal(badEui.json.error, 'BAD_REQUEST');
    const unknownApp = await galet.request('POST', '/api/v1/devices', {
      devEui: '70b3d57ed0000004',
      joinEui: '70b3d57ed0000000',
      name: 'x',
      applicationId: 'no-such-app',
      macVersion: '1.0.3',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
    });
    assert.equal(unknownApp.status, 400);
    const duplicate = await galet.request('POST', '/api/v1/devices', {
      devEui: '70b3d57ed0000001',
      joinEui: '70b3d57ed0000000',
      name: 'again',
      applicationId,
      macVersion: '1.0.3',
      appKey: '2b7e151628aed2a6abf7158809cf4f3c',
    });
    assert.equal(duplicate.status, 409);
  });

  it('queues downlinks and refuses one that can never fit', async () => {
    const queued = await galet.request('POST', '/api/v1/devices/70b3d57ed0000002/queue', {
      fPort: 10,
      data: Buffer.from([1, 2, 3]).toString('base64'),
      confirmed: true,
    });
    assert.equal(queued.status, 201);
    const list = await galet.request('GET', '/api/v1/devices/70b3d57ed0000002/queue');
    assert.equal(list.json.items.length, 1);
    assert.equal(list.json.items[0].data, 'AQID');
    const tooBig = await galet.request('POST', '/api/v1/devices/70b3d57ed0000002/queue', {
      fPort: 10,
      data: Buffer.alloc(243).toString('base64'),
    });
    assert.equal(tooBig.status, 400);
    assert.equal(
      (
        await galet.request('POST', '/api/v1/devices/70b3d57ed0000009/queue', {
          fPort: 1,
          data: '',
        })
      ).status,
      404,
    );
    assert.equal(
      (
        await galet.request('POST', '/api/v1/devices/70b3d57ed0000002/queue', {
          fPort: 0,
          data: '',
        })
      ).status,
      400,
    );
  });

  it('answers hostile or oversized bodies with 4xx, never a crash', async () => {
    const malformed = await fetch(`${galet.baseUrl}/api/v1/applications`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test-admin-token-0123456789',
        'content-type': 'application/json',
      },
      body: '{"name": ',
    });
    assert.equal(malformed.status, 400);
    const huge = await fetch(`${galet.baseUrl}/api/v1/applications`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test-admin-token-0123456789',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name: 'x'.repeat(2_000_000) }),
    });
    assert.equal(huge.status, 413);
    const proto = await galet.request(
      'POST',
      '/api/v1/applications',
      JSON.parse('{"name":"p","__proto__":{"x":1}}'),
    );
    assert.equal(proto.status, 400);
    assert.equal((await galet.request('GET', '/api/v1/health')).status, 200);
  });

  it('serves Prometheus metrics behind the token', async () => {
    const response = await fetch(`${galet.baseUrl}/api/v1/metrics`, {
      headers: { authorization: 'Bearer test-admin-token-0123456789' },
    });
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /^galet_network_uplinks_accepted_total 0$/m);
    assert.match(text, /^galet_semtech_udp_datagrams_received_total \d+$/m);
    assert.match(text, /^galet_network_uplink_latency_beyond_window_p99_ms /m);
    assert.equal((await fetch(`${galet.baseUrl}/api/v1/metrics`)).status, 401);
  });

  it('deletes a device', async () => {
    assert.equal((await galet.request('DELETE', '/api/v1/devices/70b3d57ed0000001')).status, 204);
    assert.equal((await galet.request('GET', '/api/v1/devices/70b3d57ed0000001')).status, 404);
    assert.equal((await galet.request('DELETE', '/api/v1/devices/70b3d57ed0000001')).status, 404);
  });
});

/** What the devices list leaves out of a device's own view: its MAC state. */
const NOT_IN_LIST = ['deviceStatus', 'mac'];

describe('device list items (issue #6)', () => {
  it('carry the session state and operatorCanDecrypt of the device’s own view: OTAA before and after a join, ABP, a linked provider’s device', {
    timeout: 30_000,
  }, async () => {
    const gatewayId = 'aa555a0000000d01';
    const net = await ScenarioNetwork.start([{ gatewayId }]);
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-list-provider-'));
    let provider: RunningProvider | undefined;
    try {
      /** Each device's list item is its own view without the MAC state; returns the items. */
      const listedAsViewed = async (devEuis: readonly string[]) => {
        const list = await net.galet.request('GET', '/api/v1/devices?limit=1000');
        assert.equal(list.status, 200, JSON.stringify(list.json));
        const items = new Map<string, Record<string, unknown>>();
        for (const devEui of devEuis) {
          const item = list.json.devices.find((d: { devEui: string }) => d.devEui === devEui);
          const own = await net.galet.request('GET', `/api/v1/devices/${devEui}`);
          assert.equal(own.status, 200);
          for (const field of NOT_IN_LIST) delete own.json[field];
          assert.deepEqual(item, own.json, devEui);
          items.set(devEui, item);
        }
        return items;
      };

      const otaa10 = await net.addOtaaDevice('00000000000d0001', '1.0.4');
      const otaa11 = await net.addOtaaDevice('00000000000d0002', '1.1');
      const abp = await net.addAbpDevice('00000000000d0003', '1.0.4', 0x26011d03);

      const blindEui = '00000000000d0004';
      const linked = await startLinkedProvider(net, {
        dataDir: providerDir,
        applicationName: 'Eau',
        device: { devEui: blindEui, name: 'water meter' },
      });
      provider = linked.provider;
      const blind = await net.addOtaaDevice(blindEui, '1.0.4', { register: false });
      await waitFor('the provider’s device reaches the network', async () => {
        const got = await net.galet.request('GET', `/api/v1/devices/${blindEui}`);
        return got.status === 200;
      });

      const all = [otaa10.devEui, otaa11.devEui, abp.devEui, blindEui];
      const before = await listedAsViewed(all);
      assert.deepEqual(
        all.map((devEui) => {
          const { devAddr, fCntUp, fCntDown, activated, operatorCanDecrypt } = before.get(devEui)!;
          return { devAddr, fCntUp, fCntDown, activated, operatorCanDecrypt };
        }),
        [
          {
            devAddr: null,
            fCntUp: null,
            fCntDown: null,
            activated: false,
            operatorCanDecrypt: true,
          },
          {
            devAddr: null,
            fCntUp: null,
            fCntDown: null,
            activated: false,
            operatorCanDecrypt: true,
          },
          {
            devAddr: '26011d03',
            fCntUp: null,
            fCntDown: 0,
            activated: true,
            operatorCanDecrypt: true,
          },
          {
            devAddr: null,
            fCntUp: null,
            fCntDown: null,
            activated: false,
            operatorCanDecrypt: false,
          },
        ],
      );

      for (const device of [otaa10, otaa11, blind]) await net.join(device);
      const ups = new Map<string, number>();
      for (const device of [otaa10, otaa11, abp, blind]) {
        const { event } = await net.uplink(device, { fPort: 2, payload: Buffer.from('t=21') });
        ups.set(device.devEui, event.fCnt);
      }
      const after = await listedAsViewed(all);
      for (const devEui of all) {
        const item = after.get(devEui)!;
        assert.equal(item.activated, true, devEui);
        assert.match(String(item.devAddr), /^[0-9a-f]{8}$/, devEui);
        assert.equal(item.fCntUp, ups.get(devEui), devEui);
        assert.equal(item.operatorCanDecrypt, devEui !== blindEui, devEui);
        assert.equal('aFCntDown' in item, devEui === otaa11.devEui, devEui);
        for (const field of NOT_IN_LIST) assert.equal(field in item, false, `${devEui} ${field}`);
      }
      // The OpenAPI document describes what the list now carries.
      const document = await net.galet.request('GET', '/api/v1/openapi.json');
      const listed =
        document.json.paths['/api/v1/devices'].get.responses['200'].content['application/json']
          .schema.properties.devices.items;
      for (const field of ['devAddr', 'fCntUp', 'fCntDown', 'activated', 'operatorCanDecrypt']) {
        assert.ok(listed.required.includes(field), field);
      }
      assert.deepEqual(listed.properties.fCntUp.type, ['integer', 'null']);
      // A filtered page carries the same fields.
      const waterPage = await net.galet.request(
        'GET',
        `/api/v1/devices?applicationId=${linked.applicationId}`,
      );
      assert.deepEqual(waterPage.json.devices, [after.get(blindEui)]);
    } finally {
      await provider?.close();
      await net.close();
      await removeDir(providerDir);
    }
  });
});
