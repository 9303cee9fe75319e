/** Why a connection to the broker failed, as counted (`galet_mqtt_connection_errors_total{kind}`). */
export type MqttConnectionErrorKind =
  | 'tls'
  | 'not_authorized'
  | 'refused'
  | 'unreachable'
  | 'other';

export const MQTT_CONNECTION_ERROR_KINDS: readonly MqttConnectionErrorKind[] = [
  'tls',
  'not_authorized',
  'refused',
  'unreachable',
  'other',
];

export interface MqttConnectionError {
  kind: MqttConnectionErrorKind;
  /** What to check, for the log line. */
  hint: string;
}

/** OpenSSL's verification results, as Node names them (`error.code`). */
const CERTIFICATE_NOT_VERIFIED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * MQTT 3.1.1 CONNACK return codes 4 (bad user name or password) and 5 (not authorized), and
 * MQTT 5's 134 and 135, which mean the same.
 */
const NOT_AUTHORIZED = new Set([4, 5, 134, 135]);

/** Sorts an error mqtt.js emitted while connecting (pure: the error's `code` and message). */
export function classifyConnectionError(error: Error): MqttConnectionError {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number') {
    return NOT_AUTHORIZED.has(code)
      ? {
          kind: 'not_authorized',
          hint: 'the broker refused the user name or password (mqttUsername, and mqttPasswordFile or GALET_MQTT_PASSWORD)',
        }
      : { kind: 'refused', hint: `the broker refused the connection (return code ${code})` };
  }
  if (typeof code === 'string') {
    if (CERTIFICATE_NOT_VERIFIED.has(code)) {
      return {
        kind: 'tls',
        hint: "the broker's certificate was not verified: give the CA that signed it (mqttCa) and a host name or address that the certificate names",
      };
    }
    if (code.endsWith('_ALERT_CERTIFICATE_REQUIRED')) {
      return {
        kind: 'tls',
        hint: 'the broker asks for a client certificate: give one and its key (mqttCert, mqttKey)',
      };
    }
    if (/_ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN)$/.test(code)) {
      return {
        kind: 'tls',
        hint: 'the broker did not accept the client certificate (mqttCert, mqttKey)',
      };
    }
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
      return {
        kind: 'tls',
        hint: 'the TLS handshake failed: a plain MQTT port behind an mqtts:// URL, or a broker that asks for a client certificate (mqttCert, mqttKey)?',
      };
    }
    if (code === 'ECONNRESET') {
      // What a plain MQTT port does with a TLS handshake, among other things.
      return {
        kind: 'unreachable',
        hint: 'the broker closed the connection: a plain MQTT port behind an mqtts:// URL?',
      };
    }
    if (UNREACHABLE.has(code)) {
      return { kind: 'unreachable', hint: 'the broker does not answer; retrying' };
    }
  }
  // mqtt.js's own check of the TLS session, in case Node let an unverified one through.
  if (error.message === 'TLS not authorized') {
    return { kind: 'tls', hint: "the broker's certificate was not verified (mqttCa)" };
  }
  // mqtt-packet's refusal to write a CONNECT with a password and no user name (MQTT 3.1.1).
  if (error.message === 'Username is required to use password') {
    return { kind: 'other', hint: 'a password is set without a user name: set mqttUsername' };
  }
  return { kind: 'other', hint: error.message.slice(0, 200) };
}
