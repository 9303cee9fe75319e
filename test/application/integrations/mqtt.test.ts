/**
 * The MQTT integration against the real Mosquitto on 127.0.0.1:1883 (skipped with a message when
 * it is not reachable, failed instead under CI): a real uplink through the simulator comes out
 * on ChirpStack's topic with ChirpStack's JSON; a command on `.../command/down` is queued and
 * transmitted in the device's RX window; hostile commands are refused with a `log` event; a
 * broker outage (a TCP proxy in front of Mosquitto, closed then opened) loses nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { SimulatedGateway } from '../../../src/sim/gateway.js';
import { apiRequest } from '../../helpers/api.js';
import { attachNetwork } from '../../helpers/attach-network.js';
import {
  removeDir,
  startTestGalet,
  TEST_ADMIN_TOKEN,
  type TestGalet,
} from '../../helpers/galet.js';
import {
  dropPostgresTestDatabase,
  postgresTestHost,
  postgresTestUrl,
  requireServices,
  skipOrFail,
} from '../../helpers/services.js';
import { ScenarioNetwork, waitFor } from '../../scenarios/helpers.js';

export const BROKER_URL = process.env.GALET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const GW = 'aa555a0000000d01';
const ROOT = join(import.meta.dirname, '..', '..', '..');

// biome-ignore lint/suspicious/noExplicitAny: published JSON is read field by field and asserted on
type Published = Record<string, any>;

/** A subscriber that keeps every message of `${prefix}/#`. */
export interface TestSubscriber {
  client: MqttClient;
  messages: { topic: string; payload: string }[];
  on(topic: string): { topic: string; json: Published }[];
  close(): Promise<void>;
}

export async function brokerReachable(): Promise<boolean> {
  try {
    const client = await connectAsync(BROKER_URL, { connectTimeout: 2000, reconnectPeriod: 0 });
    await client.endAsync();
    return true;
  } catch {
    return false;
  }
}

/** Skips the test when Mosquitto is not there, or fails it under CI. */
export async function skipWithoutBroker(t: TestContext): Promise<boolean> {
  if (await brokerReachable()) return false;
  const message = `Mosquitto is not reachable at ${BROKER_URL}`;
  if (requireServices() || process.env.CI !== undefined) {
    assert.fail(`${message} (CI: a missing broker fails the test)`);
  }
  t.skip(message);
  return true;
}

export function uniquePrefix(): string {
  return `galet-test-${randomBytes(6).toString('hex')}/application`;
}

export async function subscribe(prefix: string): Promise<TestSubscriber> {
  const client = await connectAsync(BROKER_URL, { reconnectPeriod: 0 });
  const messages: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
  await client.subscribeAsync(`${prefix}/#`, { qos: 1 });
  return {
    client,
    messages,
    on: (topic) =>
      messages
        .filter((message) => message.topic === topic)
        .map((message) => ({ topic, json: JSON.parse(message.payload) })),
    close: () => client.endAsync(),
  };
}

/** A TCP proxy in front of the broker that a test can take down and bring back. */
class BrokerProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  async open(): Promise<void> {
    const target = new URL(BROKER_URL);
    this.#server = createServer((inbound) => {
      const outbound = new Socket();
      outbound.connect(Number(target.port || 1883), target.hostname);
      for (const socket of [inbound, outbound]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.port, '127.0.0.1', resolve));
    const address = this.#server.address();
    if (typeof address === 'object' && address !== null) this.port = address.port;
  }

  /** Refuses new connections and cuts the open ones. */
  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

