/**
 * The MQTT integration over TLS with credentials, against a Mosquitto the test starts itself
 * (tls-broker.ts: certificates made by openssl, a hashed password file, `allow_anonymous
 * false`). Galet publishes an uplink and takes a downlink command over TLS with the right CA
 * and password; with a CA that did not sign the broker's certificate, with the system's CAs
 * only, or with a wrong password, it does not connect, and says why: a counter by reason, a
 * log line, retries, the rest of Galet unaffected. Mutual TLS with a client certificate too.
 * Skipped with a message when mosquitto, mosquitto_passwd or openssl is missing (failed under
 * GALET_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import { connectAsync, type MqttClient } from 'mqtt';
import { classifyConnectionError } from '../../../src/application/integrations/mqtt/connection-error.js';
import {
  type MqttSettings,
  MqttSettingsError,
  mqttClientOptions,
} from '../../../src/application/integrations/mqtt/settings.js';
import { resolveStartOptions } from '../../../src/cli/start-command.js';
import { attachNetwork } from '../../helpers/attach-network.js';
import { capturingLogger, type LogEntry, metricSample } from '../../helpers/capture.js';
import { removeDir, startTestGalet, type TestGalet } from '../../helpers/galet.js';
import { skipOrFail } from '../../helpers/services.js';
import { type ScenarioNetwork, waitFor } from '../../scenarios/helpers.js';
import { startTlsBroker, type TlsBroker, tlsBrokerTools } from './tls-broker.js';

const GW = 'aa555a0000000d02';

async function subscriber(broker: TlsBroker, prefix: string) {
  const client: MqttClient = await connectAsync(broker.url, {
    ca: await readFile(broker.files.ca),
    username: broker.users.reader.username,
    password: broker.users.reader.password,
    reconnectPeriod: 0,
  });
  const messages: { topic: string; payload: string }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
  await client.subscribeAsync(`${prefix}/#`, { qos: 1 });
  return { client, messages };
}

const uniquePrefix = () => `galet-tls-${randomBytes(4).toString('hex')}/application`;

describe('MQTT integration over TLS with credentials (a Mosquitto of its own)', () => {
  let broker: TlsBroker | undefined;
  let unavailable: string | undefined;

  before(async () => {
    const tools = await tlsBrokerTools();
    if ('missing' in tools) {
      unavailable = tools.missing;
      return;
    }
    broker = await startTlsBroker(tools);
  });

  after(async () => {
    await broker?.stop();
  });

  /** The broker, or undefined after skipping (or failing, when services are required). */
  function brokerOrSkip(t: TestContext): TlsBroker | undefined {
    if (broker === undefined) skipOrFail(t, `no TLS broker for this test: ${unavailable}`);
    return broker;
  }

  /** A Galet whose MQTT settings come from `galet start` flags, as an operator gives them. */
  async function galetWith(
    flags: Record<string, string>,
    logs: LogEntry[],
  ): Promise<{ galet: TestGalet; mqtt: MqttSettings }> {
    const mqtt = resolveStartOptions(flags, {}).application?.mqtt;
    assert.ok(mqtt !== undefined);
    const galet = await startTestGalet({
      application: { feedPollIntervalMs: 50, mqtt: { ...mqtt, reconnectPeriodMs: 100 } },
      logger: capturingLogger(logs),
    });
    return { galet, mqtt };
  }

  it('publishes an uplink and queues a downlink command over TLS with the CA and the password', {
    timeout: 30_000,
  }, async (t) => {
    const tls = brokerOrSkip(t);
    if (tls === undefined) return;
    const prefix = uniquePrefix();
    const reader = await subscriber(tls, prefix);
    const logs: LogEntry[] = [];
    const { galet, mqtt } = await galetWith(
      {
        mqttUrl: tls.url,
        mqttUsername: tls.users.galet.username,
        mqttPasswordFile: tls.users.galet.passwordFile,
        mqttCa: tls.files.ca,
        mqttTopicPrefix: prefix,
      },
      logs,
    );
    let net: ScenarioNetwork | undefined;
    try {
      assert.equal(mqtt.password, tls.users.galet.password, 'the password read from its file');
      net = await attachNetwork(galet, [{ gatewayId: GW }]);
      const device = await net.addAbpDevice('00000000000e0001', '1.0.3', 0x260e0001);
      const { event } = await net.uplink(device, { fPort: 4, payload: Uint8Array.of(7, 8) });
      const upTopic = `${prefix}/${net.applicationId}/device/${device.devEui}/event/up`;
      const up = await waitFor(
        'the up event over TLS',
        () => reader.messages.find((message) => message.topic === upTopic),
        10_000,
      );
      assert.equal(JSON.parse(up.payload).deduplicationId, event['deduplicationId']);
      assert.equal(JSON.parse(up.payload).data, Buffer.from([7, 8]).toString('base64'));

      await reader.client.publishAsync(
        `${prefix}/${net.applicationId}/device/${device.devEui}/command/down`,
        JSON.stringify({ devEui: device.devEui, fPort: 12, data: 'q80=' }),
        { qos: 1 },
      );
      const queued = await waitFor('the command queued', async () => {
        const queue = await galet.request('GET', `/api/v1/devices/${device.devEui}/queue`);
        return queue.json.items.length === 1 ? queue.json.items[0] : undefined;
      });
      assert.equal(queued.data, 'q80=');
      assert.equal(queued.fPort, 12);
      assert.equal(await metricSample(galet.baseUrl, 'galet_mqtt_connected'), 1);
      assert.equal(await metricSample(galet.baseUrl, 'galet_mqtt_commands_queued_total'), 1);
      assert.equal(
        await metricSample(galet.baseUrl, 'galet_mqtt_connection_errors_total{kind="tls"}'),
        0,
      );
      assert.ok(logs.some((entry) => entry.message === 'MQTT integration connected to the broker'));
      assert.equal(JSON.stringify(logs).includes(tls.users.galet.password), false, 'password');
    } finally {
      await net?.close();
      await galet.stop();
      await removeDir(galet.dataDir);
      await reader.client.endAsync();
    }
  });

  for (const [what, ca] of [
    ['a CA that did not sign the broker’s certificate', 'other'],
    ['the system’s CAs only (no mqttCa)', 'none'],
  ] as const) {
    it(`does not connect with ${what}: counted as tls, logged, retried; Galet keeps serving`, {
      timeout: 20_000,
    }, async (t) => {
      const tls = brokerOrSkip(t);
      if (tls === undefined) return;
      const logs: LogEntry[] = [];
      const { galet } = await galetWith(
        {
          mqttUrl: tls.url,
          mqttUsername: tls.users.galet.username,
          mqttPasswordFile: tls.users.galet.passwordFile,
          ...(ca === 'other' ? { mqttCa: tls.files.otherCa } : {}),
        },
        logs,
      );
      try {
        // Retried: several attempts, each refused, none connected.
        await waitFor(
          'retried TLS failures',
          async () =>
            (await metricSample(galet.baseUrl, 'galet_mqtt_connection_errors_total{kind="tls"}')) >=
            3,
          10_000,
        );
        assert.equal(await metricSample(galet.baseUrl, 'galet_mqtt_connected'), 0);
        assert.equal(await metricSample(galet.baseUrl, 'galet_mqtt_connects_total'), 0);
        const warnings = logs.filter(
          (entry) =>
            entry.level === 'warn' &&
            entry.message.startsWith('MQTT integration cannot connect to the broker'),
        );
        // The same failure is logged once a minute, not at each attempt.
        assert.equal(warnings.length, 1, JSON.stringify(warnings));
        assert.equal(warnings[0]!.fields['reason'], 'tls');
        assert.equal(warnings[0]!.fields['broker'], tls.url);
        assert.match(warnings[0]!.message, /certificate was not verified.*mqttCa/);
        assert.match(
          String((warnings[0]!.fields['err'] as { code?: unknown }).code),
          /CERT|SIGNATURE/,
        );
        assert.equal((await galet.request('GET', '/api/v1/health')).status, 200);
        assert.equal(JSON.stringify(logs).includes(tls.users.galet.password), false);
      } finally {
        await galet.stop();
        await removeDir(galet.dataDir);
      }
    });
  }

  it('does not connect with a wrong password: counted as not_authorized, logged, retried', {
    timeout: 20_000,
  }, async (t) => {
    const tls = brokerOrSkip(t);
    if (tls === undefined) return;
    const logs: LogEntry[] = [];
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const mqtt = resolveStartOptions(
      {
        mqttUrl: tls.url,
        mqttUsername: tls.users.galet.username,
        mqttCa: tls.files.ca,
      },
      { GALET_MQTT_PASSWORD: wrong },
    ).application?.mqtt;
    assert.equal(mqtt?.password, wrong, 'the password from GALET_MQTT_PASSWORD');
    const galet = await startTestGalet({
      application: { feedPollIntervalMs: 50, mqtt: { ...mqtt!, reconnectPeriodMs: 100 } },
      logger: capturingLogger(logs),
    });
    try {
      // mqtt.js stops after a refused CONNACK unless told to retry: Galet retries.
      await waitFor(
        'retried refusals',
        async () =>
          (await metricSample(
            galet.baseUrl,
            'galet_mqtt_connection_errors_total{kind="not_authorized"}',
          )) >= 3,
        10_000,
      );
      assert.equal(await metricSample(galet.baseUrl, 'galet_mqtt_connected'), 0);
      const warning = logs.find((entry) => entry.fields['reason'] === 'not_authorized');
      assert.ok(warning !== undefined, JSON.stringify(logs));
      assert.equal(warning.level, 'warn');
      assert.match(warning.message, /refused the user name or password/);
      assert.equal(JSON.stringify(logs).includes(wrong), false, 'the password is never logged');
      assert.equal((await galet.request('GET', '/api/v1/health')).status, 200);
    } finally {
      await galet.stop();
      await removeDir(galet.dataDir);
    }
  });

  it('connects with a client certificate where the broker requires one (mutual TLS), and not without', {
    timeout: 20_000,
  }, async (t) => {
    const tls = brokerOrSkip(t);
    if (tls === undefined) return;
    const prefix = uniquePrefix();
    const reader = await subscriber(tls, prefix);
    const credentials = {
      mqttUrl: tls.mutualTlsUrl,
      mqttUsername: tls.users.galet.username,
      mqttPasswordFile: tls.users.galet.passwordFile,
      mqttCa: tls.files.ca,
      mqttTopicPrefix: prefix,
    };
    const withCertificate = await galetWith(
      { ...credentials, mqttCert: tls.files.clientCert, mqttKey: tls.files.clientKey },
      [],
    );
    const withoutLogs: LogEntry[] = [];
    const without = await galetWith(credentials, withoutLogs);
    try {
      const { galet } = withCertificate;
      const application = await galet.request('POST', '/api/v1/applications', { name: 'mTLS' });
      const devEui = '00000000000e0002';
      await galet.storage.events.append({
        devEui,
        applicationId: application.json.id,
        type: 'status',
        time: new Date().toISOString(),
        body: { deviceInfo: { devEui, applicationId: application.json.id }, batteryLevel: 80 },
      });
      const topic = `${prefix}/${application.json.id}/device/${devEui}/event/status`;
      const published = await waitFor(
        'the status event over mutual TLS',
        () => reader.messages.find((message) => message.topic === topic),
        10_000,
      );
      assert.equal(JSON.parse(published.payload).batteryLevel, 80);

      await waitFor(
        'the handshake refused without a client certificate, retried',
        async () =>
          (await metricSample(
            without.galet.baseUrl,
            'galet_mqtt_connection_errors_total{kind="tls"}',
          )) >= 2,
        10_000,
      );
      assert.equal(await metricSample(without.galet.baseUrl, 'galet_mqtt_connected'), 0);
      assert.equal(await metricSample(without.galet.baseUrl, 'galet_mqtt_connects_total'), 0);
      const warning = withoutLogs.find((entry) => entry.fields['reason'] === 'tls');
      assert.ok(warning !== undefined, JSON.stringify(withoutLogs));
      assert.match(warning.message, /asks for a client certificate.*mqttCert, mqttKey/);
    } finally {
      for (const { galet } of [withCertificate, without]) {
        await galet.stop();
        await removeDir(galet.dataDir);
      }
      await reader.client.endAsync();
    }
  });
});

