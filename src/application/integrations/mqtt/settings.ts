import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import { isValidTopicPrefix } from './topics.js';

/** The MQTT integration's settings (`galet start --mqtt-*`, GALET_MQTT_*, config file). */
export interface MqttSettings {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string;
  username?: string;
  password?: string;
  /** Default `galet-<random>`. */
  clientId?: string;
  /**
   * PEM files for TLS (`mqtts://`): the CA that signed the broker's certificate (default: the
   * system's CAs), and a client certificate with its key for brokers that ask for one (both or
   * neither). The broker's certificate is always verified: there is no setting to turn that off.
   */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** First topic level(s) of every topic (default `application`, as ChirpStack). */
  topicPrefix?: string;
  /** Wait between reconnection attempts in ms (default 1000). */
  reconnectPeriodMs?: number;
  /** How long a batch waits for the broker (connection and PUBACKs) before it is retried (default 10 s). */
  publishTimeoutMs?: number;
}

export const DEFAULT_TOPIC_PREFIX = 'application';

export class MqttSettingsError extends Error {
  override name = 'MqttSettingsError';
}

/** Checks the settings and builds mqtt.js client options (TLS files read here, at start). */
export function mqttClientOptions(settings: MqttSettings): IClientOptions {
  const url = brokerUrl(settings.url);
  const topicPrefix = settings.topicPrefix ?? DEFAULT_TOPIC_PREFIX;
  if (!isValidTopicPrefix(topicPrefix)) {
    throw new MqttSettingsError(
      `MQTT topic prefix "${topicPrefix}" must be topic levels without "+", "#" or empty levels`,
    );
  }
  if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
    throw new MqttSettingsError(
      'an MQTT client certificate needs its key and a key its certificate: give both or neither',
    );
  }
  // mqtt.js verifies the broker's certificate unless told otherwise; said here so that no
  // default elsewhere can turn it off.
  const tls: IClientOptions = url.protocol === 'mqtts:' ? { rejectUnauthorized: true } : {};
  for (const [field, file] of [
    ['ca', settings.caFile],
    ['cert', settings.certFile],
    ['key', settings.keyFile],
  ] as const) {
    if (file === undefined) continue;
    if (url.protocol !== 'mqtts:') {
      throw new MqttSettingsError(`MQTT TLS files need an mqtts:// URL (got ${url.protocol}//)`);
    }
    try {
      tls[field] = readFileSync(file);
    } catch (error) {
      throw new MqttSettingsError(
        `cannot read the MQTT TLS ${field} file ${file}: ${(error as Error).message}`,
      );
    }
  }
  return {
    ...tls,
    protocolVersion: 4,
    clean: true,
    clientId: settings.clientId ?? `galet-${Math.random().toString(16).slice(2, 10)}`,
    reconnectPeriod: settings.reconnectPeriodMs ?? 1000,
    // mqtt.js gives up for good after a CONNACK refusal (a wrong password, a broker not ready
    // yet): retry, as for a broker that is down, so that a fix at the broker is picked up.
    reconnectOnConnackError: true,
    connectTimeout: 10_000,
    ...(settings.username === undefined ? {} : { username: settings.username }),
    ...(settings.password === undefined ? {} : { password: settings.password }),
  };
}

/** The broker URL, refused unless mqtt:// or mqtts:// and without credentials in it. */
export function brokerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MqttSettingsError('MQTT URL is not a URL (mqtt://host:port or mqtts://host:port)');
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') {
    throw new MqttSettingsError(`MQTT URL must be mqtt:// or mqtts://, got ${url.protocol}//`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new MqttSettingsError(
      'MQTT URL must not hold credentials: use the username and password settings',
    );
  }
  return url;
}

/** The broker as logs show it: scheme, host and port only. */
export function brokerForLogs(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}`;
  } catch {
    return '(invalid URL)';
  }
}