describe('MQTT integration (real Mosquitto)', () => {
  let galet: TestGalet | undefined;
  let network: ScenarioNetwork | undefined;
  let subscriber: TestSubscriber | undefined;
  let prefix = '';
  let available = false;

  before(async () => {
    available = await brokerReachable();
    if (!available) return;
    prefix = uniquePrefix();
    subscriber = await subscribe(prefix);
    galet = await startTestGalet({
      application: {
        feedPollIntervalMs: 50,
        mqtt: { url: BROKER_URL, topicPrefix: prefix, reconnectPeriodMs: 200 },
      },
    });
    network = await attachNetwork(galet, [{ gatewayId: GW }]);
  });

  after(async () => {
    await network?.close();
    await galet?.stop();
    if (galet !== undefined) await removeDir(galet.dataDir);
    await subscriber?.close();
  });

  it('publishes a real uplink on ChirpStack’s up topic with ChirpStack’s JSON, at QoS 1', async (t) => {
    if (await skipWithoutBroker(t)) return;
    const net = network!;
    const device = await net.addAbpDevice('00000000000a0001', '1.0.3', 0x260a0001);
    const { event } = await net.uplink(device, { fPort: 5, payload: Uint8Array.of(1, 2, 3) });
    const topic = `${prefix}/${net.applicationId}/device/${device.devEui}/event/up`;
    const [published] = await waitFor('the up event on MQTT', () => {
      const found = subscriber!.on(topic);
      return found.length > 0 ? found : undefined;
    });
    const up = published!.json;
    assert.equal(up['deduplicationId'], event['deduplicationId']);
    assert.equal(typeof up['time'], 'string');
    assert.equal(up['deviceInfo'].devEui, device.devEui);
    assert.equal(up['deviceInfo'].applicationId, net.applicationId);
    assert.equal(typeof up['deviceInfo'].deviceName, 'string');
    assert.equal(up['devAddr'], '260a0001');
    assert.equal(up['fCnt'], event['fCnt']);
    assert.equal(up['fPort'], 5);
    assert.equal(up['data'], base64(Uint8Array.of(1, 2, 3)));
    assert.ok(Array.isArray(up['rxInfo']) && up['rxInfo'].length === 1);
    assert.equal(up['rxInfo'][0].gatewayId, GW);
    assert.equal(typeof up['txInfo'].frequency, 'number');
    assert.ok(up['txInfo'].modulation.lora.spreadingFactor >= 7);
    // The stored event and the published one are the same JSON.
    const { id: _id, event: _type, ...stored } = event;
    assert.deepEqual(up, stored);
    assert.equal((await net.metric('galet_mqtt_published_total')) >= 1, true);
  });

  it('queues a command/down publish and transmits it in the device’s RX window', async (t) => {
    if (await skipWithoutBroker(t)) return;
    const net = network!;
    const device = await net.addAbpDevice('00000000000a0002', '1.0.3', 0x260a0002);
    await net.uplink(device, { fPort: 1, payload: Uint8Array.of(0) });
    await subscriber!.client.publishAsync(
      `${prefix}/${net.applicationId}/device/${device.devEui}/command/down`,
      JSON.stringify({
        devEui: device.devEui,
        confirmed: false,
        fPort: 10,
        data: base64(Uint8Array.of(0xca, 0xfe)),
      }),
      { qos: 1 },
    );
    await waitFor('the command is queued', async () => {
      const queue = await net.galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
      return queue.json.items.length === 1 ? true : undefined;
    });
    await net.uplink(device, { fPort: 1, payload: Uint8Array.of(1) });
    const downlink = await net.waitForDownlink(device, 1);
    assert.deepEqual([...downlink.payload], [0xca, 0xfe]);
    assert.equal(downlink.fPort, 10);
    assert.equal(await net.metric('galet_mqtt_commands_queued_total'), 1);
  });

  it('encodes a command given as object with the device profile’s codec', async (t) => {
    if (await skipWithoutBroker(t)) return;
    const net = network!;
    const profileId = await net.createDeviceProfile('lpp actuators', {
      codec: { type: 'cayenne-lpp' },
    });
    const device = await net.addAbpDevice('00000000000a0004', '1.0.3', 0x260a0004, {
      deviceProfileId: profileId,
    });
    await subscriber!.client.publishAsync(
      `${prefix}/${net.applicationId}/device/${device.devEui}/command/down`,
      JSON.stringify({ devEui: device.devEui, fPort: 7, object: { digitalOutput: { '3': 1 } } }),
      { qos: 1 },
    );
    const queued = await waitFor('the encoded command is queued', async () => {
      const queue = await net.galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
      return queue.json.items.length === 1 ? queue.json.items[0] : undefined;
    });
    // Cayenne LPP: channel 3, type 1 (digital output), value 1.
    assert.equal(queued.data, base64(Uint8Array.of(3, 1, 1)));
    assert.equal(queued.fPort, 7);
    // A decoded uplink goes out with its `object`, as ChirpStack's up event.
    await net.uplink(device, { fPort: 2, payload: Uint8Array.of(1, 0x67, 0x00, 0xd7) });
    const topic = `${prefix}/${net.applicationId}/device/${device.devEui}/event/up`;
    const [up] = await waitFor('the decoded up event on MQTT', () => {
      const found = subscriber!.on(topic);
      return found.length > 0 ? found : undefined;
    });
    assert.deepEqual(up!.json['object'], { temperatureSensor: { '1': 21.5 } });
    assert.equal(up!.json['data'], base64(Uint8Array.of(1, 0x67, 0x00, 0xd7)));
  });

  it('refuses hostile commands with a log event and a metric, and keeps running', async (t) => {
    if (await skipWithoutBroker(t)) return;
    const net = network!;
    const device = await net.addAbpDevice('00000000000a0003', '1.0.3', 0x260a0003);
    const other = await net.galet.request('POST', '/api/v1/applications', { name: 'elsewhere' });
    const stranger = '00000000000a0f0f';
    const registered = await net.galet.request('POST', '/api/v1/devices', {
      devEui: stranger,
      name: 'stranger',
      applicationId: other.json.id,
      macVersion: '1.0.3',
      abp: {
        devAddr: '260a0f0f',
        nwkSKey: '00112233445566778899aabbccddeeff',
        appSKey: '00112233445566778899aabbccddeeff',
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.json));
    const own = (devEui: string) => `${prefix}/${net.applicationId}/device/${devEui}/command/down`;
    const good = { fPort: 2, data: 'AQI=' };
    const cases: [string, string, string | Buffer][] = [
      ['not_json', own(device.devEui), '{"fPort": 2, "data": '],
      ['not_an_object', own(device.devEui), '[1, 2, 3]'],
      ['not_an_object', own(device.devEui), 'null'],
      ['invalid_fport', own(device.devEui), JSON.stringify({ fPort: 0, data: 'AQI=' })],
      ['invalid_fport', own(device.devEui), JSON.stringify({ fPort: '2', data: 'AQI=' })],
      ['invalid_data', own(device.devEui), JSON.stringify({ fPort: 2, data: 'not base64!' })],
      [
        'invalid_data',
        own(device.devEui),
        JSON.stringify({ fPort: 2, data: base64(new Uint8Array(243)) }),
      ],
      ['invalid_confirmed', own(device.devEui), JSON.stringify({ ...good, confirmed: 'yes' })],
      ['dev_eui_mismatch', own(device.devEui), JSON.stringify({ ...good, devEui: stranger })],
      [
        'object_needs_codec',
        own(device.devEui),
        JSON.stringify({ fPort: 2, object: { on: true } }),
      ],
      ['too_large', own(device.devEui), Buffer.alloc(20_000, 0x20)],
      ['unknown_device', own('00000000000a0ffe'), JSON.stringify(good)],
      ['unknown_device', own('not-an-eui'), JSON.stringify(good)],
      ['other_application', own(stranger), JSON.stringify(good)],
      [
        'invalid_fport',
        own(device.devEui),
        '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
      ],
    ];
    for (const [, topic, payload] of cases) {
      await subscriber!.client.publishAsync(topic, payload, { qos: 1 });
    }
    const expected = new Map<string, number>();
    for (const [reason] of cases) expected.set(reason, (expected.get(reason) ?? 0) + 1);
    await waitFor('every command answered', async () => {
      const logs = subscriber!.messages.filter(
        (message) => message.topic.startsWith(`${prefix}/`) && message.topic.endsWith('/event/log'),
      );
      return logs.length >= cases.length ? logs : undefined;
    });
    for (const [reason, count] of expected) {
      assert.equal(
        await net.metric(`galet_mqtt_commands_refused_total{kind="${reason}"}`),
        count,
        reason,
      );
    }
    const log = subscriber!
      .on(`${prefix}/${net.applicationId}/device/${device.devEui}/event/log`)
      .map((message) => message.json);
    assert.ok(log.some((entry) => entry['code'] === 'DOWNLINK_CODEC'));
    assert.ok(
      log.every((entry) => entry['level'] === 'ERROR' && typeof entry['description'] === 'string'),
    );
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    for (const devEui of [device.devEui, stranger]) {
      const queue = await net.galet.request('GET', `/api/v1/devices/${devEui}/queue`);
      assert.equal(queue.json.items.length, 0, devEui);
    }
    // Still delivering.
    await net.uplink(device, { fPort: 3, payload: Uint8Array.of(9) });
    await waitFor('an up event after the hostile commands', () =>
      subscriber!.on(`${prefix}/${net.applicationId}/device/${device.devEui}/event/up`).length > 0
        ? true
        : undefined,
    );
  });
});

describe('MQTT integration across a broker outage', () => {
  it('delivers every event stored while the broker was unreachable, in order, once it is back', {
    timeout: 60_000,
  }, async (t) => {
    if (await skipWithoutBroker(t)) return;
    const prefix = uniquePrefix();
    const subscriber = await subscribe(prefix);
    const proxy = new BrokerProxy();
    await proxy.open();
    const galet = await startTestGalet({
      application: {
        feedPollIntervalMs: 50,
        mqtt: {
          url: proxy.url,
          topicPrefix: prefix,
          reconnectPeriodMs: 100,
          publishTimeoutMs: 1000,
        },
      },
    });
    let net: ScenarioNetwork | undefined;
    try {
      net = await attachNetwork(galet, [{ gatewayId: GW }]);
      const device = await net.addAbpDevice('00000000000b0001', '1.0.3', 0x260b0001);
      const topic = `${prefix}/${net.applicationId}/device/${device.devEui}/event/up`;
      await net.uplink(device, { fPort: 1, payload: Uint8Array.of(0) });
      await waitFor('the first up event', () =>
        subscriber.on(topic).length === 1 ? true : undefined,
      );
      await waitFor('connected', async () =>
        (await net!.metric('galet_mqtt_connected')) === 1 ? true : undefined,
      );

      await proxy.down();
      await waitFor('the integration sees the broker gone', async () =>
        (await net!.metric('galet_mqtt_connected')) === 0 ? true : undefined,
      );
      const sent: number[] = [];
      for (let i = 1; i <= 5; i += 1) {
        const { event } = await net.uplink(device, { fPort: 1, payload: Uint8Array.of(i) });
        sent.push(event['fCnt'] as number);
      }
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(subscriber.on(topic).length, 1, 'nothing published while the broker is away');
      assert.ok((await net.metric('galet_mqtt_lag_events')) >= 5);

      await proxy.open();
      await waitFor(
        'every event after the outage',
        () => {
          const fCnts = subscriber.on(topic).map((message) => message.json['fCnt'] as number);
          return sent.every((fCnt) => fCnts.includes(fCnt)) ? fCnts : undefined;
        },
        15_000,
      );
      const fCnts = subscriber.on(topic).map((message) => message.json['fCnt'] as number);
      // In order: each fCnt's first delivery comes after the previous one's.
      const firsts = sent.map((fCnt) => fCnts.indexOf(fCnt));
      assert.deepEqual(
        [...firsts].sort((a, b) => a - b),
        firsts,
      );
      await waitFor('no lag left', async () =>
        (await net!.metric('galet_mqtt_lag_events')) === 0 ? true : undefined,
      );
    } finally {
      await net?.close();
      await galet.stop();
      await removeDir(galet.dataDir);
      await proxy.down();
      await subscriber.close();
    }
  });
});

/** `galet start …` from source in a child process; resolves once it says it runs. */
async function startGaletProcess(args: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'start', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, GALET_ADMIN_TOKEN: TEST_ADMIN_TOKEN, GALET_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (text: string) => output.push(text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => output.push(text));
  const ports = await waitFor(
    'galet starts',
    () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output.join('')}`);
      const text = output.join('');
      const http = /HTTP API http:\/\/127\.0\.0\.1:(\d+)\/api\/v1/.exec(text);
      const udp = /gateways on UDP port (\d+)/.exec(text);
      return http === null || udp === null
        ? undefined
        : { httpPort: Number(http[1]), udpPort: Number(udp[1]) };
    },
    30_000,
  );
  return { child, output, ...ports };
}

describe('MQTT integration across a kill -9', () => {
  it('delivers every stored event after Galet was killed with events not yet acknowledged', {
    timeout: 120_000,
  }, async (t) => {
    if (await skipWithoutBroker(t)) return;
    const prefix = uniquePrefix();
    const subscriber = await subscribe(prefix);
    const proxy = new BrokerProxy();
    await proxy.open();
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-mqtt-kill-'));
    const password = join(dataDir, 'mqtt-password');
    await writeFile(password, 'not-checked-by-an-anonymous-broker\n', { mode: 0o600 });
    const args = [
      ...['--data-dir', dataDir, '--host', '127.0.0.1', '--http-port', '0', '--udp-port', '0'],
      ...['--dedup-window-ms', '100', '--mqtt-url', proxy.url, '--mqtt-topic-prefix', prefix],
      ...['--mqtt-username', 'galet', '--mqtt-password-file', password],
    ];
    let galet = await startGaletProcess(args);
    let net: ScenarioNetwork | undefined;
    try {
      net = await ScenarioNetwork.attach(
        {
          baseUrl: `http://127.0.0.1:${galet.httpPort}`,
          udpPort: galet.udpPort,
          adminToken: TEST_ADMIN_TOKEN,
          dataDir,
        },
        [{ gatewayId: GW }],
      );
      const device = await net.addAbpDevice('00000000000c0001', '1.0.3', 0x260c0001);
      const topic = `${prefix}/${net.applicationId}/device/${device.devEui}/event/up`;
      for (let i = 0; i < 2; i += 1)
        await net.uplink(device, { fPort: 1, payload: Uint8Array.of(i) });
      await waitFor('the first two events', () =>
        subscriber.on(topic).length === 2 ? true : undefined,
      );
      // The broker goes away; uplinks keep coming and are stored, not acknowledged; then kill -9.
      await proxy.down();
      for (let i = 2; i < 6; i += 1)
        await net.uplink(device, { fPort: 1, payload: Uint8Array.of(i) });
      const exited = new Promise((resolve) => galet.child.once('exit', resolve));
      galet.child.kill('SIGKILL');
      await exited;
      await net.close();
      net = undefined;
      assert.equal(subscriber.on(topic).length, 2, 'nothing published during the outage');

      await proxy.open();
      galet = await startGaletProcess(args);
      const stored = await apiRequest(
        `http://127.0.0.1:${galet.httpPort}`,
        TEST_ADMIN_TOKEN,
        'GET',
        `/api/v1/devices/${device.devEui}/events?limit=1000`,
      );
      const storedUps = (stored.json.events as Record<string, unknown>[]).filter(
        (event) => event['event'] === 'up',
      );
      assert.equal(storedUps.length, 6);
      await waitFor(
        'every stored up event on MQTT',
        () => {
          const published = new Set(subscriber.on(topic).map((m) => m.json['deduplicationId']));
          return storedUps.every((event) => published.has(event['deduplicationId']))
            ? true
            : undefined;
        },
        20_000,
      );
      const output = galet.output.join('');
      assert.equal(
        output.includes('not-checked-by-an-anonymous-broker'),
        false,
        'password in logs',
      );
    } finally {
      await net?.close();
      if (galet.child.exitCode === null) {
        const exited = new Promise((resolve) => galet.child.once('exit', resolve));
        galet.child.kill('SIGTERM');
        await exited;
      }
      await proxy.down();
      await subscriber.close();
      await removeDir(dataDir);
    }
  });
});

