/**
 * Operator-blind split (issue 5), in one test process: the operator's Galet runs the network
 * role alone; a provider's Galet (roles join,application) links to it with a link token, and
 * owns the device's AppKey, its session AppSKey and its decrypted payloads. The network sees
 * metadata and encrypted payloads only. The two-process version is in test/e2e/.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { isLinkError } from '../../src/link/index.js';
import type { RunningProvider } from '../../src/server/start-provider.js';
import { linkProvider, providerRequest } from '../helpers/linked-provider.js';
import { skipOrFail } from '../helpers/services.js';
import { APP_KEY, JOIN_EUI, ScenarioNetwork, waitFor } from './helpers.js';

const GW = 'aa555a0000000b01';

/**
 * A Class C device registered on the provider (AppKey there only), joined through the network,
 * listening in RXC; its one confirmed uplink tells the network which gateway hears it.
 */
async function linkedClassCDevice(
  net: ScenarioNetwork,
  provider: RunningProvider,
  devEui: string,
  name: string,
) {
  const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
    devEui,
    joinEui: JOIN_EUI,
    name,
    applicationId: net.applicationId,
    macVersion: '1.0.4',
    deviceClass: 'C',
    appKey: Buffer.from(APP_KEY).toString('hex'),
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false, deviceClass: 'C' });
  net.listenClassC(device, net.gateway(GW));
  await net.join(device);
  await net.uplink(device, { fPort: 1, payload: Buffer.from('lux=12'), confirmed: true });
  return { device, acked: await net.waitForDownlink(device, 1) };
}

/** Every file under `dir`, recursively, as bytes. */
async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    found.set(path, await readFile(path));
  }
  return found;
}

