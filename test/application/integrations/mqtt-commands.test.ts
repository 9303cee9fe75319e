/**
 * The pure parts of the MQTT integration (topics, command payloads) and its `galet start`
 * settings.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDownlinkCommand } from '../../../src/application/integrations/mqtt/downlink-command.js';
import {
  commandSubscription,
  eventTopic,
  isValidTopicPrefix,
  parseCommandTopic,
} from '../../../src/application/integrations/mqtt/topics.js';
import { resolveStartOptions } from '../../../src/cli/start-command.js';

const DEV_EUI = '70b3d57ed0000101';
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('MQTT topics', () => {
  it('builds ChirpStack’s event topic and reads command topics under a prefix', () => {
    assert.equal(
      eventTopic('application', 'app-1', DEV_EUI, 'up'),
      `application/app-1/device/${DEV_EUI}/event/up`,
    );
    assert.equal(commandSubscription('a/b'), 'a/b/+/device/+/command/down');
    assert.deepEqual(parseCommandTopic('a/b', `a/b/app-1/device/${DEV_EUI}/command/down`), {
      applicationId: 'app-1',
      devEui: DEV_EUI,
    });
    for (const topic of [
      `application/app-1/device/${DEV_EUI}/command/up`,
      `application/app-1/device/${DEV_EUI}/command/down/extra`,
      `other/app-1/device/${DEV_EUI}/command/down`,
      `application//device/${DEV_EUI}/command/down`,
      'application',
    ]) {
      assert.equal(parseCommandTopic('application', topic), undefined, topic);
    }
  });

  it('refuses prefixes with wildcards or empty levels', () => {
    assert.equal(isValidTopicPrefix('application'), true);
    assert.equal(isValidTopicPrefix('tenant-1/application'), true);
    for (const prefix of [
      '',
      '/application',
      'application/',
      'a//b',
      'a/+/b',
      'a/#',
      `a${'\u0000'}`,
    ]) {
      assert.equal(isValidTopicPrefix(prefix), false, JSON.stringify(prefix));
    }
  });
});

describe('MQTT downlink command payloads', () => {
  it('reads ChirpStack’s {devEui, confirmed, fPort, data}', () => {
    const parsed = parseDownlinkCommand(
      json({ devEui: DEV_EUI.toUpperCase(), confirmed: true, fPort: 10, data: 'yv4=' }),
      DEV_EUI,
    );
    assert.deepEqual(parsed, {
      ok: true,
      command: {
        devEui: DEV_EUI,
        fPort: 10,
        confirmed: true,
        payload: { data: Uint8Array.of(0xca, 0xfe) },
      },
    });
  });

  it('takes an object for the codec, and refuses data and object together', () => {
    const parsed = parseDownlinkCommand(json({ fPort: 3, object: { on: true } }), DEV_EUI);
    assert.ok(parsed.ok && 'object' in parsed.command.payload);
    const both = parseDownlinkCommand(json({ fPort: 3, data: 'AQ==', object: {} }), DEV_EUI);
    assert.equal(both.ok, false);
  });

  it('names the reason of each refusal', () => {
    const cases: [unknown, string][] = [
      ['{', 'not_json'],
      [[1], 'not_an_object'],
      [{ fPort: 224, data: 'AQ==' }, 'invalid_fport'],
      [{ fPort: 1.5, data: 'AQ==' }, 'invalid_fport'],
      [{ fPort: 1, data: 'A' }, 'invalid_data'],
      [{ fPort: 1 }, 'invalid_data'],
      [{ fPort: 1, data: Buffer.alloc(243).toString('base64') }, 'invalid_data'],
      [{ fPort: 1, data: 'AQ==', confirmed: 1 }, 'invalid_confirmed'],
      [{ fPort: 1, data: 'AQ==', devEui: '0000000000000000' }, 'dev_eui_mismatch'],
    ];
    for (const [payload, reason] of cases) {
      const bytes = typeof payload === 'string' ? Buffer.from(payload) : json(payload);
      const parsed = parseDownlinkCommand(bytes, DEV_EUI);
      assert.equal(parsed.ok ? 'ok' : parsed.reason, reason, JSON.stringify(payload));
    }
    const large = parseDownlinkCommand(Buffer.alloc(16_385, 0x20), DEV_EUI);
    assert.equal(large.ok ? 'ok' : large.reason, 'too_large');
  });

  it('never throws on arbitrary bytes or JSON', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        parseDownlinkCommand(bytes, DEV_EUI);
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = parseDownlinkCommand(json(value), DEV_EUI);
        if (parsed.ok && 'data' in parsed.command.payload) {
          assert.ok(parsed.command.payload.data.length <= 242);
        }
      }),
    );
  });
});

describe('galet start: MQTT settings', () => {
  it('folds the --mqtt-* flags into application.mqtt, the password from a file or the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-mqtt-cli-'));
    try {
      const passwordFile = join(dir, 'password');
      await writeFile(passwordFile, 'from-file\n');
      const options = resolveStartOptions(
        {
          mqttUrl: 'mqtt://broker.example.org:1883',
          mqttUsername: 'galet',
          mqttPasswordFile: passwordFile,
          mqttTopicPrefix: 'commune/application',
        },
        { GALET_MQTT_PASSWORD: 'from-env' },
      );
      assert.deepEqual(options.application?.mqtt, {
        url: 'mqtt://broker.example.org:1883',
        username: 'galet',
        password: 'from-file',
        topicPrefix: 'commune/application',
      });
      assert.equal('mqttUrl' in options, false);
      const fromEnv = resolveStartOptions(
        {},
        { GALET_MQTT_URL: 'mqtts://broker:8883', GALET_MQTT_PASSWORD: 'from-env' },
      );
      assert.deepEqual(fromEnv.application?.mqtt, {
        url: 'mqtts://broker:8883',
        password: 'from-env',
      });
      assert.equal(resolveStartOptions({}, {}).application, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad MQTT settings with a one-line message', () => {
    for (const [flags, message] of [
      [{ mqttUsername: 'x' }, /--mqtt-username need --mqtt-url/],
      [{ mqttUrl: 'http://broker' }, /mqtt:\/\/ or mqtts:\/\//],
      [{ mqttUrl: 'mqtt://user:secret@broker' }, /must not hold credentials/],
      [{ mqttUrl: 'mqtt://broker', mqttCa: '/nonexistent.pem' }, /need an mqtts:\/\/ URL/],
      [
        { mqttUrl: 'mqtts://broker', mqttCa: '/nonexistent.pem' },
        /cannot read the MQTT TLS ca file/,
      ],
      [{ mqttUrl: 'mqtt://broker', mqttTopicPrefix: 'a/#' }, /topic prefix/],
      [
        { mqttUrl: 'mqtt://broker', mqttPasswordFile: '/nonexistent' },
        /cannot read the MQTT password file/,
      ],
    ] as const) {
      assert.throws(() => resolveStartOptions(flags, {}), message, JSON.stringify(flags));
    }
  });
});