describe('MQTT TLS settings', () => {
  it('verifies the broker’s certificate on mqtts:// whatever else is set', () => {
    assert.equal(
      mqttClientOptions({ url: 'mqtts://broker.example.org:8883' }).rejectUnauthorized,
      true,
    );
    assert.equal(
      mqttClientOptions({ url: 'mqtt://broker.example.org:1883' }).rejectUnauthorized,
      undefined,
    );
    assert.equal(mqttClientOptions({ url: 'mqtt://broker:1883' }).reconnectOnConnackError, true);
  });

  it('refuses a client certificate without its key, and a key without its certificate', () => {
    for (const half of [
      { certFile: '/etc/galet/client.pem' },
      { keyFile: '/etc/galet/client.key' },
    ]) {
      assert.throws(
        () => mqttClientOptions({ url: 'mqtts://broker:8883', ...half }),
        (error) => error instanceof MqttSettingsError && /give both or neither/.test(error.message),
      );
    }
    assert.throws(
      () => resolveStartOptions({ mqttUrl: 'mqtts://broker:8883', mqttCert: '/x.pem' }, {}),
      /give both or neither/,
    );
  });

  it('sorts connection failures by reason', () => {
    const withCode = (message: string, code: string | number) =>
      Object.assign(new Error(message), { code });
    const cases: [Error, string][] = [
      [
        withCode('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'),
        'tls',
      ],
      [withCode('Hostname/IP does not match', 'ERR_TLS_CERT_ALTNAME_INVALID'), 'tls'],
      [withCode('alert certificate required', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), 'tls'],
      [withCode('wrong version number', 'ERR_SSL_WRONG_VERSION_NUMBER'), 'tls'],
      [withCode('Connection refused: Not authorized', 5), 'not_authorized'],
      [withCode('Connection refused: Bad username or password', 4), 'not_authorized'],
      [withCode('Connection refused: Server unavailable', 3), 'refused'],
      [withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'), 'unreachable'],
      [withCode('getaddrinfo ENOTFOUND broker', 'ENOTFOUND'), 'unreachable'],
      [withCode('read ECONNRESET', 'ECONNRESET'), 'unreachable'],
      [new Error('TLS not authorized'), 'tls'],
      [new Error('connack timeout'), 'other'],
    ];
    for (const [error, kind] of cases) {
      assert.equal(classifyConnectionError(error).kind, kind, error.message);
    }
    assert.match(
      classifyConnectionError(new Error('Username is required to use password')).hint,
      /set mqttUsername/,
    );
  });
});