describe('operator-blind split (network role alone, provider linked)', () => {
  it('joins, forwards uplinks encrypted and lets only the provider read them', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, {
      roles: ['network'],
    });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-provider-'));
    let provider: RunningProvider | undefined;
    try {
      // The operator refuses application keys outright.
      const refused = await net.galet.request('POST', '/api/v1/devices', {
        devEui: '00000000000b0999',
        joinEui: JOIN_EUI,
        name: 'keyed',
        applicationId: net.applicationId,
        macVersion: '1.0.4',
        appKey: Buffer.from(APP_KEY).toString('hex'),
      });
      assert.equal(refused.status, 400);

      const link = await net.galet.request(
        'POST',
        `/api/v1/applications/${net.applicationId}/link-tokens`,
        { name: 'water supplier' },
      );
      assert.equal(link.status, 201);
      assert.match(link.json.token, /^galet_link_[0-9a-f]{16}_/);
      const listed = await net.galet.request(
        'GET',
        `/api/v1/applications/${net.applicationId}/link-tokens`,
      );
      assert.equal(JSON.stringify(listed.json).includes(link.json.token), false);

      ({ provider } = await linkProvider(net, providerDir, { token: link.json.token }));
      const applications = await providerRequest(provider, 'GET', '/api/v1/applications');
      assert.deepEqual(
        applications.json.applications.map((a: { id: string }) => a.id),
        [net.applicationId],
      );

      const devEui = '00000000000b0001';
      const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
        devEui,
        joinEui: JOIN_EUI,
        name: 'town hall water meter',
        applicationId: net.applicationId,
        macVersion: '1.0.4',
        appKey: Buffer.from(APP_KEY).toString('hex'),
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const onNetwork = await net.galet.request('GET', `/api/v1/devices/${devEui}`);
      assert.equal(onNetwork.status, 200);
      assert.equal(onNetwork.json.operatorCanDecrypt, false);

      const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false });
      await net.join(device);
      const plaintext = Buffer.from('index=004217 m3');
      const { event } = await net.uplink(device, { fPort: 2, payload: plaintext });
      // The operator's event: metadata and the payload as it travelled, encrypted.
      assert.equal(event.data, undefined);
      assert.equal(typeof event.frmPayload, 'string');
      assert.notDeepEqual(Buffer.from(event.frmPayload, 'base64'), plaintext);
      assert.equal(event.rxInfo[0].gatewayId, GW);

      // The provider's event: the same uplink, decrypted.
      const providerUp = await waitFor('the provider stores the uplink', async () => {
        const events = await providerRequest(provider!, 'GET', `/api/v1/devices/${devEui}/events`);
        return (events.json.events as { event: string; data?: string }[]).find(
          (e) => e.event === 'up',
        );
      });
      assert.deepEqual(Buffer.from(providerUp.data!, 'base64'), plaintext);
      assert.equal(
        (providerUp as { deduplicationId?: string }).deduplicationId,
        event.deduplicationId,
      );

      // A downlink queued on the provider reaches the device decrypted to the provider's bytes.
      const command = Buffer.from('valve=open');
      const queued = await providerRequest(provider, 'POST', `/api/v1/devices/${devEui}/queue`, {
        fPort: 12,
        data: command.toString('base64'),
      });
      assert.equal(queued.status, 201);
      await waitFor('the network holds the encrypted downlink', async () => {
        const held = await net.galet.request('GET', `/api/v1/devices/${devEui}/queue`);
        return held.json.items.some((item: { id: string }) => item.id === queued.json.id)
          ? true
          : undefined;
      });
      const received = device.receivedDownlinks.length;
      await net.uplink(device, { fPort: 2, payload: Buffer.from('index=004218 m3') });
      const downlink = await net.waitForDownlink(device, received + 1);
      assert.deepEqual(Buffer.from(downlink.payload), command);
      assert.equal(downlink.fPort, 12);

      // Plaintext queued on the operator's own API for this device can never go out readable:
      // refused at its window, with a log event and a metric; the device gets nothing.
      await net.queueDownlink(devEui, 7, Buffer.from('operator text'));
      await net.uplink(device, { fPort: 2, payload: Buffer.from('index=004219 m3') });
      const refusal = await net.waitForEvent(
        devEui,
        (e) => e.event === 'log' && e.code === 'DOWNLINK_REFUSED',
        'DOWNLINK_REFUSED log event',
      );
      assert.match(refusal.description, /queue downlinks on the provider/);
      assert.equal(device.receivedDownlinks.length, received + 1);
      assert.equal(await net.metric('galet_network_downlinks_refused_total'), 1);

      // A provider's malformed or foreign downlink requests are answered, counted, not obeyed.
      const refusedRequests = [
        [
          'queueDownlink',
          { devEui, id: 'x', fPort: 1, confirmed: false, fCntDown: 0, frmPayload: '' },
          'INVALID_INPUT',
        ],
        ['downlinkSession', { devEui: 'ffffffffffffffff' }, 'NOT_FOUND'],
        ['downlinkSession', { devEui: 'FFFF' }, 'INVALID_INPUT'],
      ] as const;
      for (const [method, body, code] of refusedRequests) {
        await assert.rejects(provider.link.client.request(method, body), (error: unknown) => {
          assert.ok(isLinkError(error, 'REMOTE_ERROR'));
          assert.equal(error.remote?.code, code);
          return true;
        });
      }
      assert.equal(
        await net.metric('galet_provider_links_downlink_requests_refused_total'),
        refusedRequests.length,
      );

      // Nothing under the operator's data directory holds the AppKey, the AppSKey or the payload.
      await net.galet.storage.uplinkCommits.flushLastSeen();
      const appSKey = device.sessionKeys()!.appSKey;
      const secrets = [
        ['AppKey', Buffer.from(APP_KEY)],
        ['AppSKey', Buffer.from(appSKey)],
        ['payload', plaintext],
        ['downlink', command],
      ] as const;
      for (const [path, content] of await filesUnder(net.galet.dataDir)) {
        for (const [what, secret] of secrets) {
          assert.equal(content.includes(secret), false, `${what} found in ${path}`);
          assert.equal(
            content.includes(Buffer.from(secret.toString('hex'))),
            false,
            `${what} (hex) found in ${path}`,
          );
          assert.equal(
            content.includes(Buffer.from(secret.toString('base64'))),
            false,
            `${what} (base64) found in ${path}`,
          );
        }
      }
    } finally {
      await provider?.close();
      await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });

  it('gives the provider the same up event an all-in-one Galet stores (fields and data)', async () => {
    const plaintext = Buffer.from('level=1234 mm');
    const devEui = '00000000000b0002';
    // All in one process: the reference event.
    const allInOne = await ScenarioNetwork.start([{ gatewayId: GW }]);
    let reference: Record<string, unknown>;
    try {
      const device = await allInOne.addOtaaDevice(devEui, '1.0.4');
      await allInOne.join(device);
      reference = (await allInOne.uplink(device, { fPort: 5, payload: plaintext })).event;
    } finally {
      await allInOne.close();
    }
    // Split: the provider's copy of the same uplink.
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, { roles: ['network'] });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-provider-'));
    let provider: RunningProvider | undefined;
    try {
      ({ provider } = await linkProvider(net, providerDir));
      const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
        devEui,
        joinEui: JOIN_EUI,
        name: `device ${devEui}`,
        applicationId: net.applicationId,
        macVersion: '1.0.4',
        appKey: Buffer.from(APP_KEY).toString('hex'),
      });
      assert.equal(created.status, 201);
      const device = await net.addOtaaDevice(devEui, '1.0.4', { register: false });
      await net.join(device);
      await net.uplink(device, { fPort: 5, payload: plaintext });
      const split = await waitFor('the provider stores the uplink', async () => {
        const events = await providerRequest(provider!, 'GET', `/api/v1/devices/${devEui}/events`);
        return (events.json.events as Record<string, unknown>[]).find((e) => e['event'] === 'up');
      });
      assert.deepEqual(Object.keys(split).sort(), Object.keys(reference).sort());
      for (const field of ['event', 'fCnt', 'fPort', 'dr', 'adr', 'confirmed', 'data', 'txInfo']) {
        assert.deepEqual(split[field], reference[field], field);
      }
      const deviceInfo = (event: Record<string, unknown>) => {
        const { applicationId: _id, ...rest } = event['deviceInfo'] as Record<string, unknown>;
        return rest;
      };
      assert.deepEqual(deviceInfo(split), deviceInfo(reference));
      const rxFields = (event: Record<string, unknown>) =>
        (event['rxInfo'] as Record<string, unknown>[]).map((rx) => Object.keys(rx).sort());
      assert.deepEqual(rxFields(split), rxFields(reference));
    } finally {
      await provider?.close();
      await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });
  it('sends a provider’s downlink to a Class C device at once, without waiting for an uplink', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, { roles: ['network'] });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-provider-'));
    let provider: RunningProvider | undefined;
    try {
      ({ provider } = await linkProvider(net, providerDir));
      const devEui = '00000000000b0c01';
      const { device, acked } = await linkedClassCDevice(net, provider, devEui, 'street light');
      assert.equal(acked.ack, true);
      const fCntUp = device.fCntUp;

      const command = Buffer.from('dim=40%');
      const queued = await providerRequest(provider, 'POST', `/api/v1/devices/${devEui}/queue`, {
        fPort: 9,
        data: command.toString('base64'),
      });
      assert.equal(queued.status, 201);
      const downlink = await net.waitForDownlink(device, 2);
      assert.deepEqual(Buffer.from(downlink.payload), command);
      assert.equal(downlink.window, 'rxc');
      assert.equal(downlink.fCnt, acked.fCnt + 1);
      assert.equal(device.fCntUp, fCntUp, 'no uplink in between');
      // The provider's queue follows the network's txack.
      await waitFor('the provider’s item is sent', async () => {
        const left = await providerRequest(provider!, 'GET', `/api/v1/devices/${devEui}/queue`);
        return left.json.items.length === 0 ? true : undefined;
      });
    } finally {
      await provider?.close();
      await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });
  it('takes a downlink command published on the provider’s MQTT broker through the link', async (t) => {
    const brokerUrl = process.env.GALET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
    let publisher: MqttClient;
    try {
      publisher = await connectAsync(brokerUrl, { connectTimeout: 2000, reconnectPeriod: 0 });
    } catch {
      skipOrFail(t, `Mosquitto is not reachable at ${brokerUrl}`);
      return;
    }
    const prefix = `galet-test-${randomBytes(6).toString('hex')}/application`;
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, { roles: ['network'] });
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-provider-'));
    let provider: RunningProvider | undefined;
    try {
      ({ provider } = await linkProvider(net, providerDir, {
        application: { mqtt: { url: brokerUrl, topicPrefix: prefix, reconnectPeriodMs: 200 } },
      }));
      const devEui = '00000000000b0c02';
      const { device } = await linkedClassCDevice(net, provider, devEui, 'street light on MQTT');

      const command = Buffer.from('dim=75%');
      await publisher.publishAsync(
        `${prefix}/${net.applicationId}/device/${devEui}/command/down`,
        JSON.stringify({ devEui, confirmed: false, fPort: 9, data: command.toString('base64') }),
        { qos: 1 },
      );
      const downlink = await net.waitForDownlink(device, 2);
      assert.deepEqual(Buffer.from(downlink.payload), command, 'encrypted by the provider');
      assert.equal(downlink.window, 'rxc');
    } finally {
      await publisher.endAsync();
      await provider?.close();
      await net.close();
      await rm(providerDir, { recursive: true, force: true });
    }
  });
});