describe('MQTT integration on PostgreSQL', () => {
  it('keeps its position in PostgreSQL across a restart: nothing delivered twice after a clean stop', {
    timeout: 60_000,
  }, async (t) => {
    if (await skipWithoutBroker(t)) return;
    const databaseUrl = await postgresTestUrl();
    if (databaseUrl === undefined) {
      skipOrFail(t, `PostgreSQL is not reachable at ${postgresTestHost()}`);
      return;
    }
    const prefix = uniquePrefix();
    const subscriber = await subscribe(prefix);
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-mqtt-pg-'));
    const options = {
      dataDir,
      databaseUrl,
      application: {
        feedPollIntervalMs: 50,
        mqtt: { url: BROKER_URL, topicPrefix: prefix, reconnectPeriodMs: 200 },
      },
    };
    let galet = await startTestGalet(options);
    let net: ScenarioNetwork | undefined;
    try {
      net = await attachNetwork(galet, [{ gatewayId: GW }]);
      const device = await net.addAbpDevice('00000000000d0001', '1.0.3', 0x260d0001);
      const topic = `${prefix}/${net.applicationId}/device/${device.devEui}/event/up`;
      await net.uplink(device, { fPort: 1, payload: Uint8Array.of(1) });
      await waitFor('the first event', () =>
        subscriber.on(topic).length === 1 ? true : undefined,
      );
      await net.close();
      await galet.stop();

      galet = await startTestGalet(options);
      const gateway = await SimulatedGateway.start({
        gatewayId: GW,
        server: { host: '127.0.0.1', port: galet.udpPort },
        pullIntervalMs: 1000,
        statIntervalMs: 0,
      });
      try {
        assert.ok(await gateway.ready(2000), 'PULL_ACK');
        const transmission = device.uplink({ fPort: 1, payload: Uint8Array.of(2) });
        gateway.forwardUplink(transmission, { rssi: -80, snr: 7 }, () => false);
        await waitFor('the second event', () =>
          subscriber.on(topic).length >= 2 ? true : undefined,
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(
          subscriber.on(topic).map((message) => message.json['fCnt']),
          [0, 1],
        );
      } finally {
        await gateway.close();
      }
    } finally {
      await galet.stop();
      await subscriber.close();
      await removeDir(dataDir);
      await dropPostgresTestDatabase(databaseUrl);
    }
  });
});
